//! `dbtopo verify`: checks the running system against the topology, beyond what `plan`
//! compares: rows per fragment and that they satisfy their part, that a row written through
//! the coordinator lands on the right node and nowhere else, and that each replica streams
//! through an active slot.
//!
//! Read-only but for the routing probe, which inserts one row per part through the
//! coordinator and rolls the transaction back (postgres_fdw rolls the fragment's transaction
//! back with it). Its key value is one the placement sends to that part and the table's
//! checks admit, so the probe works on every fragmentation the topology accepts.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::Client;

use crate::fragments::placement::{PartitionedTable, Placement, VerticalTable};
use crate::fragments::routing;
use crate::model::{self, Role, State};
use crate::pg::connect_to;
use crate::schema::ddl::quote;
use crate::schema::model::Table;
use crate::topology::Bound;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub subject: String,
    pub node: String,
    pub ok: bool,
    pub detail: String,
}

/// Where to reach each server, by node.
pub struct Endpoints<'a> {
    pub state: &'a State,
    pub password: &'a str,
    pub database: &'a str,
}

impl Endpoints<'_> {
    fn port(&self, node: &str) -> u16 {
        self.state
            .servers
            .get(node)
            .and_then(|s| s.container.as_ref())
            .map_or(0, |c| c.host_port)
    }

    async fn connect(&self, node: &str, database: &str) -> Result<Client, String> {
        connect_to(
            self.port(node),
            self.password,
            database,
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| format!("cannot connect: {}", crate::pg::server_message(&e)))
    }
}

pub async fn fragments(
    endpoints: &Endpoints<'_>,
    coordinator: &str,
    placement: &Placement,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut clients: BTreeMap<String, Result<Client, String>> = BTreeMap::new();
    for node in placement
        .servers
        .iter()
        .map(String::as_str)
        .chain([coordinator])
    {
        clients.insert(
            node.to_owned(),
            endpoints.connect(node, endpoints.database).await,
        );
    }
    for table in &placement.partitioned {
        for partition in &table.partitions {
            let subject = format!("rows {}/{}", table.table.name, partition.name);
            let check = match &clients[&partition.node] {
                Err(e) => failed(&subject, &partition.node, e.clone()),
                Ok(client) => {
                    rows_in_part(client, &subject, &partition.node, &partition.remote_table).await
                }
            };
            checks.push(check);
        }
        match &clients[coordinator] {
            Err(e) => checks.push(failed(
                &format!("routing {}", table.table.name),
                coordinator,
                e.clone(),
            )),
            Ok(client) => checks.extend(routing(client, table).await),
        }
    }
    if let Ok(client) = &clients[coordinator] {
        for table in &placement.vertical {
            checks.push(column_groups(client, coordinator, table).await);
        }
    }
    checks
}

