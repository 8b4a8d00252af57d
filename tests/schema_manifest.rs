//! The e-commerce manifest against a real PostgreSQL 17 started by dbtopo: it runs, it holds
//! consistent data, its constraints reject bad data, and the parsed model spells every column
//! type exactly as the server's `format_type` does (the diff against the catalog relies on it).

mod common;

use common::{NINE_TABLE_JOIN, TestEnv};
use dbtopo::schema::model::{Identity, KeyConstraint, ReferentialAction};
use dbtopo::schema::{Schema, parse_schema};
use tokio_postgres::Client;

const ONE_NODE: &str = "
name: schema
postgres:
  nodes:
    node: { port: 5601 }
";

fn manifest() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/ecommerce.sql"
    ))
    .expect("the manifest")
}

/// The constraint a statement violated, or a panic when it succeeded.
async fn violated(client: &Client, statement: &str) -> String {
    let error = client
        .batch_execute(statement)
        .await
        .expect_err(&format!("must be rejected: {statement}"));
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error:?}"));
    db.constraint()
        .unwrap_or_else(|| panic!("no constraint in {db:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ecommerce_manifest_runs_on_postgres_and_its_model_matches_the_catalog() {
    let sql = manifest();
    let model = parse_schema("manifests/ecommerce.sql", &sql).expect("the manifest parses");

    let env = TestEnv::from_yaml("schema", ONE_NODE);
    env.apply().await.expect("apply");
    let client = env.connect("node").await;
    client.batch_execute(&sql).await.expect("the manifest runs");

    // One consistent row set across the nine tables, in foreign-key order.
    client
        .batch_execute(ROWS)
        .await
        .expect("a consistent row set is accepted");

    let row = client
        .query_one(
            &format!(
                "SELECT u.email, o.status, d.quantity, p.sku, c.name, parent.name, \
                 t.amount::text, r.rating, i.quantity, s.status {NINE_TABLE_JOIN}"
            ),
            &[],
        )
        .await
        .expect("the rows join up");
    assert_eq!(row.get::<_, &str>(0), "ada@example.com");
    assert_eq!(row.get::<_, &str>(1), "paid");
    assert_eq!(row.get::<_, i32>(2), 2);
    assert_eq!(row.get::<_, &str>(3), "BK-1");
    assert_eq!(row.get::<_, &str>(4), "novels");
    assert_eq!(row.get::<_, &str>(5), "books");
    assert_eq!(row.get::<_, &str>(6), "25.00");
    assert_eq!(row.get::<_, i16>(7), 5);
    assert_eq!(row.get::<_, i32>(8), 7);
    assert_eq!(row.get::<_, &str>(9), "delivered");

    // The constraints the model names are the ones that fire.
    for (statement, constraint) in [
        (
            "INSERT INTO reviews (user_id, product_id, rating)
             SELECT user_id, product_id, 6 FROM users, products",
            "reviews_rating_check",
        ),
        (
            "UPDATE inventory SET quantity = -1",
            "inventory_quantity_check",
        ),
        ("UPDATE orders SET status = 'lost'", "orders_status_check"),
        (
            "INSERT INTO reviews (user_id, product_id, rating)
             SELECT user_id, product_id, 4 FROM users, products",
            "reviews_user_id_product_id_key",
        ),
        (
            "INSERT INTO orders (user_id, region) VALUES (424242, 'EU')",
            "orders_user_id_fkey",
        ),
        (
            "INSERT INTO users (email, name, password_hash, region)
             VALUES ('bob@example.com', 'Bob', 'x', 'APAC')",
            "users_region_check",
        ),
        (
            "UPDATE shipping SET delivered_at = shipped_at - interval '1 day'",
            "shipping_delivered_after_shipped_check",
        ),
        ("DELETE FROM users", "orders_user_id_fkey"),
    ] {
        assert_eq!(
            violated(&client, statement).await,
            constraint,
            "{statement}"
        );
    }

    assert_eq!(model.tables.len(), 9);
    assert_catalog_matches(&client, &model).await;

    // Naming and type cases the manifest does not exercise, on a fresh public schema.
    let cases = parse_schema("cases.sql", CASES).expect("the cases parse");
    client
        .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .await
        .unwrap();
    client.batch_execute(CASES).await.expect("the cases run");
    assert_catalog_matches(&client, &cases).await;
}

/// One row set across the nine tables, in foreign-key order.
const ROWS: &str = include_str!("fixtures/ecommerce_rows.sql");

/// Unnamed constraints and indexes (PostgreSQL picks the names) and every type spelling the
/// parser normalizes.
const CASES: &str = include_str!("fixtures/naming_and_types.sql");

type ColumnRow = (String, String, String, bool, String);
type KeyRow = (
    String,
    String,
    String,
    Vec<String>,
    String,
    Vec<String>,
    String,
    String,
);

/// Columns (type, NOT NULL, identity), constraints and indexes of the public schema equal
/// the model's.
async fn assert_catalog_matches(client: &Client, model: &Schema) {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    a.attnotnull, a.attidentity::text
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
               AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY c.relname, a.attnum",
            &[],
        )
        .await
        .unwrap();
    let catalog: Vec<ColumnRow> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let parsed: Vec<ColumnRow> = model
        .tables
        .values()
        .flat_map(|t| {
            t.columns.iter().map(|c| {
                let identity = match c.identity {
                    None => "",
                    Some(Identity::Always) => "a",
                    Some(Identity::ByDefault) => "d",
                };
                let (table, name, data_type) =
                    (t.name.clone(), c.name.clone(), c.data_type.clone());
                (table, name, data_type, c.not_null, identity.to_owned())
            })
        })
        .collect();
    assert_eq!(parsed, catalog, "columns");

    // Keys and foreign keys in full, checks by name.
    let rows = client
        .query(
            "SELECT c.relname::text, k.conname::text, k.contype::text,
                    ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                          ORDER BY u.o),
                    coalesce(f.relname::text, ''),
                    ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n
                          ORDER BY u.o),
                    k.confdeltype::text, k.confupdtype::text
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             LEFT JOIN pg_class f ON f.oid = k.confrelid
             WHERE c.relnamespace = 'public'::regnamespace AND k.contype IN ('p', 'u', 'f', 'c')
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let catalog: Vec<KeyRow> = rows
        .iter()
        .map(|r| {
            let kind: String = r.get(2);
            let columns = if kind == "c" { vec![] } else { r.get(3) };
            let (table, name) = (r.get(0), r.get(1));
            (
                table,
                name,
                kind,
                columns,
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            )
        })
        .collect();
    let action = |a: ReferentialAction| {
        match a {
            ReferentialAction::NoAction => "a",
            ReferentialAction::Restrict => "r",
            ReferentialAction::Cascade => "c",
            ReferentialAction::SetNull => "n",
            ReferentialAction::SetDefault => "d",
        }
        .to_owned()
    };
    let mut parsed: Vec<KeyRow> = Vec::new();
    for t in model.tables.values() {
        let key = |kind: &str, k: &KeyConstraint| {
            let (table, name) = (t.name.clone(), k.name.clone());
            let none = (String::new(), vec![], " ".to_owned(), " ".to_owned());
            (
                table,
                name,
                kind.to_owned(),
                k.columns.clone(),
                none.0,
                none.1,
                none.2,
                none.3,
            )
        };
        parsed.extend(t.primary_key.iter().map(|k| key("p", k)));
        parsed.extend(t.uniques.iter().map(|k| key("u", k)));
        parsed.extend(t.foreign_keys.iter().map(|f| {
            let (table, name, kind) = (t.name.clone(), f.name.clone(), "f".to_owned());
            let (columns, referenced) = (f.columns.clone(), f.referenced_table.clone());
            let (delete, update) = (action(f.on_delete), action(f.on_update));
            (
                table,
                name,
                kind,
                columns,
                referenced,
                f.referenced_columns.clone(),
                delete,
                update,
            )
        }));
        parsed.extend(t.checks.iter().map(|c| {
            let (table, name, kind) = (t.name.clone(), c.name.clone(), "c".to_owned());
            let none = (String::new(), " ".to_owned());
            (
                table,
                name,
                kind,
                vec![],
                none.0,
                vec![],
                none.1.clone(),
                none.1,
            )
        }));
    }
    parsed.sort();
    assert_eq!(parsed, catalog, "constraints");

    // Indexes of their own (not behind a key), with their tables.
    let rows = client
        .query(
            "SELECT i.relname::text, c.relname::text, x.indisunique
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class c ON c.oid = x.indrelid
             WHERE c.relnamespace = 'public'::regnamespace
               AND NOT EXISTS (SELECT FROM pg_constraint k
                               WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                                 AND k.contype IN ('p', 'u', 'x'))
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let catalog: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let parsed: Vec<(String, String, bool)> = model
        .indexes
        .values()
        .map(|i| (i.name.clone(), i.table.clone(), i.unique))
        .collect();
    assert_eq!(parsed, catalog, "indexes");
}
