//! Following a node's role to whichever of its servers takes writes: a switchover moves it
//! to a replica, on its own port, while the workload runs. Orders a moving node failed before
//! anything committed are placed again; one whose commit it cut off is settled from the
//! coordinator's decision record, since its prepared transactions hold row locks.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{Connections, LOCK_TIMEOUT, Target, WorkloadError};
use crate::txn::{Participant, TxnError};

impl Target {
    /// A connection to whichever of `node`'s servers takes writes now (after a switchover,
    /// a replica of the topology the workload started with). Its statements wait at most
    /// [`LOCK_TIMEOUT`] for a row lock: an order stuck behind an undecided prepared
    /// transaction fails instead of waiting forever.
    pub async fn connect(&self, node: &str) -> Result<Client, WorkloadError> {
        let mut last = WorkloadError::Unreachable(node.to_owned());
        for &port in self.servers.get(node).into_iter().flatten() {
            match self.writable(port).await {
                Ok(Some(client)) => return Ok(client),
                Ok(None) => {}
                Err(source) => {
                    last = WorkloadError::Query {
                        node: node.to_owned(),
                        source,
                    }
                }
            }
        }
        Err(last)
    }

    /// A connection to the server on `port` if it takes writes (`None` if it is a standby or
    /// does not answer in time: a stopping container may accept and then say nothing).
    async fn writable(&self, port: u16) -> Result<Option<Client>, tokio_postgres::Error> {
        let client =
            crate::pg::connect_to(port, &self.password, &self.database, CONNECT_TIMEOUT).await?;
        let sql = format!(
            "SET lock_timeout = '{}ms'; SELECT pg_is_in_recovery()",
            LOCK_TIMEOUT.as_millis()
        );
        let asked = client.simple_query(&sql);
        let Ok(answer) = tokio::time::timeout(CONNECT_TIMEOUT, asked).await else {
            return Ok(None);
        };
        let standby = answer?.iter().any(
            |message| matches!(message, SimpleQueryMessage::Row(row) if row.get(0) == Some("t")),
        );
        Ok((!standby).then_some(client))
    }

    /// The node has other servers, one of which may take its role.
    fn can_move(&self, node: &str) -> bool {
        self.servers.get(node).is_some_and(|ports| ports.len() > 1)
    }
}

/// How long a connection's startup, and its first answer, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an order keeps being placed again while a node's role moves to another server.
pub const FOLLOW_DEADLINE: Duration = Duration::from_secs(30);

/// The server of a node that can move stopped taking writes or went away before the order
/// committed anything: the node's role may have moved to another of its servers (a
/// switchover), so the order is worth placing again there.
pub(super) fn moved(target: &Target, error: &WorkloadError) -> bool {
    match error {
        WorkloadError::Unreachable(node) => target.can_move(node),
        WorkloadError::Query { node, source }
        | WorkloadError::Txn(TxnError::Participant { node, source }) => {
            went_away(target, node, source)
        }
        WorkloadError::Txn(TxnError::Decision { source }) => {
            went_away(target, &target.coordinator, source)
        }
        _ => false,
    }
}

/// `node` can move and its server refused a write, is shutting down or is gone.
fn went_away(target: &Target, node: &str, source: &tokio_postgres::Error) -> bool {
    target.can_move(node)
        && (source.as_db_error().is_none()
            || matches!(
                source.code(),
                Some(
                    &SqlState::READ_ONLY_SQL_TRANSACTION
                        | &SqlState::ADMIN_SHUTDOWN
                        | &SqlState::CRASH_SHUTDOWN
                        | &SqlState::CANNOT_CONNECT_NOW
                )
            ))
}

/// An order whose commit a moving node cut off: its transaction, order id and nodes.
#[derive(Debug)]
pub struct Cut {
    pub(super) id: String,
    pub(super) order_id: i64,
    pub(super) nodes: Vec<String>,
}

/// Finish a cut-off order as its decision record says, on fresh connections, retrying until
/// `deadline`; `None` when that passed (the next apply finishes it).
pub(super) async fn settle(
    target: &Target,
    connections: &mut Connections,
    cut: &Cut,
    deadline: Instant,
) -> Option<bool> {
    let mut pause = Duration::from_millis(50);
    loop {
        *connections = Connections::default();
        connections.refresh(target).await;
        let settled = async {
            let participants = cut
                .nodes
                .iter()
                .map(|node| {
                    Ok(Participant {
                        node: node.clone(),
                        client: connections.in_transaction(node)?,
                    })
                })
                .collect::<Result<Vec<_>, WorkloadError>>()?;
            let coordinator = connections.coordinator(target)?;
            Ok::<_, WorkloadError>(crate::txn::settle(&cut.id, coordinator, &participants).await?)
        }
        .await;
        if let Ok(committed) = settled {
            return Some(committed);
        }
        if Instant::now() + pause > deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The commit failed on a node that can move, because its server went away.
pub(super) fn cut_off(target: &Target, error: &TxnError) -> bool {
    let (node, source) = match error {
        TxnError::Participant { node, source } | TxnError::InDoubt { node, source, .. } => {
            (node, source)
        }
        TxnError::Decision { source } | TxnError::Unsettled { source } => {
            (&target.coordinator, source)
        }
    };
    went_away(target, node, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Desired, Manifests};
    use crate::secrets::Secrets;

    /// A node is reached through its own server first, then its replicas': the servers a
    /// switchover can move its role to. A node without replicas has nowhere to move.
    #[test]
    fn each_node_is_reached_through_the_servers_of_its_cluster() {
        let topology = crate::topology::load(std::path::Path::new("topology.yaml"))
            .expect("the default topology loads")
            .with_profiles(&[]);
        let desired = Desired::build(&topology, &Manifests::default()).expect("desired");
        let target = Target::from_desired(&desired, &Secrets::default()).expect("a schema");
        assert_eq!(target.servers["primary"], [5433, 5434]);
        assert_eq!(target.servers["shard-eu"], [5435]);
        assert!(!target.servers.contains_key("primary-replica"));
        assert!(target.can_move("primary") && !target.can_move("shard-eu"));
    }
}
