//! A database's tables and indexes read from pg_catalog into the [`Schema`] model, and the
//! manifest normalized by the server itself.
//!
//! Normalizing through the server (as Atlas does with its dev database) means expressions,
//! defaults and types on both sides of the diff are spelled by the same printer
//! (`pg_get_expr`, `format_type`), so no SQL expression normalizer is needed here. The
//! manifest runs in a scratch schema inside a transaction that is always rolled back.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::{Client, GenericClient};

use crate::fragments::coordinator::PartLocation;
use crate::observed::{FoundSubscription, LeftoverSubscription};
use crate::schema::ObservedSchema;
use crate::schema::model::{
    Check, Column, ForeignKey, Identity, Index, KeyConstraint, ReferentialAction, Schema, Sequence,
    SequenceValues, Table, TableProperties,
};

/// The schema the diff manages: the one unqualified names land in.
pub const MANAGED_SCHEMA: &str = "public";

/// What a database holds, plus the indexes a failed concurrent build left invalid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub schema: Schema,
    pub invalid_indexes: BTreeSet<String>,
}

/// The server rejected the manifest: the error, and where in the manifest when it says.
#[derive(Debug)]
pub struct Rejected {
    pub error: tokio_postgres::Error,
    /// Byte offset into the manifest text.
    pub offset: Option<usize>,
}

/// Read the tables and indexes of `namespace`.
pub async fn read(
    client: &impl GenericClient,
    namespace: &str,
) -> Result<Catalog, tokio_postgres::Error> {
    // Sent together: one round trip instead of three.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&namespace];
    let (columns, constraints, index_rows) = futures_util::try_join!(
        client.query(COLUMNS, &params),
        client.query(CONSTRAINTS, &params),
        client.query(INDEXES, &params),
    )?;
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for row in columns {
        let table: String = row.get(0);
        let entry = tables.entry(table.clone()).or_insert_with(|| Table {
            name: table,
            properties: TableProperties {
                row_security: row.get(6),
                force_row_security: row.get(7),
                unlogged: row.get(8),
                options: row.get(9),
                comment: row.get(10),
                replica_identity: row.get(23),
                clustered_on: row.get(24),
            },
            ..Table::default()
        });
        let Some(name) = row.get::<_, Option<String>>(1) else {
            continue;
        };
        let data_type: String = row.get(2);
        let identity = match row.get::<_, i8>(5) as u8 {
            b'a' => Some(Identity::Always),
            b'd' => Some(Identity::ByDefault),
            _ => None,
        };
        let sequence = row.get::<_, Option<String>>(14).map(|sequence| {
            let sequence_type: String = row.get(15);
            let values = SequenceValues {
                start: Some(row.get(16)),
                increment: row.get(17),
                min: Some(row.get(18)),
                max: Some(row.get(19)),
                cache: row.get(20),
                cycle: row.get(21),
            };
            Sequence::new(sequence, &data_type, &sequence_type, values)
        });
        let expression: Option<String> = row.get(4);
        let generated = row.get::<_, bool>(12);
        entry.columns.push(Column {
            name,
            data_type,
            not_null: row.get(3),
            default: expression.clone().filter(|_| !generated),
            identity,
            sequence,
            collation: row.get(11),
            generated: expression.filter(|_| generated),
            comment: row.get(13),
            settings: row.get(22),
        });
    }
    for row in constraints {
        let Some(table) = tables.get_mut(&row.get::<_, String>(0)) else {
            continue;
        };
        let name: String = row.get(1);
        let columns: Vec<String> = row.get(3);
        let definition = Some(row.get::<_, String>(9));
        match row.get::<_, i8>(2) as u8 {
            b'p' => {
                table.primary_key = Some(KeyConstraint {
                    name,
                    columns,
                    definition,
                })
            }
            b'u' => table.uniques.push(KeyConstraint {
                name,
                columns,
                definition,
            }),
            b'f' => table.foreign_keys.push(ForeignKey {
                name,
                columns,
                referenced_table: row.get(4),
                referenced_columns: row.get(5),
                on_update: referential_action(row.get(6)),
                on_delete: referential_action(row.get(7)),
                definition,
            }),
            b'c' => table.checks.push(Check {
                name,
                expression: row.get(8),
                definition,
            }),
            _ => table.other_constraints.push(Check {
                name,
                expression: String::new(),
                definition,
            }),
        }
    }
    let mut indexes = BTreeMap::new();
    let mut invalid_indexes = BTreeSet::new();
    for row in index_rows {
        let name: String = row.get(0);
        if !row.get::<_, bool>(5) {
            invalid_indexes.insert(name.clone());
        }
        let method: String = row.get(3);
        let keys: Vec<String> = row.get(6);
        let whole: String = row.get(7);
        let definition = whole
            .find(&format!(" USING {method} ("))
            .map(|at| whole[at + " USING ".len()..].to_owned());
        let columns = definition
            .as_deref()
            .and_then(|definition| index_keys(&definition[method.len() + 1..], &keys))
            .unwrap_or(keys);
        indexes.insert(
            name.clone(),
            Index {
                name,
                table: row.get(1),
                unique: row.get(2),
                method,
                predicate: row.get(4),
                columns,
                definition,
            },
        );
    }
    Ok(Catalog {
        schema: Schema { tables, indexes },
        invalid_indexes,
    })
}

