//! The schema through dbtopo end to end, against real PostgreSQL servers: the default
//! topology's nine tables on the primary and, by replication only, on its replica; data kept
//! through manifest changes; destructive changes refused, then allowed; server errors pointing
//! into the manifest; an index left invalid by a failed concurrent build rebuilt.

mod common;

use std::time::{Duration, Instant};

use common::{NINE_TABLE_JOIN, TestEnv};
use dbtopo::plan::{Operation, Plan};
use dbtopo::schema::{RejectedByServer, StepAction};
use tokio_postgres::Client;

const ROWS: &str = include_str!("fixtures/ecommerce_rows.sql");

const TABLES: [&str; 9] = [
    "users",
    "categories",
    "products",
    "orders",
    "order_details",
    "transactions",
    "reviews",
    "inventory",
    "shipping",
];

async fn row_counts(client: &Client) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in TABLES {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap();
        counts.push(row.get(0));
    }
    counts
}

async fn joined(client: &Client) -> Option<String> {
    let sql = format!(
        "SELECT u.email, p.sku, parent.name, t.method, r.rating, i.quantity, s.status, \
         d.quantity {NINE_TABLE_JOIN}"
    );
    let row = client.query_opt(&sql, &[]).await.ok()??;
    Some(format!(
        "{} {} {} {} {} {} {} {}",
        row.get::<_, &str>(0),
        row.get::<_, &str>(1),
        row.get::<_, &str>(2),
        row.get::<_, &str>(3),
        row.get::<_, i16>(4),
        row.get::<_, i32>(5),
        row.get::<_, &str>(6),
        row.get::<_, i32>(7),
    ))
}

