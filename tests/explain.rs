//! `dbtopo explain` against real servers: a small topology of its own (orders and the tables
//! that go with them listed by region, the EU part on a node and the US part kept on the
//! coordinator, users split by columns, products and categories copied to the node, the
//! declared index on orders) is applied and seeded; seed leaves statistics on the coordinator
//! and the node; every query of the catalogue runs; a filter on the fragment key prunes the
//! other part; the node's remote SQL is shown; `--compare` prints both columns and leaves the
//! foreign servers as they were.

mod common;

use std::path::Path;
use std::process::Command;

use common::{TestEnv, text};

const TOPOLOGY: &str = "
name: texplain
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16, enable_partitionwise_join: on, enable_partitionwise_aggregate: on }
  nodes:
    hub: { port: 5841 }
    eu: { port: 5842 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: hub, values: [US] }
    order_details: { horizontal: *by_region }
    transactions: { horizontal: *by_region }
    shipping: { horizontal: *by_region }
    users:
      vertical:
        key: user_id
        parts:
          - { node: hub, columns: [email, name, region, created_at] }
          - { node: eu, columns: [password_hash] }
  reference_tables:
    categories: [eu]
    products: [eu]
  indexes:
    - { table: orders, columns: [status, order_date] }
";

fn catalogue() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/queries")
}

/// `dbtopo explain FILE --queries CATALOGUE ARGS...`: whether it succeeded, and its output.
fn explain(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let (ok, _, out) = explain_stdout(env, args);
    (ok, out)
}

/// The same, with its standard output apart.
fn explain_stdout(env: &TestEnv, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dbtopo"))
        .arg("explain")
        .arg(&env.file)
        .arg("--queries")
        .arg(catalogue())
        .args(args)
        .output()
        .expect("run dbtopo explain");
    let out = text(&output);
    println!("dbtopo explain {}:\n{out}", args.join(" "));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), stdout, out)
}