/// What a normalized manifest depends on besides its text: the server's version and the
/// session settings that print values (time zone, date and interval styles).
pub async fn normalization_context(client: &Client) -> Result<String, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT concat_ws(E'\\n', current_setting('server_version_num'), \
             current_setting('TimeZone'), current_setting('DateStyle'), \
             current_setting('IntervalStyle'), current_setting('extra_float_digits'))",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// [`normalize`], remembered: the result depends only on the manifest and its
/// [`normalization_context`], so it is kept in the cache under a hash of those and the server
/// is asked once.
pub async fn normalize_cached(
    client: &mut Client,
    context: &str,
    manifest: &str,
) -> Result<Schema, Rejected> {
    // The reader's own queries are part of the key: a dbtopo that reads differently asks again.
    let reader = env!("CARGO_PKG_VERSION");
    let key =
        crate::hashing::short_hash(&[reader, COLUMNS, CONSTRAINTS, INDEXES, context, manifest]);
    let path = crate::cache::dir("normalized-schemas").join(format!("{key}.json"));
    if let Some(schema) = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        return Ok(schema);
    }
    let schema = normalize(client, manifest).await?;
    if let Ok(bytes) = serde_json::to_vec(&schema) {
        // A cache that cannot be written only costs time.
        let _ = crate::cache::write_atomically(&path, &bytes);
    }
    Ok(schema)
}

/// Run `manifest` in a scratch schema and read it back as the server spells it. Nothing
/// persists: the transaction is rolled back whatever happens.
pub async fn normalize(client: &mut Client, manifest: &str) -> Result<Schema, Rejected> {
    let scratch = format!("dbtopo_desired_{:016x}", rand::random::<u64>());
    let transaction = client.transaction().await.map_err(rejected_at(None))?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA {scratch}; SET LOCAL search_path TO {scratch}"
        ))
        .await
        .map_err(rejected_at(None))?;
    if let Err(error) = transaction.batch_execute(manifest).await {
        let offset = error
            .as_db_error()
            .and_then(|db| match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(position)) => {
                    Some(*position as usize)
                }
                _ => None,
            })
            .and_then(|position| char_position_to_offset(manifest, position));
        return Err(Rejected { error, offset });
    }
    let catalog = read(&transaction, &scratch)
        .await
        .map_err(rejected_at(None))?;
    transaction.rollback().await.map_err(rejected_at(None))?;
    Ok(catalog.schema)
}

fn rejected_at(offset: Option<usize>) -> impl Fn(tokio_postgres::Error) -> Rejected {
    move |error| Rejected { error, offset }
}

/// The server counts positions in characters from 1.
fn char_position_to_offset(text: &str, position: usize) -> Option<usize> {
    let index = position.checked_sub(1)?;
    text.char_indices()
        .nth(index)
        .map(|(offset, _)| offset)
        .or((index == text.chars().count()).then_some(text.len()))
}

/// Exact row counts of `tables` (of the managed schema), for the plan's warning before a
/// change that destroys data.
pub async fn row_counts(
    client: &Client,
    tables: &BTreeSet<String>,
) -> Result<BTreeMap<String, i64>, tokio_postgres::Error> {
    let mut counts = BTreeMap::new();
    for table in tables {
        let sql = format!(
            "SELECT count(*) FROM {}.{}",
            crate::schema::ddl::quote(MANAGED_SCHEMA),
            crate::schema::ddl::quote(table)
        );
        let row = client.query_one(&sql, &[]).await?;
        counts.insert(table.clone(), row.get(0));
    }
    Ok(counts)
}

/// Whether database `name` exists on the server.
pub async fn database_exists(client: &Client, name: &str) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await?;
    Ok(row.get(0))
}

