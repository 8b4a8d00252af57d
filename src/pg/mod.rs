//! Connecting to this environment's PostgreSQL servers and reading their errors: the one
//! place `observe`, `execute`, `txn`, `verify` and `workload` open sessions from. Every
//! connection has a deadline for its startup and sends the password only by SCRAM-SHA-256.

pub mod control;
mod guard;

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::model;

pub use guard::Deadlines;

/// Names the seconds a statement may run; see [`statement_timeout`].
pub const STATEMENT_TIMEOUT_ENV: &str = "DBTOPO_STATEMENT_TIMEOUT";

/// Long enough for dbtopo's own statements (DDL, moving a fragment's rows, seeding), short
/// enough that a stuck apply says so.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long after the statement timeout the client lets a silent server go: the server's
/// own cancellation normally comes first, with its own words.
const REPLY_GRACE: Duration = Duration::from_secs(5);

/// How long one statement may run: the server cancels it then (`statement_timeout`), and a
/// server that has not answered shortly after is let go. `DBTOPO_STATEMENT_TIMEOUT` gives it in
/// seconds.
pub fn statement_timeout() -> Result<Duration, String> {
    match std::env::var(STATEMENT_TIMEOUT_ENV) {
        Err(_) => Ok(DEFAULT_STATEMENT_TIMEOUT),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
            _ => Err(format!(
                "{STATEMENT_TIMEOUT_ENV} must be a whole number of seconds above 0, not `{text}`"
            )),
        },
    }
}

/// A superuser connection to the server published on `127.0.0.1:host_port`.
pub async fn connect(
    host_port: u16,
    password: &str,
    timeout: Duration,
) -> Result<Client, tokio_postgres::Error> {
    connect_to(host_port, password, "postgres", timeout).await
}

/// A superuser connection to database `dbname` of the server on `127.0.0.1:host_port`: the
/// startup gets `timeout`, each statement [`statement_timeout`].
pub async fn connect_to(
    host_port: u16,
    password: &str,
    dbname: &str,
    timeout: Duration,
) -> Result<Client, tokio_postgres::Error> {
    let statement = statement_timeout();
    let reply = statement.as_ref().map_or(DEFAULT_STATEMENT_TIMEOUT, |s| *s) + REPLY_GRACE;
    connect_within(
        host_port,
        password,
        dbname,
        statement,
        Deadlines {
            startup: timeout,
            reply,
        },
    )
    .await
}

async fn connect_within(
    host_port: u16,
    password: &str,
    dbname: &str,
    statement: Result<Duration, String>,
    deadlines: Deadlines,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(host_port)
        .user(model::SUPERUSER)
        .password(password)
        .dbname(dbname)
        .application_name("dbtopo");
    let stream = match statement {
        Ok(statement) => {
            // dbtopo's own commits (roles, schema, seed data) do not wait for synchronous
            // replicas: a node's first replica is made after them, and would wait for them.
            config.options(format!(
                "-c statement_timeout={} -c synchronous_commit=local",
                statement.as_millis()
            ));
            guard::Guarded::connect(host_port, deadlines).await
        }
        Err(invalid) => guard::Guarded::refused(invalid),
    };
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

    /// A fake server that lets the client in without a password, answers `answered`
    /// simple queries at once, then reads the next one and stays silent for ten seconds.
    async fn silent_after(answered: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut length = [0u8; 4];
            socket.read_exact(&mut length).await.unwrap();
            let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
            socket.read_exact(&mut startup).await.unwrap();
            let mut reply = auth_request(0, b"");
            reply.extend_from_slice(b"Z\0\0\0\x05I");
            socket.write_all(&reply).await.unwrap();
            for i in 0..=answered {
                let mut header = [0u8; 5];
                socket.read_exact(&mut header).await.unwrap();
                let length = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
                let mut query = vec![0u8; length - 4];
                socket.read_exact(&mut query).await.unwrap();
                if i == answered {
                    break;
                }
                socket
                    .write_all(b"C\0\0\0\x08SET\0Z\0\0\0\x05I")
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        port
    }

    fn deadlines(reply_ms: u64) -> Deadlines {
        Deadlines {
            startup: Duration::from_secs(2),
            reply: Duration::from_millis(reply_ms),
        }
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_fails_the_statement_within_the_deadline() {
        let port = silent_after(0).await;
        let client = connect_within(
            port,
            "the-secret",
            "postgres",
            Ok(Duration::from_secs(1)),
            deadlines(300),
        )
        .await
        .expect("the startup completes");
        let started = std::time::Instant::now();
        let error = client
            .batch_execute("SET x = 1")
            .await
            .expect_err("no answer");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let message = server_message(&error);
        assert!(
            message.contains(&format!("PostgreSQL on 127.0.0.1:{port} sent no answer")),
            "{message}"
        );
        // The connection is over: later requests fail at once rather than wait again.
        let started = std::time::Instant::now();
        assert!(client.batch_execute("SET x = 2").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn an_idle_session_has_no_deadline_only_a_request_does() {
        let port = silent_after(2).await;
        let client = connect_within(
            port,
            "the-secret",
            "postgres",
            Ok(Duration::from_secs(1)),
            deadlines(300),
        )
        .await
        .expect("the startup completes");
        client.batch_execute("SET x = 1").await.expect("answered");
        // Idle for longer than the reply deadline: nothing is owed, so nothing fails.
        tokio::time::sleep(Duration::from_millis(700)).await;
        client.batch_execute("SET x = 2").await.expect("answered");
        let error = client
            .batch_execute("SET x = 3")
            .await
            .expect_err("the third is never answered");
        assert!(server_message(&error).contains("sent no answer"), "{error}");
    }

    #[tokio::test]
    async fn a_bad_statement_timeout_is_refused_before_connecting() {
        let port = silent_after(0).await;
        let error = connect_within(
            port,
            "the-secret",
            "postgres",
            Err("DBTOPO_STATEMENT_TIMEOUT must be a whole number".to_owned()),
            deadlines(300),
        )
        .await
        .expect_err("refused");
        assert!(
            server_message(&error).contains("DBTOPO_STATEMENT_TIMEOUT"),
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
