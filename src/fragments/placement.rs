//! Where each table lives once fragmented: the tables each fragment node holds, the
//! coordinator's own tables, and the coordinator objects that reach the fragments.
//!
//! Pure. Horizontal fragments become, on each fragment node, a real table with the logical
//! table's columns, keys and checks plus a CHECK stating the part's predicate; on the
//! coordinator, a partitioned table whose partitions are postgres_fdw foreign tables. Foreign
//! keys into or out of a fragmented table cannot be enforced across nodes and are left out.

use std::collections::{BTreeMap, BTreeSet};

use crate::schema::Schema;
use crate::schema::ddl::{self, quote};
use crate::schema::model::{Check, Index, Table};
use crate::topology::{Bound, DistributedIndex, Fragmentation, Fragments};

/// One horizontal part as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePartition {
    /// The foreign table on the coordinator.
    pub name: String,
    /// The node holding the rows, and the table's name there.
    pub node: String,
    pub remote_table: String,
    /// `FOR VALUES ...` or `DEFAULT`.
    pub bound: String,
    /// The rows the part takes, as the topology declares them.
    pub rows: Bound,
    /// Kept on the coordinator: an ordinary table attached as a partition.
    pub local: bool,
}

/// A part kept on the coordinator: a table of its own there (it holds rows, so the schema diff
/// manages it), attached to the partitioned table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPartition {
    pub table: String,
    pub name: String,
    pub key: String,
    pub bound: Bound,
    pub numeric: bool,
    /// Indexes declared in the topology for the table.
    pub indexes: Vec<Index>,
}

/// A horizontally fragmented table on the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionedTable {
    pub table: Table,
    /// `LIST (region)`, `RANGE (product_id)`, `HASH (user_id)`.
    pub partition_by: String,
    /// The column whose value picks the part.
    pub key: String,
    pub partitions: Vec<RemotePartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// The tables each fragment node holds (its fragments), by node.
    pub fragment_nodes: BTreeMap<String, Schema>,
    /// The horizontally fragmented tables, built on the coordinator.
    pub partitioned: Vec<PartitionedTable>,
    /// Nodes the coordinator reaches through postgres_fdw.
    pub servers: BTreeSet<String>,
    /// Reference tables each node receives a copy of, by node.
    pub references: BTreeMap<String, Vec<String>>,
    /// The vertically fragmented tables, joined back by a view on the coordinator.
    pub vertical: Vec<VerticalTable>,
    /// Horizontal parts kept on the coordinator.
    pub local_partitions: Vec<LocalPartition>,
}

/// A vertically fragmented table: the logical table (column order, types, defaults) and its
/// parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerticalTable {
    pub table: Table,
    pub key: String,
    pub parts: Vec<PlacedPart>,
    /// Indexes declared in the topology for the table.
    pub indexes: Vec<Index>,
}

/// Whether a column group holds every column `index` reads.
fn group_holds(table: &Table, part: &PlacedPart, index: &Index) -> bool {
    let words: BTreeSet<String> = index
        .columns
        .iter()
        .chain(&index.predicate)
        .flat_map(|text| identifiers(text))
        .collect();
    table
        .columns
        .iter()
        .filter(|c| words.contains(&c.name))
        .all(|c| part.columns.contains(&c.name))
}

/// One column group: on the coordinator a local table, elsewhere a foreign table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPart {
    pub node: String,
    /// The part's name on the coordinator (the local table, or the foreign table).
    pub name: String,
    /// The part's table on its node.
    pub remote_table: String,
    /// The key first, then the part's columns.
    pub columns: Vec<String>,
    pub local: bool,
}

