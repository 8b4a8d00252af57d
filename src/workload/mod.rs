//! Orders placed the way the shop places them, each in one distributed transaction: the
//! stock taken from Inventory on the coordinator (a row lock on the location's row, so no
//! overselling), and the order, its lines, the payment and the shipment each written on the
//! node that holds it, with two-phase commit across every node the order touches. Which node
//! holds a row comes from the placement (the part its fragment key falls in, or every column
//! group), never from the region's name, so any fragmentation of the order tables works.
//! Then the invariants.

mod follow;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::desired::Desired;
use crate::fragments::placement::{PartitionedTable, VerticalTable};
use crate::fragments::routing;
use crate::model::Role;
use crate::schema::ddl::quote;
use crate::schema::model::Table;
use crate::secrets::Secrets;
use crate::txn::{DistributedTransaction, Participant, TxnError};
pub use follow::{Cut, FOLLOW_DEADLINE};
use follow::{cut_off, moved, settle};

/// The tables an order writes, in the order it writes them.
pub const ORDER_TABLES: [&str; 4] = ["orders", "order_details", "transactions", "shipping"];

/// Where one of the order tables keeps its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Whole, on the coordinator.
    Whole,
    /// Each row in the part its fragment key falls in.
    Horizontal(PartitionedTable),
    /// Each row split into column groups on their nodes.
    Vertical(VerticalTable),
}

/// One of the order tables: the manifest's table (column types and defaults) and its layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTable {
    pub table: Table,
    pub layout: Layout,
}

/// What to connect to.
pub struct Target {
    pub coordinator: String,
    pub database: String,
    pub password: String,
    /// Host ports of each node's servers, as the topology the workload started with names
    /// them: the node's own first, then its replicas'. A switchover moves the node's role to
    /// one of them; the writable one is the node now.
    pub servers: BTreeMap<String, Vec<u16>>,
    /// The order tables by name, with where they keep their rows.
    pub tables: BTreeMap<String, OrderTable>,
    /// Place orders without two-phase commit: one transaction on the coordinator writing the
    /// fragments through postgres_fdw (each node commits on its own), to measure what
    /// atomicity costs.
    pub plain: bool,
}

/// One order: a customer and the products with quantities.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub user_id: i64,
    /// The customer's region, as the shop knows it from the session (reading it would join
    /// every column group of `users`, one of which may be on a node that is down).
    pub region: String,
    pub lines: Vec<(i64, i32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Committed everywhere, with its order id.
    Committed(i64),
    /// Not enough stock: rolled back everywhere.
    OutOfStock,
}

#[derive(Debug)]
pub struct Report {
    pub placed: Vec<i64>,
    pub out_of_stock: usize,
    pub failed: Vec<String>,
    /// Orders whose outcome this client cannot know (the coordinator was lost while the
    /// decision was recorded) or whose commit a node has not confirmed yet: the decision
    /// record settles them, and the next apply finishes them.
    pub unknown: Vec<String>,
    pub retries: usize,
    /// Latencies of the placed orders, in microseconds.
    pub latencies: Histogram<u64>,
    pub elapsed: Duration,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            placed: Vec::new(),
            out_of_stock: 0,
            failed: Vec::new(),
            unknown: Vec::new(),
            retries: 0,
            // Three significant digits, growing as needed: no latency is out of range.
            latencies: Histogram::new(3).expect("3 significant digits is a valid precision"),
            elapsed: Duration::ZERO,
        }
    }
}

impl Report {
    pub fn percentile(&self, p: f64) -> Duration {
        Duration::from_micros(self.latencies.value_at_quantile(p))
    }

    fn record(&mut self, latency: Duration) {
        // The histogram grows to any value an order can take (not years of microseconds).
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let _ = self.latencies.record(micros);
    }

