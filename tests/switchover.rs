//! Switchover and failover, declared in the topology, against real servers: a node with two
//! replicas (other names and ports than the default file). A client writes all the time to
//! whichever server is the primary; the topology then makes a replica the node. Every write
//! the client saw acknowledged is there afterwards, the old primary streams from the new one,
//! every replica follows the new timeline, verify passes and the plan is empty; and back. A
//! failover (the primary's container and volume removed) is destructive unless allowed, and
//! keeps everything the promoted replica held.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use common::TestEnv;
use dbtopo::plan::Action;

const TOPOLOGY: &str = "
name: swo
postgres:
  settings: { max_prepared_transactions: 8 }
  nodes:
    main: { port: 5871 }
  replicas:
    main-r1: { of: main, port: 5872 }
    main-r2: { of: main, port: 5873 }
  schema: { file: tests/fixtures/ticks.sql, database: bank, nodes: [main] }
";

/// The topology text with `node` the node and the other two its replicas.
fn with_primary(text: &str, node: &str) -> String {
    let ports: Vec<(String, String)> = ["main", "main-r1", "main-r2"]
        .iter()
        .map(|n| {
            let port = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{n}: {{")))
                .and_then(|l| l.split("port: ").nth(1))
                .map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned())
                .expect("a port");
            ((*n).to_owned(), port)
        })
        .collect();
    let head: String = text
        .lines()
        .take_while(|l| !l.trim_start().starts_with("nodes:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = head;
    out.push_str("  nodes:\n");
    for (name, port) in &ports {
        if name == node {
            out.push_str(&format!("    {name}: {{ port: {port} }}\n"));
        }
    }
    out.push_str("  replicas:\n");
    for (name, port) in &ports {
        if name != node {
            out.push_str(&format!("    {name}: {{ of: {node}, port: {port} }}\n"));
        }
    }
    out.push_str(&format!(
        "  schema: {{ file: tests/fixtures/ticks.sql, database: bank, nodes: [{node}] }}\n"
    ));
    out
}

/// What the writing client saw: each acknowledged id, when, and on which port.
struct Acked {
    id: i64,
    at: Instant,
    port: u16,
}

/// Writes one row after another to whichever of `ports` is a primary, until `stop`.
async fn write_until(
    ports: Vec<u16>,
    password: String,
    stop: Arc<AtomicBool>,
    last_port: Arc<AtomicU16>,
    first_id: i64,
) -> Vec<Acked> {
    let mut acked = Vec::new();
    let mut next = first_id;
    let mut current: Option<(u16, tokio_postgres::Client)> = None;
    while !stop.load(Ordering::Relaxed) {
        if current.is_none() {
            for &port in &ports {
                let Ok(client) = dbtopo::observe::postgres::connect_to(
                    port,
                    &password,
                    "bank",
                    Duration::from_millis(500),
                )
                .await
                else {
                    continue;
                };
                // A connection Docker's proxy accepted for a container that stops answers
                // nothing: every request of this client has a deadline.
                let asked = client.query_one("SELECT NOT pg_is_in_recovery()", &[]);
                let primary = tokio::time::timeout(Duration::from_secs(1), asked)
                    .await
                    .is_ok_and(|row| row.is_ok_and(|row| row.get::<_, bool>(0)));
                if primary {
                    current = Some((port, client));
                    break;
                }
            }
        }
        let Some((port, client)) = &current else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let id = next;
        next += 1;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        let insert = client.execute("INSERT INTO ticks (id) VALUES ($1)", &params);
        match tokio::time::timeout(Duration::from_secs(2), insert).await {
            Ok(Ok(1)) => {
                acked.push(Acked {
                    id,
                    at: Instant::now(),
                    port: *port,
                });
                last_port.store(*port, Ordering::Relaxed);
            }
            // Not acknowledged: it may or may not have committed.
            _ => current = None,
        }
    }
    acked
}

/// The longest time between two acknowledged writes, and how many there were.
fn longest_pause(acked: &[Acked]) -> Duration {
    acked
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .max()
        .unwrap_or_default()
}

/// The old primary rejoined with pg_rewind (its logs say so), not by a fresh copy.
async fn assert_rewound(env: &TestEnv, node: &str) {
    let docker = common::docker().await;
    let logs = dbtopo::execute::docker::log_tail(&docker, &env.container(node), 200).await;
    assert!(logs.contains("pg_rewind: "), "{logs}");
    assert!(!logs.contains("could not rejoin"), "{logs}");
}

/// Removes a container as a lost host would: killed, gone.
async fn remove_container(docker: &bollard::Docker, name: &str) {
    docker
        .remove_container(
            name,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
}

/// The timeline a primary writes on, from the name of its current WAL file.
async fn timeline(env: &TestEnv, node: &str) -> i32 {
    env.connect(node)
        .await
        .query_one(
            "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn ids_on(env: &TestEnv, node: &str) -> (i64, String) {
    let client = env.connect_to(node, "bank").await;
    let row = client
        .query_one(
            "SELECT count(*), md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM ticks",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The acknowledged ids are all on `node`.
async fn assert_all_acked_on(env: &TestEnv, node: &str, acked: &[Acked]) {
    let client = env.connect_to(node, "bank").await;
    let ids: Vec<i64> = acked.iter().map(|a| a.id).collect();
    let found: i64 = client
        .query_one("SELECT count(*) FROM ticks WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        found,
        ids.len() as i64,
        "acknowledged writes missing on {node}"
    );
}

/// Switch the primary to `node` under writes; returns the writes and the longest pause.
async fn switch_under_writes(
    env: &TestEnv,
    primary_now: &str,
    node: &str,
) -> (Vec<Acked>, Duration) {
    let secrets = dbtopo::secrets::load_existing(&env.name).unwrap().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ports = ["main", "main-r1", "main-r2"].map(|n| env.port(n)).to_vec();
    let last_port = Arc::new(AtomicU16::new(0));
    let first_id: i64 = env
        .connect_to(primary_now, "bank")
        .await
        .query_one("SELECT coalesce(max(id), 0) + 1 FROM ticks", &[])
        .await
        .unwrap()
        .get(0);
    let writer = tokio::spawn(write_until(
        ports,
        secrets.superuser.clone(),
        stop.clone(),
        last_port.clone(),
        first_id,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    env.rewrite(|text| with_primary(&text, node));
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    let promoted: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Promote)
        .collect();
    assert_eq!(promoted.len(), 1, "{text}");
    assert_eq!(promoted[0].address.to_string(), format!("node.{node}"));
    assert!(promoted[0].reason.starts_with("switchover:"), "{text}");
    assert!(plan.data_losses().is_empty(), "{text}");
    env.apply().await.expect("the switchover applies");
    let deadline = Instant::now() + Duration::from_secs(15);
    while last_port.load(Ordering::Relaxed) != env.port(node) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(
        acked.last().is_some_and(|a| a.port == env.port(node)),
        "the client writes to {node} after the switchover"
    );
    let pause = longest_pause(&acked);
    (acked, pause)
}

async fn assert_settled(env: &TestEnv, primary: &str) {
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
    let checks = dbtopo::app::verify_checks(&env.file).await.unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let timelines: Vec<&str> = checks
        .iter()
        .filter(|c| c.subject.starts_with("replica "))
        .map(|c| c.detail.as_str())
        .collect();
    assert_eq!(timelines.len(), 2, "{checks:#?}");
    assert!(
        timelines
            .iter()
            .all(|d| d.contains(&format!("as {primary}"))),
        "{timelines:?}"
    );
    let observed = env.observe().await;
    for (node, server) in &observed.servers {
        let live = server.live.as_ref().expect("answers");
        assert_eq!(live.in_recovery, node != primary, "{node}");
        assert_eq!(live.streaming, node != primary, "{node} streams");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_switchover_and_back_under_writes_loses_nothing() {
    let env = TestEnv::from_yaml("swo", TOPOLOGY);
    env.apply().await.expect("apply");
    let before = timeline(&env, "main").await;

    let (acked, pause) = switch_under_writes(&env, "main", "main-r1").await;
    assert_all_acked_on(&env, "main-r1", &acked).await;
    assert_settled(&env, "main-r1").await;
    let (on_old, _) = ids_on(&env, "main").await;
    let (on_new, sum_new) = ids_on(&env, "main-r1").await;
    assert_eq!(
        on_old, on_new,
        "the old primary holds what the new one holds"
    );
    eprintln!(
        "switchover to main-r1: {} writes acknowledged, longest pause {pause:?}",
        acked.len()
    );

    let (back, pause) = switch_under_writes(&env, "main-r1", "main").await;
    assert_all_acked_on(&env, "main", &back).await;
    assert_all_acked_on(&env, "main", &acked).await;
    assert_settled(&env, "main").await;
    let (_, sum_old) = ids_on(&env, "main-r1").await;
    assert_ne!(
        sum_old, sum_new,
        "writes went on after the first switchover"
    );
    assert_eq!(ids_on(&env, "main-r1").await, ids_on(&env, "main").await);
    let after = timeline(&env, "main").await;
    assert!(
        after >= before + 2,
        "two new timelines: {before} -> {after}"
    );
    eprintln!(
        "switchover back to main: {} writes acknowledged, longest pause {pause:?}",
        back.len()
    );
}

/// Transactions left prepared on the primary when it is switched over: one dbtopo recorded a
/// commit for is finished on it before it is fenced; one that is not dbtopo's is carried by
/// the promotion (it is in the WAL the replica replays) and can be finished on the new
/// primary.
#[tokio::test(flavor = "multi_thread")]
async fn prepared_transactions_are_finished_before_the_fence_or_carried_by_the_promotion() {
    let env = TestEnv::from_yaml("swp", TOPOLOGY);
    env.apply().await.expect("apply");
    let main = env.connect_to("main", "bank").await;
    // As `dbtopo txn` leaves things when it stops after recording its decision.
    main.batch_execute(dbtopo::txn::DECISIONS_DDL)
        .await
        .unwrap();
    for sql in [
        "BEGIN; INSERT INTO ticks (id) VALUES (1); PREPARE TRANSACTION 'dbtopo:p1:main';",
        "INSERT INTO dbtopo.txn_decisions (gid, outcome) VALUES ('p1', 'commit');",
        "BEGIN; INSERT INTO ticks (id) VALUES (2); PREPARE TRANSACTION 'by-hand';",
    ] {
        main.batch_execute(sql).await.unwrap();
    }
    drop(main);

    env.rewrite(|text| with_primary(&text, "main-r1"));
    let plan = env.plan().await;
    let promotion = plan
        .changes
        .iter()
        .find(|c| c.action == Action::Promote)
        .expect("a promotion");
    assert!(
        promotion
            .after
            .iter()
            .any(|a| *a == "prepared_xact.main.dbtopo:p1:main"),
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    env.apply().await.expect("the switchover applies");

    let new = env.connect_to("main-r1", "bank").await;
    let gids: Vec<String> = new
        .query("SELECT gid FROM pg_prepared_xacts", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(gids, ["by-hand"]);
    assert_eq!(ids_on(&env, "main-r1").await.0, 1, "p1 committed");
    new.batch_execute("COMMIT PREPARED 'by-hand'")
        .await
        .unwrap();
    assert_eq!(ids_on(&env, "main-r1").await.0, 2);
    assert_settled(&env, "main-r1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_needs_consent_and_keeps_what_the_replica_held() {
    let env = TestEnv::from_yaml("fov", TOPOLOGY);
    env.apply().await.expect("apply");
    let primary = env.connect_to("main", "bank").await;
    primary
        .batch_execute("INSERT INTO ticks (id) SELECT g FROM generate_series(1, 500) g")
        .await
        .unwrap();
    env.caught_up("main", "main-r2").await;
    drop(primary);

    // The primary is lost with its data.
    let docker = common::docker().await;
    remove_container(&docker, &env.container("main")).await;
    docker
        .remove_volume(
            &dbtopo::model::volume_name(&env.name, "main"),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();

    env.rewrite(|text| with_primary(&text, "main-r2"));
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    let losses = plan.data_losses();
    assert_eq!(losses.len(), 1, "{text}");
    assert_eq!(losses[0].0, "node.main-r2", "{text}");
    assert!(
        text.contains("failover: main-r2 becomes the primary"),
        "{text}"
    );
    let refused = env
        .apply()
        .await
        .expect_err("a failover is not applied without consent");
    assert!(
        format!("{refused:?}").contains("destroys data"),
        "{refused:?}"
    );

    env.apply_with(true).await.expect("the failover applies");
    assert_eq!(ids_on(&env, "main-r2").await.0, 500);
    assert_settled(&env, "main-r2").await;
    assert_eq!(ids_on(&env, "main").await, ids_on(&env, "main-r2").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_stopped_cleanly_hands_over_to_its_replica_without_consent() {
    let env = TestEnv::from_yaml("hov", TOPOLOGY);
    env.apply().await.expect("apply");
    env.connect_to("main", "bank")
        .await
        .batch_execute("INSERT INTO ticks (id) SELECT g FROM generate_series(1, 300) g")
        .await
        .unwrap();
    // Stopped cleanly (as a maintenance would), then the topology promotes main-r1: the old
    // primary's last checkpoint, read from its data, proves main-r1 has everything.
    let docker = common::docker().await;
    docker
        .stop_container(
            &env.container("main"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    env.rewrite(|text| with_primary(&text, "main-r1"));
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    assert!(plan.data_losses().is_empty(), "{text}");
    assert!(text.contains("which stopped cleanly at LSN"), "{text}");
    env.apply()
        .await
        .expect("the promotion applies without consent");
    assert_eq!(ids_on(&env, "main-r1").await.0, 300);
    assert_settled(&env, "main-r1").await;
    assert_eq!(ids_on(&env, "main").await.0, 300);
    assert_rewound(&env, "main").await;
}

const SYNCHRONOUS: &str = "
name: syn
postgres:
  settings: { max_prepared_transactions: 8 }
  nodes:
    main: { port: 5874 }
  replicas:
    main-r1: { of: main, port: 5875, synchronous: true }
    main-r2: { of: main, port: 5876 }
  schema: { file: tests/fixtures/ticks.sql, database: bank, nodes: [main] }
";

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_to_a_synchronous_replica_loses_no_acknowledged_commit() {
    let env = TestEnv::from_yaml("syn", SYNCHRONOUS);
    env.apply().await.expect("apply");
    let checks = dbtopo::app::verify_checks(&env.file).await.unwrap();
    let r1 = checks
        .iter()
        .find(|c| c.subject == "replica main-r1")
        .expect("a check of main-r1");
    assert!(r1.ok && r1.detail.contains("synchronous"), "{r1:?}");

    // Commits as a client makes them: each one reported done only once main-r1 has it.
    let client = env.connect_to("main", "bank").await;
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .unwrap();
    for id in 1..=200i64 {
        client
            .execute("INSERT INTO ticks (id) VALUES ($1)", &[&id])
            .await
            .unwrap();
    }
    drop(client);
    let docker = common::docker().await;
    remove_container(&docker, &env.container("main")).await;

    env.rewrite(|text| {
        let mut text = with_primary(&text, "main-r1");
        // main-r1's own configuration still records that it was synchronous.
        text = text.replace("synchronous: true", "");
        text
    });
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    assert!(plan.data_losses().is_empty(), "{text}");
    assert!(text.contains("is a synchronous standby of main"), "{text}");
    env.apply()
        .await
        .expect("the failover applies without consent");
    assert_eq!(ids_on(&env, "main-r1").await.0, 200);
    assert_settled(&env, "main-r1").await;
    assert_eq!(ids_on(&env, "main").await.0, 200);
    // The old primary, killed with its volume kept, was recovered and rewound, not copied anew.
    assert_rewound(&env, "main").await;
}

const FRAGMENTED: &str = "
name: coo
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5877 }
    eu: { port: 5878 }
  replicas:
    hub-r: { of: hub, port: 5879 }
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
";

/// The topology text with `replica` the node in place of `node`, which becomes its replica:
/// each server keeps its port, and every mention of `node` as a place of tables moves.
fn promoted(text: &str, node: &str, replica: &str) -> String {
    let port = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}: {{")))
            .and_then(|l| l.split("port: ").nth(1))
            .map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned())
            .expect("a port")
    };
    let (node_port, replica_port) = (port(node), port(replica));
    text.lines()
        .map(|line| {
            let name = line.trim_start().split(':').next().unwrap_or_default();
            if name == node && line.contains("{ port:") {
                format!("    {replica}: {{ port: {replica_port} }}")
            } else if name == replica && line.contains("{ of:") {
                format!("    {node}: {{ of: {replica}, port: {node_port} }}")
            } else {
                line.replace(&format!("node: {node},"), &format!("node: {replica},"))
                    .replace(&format!("[{node},"), &format!("[{replica},"))
                    .replace(&format!(", {node}]"), &format!(", {replica}]"))
                    .replace(&format!("[{node}]"), &format!("[{replica}]"))
            }
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

async fn counts(env: &TestEnv, node: &str) -> Vec<i64> {
    let client = env.connect_to(node, "shop").await;
    let mut out = Vec::new();
    for table in [
        "orders",
        "order_details",
        "transactions",
        "shipping",
        "products",
        "users",
    ] {
        out.push(
            client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get(0),
        );
    }
    out
}

/// The coordinator's replica made the node: the coordinator's objects come along with its
/// data, and the reference copies' subscription is made again on the new coordinator (the old
/// one's logical slot is dropped there).
#[tokio::test(flavor = "multi_thread")]
async fn the_coordinator_switches_over_with_its_fragments_and_copies() {
    let env = TestEnv::from_yaml("coo", FRAGMENTED);
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    let before = counts(&env, "hub").await;
    assert!(before.iter().all(|n| *n > 0), "{before:?}");

    env.rewrite(|text| promoted(&text, "hub", "hub-r"));
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    assert!(text.contains("^ node.hub-r"), "{text}");
    // The coordinator's objects and the copies' subscription are compared once hub-r runs as
    // the primary (its standby cannot normalize the manifest).
    assert!(
        text.contains("subscription.dbtopo_ref_eu") || text.contains("the coordinator moved"),
        "{text}"
    );
    assert!(plan.data_losses().is_empty(), "{text}");
    env.apply().await.expect("the switchover applies");
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
    assert_eq!(counts(&env, "hub-r").await, before);
    let checks = dbtopo::app::verify_checks(&env.file).await.unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let slots: i64 = env
        .connect("hub")
        .await
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0, "the old coordinator keeps no slot");
    // The column group the coordinator keeps follows it under its new name, rows and all.
    let tables = names(
        &env,
        "hub-r",
        "SELECT relname::text FROM pg_class WHERE relname LIKE 'users_hub%' AND relkind = 'r'",
    )
    .await;
    assert_eq!(tables, ["users_hub_r"]);
}

/// Names a query lists on `node`, in the shop's database.
async fn names(env: &TestEnv, node: &str, sql: &str) -> Vec<String> {
    let mut names: Vec<String> = env
        .connect_to(node, "shop")
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    names.sort();
    names
}

/// What the coordinator and the copying nodes hold to reach the fragment nodes and copy the
/// reference tables: foreign servers, publications and logical slots on the coordinator, the
/// subscriptions on each copying node.
async fn coordinator_wiring(env: &TestEnv, coordinator: &str, copying: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (what, sql) in [
        ("server", "SELECT srvname::text FROM pg_foreign_server"),
        ("publication", "SELECT pubname::text FROM pg_publication"),
        (
            "slot",
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_type = 'logical'",
        ),
    ] {
        for name in names(env, coordinator, sql).await {
            out.push(format!("{what} {name}"));
        }
    }
    for node in copying {
        for name in names(env, node, "SELECT subname::text FROM pg_subscription").await {
            out.push(format!("subscription {name} on {node}"));
        }
    }
    out
}

/// A category written on the coordinator reaches `node`'s reference copy.
async fn assert_copies_follow(env: &TestEnv, coordinator: &str, node: &str, name: &str) {
    env.connect_to(coordinator, "shop")
        .await
        .execute("INSERT INTO categories (name) VALUES ($1)", &[&name])
        .await
        .unwrap();
    let copy = env.connect_to(node, "shop").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found: i64 = copy
            .query_one("SELECT count(*) FROM categories WHERE name = $1", &[&name])
            .await
            .unwrap()
            .get(0);
        if found == 1 {
            return;
        }
        assert!(found == 0, "{name} copied {found} times to {node}");
        assert!(Instant::now() < deadline, "{name} never reached {node}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const FRAGMENT_NODE: &str = "
name: frn
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5884 }
    eu: { port: 5885 }
    us: { port: 5886 }
  replicas:
    eu-r: { of: eu, port: 5887 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: us, values: [US] }
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
    categories: [eu, us]
    products: [eu, us]
";

/// A fragment node's replica made the node, then (its new primary lost with its volume) the
/// old node made the node again: no row moves, the coordinator reads the parts and the column
/// group through the promoted server, the reference copies follow the coordinator there with
/// one subscription, and nothing of the server before is left on the coordinator.
#[tokio::test(flavor = "multi_thread")]
async fn a_fragment_node_switches_over_and_fails_over_with_the_coordinator_re_pointed() {
    let env = TestEnv::from_yaml("frn", FRAGMENT_NODE);
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    let before = counts(&env, "hub").await;
    assert!(before.iter().all(|n| *n > 0), "{before:?}");

    env.rewrite(|text| promoted(&text, "eu", "eu-r"));
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    assert!(text.contains("^ node.eu-r"), "{text}");
    assert!(plan.data_losses().is_empty(), "{text}");
    assert!(!text.contains("moved_part"), "no row moves: {text}");
    env.apply().await.expect("the switchover applies");
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
    assert_eq!(counts(&env, "hub").await, before);
    assert_settled_fragments(&env).await;
    assert_eq!(
        coordinator_wiring(&env, "hub", &["eu-r", "us"]).await,
        [
            "server dbtopo_eu_r",
            "server dbtopo_us",
            "publication dbtopo_ref_eu_r",
            "publication dbtopo_ref_us",
            "slot dbtopo_ref_eu_r",
            "slot dbtopo_ref_us",
            "subscription dbtopo_ref_eu_r on eu-r",
            "subscription dbtopo_ref_us on us",
        ]
    );
    assert_copies_follow(&env, "hub", "eu-r", "after the switchover").await;

    // eu-r is lost with its data: eu, its replica, is made the node again.
    let docker = common::docker().await;
    remove_container(&docker, &env.container("eu-r")).await;
    docker
        .remove_volume(
            &dbtopo::model::volume_name(&env.name, "eu-r"),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
    env.rewrite(|text| promoted(&text, "eu-r", "eu"));
    let refused = env.apply().await.expect_err("a failover needs consent");
    assert!(
        format!("{refused:?}").contains("destroys data"),
        "{refused:?}"
    );
    env.apply_with(true).await.expect("the failover applies");
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
    assert_eq!(counts(&env, "hub").await, before);
    assert_settled_fragments(&env).await;
    assert_eq!(
        coordinator_wiring(&env, "hub", &["eu", "us"]).await,
        [
            "server dbtopo_eu",
            "server dbtopo_us",
            "publication dbtopo_ref_eu",
            "publication dbtopo_ref_us",
            "slot dbtopo_ref_eu",
            "slot dbtopo_ref_us",
            "subscription dbtopo_ref_eu on eu",
            "subscription dbtopo_ref_us on us",
        ]
    );
    assert_copies_follow(&env, "hub", "eu", "after the failover").await;
}

/// verify passes, as `verify --json` says it too.
async fn assert_settled_fragments(env: &TestEnv) {
    let checks = dbtopo::app::verify_checks(&env.file).await.unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let output = dbtopo_command(&["verify", env.file.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["ok"], true);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["checks"].as_array().unwrap().len(), checks.len());
    assert!(report["checks"][0]["subject"].is_string(), "{report:#}");
}

fn dbtopo_command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("NO_COLOR", "1")
        .env_remove(dbtopo::execute::CRASH_AFTER_ENV)
        .env_remove(dbtopo::execute::promote::CRASH_IN_PROMOTION_ENV);
    command
}

/// A switchover apply killed at every point (after each of its steps, and inside the
/// promotion once the old primary stopped and once the replica's new container started): the
/// next apply converges, without consent, with every row, the plan empty and verify passing.
/// The switchovers go back and forth between main and main-r1.
#[tokio::test(flavor = "multi_thread")]
async fn a_switchover_killed_anywhere_converges_with_one_more_apply() {
    let env = TestEnv::from_yaml("swk", TOPOLOGY);
    env.apply().await.expect("apply");
    env.connect_to("main", "bank")
        .await
        .batch_execute("INSERT INTO ticks (id) SELECT g FROM generate_series(1, 100) g")
        .await
        .unwrap();
    let file = env.file.to_str().unwrap().to_owned();
    let mut primary = "main";
    let mut kills: Vec<(&str, String)> = vec![
        (
            dbtopo::execute::promote::CRASH_IN_PROMOTION_ENV,
            "fenced".into(),
        ),
        (
            dbtopo::execute::promote::CRASH_IN_PROMOTION_ENV,
            "restarted".into(),
        ),
    ];
    let steps = {
        env.rewrite(|text| with_primary(&text, "main-r1"));
        let plan = env.plan().await;
        env.rewrite(|text| with_primary(&text, "main"));
        plan.changes.len()
    };
    kills.extend((1..steps).map(|n| (dbtopo::execute::CRASH_AFTER_ENV, n.to_string())));
    let mut failures = Vec::new();
    for (variable, value) in &kills {
        let target = if primary == "main" { "main-r1" } else { "main" };
        env.rewrite(|text| with_primary(&text, target));
        let killed = dbtopo_command(&["apply", &file, "--auto-approve"])
            .env(variable, value)
            .output()
            .unwrap();
        let again = dbtopo_command(&["apply", &file, "--auto-approve"])
            .output()
            .unwrap();
        let plan = dbtopo_command(&["plan", &file, "--detailed-exitcode"])
            .output()
            .unwrap();
        let verify = dbtopo_command(&["verify", &file]).output().unwrap();
        let converged = !killed.status.success()
            && again.status.success()
            && plan.status.code() == Some(0)
            && verify.status.success();
        if !converged {
            failures.push(format!(
                "{variable}={value} (to {target}): killed apply {}, next apply {}, plan exit \
                 {:?}, verify {}\n{}\n{}\n{}",
                if killed.status.success() {
                    "was not interrupted"
                } else {
                    "died"
                },
                if again.status.success() {
                    "succeeded"
                } else {
                    "failed"
                },
                plan.status.code(),
                verify.status.success(),
                common::text(&again),
                common::text(&plan),
                common::text(&verify)
            ));
            break;
        }
        assert_eq!(ids_on(&env, target).await.0, 100, "{variable}={value}");
        primary = target;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A fragment node's switchover apply killed at points spread over both of its rounds (the
/// promotion, then the coordinator re-pointed and the copies' subscription made again): the
/// next apply converges with every row, the plan empty and verify passing. The switchovers go
/// back and forth between eu and eu-r.
#[tokio::test(flavor = "multi_thread")]
async fn a_fragment_nodes_switchover_killed_in_either_round_converges_with_one_more_apply() {
    let env = TestEnv::from_yaml("frk", FRAGMENT_NODE);
    env.apply().await.expect("apply");
    env.seed(1).await.expect("seed");
    let before = counts(&env, "hub").await;
    let file = env.file.to_str().unwrap().to_owned();
    let (mut node, mut replica) = ("eu", "eu-r");
    for kill_after in [1, 4, 7, 10, 13, 16] {
        env.rewrite(|text| promoted(&text, node, replica));
        let killed = dbtopo_command(&["apply", &file, "--auto-approve"])
            .env(dbtopo::execute::CRASH_AFTER_ENV, kill_after.to_string())
            .output()
            .unwrap();
        let again = dbtopo_command(&["apply", &file, "--auto-approve"])
            .output()
            .unwrap();
        let plan = dbtopo_command(&["plan", &file, "--detailed-exitcode"])
            .output()
            .unwrap();
        let verify = dbtopo_command(&["verify", &file]).output().unwrap();
        assert!(
            !killed.status.success()
                && again.status.success()
                && plan.status.code() == Some(0)
                && verify.status.success(),
            "killed after {kill_after} steps (to {replica}): killed apply {:?}, next apply {:?}, \
             plan {:?}, verify {:?}\n{}\n{}\n{}",
            killed.status.code(),
            again.status.code(),
            plan.status.code(),
            verify.status.code(),
            common::text(&again),
            common::text(&plan),
            common::text(&verify)
        );
        assert_eq!(
            counts(&env, "hub").await,
            before,
            "killed after {kill_after}"
        );
        (node, replica) = (replica, node);
    }
}