/// The placement of `manifest`'s horizontally fragmented tables.
pub fn place(manifest: &Schema, fragments: &Fragments) -> Placement {
    let mut placement = Placement::default();
    for (name, fragmentation) in &fragments.tables {
        let (Some(table), Fragmentation::Horizontal { key, parts }) =
            (manifest.tables.get(name), fragmentation)
        else {
            continue;
        };
        let strategy = match parts.first().map(|p| &p.bound) {
            Some(Bound::Range { .. }) => "RANGE",
            Some(Bound::Hash { .. }) => "HASH",
            _ => "LIST",
        };
        let numeric = table
            .column(key)
            .is_some_and(|c| crate::schema::model::is_numeric_type(&c.data_type));
        let mut partitions = Vec::new();
        for part in parts {
            let remote_table = part_name(name, &part.bound);
            if part.node == fragments.coordinator {
                let local = format!("{remote_table}_local");
                placement.local_partitions.push(LocalPartition {
                    table: name.clone(),
                    name: local.clone(),
                    key: key.clone(),
                    bound: part.bound.clone(),
                    numeric,
                    indexes: fragments
                        .indexes
                        .iter()
                        .filter(|i| &i.table == name)
                        .map(|i| distributed_index(i, &local))
                        .collect(),
                });
                partitions.push(RemotePartition {
                    name: local.clone(),
                    node: part.node.clone(),
                    remote_table: local,
                    bound: bound_sql(&part.bound, numeric),
                    rows: part.bound.clone(),
                    local: true,
                });
                continue;
            }
            let fragment = fragment_table(table, &remote_table, key, &part.bound, numeric);
            let node_schema = placement
                .fragment_nodes
                .entry(part.node.clone())
                .or_default();
            node_schema.tables.insert(remote_table.clone(), fragment);
            // The manifest's indexes on the table are built on each fragment.
            for index in manifest.indexes.values().filter(|i| &i.table == name) {
                let mut index = index.clone();
                index.name = index.name.replacen(name.as_str(), &remote_table, 1);
                index.table = remote_table.clone();
                node_schema.indexes.insert(index.name.clone(), index);
            }
            placement.servers.insert(part.node.clone());
            partitions.push(RemotePartition {
                name: remote_table.clone(),
                node: part.node.clone(),
                remote_table,
                bound: bound_sql(&part.bound, numeric),
                rows: part.bound.clone(),
                local: false,
            });
        }
        for index in fragments.indexes.iter().filter(|i| &i.table == name) {
            for partition in partitions.iter().filter(|p| !p.local) {
                let schema = placement
                    .fragment_nodes
                    .get_mut(&partition.node)
                    .expect("every part's node holds its fragment");
                let index = distributed_index(index, &partition.remote_table);
                schema.indexes.insert(index.name.clone(), index);
            }
        }
        placement.partitioned.push(PartitionedTable {
            table: coordinator_table(table),
            partition_by: format!("{strategy} ({})", quote(key)),
            key: key.clone(),
            partitions,
        });
    }
    for (name, fragmentation) in &fragments.tables {
        let (Some(table), Fragmentation::Vertical { key, parts }) =
            (manifest.tables.get(name), fragmentation)
        else {
            continue;
        };
        let mut placed = Vec::new();
        for part in parts {
            let local = part.node == fragments.coordinator;
            let columns: Vec<String> = std::iter::once(key.clone())
                .chain(part.columns.iter().cloned())
                .collect();
            let coordinator_name = format!("{name}_{}", part.node.replace('-', "_"));
            let remote_table = if local {
                coordinator_name.clone()
            } else {
                name.clone()
            };
            if !local {
                let schema = placement
                    .fragment_nodes
                    .entry(part.node.clone())
                    .or_default();
                schema.tables.insert(
                    remote_table.clone(),
                    column_group(table, &remote_table, &columns),
                );
                placement.servers.insert(part.node.clone());
            }
            placed.push(PlacedPart {
                node: part.node.clone(),
                name: coordinator_name,
                remote_table,
                columns,
                local,
            });
        }
        // Indexes, the manifest's and the topology's, go to every column group holding all
        // the columns they read.
        let declared: Vec<Index> = fragments
            .indexes
            .iter()
            .filter(|i| &i.table == name)
            .map(|i| distributed_index(i, name))
            .collect();
        for part in placed.iter().filter(|p| !p.local) {
            let schema = placement
                .fragment_nodes
                .get_mut(&part.node)
                .expect("every remote part's node holds its group");
            for index in manifest
                .indexes
                .values()
                .filter(|i| &i.table == name)
                .chain(&declared)
                .filter(|i| group_holds(table, part, i))
            {
                let mut index = index.clone();
                index.table = part.remote_table.clone();
                schema.indexes.insert(index.name.clone(), index);
            }
        }
        placement.vertical.push(VerticalTable {
            table: table.clone(),
            key: key.clone(),
            parts: placed,
            indexes: declared,
        });
    }
    for (name, nodes) in &fragments.reference_tables {
        let Some(table) = manifest.tables.get(name) else {
            continue;
        };
        for node in nodes {
            let schema = placement.fragment_nodes.entry(node.clone()).or_default();
            schema.tables.insert(name.clone(), reference_copy(table));
            for index in manifest.indexes.values().filter(|i| &i.table == name) {
                schema.indexes.insert(index.name.clone(), index.clone());
            }
            placement
                .references
                .entry(node.clone())
                .or_default()
                .push(name.clone());
            placement.servers.insert(node.clone());
        }
    }
    placement
}