    pub fn per_second(&self) -> f64 {
        self.placed.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WorkloadError {
    #[error("node {node}: {}", crate::pg::server_message(source))]
    #[diagnostic(code(dbtopo::workload::query))]
    Query {
        node: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Txn(#[from] TxnError),
    /// Settled by [`place`], never reported as such.
    #[error("{source}")]
    #[diagnostic(code(dbtopo::workload::cut))]
    Cut {
        cut: Cut,
        #[source]
        source: TxnError,
    },
    #[error("node {0} did not answer when last tried")]
    #[diagnostic(code(dbtopo::workload::unreachable))]
    Unreachable(String),
    #[error("no part of table {table} takes {key} = {value}")]
    #[diagnostic(
        code(dbtopo::workload::no_part),
        help("add a part for it, or a `default: true` part, to the table's fragments")
    )]
    NoPart {
        table: String,
        key: String,
        value: String,
    },
}

impl Target {
    /// Where the workload writes in the environment `desired` describes: the coordinator, and
    /// for each order table the parts or column groups that hold its rows (the coordinator's
    /// own table where it is not fragmented). `None` when the topology declares no schema.
    pub fn from_desired(desired: &Desired, secrets: &Secrets) -> Option<Target> {
        let schema = desired.schema.as_ref()?;
        let coordinator = schema
            .fragments
            .as_ref()
            .map_or_else(|| schema.target.nodes[0].clone(), |f| f.coordinator.clone());
        let mut servers: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        // Nodes first, so each node's own server leads its list.
        let mut listed: Vec<_> = desired.state.servers.iter().collect();
        listed.sort_by_key(|(_, s)| s.role != Role::Primary);
        for (node, server) in listed {
            let Some(container) = &server.container else {
                continue;
            };
            let node = match &server.role {
                Role::Primary => node,
                Role::Replica { upstream } => upstream,
            };
            servers
                .entry(node.clone())
                .or_default()
                .push(container.host_port);
        }
        let placement = schema.fragments.as_ref().map(|f| &f.placement);
        let mut tables = BTreeMap::new();
        for name in ORDER_TABLES {
            let Some(table) = schema.manifest.schema.tables.get(name) else {
                continue;
            };
            let horizontal = placement
                .and_then(|p| p.partitioned.iter().find(|t| t.table.name == name))
                .cloned()
                .map(Layout::Horizontal);
            let vertical = placement
                .and_then(|p| p.vertical.iter().find(|t| t.table.name == name))
                .cloned()
                .map(Layout::Vertical);
            tables.insert(
                name.to_owned(),
                OrderTable {
                    table: table.clone(),
                    layout: horizontal.or(vertical).unwrap_or(Layout::Whole),
                },
            );
        }
        Some(Target {
            coordinator,
            database: schema.target.database.clone(),
            password: secrets.superuser.clone(),
            servers,
            tables,
            plain: false,
        })
    }

    /// The coordinator, then every node holding a part or a column group of an order table.
    pub fn nodes(&self) -> BTreeSet<&str> {
        let mut nodes = BTreeSet::from([self.coordinator.as_str()]);
        for table in self.tables.values() {
            match &table.layout {
                Layout::Whole => {}
                Layout::Horizontal(t) => nodes.extend(t.partitions.iter().map(|p| p.node.as_str())),
                Layout::Vertical(t) => nodes.extend(t.parts.iter().map(|p| p.node.as_str())),
            }
        }
        nodes
    }
}

/// How long an order waits for a row lock before it fails.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A retry helps: the transaction lost a race, not a rule.
fn transient(error: &WorkloadError) -> bool {
    let code = match error {
        WorkloadError::Query { source, .. } => source.code(),
        WorkloadError::Txn(TxnError::Participant { source, .. }) => source.code(),
        _ => None,
    };
    matches!(
        code,
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// Place one order in one distributed transaction, retrying lost races and, until
/// [`FOLLOW_DEADLINE`], orders a moving node failed (both counted). With `plain`, an order
/// is not placed again: its COMMIT's outcome may be unknown.
pub async fn place(
    target: &Target,
    connections: &mut Connections,
    order: &OrderRequest,
    retries: &mut usize,
) -> Result<Placed, WorkloadError> {
    let deadline = Instant::now() + FOLLOW_DEADLINE;
    let mut pause = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        connections.refresh(target).await;
        let outcome = match if target.plain {
            place_plain(target, connections, order).await
        } else {
            place_once(target, connections, order).await
        } {
            Err(WorkloadError::Cut { cut, source }) => {
                match settle(target, connections, &cut, deadline).await {
                    Some(true) => Ok(Placed::Committed(cut.order_id)),
                    // Rolled back everywhere: certainly nothing committed, so placed again.
                    Some(false) if Instant::now() < deadline => {
                        *retries += 1;
                        continue;
                    }
                    _ => Err(WorkloadError::Txn(source)),
                }
            }
            other => other,
        };
        match outcome {
            Err(error) if transient(&error) && attempt < 5 => {
                attempt += 1;
                *retries += 1;
            }
            Err(error) if moved(target, &error) => {
                // Some connection may lead to a standby now: all are made again.
                *connections = Connections::default();
                if target.plain || Instant::now() + pause > deadline {
                    return Err(error);
                }
                *retries += 1;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// One client's connections: the coordinator twice (one for the transaction, one for ids,
/// routes and decisions, which must not be part of it) and each node holding order rows. A node that does not answer
/// has no connection until it does: only the orders that need it fail meanwhile.
#[derive(Default)]
pub struct Connections {
    coordinator: Option<Client>,
    in_transaction: BTreeMap<String, Client>,
}

impl Connections {
    /// Connect what is missing or closed (a node stopped); cheap when everything is connected.
    pub async fn refresh(&mut self, target: &Target) {
        if self.coordinator.as_ref().is_none_or(Client::is_closed) {
            self.coordinator = target.connect(&target.coordinator).await.ok();
        }
        for node in target.nodes() {
            if self.in_transaction.get(node).is_none_or(Client::is_closed) {
                match target.connect(node).await {
                    Ok(client) => self.in_transaction.insert(node.to_owned(), client),
                    Err(_) => self.in_transaction.remove(node),
                };
            }
        }
    }

    fn coordinator(&self, target: &Target) -> Result<&Client, WorkloadError> {
        self.coordinator
            .as_ref()
            .ok_or_else(|| WorkloadError::Unreachable(target.coordinator.clone()))
    }

    fn in_transaction(&self, node: &str) -> Result<&Client, WorkloadError> {
        self.in_transaction
            .get(node)
            .ok_or_else(|| WorkloadError::Unreachable(node.to_owned()))
    }
}

/// One row an order writes: its table and its values as SQL literals, by column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub table: &'static str,
    pub values: Vec<(String, String)>,
}

impl Row {
    fn new(table: &'static str, values: &[(&str, String)]) -> Row {
        Row {
            table,
            values: values
                .iter()
                .map(|(c, v)| ((*c).to_owned(), v.clone()))
                .collect(),
        }
    }

    fn value(&self, column: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v.as_str())
    }
}

/// The statement that draws a new value of `table`'s `column` on the coordinator: its
/// identity's sequence, or the key sequence of a vertically fragmented table's view.
fn next_id(target: &Target, table: &str, column: &str) -> String {
    match target.tables.get(table).map(|t| &t.layout) {
        Some(Layout::Vertical(v)) if v.key == column => format!(
            "nextval({})",
            routing::literal(&quote(&format!("{table}_{column}_seq")))
        ),
        _ => format!(
            "nextval(pg_get_serial_sequence({}, {}))",
            routing::literal(&quote(table)),
            routing::literal(column)
        ),
    }
}

/// A fragment key the workload does not write itself (`order_date`, say) takes its default:
/// drawn on the coordinator for each row and written explicitly, so the row's part is known.
fn drawn_default(target: &Target, row: &Row) -> Option<(String, String)> {
    let table = target.tables.get(row.table)?;
    let Layout::Horizontal(partitioned) = &table.layout else {
        return None;
    };
    if row.value(&partitioned.key).is_some() {
        return None;
    }
    let column = table.table.column(&partitioned.key)?;
    let default = column.default.as_ref()?;
    Some((
        column.name.clone(),
        format!("CAST(({default}) AS {})::text", column.data_type),
    ))
}

/// Cents from a price as PostgreSQL prints it.
fn cents(price: &str) -> i64 {
    (price.parse::<f64>().unwrap_or(0.0) * 100.0).round() as i64
}

/// Where each row goes: the node and the table there, for every statement the order runs.
/// `parts` holds, for each row of a horizontally fragmented table in order, the index of its
/// part.
fn writes(
    target: &Target,
    rows: &[Row],
    parts: &[Option<i32>],
) -> Result<Vec<(String, String)>, WorkloadError> {
    let insert = |table: &str, columns: &[&(String, String)], overriding: bool| {
        format!(
            "INSERT INTO {} ({}){} VALUES ({});",
            quote(table),
            columns
                .iter()
                .map(|(c, _)| quote(c))
                .collect::<Vec<_>>()
                .join(", "),
            if overriding {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            },
            columns
                .iter()
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut parts = parts.iter();
    let mut out = Vec::new();
    for row in rows {
        let all: Vec<&(String, String)> = row.values.iter().collect();
        let layout = target
            .tables
            .get(row.table)
            .map_or(&Layout::Whole, |t| &t.layout);
        match layout {
            // Its ids were drawn from its own identities: written as they are.
            Layout::Whole => out.push((target.coordinator.clone(), insert(row.table, &all, true))),
            Layout::Horizontal(table) => {
                let part = parts
                    .next()
                    .copied()
                    .flatten()
                    .and_then(|i| table.partitions.get(usize::try_from(i).ok()?))
                    .ok_or_else(|| WorkloadError::NoPart {
                        table: row.table.to_owned(),
                        key: table.key.clone(),
                        value: row.value(&table.key).unwrap_or("NULL").to_owned(),
                    })?;
                // A part kept on the coordinator shares its partitioned table's identities.
                out.push((
                    part.node.clone(),
                    insert(&part.remote_table, &all, part.local),
                ));
            }
            Layout::Vertical(table) => {
                for part in &table.parts {
                    let columns: Vec<&(String, String)> = all
                        .iter()
                        .copied()
                        .filter(|(c, _)| part.columns.contains(c))
                        .collect();
                    out.push((
                        part.node.clone(),
                        insert(&part.remote_table, &columns, false),
                    ));
                }
            }
        }
    }
    Ok(out)
}

async fn place_once(
    target: &Target,
    connections: &Connections,
    order: &OrderRequest,
) -> Result<Placed, WorkloadError> {
    let coordinator = connections.coordinator(target)?;
    let asked = |source| WorkloadError::Query {
        node: target.coordinator.clone(),
        source,
    };
    // Keys from the coordinator's identities and the prices, in one round trip.
    let mut drawn = vec![
        next_id(target, "orders", "order_id"),
        next_id(target, "transactions", "transaction_id"),
        next_id(target, "shipping", "shipping_id"),
    ];
    for (product_id, _) in &order.lines {
        drawn.push(next_id(target, "order_details", "order_detail_id"));
        drawn.push(format!(
            "(SELECT price FROM products WHERE product_id = {product_id})"
        ));
    }
    let region = routing::literal(&order.region);
    let answer = |sql: Vec<String>| async move {
        let sql = format!(
            "SELECT ARRAY[{}]::text[]",
            sql.iter()
                .map(|e| format!("({e})::text"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        coordinator
            .query_one(&sql, &[])
            .await
            .map(|row| row.get::<_, Vec<Option<String>>>(0))
    };
    let keys = answer(drawn).await.map_err(asked)?;
    let key = |i: usize| keys.get(i).cloned().flatten().unwrap_or("NULL".into());
    let order_id = key(0);
    let mut total = 0;
    let mut lines = Vec::new();
    for (i, (product_id, quantity)) in order.lines.iter().enumerate() {
        let price = keys.get(4 + 2 * i).cloned().flatten().unwrap_or("0".into());
        total += cents(&price) * i64::from(*quantity);
        lines.push(Row::new(
            "order_details",
            &[
                ("order_detail_id", key(3 + 2 * i)),
                ("order_id", order_id.clone()),
                ("region", region.clone()),
                ("product_id", product_id.to_string()),
                ("quantity", quantity.to_string()),
                ("unit_price", price),
            ],
        ));
    }
    let total = format!("{}.{:02}", total / 100, total % 100);
    let mut rows = vec![Row::new(
        "orders",
        &[
            ("order_id", order_id.clone()),
            ("user_id", order.user_id.to_string()),
            ("region", region.clone()),
            ("status", "'paid'".into()),
            ("total_amount", total.clone()),
        ],
    )];
    rows.extend(lines);
    rows.push(Row::new(
        "transactions",
        &[
            ("transaction_id", key(1)),
            ("order_id", order_id.clone()),
            ("region", region.clone()),
            ("amount", total),
            ("method", "'card'".into()),
            ("status", "'succeeded'".into()),
        ],
    ));
    rows.push(Row::new(
        "shipping",
        &[
            ("shipping_id", key(2)),
            ("order_id", order_id.clone()),
            ("region", region.clone()),
            (
                "address",
                routing::literal(&format!("address of user {}", order.user_id)),
            ),
            ("status", "'pending'".into()),
        ],
    ));
    // Then, in one more round trip, the fragment keys left to their defaults and the part of
    // every row of a horizontally fragmented table.
    let defaults: Vec<(usize, (String, String))> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| Some((i, drawn_default(target, row)?)))
        .collect();
    if !defaults.is_empty() {
        let values = answer(defaults.iter().map(|(_, (_, sql))| sql.clone()).collect())
            .await
            .map_err(asked)?;
        for ((i, (column, _)), value) in defaults.into_iter().zip(values) {
            let value = value.map_or("NULL".to_owned(), |v| routing::literal(&v));
            rows[i].values.push((column, value));
        }
    }
    let routes: Vec<String> = rows
        .iter()
        .filter_map(|row| match &target.tables.get(row.table)?.layout {
            Layout::Horizontal(table) => {
                let value = row.value(&table.key).unwrap_or("NULL");
                let data_type = table
                    .table
                    .column(&table.key)
                    .map_or("text", |c| c.data_type.as_str());
                Some(routing::part_of(
                    table,
                    &format!("CAST({value} AS {data_type})"),
                ))
            }
            _ => None,
        })
        .collect();
    let parts: Vec<Option<i32>> = if routes.is_empty() {
        Vec::new()
    } else {
        coordinator
            .query_one(
                &format!("SELECT ARRAY[{}]::integer[]", routes.join(", ")),
                &[],
            )
            .await
            .map_err(asked)?
            .get(0)
    };
    let writes = writes(target, &rows, &parts)?;

    let mut nodes: Vec<&str> = vec![&target.coordinator];
    for (node, _) in &writes {
        if !nodes.contains(&node.as_str()) {
            nodes.push(node);
        }
    }
    let participants = nodes
        .iter()
        .map(|node| {
            Ok(Participant {
                node: (*node).to_owned(),
                client: connections.in_transaction(node)?,
            })
        })
        .collect::<Result<Vec<_>, WorkloadError>>()?;
    let transaction = DistributedTransaction::begin(participants).await?;
    let stock = transaction
        .client(&target.coordinator)
        .expect("the coordinator takes part");
    for (product_id, quantity) in &order.lines {
        let taken = stock
            .query_opt(
                "UPDATE inventory SET quantity = quantity - $2, updated_at = now()
                 WHERE inventory_id = (SELECT inventory_id FROM inventory
                                       WHERE product_id = $1 AND quantity >= $2
                                       ORDER BY quantity DESC, inventory_id LIMIT 1
                                       FOR UPDATE)
                 RETURNING inventory_id",
                &[product_id, quantity],
            )
            .await;
        match taken {
            Ok(Some(_)) => {}
            Ok(None) => {
                transaction.rollback().await;
                return Ok(Placed::OutOfStock);
            }
            Err(source) => {
                transaction.rollback().await;
                return Err(WorkloadError::Query {
                    node: target.coordinator.clone(),
                    source,
                });
            }
        }
    }
    // Each node's statements in one round trip.
    for node in &nodes {
        let sql: Vec<&str> = writes
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, sql)| sql.as_str())
            .collect();
        if sql.is_empty() {
            continue;
        }
        let client = transaction
            .client(node)
            .expect("every writing node takes part");
        if let Err(source) = client.batch_execute(&sql.join("\n")).await {
            transaction.rollback().await;
            return Err(WorkloadError::Query {
                node: (*node).to_owned(),
                source,
            });
        }
    }
    let id = transaction.id().to_owned();
    let order_id = order_id.parse().unwrap_or_default();
    match transaction.commit(coordinator).await {
        Ok(()) => Ok(Placed::Committed(order_id)),
        // A node that can move went away in the middle: what it prepared holds row locks until
        // finished, so the order is settled as soon as its nodes answer again.
        Err(source) if cut_off(target, &source) => Err(WorkloadError::Cut {
            cut: Cut {
                id,
                order_id,
                nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            },
            source,
        }),
        Err(source) => Err(source.into()),
    }
}

/// The same order as one local transaction on the coordinator, its fragment rows written
/// through the partitioned tables (postgres_fdw commits each node separately).
async fn place_plain(
    target: &Target,
    connections: &Connections,
    order: &OrderRequest,
) -> Result<Placed, WorkloadError> {
    let client = connections.in_transaction(&target.coordinator)?;
    let fail = |source| WorkloadError::Query {
        node: target.coordinator.clone(),
        source,
    };
    client.batch_execute("BEGIN").await.map_err(fail)?;
    let result = async {
        let mut total = 0.0_f64;
        let mut lines = Vec::new();
        for (product_id, quantity) in &order.lines {
            let Some(row) = client
                .query_opt(
                    "UPDATE inventory SET quantity = quantity - $2, updated_at = now()
                     WHERE inventory_id = (SELECT inventory_id FROM inventory
                                           WHERE product_id = $1 AND quantity >= $2
                                           ORDER BY quantity DESC, inventory_id LIMIT 1
                                           FOR UPDATE)
                     RETURNING (SELECT price::float8 FROM products WHERE product_id = $1)",
                    &[product_id, quantity],
                )
                .await?
            else {
                return Ok(None);
            };
            let price: f64 = row.get(0);
            total += price * f64::from(*quantity);
            lines.push((product_id, quantity, price));
        }
        let total = (total * 100.0).round() / 100.0;
        let region = &order.region;
        let order_id: i64 = client
            .query_one(
                "INSERT INTO orders (user_id, region, status, total_amount)
                 VALUES ($1, $2, 'paid', $3::float8::numeric) RETURNING order_id",
                &[&order.user_id, region, &total],
            )
            .await?
            .get(0);
        let mut sql = String::new();
        for (product_id, quantity, price) in &lines {
            sql.push_str(&format!(
                "INSERT INTO order_details (order_id, region, product_id, quantity, unit_price) VALUES ({order_id}, '{region}', {product_id}, {quantity}, {price});\n"
            ));
        }
        sql.push_str(&format!(
            "INSERT INTO transactions (order_id, region, amount, method, status) VALUES ({order_id}, '{region}', {total}, 'card', 'succeeded');\n\
             INSERT INTO shipping (order_id, region, address, status) VALUES ({order_id}, '{region}', 'address of user {}', 'pending');",
            order.user_id
        ));
        client.batch_execute(&sql).await?;
        Ok(Some(order_id))
    }
    .await;
    match result {
        Ok(Some(order_id)) => {
            client.batch_execute("COMMIT").await.map_err(fail)?;
            Ok(Placed::Committed(order_id))
        }
        Ok(None) => {
            client.batch_execute("ROLLBACK").await.map_err(fail)?;
            Ok(Placed::OutOfStock)
        }
        Err(source) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(fail(source))
        }
    }
}

/// Every customer's region, read once before the orders.
pub async fn regions(coordinator: &Client) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    Ok(coordinator
        .query("SELECT user_id, region FROM users ORDER BY user_id", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// How many products the catalog holds.
pub async fn products(coordinator: &Client) -> Result<i64, tokio_postgres::Error> {
    Ok(coordinator
        .query_one("SELECT count(*) FROM products", &[])
        .await?
        .get(0))
}

/// The `i`-th order of the standard mix: a customer and one to three products, one or two
/// of each, spread deterministically over the catalog.
pub fn example_order(i: usize, customers: &[(i64, String)], products: i64) -> OrderRequest {
    let i = i as i64;
    let count = 1 + i % 3;
    let mut lines: Vec<(i64, i32)> = Vec::new();
    for k in 0..count {
        let product = (i * 31 + k * 17) % products + 1;
        if !lines.iter().any(|(p, _)| *p == product) {
            lines.push((product, 1 + ((i + k) % 2) as i32));
        }
    }
    // Stock rows are locked in product order, so two orders do not wait on each other.
    lines.sort();
    let (user_id, region) =
        customers[((i * 7919) % customers.len().max(1) as i64) as usize].clone();
    OrderRequest {
        user_id,
        region,
        lines,
    }
}

/// Where the workload starts from: the highest order id (its orders come after it) and the
/// units in stock.
pub struct Floor {
    pub order_id: i64,
    pub stock: i64,
}

pub async fn order_floor(coordinator: &Client) -> Result<Floor, tokio_postgres::Error> {
    let row = coordinator
        .query_one(
            "SELECT (SELECT coalesce(max(order_id), 0) FROM orders),
                    (SELECT coalesce(sum(quantity), 0)::bigint FROM inventory)",
            &[],
        )
        .await?;
    Ok(Floor {
        order_id: row.get(0),
        stock: row.get(1),
    })
}

/// Run `orders` orders over `clients` concurrent clients; `next` makes the i-th order.
pub async fn run(
    target: &Target,
    clients: usize,
    orders: usize,
    next: impl Fn(usize) -> OrderRequest + Sync,
) -> Result<Report, WorkloadError> {
    let coordinator = target.connect(&target.coordinator).await?;
    crate::txn::ensure_decisions(&coordinator).await?;
    let started = Instant::now();
    let next = &next;
    let tasks = (0..clients).map(|client| async move {
        let mut connections = Connections::default();
        let mut report = Report::default();
        for i in (client..orders).step_by(clients.max(1)) {
            let order = next(i);
            let began = Instant::now();
            let placed = place(target, &mut connections, &order, &mut report.retries).await;
            match placed {
                Ok(Placed::Committed(id)) => {
                    report.placed.push(id);
                    report.record(began.elapsed());
                }
                Ok(Placed::OutOfStock) => report.out_of_stock += 1,
                Err(error @ WorkloadError::Txn(TxnError::Unsettled { .. })) => {
                    report.unknown.push(error.to_string())
                }
                Err(error @ WorkloadError::Txn(TxnError::InDoubt { .. })) => {
                    report.unknown.push(error.to_string())
                }
                Err(error) => report.failed.push(error.to_string()),
            }
        }
        Ok::<_, WorkloadError>(report)
    });
    let mut total = Report::default();
    for report in futures_util::future::join_all(tasks).await {
        let report = report?;
        total.placed.extend(report.placed);
        total.out_of_stock += report.out_of_stock;
        total.failed.extend(report.failed);
        total.unknown.extend(report.unknown);
        total.retries += report.retries;
        // Both auto-resize: adding one to the other cannot go out of range.
        let _ = total.latencies.add(&report.latencies);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// The invariants, each with how many rows break it (0 is good): read through the
/// coordinator, over every order above `floor` (the highest order id before the workload,
/// so orders whose client saw an error are checked too) and the orders reported placed.
pub async fn invariants(
    coordinator: &Client,
    floor: &Floor,
    placed: &[i64],
) -> Result<Vec<(&'static str, i64)>, tokio_postgres::Error> {
    let taken: i64 = coordinator
        .query_one(
            "SELECT $1 - (SELECT coalesce(sum(quantity), 0) FROM inventory)
                    - (SELECT coalesce(sum(quantity), 0) FROM order_details WHERE order_id > $2)",
            &[&floor.stock, &floor.order_id],
        )
        .await?
        .get(0);
    let floor = floor.order_id;
    let checks: [(&str, &str); 5] = [
        ("stock is never negative", "SELECT count(*) FROM inventory WHERE quantity < 0"),
        (
            "every order has its lines, and its total is their sum",
            "SELECT count(*) FROM orders o WHERE o.order_id > $2
               AND o.total_amount IS DISTINCT FROM (SELECT round(sum(quantity * unit_price), 2)
                   FROM order_details d WHERE d.order_id = o.order_id AND d.region = o.region)",
        ),
        (
            "every order is paid exactly once, its total",
            "SELECT count(*) FROM orders o WHERE o.order_id > $2
               AND (SELECT count(*) FILTER (WHERE t.amount = o.total_amount) || '/' || count(*)
                    FROM transactions t WHERE t.order_id = o.order_id AND t.region = o.region) <> '1/1'",
        ),
        (
            "every order has exactly one shipment",
            "SELECT count(*) FROM orders o WHERE o.order_id > $2
               AND (SELECT count(*) FROM shipping s
                    WHERE s.order_id = o.order_id AND s.region = o.region) <> 1",
        ),
        (
            "every placed order exists once",
            "SELECT cardinality($1::bigint[]) - count(*) FROM orders
             WHERE order_id = ANY($1) AND order_id > $2",
        ),
    ];
    let mut out = Vec::new();
    for (name, sql) in checks {
        let row = if sql.contains("$1") {
            coordinator.query_one(sql, &[&placed, &floor]).await?
        } else if sql.contains("$2") {
            let sql = sql.replace("$2", "$1");
            coordinator.query_one(&sql, &[&floor]).await?
        } else {
            coordinator.query_one(sql, &[]).await?
        };
        out.push((name, row.get::<_, i64>(0)));
    }
    // Across nodes: the units taken from stock (coordinator) are the units ordered (shards).
    out.push((
        "the stock taken is exactly what the orders hold",
        taken.abs(),
    ));
    Ok(out)
}

#[cfg(test)]
mod report_tests {
    use super::*;

    #[test]
    fn percentiles_come_from_every_client_s_latencies() {
        let mut first = Report::default();
        let mut second = Report::default();
        for ms in 1..=50 {
            first.record(Duration::from_millis(ms));
            second.record(Duration::from_millis(ms + 50));
        }
        let mut total = Report::default();
        total.latencies.add(&first.latencies).unwrap();
        total.latencies.add(&second.latencies).unwrap();
        let close = |got: Duration, want: u64| {
            let want = Duration::from_millis(want);
            let off = got.abs_diff(want);
            assert!(off <= want / 500, "{got:?} vs {want:?}");
        };
        close(total.percentile(0.5), 50);
        close(total.percentile(0.99), 99);
        close(total.percentile(1.0), 100);
        assert_eq!(Report::default().percentile(0.5), Duration::ZERO);
    }
}
