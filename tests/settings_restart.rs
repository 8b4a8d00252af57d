//! Settings changes that never leave a server down, on a primary with two replicas: the server
//! binary judges a new configuration before anything restarts, a restart the server does not
//! come back from puts the last good files back (also after an apply killed mid-way), and a
//! setting a hot standby needs at least as high as its upstream moves on all three servers in
//! one apply, down and up.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;
use dbtopo::plan::{Action, Plan};

const LEDGER: &str = "
name: cfg
postgres:
  replication_user: streamer
  settings:
    max_connections: 200
    work_mem: 6MB
  nodes:
    ledger: { port: 6101 }
  replicas:
    ledger-east: { of: ledger, port: 6102 }
    ledger-west: { of: ledger, port: 6103 }
";

const REPLICAS: [&str; 2] = ["ledger-east", "ledger-west"];

async fn show(env: &TestEnv, node: &str, setting: &str) -> String {
    env.connect(node)
        .await
        .query_one(&format!("SHOW {setting}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Give the primary `settings` of its own.
fn ledger_settings(env: &TestEnv, settings: &str) {
    let port = env.port("ledger");
    env.rewrite(|yaml| {
        let line = yaml
            .lines()
            .find(|l| l.trim_start().starts_with("ledger:"))
            .unwrap()
            .to_owned();
        let new = match settings {
            "" => format!("    ledger: {{ port: {port} }}"),
            s => format!("    ledger: {{ port: {port}, settings: {{ {s} }} }}"),
        };
        yaml.replace(&line, &new)
    });
}

fn change<'a>(plan: &'a Plan, address: &str) -> Option<&'a dbtopo::plan::Change> {
    plan.changes.iter().find(|c| c.address == address)
}

fn wave_of(plan: &Plan, address: &str) -> usize {
    let i = plan
        .changes
        .iter()
        .position(|c| c.address == address)
        .unwrap_or_else(|| panic!("{address} is not planned"));
    plan.waves.iter().position(|w| w.contains(&i)).unwrap()
}

/// A row written on the primary now is read on both replicas.
async fn replicas_follow(env: &TestEnv, mark: i32) {
    env.connect("ledger")
        .await
        .execute("INSERT INTO marks VALUES ($1)", &[&mark])
        .await
        .unwrap();
    for replica in REPLICAS {
        let client = env.connect(replica).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = client
                .query_opt("SELECT 1 FROM marks WHERE mark = $1", &[&mark])
                .await
                .unwrap()
                .is_some();
            if found {
                break;
            }
            assert!(Instant::now() < deadline, "{replica} never received {mark}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn converged(env: &TestEnv) {
    for replica in REPLICAS {
        env.assert_converged_and_streaming(replica).await;
    }
}

async fn first_apply(prefix: &str) -> TestEnv {
    let env = TestEnv::from_yaml(prefix, LEDGER);
    env.apply().await.expect("first apply");
    env.connect("ledger")
        .await
        .batch_execute("CREATE TABLE marks (mark int PRIMARY KEY)")
        .await
        .unwrap();
    replicas_follow(&env, 1).await;
    env
}

/// The apply's error as the executor gave it: its message and help, unwrapped.
fn error_text(report: miette::Report) -> String {
    let error = report
        .downcast_ref::<dbtopo::execute::ExecuteError>()
        .unwrap_or_else(|| panic!("not an executor error: {report:?}"));
    let help = miette::Diagnostic::help(error).map(|h| h.to_string());
    format!("{error}\n{}", help.unwrap_or_default())
}

/// The files under the container's configuration folder, by path below it.
async fn files_in(env: &TestEnv, node: &str) -> Vec<String> {
    let docker = common::docker().await;
    dbtopo::observe::docker::read_files(&docker, &env.container(node))
        .await
        .unwrap()
        .unwrap()
        .into_keys()
        .collect()
}

/// A value `pg_settings` accepts but the server binary refuses when it reads the file: nothing
/// restarts, the files in place stay, and the error is the server's own, naming the node,
/// PostgreSQL and the port.
#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_the_server_binary_refuses_restarts_nothing() {
    let env = first_apply("cfg").await;
    let started = env.postmaster_start("ledger").await;

    ledger_settings(&env, "shared_buffers: 64MB, log_timezone: Europe/Atlantis");
    let plan = env.plan().await;
    assert_eq!(
        change(&plan, "node.ledger").map(|c| c.action),
        Some(Action::Restart),
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    let error = error_text(env.apply().await.expect_err("the server refuses it"));
    let port = env.port("ledger");
    for expected in [
        format!("ledger (PostgreSQL, port {port}) refuses its new configuration"),
        "invalid value for parameter \"log_timezone\": \"Europe/Atlantis\"".to_owned(),
        "/etc/dbtopo/postgresql.conf".to_owned(),
        "nothing restarted".to_owned(),
    ] {
        assert!(error.contains(&expected), "{expected}\n{error}");
    }
    assert!(!error.contains("candidate"), "{error}");

    // Not restarted, still on its files, and the replicas follow.
    assert_eq!(env.postmaster_start("ledger").await, started);
    assert_eq!(show(&env, "ledger", "shared_buffers").await, "128MB");
    replicas_follow(&env, 2).await;
    let plan = env.plan().await;
    let ledger = change(&plan, "node.ledger").expect("the change is still wanted");
    assert!(
        ledger.details.iter().any(|d| d.field == "shared_buffers"
            && d.before.as_deref() == Some("128MB")
            && d.after.as_deref() == Some("64MB")),
        "{}",
        dbtopo::plan::render_text(&plan)
    );

    // Fixed: the restart happens.
    ledger_settings(&env, "shared_buffers: 64MB");
    env.apply().await.expect("apply with a good value");
    assert_ne!(env.postmaster_start("ledger").await, started);
    assert_eq!(show(&env, "ledger", "shared_buffers").await, "64MB");
    converged(&env).await;
    replicas_follow(&env, 3).await;
}

/// The primary runs with its previous settings, the saved copy is gone, and the plan still
/// wants the change.
async fn previous_settings_back(env: &TestEnv) {
    assert_eq!(show(env, "ledger", "huge_pages").await, "try");
    assert_eq!(show(env, "ledger", "work_mem").await, "6MB");
    let plan = env.plan().await;
    let ledger = change(&plan, "node.ledger").expect("the change is still wanted");
    assert_eq!(ledger.action, Action::Restart);
    assert!(
        ledger.details.iter().any(|d| d.field == "huge_pages"),
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    assert!(
        !files_in(env, "ledger")
            .await
            .iter()
            .any(|f| f.starts_with("last-good")),
        "the saved copy is dropped once the server answers"
    );
}

fn dbtopo_apply(env: &TestEnv) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(["apply", env.file.to_str().unwrap(), "--auto-approve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("NO_COLOR", "1")
        .env_remove(dbtopo::execute::CRASH_AFTER_ENV);
    command
}

/// A value the server accepts in its files but cannot start with (`huge_pages: on` where the
/// machine has no huge pages): the restart fails, the last good files come back, the server
/// answers again and the apply says why. The same after an apply killed once the new files were
/// in place and the server restarted with them: the next apply finds the saved files.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_the_server_does_not_come_back_from_brings_the_last_good_settings_back() {
    let huge_pages = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("HugePages_Total:")
                .map(|n| n.trim().to_owned())
        });
    assert_eq!(
        huge_pages.as_deref(),
        Some("0"),
        "this test needs a machine without huge pages"
    );
    let env = first_apply("cfg").await;
    let port = env.port("ledger");
    let docker = common::docker().await;

    ledger_settings(&env, "huge_pages: 'on', work_mem: 7MB");
    let error = error_text(env.apply().await.expect_err("the restart fails"));
    for expected in [
        format!(
            "ledger (PostgreSQL, port {port}) did not come back from its restart with the new settings"
        ),
        "FATAL: could not map anonymous shared memory".to_owned(),
        "the previous settings are back and the server answers with them".to_owned(),
    ] {
        assert!(error.contains(&expected), "{expected}\n{error}");
    }
    previous_settings_back(&env).await;
    replicas_follow(&env, 2).await;

    // Killed once the new files are in place; the server then restarted with them (as the
    // killed apply would have had it) and cannot start.
    let mut killed = dbtopo_apply(&env).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let docker_files = dbtopo::observe::docker::read_files(&docker, &env.container("ledger"))
            .await
            .unwrap()
            .unwrap();
        if docker_files
            .get("postgresql.conf")
            .is_some_and(|c| c.contains("huge_pages"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the apply never wrote the files");
        assert!(killed.try_wait().unwrap().is_none(), "the apply ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let saved = files_in(&env, "ledger").await;
    assert!(
        saved.iter().any(|f| f == "last-good/postgresql.conf"),
        "the files in place were saved before they were overwritten: {saved:?}"
    );
    docker
        .restart_container(&env.container("ledger"), None)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dbtopo::execute::docker::status(&docker, &env.container("ledger"))
        .await
        .unwrap()
        .is_some_and(|(running, restarts)| running && restarts == 0)
    {
        assert!(Instant::now() < deadline, "the server kept running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let error = error_text(env.apply().await.expect_err("the restart fails"));
    assert!(
        error.contains("the previous settings are back and the server answers with them"),
        "{error}"
    );
    previous_settings_back(&env).await;
    replicas_follow(&env, 3).await;

    // Without the value, one apply converges.
    ledger_settings(&env, "work_mem: 7MB");
    env.apply().await.expect("apply without huge pages");
    assert_eq!(show(&env, "ledger", "work_mem").await, "7MB");
    converged(&env).await;
    replicas_follow(&env, 4).await;
}

/// The standby minimums in the order one apply needs them on a primary and two replicas:
/// lowered, the primary restarts first and each replica replays its lower value before it
/// restarts; raised, the replicas restart first.
#[tokio::test(flavor = "multi_thread")]
async fn standby_minimums_move_on_a_primary_and_two_replicas_in_one_apply() {
    let env = first_apply("cfg").await;
    let all = ["ledger", "ledger-east", "ledger-west"];

    for (from, to) in [("200", "100"), ("100", "150")] {
        env.rewrite(|yaml| {
            yaml.replace(
                &format!("max_connections: {from}"),
                &format!("max_connections: {to}"),
            )
        });
        let plan = env.plan().await;
        for replica in REPLICAS {
            let replica = format!("node.{replica}");
            let lowered = to.parse::<u32>().unwrap() < from.parse::<u32>().unwrap();
            let (first, then) = if lowered {
                ("node.ledger", replica.as_str())
            } else {
                (replica.as_str(), "node.ledger")
            };
            assert!(
                wave_of(&plan, first) < wave_of(&plan, then),
                "{}",
                dbtopo::plan::render_text(&plan)
            );
        }
        env.apply()
            .await
            .unwrap_or_else(|e| panic!("one apply, {from} -> {to}: {e:?}"));
        for node in all {
            assert_eq!(show(&env, node, "max_connections").await, to, "{node}");
        }
        converged(&env).await;
        replicas_follow(&env, to.parse().unwrap()).await;
    }
}
