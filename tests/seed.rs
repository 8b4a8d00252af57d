//! `dbtopo seed` against a real server: the dataset is consistent (totals, payments,
//! shipments, stock, reviews), the same at every run, and a second seed is refused.

mod common;

use common::TestEnv;
use dbtopo::cli::{FileArg, SeedArgs};
use tokio_postgres::Client;

const TOPOLOGY: &str = "
name: seed
postgres:
  nodes:
    node: { port: 5801 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [node] }
";

async fn number(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// A digest of every seeded row that does not depend on when it was written.
async fn digest(client: &Client) -> String {
    client
        .query_one(
            "SELECT md5(string_agg(line, E'\\n' ORDER BY line)) FROM (
                 SELECT format('u %s %s %s', email, name, region) AS line FROM users
                 UNION ALL SELECT format('p %s %s %s', sku, price, category_id) FROM products
                 UNION ALL SELECT format('o %s %s %s %s %s', order_id, user_id, status,
                                         total_amount, order_date) FROM orders
                 UNION ALL SELECT format('d %s %s %s', order_id, product_id, quantity)
                           FROM order_details
                 UNION ALL SELECT format('r %s %s %s', user_id, product_id, rating) FROM reviews
                 UNION ALL SELECT format('i %s %s %s', product_id, location, quantity)
                           FROM inventory) lines",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn args(env: &TestEnv, scale: u32) -> SeedArgs {
    SeedArgs {
        file: FileArg {
            file: env.file.clone(),
            profiles: Vec::new(),
        },
        scale,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_is_consistent_repeatable_and_loaded_once() {
    let env = TestEnv::from_yaml("seed", TOPOLOGY);
    env.apply().await.expect("apply");
    dbtopo::app::seed(&args(&env, 2)).await.expect("seed");
    let shop = env.connect_to("node", "shop").await;

    assert_eq!(number(&shop, "SELECT count(*) FROM users").await, 200);
    assert_eq!(number(&shop, "SELECT count(*) FROM products").await, 100);
    assert_eq!(number(&shop, "SELECT count(*) FROM orders").await, 400);
    assert_eq!(number(&shop, "SELECT count(*) FROM reviews").await, 400);
    // Every order's total is the sum of its lines, and it is paid exactly that once.
    assert_eq!(
        number(
            &shop,
            "SELECT count(*) FROM orders o WHERE total_amount <>
                 (SELECT sum(quantity * unit_price) FROM order_details d WHERE d.order_id = o.order_id)"
        )
        .await,
        0
    );
    assert_eq!(
        number(
            &shop,
            "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM transactions t
                 WHERE t.order_id = o.order_id AND t.amount = o.total_amount) <> 1"
        )
        .await,
        0
    );
    // Shipments for every order not cancelled, none for the cancelled ones.
    assert_eq!(
        number(
            &shop,
            "SELECT count(*) FROM orders o WHERE (status = 'cancelled') =
                 EXISTS (SELECT 1 FROM shipping s WHERE s.order_id = o.order_id)"
        )
        .await,
        0
    );
    assert_eq!(
        number(&shop, "SELECT count(*) FROM inventory WHERE quantity < 0").await,
        0
    );
    assert!(number(&shop, "SELECT count(DISTINCT region) FROM orders").await == 2);

    let first = digest(&shop).await;
    let refused = dbtopo::app::seed(&args(&env, 2))
        .await
        .expect_err("a second seed");
    assert!(format!("{refused:?}").contains("already holds 200 user(s)"));

    // The same scale in a fresh database gives the same rows.
    env.rewrite(|text| text.replace("database: shop", "database: shop2"));
    env.apply().await.expect("the second database");
    dbtopo::app::seed(&args(&env, 2)).await.expect("seed again");
    let again = env.connect_to("node", "shop2").await;
    assert_eq!(digest(&again).await, first);
}