async fn number(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_runs_the_catalogue_on_the_coordinator_and_shows_pruning_and_remote_sql() {
    let env = TestEnv::from_yaml("explain", TOPOLOGY);
    env.apply().await.expect("apply");
    env.seed(2).await.expect("seed");

    // Seed left statistics: on the node's fragment, and on the coordinator's tables.
    let node = env.connect_to("eu", "shop").await;
    let hub = env.connect_to("hub", "shop").await;
    let analyzed = "SELECT count(*) FROM pg_stats WHERE tablename = ";
    assert!(number(&node, &format!("{analyzed}'orders_eu'")).await > 0);
    assert!(number(&hub, &format!("{analyzed}'orders_us_local'")).await > 0);
    assert!(number(&hub, &format!("{analyzed}'orders'")).await > 0);
    assert!(number(&hub, &format!("{analyzed}'inventory'")).await > 0);

    let names: Vec<String> = dbtopo::app::read_catalogue(&catalogue())
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert!(names.len() >= 6, "{names:?}");

    // Every query runs, as JSON.
    let (ok, json, out) = explain_stdout(&env, &["--all", "--json"]);
    assert!(ok, "{out}");
    let summaries: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let ran: Vec<&str> = summaries
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(ran, names);
    for summary in summaries.as_array().unwrap() {
        assert!(summary["execution_ms"].as_f64().unwrap() > 0.0, "{summary}");
        assert!(summary["costliest"]["node"].is_string(), "{summary}");
    }

    // A filter on the fragment key reads the EU part only, on its node.
    let pruning = summaries
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "eu_recent_pending_orders")
        .unwrap();
    let states: Vec<(&str, &str, &str)> = pruning["fragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["part"].as_str().unwrap(),
                f["node"].as_str().unwrap(),
                f["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("orders_eu", "eu", "scanned"),
            ("orders_us_local", "hub", "pruned")
        ],
        "{pruning}"
    );
    assert_eq!(pruning["remote"][0]["node"], "eu", "{pruning}");

    // The tables for people: the pruned part and the SQL the node received.
    let (ok, out) = explain(
        &env,
        &["eu_recent_pending_orders", "revenue_by_region_month"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("REMOTE SQL"), "{out}");
    assert!(out.contains("FROM public.orders_eu"), "{out}");
    assert!(
        out.contains("orders_us_local") && out.contains("pruned"),
        "{out}"
    );
    assert!(out.contains("COSTLIEST NODE"), "{out}");

    // Both columns of the comparison, and the servers as they were.
    let (ok, out) = explain(&env, &["--all", "--compare"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("WITH INDEXES") && out.contains("WITHOUT INDEXES"),
        "{out}"
    );
    for name in &names {
        assert!(out.contains(name.as_str()), "{name} in\n{out}");
    }
    assert_eq!(
        number(
            &hub,
            "SELECT count(*) FROM pg_foreign_server, unnest(srvoptions) o WHERE o LIKE 'options=%'"
        )
        .await,
        0
    );

    // An unknown name is refused with the catalogue's names.
    let (ok, out) = explain(&env, &["no_such_query"]);
    assert!(!ok);
    assert!(out.contains("no query named no_such_query"), "{out}");
    assert!(
        !out.contains(&secret(&env)),
        "the password is never printed"
    );
}

fn secret(env: &TestEnv) -> String {
    dbtopo::secrets::load_existing(&env.name)
        .unwrap()
        .expect("secrets")
        .superuser
}

/// Orders listed by region, the EU part on a node of its own, nothing declared in `indexes:`.
const ADVICE_TOPOLOGY: &str = "
name: tadvice
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5851 }
    eu: { port: 5852 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: hub, values: [US] }
";

/// A filter on a column of the EU fragment that no index serves.
const BY_AMOUNT: &str =
    "-- EU orders of one exact amount: the node reads its whole fragment for a few rows.
SELECT order_id, user_id, order_date
FROM orders
WHERE region = 'EU' AND total_amount = 123
";

/// The same on the US part, kept on the coordinator: in the coordinator's own plan.
const US_BY_AMOUNT: &str =
    "-- US orders of one exact amount: the coordinator reads its own part whole.
SELECT order_id, user_id, order_date
FROM orders
WHERE region = 'US' AND total_amount = 123
";

#[tokio::test(flavor = "multi_thread")]
async fn explain_advises_the_index_a_selective_scan_on_a_node_needs_until_it_is_declared() {
    let env = TestEnv::from_yaml("advice", ADVICE_TOPOLOGY);
    env.apply().await.expect("apply");
    // 20000 orders in the EU fragment, on its node; 40 of them of amount 123.
    let node = env.connect_to("eu", "shop").await;
    node.batch_execute(
        "INSERT INTO orders_eu (order_id, user_id, region, order_date, status, total_amount) \
         SELECT g, g % 100 + 1, 'EU', timestamptz '2026-01-01' + g * interval '1 minute', \
                'delivered', g % 500 \
         FROM generate_series(1, 20000) g; \
         ANALYZE orders_eu",
    )
    .await
    .expect("fill the EU fragment");
    // And as many in the US part, through the coordinator's partitioned table.
    let hub = env.connect_to("hub", "shop").await;
    hub.batch_execute(
        "INSERT INTO orders (user_id, region, order_date, status, total_amount) \
         SELECT g % 100 + 1, 'US', timestamptz '2026-01-01' + g * interval '1 minute', \
                'delivered', g % 500 \
         FROM generate_series(1, 20000) g; \
         ANALYZE orders_us_local",
    )
    .await
    .expect("fill the US part");
    env.write_file("queries/eu_orders_by_amount.sql", BY_AMOUNT);
    env.write_file("queries/us_orders_by_amount.sql", US_BY_AMOUNT);
    let queries = env.dir.join("queries");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_dbtopo"))
            .arg("explain")
            .arg(&env.file)
            .arg("--queries")
            .arg(&queries)
            .args(args)
            .output()
            .expect("run dbtopo explain");
        let out = text(&output);
        println!("dbtopo explain {}:\n{out}", args.join(" "));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            out,
        )
    };
    let entry = "indexes: - { table: orders, columns: [total_amount] }";

    // The node's own plan reads the fragment whole: the advice names it, the column, the entry.
    let (ok, _, out) = run(&["eu_orders_by_amount"]);
    assert!(ok, "{out}");
    let advice = out
        .lines()
        .find(|l| l.trim_start().starts_with("advice:"))
        .unwrap_or_else(|| panic!("no advice in\n{out}"));
    assert!(
        advice.contains("Seq Scan on orders_eu (orders) at eu")
            && advice.contains("total_amount")
            && advice.contains(entry),
        "{advice}"
    );
    // The coordinator's own part, from its own plan.
    let (ok, _, out) = run(&["us_orders_by_amount"]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(
            |l| l.contains("advice: Seq Scan on orders_us_local (orders) at hub")
                && l.contains(entry)
        ),
        "{out}"
    );
    let (ok, json, out) = run(&["eu_orders_by_amount", "--json"]);
    assert!(ok, "{out}");
    let summaries: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let advice = &summaries[0]["advice"];
    assert_eq!(advice.as_array().map(Vec::len), Some(1), "{summaries}");
    assert_eq!(advice[0]["node"], "eu", "{advice}");
    assert_eq!(advice[0]["relation"], "orders_eu", "{advice}");
    assert_eq!(advice[0]["columns"], serde_json::json!(["total_amount"]));
    assert_eq!(
        advice[0]["suggestion"]["entry"],
        "- { table: orders, columns: [total_amount] }"
    );
    // Not with --compare: index scans are off there on purpose.
    let (ok, _, out) = run(&["eu_orders_by_amount", "--compare"]);
    assert!(ok && !out.contains("advice"), "{out}");

    // Declared, applied (apply analyzes what it changed): the node uses it, no advice.
    env.rewrite(|text| {
        format!("{text}  indexes:\n    - {{ table: orders, columns: [total_amount] }}\n")
    });
    env.apply().await.expect("apply the index");
    let (ok, json, out) = run(&["eu_orders_by_amount", "--json"]);
    assert!(ok, "{out}");
    let summaries: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(summaries[0]["advice"], serde_json::json!([]), "{summaries}");
    let (ok, _, out) = run(&["--all"]);
    assert!(ok && !out.contains("advice:"), "{out}");
}
