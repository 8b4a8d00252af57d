//! Which part of a horizontally fragmented table takes a row, from the placement's bounds.
//!
//! Pure: it writes an SQL expression that the coordinator evaluates, so a key of any type is
//! compared, ordered and hashed exactly as PostgreSQL's own partition routing does it (the
//! key's collation for ranges of text, the type's hash function and seed for hash parts).
//! `verify` picks its probe values with it and the workload finds the node of each row.

use crate::fragments::placement::{self, PartitionedTable};
use crate::schema::ddl::quote;
use crate::schema::model::is_numeric_type;
use crate::topology::Bound;

/// An SQL expression (an integer) giving the index in `table.partitions` of the part that
/// takes a row whose key is `value`, an SQL expression of the key's type; NULL when no part
/// takes it. A list or range part is its own condition, a hash part asks
/// `satisfies_hash_partition` of the coordinator's partitioned table, and the default part
/// takes whatever no other part does.
pub fn part_of(table: &PartitionedTable, value: &str) -> String {
    let numeric = table
        .table
        .column(&table.key)
        .is_some_and(|c| is_numeric_type(&c.data_type));
    let mut arms = Vec::new();
    let mut otherwise = "NULL".to_owned();
    for (index, part) in table.partitions.iter().enumerate() {
        let when = match &part.rows {
            Bound::Default => {
                otherwise = index.to_string();
                continue;
            }
            Bound::Hash { modulus, remainder } => format!(
                "satisfies_hash_partition({}::regclass, {modulus}, {remainder}, {value})",
                literal(&quote(&table.table.name))
            ),
            bound => match placement::condition(value, bound, numeric) {
                Some(condition) if !condition.is_empty() => condition,
                _ => format!("{value} IS NOT NULL"),
            },
        };
        arms.push(format!("WHEN {when} THEN {index}"));
    }
    if arms.is_empty() {
        return format!("{otherwise}::integer");
    }
    format!("(CASE {} ELSE {otherwise} END)", arms.join(" "))
}

/// The text of a value (as PostgreSQL prints it) as an SQL expression of the key's type.
pub fn key_value(table: &PartitionedTable, text: &str) -> String {
    let data_type = table
        .table
        .column(&table.key)
        .map_or("text", |c| c.data_type.as_str());
    format!("CAST({} AS {data_type})", literal(text))
}

/// An SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
