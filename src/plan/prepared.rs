//! Prepared transactions left in doubt, in the plan: committed or rolled back as the decision
//! record says; a schema change on their node waits for them (their locks would block it).

use super::diff::node_address;
use super::schema::schema_address;
use super::{Action, Address, Change, DeferReason, Deferral, Operation};
use std::time::Duration;

use serde::Serialize;

use crate::observed::Prepared;

/// A prepared transaction without a decision is rolled back once it is this old: the
/// coordinator records its decision right after preparing, so by then it has stopped.
pub const UNDECIDED_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Resolution {
    Commit,
    Rollback,
    /// Too young to judge: its coordinator may be recording the decision right now.
    Wait,
}

/// What to do with a prepared transaction, given the decision recorded for its global id.
pub fn resolve(decision: Option<&str>, age: Duration) -> Resolution {
    match decision {
        Some("commit") => Resolution::Commit,
        Some(_) => Resolution::Rollback,
        None if age >= UNDECIDED_TIMEOUT => Resolution::Rollback,
        None => Resolution::Wait,
    }
}

/// The statement that finishes `prepared` as resolved.
pub fn finish_sql(prepared: &Prepared, resolution: Resolution) -> Option<String> {
    let gid = format!("'{}'", prepared.gid.replace('\'', "''"));
    match resolution {
        Resolution::Commit => Some(format!("COMMIT PREPARED {gid};")),
        Resolution::Rollback => Some(format!("ROLLBACK PREPARED {gid};")),
        Resolution::Wait => None,
    }
}

pub fn address(prepared: &Prepared) -> Address {
    Address::PreparedXact {
        node: prepared.node.clone(),
        gid: prepared.gid.clone(),
    }
}

/// The changes that finish the transactions, and the warnings for those left alone. Schema
/// changes of a node run after its transactions are finished; when one must be left alone,
/// the node's schema change is held back with a warning rather than blocking on its locks.
pub fn changes(
    found: &[(Prepared, Resolution, u16)],
    others: &mut Vec<Change>,
) -> (Vec<Change>, Vec<String>, Vec<Deferral>) {
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut held_back = Vec::new();
    for (prepared, resolution, host_port) in found {
        let Some(sql) = finish_sql(prepared, *resolution) else {
            warnings.push(format!(
                "prepared transaction {} on node {} is {:.0?} old and has no decision yet: its \
                 coordinator may still be finishing it; it is left alone, and rolled back once \
                 {:?} old",
                prepared.gid, prepared.node, prepared.age, UNDECIDED_TIMEOUT
            ));
            let schema = schema_address(&prepared.node);
            if let Some(held) = others.iter().position(|c| c.address == schema) {
                others.remove(held);
                held_back.push(Deferral {
                    address: schema.clone(),
                    reason: DeferReason::InDoubt {
                        gid: prepared.gid.clone(),
                    },
                });
                warnings.push(format!(
                    "the schema change of node {} is held back until prepared transaction {} is \
                     finished (it holds locks the change would wait for)",
                    prepared.node, prepared.gid
                ));
            }
            continue;
        };
        let (action, reason) = match resolution {
            Resolution::Commit => (
                Action::Update,
                "in doubt: the coordinator recorded the decision to commit".to_owned(),
            ),
            _ => (
                Action::Delete,
                "in doubt with no decision to commit: rolled back".to_owned(),
            ),
        };
        let address = address(prepared);
        for other in others.iter_mut() {
            if other.address == schema_address(&prepared.node) {
                other.after.push(address.clone());
            }
        }
        changes.push(Change {
            address,
            action,
            reason,
            details: Vec::new(),
            after: vec![node_address(&prepared.node)],
            operation: Operation::RunSql {
                node: prepared.node.clone(),
                host_port: *host_port,
                database: prepared.database.clone(),
                statements: vec![sql],
                transactional: false,
            },
        });
    }
    (changes, warnings, held_back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_commit_commits_and_an_old_undecided_one_rolls_back() {
        let young = Duration::from_secs(2);
        let old = UNDECIDED_TIMEOUT + Duration::from_secs(1);
        assert_eq!(resolve(Some("commit"), young), Resolution::Commit);
        assert_eq!(resolve(Some("rollback"), young), Resolution::Rollback);
        assert_eq!(resolve(None, old), Resolution::Rollback);
        assert_eq!(resolve(None, young), Resolution::Wait);
        assert_eq!(
            crate::model::parse_gid("dbtopo:18f2-0a:shard-eu"),
            Some(("18f2-0a", "shard-eu"))
        );
        let prepared = Prepared {
            node: "shard-eu".into(),
            gid: "dbtopo:x:shard-eu".into(),
            database: "shop".into(),
            age: young,
        };
        assert_eq!(
            finish_sql(&prepared, Resolution::Commit).as_deref(),
            Some("COMMIT PREPARED 'dbtopo:x:shard-eu';")
        );
        assert_eq!(finish_sql(&prepared, Resolution::Wait), None);
    }
}