/// A column group of `table` named `name`: the key (its primary key) and the group's
/// columns, with the checks that only read them; no identity (ids come from the coordinator),
/// no foreign keys.
pub fn column_group(table: &Table, name: &str, columns: &[String]) -> Table {
    let mut group = table.clone();
    group.name = name.to_owned();
    group.columns.retain(|c| columns.contains(&c.name));
    for column in &mut group.columns {
        values_from_the_coordinator(column);
    }
    group.foreign_keys.clear();
    let rename = |constraint: &str| constraint.replacen(&table.name, name, 1);
    if let Some(pk) = &mut group.primary_key {
        pk.name = rename(&pk.name);
    }
    group
        .uniques
        .retain(|u| u.columns.iter().all(|c| columns.contains(c)));
    for unique in &mut group.uniques {
        unique.name = rename(&unique.name);
    }
    group.checks.retain(|check| {
        let words = identifiers(&check.expression);
        table
            .columns
            .iter()
            .filter(|c| words.contains(&c.name))
            .all(|c| columns.contains(&c.name))
    });
    for check in &mut group.checks {
        check.name = rename(&check.name);
    }
    group
}

/// The identifier-like words of an expression, to tell which columns a check reads.
pub(crate) fn identifiers(expression: &str) -> BTreeSet<String> {
    expression
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A column of a table whose rows the coordinator writes: an identity or serial column takes
/// the value the coordinator drew, so it has no sequence (nor a default that reads one).
fn values_from_the_coordinator(column: &mut crate::schema::model::Column) {
    if crate::schema::ddl::serial_sequence(column).is_some() {
        column.default = None;
    }
    if column.identity.take().is_some() || column.sequence.is_some() {
        column.not_null = true;
    }
    column.sequence = None;
}

/// A reference table's copy: its columns (values come from the coordinator, so no identity),
/// keys and checks. No foreign keys: the initial copy fills tables in no particular order.
fn reference_copy(table: &Table) -> Table {
    let mut copy = table.clone();
    copy.foreign_keys.clear();
    for column in &mut copy.columns {
        values_from_the_coordinator(column);
    }
    copy
}

/// A topology-declared index on one fragment, named as PostgreSQL would name it.
fn distributed_index(index: &DistributedIndex, table: &str) -> Index {
    let suffix = if index.unique { "key" } else { "idx" };
    Index {
        name: format!("{table}_{}_{suffix}", index.columns.join("_")),
        table: table.to_owned(),
        columns: index.columns.iter().map(|c| quote(c)).collect(),
        unique: index.unique,
        method: "btree".to_owned(),
        predicate: None,
        definition: None,
    }
}

/// The coordinator's own tables: the manifest without the fragmented tables, the foreign keys
/// that point at them, and their indexes; plus the column groups of vertically fragmented
/// tables that stay on the coordinator (derived from `schema`'s own table, so they are spelled
/// as `schema` is).
pub fn coordinator_schema(
    schema: &Schema,
    fragmented: &BTreeSet<String>,
    vertical: &[VerticalTable],
    locals: &[LocalPartition],
) -> Schema {
    let mut out = schema.clone();
    for local in locals {
        let Some(logical) = schema.tables.get(&local.table) else {
            continue;
        };
        // ATTACH PARTITION wants the parent's checks under their own names.
        let mut table = fragment_table(
            logical,
            &local.name,
            &local.key,
            &local.bound,
            local.numeric,
        );
        let parent_checks: BTreeSet<&str> =
            logical.checks.iter().map(|c| c.name.as_str()).collect();
        for (check, original) in table.checks.iter_mut().zip(&logical.checks) {
            if parent_checks.contains(original.name.as_str()) {
                check.name = original.name.clone();
            }
        }
        out.tables.insert(local.name.clone(), table);
        for index in schema.indexes.values().filter(|i| i.table == local.table) {
            let mut index = index.clone();
            index.name = index.name.replacen(&local.table, &local.name, 1);
            index.table = local.name.clone();
            out.indexes.insert(index.name.clone(), index);
        }
        for index in &local.indexes {
            out.indexes.insert(index.name.clone(), index.clone());
        }
    }
    for table in vertical {
        let Some(logical) = schema.tables.get(&table.table.name) else {
            continue;
        };
        for part in table.parts.iter().filter(|p| p.local) {
            out.tables.insert(
                part.name.clone(),
                column_group(logical, &part.name, &part.columns),
            );
            for index in schema
                .indexes
                .values()
                .filter(|i| i.table == logical.name)
                .chain(&table.indexes)
                .filter(|i| group_holds(logical, part, i))
            {
                let mut index = index.clone();
                index.name = index.name.replacen(&logical.name, &part.name, 1);
                index.table = part.name.clone();
                out.indexes.insert(index.name.clone(), index);
            }
        }
    }
    out.tables.retain(|name, _| !fragmented.contains(name));
    for table in out.tables.values_mut() {
        table
            .foreign_keys
            .retain(|fk| !fragmented.contains(&fk.referenced_table));
    }
    out.indexes
        .retain(|_, index| !fragmented.contains(&index.table));
    out
}

/// The name of the foreign server for `node`.
pub fn server_name(node: &str) -> String {
    format!("dbtopo_{}", node.replace('-', "_"))
}

/// The name of a horizontal part: the table's name and the part's bound (`orders_eu`,
/// `products_min_to_1000`, `users_hash_0_of_4`), on its node and on the coordinator (a part
/// kept on the coordinator adds `_local`). Naming parts by their rows, not their node, means a
/// part that moves keeps its name and a part whose rows change gets a new one, so the old rows
/// and the new never share a table while they are moved.
pub fn part_name(table: &str, bound: &Bound) -> String {
    let label = match bound {
        Bound::List { values } => values.join("_"),
        Bound::Range { from, to } => format!(
            "{}_to_{}",
            from.as_deref().unwrap_or("min"),
            to.as_deref().unwrap_or("max")
        ),
        Bound::Hash { modulus, remainder } => format!("hash_{remainder}_of_{modulus}"),
        Bound::Default => "default".to_owned(),
    };
    let mut clean = String::new();
    for c in label.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            clean.push(c);
        } else if !clean.ends_with('_') {
            clean.push('_');
        }
    }
    let clean = clean.trim_matches('_');
    let clean = if clean.is_empty() { "part" } else { clean };
    // Room for the suffixes PostgreSQL and dbtopo add (`_local`, `_fragment_check`, `_pkey`).
    const MAX: usize = 40;
    let name = format!("{table}_{clean}");
    if name.len() <= MAX {
        return name;
    }
    let hash = crate::hashing::short_hash(&[&label]);
    let keep = MAX.saturating_sub(table.len() + 10).max(1);
    let head: String = clean.chars().take(keep).collect();
    format!("{table}_{}_{}", head.trim_end_matches('_'), &hash[..8])
}

