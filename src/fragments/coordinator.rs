//! The coordinator's objects for fragmented tables, as SQL with a hash of that SQL.
//!
//! The objects are generated, not written by the user, so drift is detected the way container
//! configuration is: each object carries `COMMENT ... IS 'dbtopo <hash>'` of the SQL that made
//! it, and a different or missing hash means the object is made again. Making a partitioned
//! table again loses nothing: its rows live in the fragments.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::placement::{
    Placement, VerticalTable, column_group, partitioned_table_sql, server_name,
};
use crate::hashing::short_hash;
use crate::model;
use crate::schema::ddl::quote;
use crate::schema::model::{Identity, Table};

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
    /// A view joining a table's column groups, with the triggers that write through it.
    VerticalTable,
    /// A foreign table reading one node's copy of a reference table, so that a query joining
    /// it with that node's fragments runs on the node.
    ReferenceCopy,
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
    /// A partitioned table's partitions and where their rows are, so one dropped by hand,
    /// or a part that moves, is seen.
    pub partitions: BTreeMap<String, PartLocation>,
    /// A partitioned table's `PARTITION BY` (`LIST (region)`).
    pub partition_by: Option<String>,
    /// What removes a vertical table's view, foreign tables and trigger function.
    pub drop: Vec<String>,
    /// Run after the object is made, and after rows are moved into it: a partitioned table's
    /// identity continues after the highest key its fragments hold.
    pub finish: Vec<String>,
}

/// Where a partition's rows are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartLocation {
    /// A table of the coordinator's own.
    Local,
    /// A foreign table: its server and the table's name on that server's node.
    Remote { server: String, table: String },
}

impl CoordinatorObject {
    pub fn comment(&self) -> String {
        format!("dbtopo {}", self.hash)
    }

    /// What removes the object (for a partitioned table, not the rows: they live in the
    /// fragments, and parts kept on the coordinator are detached first).
    pub fn drop_statement(&self) -> String {
        if !self.drop.is_empty() {
            return self.drop.join("\n");
        }
        let name = quote(&self.name);
        match self.kind {
            ObjectKind::Server => format!("DROP SERVER IF EXISTS {name} CASCADE;"),
            ObjectKind::PartitionedTable => format!("DROP TABLE IF EXISTS {name} CASCADE;"),
            ObjectKind::Publication => format!("DROP PUBLICATION IF EXISTS {name};"),
            ObjectKind::Subscription => format!("DROP SUBSCRIPTION IF EXISTS {name};"),
            ObjectKind::VerticalTable => String::new(),
            ObjectKind::ReferenceCopy => format!("DROP FOREIGN TABLE IF EXISTS {name};"),
        }
    }

    /// Everything to run: drop the old object when there is one, make it, mark it.
    pub fn statements(&self, replace: bool) -> Vec<String> {
        let mut statements = Vec::new();
        if replace {
            statements.push(self.drop_statement());
        }
        statements.extend(self.create.iter().cloned());
        statements.extend(self.finish.iter().cloned());
        statements.push(self.comment_statement());
        statements
    }

    /// `COMMENT ON ... IS 'dbtopo <hash>'`: marks the object as made from this definition.
    pub fn comment_statement(&self) -> String {
        let comment_on = match self.kind {
            ObjectKind::Server => "SERVER",
            ObjectKind::PartitionedTable => "TABLE",
            ObjectKind::Publication => "PUBLICATION",
            ObjectKind::Subscription => "SUBSCRIPTION",
            ObjectKind::VerticalTable => "VIEW",
            ObjectKind::ReferenceCopy => "FOREIGN TABLE",
        };
        format!(
            "COMMENT ON {comment_on} {} IS '{}';",
            quote(&self.name),
            self.comment()
        )
    }
}

