//! The column group the coordinator keeps of a vertically fragmented table is named after the
//! coordinator's node (`users_primary`). Once the coordinator's replica is promoted in its
//! place, the promoted server holds that group under the old node's name: it is renamed, with
//! its constraints and indexes, instead of being dropped with its rows and made again empty.

use std::collections::BTreeMap;

use crate::desired::{Desired, DesiredFragments};
use crate::schema::ddl::quote;
use crate::schema::{NodeSchema, Schema, Step, StepAction};

/// The renames the coordinator's tables need, first in its schema change; `found` is changed
/// to what it holds after them, so the diff compares the rest.
pub fn column_groups(
    desired: &Desired,
    fragments: &DesiredFragments,
    found: &mut BTreeMap<String, NodeSchema>,
) -> Vec<Step> {
    let coordinator = &fragments.coordinator;
    let Some(NodeSchema::Observed(observed)) = found.get_mut(coordinator) else {
        return Vec::new();
    };
    // The servers that may have been the coordinator: those that now stream from it.
    let former: Vec<&str> = desired
        .state
        .servers
        .values()
        .filter(|s| s.role.upstream() == Some(coordinator.as_str()))
        .map(|s| s.node.as_str())
        .collect();
    let mut steps = Vec::new();
    for vertical in &fragments.placement.vertical {
        for part in vertical.parts.iter().filter(|p| p.local) {
            if observed.current.tables.contains_key(&part.name) {
                continue;
            }
            let table = &vertical.table.name;
            let Some(old) = former
                .iter()
                .map(|node| format!("{table}_{}", node.replace('-', "_")))
                .find(|old| {
                    observed.current.tables.contains_key(old)
                        && !observed.desired.tables.contains_key(old)
                })
            else {
                continue;
            };
            steps.extend(rename(&mut observed.current, &old, &part.name));
            if let Some(rows) = observed.row_counts.remove(&old) {
                observed.row_counts.insert(part.name.clone(), rows);
            }
        }
    }
    steps
}

/// Rename table `old` to `new` in `schema`, with the constraints and indexes named after it.
fn rename(schema: &mut Schema, old: &str, new: &str) -> Vec<Step> {
    let Some(mut table) = schema.tables.remove(old) else {
        return Vec::new();
    };
    let renamed = |name: &str| name.strip_prefix(old).map(|rest| format!("{new}{rest}"));
    let step = |object: String, sql: String| Step {
        object,
        action: StepAction::Alter,
        sql,
        table: new.to_owned(),
        concurrent: false,
        destroys: None,
        origin: None,
    };
    let mut steps = vec![step(
        format!("table {old}"),
        format!("ALTER TABLE {} RENAME TO {};", quote(old), quote(new)),
    )];
    table.name = new.to_owned();
    let constraints = table
        .primary_key
        .iter_mut()
        .map(|k| &mut k.name)
        .chain(table.uniques.iter_mut().map(|k| &mut k.name))
        .chain(table.checks.iter_mut().map(|c| &mut c.name))
        .chain(table.other_constraints.iter_mut().map(|c| &mut c.name));
    for name in constraints {
        if let Some(to) = renamed(name) {
            steps.push(step(
                format!("constraint {new}.{name}"),
                format!(
                    "ALTER TABLE {} RENAME CONSTRAINT {} TO {};",
                    quote(new),
                    quote(name),
                    quote(&to)
                ),
            ));
            *name = to;
        }
    }
    schema.tables.insert(new.to_owned(), table);
    let indexes: Vec<String> = schema
        .indexes
        .values()
        .filter(|i| i.table == old)
        .map(|i| i.name.clone())
        .collect();
    for name in indexes {
        let Some(mut index) = schema.indexes.remove(&name) else {
            continue;
        };
        index.table = new.to_owned();
        if let Some(to) = renamed(&name) {
            steps.push(step(
                format!("index {name}"),
                format!("ALTER INDEX {} RENAME TO {};", quote(&name), quote(&to)),
            ));
            index.name = to;
        }
        schema.indexes.insert(index.name.clone(), index);
    }
    steps
}
