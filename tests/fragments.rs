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
    - { table: users, columns: [password_hash] }
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

    assert_eq!(count(&eu, "SELECT count(*) FROM orders_eu").await, 2);
    assert_eq!(
        count(&eu, "SELECT count(*) FROM orders_eu WHERE region <> 'EU'").await,
        0
    );
    assert_eq!(count(&us, "SELECT count(*) FROM orders_us").await, 1);
    assert_eq!(
        count(&us, "SELECT count(*) FROM orders_us WHERE region <> 'US'").await,
        0
    );
    assert_eq!(
        count(
            &eu,
            "SELECT count(*) FROM reviews_min_to_1000 WHERE product_id < 1000"
        )
        .await,
        2
    );
    // The part kept on the coordinator is a local table there.
    assert_eq!(
        count(
            &coordinator,
            "SELECT count(*) FROM reviews_1000_to_max_local WHERE product_id >= 1000"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &us,
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'reviews%'"
        )
        .await,
        0
    );
    let spread = count(&eu, "SELECT count(*) FROM events_hash_0_of_3").await
        + count(&eu, "SELECT count(*) FROM events_hash_2_of_3").await
        + count(&us, "SELECT count(*) FROM events_hash_1_of_3").await;
    assert_eq!(spread, 60, "every event is in exactly one fragment");
    assert!(count(&us, "SELECT count(*) FROM events_hash_1_of_3").await > 0);
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

    // The coordinator reads each node's copy through a foreign table of its own, so a join of
    // a fragment with the copy on its node runs there, as one remote query.
    coordinator
        .batch_execute("UPDATE orders SET category_id = 1 WHERE region = 'EU'")
        .await
        .unwrap();
    let sql = "SELECT c.name, sum(o.total) FROM orders_eu o \
               JOIN categories_shard_eu c ON c.category_id = o.category_id GROUP BY c.name";
    let explained: Vec<String> = coordinator
        .query(&format!("EXPLAIN (VERBOSE, COSTS OFF) {sql}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        explained[0].trim() == "Foreign Scan"
            && explained
                .iter()
                .any(|l| l
                    .contains("(public.orders_eu o) INNER JOIN (public.categories_shard_eu c)")),
        "the join is not pushed down to shard-eu:\n{}",
        explained.join("\n")
    );
    let row = coordinator.query_one(sql, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "books");

    // The declared index is on every fragment of the table.
    for shard in [&eu, &us] {
        assert_eq!(
            count(
                shard,
                "SELECT count(*) FROM pg_indexes WHERE indexname IN ('orders_eu_total_idx', 'orders_us_total_idx')"
            )
            .await,
            1
        );
    }

    // An index of the vertical table is on the column group holding its column.
    assert_eq!(
        count(
            &us,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_password_hash_idx' AND tablename = 'users'"
        )
        .await,
        1
    );

    // A fragment holds its own part only.
    let refused = eu
        .batch_execute("INSERT INTO orders_eu VALUES (9, 'US', 1)")
        .await
        .expect_err("a US row on the EU node");
    assert_eq!(
        refused.as_db_error().and_then(|e| e.constraint()),
        Some("orders_eu_fragment_check")
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
    assert!(plan[0].contains("Foreign Scan on orders_us"), "{plan:?}");

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
        "ALTER TABLE orders_eu DROP CONSTRAINT orders_eu_fragment_check;
         INSERT INTO orders_eu VALUES (7, 'US', 1);
         ALTER TABLE orders_eu ADD CONSTRAINT orders_eu_fragment_check CHECK (region IN ('EU')) NOT VALID;",
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
        "DELETE FROM orders_eu WHERE order_id = 7; ALTER TABLE orders_eu VALIDATE CONSTRAINT orders_eu_fragment_check;",
    )
    .await
    .unwrap();

    // A partition dropped by hand is seen and made again; the rows were never on it.
    coordinator
        .batch_execute("DROP FOREIGN TABLE orders_us")
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

    // A dropped user mapping (the coordinator can no longer read a node's parts) and a
    // disabled subscription (the copies stop following) are drift the plan shows and apply
    // repairs.
    coordinator
        .batch_execute("DROP USER MAPPING FOR postgres SERVER dbtopo_shard_eu")
        .await
        .unwrap();
    assert!(
        coordinator
            .query("SELECT count(*) FROM orders_eu", &[])
            .await
            .is_err(),
        "without its user mapping the coordinator cannot read the EU part"
    );
    us.batch_execute("ALTER SUBSCRIPTION dbtopo_ref_shard_us DISABLE")
        .await
        .unwrap();
    let drift = env.plan().await;
    assert_eq!(
        common::actions(&drift),
        [
            (
                "fdw_server.dbtopo_shard_eu".to_owned(),
                dbtopo::plan::Action::Update
            ),
            (
                "subscription.dbtopo_ref_shard_us".to_owned(),
                dbtopo::plan::Action::Update
            ),
        ],
        "{}",
        dbtopo::plan::render_text(&drift)
    );
    env.apply()
        .await
        .expect("repair the mapping and the subscription");
    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 3);
    let enabled: bool = us
        .query_one(
            "SELECT subenabled FROM pg_subscription WHERE subname = 'dbtopo_ref_shard_us'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(enabled);
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
        count(
            &coordinator,
            "SELECT count(*) FROM reviews_1000_to_max_local"
        )
        .await,
        2
    );
    assert!(env.plan().await.is_empty());

    // Parts move: the EU orders to shard-us, and the reviews' boundary from 1000 to 500 (a
    // changed predicate: review 999 now belongs to the part kept on the coordinator). No
    // --allow-destructive: no row is lost, the old copies go only once the rows are counted.
    env.rewrite(|yaml| {
        yaml.replace(
            "- { node: shard-eu, values: [EU] }",
            "- { node: shard-us, values: [EU] }",
        )
        .replace(
            "- { node: shard-eu, to: 1000 }",
            "- { node: shard-eu, to: 500 }",
        )
        .replace(
            "- { node: primary, from: 1000 }",
            "- { node: primary, from: 500 }",
        )
    });
    let moving = env.plan().await;
    let text = dbtopo::plan::render_text(&moving);
    let addresses: Vec<String> = common::actions(&moving)
        .into_iter()
        .map(|(address, _)| address)
        .collect();
    for expected in [
        "fragmented_table.orders",
        "fragmented_table.reviews",
        "old_fragment.shard-eu.orders_eu",
        "old_fragment.shard-eu.reviews_min_to_1000",
    ] {
        assert!(
            addresses.iter().any(|a| a == expected),
            "{expected}:\n{text}"
        );
    }
    assert_eq!(
        addresses
            .iter()
            .filter(|a| a.starts_with("moved_part."))
            .count(),
        3,
        "{text}"
    );
    assert!(!text.contains("DESTRUCTIVE"), "{text}");
    env.apply().await.expect("move the parts");

    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 3);
    assert_eq!(
        count(&coordinator, "SELECT count(DISTINCT order_id) FROM orders").await,
        3,
        "no order twice"
    );
    assert_eq!(count(&us, "SELECT count(*) FROM orders_eu").await, 2);
    assert_eq!(count(&us, "SELECT count(*) FROM orders_us").await, 1);
    assert_eq!(count(&coordinator, "SELECT count(*) FROM reviews").await, 4);
    assert_eq!(
        count(&eu, "SELECT count(*) FROM reviews_min_to_500").await,
        1
    );
    assert_eq!(
        count(
            &coordinator,
            "SELECT count(*) FROM reviews_500_to_max_local WHERE product_id IN (999, 1000, 5000)"
        )
        .await,
        3
    );
    for (client, gone) in [
        (&eu, "orders_eu"),
        (&eu, "reviews_min_to_1000"),
        (&coordinator, "reviews_1000_to_max_local"),
    ] {
        assert_eq!(
            count(
                client,
                &format!("SELECT count(*) FROM pg_class WHERE relname = '{gone}'")
            )
            .await,
            0,
            "the old copy {gone} is dropped"
        );
    }
    assert_eq!(
        count(
            &coordinator,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'dbtopo\\_moved\\_%'"
        )
        .await,
        0
    );
    // New rows follow the new layout.
    coordinator
        .batch_execute("INSERT INTO orders VALUES (4, 'EU', 7)")
        .await
        .unwrap();
    assert_eq!(count(&us, "SELECT count(*) FROM orders_eu").await, 3);
    let again = env.plan().await;
    assert!(again.is_empty(), "{}", dbtopo::plan::render_text(&again));
    assert!(
        dbtopo::app::verify_command(&env.file)
            .await
            .expect("verify runs"),
        "verify after the move"
    );

    // An apply stopped right after a movement committed (here: EU orders back to shard-eu,
    // the old copies' changes never run). The coordinator reads the new part only; the next
    // plan finishes the job by dropping the old copy.
    env.rewrite(|yaml| {
        yaml.replace(
            "- { node: shard-us, values: [EU] }",
            "- { node: shard-eu, values: [EU] }",
        )
    });
    let back = env.plan().await;
    let interrupted: Vec<_> = back
        .changes
        .iter()
        .filter(|c| !matches!(c.address.kind(), "old_fragment" | "moved_part"))
        .cloned()
        .collect();
    assert!(interrupted.len() < back.changes.len());
    let secrets = dbtopo::secrets::load_existing(&env.name)
        .expect("secrets")
        .expect("secrets exist");
    let outcome = dbtopo::execute::execute(
        &common::docker().await,
        &dbtopo::plan::Plan::new(env.name.clone(), interrupted),
        &secrets,
        &Silent,
    )
    .await;
    assert!(outcome.succeeded(), "{:?}", outcome.failed);
    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 4);
    assert_eq!(count(&eu, "SELECT count(*) FROM orders_eu").await, 3);
    assert_eq!(
        count(&us, "SELECT count(*) FROM orders_eu").await,
        3,
        "the old copy waits"
    );
    let leftover = env.plan().await;
    let actions = common::actions(&leftover);
    assert_eq!(actions.len(), 2, "{}", dbtopo::plan::render_text(&leftover));
    let text = dbtopo::plan::render_text(&leftover);
    assert!(
        actions
            .iter()
            .any(|(a, _)| a == "old_fragment.shard-us.orders_eu"),
        "{text}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, _)| a.starts_with("moved_part.dbtopo_moved_")),
        "{text}"
    );
    env.apply().await.expect("finish the movement");
    assert_eq!(
        count(
            &us,
            "SELECT count(*) FROM pg_class WHERE relname = 'orders_eu'"
        )
        .await,
        0
    );
    assert_eq!(count(&coordinator, "SELECT count(*) FROM orders").await, 4);
    assert!(env.plan().await.is_empty());
}

/// Progress nobody watches.
struct Silent;

impl dbtopo::execute::Progress for Silent {
    fn event(&self, _: dbtopo::execute::Event<'_>) {}
}
