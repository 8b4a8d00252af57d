//! End to end against the real Docker Engine and real PostgreSQL servers started by dbtopo.

mod common;

use std::time::Duration;

use common::{TestEnv, actions, docker};
use dbtopo::observe;
use dbtopo::plan::Action;

/// Rows in the probe table; -1 while the table has not reached this server yet.
async fn count_rows(env: &TestEnv, node: &str) -> i64 {
    env.connect(node)
        .await
        .query_one("SELECT count(*) FROM orders_probe", &[])
        .await
        .map(|row| row.get(0))
        .unwrap_or(-1)
}

async fn wait_for_rows(env: &TestEnv, node: &str, expected: i64) -> i64 {
    let mut seen = -1;
    for _ in 0..100 {
        seen = count_rows(env, node).await;
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

async fn show(env: &TestEnv, node: &str, setting: &str) -> String {
    env.connect(node)
        .await
        .query_one(&format!("SHOW {setting}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Every change of the plan has `action`.
fn assert_only(plan: &dbtopo::plan::Plan, action: Action) {
    assert!(
        plan.changes.iter().all(|c| c.action == action),
        "{}",
        dbtopo::plan::render_text(plan)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn default_topology_converges_repairs_drift_and_is_destroyed() {
    let mut env = TestEnv::from_default("e2e");
    env.apply().await.expect("first apply");

    // Rows written on the primary are read on the replica.
    let primary = env.connect("primary").await;
    primary
        .batch_execute(
            "CREATE TABLE orders_probe (id int PRIMARY KEY, note text);
             INSERT INTO orders_probe SELECT g, 'order ' || g FROM generate_series(1, 500) g;",
        )
        .await
        .unwrap();
    assert_eq!(wait_for_rows(&env, "primary-replica", 500).await, 500);
    let replica = env.connect("primary-replica").await;
    let in_recovery: bool = replica
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the replica is a standby");
    assert_eq!(
        show(&env, "primary", "max_prepared_transactions").await,
        "16"
    );

    // Applying twice changes nothing.
    assert!(env.plan().await.is_empty(), "second plan is empty");

    // Drift: a container stopped, a setting changed inside the server, a slot dropped while
    // its replica was down, and a container removed by hand.
    let docker = docker().await;
    docker
        .stop_container(
            &env.container("shard-eu"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    primary
        .batch_execute("ALTER SYSTEM SET work_mem = '64MB'")
        .await
        .unwrap();
    primary
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    docker
        .stop_container(
            &env.container("primary-replica"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    primary
        .batch_execute("SELECT pg_drop_replication_slot('dbtopo_primary_replica')")
        .await
        .unwrap();
    primary
        .batch_execute(
            "INSERT INTO orders_probe SELECT g, 'late ' || g FROM generate_series(501, 600) g",
        )
        .await
        .unwrap();
    drop(primary);
    drop(replica);
    docker
        .remove_container(
            &env.container("shard-us"),
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();

    let plan = env.plan().await;
    assert_eq!(
        actions(&plan),
        vec![
            ("node.primary".to_string(), Action::Update),
            ("node.primary-replica".to_string(), Action::Start),
            ("node.shard-eu".to_string(), Action::Start),
            ("node.shard-us".to_string(), Action::Create),
            (
                "slot.primary.dbtopo_primary_replica".to_string(),
                Action::Create
            ),
        ],
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    let primary_change = plan
        .changes
        .iter()
        .find(|c| c.address == "node.primary")
        .unwrap();
    assert_eq!(primary_change.details[0].field, "work_mem");

    env.apply().await.expect("repairing apply");
    env.assert_converged_and_streaming("primary-replica").await;
    // Every row written before is still there, and new rows reach the replica again.
    assert_eq!(wait_for_rows(&env, "primary-replica", 600).await, 600);
    assert_ne!(
        show(&env, "primary", "work_mem").await,
        "64MB",
        "the ALTER SYSTEM override is gone"
    );

    // A reload-only setting is applied without a restart.
    let started = env.postmaster_start("primary").await;
    env.rewrite(|t| {
        t.replace(
            "shared_buffers: 128MB",
            "shared_buffers: 128MB\n    work_mem: 12MB",
        )
    });
    assert_only(&env.plan().await, Action::Update);
    env.apply().await.expect("reload apply");
    assert_eq!(env.postmaster_start("primary").await, started, "no restart");
    assert_eq!(show(&env, "primary", "work_mem").await, "12MB");

    // A restart-only setting restarts the server.
    env.rewrite(|t| {
        t.replace(
            "max_prepared_transactions: 16",
            "max_prepared_transactions: 20",
        )
    });
    assert_only(&env.plan().await, Action::Restart);
    env.apply().await.expect("restart apply");
    assert_ne!(env.postmaster_start("primary").await, started, "restarted");
    assert_eq!(count_rows(&env, "primary").await, 600);

    // A lost secrets file is recovered from the containers.
    std::fs::remove_file(dbtopo::secrets::secrets_path(&env.name)).unwrap();
    let plan = dbtopo::app::plan(&dbtopo::cli::PlanArgs {
        file: dbtopo::cli::FileArg {
            file: env.file.clone(),
            profiles: Vec::new(),
        },
        json: false,
        detailed_exitcode: true,
    })
    .await
    .expect("plan recovers the passwords");
    assert!(!plan, "no changes");
    assert!(dbtopo::secrets::secrets_path(&env.name).exists());

    // A new image replaces every container and keeps every volume and row.
    let image = env.tag_image("postgres:17").await;
    env.rewrite(|t| {
        t.replace(
            "postgres: \"postgres:17\"",
            &format!("postgres: \"{image}\""),
        )
    });
    let plan = env.plan().await;
    let replaced: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .collect();
    assert_eq!(replaced.len(), 4, "{}", dbtopo::plan::render_text(&plan));
    env.apply().await.expect("replace apply");
    assert_eq!(count_rows(&env, "primary").await, 600);
    assert_eq!(wait_for_rows(&env, "primary-replica", 600).await, 600);
    assert!(env.plan().await.is_empty());

    // A new host port replaces only that container. The plan still reads the server on its old
    // port: were it not answering, the plan would also ensure its role and slot.
    let old_port = env.port("primary");
    let new_port = common::free_ports(1)[0];
    env.rewrite(|t| t.replace(&format!("port: {old_port}"), &format!("port: {new_port}")));
    env.ports
        .iter_mut()
        .filter(|(node, _)| node == "primary")
        .for_each(|(_, port)| *port = new_port);
    let plan = env.plan().await;
    assert_eq!(
        actions(&plan),
        vec![("node.primary".to_string(), Action::Replace)],
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    env.apply().await.expect("port apply");
    assert_eq!(count_rows(&env, "primary").await, 600);
    assert_eq!(wait_for_rows(&env, "primary-replica", 600).await, 600);
    assert!(env.plan().await.is_empty());

    // Destroy removes exactly this environment's objects.
    env.destroy().await.expect("destroy");
    let left = observe::docker::inventory(&docker, &env.name)
        .await
        .unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    env.destroy().await.expect("destroy of nothing succeeds");
}
