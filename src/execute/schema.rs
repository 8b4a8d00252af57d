//! Run a node's schema steps: the database first, then every transactional step in one
//! transaction (a failure leaves the node as it was), then the concurrent index steps.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::ExecuteError;
use crate::observe::catalog;
use crate::pg::connect_to;
use crate::schema::{Step, ddl};

/// How long a DDL statement waits for a lock before giving up, so a long transaction of an
/// application makes apply fail with a message instead of hanging.
const LOCK_TIMEOUT: &str = "30s";

pub async fn apply(
    maintenance: &Client,
    host_port: u16,
    password: &str,
    database: &str,
    create_database: bool,
    steps: &[Step],
) -> Result<(), ExecuteError> {
    if create_database && !catalog::database_exists(maintenance, database).await? {
        let created = maintenance
            .batch_execute(&ddl::create_database(database))
            .await;
        // An apply killed while its CREATE DATABASE ran leaves one the server finishes after
        // this apply looked: the database is there, which is all this step wants.
        if let Err(error) = created
            && !catalog::database_exists(maintenance, database).await?
        {
            return Err(error.into());
        }
    }
    let mut client = connect_to(host_port, password, database, Duration::from_secs(10)).await?;
    client
        .batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    let transaction = client.transaction().await?;
    for step in steps.iter().filter(|s| !s.concurrent) {
        if let Err(error) = transaction.batch_execute(&step.sql).await {
            return Err(step_failed(step, error, ROLLED_BACK));
        }
    }
    transaction.commit().await?;
    for step in steps.iter().filter(|s| s.concurrent) {
        client
            .batch_execute(&step.sql)
            .await
            .map_err(|error| step_failed(step, error, COMMITTED))?;
    }
    Ok(())
}

const ROLLED_BACK: &str = "the node's transaction was rolled back: its schema is as it was";
const COMMITTED: &str = "the node's other changes were committed; an index left invalid is \
    rebuilt by the next apply";

fn step_failed(step: &Step, error: tokio_postgres::Error, outcome: &'static str) -> ExecuteError {
    ExecuteError::SchemaStep {
        object: step.object.clone(),
        outcome,
        origin: step.origin.clone(),
        sql: step.sql.clone(),
        error,
    }
}

/// Run generated statements, in one transaction when `transactional`, with the superuser
/// password put in for its placeholders only here.
pub async fn run_statements(
    host_port: u16,
    password: &str,
    database: &str,
    statements: &[String],
    transactional: bool,
) -> Result<(), ExecuteError> {
    use crate::fragments::coordinator::{CONNINFO_PASSWORD_PLACEHOLDER, PASSWORD_PLACEHOLDER};
    let client = connect_to(host_port, password, database, Duration::from_secs(10)).await?;
    let in_sql = password.replace('\'', "''");
    // libpq quoting (backslash escapes inside single quotes), then SQL's.
    let in_conninfo =
        format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'")).replace('\'', "''");
    // A list that starts by dropping what it makes (a subscription) is run again once from
    // the start when a CREATE meets that object: a statement of an interrupted apply, still
    // running on the server when the drop looked, committed it in between.
    let restartable = !transactional
        && statements
            .first()
            .is_some_and(|s| s.starts_with("DROP ") && s.contains(" IF EXISTS "));
    let mut attempts = if restartable { 2 } else { 1 };
    'attempt: loop {
        attempts -= 1;
        if transactional {
            client.batch_execute("BEGIN").await?;
        }
        for statement in statements {
            let sql = statement
                .replace(CONNINFO_PASSWORD_PLACEHOLDER, &in_conninfo)
                .replace(PASSWORD_PLACEHOLDER, &in_sql);
            if let Err(error) = client.batch_execute(&sql).await {
                // "already exists", or the catalog's unique index when both were in flight.
                let exists = [SqlState::DUPLICATE_OBJECT, SqlState::UNIQUE_VIOLATION]
                    .iter()
                    .any(|code| error.code() == Some(code));
                if attempts > 0 && exists {
                    continue 'attempt;
                }
                if transactional {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(ExecuteError::SchemaStep {
                    object: "statement".into(),
                    outcome: if transactional {
                        ROLLED_BACK
                    } else {
                        NOT_ROLLED_BACK
                    },
                    origin: None,
                    sql: statement.clone(),
                    error,
                });
            }
        }
        break;
    }
    if transactional {
        client.batch_execute("COMMIT").await?;
    }
    Ok(())
}

const NOT_ROLLED_BACK: &str = "the statements before it ran; the next apply compares again";
