//! `dbtopo workload` under a switchover of its coordinator and back, against real servers
//! (other names and ports than the default file): the workload follows the coordinator's role
//! to whichever of its servers takes writes. Every order it reported committed is there
//! afterwards, nothing failed, the invariants hold, the old primary streams from the new one,
//! verify passes and the plan is empty.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;

/// A coordinator `hq` with its replica `hq-r`, and two shards holding the order tables by
/// region; `coordinator` is the server that is the node, the other its replica.
fn shop(name: &str, coordinator: &str, port: impl Fn(&str) -> u16) -> String {
    let replica = if coordinator == "hq" { "hq-r" } else { "hq" };
    format!(
        "
name: {name}
postgres:
  settings: {{ wal_level: logical, max_prepared_transactions: 16 }}
  nodes:
    {coordinator}: {{ port: {} }}
    east: {{ port: {} }}
    west: {{ port: {} }}
  replicas:
    {replica}: {{ of: {coordinator}, port: {} }}
  schema: {{ file: manifests/ecommerce.sql, database: shop, nodes: [{coordinator}] }}
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - {{ node: west, values: [EU] }}
          - {{ node: east, values: [US] }}
    order_details: {{ horizontal: *by_region }}
    transactions: {{ horizontal: *by_region }}
    shipping: {{ horizontal: *by_region }}
  reference_tables:
    categories: [east, west]
    products: [east, west]
",
        port(coordinator),
        port("east"),
        port("west"),
        port(replica)
    )
}

fn default_port(node: &str) -> u16 {
    match node {
        "hq" => 5891,
        "hq-r" => 5892,
        "east" => 5893,
        _ => 5894,
    }
}

/// The real binary, as a user runs it (the test's state folder is inherited).
fn dbtopo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(args)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .env_remove(dbtopo::execute::CRASH_AFTER_ENV)
        .env_remove(dbtopo::execute::promote::CRASH_IN_PROMOTION_ENV);
    command
}

/// The number printed right before `words` in the workload's summary line.
fn count_before(summary: &str, words: &str) -> usize {
    let head = &summary[..summary
        .find(words)
        .unwrap_or_else(|| panic!("no `{words}` in {summary}"))];
    head.trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before `{words}` in {summary}"))
}

