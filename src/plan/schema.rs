//! Schema changes in the plan: one change per node that receives the schema, carrying the
//! SQL steps the diff found, in the order they run.

use std::collections::BTreeMap;

use crate::schema::{self, NodeSchema, Schema, Step};
use crate::topology::SchemaTarget;

use super::diff::node_address;
use super::{Action, Address, Change, DeferReason, Deferral, Operation};

pub fn schema_address(node: &str) -> Address {
    Address::Schema(node.to_owned())
}

/// One node's situation: its host port, what was observed of its database, and the tables
/// it should hold when its server is new.
pub struct NodeInput<'a> {
    pub node: &'a str,
    pub host_port: u16,
    pub observed: &'a NodeSchema,
    pub fresh: &'a Schema,
    /// Tables renamed before the diff's steps (see `renames`).
    pub renames: &'a [Step],
}

/// The schema changes of every target node, and the nodes whose comparison must wait until
/// their server runs.
pub fn changes(target: &SchemaTarget, nodes: &[NodeInput<'_>]) -> (Vec<Change>, Vec<Deferral>) {
    let mut changes = Vec::new();
    let mut deferred = Vec::new();
    for input in nodes {
        let (database_exists, steps, row_counts) = match input.observed {
            NodeSchema::Unknown => {
                deferred.push(Deferral {
                    address: schema_address(input.node),
                    reason: DeferReason::NotAnswering {
                        node: input.node.to_owned(),
                    },
                });
                continue;
            }
            NodeSchema::Fresh => (
                false,
                schema::diff::diff(&Schema::default(), input.fresh, &Default::default()),
                BTreeMap::new(),
            ),
            NodeSchema::Observed(observed) => (
                observed.database_exists,
                schema::diff::diff(
                    &observed.current,
                    &observed.desired,
                    &observed.invalid_indexes,
                ),
                observed.row_counts.clone(),
            ),
        };
        if database_exists && steps.is_empty() && input.renames.is_empty() {
            continue;
        }
        let steps = with_row_counts(
            input.renames.iter().cloned().chain(steps).collect(),
            &row_counts,
        );
        let (action, reason) = if database_exists && !input.renames.is_empty() {
            (
                Action::Update,
                format!(
                    "database \"{}\" differs from {}: the column groups the coordinator keeps \
                     are named after its node, and it was promoted in place of another",
                    target.database, target.file
                ),
            )
        } else if database_exists {
            (
                Action::Update,
                format!(
                    "database \"{}\" differs from {}",
                    target.database, target.file
                ),
            )
        } else {
            (
                Action::Create,
                format!(
                    "database \"{}\" does not exist yet; {} describes its tables",
                    target.database, target.file
                ),
            )
        };
        changes.push(Change {
            address: schema_address(input.node),
            action,
            reason,
            details: Vec::new(),
            after: vec![node_address(input.node)],
            operation: Operation::ApplySchema {
                node: input.node.to_owned(),
                host_port: input.host_port,
                database: target.database.clone(),
                create_database: !database_exists,
                steps,
            },
        });
    }
    (changes, deferred)
}

/// Say how many rows each destructive step puts at risk.
fn with_row_counts(steps: Vec<Step>, row_counts: &BTreeMap<String, i64>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|mut step| {
            if let (Some(why), Some(rows)) = (&step.destroys, row_counts.get(&step.table)) {
                let noun = if *rows == 1 { "row" } else { "rows" };
                step.destroys = Some(format!("{why}; table {} holds {rows} {noun}", step.table));
            }
            step
        })
        .collect()
}
