//! SQL operations of the plan, and waiting for a server to answer.

use std::time::{Duration, Instant};

use bollard::Docker;
use tokio_postgres::Client;

use super::ExecuteError;
use crate::pg::{connect, connect_to};
use crate::secrets::Secrets;

/// How long a new server may take to answer (initdb or pg_basebackup included).
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a connection to another database of a running server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(25);
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// Connect, retrying with backoff while the server starts. Gives up early, with the
/// container's last log lines, when the container stops.
pub async fn wait_ready(
    docker: &Docker,
    container: &str,
    host_port: u16,
    secrets: &Secrets,
) -> Result<Client, ExecuteError> {
    let started = Instant::now();
    let baseline = super::docker::status(docker, container)
        .await?
        .map(|(_, restarts)| restarts);
    // Connection attempts are cheap (refused at once while the server starts), so poll often;
    // ask Docker whether the container still runs only now and then.
    let mut last_status_check = Instant::now();
    loop {
        match connect(host_port, &secrets.superuser, Duration::from_secs(2)).await {
            Ok(client) => {
                if client.simple_query("SELECT 1").await.is_ok() {
                    return Ok(client);
                }
            }
            Err(error) => {
                let timed_out = started.elapsed() > READY_TIMEOUT;
                if timed_out || last_status_check.elapsed() > STATUS_INTERVAL {
                    last_status_check = Instant::now();
                    let status = super::docker::status(docker, container).await?;
                    let crashed = match (status, baseline) {
                        (Some((running, restarts)), Some(before)) => !running || restarts > before,
                        _ => true,
                    };
                    if crashed || timed_out {
                        return Err(ExecuteError::NotReady {
                            engine: "PostgreSQL",
                            container: container.to_string(),
                            port: host_port,
                            waited: started.elapsed(),
                            last_error: error.to_string(),
                            logs: super::docker::log_tail(docker, container, 20).await,
                        });
                    }
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Quote a string literal for SQL that cannot take parameters (CREATE ROLE … PASSWORD).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// What pg_rewind reads the new primary's files with, when it rejoins an old primary to it
/// as the replication role (PostgreSQL's documented grants for a non-superuser rewind).
const REWIND_FUNCTIONS: [&str; 4] = [
    "pg_ls_dir(text, boolean, boolean)",
    "pg_stat_file(text, boolean)",
    "pg_read_binary_file(text)",
    "pg_read_binary_file(text, bigint, bigint, boolean)",
];

/// Create the replication role, or give an existing one the attributes and password it needs,
/// and the functions pg_rewind reads files with in every database (function privileges are
/// kept per database: `template1` passes them on to databases made later, and the observation
/// reads them in whichever database it connects to). The password travels as a SCRAM
/// verifier computed here, so even a server logging every statement never records it.
pub async fn ensure_replication_role(
    client: &Client,
    host_port: u16,
    superuser_password: &str,
    role: &str,
    password: &str,
) -> Result<(), ExecuteError> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await?
        .is_some();
    let verb = if exists { "ALTER" } else { "CREATE" };
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    client
        .batch_execute(&format!(
            "{verb} ROLE {} WITH LOGIN REPLICATION PASSWORD {}",
            identifier(role),
            literal(&verifier),
        ))
        .await?;
    let grants: String = REWIND_FUNCTIONS
        .iter()
        .map(|f| {
            format!(
                "GRANT EXECUTE ON FUNCTION pg_catalog.{f} TO {};",
                identifier(role)
            )
        })
        .collect();
    let databases = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datallowconn",
            &[],
        )
        .await?;
    for database in databases.iter().map(|row| row.get::<_, String>(0)) {
        let other = connect_to(host_port, superuser_password, &database, CONNECT_TIMEOUT).await?;
        other.batch_execute(&grants).await?;
    }
    Ok(())
}

/// A physical slot that reserves WAL at once, so nothing the replica needs is recycled.
pub async fn create_slot(client: &Client, slot: &str) -> Result<(), ExecuteError> {
    client
        .execute(
            "SELECT pg_create_physical_replication_slot($1, true) \
             WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
            &[&slot],
        )
        .await?;
    Ok(())
}

pub async fn drop_slot(client: &Client, slot: &str) -> Result<(), ExecuteError> {
    // A subscriber just detached from the slot: its sender leaves once it notices. One that
    // lingers past five seconds is ended (nothing subscribes through it any more).
    for attempt in 0..100 {
        let active: Option<bool> = client
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?
            .map(|row| row.get(0));
        if active != Some(true) {
            break;
        }
        if attempt >= 50 {
            client
                .execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                     WHERE slot_name = $1 AND active_pid IS NOT NULL",
                    &[&slot],
                )
                .await?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client
        .execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(())
}

pub async fn reset_altered(client: &Client) -> Result<(), ExecuteError> {
    client.batch_execute("ALTER SYSTEM RESET ALL").await?;
    Ok(())
}

/// Reload and wait until the postmaster has read the files, so the next observation sees
/// the new values.
pub async fn reload(client: &Client) -> Result<(), ExecuteError> {
    let before: String = client
        .query_one("SELECT pg_conf_load_time()::text", &[])
        .await?
        .get(0);
    client.execute("SELECT pg_reload_conf()", &[]).await?;
    for _ in 0..100 {
        // A new snapshot per statement: pg_conf_load_time is per backend, and a backend
        // re-reads the configuration between statements once the postmaster has.
        let now: String = client
            .query_one("SELECT pg_conf_load_time()::text", &[])
            .await?
            .get(0);
        if now != before {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Wait until a replica's WAL receiver streams, so `apply` ends with replication working.
pub async fn wait_streaming(client: &Client, timeout: Duration) -> Result<bool, ExecuteError> {
    let started = Instant::now();
    loop {
        let streaming = client
            .query_opt(
                "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                &[],
            )
            .await?
            .is_some();
        if streaming || started.elapsed() > timeout {
            return Ok(streaming);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