fn referential_action(code: i8) -> ReferentialAction {
    match code as u8 {
        b'r' => ReferentialAction::Restrict,
        b'c' => ReferentialAction::Cascade,
        b'n' => ReferentialAction::SetNull,
        b'd' => ReferentialAction::SetDefault,
        _ => ReferentialAction::NoAction,
    }
}

/// Each key of an index as the whole definition writes it, from `(` on: the key alone as
/// `keys` has it, then its collation, operator class and order when it has them
/// (`email COLLATE "C" text_pattern_ops DESC`). `None` when the text is not as expected.
fn index_keys(list: &str, keys: &[String]) -> Option<Vec<String>> {
    let mut rest = list.strip_prefix('(')?;
    let mut written = Vec::new();
    for key in keys {
        let after_key = rest.strip_prefix(key.as_str())?;
        let end = top_level_end(after_key)?;
        written.push(format!("{key}{}", &after_key[..end]));
        rest = after_key[end..]
            .strip_prefix(", ")
            .or_else(|| after_key[end..].strip_prefix(')'))?;
    }
    Some(written)
}

/// Where the first `,` or `)` outside quotes and parentheses is.
fn top_level_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth > 0 => depth -= 1,
            (None, ',' | ')') => return Some(at),
            _ => {}
        }
    }
    None
}

/// Ordinary and partitioned tables with their live columns (a table without columns still
/// yields one row, with NULL column fields), and each table's own properties on every row of
/// it. A partition (a part kept on the coordinator) shows no identity: PostgreSQL gives it its
/// partitioned table's, which is the parent's. The sequence a column owns (an identity's, or
/// a serial column's) comes with its parameters. Of a column's options only those ALTER
/// COLUMN … SET takes are read (the server keeps marks of its own there too).
const COLUMNS: &str = "
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
       coalesce(a.attnotnull, false), pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN c.relispartition THEN '' ELSE coalesce(a.attidentity, '') END::\"char\",
       c.relrowsecurity, c.relforcerowsecurity, c.relpersistence = 'u',
       coalesce(c.reloptions, '{}')::text[], obj_description(c.oid, 'pg_class'),
       CASE WHEN a.attcollation <> t.typcollation THEN
            CASE WHEN cn.nspname = 'pg_catalog' THEN '' ELSE quote_ident(cn.nspname) || '.' END
            || quote_ident(co.collname) END,
       coalesce(a.attgenerated = 's', false), col_description(c.oid, a.attnum),
       seq.relname::text, format_type(seq.seqtypid, NULL), seq.seqstart, seq.seqincrement,
       seq.seqmin, seq.seqmax, seq.seqcache, seq.seqcycle,
       ARRAY_REMOVE(ARRAY[
           CASE WHEN a.attstorage <> t.typstorage THEN 'STORAGE ' || CASE a.attstorage
                WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN'
                ELSE 'EXTENDED' END END,
           CASE a.attcompression WHEN 'p' THEN 'COMPRESSION pglz'
                WHEN 'l' THEN 'COMPRESSION lz4' END,
           CASE WHEN a.attstattarget IS NOT NULL AND a.attstattarget >= 0
                THEN 'STATISTICS ' || a.attstattarget END], NULL)
         || ARRAY(SELECT 'SET (' || o || ')' FROM unnest(a.attoptions) o
                  WHERE o LIKE 'n\\_distinct%' ORDER BY o),
       CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
            WHEN 'i' THEN 'USING INDEX ' || (SELECT quote_ident(ic.relname) FROM pg_index x
                 JOIN pg_class ic ON ic.oid = x.indexrelid
                 WHERE x.indrelid = c.oid AND x.indisreplident) END,
       (SELECT ic.relname::text FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
        WHERE x.indrelid = c.oid AND x.indisclustered)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN LATERAL (
    SELECT s.relname, sq.*
    FROM pg_depend dep
    JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
    JOIN pg_sequence sq ON sq.seqrelid = s.oid
    WHERE dep.refclassid = 'pg_class'::regclass AND dep.refobjid = c.oid
      AND dep.refobjsubid = a.attnum AND dep.classid = 'pg_class'::regclass
      AND dep.deptype IN ('a', 'i')
    ORDER BY s.relname LIMIT 1
) seq ON NOT c.relispartition
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum";

/// Every constraint of the tables (NOT NULL is the column's), columns in key order, with its
/// whole definition as the server prints it.
const CONSTRAINTS: &str = "
SELECT c.relname::text, con.conname::text, con.contype,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord),
       coalesce(ref.relname::text, ''),
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord),
       con.confupdtype, con.confdeltype,
       coalesce(pg_get_expr(con.conbin, con.conrelid), ''),
       pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class ref ON ref.oid = con.confrelid
