//! Fragments through dbtopo against real servers: rows written through the coordinator land
//! on the node their key says (a part kept on the coordinator included) and nowhere else, a vertically fragmented table is written
//! through its view into every column group, a reference table's copies
//! follow the coordinator, a declared index is on every fragment, a fragment refuses rows of another part, the coordinator prunes to one fragment,
//! and a partition dropped by hand on the coordinator is seen and made again with every row
//! still reachable.

mod common;

use common::TestEnv;
use tokio_postgres::Client;

const TOPOLOGY: &str = "
name: fragments
postgres:
  settings: { wal_level: logical }
  nodes:
    primary: { port: 5701 }
    shard-eu: { port: 5702 }
    shard-us: { port: 5703 }
  schema: { file: tests/fixtures/fragments.sql, database: shop, nodes: [primary] }
  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - { node: shard-eu, values: [EU] }
          - { node: shard-us, values: [US] }
    reviews:
      horizontal:
        key: product_id
        by: range
        parts:
          - { node: shard-eu, to: 1000 }
          - { node: primary, from: 1000 }
    events:
      horizontal: { key: user_id, by: hash, parts: [{ node: shard-eu }, { node: shard-us }, { node: shard-eu }] }
    users:
      vertical:
        key: user_id
        parts:
          - { node: primary, columns: [email, name] }
          - { node: shard-us, columns: [password_hash] }
  indexes:
    - { table: orders, columns: [total] }
  reference_tables:
    categories: [shard-eu, shard-us]