/// The servers (one per fragment node) and partitioned tables the coordinator needs.
pub fn objects(env: &str, database: &str, placement: &Placement) -> Vec<CoordinatorObject> {
    let servers = placement.servers.iter().map(|node| {
        let name = server_name(node);
        let create = vec![
            "CREATE EXTENSION IF NOT EXISTS postgres_fdw;".to_owned(),
            format!(
                "CREATE SERVER {} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{}', port '{}', dbname '{}', use_remote_estimate 'true');",
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
            .filter(|p| !p.local)
            .map(|p| server_name(&p.node))
            .collect();
        let partitions = table
            .partitions
            .iter()
            .map(|p| {
                let location = if p.local {
                    PartLocation::Local
                } else {
                    PartLocation::Remote {
                        server: server_name(&p.node),
                        table: p.remote_table.clone(),
                    }
                };
                (p.name.clone(), location)
            })
            .collect();
        let mut object = object(
            ObjectKind::PartitionedTable,
            table.table.name.clone(),
            partitioned_table_sql(table),
            servers,
            partitions,
        );
        object.partition_by = Some(table.partition_by.clone());
        object.finish = identity_restart_sql(&table.table);
        let mut hashed: Vec<&str> = object.create.iter().map(String::as_str).collect();
        hashed.extend(object.finish.iter().map(String::as_str));
        object.hash = short_hash(&hashed);
        // A part kept on the coordinator holds rows: it is detached, never dropped.
        let detach = table.partitions.iter().filter(|p| p.local).map(|p| {
            format!(
                "DO $dbtopo$ BEGIN IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass('public.{part}') AND inhparent = to_regclass('public.{parent}')) THEN ALTER TABLE {parent_q} DETACH PARTITION {part_q}; END IF; END $dbtopo$;",
                part = table_literal(&p.name),
                parent = table_literal(&table.table.name),
                parent_q = quote(&table.table.name),
                part_q = quote(&p.name)
            )
        });
        object.drop = detach
            .chain(std::iter::once(format!(
                "DROP TABLE IF EXISTS {} CASCADE;",
                quote(&table.table.name)
            )))
            .collect();
        object
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
    let vertical = placement.vertical.iter().map(vertical_object);
    let copies = placement.references.iter().flat_map(|(node, tables)| {
        tables.iter().filter_map(move |table| {
            let copy = placement.fragment_nodes.get(node)?.tables.get(table)?;
            let name = reference_copy_name(table, node);
            Some(object(
                ObjectKind::ReferenceCopy,
                name.clone(),
                vec![foreign_table_sql(copy, &name, node, table)],
                vec![server_name(node)],
                Default::default(),
            ))
        })
    });
    servers
        .chain(tables)
        .chain(vertical)
        .chain(copies)
        .chain(publications)
        .collect()
}

/// A table name inside `to_regclass('public.<name>')`: quoted as an identifier when needed,
/// as a string literal always.
fn table_literal(name: &str) -> String {
    quote(name).replace('\'', "''")
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
    partitions: BTreeMap<String, PartLocation>,
) -> CoordinatorObject {
    let parts: Vec<&str> = create.iter().map(String::as_str).collect();
    CoordinatorObject {
        kind,
        hash: short_hash(&parts),
        name,
        create,
        servers,
        partitions,
        partition_by: None,
        drop: Vec::new(),
        finish: Vec::new(),
    }
}

/// After a partitioned table is made again, its identity columns continue after the highest
/// value the fragments hold, so new rows do not reuse keys.
fn identity_restart_sql(table: &crate::schema::model::Table) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|c| c.identity.is_some())
        .map(|c| {
            format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce((SELECT max({column_q}) FROM {table_q}), 0) + 1, false);",
                table = table_literal(&table.name),
                column = c.name.replace('\'', "''"),
                column_q = quote(&c.name),
                table_q = quote(&table.name)
            )
        })
        .collect()
}

/// `CREATE FOREIGN TABLE name (...)` with `table`'s columns, reading `remote` on `node`.
fn foreign_table_sql(table: &Table, name: &str, node: &str, remote: &str) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let not_null = if c.not_null { " NOT NULL" } else { "" };
            format!("{} {}{not_null}", quote(&c.name), c.data_type)
        })
        .collect();
    format!(
        "CREATE FOREIGN TABLE {} ({}) SERVER {} OPTIONS (schema_name 'public', table_name '{}');",
        quote(name),
        columns.join(", "),
        server_name(node),
        remote.replace('\'', "''")
    )
}

/// The name on the coordinator of `node`'s copy of reference table `table`.
pub fn reference_copy_name(table: &str, node: &str) -> String {
    format!("{table}_{}", node.replace('-', "_"))
}