/// Every column group of a vertically fragmented table holds the same keys: as many rows as
/// the view that joins them (a key missing from one group would drop out of the join).
async fn column_groups(client: &Client, coordinator: &str, table: &VerticalTable) -> Check {
    let subject = format!("columns {}", table.table.name);
    let message = |e: tokio_postgres::Error| crate::pg::server_message(&e);
    let count = |name: String| async move {
        let sql = format!("SELECT count(*) FROM {}", quote(&name));
        client
            .query_one(&sql, &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .map_err(message)
    };
    let joined = match count(table.table.name.clone()).await {
        Ok(n) => n,
        Err(e) => return failed(&subject, coordinator, e),
    };
    for part in &table.parts {
        match count(part.name.clone()).await {
            Ok(n) if n == joined => {}
            Ok(n) => {
                return failed(
                    &subject,
                    &part.node,
                    format!(
                        "{} holds {n} row(s), the joined table {joined}: keys are missing from a group",
                        part.name
                    ),
                );
            }
            Err(e) => return failed(&subject, &part.node, e),
        }
    }
    let nodes: Vec<&str> = table.parts.iter().map(|p| p.node.as_str()).collect();
    passed(
        &subject,
        coordinator,
        format!(
            "{joined} row(s) in every column group ({})",
            nodes.join(", ")
        ),
    )
}

/// The fragment's rows: counted, and all within the part (its CHECK says so; a row that got
/// in before the CHECK would fail the count of valid rows).
async fn rows_in_part(client: &Client, subject: &str, node: &str, table: &str) -> Check {
    let sql = format!("SELECT count(*) FROM {}", quote(table));
    match client.query_one(&sql, &[]).await {
        Ok(row) => {
            let rows: i64 = row.get(0);
            let invalid = client
                .query_opt(
                    "SELECT conname::text FROM pg_constraint
                     WHERE conrelid = $1::text::regclass AND NOT convalidated",
                    &[&table],
                )
                .await;
            match invalid {
                Ok(Some(row)) => failed(
                    subject,
                    node,
                    format!("constraint {} is not validated", row.get::<_, String>(0)),
                ),
                Ok(None) => passed(subject, node, format!("{rows} row(s), all within the part")),
                Err(e) => failed(subject, node, crate::pg::server_message(&e)),
            }
        }
        Err(e) => failed(subject, node, crate::pg::server_message(&e)),
    }
}

/// For each part, a probe row inserted through the coordinator, found in that part's
/// fragment and in no other, then rolled back.
async fn routing(client: &Client, table: &PartitionedTable) -> Vec<Check> {
    let mut checks = Vec::new();
    for (index, partition) in table.partitions.iter().enumerate() {
        let subject = format!("routing {}/{}", table.table.name, partition.name);
        let key = &table.key;
        checks.push(match probe(client, table, index).await {
            Ok(Probe::Landed(value)) => passed(
                &subject,
                &partition.node,
                format!(
                    "a probe row ({key} = {value}) landed on {} only",
                    partition.node
                ),
            ),
            Ok(Probe::NoValue) => passed(
                &subject,
                &partition.node,
                format!("no {key} the table's checks admit falls in this part: nothing to probe"),
            ),
            Ok(Probe::InUse(values)) => passed(
                &subject,
                &partition.node,
                format!(
                    "every {key} tried ({}) is in use under a unique key: nothing to probe",
                    values.join(", ")
                ),
            ),
            Err(why) => failed(&subject, &partition.node, why),
        });
    }
    checks
}

/// What probing one part found.
enum Probe {
    /// The probe row with this key went to the part and nowhere else.
    Landed(String),
    /// No value the table admits falls in the part: it can hold no row.
    NoValue,
    /// Every candidate value would repeat a unique key of a row already there.
    InUse(Vec<String>),
}

/// How many key values the probe tries before it gives up.
const ATTEMPTS: usize = 3;

/// Probe part `index` with a key value of its own.
async fn probe(client: &Client, table: &PartitionedTable, index: usize) -> Result<Probe, String> {
    let partition = &table.partitions[index];
    let message = |e: tokio_postgres::Error| crate::pg::server_message(&e);
    let candidates: Vec<String> = client
        .query(&probe_key_sql(table, index), &[])
        .await
        .map_err(|e| format!("choosing a probe value: {}", message(e)))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if candidates.is_empty() {
        return Ok(Probe::NoValue);
    }
    client.batch_execute("BEGIN").await.map_err(message)?;
    let mut landed = None;
    let mut last_error = None;
    let mut all_in_use = true;
    'values: for text in &candidates {
        let key_value = routing::key_value(table, text);
        for number in ["32000", "1"] {
            let (columns, values) = probe_row(&table.table, &table.key, &key_value, number);
            client
                .batch_execute("SAVEPOINT probe")
                .await
                .map_err(message)?;
            match probe_once(client, table, partition, &key_value, &columns, &values).await {
                Ok(()) => {
                    landed = Some(text.clone());
                    break 'values;
                }
                Err((why, in_use)) => {
                    all_in_use &= in_use;
                    last_error = Some(why);
                }
            }
            client
                .batch_execute("ROLLBACK TO SAVEPOINT probe")
                .await
                .map_err(message)?;
        }
    }
    client.batch_execute("ROLLBACK").await.map_err(message)?;
    match (landed, last_error) {
        (Some(value), _) => Ok(Probe::Landed(value)),
        (None, _) if all_in_use => Ok(Probe::InUse(candidates)),
        (None, why) => Err(why.unwrap_or_default()),
    }
}

