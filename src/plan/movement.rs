//! Moving rows when a horizontal part changes node or predicate: copy, count, switch, then
//! drop the old copy.
//!
//! Parts are named after their rows (`orders_eu`), so a part that moves keeps its name on its
//! new node and a part whose predicate changes gets a new name: old and new rows never share a
//! table. One table's movement is one transaction on the coordinator: the partitions that go
//! away are detached and kept under a `dbtopo_moved_` name, the partitioned table is made again
//! with its new partitions, the receiving parts are emptied (they can only hold what an
//! unfinished movement left), every row of the old parts is inserted through the new table
//! (the coordinator routes each to its part), and the total is compared with the count taken
//! first; a difference rolls everything back. Only once that has committed are the old copies
//! dropped, each by a change of its own. The kept `dbtopo_moved_` table marks an old copy that
//! still waits to be dropped, so an apply stopped in between is finished by the next one.

use std::collections::{BTreeMap, BTreeSet};

use crate::fragments::coordinator::{CoordinatorObject, Found, ObjectKind, PartLocation};
use crate::hashing::short_hash;
use crate::schema::ddl::quote;

use super::{Action, Address, Change, Detail, Effect, Operation};

pub use crate::fragments::coordinator::MOVED_PREFIX;

/// One table's movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub table: String,
    /// The partitions that go away: their rows are copied into the new ones.
    pub leaving: Vec<LeavingPart>,
    /// The new partitions that receive those rows.
    pub receiving: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingPart {
    pub name: String,
    /// The name it is kept under until its old copy is dropped.
    pub marker: String,
    pub location: PartLocation,
}

/// What the coordinator and the nodes are: to name where rows are, and to reach them.
pub struct Nodes<'a> {
    pub coordinator: &'a str,
    /// Every node of the topology by the name of its foreign server.
    pub by_server: BTreeMap<String, String>,
    /// Host ports by node.
    pub ports: BTreeMap<String, u16>,
    pub database: &'a str,
    /// The tables each fragment node should hold (an old copy still wanted is not dropped).
    pub wanted: BTreeMap<String, BTreeSet<String>>,
    /// Each replica's node, as the topology declares them.
    pub upstream: BTreeMap<String, String>,
}

impl Nodes<'_> {
    /// Whether a part found at `current` holds the rows it should hold at `wanted`: the same
    /// place, or the same table on a server promoted in place of the one found, which now
    /// streams from it (its tables are the promoted server's, by replication).
    pub fn same_rows(&self, current: &PartLocation, wanted: &PartLocation) -> bool {
        match (current, wanted) {
            (
                PartLocation::Remote { server, table },
                PartLocation::Remote {
                    server: wanted_server,
                    table: wanted_table,
                },
            ) if table == wanted_table => {
                server == wanted_server
                    || self
                        .by_server
                        .get(server)
                        .and_then(|node| self.upstream.get(node))
                        .is_some_and(|node| self.by_server.get(wanted_server) == Some(node))
            }
            _ => current == wanted,
        }
    }

    fn describe(&self, location: &PartLocation) -> String {
        match location {
            PartLocation::Local => format!("on {} (the coordinator)", self.coordinator),
            PartLocation::Remote { server, table } => match self.by_server.get(server) {
                Some(node) => format!("on {node} (table {table})"),
                None => format!("on server {server} (table {table})"),
            },
        }
    }
}

/// The name an old part is kept under: short, so PostgreSQL never truncates it, and unique to
/// the part and where it was.
pub fn marker_name(table: &str, part: &str, location: &PartLocation) -> String {
    let (server, remote) = match location {
        PartLocation::Local => ("", ""),
        PartLocation::Remote { server, table } => (server.as_str(), table.as_str()),
    };
    format!(
        "{MOVED_PREFIX}{}",
        &short_hash(&[table, part, server, remote])[..12]
    )
}