";

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_land_on_the_node_of_their_key_and_nowhere_else() {
    let env = TestEnv::from_yaml("fragments", TOPOLOGY);
    env.apply().await.expect("apply");
    let coordinator = env.connect_to("primary", "shop").await;
    let eu = env.connect_to("shard-eu", "shop").await;
    let us = env.connect_to("shard-us", "shop").await;

    coordinator
        .batch_execute(
            "INSERT INTO orders VALUES (1, 'EU', 10), (2, 'US', 20), (3, 'EU', 5);
             INSERT INTO reviews VALUES (1, 10, 5), (2, 999, 4), (3, 1000, 3), (4, 5000, 1);
             INSERT INTO events SELECT g, g FROM generate_series(1, 60) g;
             INSERT INTO users VALUES (1, 'ada@example.com', 'Ada', 'x');",
        )
        .await
        .expect("writes through the coordinator");

    assert_eq!(count(&eu, "SELECT count(*) FROM orders").await, 2);
    assert_eq!(
        count(&eu, "SELECT count(*) FROM orders WHERE region <> 'EU'").await,
        0
    );
    assert_eq!(count(&us, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        count(&us, "SELECT count(*) FROM orders WHERE region <> 'US'").await,
        0
    );
    assert_eq!(
        count(&eu, "SELECT count(*) FROM reviews WHERE product_id < 1000").await,
        2
    );
    // The part kept on the coordinator is a local table there.
    assert_eq!(
        count(
            &coordinator,
            "SELECT count(*) FROM reviews_primary WHERE product_id >= 1000"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &us,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'reviews'"
        )
        .await,
        0
    );
    let spread = count(&eu, "SELECT count(*) FROM events_0").await
        + count(&eu, "SELECT count(*) FROM events_2").await
        + count(&us, "SELECT count(*) FROM events").await;
    assert_eq!(spread, 60, "every event is in exactly one fragment");
    assert!(count(&us, "SELECT count(*) FROM events").await > 0);
    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 3);
    assert_eq!(count(&coordinator, "SELECT count(*) FROM users").await, 1);
    // A vertically fragmented table: each column group on its node, written through the view.
    assert_eq!(
        count(
            &eu,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'users'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&us, "SELECT count(*) FROM users WHERE password_hash = 'x'").await,
        1
    );
    assert_eq!(
        count(
            &coordinator,
            "SELECT count(*) FROM users_primary WHERE email = 'ada@example.com'"
        )
        .await,
        1
    );
    coordinator
        .batch_execute(
            "INSERT INTO users (user_id, email, name, password_hash) VALUES (2, 'bob@example.com', 'Bob', 'y');
             UPDATE users SET password_hash = 'z', name = 'Robert' WHERE email = 'bob@example.com';",
        )
        .await
        .expect("writes through the view");
    assert_eq!(
        count(&us, "SELECT count(*) FROM users WHERE password_hash = 'z'").await,
        1
    );
    assert_eq!(
        count(
            &coordinator,
            "SELECT count(*) FROM users WHERE name = 'Robert' AND password_hash = 'z'"
        )
        .await,
        1
    );
    coordinator
        .batch_execute("DELETE FROM users WHERE email = 'bob@example.com'")
        .await
        .unwrap();
    assert_eq!(count(&us, "SELECT count(*) FROM users").await, 1);

    // The reference table follows the coordinator on every node that copies it.
    coordinator
        .batch_execute("INSERT INTO categories VALUES (1, 'books'), (2, 'games')")
        .await
        .unwrap();
    for shard in [&eu, &us] {
        let started = std::time::Instant::now();
        while count(shard, "SELECT count(*) FROM categories").await != 2 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "the copy does not follow"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    // The declared index is on every fragment of the table.
    for shard in [&eu, &us] {
        assert_eq!(
            count(
                shard,
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_total_idx'"
            )
            .await,
            1
        );
    }

    // A fragment holds its own part only.
    let refused = eu
        .batch_execute("INSERT INTO orders VALUES (9, 'US', 1)")
        .await
        .expect_err("a US row on the EU node");
    assert_eq!(
        refused.as_db_error().and_then(|e| e.constraint()),
        Some("orders_fragment_check")
    );

    // The coordinator reads one fragment for one key.
    let plan: Vec<String> = coordinator
        .query(
            "EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE region = 'US'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert!(
        plan[0].contains("Foreign Scan on orders_shard_us"),
        "{plan:?}"
    );

    let again = env.plan().await;
    assert!(again.is_empty(), "{}", dbtopo::plan::render_text(&again));

    // `verify` agrees, and its probe rows are rolled back.
    assert!(
        dbtopo::app::verify_command(&env.file)
            .await
            .expect("verify runs"),
        "verify found a failure"
    );
    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 3);
    assert_eq!(count(&coordinator, "SELECT count(*) FROM events").await, 60);

    // A row slipped into a fragment past its CHECK (NOT VALID) fails verify.
    eu.batch_execute(
        "ALTER TABLE orders DROP CONSTRAINT orders_fragment_check;
         INSERT INTO orders VALUES (7, 'US', 1);
         ALTER TABLE orders ADD CONSTRAINT orders_fragment_check CHECK (region IN ('EU')) NOT VALID;",
    )
    .await
    .unwrap();
    assert!(
        !dbtopo::app::verify_command(&env.file)
            .await
            .expect("verify runs"),
        "verify must fail on a fragment with a row outside its part"
    );
    eu.batch_execute(
        "DELETE FROM orders WHERE order_id = 7; ALTER TABLE orders VALIDATE CONSTRAINT orders_fragment_check;",
    )
    .await
    .unwrap();

    // A partition dropped by hand is seen and made again; the rows were never on it.
    coordinator
        .batch_execute("DROP FOREIGN TABLE orders_shard_us")
        .await
        .unwrap();
    let drift = env.plan().await;
    assert_eq!(
        common::actions(&drift),
        [(
            "fragmented_table.orders".to_owned(),
            dbtopo::plan::Action::Replace
        )],
        "{}",
        dbtopo::plan::render_text(&drift)
    );
    env.apply().await.expect("repair");
    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 3);
    assert!(env.plan().await.is_empty());

    // Remaking a partitioned table with a local part detaches that part and keeps its rows.
    coordinator
        .batch_execute("COMMENT ON TABLE reviews IS 'changed by hand'")
        .await
        .unwrap();
    let drift = env.plan().await;
    assert_eq!(
        common::actions(&drift),
        [(
            "fragmented_table.reviews".to_owned(),
            dbtopo::plan::Action::Replace
        )]
    );
    env.apply().await.expect("remake");
    assert_eq!(count(&coordinator, "SELECT count(*) FROM reviews").await, 4);
    assert_eq!(
        count(&coordinator, "SELECT count(*) FROM reviews_primary").await,
        2
    );
    assert!(env.plan().await.is_empty());
}