/// Insert one probe row and check where it went (inside the caller's transaction).
async fn probe_once(
    client: &Client,
    table: &PartitionedTable,
    partition: &crate::fragments::placement::RemotePartition,
    key_value: &str,
    columns: &[String],
    values: &[String],
) -> Result<(), (String, bool)> {
    let message = |e: tokio_postgres::Error| (crate::pg::server_message(&e), false);
    // Rows with the probe's key in each part, before and after: only the expected part may
    // gain one (rows already there with that key do not count).
    let condition = format!("{} = {key_value}", quote(&table.key));
    let count_each = || async {
        let mut counts = Vec::new();
        for other in &table.partitions {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {condition}",
                quote(&other.name)
            );
            counts.push(
                client
                    .query_one(&sql, &[])
                    .await
                    .map_err(message)?
                    .get::<_, i64>(0),
            );
        }
        Ok::<_, (String, bool)>(counts)
    };
    let before = count_each().await?;
    // The key is given even when it is an identity column, so the probe picks its part.
    let sql = format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) RETURNING tableoid::regclass::text",
        quote(&table.table.name),
        columns.join(", "),
        values.join(", ")
    );
    let landed: String = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| {
            let in_use = e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION);
            (crate::pg::server_message(&e), in_use)
        })?
        .get(0);
    if landed != quote(&partition.name) {
        return Err((format!("the probe row went to {landed}"), false));
    }
    let after = count_each().await?;
    for ((other, before), after) in table.partitions.iter().zip(before).zip(after) {
        let expected = i64::from(other.name == partition.name);
        if after - before != expected {
            return Err((
                format!(
                    "{} probe row(s) in {} on {}",
                    after - before,
                    other.name,
                    other.node
                ),
                false,
            ));
        }
    }
    Ok(())
}

/// How many values each way around an anchor the probe considers.
const SPREAD: i32 = 1000;