WHERE n.nspname = $1 AND con.contype <> 'n' AND c.relkind IN ('r', 'p')
ORDER BY c.relname, con.conname";

/// Indexes that no constraint owns, with each key column or expression as
/// `pg_get_indexdef` prints it alone, and the whole definition, from which each key's
/// collation, operator class and order are taken.
const INDEXES: &str = "
SELECT i.relname::text, t.relname::text, x.indisunique, am.amname::text,
       pg_get_expr(x.indpred, x.indrelid, true), x.indisvalid,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(1, x.indnkeyatts) k ORDER BY k),
       pg_get_indexdef(x.indexrelid, 0, true)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = $1
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid
                  AND con.conrelid = x.indrelid)
ORDER BY i.relname";

/// Why a node's schema could not be compared.
#[derive(Debug)]
pub enum SchemaObserveError {
    /// The server refused a connection: treat the node as not observable yet.
    Unreachable(tokio_postgres::Error),
    /// The manifest does not run on this server.
    Rejected(Rejected),
    Query(tokio_postgres::Error),
}

/// The first half of comparing the manifest with the database `client` is connected to
/// (`database_exists`): its catalog and the normalization key, read by shared reference so
/// that they go out with the caller's other reads.
pub async fn schema_reads(
    client: &Client,
    database_exists: bool,
) -> (
    Result<Catalog, tokio_postgres::Error>,
    Result<String, tokio_postgres::Error>,
) {
    tokio::join!(
        async {
            if database_exists {
                read(client, MANAGED_SCHEMA).await
            } else {
                Ok(Catalog::default())
            }
        },
        normalization_context(client)
    )
}

/// The second half: the manifest normalized (by the server when the cache does not hold it)
/// and compared with what [`schema_reads`] found (nothing when the database does not exist).
pub async fn observe_schema(
    client: &mut Client,
    database_exists: bool,
    (current, context): (
        Result<Catalog, tokio_postgres::Error>,
        Result<String, tokio_postgres::Error>,
    ),
    manifest: &str,
) -> Result<ObservedSchema, SchemaObserveError> {
    let current = current.map_err(SchemaObserveError::Query)?;
    let context = context
        .map_err(rejected_at(None))
        .map_err(SchemaObserveError::Rejected)?;
    let desired = match normalize_cached(client, &context, manifest).await {
        Ok(desired) => desired,
        // A standby (a replica the topology makes a node, not promoted yet) cannot run the
        // manifest: its tables are compared once it is a primary.
        Err(rejected)
            if rejected.error.code()
                == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) =>
        {
            return Err(SchemaObserveError::Unreachable(rejected.error));
        }
        Err(rejected) => return Err(SchemaObserveError::Rejected(rejected)),
    };
    let steps = crate::schema::diff::diff(&current.schema, &desired, &current.invalid_indexes);
    let row_counts = row_counts(client, &crate::schema::diff::tables_at_risk(&steps))
        .await
        .map_err(SchemaObserveError::Query)?;
    Ok(ObservedSchema {
        database_exists,
        current: current.schema,
        invalid_indexes: current.invalid_indexes,
        desired,
        row_counts,
    })
}

