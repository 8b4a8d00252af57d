//! The coordinator's objects for fragmented tables, as SQL with a hash of that SQL.
//!
//! The objects are generated, not written by the user, so drift is detected the way container
//! configuration is: each object carries `COMMENT ... IS 'dbtopo <hash>'` of the SQL that made
//! it, and a different or missing hash means the object is made again. Making a partitioned
//! table again loses nothing: its rows live in the fragments.

use serde::Serialize;

use super::placement::{Placement, partitioned_table_sql, server_name};
use crate::hashing::short_hash;
use crate::model;
use crate::schema::ddl::quote;

/// Stands for the superuser password in the SQL shown in plans; the executor puts the real
/// one in only when it runs the statement.
pub const PASSWORD_PLACEHOLDER: &str = "<superuser password>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A postgres_fdw server and the superuser's user mapping on it.
    Server,
    /// A partitioned table and its foreign partitions.
    PartitionedTable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoordinatorObject {
    pub kind: ObjectKind,
    /// The server's or the table's name in the coordinator's database.
    pub name: String,
    /// The statements that make it (without the drop and the comment).
    pub create: Vec<String>,
    pub hash: String,
    /// Servers a partitioned table's partitions use: making one again drops the partitions.
    pub servers: Vec<String>,
    /// A partitioned table's partitions, so one dropped by hand is seen.
    pub partitions: std::collections::BTreeSet<String>,
}

impl CoordinatorObject {
    pub fn comment(&self) -> String {
        format!("dbtopo {}", self.hash)
    }

    /// Everything to run: drop the old object when there is one, make it, mark it.
    pub fn statements(&self, replace: bool) -> Vec<String> {
        let (drop, comment_on) = match self.kind {
            ObjectKind::Server => (
                format!("DROP SERVER IF EXISTS {} CASCADE;", quote(&self.name)),
                format!("COMMENT ON SERVER {}", quote(&self.name)),
            ),
            ObjectKind::PartitionedTable => (
                format!("DROP TABLE IF EXISTS {} CASCADE;", quote(&self.name)),
                format!("COMMENT ON TABLE {}", quote(&self.name)),
            ),
        };
        let mut statements = Vec::new();
        if replace {
            statements.push(drop);
        }
        statements.extend(self.create.iter().cloned());
        statements.push(format!("{comment_on} IS '{}';", self.comment()));
        statements
    }
}

/// The servers (one per fragment node) and partitioned tables the coordinator needs.
pub fn objects(env: &str, database: &str, placement: &Placement) -> Vec<CoordinatorObject> {
    let servers = placement.servers.iter().map(|node| {
        let name = server_name(node);
        let create = vec![
            "CREATE EXTENSION IF NOT EXISTS postgres_fdw;".to_owned(),
            format!(
                "CREATE SERVER {} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{}', port '{}', dbname '{}');",
                quote(&name),
                model::container_name(env, node),
                model::SERVER_PORT,
                database
            ),
            format!(
                "CREATE USER MAPPING FOR {user} SERVER {} OPTIONS (user '{user}', password '{PASSWORD_PLACEHOLDER}');",
                quote(&name),
                user = model::SUPERUSER
            ),
        ];
        object(ObjectKind::Server, name, create, Vec::new(), Default::default())
    });
    let tables = placement.partitioned.iter().map(|table| {
        let servers = table
            .partitions
            .iter()
            .map(|p| server_name(&p.node))
            .collect();
        object(
            ObjectKind::PartitionedTable,
            table.table.name.clone(),
            partitioned_table_sql(table),
            servers,
            table.partitions.iter().map(|p| p.name.clone()).collect(),
        )
    });
    servers.chain(tables).collect()
}

fn object(
    kind: ObjectKind,
    name: String,
    create: Vec<String>,
    servers: Vec<String>,
    partitions: std::collections::BTreeSet<String>,
) -> CoordinatorObject {
    let parts: Vec<&str> = create.iter().map(String::as_str).collect();
    CoordinatorObject {
        kind,
        hash: short_hash(&parts),
        name,
        create,
        servers,
        partitions,
    }
}

/// What the coordinator's database holds of these objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// `dbtopo_*` foreign servers and their comments.
    pub servers: std::collections::BTreeMap<String, Option<String>>,
    /// Tables of the fragmented names: `pg_class.relkind` and comment.
    pub tables: std::collections::BTreeMap<String, (char, Option<String>)>,
    /// Their partitions' names.
    pub partitions: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}
