//! Connecting to this environment's PostgreSQL servers and reading their errors: the one
//! place `observe`, `execute`, `txn`, `verify` and `workload` open sessions from.

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
        .application_name("dbtopo")
        .connect_timeout(timeout);
    let (client, connection) = config.connect(NoTls).await?;
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
        None => error.to_string(),
    }
}