/// The coordinator's dbtopo-made fragment objects as found: foreign servers named `dbtopo_*`
/// and the tables named `tables`, each with its comment (which holds the hash it was made
/// from).
pub async fn coordinator_objects(
    client: &Client,
    tables: &[String],
) -> Result<crate::fragments::coordinator::Found, tokio_postgres::Error> {
    let in_tables: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&MANAGED_SCHEMA, &tables];
    let moved_prefix: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [
        &MANAGED_SCHEMA,
        &crate::fragments::coordinator::MOVED_PREFIX,
    ];
    // Sent together: one round trip instead of six.
    let (
        servers,
        found_tables,
        partitions,
        partition_keys,
        moved,
        publications,
        mappings,
        logical_slots,
    ) = futures_util::try_join!(
        comments(
            client,
            "SELECT srvname::text, obj_description(oid, 'pg_foreign_server')
             FROM pg_foreign_server WHERE srvname LIKE 'dbtopo\\_%'",
        ),
        client.query(
            "SELECT c.relname::text, c.relkind, obj_description(c.oid, 'pg_class')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = ANY($2)",
            &in_tables,
        ),
        client.query(
            "SELECT p.relname::text, c.relname::text, s.srvname::text,
                    coalesce((SELECT option_value FROM pg_options_to_table(f.ftoptions)
                              WHERE option_name = 'table_name'), c.relname::text)
             FROM pg_inherits i
             JOIN pg_class p ON p.oid = i.inhparent
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_namespace n ON n.oid = p.relnamespace
             LEFT JOIN pg_foreign_table f ON f.ftrelid = c.oid
             LEFT JOIN pg_foreign_server s ON s.oid = f.ftserver
             WHERE n.nspname = $1 AND p.relname = ANY($2)
             ORDER BY 1, 2",
            &in_tables,
        ),
        client.query(
            "SELECT c.relname::text, pg_get_partkeydef(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind = 'p'",
            &in_tables,
        ),
        client.query(
            "SELECT c.relname::text, s.srvname::text,
                    coalesce((SELECT option_value FROM pg_options_to_table(f.ftoptions)
                              WHERE option_name = 'table_name'), c.relname::text)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_foreign_table f ON f.ftrelid = c.oid
             LEFT JOIN pg_foreign_server s ON s.oid = f.ftserver
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'f') AND starts_with(c.relname, $2)",
            &moved_prefix,
        ),
        comments(
            client,
            "SELECT pubname::text, obj_description(oid, 'pg_publication')
             FROM pg_publication WHERE pubname LIKE 'dbtopo\\_ref\\_%'",
        ),
        client.query(
            "SELECT srvname::text FROM pg_user_mappings
             WHERE srvname LIKE 'dbtopo\\_%' AND usename = current_user",
            &[],
        ),
        client.query(
            "SELECT slot_name::text FROM pg_replication_slots
             WHERE slot_type = 'logical' AND starts_with(slot_name, 'dbtopo_ref_')",
            &[],
        ),
    )?;
    let found_tables = found_tables
        .iter()
        .map(|row| {
            let kind = row.get::<_, i8>(1) as u8 as char;
            (row.get(0), (kind, row.get(2)))
        })
        .collect();
    let mut partitions_of: BTreeMap<String, BTreeMap<String, PartLocation>> = BTreeMap::new();
    for row in partitions {
        partitions_of
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), part_location(row.get(2), row.get(3)));
    }
    let partition_keys = partition_keys
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let moved = moved
        .iter()
        .map(|row| (row.get(0), part_location(row.get(1), row.get(2))))
        .collect();
    Ok(crate::fragments::coordinator::Found {
        servers,
        tables: found_tables,
        partitions: partitions_of,
        partition_keys,
        moved,
        publications,
        user_mappings: mappings.iter().map(|row| row.get(0)).collect(),
        logical_slots: logical_slots.iter().map(|row| row.get(0)).collect(),
    })
}

/// A foreign table's server and remote name, or a table of the coordinator's own.
fn part_location(server: Option<String>, table: Option<String>) -> PartLocation {
    match (server, table) {
        (Some(server), Some(table)) => PartLocation::Remote { server, table },
        _ => PartLocation::Local,
    }
}

/// Name → comment, from a query that selects those two.
async fn comments(
    client: &Client,
    sql: &str,
) -> Result<BTreeMap<String, Option<String>>, tokio_postgres::Error> {
    Ok(client
        .query(sql, &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// The `dbtopo_ref_*` subscriptions in the database a node's client is connected to other than
/// `own` (the node's own, when it copies reference tables).
pub async fn leftover_subscriptions(
    client: &Client,
    own: Option<&str>,
) -> Result<Vec<LeftoverSubscription>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT s.subname::text, substring(s.subconninfo from 'host=([^ ]+)')
             FROM pg_subscription s
             WHERE starts_with(s.subname, 'dbtopo_ref_') AND s.subname IS DISTINCT FROM $1
               AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY 1",
            &[&own],
        )
        .await?
        .iter()
        .map(|row| LeftoverSubscription {
            name: row.get(0),
            publisher_host: row.get(1),
        })
        .collect())
}

/// Subscription `name` in the database a node's client is connected to, with its comment and
/// whether it is enabled: `None` when it does not exist.
pub async fn subscription(
    client: &Client,
    name: &str,
) -> Result<Option<FoundSubscription>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT obj_description(s.oid, 'pg_subscription'), s.subenabled,
                    EXISTS (SELECT 1 FROM pg_stat_subscription w
                            WHERE w.subid = s.oid AND w.pid IS NOT NULL AND w.relid IS NULL),
                    substring(s.subconninfo from 'host=([^ ]+)')
             FROM pg_subscription s
             WHERE s.subname = $1
               AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| FoundSubscription {
        comment: r.get(0),
        enabled: r.get(1),
        worker: r.get(2),
        publisher_host: r.get(3),
    }))
}
