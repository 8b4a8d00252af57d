//! Two-phase commit across nodes, so that work touching several nodes commits everywhere or
//! nowhere (postgres_fdw alone commits each node on its own).
//!
//! The protocol: BEGIN on every participant; the caller does its work; PREPARE TRANSACTION on
//! each with a global id (`dbtopo:<id>:<node>`); the decision to commit is recorded durably on
//! the coordinator node (`dbtopo.txn_decisions`), and only then COMMIT PREPARED runs
//! everywhere. A failure before the decision rolls every participant back (ROLLBACK PREPARED
//! for those already prepared). A failure after it leaves prepared transactions that
//! [`recovery`] finishes from the decision record: the plan lists them and apply resolves them.

pub mod recovery;

use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// Where decisions are recorded, on the coordinator node, in the environment's database.
pub const DECISIONS_DDL: &str = "CREATE SCHEMA IF NOT EXISTS dbtopo;
CREATE TABLE IF NOT EXISTS dbtopo.txn_decisions (
    gid        text PRIMARY KEY,
    outcome    text NOT NULL CHECK (outcome IN ('commit', 'rollback')),
    decided_at timestamptz NOT NULL DEFAULT now()
);";

/// A script's parts: the statements after each `-- node: <name>` line, in order. Text
/// before the first such line is an error (it belongs to no node).
pub fn split_script(script: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts: Vec<(String, String)> = Vec::new();
    for (number, line) in script.lines().enumerate() {
        if let Some(node) = line.trim().strip_prefix("-- node:") {
            parts.push((node.trim().to_owned(), String::new()));
        } else if let Some((_, sql)) = parts.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        } else if !line.trim().is_empty() && !line.trim().starts_with("--") {
            return Err(format!(
                "line {}: statements before the first `-- node: <name>` line belong to no node",
                number + 1
            ));
        }
    }
    Ok(parts)
}

pub use crate::model::{GID_PREFIX, parse_gid, participant_gid};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TxnError {
    #[error("node {node}: {}", crate::pg::server_message(source))]
    #[diagnostic(code(dbtopo::txn::participant))]
    Participant {
        node: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the coordinator could not record the decision: {}",
        crate::pg::server_message(source)
    )]
    #[diagnostic(
        code(dbtopo::txn::decision),
        help(
            "nothing was committed: the participants are rolled back now, or by the next \
             `dbtopo apply` when the coordinator could not be reached"
        )
    )]
    Decision {
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the coordinator did not answer while the decision was recorded: {}",
        crate::pg::server_message(source)
    )]
    #[diagnostic(
        code(dbtopo::txn::unsettled),
        help(
            "whether it committed is known only to the coordinator's decision record: the next \
             `dbtopo apply` finishes every participant as the record says (rolled back when \
             nothing was recorded)"
        )
    )]
    Unsettled {
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "committed, but node {node} has not confirmed: {}",
        crate::pg::server_message(source)
    )]
    #[diagnostic(
        code(dbtopo::txn::in_doubt),
        help(
            "the decision to commit is recorded; the next `dbtopo apply` commits the prepared \
             transaction {gid} on {node}"
        )
    )]
    InDoubt {
        node: String,
        gid: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// One node taking part: its name and a connection to its database (kept by the caller, so
/// one connection serves many transactions).
pub struct Participant<'a> {
    pub node: String,
    pub client: &'a Client,
}

/// A transaction open on several nodes.
pub struct DistributedTransaction<'a> {
    id: String,
    participants: Vec<Participant<'a>>,
}

/// A fresh global id: time and randomness, short enough for PostgreSQL's 200-byte gid.
fn new_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:08x}", rand::random::<u32>())
}

impl<'a> DistributedTransaction<'a> {
    /// BEGIN on every participant.
    pub async fn begin(participants: Vec<Participant<'a>>) -> Result<Self, TxnError> {
        for p in &participants {
            p.client
                .batch_execute("BEGIN")
                .await
                .map_err(|source| TxnError::Participant {
                    node: p.node.clone(),
                    source,
                })?;
        }
        Ok(DistributedTransaction {
            id: new_id(),
            participants,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The connection of `node`, to do the work on.
    pub fn client(&self, node: &str) -> Option<&'a Client> {
        self.participants
            .iter()
            .find(|p| p.node == node)
            .map(|p| p.client)
    }

    /// Prepare everywhere, record the decision on `coordinator`, commit everywhere. Any
    /// failure before the decision rolls every participant back.
    pub async fn commit(self, coordinator: &Client) -> Result<(), TxnError> {
        self.prepare(coordinator).await?.finish(coordinator).await
    }

    /// The first phase and the decision: prepared everywhere, commit recorded. What is left,
    /// [`Decided::finish`], can also be done by recovery (the next apply) if this process
    /// stops here.
    pub async fn prepare(self, coordinator: &Client) -> Result<Decided<'a>, TxnError> {
        let mut prepared = Vec::new();
        for p in &self.participants {
            let gid = participant_gid(&self.id, &p.node);
            match p
                .client
                .batch_execute(&format!("PREPARE TRANSACTION {}", literal(&gid)))
                .await
            {
                Ok(()) => prepared.push(p),
                Err(source) => {
                    // Recorded first, so a node that misses the rollback (it stopped) has its
                    // prepared transaction rolled back by the next apply at once.
                    let _ = record(coordinator, &self.id, "rollback").await;
                    self.abort(&prepared).await;
                    return Err(TxnError::Participant {
                        node: p.node.clone(),
                        source,
                    });
                }
            }
        }
        if let Err(source) = record(coordinator, &self.id, "commit").await {
            // The insert may have landed all the same (a connection lost on its answer): the
            // record alone decides. Settle it as rollback unless it says commit.
            let settled = decided(coordinator, &self.id).await;
            match settled.as_deref() {
                Ok("commit") => {}
                Ok(_) => {
                    self.abort(&prepared).await;
                    return Err(TxnError::Decision { source });
                }
                // The record cannot be read: the next apply finishes every participant as it
                // says (rolled back when nothing was recorded). Until then nobody knows.
                Err(_) => return Err(TxnError::Unsettled { source }),
            }
        }
        Ok(Decided {
            id: self.id,
            participants: self.participants,
        })
    }
}

/// Prepared on every participant, with the decision to commit recorded.
pub struct Decided<'a> {
    id: String,
    participants: Vec<Participant<'a>>,
}