/// Orders above the workload's floor: how many, and the md5 of their ids in order; and the
/// units in stock (a table of the coordinator's own).
async fn orders_on(env: &TestEnv, server: &str, floor: i64) -> (i64, String, i64) {
    let client = env.connect_to(server, "shop").await;
    let row = client
        .query_one(
            "SELECT count(*), md5(coalesce(string_agg(order_id::text, ',' ORDER BY order_id), '')),
                    (SELECT sum(quantity)::bigint FROM inventory)
             FROM orders WHERE order_id > $1",
            &[&floor],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Waits until orders committed through `server`, the coordinator now, are `more` above
/// what it held when asked: the workload writes there.
async fn orders_grow(env: &TestEnv, server: &str, more: i64) {
    let client = env.connect_to(server, "shop").await;
    let highest = async || -> i64 {
        client
            .query_one("SELECT coalesce(max(order_id), 0) FROM orders", &[])
            .await
            .unwrap()
            .get(0)
    };
    let from = highest().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while highest().await < from + more {
        assert!(
            Instant::now() < deadline,
            "the workload places no orders through {server}, the coordinator now"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Switch the coordinator's role to `to` and apply, timed.
async fn switch_over(env: &TestEnv, to: &str) -> Duration {
    env.rewrite(|_| shop(&env.name, to, |n| env.port(n)));
    let started = Instant::now();
    env.apply().await.expect("the switchover applies");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workload_follows_a_switchover_and_back_and_loses_no_order() {
    let env = TestEnv::from_yaml("wsw", &shop("wsw", "hq", default_port));
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    let file = env.file.to_str().unwrap().to_owned();
    let hq = env.connect_to("hq", "shop").await;
    // Stock for every order of the run, so each one commits.
    hq.batch_execute("UPDATE inventory SET quantity = quantity + 100000")
        .await
        .unwrap();
    let floor = dbtopo::workload::order_floor(&hq).await.unwrap().order_id;
    drop(hq);

    // Enough orders to run through both switchovers and on after them.
    let mut workload = dbtopo(&["workload", &file, "--clients", "4", "--orders", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the workload");
    orders_grow(&env, "hq", 100).await;
    let there = switch_over(&env, "hq-r").await;
    // The old primary streams from the new one (the plan is read once the orders stop: a
    // commit in flight shows as a prepared transaction to finish).
    let observed = env.observe().await;
    assert!(
        observed.servers["hq"]
            .live
            .as_ref()
            .is_some_and(|l| l.streaming),
        "hq streams from hq-r"
    );
    orders_grow(&env, "hq-r", 100).await;
    let back = switch_over(&env, "hq").await;
    orders_grow(&env, "hq", 100).await;
    assert!(
        workload.try_wait().unwrap().is_none(),
        "the workload still runs after both switchovers"
    );
    let finished = tokio::task::spawn_blocking(move || workload.wait_with_output());
    let output: Output = tokio::time::timeout(Duration::from_secs(600), finished)
        .await
        .expect("the workload ends")
        .unwrap()
        .unwrap();
    let text = common::text(&output);
    eprintln!("switchover to hq-r applied in {there:?}, back in {back:?}\n{text}");
    assert!(output.status.success(), "{text}");
    let summary = text
        .lines()
        .find(|l| l.contains("order(s) placed"))
        .expect("a summary");
    assert_eq!(count_before(summary, "failed"), 0, "{text}");
    let invariants: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("violation(s)"))
        .collect();
    assert_eq!(invariants.len(), 6, "{text}");
    assert!(
        invariants.iter().all(|l| l.trim_start().starts_with("ok ")),
        "{text}"
    );
    let placed = count_before(summary, "order(s) placed") as i64;
    let unknown = count_before(summary, "unknown");
    if unknown > 0 {
        // Orders whose commit the client could not settle: this apply finishes them.
        eprintln!("{unknown} unknown order(s): one more apply settles them");
        env.apply().await.expect("apply settles the unknown orders");
    }

    env.caught_up("hq", "hq-r").await;
    let (count, md5, stock) = orders_on(&env, "hq", floor).await;
    assert_eq!(
        orders_on(&env, "hq-r", floor).await,
        (count, md5, stock),
        "the replica holds what the coordinator holds"
    );
    assert!(
        count >= placed && count <= placed + unknown as i64,
        "{count} orders for {placed} placed and {unknown} unknown"
    );
    let checks = dbtopo::app::verify_checks(&env.file).await.unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    env.assert_converged_and_streaming("hq-r").await;
    let verify = dbtopo(&["verify", &file]).output().unwrap();
    assert!(verify.status.success(), "{}", common::text(&verify));

    // What the workload does with a commit a switchover cut off, made on purpose: prepared on
    // hq and east, then settled on fresh connections as the record says.
    for (id, recorded) in [("cut-rolled-back", None), ("cut-committed", Some("commit"))] {
        let hq = env.connect_to("hq", "shop").await;
        let east = env.connect_to("east", "shop").await;
        let before: i64 = number(
            &hq,
            "SELECT quantity::bigint FROM inventory WHERE inventory_id = 1",
        )
        .await;
        hq.batch_execute(&format!(
            "BEGIN; UPDATE inventory SET quantity = quantity - 1 WHERE inventory_id = 1;
             PREPARE TRANSACTION 'dbtopo:{id}:hq'"
        ))
        .await
        .unwrap();
        east.batch_execute(&format!(
            "BEGIN; UPDATE products SET price = price WHERE product_id = 1;
             PREPARE TRANSACTION 'dbtopo:{id}:east'"
        ))
        .await
        .unwrap();
        if let Some(outcome) = recorded {
            hq.execute(
                "INSERT INTO dbtopo.txn_decisions (gid, outcome) VALUES ($1, $2)",
                &[&id, &outcome],
            )
            .await
            .unwrap();
        }
        let (coordinator, hq2, east2) = (
            env.connect_to("hq", "shop").await,
            env.connect_to("hq", "shop").await,
            env.connect_to("east", "shop").await,
        );
        let participants = vec![
            dbtopo::txn::Participant {
                node: "hq".into(),
                client: &hq2,
            },
            dbtopo::txn::Participant {
                node: "east".into(),
                client: &east2,
            },
        ];
        let committed = dbtopo::txn::settle(id, &coordinator, &participants)
            .await
            .expect("settled");
        assert_eq!(committed, recorded.is_some(), "{id}");
        for client in [&hq, &east] {
            assert_eq!(
                number(client, "SELECT count(*) FROM pg_prepared_xacts").await,
                0,
                "{id}"
            );
        }
        assert_eq!(
            number(
                &hq,
                &format!("SELECT count(*) FROM dbtopo.txn_decisions WHERE gid = '{id}'")
            )
            .await,
            0,
            "{id}: the record goes once settled"
        );
        let after = number(
            &hq,
            "SELECT quantity::bigint FROM inventory WHERE inventory_id = 1",
        )
        .await;
        assert_eq!(before - after, i64::from(committed), "{id}");
    }
}

async fn number(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}
