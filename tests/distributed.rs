//! The default topology end to end against real servers: apply, seed and verify; every
//! fragment counted on its own node; writes through the coordinator reach the right node; the
//! EU parts moved to another node without losing or doubling a row; and nothing left to do.

mod common;

use common::TestEnv;
use tokio_postgres::Client;

const REGIONAL: [&str; 4] = ["orders", "order_details", "transactions", "shipping"];

async fn number(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// A digest of a table's rows, the same wherever they are kept.
async fn digest(client: &Client, table: &str) -> String {
    client
        .query_one(
            &format!("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn has_table(client: &Client, table: &str) -> bool {
    number(
        client,
        &format!("SELECT count(*) FROM pg_class WHERE relname = '{table}'"),
    )
    .await
        == 1
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_topology_keeps_every_row_where_it_says_through_writes_and_a_move() {
    let env = TestEnv::from_default("distributed");
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    assert!(
        dbtopo::app::verify_command(&env.file)
            .await
            .expect("verify runs"),
        "verify after the seed"
    );
    let coordinator = env.connect_to("primary", "ecommerce").await;
    let eu = env.connect_to("shard-eu", "ecommerce").await;
    let us = env.connect_to("shard-us", "ecommerce").await;

    // Each regional table: the coordinator's rows are exactly the two fragments' rows.
    let mut before = Vec::new();
    for table in REGIONAL {
        let total = number(&coordinator, &format!("SELECT count(*) FROM {table}")).await;
        let on_eu = number(&eu, &format!("SELECT count(*) FROM {table}_eu")).await;
        let on_us = number(&us, &format!("SELECT count(*) FROM {table}_us")).await;
        assert!(on_eu > 0 && on_us > 0, "{table}: {on_eu} + {on_us}");
        assert_eq!(on_eu + on_us, total, "{table}");
        assert_eq!(
            number(
                &eu,
                &format!("SELECT count(*) FROM {table}_eu WHERE region <> 'EU'")
            )
            .await,
            0
        );
        before.push((total, digest(&coordinator, table).await));
    }
    // Users: the profile on the coordinator, the credentials on shard-eu, the same keys.
    let users = number(&coordinator, "SELECT count(*) FROM users").await;
    assert_eq!(number(&eu, "SELECT count(*) FROM users").await, users);
    assert_eq!(
        number(&coordinator, "SELECT count(*) FROM users_primary").await,
        users
    );

    // Writes through the coordinator reach the node of their region, and only that one.
    let order_id: i64 = coordinator
        .query_one(
            "INSERT INTO orders (user_id, region, status) VALUES (1, 'EU', 'pending')
             RETURNING order_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let count_eu = |status: &'static str| {
        format!(
            "SELECT count(*) FROM orders_eu WHERE order_id = {order_id} AND status = '{status}'"
        )
    };
    assert_eq!(number(&eu, &count_eu("pending")).await, 1);
    assert_eq!(
        number(
            &us,
            &format!("SELECT count(*) FROM orders_us WHERE order_id = {order_id}")
        )
        .await,
        0
    );
    coordinator
        .batch_execute(&format!(
            "UPDATE orders SET status = 'paid' WHERE order_id = {order_id} AND region = 'EU';
             UPDATE users SET password_hash = 'changed' WHERE user_id = 1;"
        ))
        .await
        .unwrap();
    assert_eq!(number(&eu, &count_eu("paid")).await, 1);
    assert_eq!(
        number(
            &eu,
            "SELECT count(*) FROM users WHERE user_id = 1 AND password_hash = 'changed'"
        )
        .await,
        1
    );
    coordinator
        .batch_execute(&format!(
            "DELETE FROM orders WHERE order_id = {order_id} AND region = 'EU'"
        ))
        .await
        .unwrap();
    assert_eq!(number(&eu, &count_eu("paid")).await, 0);

    // The EU parts move to shard-us (one anchor in the YAML moves all four tables).
    env.rewrite(|yaml| {
        yaml.replace(
            "- { node: shard-eu, values: [EU] }",
            "- { node: shard-us, values: [EU] }",
        )
    });
    let moving = env.plan().await;
    let text = dbtopo::plan::render_text(&moving);
    assert!(!text.contains("DESTRUCTIVE"), "{text}");
    for table in REGIONAL {
        assert!(
            text.contains(&format!("fragmented_table.{table} must be replaced")),
            "{text}"
        );
    }
    env.apply().await.expect("move the EU parts");
    for (table, (total, rows)) in REGIONAL.iter().zip(&before) {
        assert_eq!(
            number(&coordinator, &format!("SELECT count(*) FROM {table}")).await,
            *total,
            "{table}: no row lost or doubled"
        );
        assert_eq!(&digest(&coordinator, table).await, rows, "{table}");
        let on_us = number(&us, &format!("SELECT count(*) FROM {table}_eu")).await
            + number(&us, &format!("SELECT count(*) FROM {table}_us")).await;
        assert_eq!(on_us, *total, "{table}: all on shard-us");
        assert!(!has_table(&eu, &format!("{table}_eu")).await, "{table}");
    }
    let again = env.plan().await;
    assert!(again.is_empty(), "{}", dbtopo::plan::render_text(&again));
    assert!(
        dbtopo::app::verify_command(&env.file)
            .await
            .expect("verify runs"),
        "verify after the move"
    );
}