/// The coordinator's view of a vertically fragmented table: a foreign table per remote
/// column group, a view joining the groups on the key, the key's sequence, and an INSTEAD OF
/// trigger that writes each group. The sequence survives a remake, so keys are not reused.
fn vertical_object(table: &VerticalTable) -> CoordinatorObject {
    let name = &table.table.name;
    let key = quote(&table.key);
    let sequence = format!("{name}_{}_seq", table.key);
    let function = format!("dbtopo_{name}_write");
    let identity = table.table.column(&table.key).and_then(|c| c.identity);
    let mut create = Vec::new();
    if identity.is_some() {
        create.push(format!(
            "CREATE SEQUENCE IF NOT EXISTS {};",
            quote(&sequence)
        ));
    }
    for part in table.parts.iter().filter(|p| !p.local) {
        let group = column_group(&table.table, &part.name, &part.columns);
        create.push(foreign_table_sql(
            &group,
            &part.name,
            &part.node,
            &part.remote_table,
        ));
    }
    let alias = |i: usize| format!("p{i}");
    let select: Vec<String> = table
        .table
        .columns
        .iter()
        .map(|c| {
            let owner = table
                .parts
                .iter()
                .position(|p| p.columns.contains(&c.name))
                .unwrap_or(0);
            format!("{}.{}", alias(owner), quote(&c.name))
        })
        .collect();
    let mut from = format!("{} {}", quote(&table.parts[0].name), alias(0));
    for (i, part) in table.parts.iter().enumerate().skip(1) {
        from.push_str(&format!(
            " JOIN {} {} ON {}.{key} = {}.{key}",
            quote(&part.name),
            alias(i),
            alias(i),
            alias(0)
        ));
    }
    create.push(format!(
        "CREATE VIEW {} AS SELECT {} FROM {from};",
        quote(name),
        select.join(", ")
    ));
    for column in &table.table.columns {
        if let Some(default) = &column.default {
            create.push(format!(
                "ALTER VIEW {} ALTER COLUMN {} SET DEFAULT {default};",
                quote(name),
                quote(&column.name)
            ));
        }
    }
    // The key behaves as the manifest declares it: drawn from the sequence for an identity
    // column (an explicit value refused for GENERATED ALWAYS), given by the writer otherwise.
    let next = format!("nextval('{}')", sequence.replace('\'', "''"));
    let mut insert = match identity {
        None => Vec::new(),
        Some(Identity::ByDefault) => vec![format!("NEW.{key} := coalesce(NEW.{key}, {next});")],
        Some(Identity::Always) => vec![
            format!(
                "IF NEW.{key} IS NOT NULL THEN RAISE EXCEPTION 'cannot insert a non-DEFAULT value into column \"{}\"' USING ERRCODE = 'generated_always'; END IF;",
                table.key.replace('\'', "''")
            ),
            format!("NEW.{key} := {next};"),
        ],
    };
    let mut update = Vec::new();
    let mut delete = Vec::new();
    for part in &table.parts {
        let columns: Vec<String> = part.columns.iter().map(|c| quote(c)).collect();
        let values: Vec<String> = columns.iter().map(|c| format!("NEW.{c}")).collect();
        let sets: Vec<String> = columns.iter().map(|c| format!("{c} = NEW.{c}")).collect();
        insert.push(format!(
            "INSERT INTO {} ({}) VALUES ({});",
            quote(&part.name),
            columns.join(", "),
            values.join(", ")
        ));
        update.push(format!(
            "UPDATE {} SET {} WHERE {key} = OLD.{key};",
            quote(&part.name),
            sets.join(", ")
        ));
        delete.push(format!(
            "DELETE FROM {} WHERE {key} = OLD.{key};",
            quote(&part.name)
        ));
    }
    create.push(format!(
        "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $dbtopo$\nBEGIN\n  IF TG_OP = 'INSERT' THEN\n    {}\n    RETURN NEW;\n  ELSIF TG_OP = 'UPDATE' THEN\n    {}\n    RETURN NEW;\n  ELSE\n    {}\n    RETURN OLD;\n  END IF;\nEND\n$dbtopo$;",
        quote(&function),
        insert.join("\n    "),
        update.join("\n    "),
        delete.join("\n    ")
    ));
    create.push(format!(
        "CREATE TRIGGER {} INSTEAD OF INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}();",
        quote(&format!("{name}_write")),
        quote(name),
        quote(&function)
    ));
    let mut object = object(
        ObjectKind::VerticalTable,
        name.clone(),
        create,
        table
            .parts
            .iter()
            .filter(|p| !p.local)
            .map(|p| server_name(&p.node))
            .collect(),
        Default::default(),
    );
    object.drop = std::iter::once(format!("DROP VIEW IF EXISTS {} CASCADE;", quote(name)))
        .chain(
            table
                .parts
                .iter()
                .filter(|p| !p.local)
                .map(|p| format!("DROP FOREIGN TABLE IF EXISTS {};", quote(&p.name))),
        )
        .chain(std::iter::once(format!(
            "DROP FUNCTION IF EXISTS {}();",
            quote(&function)
        )))
        .collect();
    object
}

/// The name prefix of the old parts a movement keeps until their copies are dropped.
pub const MOVED_PREFIX: &str = "dbtopo_moved_";

/// What the coordinator's database holds of these objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// `dbtopo_*` foreign servers and their comments.
    pub servers: BTreeMap<String, Option<String>>,
    /// Tables of the fragmented names: `pg_class.relkind` and comment.
    pub tables: BTreeMap<String, (char, Option<String>)>,
    /// Their partitions and where their rows are.
    pub partitions: BTreeMap<String, BTreeMap<String, PartLocation>>,
    /// Their `PARTITION BY`, as `pg_get_partkeydef` spells it.
    pub partition_keys: BTreeMap<String, String>,
    /// Parts whose rows a movement copied away, waiting to be dropped (see `plan::movement`).
    pub moved: BTreeMap<String, PartLocation>,
    /// `dbtopo_ref_*` publications and their comments.
    pub publications: BTreeMap<String, Option<String>>,
    /// `dbtopo_*` foreign servers with a user mapping for the superuser (without one the
    /// coordinator cannot read their parts).
    pub user_mappings: BTreeSet<String>,
    /// `dbtopo_ref_*` logical slots: each a subscription's, or left by one that is gone.
    pub logical_slots: BTreeSet<String>,
}