/// The query that picks the probe values of part `index` (as PostgreSQL prints them): among
/// candidates of the key's type (the values the bounds and the table's checks name, values
/// above the highest key, values around each of those), those that the placement sends to
/// that part and that every CHECK reading only the key admits, values no row holds yet first
/// (a unique key may be the fragment key alone). No row when there is none.
fn probe_key_sql(table: &PartitionedTable, index: usize) -> String {
    let key = quote(&table.key);
    let name = quote(&table.table.name);
    let data_type = table
        .table
        .column(&table.key)
        .map_or("text", |c| c.data_type.as_str());
    let base = data_type.split('(').next().unwrap_or(data_type).trim();
    let cast = |sql: &str| format!("CAST({sql} AS {data_type})");
    let mut named: Vec<String> = Vec::new();
    for part in &table.partitions {
        match &part.rows {
            Bound::List { values } => named.extend(values.iter().cloned()),
            Bound::Range { from, to } => named.extend(from.iter().chain(to).cloned()),
            Bound::Hash { .. } | Bound::Default => {}
        }
    }
    named.extend(table.table.allowed_values(&table.key).unwrap_or_default());
    named.dedup();
    let highest = format!("(SELECT max({key}) FROM {name})");
    let mut sources: Vec<String> = named
        .iter()
        .enumerate()
        .map(|(rank, value)| format!("SELECT {rank}, {}", cast(&routing::literal(value))))
        .collect();
    // Values around an anchor, nearest first, after the named values.
    let around = |rank: usize, anchor: &str, step: &str| {
        format!(
            "SELECT {} + abs(g) * 100, {} FROM generate_series(-{SPREAD}, {SPREAD}) g",
            10_000 + rank,
            cast(&format!("{anchor} + g{step}"))
        )
    };
    let anchors = |zero: &str| {
        std::iter::once(format!("coalesce({highest}, {zero})"))
            .chain(std::iter::once(zero.to_owned()))
            .chain(named.iter().map(|v| cast(&routing::literal(v))))
            .collect::<Vec<_>>()
    };
    match base {
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => {
            for (rank, anchor) in anchors(&cast("0")).iter().enumerate() {
                sources.push(around(rank, anchor, ""));
            }
        }
        "date" => {
            for (rank, anchor) in anchors("current_date").iter().enumerate() {
                sources.push(around(rank, anchor, ""));
            }
        }
        "timestamp with time zone" | "timestamp without time zone" => {
            for (rank, anchor) in anchors(&cast("now()")).iter().enumerate() {
                sources.push(around(rank, anchor, " * interval '1 day'"));
            }
        }
        "text" | "character varying" | "character" => {
            sources.push(format!("SELECT 9999, {}", cast("''")));
            sources.push(format!(
                "SELECT 10000 + g, {} FROM generate_series(1, {SPREAD}) g",
                cast("'dbtopo-probe-' || g")
            ));
        }
        "uuid" => sources.push(format!(
            "SELECT 10000 + g, gen_random_uuid() FROM generate_series(1, {SPREAD}) g"
        )),
        "boolean" => sources.push("SELECT 10000, true UNION ALL SELECT 10001, false".to_owned()),
        _ => {}
    }
    // The table's own checks that read the key alone: a probe value must pass them.
    let columns: Vec<&str> = table
        .table
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let checks: Vec<String> = table
        .table
        .checks
        .iter()
        .filter(|check| {
            let words = crate::fragments::placement::identifiers(&check.expression);
            columns
                .iter()
                .filter(|c| words.contains(**c))
                .all(|c| *c == table.key)
        })
        .map(|check| format!(" AND ({}) IS NOT FALSE", check.expression))
        .collect();
    format!(
        "WITH candidate (dbtopo_rank, {key}) AS ({}),\n\
         fits AS (SELECT dbtopo_rank, {key} FROM candidate WHERE {key} IS NOT NULL \
         AND {} = {index}{} ORDER BY dbtopo_rank LIMIT 20)\n\
         SELECT {key}::text FROM fits \
         ORDER BY EXISTS (SELECT FROM {name} t WHERE t.{key} = fits.{key}), dbtopo_rank \
         LIMIT {ATTEMPTS}",
        if sources.is_empty() {
            format!("SELECT 0, {} WHERE false", cast("NULL"))
        } else {
            sources.join("\n UNION ALL ")
        },
        routing::part_of(table, &key),
        checks.concat()
    )
}

/// Column list and values for a probe row: the key, and for every NOT NULL column without a
/// default or identity a value its CHECK allows (the first listed one) or, for a number,
/// `number` (the probe tries a large one, unlikely to collide with a key, then 1).
fn probe_row(
    table: &Table,
    key: &str,
    key_value: &str,
    number: &str,
) -> (Vec<String>, Vec<String>) {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for column in &table.columns {
        let value = if column.name == key {
            key_value.to_owned()
        } else if column.not_null && column.default.is_none() && column.identity.is_none() {
            match table
                .allowed_values(&column.name)
                .and_then(|v| v.into_iter().next())
            {
                Some(allowed) if crate::schema::model::is_numeric_type(&column.data_type) => {
                    allowed
                }
                Some(allowed) => routing::literal(&allowed),
                None => sample_value(&column.data_type, number),
            }
        } else {
            continue;
        };
        columns.push(quote(&column.name));
        values.push(value);
    }
    (columns, values)
}

fn sample_value(data_type: &str, number: &str) -> String {
    let base = data_type.split('(').next().unwrap_or(data_type).trim();
    match base {
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => {
            number.to_owned()
        }
        "boolean" => "false".to_owned(),
        "date" | "timestamp with time zone" | "timestamp without time zone" => "now()".to_owned(),
        "uuid" => "gen_random_uuid()".to_owned(),
        _ => format!("'dbtopo-verify'::{data_type}"),
    }
}