impl Decided<'_> {
    /// COMMIT PREPARED everywhere, then forget the decision.
    pub async fn finish(self, coordinator: &Client) -> Result<(), TxnError> {
        let mut in_doubt = None;
        for p in &self.participants {
            let gid = participant_gid(&self.id, &p.node);
            // Gone already: an apply finished it meanwhile, as the record says (commit).
            if let Err(source) = p
                .client
                .batch_execute(&format!("COMMIT PREPARED {}", literal(&gid)))
                .await
                && source.code() != Some(&SqlState::UNDEFINED_OBJECT)
                && in_doubt.is_none()
            {
                in_doubt = Some(TxnError::InDoubt {
                    node: p.node.clone(),
                    gid,
                    source,
                });
            }
        }
        match in_doubt {
            Some(error) => Err(error),
            None => {
                // Every node committed: the record is no longer needed.
                let _ = coordinator
                    .execute(
                        "DELETE FROM dbtopo.txn_decisions WHERE gid = $1",
                        &[&self.id],
                    )
                    .await;
                Ok(())
            }
        }
    }
}

impl<'a> DistributedTransaction<'a> {
    /// Roll back everywhere (nothing was prepared yet).
    pub async fn rollback(self) {
        self.abort(&[]).await;
    }

    /// ROLLBACK PREPARED where prepared, ROLLBACK elsewhere; errors are left to recovery (a
    /// prepared transaction without a commit decision is rolled back by the next apply).
    async fn abort(&self, prepared: &[&Participant<'a>]) {
        for p in &self.participants {
            let sql = if prepared.iter().any(|q| q.node == p.node) {
                format!(
                    "ROLLBACK PREPARED {}",
                    literal(&participant_gid(&self.id, &p.node))
                )
            } else {
                "ROLLBACK".to_owned()
            };
            let _ = p.client.batch_execute(&sql).await;
        }
    }
}

/// The outcome the record holds for `id`, a rollback recorded first when it holds none: from
/// then on nothing can commit the transaction.
async fn decided(coordinator: &Client, id: &str) -> Result<String, tokio_postgres::Error> {
    coordinator
        .query_one(
            "WITH settled AS (INSERT INTO dbtopo.txn_decisions (gid, outcome)
                              VALUES ($1, 'rollback') ON CONFLICT (gid) DO NOTHING)
             SELECT coalesce((SELECT outcome FROM dbtopo.txn_decisions WHERE gid = $1),
                             'rollback')",
            &[&id],
        )
        .await
        .map(|row| row.get(0))
}

/// Finish transaction `id`, whose commit was cut off (a participant's server went away), as
/// its record says, on connections made since: committed everywhere when a commit was
/// recorded, otherwise rolled back everywhere. A participant without the prepared transaction
/// has nothing left to finish (it never prepared, or it was finished already). Its prepared
/// transactions hold row locks, so the caller need not wait for the next apply. True when
/// it committed.
pub async fn settle(
    id: &str,
    coordinator: &Client,
    participants: &[Participant<'_>],
) -> Result<bool, TxnError> {
    let commit = decided(coordinator, id)
        .await
        .map_err(|source| TxnError::Decision { source })?
        == "commit";
    let verb = if commit { "COMMIT" } else { "ROLLBACK" };
    for p in participants {
        let gid = literal(&participant_gid(id, &p.node));
        match p
            .client
            .batch_execute(&format!("{verb} PREPARED {gid}"))
            .await
        {
            Err(source) if source.code() != Some(&SqlState::UNDEFINED_OBJECT) => {
                return Err(TxnError::Participant {
                    node: p.node.clone(),
                    source,
                });
            }
            _ => {}
        }
    }
    let _ = coordinator
        .execute("DELETE FROM dbtopo.txn_decisions WHERE gid = $1", &[&id])
        .await;
    Ok(commit)
}

/// Make the decision table on the coordinator when it is missing.
pub async fn ensure_decisions(coordinator: &Client) -> Result<(), TxnError> {
    coordinator
        .batch_execute(DECISIONS_DDL)
        .await
        .map_err(|source| TxnError::Decision { source })
}

/// Record the decision durably (its own transaction on the coordinator).
async fn record(
    coordinator: &Client,
    id: &str,
    outcome: &str,
) -> Result<(), tokio_postgres::Error> {
    coordinator
        .execute(
            "INSERT INTO dbtopo.txn_decisions (gid, outcome) VALUES ($1, $2)",
            &[&id, &outcome],
        )
        .await
        .map(|_| ())
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