/// Wait until the replica has replayed what `check` looks for.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(15), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn schema_steps(plan: &Plan) -> Vec<(String, StepAction, bool)> {
    plan.changes
        .iter()
        .filter_map(|c| match &c.operation {
            Operation::ApplySchema { steps, .. } => Some(steps),
            _ => None,
        })
        .flatten()
        .map(|s| (s.object.clone(), s.action, s.destroys.is_some()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nine_tables_reach_the_replica_and_keep_their_rows_through_manifest_changes() {
    let env = TestEnv::from_default("schema");
    env.apply().await.expect("first apply");
    let primary = env.connect_to("primary", "ecommerce").await;
    primary
        .batch_execute(ROWS)
        .await
        .expect("rows respecting every foreign key");
    let expected = "ada@example.com BK-1 books card 5 7 delivered 2";
    assert_eq!(joined(&primary).await.as_deref(), Some(expected));
    let before = row_counts(&primary).await;
    assert!(before.iter().all(|&n| n >= 1), "{before:?}");

    // The replica has the schema and the rows by replication alone, and refuses writes.
    let replica = env.connect_to("primary-replica", "ecommerce").await;
    eventually("the replica replays the rows", || async {
        joined(&replica).await.as_deref() == Some(expected)
    })
    .await;
    let refused = replica
        .batch_execute("INSERT INTO categories (name) VALUES ('x')")
        .await
        .expect_err("a replica is read-only");
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{refused:?}"
    );

    let again = env.plan().await;
    assert!(again.is_empty(), "{}", dbtopo::plan::render_text(&again));

    // A manifest change: a new nullable column, a widened CHECK, a new index.
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/ecommerce.sql"),
    )
    .unwrap();
    // (Tables of the coordinator itself; fragmented ones change on their nodes.)
    let changed = manifest
        .replace(
            "    updated_at   timestamptz NOT NULL DEFAULT now(),\n    CONSTRAINT inventory_pkey",
            "    updated_at   timestamptz NOT NULL DEFAULT now(),\n    note         text,\n    CONSTRAINT inventory_pkey",
        )
        .replace("CHECK (rating BETWEEN 1 AND 5)", "CHECK (rating BETWEEN 1 AND 10)")
        + "CREATE INDEX reviews_rating_idx ON reviews (rating);\n";
    assert!(
        changed.contains("note         text") && changed.contains("1 AND 10"),
        "the edits apply"
    );
    env.write_file("manifests/ecommerce.sql", &changed);
    let plan = env.plan().await;
    assert_eq!(
        schema_steps(&plan),
        [
            (
                "constraint reviews.reviews_rating_check".to_owned(),
                StepAction::Drop,
                false
            ),
            (
                "column inventory.note".to_owned(),
                StepAction::Create,
                false
            ),
            (
                "constraint reviews.reviews_rating_check".to_owned(),
                StepAction::Create,
                false
            ),
            (
                "index reviews_rating_idx".to_owned(),
                StepAction::Create,
                false
            ),
        ],
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    assert_eq!(
        plan.changes.len(),
        1,
        "only the schema of the primary changes"
    );
    env.apply().await.expect("apply the change");
    assert_eq!(row_counts(&primary).await, before, "no row was lost");
    assert_eq!(joined(&primary).await.as_deref(), Some(expected));
    primary
        .batch_execute("UPDATE inventory SET note = 'restock soon'")
        .await
        .expect("the new column exists");
    eventually("the replica has the new column", || async {
        replica
            .query_opt(
                "SELECT note FROM inventory WHERE note = 'restock soon'",
                &[],
            )
            .await
            .is_ok_and(|row| row.is_some())
    })
    .await;
    assert!(env.plan().await.is_empty());

    // Taking the column away loses data: refused, then done with the flag.
    env.write_file("manifests/ecommerce.sql", &manifest);
    let plan = env.plan().await;
    let destructive = plan.destructive_steps();
    assert_eq!(destructive.len(), 1, "{}", dbtopo::plan::render_text(&plan));
    let why = destructive[0].1.destroys.as_deref().unwrap();
    assert!(why.contains("inventory holds 1 row"), "{why}");
    let refused = env.apply().await.expect_err("refused without the flag");
    assert!(
        format!("{refused:?}").contains("inventory.note"),
        "{refused:?}"
    );
    primary
        .query_one("SELECT note FROM inventory", &[])
        .await
        .expect("the column is still there after the refusal");
    env.apply_with(true).await.expect("allowed with the flag");
    assert!(
        primary
            .query_one("SELECT note FROM inventory", &[])
            .await
            .is_err()
    );
    assert_eq!(row_counts(&primary).await, before);
    assert!(env.plan().await.is_empty());
}

const ONE_NODE: &str = "
name: schemaerr
postgres:
  nodes:
    node: { port: 5601 }
";

/// `ONE_NODE` with a schema section, under the test's own name and port.
fn with_schema(env: &TestEnv) -> String {
    format!(
        "name: {}\npostgres:\n  nodes:\n    node: {{ port: {} }}\n  schema:\n    file: schema.sql\n    database: shop\n",
        env.name,
        env.port("node")
    )
}

fn rejection(report: &miette::Report) -> &RejectedByServer {
    report
        .chain()
        .find_map(|e| e.downcast_ref::<RejectedByServer>())
        .or_else(|| report.downcast_ref::<RejectedByServer>())
        .unwrap_or_else(|| panic!("not a rejection by the server: {report:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_points_into_the_manifest_and_leaves_the_node_as_it_was() {
    let env = TestEnv::from_yaml("schemaerr", ONE_NODE);
    // Valid SQL to the parser, refused by the server: the default is no integer.
    let bad = "CREATE TABLE accounts (id bigint PRIMARY KEY);\n\
               CREATE TABLE ledger (\n    id bigint PRIMARY KEY,\n    amount integer DEFAULT 'abc'\n);\n";
    env.write_file("schema.sql", bad);
    env.write_file("topology.yaml", &with_schema(&env));

    // On a new server the steps run without a check beforehand: the failure points at the
    // statement of the table, and the transaction leaves no table behind.
    let report = env
        .apply()
        .await
        .expect_err("the server refuses the default");
    let rejected = rejection(&report);
    let span = rejected.span().expect("a span in the manifest");
    assert!(
        bad[span.offset()..].starts_with("CREATE TABLE ledger"),
        "{report:?}"
    );
    assert!(format!("{report:?}").contains("invalid input syntax for type integer"));
    let shop = env.connect_to("node", "shop").await;
    let tables: i64 = shop
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the node's transaction was rolled back");

    // Now the server runs, plan checks the manifest on it first and points at the value.
    let docker = common::docker().await;
    let secrets = dbtopo::secrets::load_existing(&env.name).unwrap();
    let topology = dbtopo::topology::load(&env.file).unwrap();
    let desired = dbtopo::app::desired(&topology).unwrap();
    let report = dbtopo::app::plan_for(&docker, &desired, secrets.as_ref())
        .await
        .expect_err("plan refuses the manifest");
    let span = rejection(&report).span().expect("a position");
    assert!(bad[span.offset()..].starts_with("'abc'"), "{report:?}");

    // Fixed, it converges.
    env.write_file("schema.sql", &bad.replace("DEFAULT 'abc'", "DEFAULT 0"));
    env.apply().await.expect("the fixed manifest applies");
    assert!(env.plan().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_left_invalid_by_a_failed_concurrent_build_is_rebuilt() {
    let env = TestEnv::from_yaml("schemaidx", ONE_NODE);
    let table = "CREATE TABLE coupons (id bigint PRIMARY KEY, code text NOT NULL);\n";
    env.write_file("schema.sql", table);
    env.write_file("topology.yaml", &with_schema(&env));
    env.apply().await.expect("the table");
    let shop = env.connect_to("node", "shop").await;
    shop.batch_execute("INSERT INTO coupons VALUES (1, 'SPRING'), (2, 'SPRING')")
        .await
        .unwrap();

    let indexed = format!("{table}CREATE UNIQUE INDEX coupons_code_idx ON coupons (code);\n");
    env.write_file("schema.sql", &indexed);
    let report = env
        .apply()
        .await
        .expect_err("duplicates break the unique build");
    let span = rejection(&report).span().expect("the index statement");
    assert!(indexed[span.offset()..].starts_with("CREATE UNIQUE INDEX"));
    let valid: bool = shop
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'coupons_code_idx'::regclass",
            &[],
        )
        .await
        .expect("the failed build left the index behind")
        .get(0);
    assert!(!valid);

    let plan = env.plan().await;
    let steps = schema_steps(&plan);
    assert_eq!(
        steps,
        [
            (
                "index coupons_code_idx".to_owned(),
                StepAction::Rebuild,
                false
            ),
            (
                "index coupons_code_idx".to_owned(),
                StepAction::Rebuild,
                false
            ),
        ],
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    shop.batch_execute("DELETE FROM coupons WHERE id = 2")
        .await
        .unwrap();
    env.apply().await.expect("the rebuild");
    let valid: bool = shop
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'coupons_code_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    assert!(env.plan().await.is_empty());
}

/// Tables as one writes them by hand.
const PLAIN_SHOP: &str = "
CREATE TABLE users (user_id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
    order_id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    qty integer NOT NULL DEFAULT 1 CHECK (qty > 0)
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
";

/// The output of `pg_dump -s` is a manifest: against the database it was taken from it plans
/// nothing, and a new server made from it (from the parsed manifest, with no server to
/// normalize it) holds the same tables as one made from the plain manifest.
#[tokio::test(flavor = "multi_thread")]
async fn a_pg_dump_of_the_schema_is_a_manifest_of_the_same_tables() {
    let env = TestEnv::from_yaml("pgdump", ONE_NODE);
    env.write_file("schema.sql", PLAIN_SHOP);
    env.write_file("topology.yaml", &with_schema(&env));
    env.apply().await.expect("apply the plain manifest");

    let dump = common::pg_dump_schema(&env.container("node"), "shop").await;
    for written in [
        "SELECT pg_catalog.set_config('search_path', '', false);",
        "CREATE TABLE public.orders",
        "ALTER TABLE ONLY public.orders",
        "OWNER TO",
    ] {
        assert!(
            dump.contains(written),
            "pg_dump wrote no {written}:\n{dump}"
        );
    }
    env.write_file("schema.sql", &dump);
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));

    env.destroy().await.expect("destroy");
    env.apply().await.expect("apply the dump on a new server");
    env.write_file("schema.sql", PLAIN_SHOP);
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
    env.destroy().await.expect("destroy");
}
