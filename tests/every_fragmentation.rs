//! `verify` and `workload` on fragmentations unlike the default topology's, against real
//! servers: hash parts on an identity key and on a text key its CHECK limits, ranges of dates
//! and of ids with a default part (on a node, and kept on the coordinator), lists on keys
//! other than the region with a default part, a vertically fragmented table and tables not
//! fragmented at all. Each topology is applied and seeded; every routing probe of `verify`
//! passes; the workload places its orders with none failed and every invariant holding; and
//! each row is found on the node its part says, hash parts checked with PostgreSQL's own hash
//! functions.

mod common;

use common::TestEnv;
use dbtopo::workload;
use tokio_postgres::Client;

/// Orders and their lines hashed on the order's identity over three nodes, payments hashed on
/// the region (text limited by a CHECK), shipments listed by status with the rest kept on the
/// coordinator, users split by columns.
const HASHED: &str = "
name: efrag
postgres:
  settings: { max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5811 }
    n1: { port: 5812 }
    n2: { port: 5813 }
    n3: { port: 5814 }
  schema: { file: tests/fixtures/every_fragmentation_a.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_order { key: order_id, by: hash, parts: [{ node: n1 }, { node: n2 }, { node: n3 }] }
    order_details: { horizontal: *by_order }
    transactions:
      horizontal: { key: region, by: hash, parts: [{ node: n2 }, { node: n3 }] }
    shipping:
      horizontal:
        key: status
        by: list
        parts:
          - { node: n3, values: [pending] }
          - { node: n1, values: [in_transit, shipped] }
          - { node: hub, default: true }
    users:
      vertical:
        key: user_id
        parts:
          - { node: hub, columns: [email, name, region, created_at] }
          - { node: n2, columns: [password_hash] }
";

/// Orders by date range with a default part on a node, order lines by id range with a
/// default part on the coordinator, payments listed by method; shipments and users whole.
const RANGED: &str = "
name: efrag
postgres:
  settings: { max_prepared_transactions: 16 }
  nodes:
    main: { port: 5821 }
    east: { port: 5822 }
    west: { port: 5823 }
  schema: { file: tests/fixtures/every_fragmentation_b.sql, database: shop, nodes: [main] }
  fragments:
    orders:
      horizontal:
        key: order_date
        by: range
        parts:
          - { node: east, to: '2026-01-03' }
          - { node: west, from: '2026-01-03', to: '2026-01-05' }
          - { node: east, default: true }
    order_details:
      horizontal:
        key: order_detail_id
        by: range
        parts:
          - { node: east, to: 150 }
          - { node: west, from: 150, to: 300 }
          - { node: main, default: true }
    transactions:
      horizontal:
        key: method
        by: list
        parts:
          - { node: west, values: [card] }
          - { node: east, values: [paypal, bank_transfer] }
          - { node: main, default: true }
";

/// PostgreSQL's seed for hash partitioning and the constant its `hash_combine64` adds: the
/// remainder of a one-column key is `(hash(key, seed) + constant) mod 2^64 mod modulus`.
const PART_OF_HASH: &str = "(({hash}(KEY, 8816678312871386365)::numeric \
                            + 5305509591434766563 + 18446744073709551616) \
                            % 18446744073709551616) % {modulus}";

async fn number(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// Rows of a hash part that PostgreSQL's hash of their key (`hash`, the extended hash
/// function of its type) puts in another part.
async fn hashed_elsewhere(
    client: &Client,
    table: &str,
    (hash, key): (&str, &str),
    modulus: u32,
    remainder: u32,
) -> i64 {
    let part = PART_OF_HASH
        .replace("{hash}", hash)
        .replace("KEY", key)
        .replace("{modulus}", &modulus.to_string());
    number(
        client,
        &format!("SELECT count(*) FROM {table} WHERE {part} <> {remainder}"),
    )
    .await
}

/// Every check of `verify` passes, and each part of each named table has a routing check
/// whose probe row landed on its node (a hash part no admitted value reaches excepted, when
/// `unreachable_allowed` names its table).
async fn verify_passes(env: &TestEnv, parts: &[(&str, &str, &str)], unreachable_allowed: &[&str]) {
    let checks = dbtopo::app::verify_checks(&env.file)
        .await
        .expect("verify runs");
    let report = dbtopo::verify::render(&checks);
    println!("{report}");
    assert!(checks.iter().all(|c| c.ok), "{report}");
    for (table, part, node) in parts {
        let subject = format!("routing {table}/{part}");
        let check = checks
            .iter()
            .find(|c| c.subject == subject)
            .unwrap_or_else(|| panic!("no check {subject}:\n{report}"));
        assert_eq!(check.node, *node, "{report}");
        let landed = check.detail.contains(&format!("landed on {node} only"));
        assert!(
            landed || unreachable_allowed.contains(table),
            "{subject}: {}\n{report}",
            check.detail
        );
    }
}

/// The workload's orders: all placed (or refused for want of stock), none failed or unknown,
/// every invariant holding. Returns the floor it started from and the orders placed.
async fn workload_holds(env: &TestEnv, coordinator: &Client) -> (workload::Floor, Vec<i64>) {
    let target = dbtopo::app::workload_target(&env.file, &[])
        .await
        .expect("workload target");
    let floor = workload::order_floor(coordinator).await.unwrap();
    let customers = workload::regions(coordinator).await.unwrap();
    let products = number(coordinator, "SELECT count(*) FROM products").await;
    let report = workload::run(&target, 3, 30, |i| {
        workload::example_order(i, &customers, products)
    })
    .await
    .expect("the workload runs");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
    assert_eq!(report.placed.len() + report.out_of_stock, 30);
    assert!(report.placed.len() >= 20, "{report:?}");
    for (invariant, broken) in workload::invariants(coordinator, &floor, &report.placed)
        .await
        .unwrap()
    {
        assert_eq!(broken, 0, "{invariant}");
    }
    (floor, report.placed)
}

#[tokio::test(flavor = "multi_thread")]
async fn hash_parts_on_an_identity_and_on_a_checked_text_key_and_lists_by_status() {
    let env = TestEnv::from_yaml("efrag-hash", HASHED);
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    verify_passes(
        &env,
        &[
            ("orders", "orders_hash_0_of_3", "n1"),
            ("orders", "orders_hash_1_of_3", "n2"),
            ("orders", "orders_hash_2_of_3", "n3"),
            ("order_details", "order_details_hash_0_of_3", "n1"),
            ("order_details", "order_details_hash_2_of_3", "n3"),
            ("transactions", "transactions_hash_0_of_2", "n2"),
            ("transactions", "transactions_hash_1_of_2", "n3"),
            ("shipping", "shipping_pending", "n3"),
            ("shipping", "shipping_in_transit_shipped", "n1"),
            ("shipping", "shipping_default_local", "hub"),
        ],
        // 'EU' and 'US' may both hash to one part: the other then takes no row at all.
        &["transactions"],
    )
    .await;
    let coordinator = env.connect_to("hub", "shop").await;
    let nodes = [
        env.connect_to("n1", "shop").await,
        env.connect_to("n2", "shop").await,
        env.connect_to("n3", "shop").await,
    ];
    let (floor, placed) = workload_holds(&env, &coordinator).await;

    // Each order and each line on the node PostgreSQL's hash of the order id gives, and all
    // of the workload's orders there once.
    for table in ["orders", "order_details"] {
        let mut total = 0;
        let mut new_orders = 0;
        for (remainder, node) in nodes.iter().enumerate() {
            let part = format!("{table}_hash_{remainder}_of_3");
            let elsewhere = hashed_elsewhere(
                node,
                &part,
                ("hashint8extended", "order_id"),
                3,
                remainder as u32,
            )
            .await;
            assert_eq!(elsewhere, 0, "{part} holds rows of another part");
            let rows = number(node, &format!("SELECT count(*) FROM {part}")).await;
            assert!(rows > 0, "{part} is empty");
            total += rows;
            new_orders += number(
                node,
                &format!(
                    "SELECT count(DISTINCT order_id) FROM {part} WHERE order_id > {}",
                    floor.order_id
                ),
            )
            .await;
        }
        assert_eq!(
            total,
            number(&coordinator, &format!("SELECT count(*) FROM {table}")).await
        );
        assert_eq!(new_orders, placed.len() as i64, "{table}");
    }
    // Payments by the hash of their region, on n2 (remainder 0) and n3 (remainder 1).
    let mut payments = 0;
    for (remainder, node) in [&nodes[1], &nodes[2]].into_iter().enumerate() {
        let part = format!("transactions_hash_{remainder}_of_2");
        let elsewhere = hashed_elsewhere(
            node,
            &part,
            ("hashtextextended", "region"),
            2,
            remainder as u32,
        )
        .await;
        assert_eq!(elsewhere, 0, "{part} holds rows of another part");
        payments += number(
            node,
            &format!(
                "SELECT count(*) FROM {part} WHERE order_id > {}",
                floor.order_id
            ),
        )
        .await;
    }
    assert_eq!(payments, placed.len() as i64);
    // The workload's shipments are pending: all on n3; the seed's delivered ones on the hub.
    assert_eq!(
        number(
            &nodes[2],
            &format!(
                "SELECT count(*) FROM shipping_pending WHERE order_id > {}",
                floor.order_id
            )
        )
        .await,
        placed.len() as i64
    );
    assert!(
        number(
            &coordinator,
            "SELECT count(*) FROM shipping_default_local WHERE status = 'delivered'"
        )
        .await
            > 0
    );
    assert!(
        env.plan().await.is_empty(),
        "nothing left to do after the workload"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_of_dates_and_ids_with_default_parts_and_lists_by_method() {
    let env = TestEnv::from_yaml("efrag-range", RANGED);
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    verify_passes(
        &env,
        &[
            ("orders", "orders_min_to_2026_01_03", "east"),
            ("orders", "orders_2026_01_03_to_2026_01_05", "west"),
            ("orders", "orders_default", "east"),
            ("order_details", "order_details_min_to_150", "east"),
            ("order_details", "order_details_150_to_300", "west"),
            ("order_details", "order_details_default_local", "main"),
            ("transactions", "transactions_card", "west"),
            ("transactions", "transactions_paypal_bank_transfer", "east"),
            ("transactions", "transactions_default_local", "main"),
        ],
        &[],
    )
    .await;
    let coordinator = env.connect_to("main", "shop").await;
    let east = env.connect_to("east", "shop").await;
    let west = env.connect_to("west", "shop").await;
    // The seed's rows spread over every part.
    for (client, table) in [
        (&east, "orders_min_to_2026_01_03"),
        (&west, "orders_2026_01_03_to_2026_01_05"),
        (&east, "orders_default"),
        (&east, "order_details_min_to_150"),
        (&west, "order_details_150_to_300"),
        (&coordinator, "order_details_default_local"),
        (&west, "transactions_card"),
        (&east, "transactions_paypal_bank_transfer"),
        (&coordinator, "transactions_default_local"),
    ] {
        assert!(
            number(client, &format!("SELECT count(*) FROM {table}")).await > 0,
            "{table} is empty after the seed"
        );
    }
    let (floor, placed) = workload_holds(&env, &coordinator).await;
    let new = |table: &str| {
        format!(
            "SELECT count(*) FROM {table} WHERE order_id > {}",
            floor.order_id
        )
    };
    let placed = placed.len() as i64;
    // Dated today, the workload's orders fall past every range: the default part, on east.
    assert_eq!(number(&east, &new("orders_default")).await, placed);
    assert_eq!(
        number(&east, &new("orders_min_to_2026_01_03")).await
            + number(&west, &new("orders_2026_01_03_to_2026_01_05")).await,
        0
    );
    // Their lines have ids past 300 (the seed's go beyond it): the coordinator's default part.
    let lines = number(&coordinator, &new("order_details")).await;
    assert!(lines >= placed);
    assert_eq!(
        number(&coordinator, &new("order_details_default_local")).await,
        lines
    );
    // Paid by card: on west.
    assert_eq!(number(&west, &new("transactions_card")).await, placed);
    // Shipments are not fragmented: on the coordinator, in its own table.
    assert_eq!(number(&coordinator, &new("shipping")).await, placed);
    assert!(
        env.plan().await.is_empty(),
        "nothing left to do after the workload"
    );
}