/// The movement a partitioned table needs, or none when every current partition stays (same
/// name, same place, same partition key). Refused, with the reason, when rows could be lost.
pub fn movement(
    object: &CoordinatorObject,
    found: &Found,
    nodes: &Nodes<'_>,
) -> Result<Option<Movement>, String> {
    if object.kind != ObjectKind::PartitionedTable
        || !matches!(found.tables.get(&object.name), Some(('p', _)))
    {
        return Ok(None);
    }
    let Some(current) = found.partitions.get(&object.name) else {
        return Ok(None);
    };
    let same_key = found.partition_keys.get(&object.name) == object.partition_by.as_ref();
    let kept = |name: &String, location: &PartLocation| {
        same_key
            && object
                .partitions
                .get(name)
                .is_some_and(|wanted| nodes.same_rows(location, wanted))
    };
    let leaving: Vec<LeavingPart> = current
        .iter()
        .filter(|(name, location)| !kept(name, location))
        .map(|(name, location)| LeavingPart {
            name: name.clone(),
            marker: marker_name(&object.name, name, location),
            location: location.clone(),
        })
        .collect();
    if leaving.is_empty() {
        return Ok(None);
    }
    let receiving: Vec<(&String, &PartLocation)> = object
        .partitions
        .iter()
        .filter(|(name, location)| {
            !same_key
                || !current
                    .get(*name)
                    .is_some_and(|found| nodes.same_rows(found, location))
        })
        .collect();
    for part in &leaving {
        if let PartLocation::Remote { server, .. } = &part.location
            && !nodes.by_server.contains_key(server)
        {
            return Err(format!(
                "part {} of table {} is {}, a node the topology no longer has: keep the node \
                 in the topology until an apply has moved its rows",
                part.name,
                object.name,
                nodes.describe(&part.location)
            ));
        }
        let same_table =
            |(name, location): &&(&String, &PartLocation)| match (&part.location, location) {
                (PartLocation::Local, PartLocation::Local) => **name == part.name,
                (remote, other) => remote == *other,
            };
        if let Some((name, _)) = receiving.iter().find(same_table) {
            return Err(format!(
                "part {name} of table {} would receive its rows in the table that holds them now \
                 ({}), whose rows belong to part {} under the current partitioning: change the \
                 partition key, or the parts, in two applies",
                object.name,
                nodes.describe(&part.location),
                part.name
            ));
        }
    }
    Ok(Some(Movement {
        table: object.name.clone(),
        leaving,
        receiving: receiving
            .into_iter()
            .map(|(name, _)| name.clone())
            .collect(),
    }))
}

