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

/// The same inside a libpq connection string (quoted for it as well as for SQL).
pub const CONNINFO_PASSWORD_PLACEHOLDER: &str = "<superuser password in conninfo>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A postgres_fdw server and the superuser's user mapping on it.
    Server,
    /// A partitioned table and its foreign partitions.
    PartitionedTable,
    /// A publication of the reference tables one node copies.
    Publication,
    /// On a node: the subscription that keeps its reference copies current.
    Subscription,
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
            ObjectKind::Publication => (
                format!("DROP PUBLICATION IF EXISTS {};", quote(&self.name)),
                format!("COMMENT ON PUBLICATION {}", quote(&self.name)),
            ),
            ObjectKind::Subscription => (
                format!("DROP SUBSCRIPTION IF EXISTS {};", quote(&self.name)),
                format!("COMMENT ON SUBSCRIPTION {}", quote(&self.name)),
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
    let publications = placement.references.iter().map(|(node, tables)| {
        let create = vec![format!(
            "CREATE PUBLICATION {} FOR TABLE {};",
            quote(&reference_name(node)),
            tables
                .iter()
                .map(|t| quote(t))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        object(
            ObjectKind::Publication,
            reference_name(node),
            create,
            Vec::new(),
            Default::default(),
        )
    });
    servers.chain(tables).chain(publications).collect()
}

/// The publication on the coordinator and the subscription on `node` that copy its
/// reference tables.
pub fn reference_name(node: &str) -> String {
    format!("dbtopo_ref_{}", node.replace('-', "_"))
}

/// The subscription on `node` to its reference tables; making it again empties the copies
/// first, since it copies every row again.
pub fn subscription(
    env: &str,
    coordinator: &str,
    database: &str,
    node: &str,
    tables: &[String],
) -> CoordinatorObject {
    let name = reference_name(node);
    let create = vec![
        format!(
            "TRUNCATE {};",
            tables
                .iter()
                .map(|t| quote(t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "CREATE SUBSCRIPTION {} CONNECTION 'host={} port={} dbname={database} user={} password={CONNINFO_PASSWORD_PLACEHOLDER}' PUBLICATION {};",
            quote(&name),
            model::container_name(env, coordinator),
            model::SERVER_PORT,
            model::SUPERUSER,
            quote(&name)
        ),
    ];
    object(
        ObjectKind::Subscription,
        name,
        create,
        Vec::new(),
        Default::default(),
    )
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
    /// `dbtopo_ref_*` publications and their comments.
    pub publications: std::collections::BTreeMap<String, Option<String>>,
}