/// The fragment on its node: the logical table's columns (ids come from the coordinator, so
/// no identity), keys and checks, the part's predicate as a CHECK, no foreign keys.
fn fragment_table(table: &Table, name: &str, key: &str, bound: &Bound, numeric: bool) -> Table {
    let mut fragment = table.clone();
    fragment.name = name.to_owned();
    for column in &mut fragment.columns {
        values_from_the_coordinator(column);
    }
    fragment.foreign_keys.clear();
    let rename = |constraint: &str| constraint.replacen(&table.name, name, 1);
    if let Some(pk) = &mut fragment.primary_key {
        pk.name = rename(&pk.name);
    }
    for unique in &mut fragment.uniques {
        unique.name = rename(&unique.name);
    }
    for check in &mut fragment.checks {
        check.name = rename(&check.name);
    }
    if let Some(predicate) = predicate(key, bound, numeric) {
        fragment.checks.push(Check {
            name: format!("{name}_fragment_check"),
            expression: predicate,
            definition: None,
        });
    }
    fragment
}

/// The coordinator's partitioned table: columns, NOT NULL, defaults, identity and checks.
/// Keys cannot be declared on a table whose partitions are foreign; each fragment holds them.
fn coordinator_table(table: &Table) -> Table {
    let mut out = table.clone();
    out.primary_key = None;
    out.uniques.clear();
    out.foreign_keys.clear();
    out
}