/// The statements of a movement, in one transaction on the coordinator.
pub fn statements(object: &CoordinatorObject, movement: &Movement) -> Vec<String> {
    let table = quote(&object.name);
    let mut sql = vec![
        format!("LOCK TABLE ONLY {table} IN ACCESS EXCLUSIVE MODE;"),
        format!(
            "SELECT set_config('dbtopo.rows_before', (SELECT count(*) FROM {table})::text, true);"
        ),
    ];
    for part in &movement.leaving {
        let kind = match part.location {
            PartLocation::Local => "TABLE",
            PartLocation::Remote { .. } => "FOREIGN TABLE",
        };
        sql.push(format!(
            "ALTER TABLE {table} DETACH PARTITION {};",
            quote(&part.name)
        ));
        sql.push(format!(
            "ALTER {kind} {} RENAME TO {};",
            quote(&part.name),
            quote(&part.marker)
        ));
        sql.push(format!(
            "COMMENT ON {kind} {} IS 'dbtopo: the rows of part {} of table {}, moved; dropped once copied';",
            quote(&part.marker),
            part.name.replace('\'', "''"),
            object.name.replace('\'', "''")
        ));
    }
    sql.push(object.drop_statement());
    sql.extend(object.create.iter().cloned());
    if !movement.receiving.is_empty() {
        sql.push(format!(
            "TRUNCATE {};",
            movement
                .receiving
                .iter()
                .map(|p| quote(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for part in &movement.leaving {
        sql.push(format!(
            "INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM {};",
            quote(&part.marker)
        ));
    }
    sql.push(format!(
        "DO $dbtopo$ DECLARE before bigint := current_setting('dbtopo.rows_before')::bigint; after bigint; BEGIN SELECT count(*) INTO after FROM {table}; IF after <> before THEN RAISE EXCEPTION 'moving the rows of table %: % rows before, % after; nothing was changed', {}, before, after; END IF; END $dbtopo$;",
        quote_literal(&object.name)
    ));
    sql.extend(object.finish.iter().cloned());
    sql.push(object.comment_statement());
    sql
}

/// The plan's words for a movement: why the table is made again, and where each part goes.
pub fn describe(
    object: &CoordinatorObject,
    movement: &Movement,
    nodes: &Nodes<'_>,
) -> (String, Vec<Detail>) {
    let mut details: Vec<Detail> = movement
        .leaving
        .iter()
        .map(|part| {
            Detail::new(
                format!("part {}", part.name),
                Some(nodes.describe(&part.location)),
                None,
            )
            .effect(Effect::MoveRows)
        })
        .collect();
    details.extend(movement.receiving.iter().filter_map(|name| {
        let location = object.partitions.get(name)?;
        Some(Detail::new(
            format!("part {name}"),
            None,
            Some(nodes.describe(location)),
        ))
    }));
    let reason = format!(
        "its parts move: the rows of {} are copied into the new parts and counted in one \
         transaction (a different count rolls it back), then the old copies are dropped",
        movement
            .leaving
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    (reason, details)
}

/// Where old copies are dropped: one change per node table, then one per marker on the
/// coordinator. `planned` are this plan's movements (their copies are dropped after them);
/// `found` holds the markers an earlier apply left.
pub fn cleanup(
    planned: &[(Address, Movement)],
    found: Option<&Found>,
    nodes: &Nodes<'_>,
) -> Vec<Change> {
    let mut parts: Vec<(String, PartLocation, Option<Address>)> = Vec::new();
    for (address, movement) in planned {
        for part in &movement.leaving {
            parts.push((
                part.marker.clone(),
                part.location.clone(),
                Some(address.clone()),
            ));
        }
    }
    for (marker, location) in found.map(|f| &f.moved).into_iter().flatten() {
        if !parts.iter().any(|(m, _, _)| m == marker) {
            parts.push((marker.clone(), location.clone(), None));
        }
    }
    let coordinator_port = nodes.ports.get(nodes.coordinator).copied().unwrap_or(0);
    let mut changes = Vec::new();
    for (marker, location, movement) in parts {
        let mut after: Vec<Address> = movement.into_iter().collect();
        let drop_marker = match &location {
            PartLocation::Local => format!("DROP TABLE IF EXISTS {};", quote(&marker)),
            PartLocation::Remote { .. } => {
                format!("DROP FOREIGN TABLE IF EXISTS {};", quote(&marker))
            }
        };
        if let PartLocation::Remote { server, table } = &location
            && let Some(node) = nodes.by_server.get(server)
            && !nodes.wanted.get(node).is_some_and(|t| t.contains(table))
        {
            let address = Address::OldFragment {
                node: node.clone(),
                table: table.clone(),
            };
            changes.push(Change {
                address: address.clone(),
                action: Action::Delete,
                reason: "an old copy: its rows are copied to their new part and counted first"
                    .to_owned(),
                details: Vec::new(),
                after: after.clone(),
                operation: Operation::RunSql {
                    node: node.clone(),
                    host_port: nodes.ports.get(node).copied().unwrap_or(0),
                    database: nodes.database.to_owned(),
                    statements: vec![format!("DROP TABLE IF EXISTS {};", quote(table))],
                    transactional: true,
                },
            });
            after.push(address);
        }
        changes.push(Change {
            address: Address::MovedPart(marker.clone()),
            action: Action::Delete,
            reason: format!(
                "the coordinator's link to the old part {}, kept until that copy is dropped",
                nodes.describe(&location)
            ),
            details: Vec::new(),
            after,
            operation: Operation::RunSql {
                node: nodes.coordinator.to_owned(),
                host_port: coordinator_port,
                database: nodes.database.to_owned(),
                statements: vec![drop_marker],
                transactional: true,
            },
        });
    }
    changes
}

/// Node tables the schema diff must leave alone: the old copies of moving parts and of
/// earlier movements, dropped only by `cleanup` once their rows are safe.
pub fn held_tables(
    planned: &[(Address, Movement)],
    found: Option<&Found>,
    nodes: &Nodes<'_>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let leaving = planned.iter().flat_map(|(_, m)| {
        m.leaving
            .iter()
            .map(|p| (p.name.clone(), p.location.clone()))
    });
    let moved = found
        .map(|f| &f.moved)
        .into_iter()
        .flatten()
        .map(|(marker, location)| (marker.clone(), location.clone()));
    for (name, location) in leaving.chain(moved) {
        match location {
            PartLocation::Local => {
                held.entry(nodes.coordinator.to_owned())
                    .or_default()
                    .insert(name);
            }
            PartLocation::Remote { server, table } => {
                if let Some(node) = nodes.by_server.get(&server)
                    && !nodes.wanted.get(node).is_some_and(|t| t.contains(&table))
                {
                    held.entry(node.clone()).or_default().insert(table);
                }
            }
        }
    }
    held
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
