//! Connecting to this environment's PostgreSQL servers and reading their errors: the one
//! place `observe`, `execute`, `txn`, `verify` and `workload` open sessions from. Every
//! connection has a deadline for its startup and sends the password only by SCRAM-SHA-256.

mod guard;

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::model;

/// A superuser connection to the server published on `127.0.0.1:host_port`.
pub async fn connect(
    host_port: u16,
    password: &str,
    timeout: Duration,
) -> Result<Client, tokio_postgres::Error> {
    connect_to(host_port, password, "postgres", timeout).await
}

/// A superuser connection to database `dbname` of the server on `127.0.0.1:host_port`.
pub async fn connect_to(
    host_port: u16,
    password: &str,
    dbname: &str,
    timeout: Duration,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(host_port)
        .user(model::SUPERUSER)
        .password(password)
        .dbname(dbname)
        .application_name("dbtopo");
    let stream = guard::Guarded::connect(host_port, timeout).await;
    let (client, connection) = config.connect_raw(stream, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The server's own words (message, detail, hint) rather than the client's summary.
pub fn server_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A fake server on loopback: reads the startup message, answers `reply`, then returns
    /// every byte the client sent after it.
    async fn fake_server(reply: Vec<u8>) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut length = [0u8; 4];
            socket.read_exact(&mut length).await.unwrap();
            let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
            socket.read_exact(&mut startup).await.unwrap();
            if !reply.is_empty() {
                socket.write_all(&reply).await.unwrap();
            }
            let mut after = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), socket.read_to_end(&mut after)).await;
            after
        });
        (port, served)
    }

    fn auth_request(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut out = vec![b'R'];
        out.extend_from_slice(&(8 + extra.len() as u32).to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(extra);
        out
    }

    #[tokio::test]
    async fn a_server_asking_for_the_password_in_cleartext_or_md5_gets_nothing() {
        for (code, extra) in [(3, &b""[..]), (5, &b"salt"[..])] {
            let (port, served) = fake_server(auth_request(code, extra)).await;
            let error = connect(port, "the-secret", Duration::from_secs(2))
                .await
                .expect_err("a weak password request ends the connection");
            let message = server_message(&error);
            assert!(message.contains("only by SCRAM-SHA-256"), "{message}");
            let after = served.await.unwrap();
            assert!(
                !after.windows(10).any(|w| w == b"the-secret") && !after.contains(&b'p'),
                "the server received {after:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_port_that_never_answers_fails_within_the_deadline() {
        let (port, _served) = fake_server(Vec::new()).await;
        let started = std::time::Instant::now();
        let error = connect(port, "the-secret", Duration::from_millis(300))
            .await
            .expect_err("no startup");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            server_message(&error).contains("no PostgreSQL startup"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_program_that_is_not_postgresql_is_refused() {
        let (port, _served) = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
        let error = connect(port, "the-secret", Duration::from_secs(2))
            .await
            .expect_err("not PostgreSQL");
        assert!(
            server_message(&error).contains("does not speak the PostgreSQL protocol"),
            "{error}"
        );
    }
}