/// Each node's reference copies: its subscription's worker runs and every table is synced.
pub async fn references(endpoints: &Endpoints<'_>, placement: &Placement) -> Vec<Check> {
    let mut checks = Vec::new();
    for (node, tables) in &placement.references {
        let name = crate::fragments::coordinator::reference_name(node);
        let subject = format!("copies {}", tables.join(", "));
        let check = match endpoints.connect(node, endpoints.database).await {
            Err(e) => failed(&subject, node, e),
            Ok(client) => {
                let row = client
                    .query_opt(
                        "SELECT (SELECT count(*) FROM pg_stat_subscription st
                                 WHERE st.subid = s.oid AND st.pid IS NOT NULL),
                                (SELECT count(*) FROM pg_subscription_rel r
                                 WHERE r.srsubid = s.oid AND r.srsubstate <> 'r'),
                                (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid)
                         FROM pg_subscription s WHERE s.subname = $1",
                        &[&name],
                    )
                    .await;
                match row {
                    Err(e) => failed(&subject, node, crate::pg::server_message(&e)),
                    Ok(None) => failed(&subject, node, format!("subscription {name} is missing")),
                    Ok(Some(row)) => {
                        let (workers, syncing, total): (i64, i64, i64) =
                            (row.get(0), row.get(1), row.get(2));
                        if workers > 0 && syncing == 0 && total == tables.len() as i64 {
                            passed(
                                &subject,
                                node,
                                format!("subscription {name} streams, {total} table(s) in sync"),
                            )
                        } else {
                            failed(
                                &subject,
                                node,
                                format!(
                                    "subscription {name}: {workers} worker(s), {syncing} of {total} table(s) still copying"
                                ),
                            )
                        }
                    }
                }
            }
        };
        checks.push(check);
    }
    checks
}

/// Each replica: streaming from its upstream through its slot.
pub async fn replicas(endpoints: &Endpoints<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    for server in endpoints.state.servers.values() {
        let Role::Replica { upstream } = &server.role else {
            continue;
        };
        let subject = format!("replica {}", server.node);
        let slot = model::slot_name(&server.node);
        let check = match endpoints.connect(upstream, "postgres").await {
            Err(e) => failed(&subject, upstream, e),
            Ok(client) => {
                let row = client
                    .query_opt(
                        "SELECT s.active, r.state,
                                pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint,
                                r.sync_state
                         FROM pg_replication_slots s
                         LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
                         WHERE s.slot_name = $1",
                        &[&slot],
                    )
                    .await;
                match row {
                    Err(e) => failed(&subject, upstream, crate::pg::server_message(&e)),
                    Ok(None) => failed(&subject, upstream, format!("slot {slot} is missing")),
                    Ok(Some(row)) => {
                        let active: bool = row.get(0);
                        let state: Option<String> = row.get(1);
                        let lag: Option<i64> = row.get(2);
                        let sync_state: Option<String> = row.get(3);
                        let synchronous = server.config.as_ref().is_some_and(|c| {
                            c.postgresql_conf
                                .contains(crate::templates::SYNCHRONOUS_MARK)
                        });
                        match (active, state.as_deref(), lag) {
                            (true, Some("streaming"), Some(_))
                                if synchronous && sync_state.as_deref() != Some("sync") =>
                            {
                                failed(
                                    &subject,
                                    upstream,
                                    format!(
                                        "declared synchronous, but {upstream} reports it {}",
                                        sync_state.unwrap_or_else(|| "unknown".into())
                                    ),
                                )
                            }
                            (true, Some("streaming"), Some(lag)) => {
                                match timelines(endpoints, &client, &server.node).await {
                                    Ok((theirs, ours)) if theirs == ours => passed(
                                        &subject,
                                        upstream,
                                        format!(
                                            "streaming through slot {slot}{}, replay lag {lag} \
                                             bytes, on timeline {ours} as {upstream}",
                                            if synchronous { ", synchronous" } else { "" }
                                        ),
                                    ),
                                    Ok((theirs, ours)) => failed(
                                        &subject,
                                        upstream,
                                        format!(
                                            "streams on timeline {ours}, but {upstream} is on \
                                             timeline {theirs}"
                                        ),
                                    ),
                                    Err(why) => failed(&subject, &server.node, why),
                                }
                            }
                            _ => failed(
                                &subject,
                                upstream,
                                format!(
                                    "slot {slot} {}, replication state {}",
                                    if active { "active" } else { "inactive" },
                                    state.unwrap_or_else(|| "none".into())
                                ),
                            ),
                        }
                    }
                }
            }
        };
        checks.push(check);
    }
    checks
}

