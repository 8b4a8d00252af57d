//! Prepared transactions left in doubt, in the plan: committed or rolled back as the decision
//! record says; a schema change on their node waits for them (their locks would block it).

use super::diff::node_address;
use super::schema::schema_address;
use super::{Action, Change, Operation};
use crate::txn::recovery::{Prepared, Resolution, finish_sql};

pub fn address(prepared: &Prepared) -> String {
    format!("prepared_xact.{}.{}", prepared.node, prepared.gid)
}

/// The changes that finish the transactions, and the warnings for those left alone. Schema
/// changes of a node run after its transactions are finished; when one must be left alone,
/// the node's schema change is held back with a warning rather than blocking on its locks.
pub fn changes(
    found: &[(Prepared, Resolution, u16)],
    others: &mut Vec<Change>,
) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for (prepared, resolution, host_port) in found {
        let Some(sql) = finish_sql(prepared, *resolution) else {
            warnings.push(format!(
                "prepared transaction {} on node {} is {:.0?} old and has no decision yet: its \
                 coordinator may still be finishing it; it is left alone, and rolled back once \
                 {:?} old",
                prepared.gid,
                prepared.node,
                prepared.age,
                crate::txn::recovery::UNDECIDED_TIMEOUT
            ));
            let schema = schema_address(&prepared.node);
            if let Some(held) = others.iter().position(|c| c.address == schema) {
                others.remove(held);
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
    (changes, warnings)
}
