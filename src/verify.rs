//! `dbtopo verify`: checks the running system against the topology, beyond what `plan`
//! compares: rows per fragment and that they satisfy their part, that a row written through
//! the coordinator lands on the right node and nowhere else, and that each replica streams
//! through an active slot.
//!
//! Read-only but for the routing probe, which inserts one row through the coordinator and
//! rolls the transaction back (postgres_fdw rolls the fragment's transaction back with it).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::Client;

use crate::fragments::placement::{PartitionedTable, Placement, VerticalTable};
use crate::model::{self, Role, State};
use crate::pg::connect_to;
use crate::schema::ddl::quote;
use crate::schema::model::Table;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    let key = table
        .partition_by
        .split_once('(')
        .map(|(_, k)| k.trim_end_matches(')').trim_matches('"').to_owned())
        .unwrap_or_default();
    let mut checks = Vec::new();
    for (index, partition) in table.partitions.iter().enumerate() {
        let subject = format!("routing {}/{}", table.table.name, partition.name);
        let result = probe(client, table, &key, index).await;
        checks.push(match result {
            Ok(()) => passed(
                &subject,
                &partition.node,
                format!("a probe row landed on {} only", partition.node),
            ),
            Err(why) => failed(&subject, &partition.node, why),
        });
    }
    checks
}

async fn probe(
    client: &Client,
    table: &PartitionedTable,
    key: &str,
    index: usize,
) -> Result<(), String> {
    let partition = &table.partitions[index];
    let key_value = sample_key(client, table, key, index).await?;
    let message = |e: tokio_postgres::Error| crate::pg::server_message(&e);
    client.batch_execute("BEGIN").await.map_err(message)?;
    let mut outcome = Err(String::new());
    for number in ["32000", "1"] {
        let (columns, values) = probe_row(&table.table, key, &key_value, number);
        client
            .batch_execute("SAVEPOINT probe")
            .await
            .map_err(message)?;
        outcome = probe_once(client, table, partition, key, &key_value, &columns, &values).await;
        if outcome.is_ok() {
            break;
        }
        client
            .batch_execute("ROLLBACK TO SAVEPOINT probe")
            .await
            .map_err(message)?;
    }
    client.batch_execute("ROLLBACK").await.map_err(message)?;
    outcome
}

/// Insert one probe row and check where it went (inside the caller's transaction).
async fn probe_once(
    client: &Client,
    table: &PartitionedTable,
    partition: &crate::fragments::placement::RemotePartition,
    key: &str,
    key_value: &str,
    columns: &[String],
    values: &[String],
) -> Result<(), String> {
    let message = |e: tokio_postgres::Error| crate::pg::server_message(&e);
    // Rows with the probe's key in each part, before and after: only the expected part may
    // gain one (rows already there with that key do not count).
    {
        let condition = format!("{} = {key_value}", quote(key));
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
            Ok::<_, String>(counts)
        };
        let before = count_each().await?;
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING tableoid::regclass::text",
            quote(&table.table.name),
            columns.join(", "),
            values.join(", ")
        );
        let landed: String = client.query_one(&sql, &[]).await.map_err(message)?.get(0);
        if landed != partition.name {
            return Err(format!("the probe row went to {landed}"));
        }
        let after = count_each().await?;
        for ((other, before), after) in table.partitions.iter().zip(before).zip(after) {
            let expected = i64::from(other.name == partition.name);
            if after - before != expected {
                return Err(format!(
                    "{} probe row(s) in {} on {}",
                    after - before,
                    other.name,
                    other.node
                ));
            }
        }
        Ok(())
    }
}

/// A key value that belongs to part `index`, as an SQL literal.
async fn sample_key(
    client: &Client,
    table: &PartitionedTable,
    key: &str,
    index: usize,
) -> Result<String, String> {
    let bound = &table.partitions[index].bound;
    if let Some(values) = bound.strip_prefix("FOR VALUES IN (") {
        let first = split_first_literal(values.trim_end_matches(')'));
        return Ok(first);
    }
    if let Some(range) = bound.strip_prefix("FOR VALUES FROM (") {
        let (from, rest) = range.split_once(") TO (").unwrap_or((range, ""));
        let to = rest.trim_end_matches(')');
        return Ok(match (from, to) {
            ("MINVALUE", "MAXVALUE") => "0".to_owned(),
            ("MINVALUE", to) => below(to),
            (from, _) => from.to_owned(),
        });
    }
    if let Some(spec) = bound.strip_prefix("FOR VALUES WITH (MODULUS ") {
        let numbers: Vec<&str> = spec.trim_end_matches(')').split(", REMAINDER ").collect();
        let data_type = table
            .table
            .column(key)
            .map_or("bigint".to_owned(), |c| c.data_type.clone());
        let sql = format!(
            "SELECT v FROM generate_series(1, 10000) v WHERE satisfies_hash_partition(\
             {}::regclass, {}, {}, v::{data_type}) LIMIT 1",
            literal(&table.table.name),
            numbers.first().copied().unwrap_or("1"),
            numbers.get(1).copied().unwrap_or("0"),
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(|e| crate::pg::server_message(&e))?;
        let value = row.get::<_, i32>(0).to_string();
        let numeric = crate::schema::model::is_numeric_type(&data_type);
        return Ok(if numeric { value } else { literal(&value) });
    }
    Err("a default part has no value of its own to probe".to_owned())
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn split_first_literal(list: &str) -> String {
    if let Some(rest) = list.strip_prefix('\'') {
        let mut out = String::from("'");
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    out.push(chars.next().unwrap_or('\''));
                } else {
                    break;
                }
            }
        }
        out
    } else {
        list.split(',').next().unwrap_or_default().trim().to_owned()
    }
}

/// A value just below an upper bound: one less for numbers, the bound's text shortened
/// otherwise.
fn below(to: &str) -> String {
    match to.parse::<i64>() {
        Ok(n) => (n - 1).to_string(),
        Err(_) => "''".to_owned(),
    }
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
                Some(allowed) => literal(&allowed),
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
                                pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint
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
                        match (active, state.as_deref(), lag) {
                            (true, Some("streaming"), Some(lag)) => passed(
                                &subject,
                                upstream,
                                format!("streaming through slot {slot}, replay lag {lag} bytes"),
                            ),
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
    let width =
        |f: fn(&Check) -> usize, header: usize| checks.iter().map(f).max().unwrap_or(0).max(header);
    let subject = width(|c| c.subject.len(), 5);
    let node = width(|c| c.node.len(), 4);
    let mut out = format!("{:subject$}  {:node$}  RESULT\n", "CHECK", "NODE");
    for check in checks {
        let result = if check.ok { "ok" } else { "FAILED" };
        out.push_str(&format!(
            "{:subject$}  {:node$}  {result}: {}\n",
            check.subject, check.node, check.detail
        ));
    }
    let failures = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&format!(
        "\n{} check(s), {failures} failed.\n",
        checks.len()
    ));
    out
}