fn literal(value: &str, numeric: bool) -> String {
    if numeric && value.parse::<f64>().is_ok() {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// The rows a part holds, as a condition on the key (none for hash and default parts: the
/// coordinator routes those).
fn predicate(key: &str, bound: &Bound, numeric: bool) -> Option<String> {
    condition(&quote(key), bound, numeric)
}

/// Whether `subject` (an SQL expression of the key's type) falls within a list or range
/// bound (empty for a range open at both ends); `None` for hash and default parts, which no
/// condition on the value alone states.
pub fn condition(subject: &str, bound: &Bound, numeric: bool) -> Option<String> {
    match bound {
        Bound::List { values } => Some(format!(
            "{subject} IN ({})",
            values
                .iter()
                .map(|v| literal(v, numeric))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Bound::Range { from, to } => {
            let lower = from
                .as_ref()
                .map(|f| format!("{subject} >= {}", literal(f, numeric)));
            let upper = to
                .as_ref()
                .map(|t| format!("{subject} < {}", literal(t, numeric)));
            Some(
                lower
                    .into_iter()
                    .chain(upper)
                    .collect::<Vec<_>>()
                    .join(" AND "),
            )
        }
        Bound::Hash { .. } | Bound::Default => None,
    }
}

fn bound_sql(bound: &Bound, numeric: bool) -> String {
    match bound {
        Bound::List { values } => format!(
            "FOR VALUES IN ({})",
            values
                .iter()
                .map(|v| literal(v, numeric))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Bound::Range { from, to } => format!(
            "FOR VALUES FROM ({}) TO ({})",
            from.as_deref()
                .map_or("MINVALUE".to_owned(), |f| literal(f, numeric)),
            to.as_deref()
                .map_or("MAXVALUE".to_owned(), |t| literal(t, numeric))
        ),
        Bound::Hash { modulus, remainder } => {
            format!("FOR VALUES WITH (MODULUS {modulus}, REMAINDER {remainder})")
        }
        Bound::Default => "DEFAULT".to_owned(),
    }
}

/// The coordinator's DDL for one partitioned table: the table, then its foreign partitions.
pub fn partitioned_table_sql(table: &PartitionedTable) -> Vec<String> {
    let create = ddl::create_table(&table.table);
    let create = format!(
        "{} PARTITION BY {};",
        create.trim_end_matches(';'),
        table.partition_by
    );
    let mut statements = vec![create];
    for partition in &table.partitions {
        if partition.local {
            statements.push(format!(
                "ALTER TABLE {} ATTACH PARTITION {} {};",
                quote(&table.table.name),
                quote(&partition.name),
                partition.bound
            ));
            continue;
        }
        statements.push(format!(
            "CREATE FOREIGN TABLE {} PARTITION OF {} {} SERVER {} OPTIONS (schema_name 'public', table_name '{}');",
            quote(&partition.name),
            quote(&table.table.name),
            partition.bound,
            server_name(&partition.node),
            partition.remote_table.replace('\'', "''")
        ));
    }
    statements
}
