//! The order workload on the default topology, against real servers: each order is one
//! distributed transaction (stock on the coordinator, the order on its region's node). Orders
//! racing for the last units sell exactly the stock; a fragment node stopped in the middle of
//! a workload leaves no half-made order and, after apply, no prepared transaction.

mod common;

use common::TestEnv;
use dbtopo::workload::{self, OrderRequest};
use tokio_postgres::Client;

async fn number(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn assert_invariants(coordinator: &Client, floor: &workload::Floor, placed: &[i64]) {
    for (invariant, broken) in workload::invariants(coordinator, floor, placed)
        .await
        .unwrap()
    {
        assert_eq!(broken, 0, "{invariant}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_sell_exactly_the_stock_and_survive_a_stopped_node() {
    let env = TestEnv::from_default("workload");
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    let target = dbtopo::app::workload_target(&env.file, &[]).await.unwrap();
    let coordinator = env.connect_to("primary", "ecommerce").await;

    // Five units of product 1 left, in one place; 24 orders of one unit each, 8 at a time.
    coordinator
        .batch_execute(
            "UPDATE inventory SET quantity = 0 WHERE product_id = 1;
             UPDATE inventory SET quantity = 5
             WHERE inventory_id = (SELECT min(inventory_id) FROM inventory WHERE product_id = 1);",
        )
        .await
        .unwrap();
    let floor = workload::order_floor(&coordinator).await.unwrap();
    let customers = workload::regions(&coordinator).await.unwrap();
    let report = workload::run(&target, 8, 24, |i| OrderRequest {
        user_id: customers[i].0,
        region: customers[i].1.clone(),
        lines: vec![(1, 1)],
    })
    .await
    .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.placed.len(), 5, "exactly the stock is sold");
    assert_eq!(report.out_of_stock, 19);
    assert_eq!(
        number(
            &coordinator,
            "SELECT sum(quantity) FROM inventory WHERE product_id = 1"
        )
        .await,
        0
    );
    assert_invariants(&coordinator, &floor, &report.placed).await;

    // A fragment node stops in the middle of a workload.
    let floor = workload::order_floor(&coordinator).await.unwrap();
    let products = number(&coordinator, "SELECT count(*) FROM products").await;
    let running = {
        let target = dbtopo::app::workload_target(&env.file, &[]).await.unwrap();
        tokio::spawn(async move {
            workload::run(&target, 4, 160, move |i| {
                workload::example_order(i, &customers, products)
            })
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    common::docker()
        .await
        .stop_container(
            &env.container("shard-eu"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .expect("stop shard-eu");
    let report = running
        .await
        .unwrap()
        .expect("the workload runs to its end");
    assert!(
        !report.placed.is_empty(),
        "orders before the stop, and US orders: {:?}",
        &report.failed[..report.failed.len().min(3)]
    );
    assert!(
        !report.failed.is_empty(),
        "EU orders fail while shard-eu is down"
    );

    // apply starts the node and finishes what was left prepared.
    env.apply().await.expect("apply after the fault");
    for node in ["primary", "shard-eu", "shard-us"] {
        let client = env.connect_to(node, "ecommerce").await;
        assert_eq!(
            number(&client, "SELECT count(*) FROM pg_prepared_xacts").await,
            0,
            "a prepared transaction is left on {node}"
        );
    }
    assert_invariants(&coordinator, &floor, &report.placed).await;
    assert!(env.plan().await.is_converged());

    // An undecided prepared transaction holds every stock row of product 2: orders for it
    // wait at most the lock timeout, then fail with the reason; nothing hangs, and the plan
    // does not say the environment matches while the transaction is there.
    let holder = env.connect_to("primary", "ecommerce").await;
    holder
        .batch_execute(
            "BEGIN; UPDATE inventory SET quantity = quantity WHERE product_id = 2;
             PREPARE TRANSACTION 'dbtopo:held:primary'",
        )
        .await
        .unwrap();
    let customers = workload::regions(&coordinator).await.unwrap();
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        workload::run(&target, 2, 2, |i| OrderRequest {
            user_id: customers[i].0,
            region: customers[i].1.clone(),
            lines: vec![(2, 1)],
        }),
    )
    .await
    .expect("orders behind a held lock do not wait forever")
    .unwrap();
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert!(report.failed[0].contains("lock timeout"), "{report:?}");
    let plan = env.plan().await;
    assert!(
        plan.is_empty() && !plan.is_converged(),
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    holder
        .batch_execute("ROLLBACK PREPARED 'dbtopo:held:primary'")
        .await
        .unwrap();
}