/// The upstream's current timeline (from the name of the WAL file it writes) and the one the
/// replica last received WAL on: after a promotion, every replica must follow the new one.
async fn timelines(
    endpoints: &Endpoints<'_>,
    upstream: &tokio_postgres::Client,
    replica: &str,
) -> Result<(i32, i32), String> {
    let theirs: i32 = upstream
        .query_one(
            "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
            &[],
        )
        .await
        .map_err(|e| crate::pg::server_message(&e))?
        .get(0);
    let client = endpoints.connect(replica, "postgres").await?;
    let ours: Option<i32> = client
        .query_opt("SELECT received_tli FROM pg_stat_wal_receiver", &[])
        .await
        .map_err(|e| crate::pg::server_message(&e))?
        .and_then(|row| row.get(0));
    Ok((theirs, ours.unwrap_or(0)))
}

fn passed(subject: &str, node: &str, detail: String) -> Check {
    Check {
        subject: subject.to_owned(),
        node: node.to_owned(),
        ok: true,
        detail,
    }
}

fn failed(subject: &str, node: &str, detail: String) -> Check {
    Check {
        subject: subject.to_owned(),
        node: node.to_owned(),
        ok: false,
        detail,
    }
}

/// Every server answers on the port its container publishes: the first thing a user of the
/// environment needs, and the only check a topology without replicas or fragments has.
pub async fn servers(endpoints: &Endpoints<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    for server in endpoints.state.servers.values() {
        let subject = format!("server {}", server.node);
        let port = endpoints.port(&server.node);
        let check = if port == 0 {
            failed(
                &subject,
                &server.node,
                "no running container of the environment".to_owned(),
            )
        } else {
            let answer = match endpoints.connect(&server.node, "postgres").await {
                Err(e) => Err(e),
                Ok(client) => client
                    .query_one("SELECT current_setting('server_version')", &[])
                    .await
                    .map(|row| row.get::<_, String>(0))
                    .map_err(|e| crate::pg::server_message(&e)),
            };
            match answer {
                Ok(version) => passed(
                    &subject,
                    &server.node,
                    format!("PostgreSQL {version} answers on 127.0.0.1:{port}"),
                ),
                Err(e) => failed(
                    &subject,
                    &server.node,
                    format!("PostgreSQL on 127.0.0.1:{port}: {e}"),
                ),
            }
        };
        checks.push(check);
    }
    checks
}

/// The report as an aligned table.
pub fn render(checks: &[Check]) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(["CHECK", "NODE", "RESULT"]);
    for check in checks {
        let result = if check.ok { "ok" } else { "FAILED" };
        table.add_row([
            check.subject.clone(),
            check.node.clone(),
            format!("{result}: {}", check.detail),
        ]);
    }
    let failures = checks.iter().filter(|c| !c.ok).count();
    format!(
        "{}\n\n{} check(s), {failures} failed.\n",
        table.trim_fmt(),
        checks.len()
    )
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn the_report_is_a_table_with_a_count_of_failures() {
        let check = |subject: &str, ok: bool, detail: &str| Check {
            subject: subject.to_owned(),
            node: "shard-eu".to_owned(),
            ok,
            detail: detail.to_owned(),
        };
        let report = render(&[
            check("replica primary-replica", true, "streaming"),
            check("routing orders/orders_eu", false, "landed on shard-us"),
        ]);
        let lines: Vec<&str> = report.lines().collect();
        assert!(
            lines[0].contains("CHECK") && lines[0].contains("RESULT"),
            "{report}"
        );
        let result_column = lines[0].find("RESULT").unwrap();
        assert_eq!(
            lines[1].find("ok: streaming"),
            Some(result_column),
            "{report}"
        );
        assert_eq!(
            lines[2].find("FAILED: landed on shard-us"),
            Some(result_column),
            "{report}"
        );
        assert!(report.ends_with("\n2 check(s), 1 failed.\n"), "{report}");
    }
}
