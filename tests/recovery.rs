//! A failed or interrupted apply leaves an environment the next apply completes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, docker};
use dbtopo::observe;

const SMALL: &str = "
name: small
postgres:
  settings:
    max_prepared_transactions: 4
  nodes:
    solo: { port: 5501, settings: { work_mem: 4MB } }
  replicas:
    solo-copy: { of: solo, port: 5502 }
";

fn dbtopo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command.args(args).stdin(Stdio::null());
    command
}

/// Run dbtopo with a pseudo-terminal (util-linux `script`) and type `answer` at its prompt.
fn on_terminal(args: &str, answer: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_dbtopo"));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script");
    writeln!(child.stdin.take().unwrap(), "{answer}").unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_will_not_start_fails_the_apply_and_the_fixed_topology_converges() {
    let env = TestEnv::from_yaml("badset", SMALL);
    env.rewrite(|t| t.replace("work_mem: 4MB", "work_mem: plenty"));
    let error = env
        .apply()
        .await
        .expect_err("a server with an invalid setting cannot start");
    let text = format!("{error:?}");
    assert!(
        text.contains("work_mem"),
        "the error shows the server's complaint: {text}"
    );

    env.rewrite(|t| t.replace("work_mem: plenty", "work_mem: 4MB"));
    env.apply().await.expect("apply after the fix");
    env.assert_converged_and_streaming("solo-copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_killed_half_way_is_completed_by_the_next_and_plan_exit_codes_follow() {
    let env = TestEnv::from_yaml("killed", SMALL);
    let file = env.file.to_str().unwrap().to_string();

    let status = dbtopo(&["plan", &file, "--detailed-exitcode"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "changes pending");

    let mut child = dbtopo(&["apply", &file, "--auto-approve"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let docker = docker().await;
    let started = Instant::now();
    // Kill it as soon as the first server's container exists: the environment is half made.
    loop {
        let inventory = observe::docker::inventory(&docker, &env.name)
            .await
            .unwrap();
        if !inventory.containers.is_empty() || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let half = observe::docker::inventory(&docker, &env.name)
        .await
        .unwrap();
    assert!(
        half.containers.len() < 2,
        "killed before the replica existed: {half:?}"
    );

    let output = dbtopo(&["apply", &file, "--auto-approve"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Apply complete!"), "{stdout}");

    let output = dbtopo(&["plan", &file, "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("No changes."));

    env.rewrite(|t| t.replace("work_mem: 4MB", "work_mem: 6MB"));
    let output = dbtopo(&["plan", &file, "--json"]).output().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("plan --json is JSON");
    assert_eq!(json["summary"]["change"], 1);
    assert_eq!(json["changes"][0]["address"], "node.solo");
    assert_eq!(json["changes"][0]["action"], "update");
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_a_half_created_environment_and_only_it() {
    let env = TestEnv::from_yaml("half", SMALL);
    let other = TestEnv::from_yaml("other", SMALL);
    let docker = docker().await;
    // Half created: the network and one volume, as an apply interrupted early leaves them.
    let desired = env.desired();
    let plan = dbtopo::plan::Plan::new(
        env.name.clone(),
        dbtopo::plan::diff(
            &desired,
            &dbtopo::model::State {
                env: env.name.clone(),
                ..Default::default()
            },
        ),
    );
    for change in plan
        .changes
        .iter()
        .filter(|c| c.address.kind() == "network" || c.address == "volume.solo")
    {
        if let dbtopo::plan::Operation::CreateNetwork { name, labels } = &change.operation {
            dbtopo::execute::docker::create_network(&docker, name, labels)
                .await
                .unwrap();
        }
        if let dbtopo::plan::Operation::CreateVolume { name, labels } = &change.operation {
            dbtopo::execute::docker::create_volume(&docker, name, labels)
                .await
                .unwrap();
        }
    }
    let other_plan = dbtopo::plan::Plan::new(
        other.name.clone(),
        dbtopo::plan::diff(
            &other.desired(),
            &dbtopo::model::State {
                env: other.name.clone(),
                ..Default::default()
            },
        ),
    );
    for change in &other_plan.changes {
        if let dbtopo::plan::Operation::CreateVolume { name, labels } = &change.operation {
            dbtopo::execute::docker::create_volume(&docker, name, labels)
                .await
                .unwrap();
        }
    }

    let before = observe::docker::inventory(&docker, &env.name)
        .await
        .unwrap();
    assert_eq!(
        (
            before.networks.len(),
            before.volumes.len(),
            before.containers.len()
        ),
        (1, 1, 0)
    );
    let output = dbtopo(&["destroy", env.file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "no terminal and no --auto-approve: refused"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("--auto-approve"));

    // On a terminal, anything but "yes" cancels; "yes" destroys.
    let (code, output) = on_terminal(&format!("destroy {}", env.file.display()), "no");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("Only 'yes' will be accepted") && output.contains("cancelled"),
        "{output}"
    );
    assert_eq!(
        observe::docker::inventory(&docker, &env.name)
            .await
            .unwrap(),
        before
    );
    let (code, output) = on_terminal(&format!("destroy {}", env.file.display()), "yes");
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("Destroy complete!"), "{output}");
    assert!(
        observe::docker::inventory(&docker, &env.name)
            .await
            .unwrap()
            .is_empty()
    );
    let untouched = observe::docker::inventory(&docker, &other.name)
        .await
        .unwrap();
    assert_eq!(
        untouched.volumes.len(),
        2,
        "another environment's volumes are kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_stopped_while_it_initialises_stops_at_once_and_the_next_apply_completes_it() {
    let env = TestEnv::from_yaml("stopinit", SMALL);
    let file = env.file.to_str().unwrap().to_string();
    let mut child = dbtopo(&["apply", &file, "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let docker = docker().await;
    let container = env.container("solo");
    let started = Instant::now();
    let mut running = false;
    while !running && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        running = docker
            .inspect_container(&container, None)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false);
    }
    // Its bootstrap is running initdb now: the stop must act at once rather than be ignored
    // until Docker kills the container (exit code 137).
    let stopped = docker
        .stop_container(
            &container,
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await;
    let state = docker
        .inspect_container(&container, None)
        .await
        .ok()
        .and_then(|i| i.state);
    // The apply is stopped before any assertion, so nothing recreates what cleanup removes.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(running, "the node never started");
    stopped.expect("stop the node");
    let state = state.expect("the container exists");
    assert_eq!(state.running, Some(false));
    assert_ne!(
        state.exit_code,
        Some(137),
        "stopped by SIGKILL after the timeout"
    );

    env.apply()
        .await
        .expect("the next apply completes the environment");
    assert!(env.plan().await.is_empty());
}

/// A CREATE SUBSCRIPTION an interrupted apply left running on the server commits after the
/// next apply dropped the subscription "if it exists" and before that apply creates it: the
/// next apply drops and creates it once more, and converges.
#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_an_interrupted_apply_commits_late_does_not_fail_the_next() {
    let env = TestEnv::from_default("latesub");
    env.apply().await.expect("first apply");
    let shard = env.connect_to("shard-eu", "ecommerce").await;
    shard
        .batch_execute("DROP SUBSCRIPTION dbtopo_ref_shard_eu")
        .await
        .unwrap();
    // The left-over statement: made, not committed yet (without a slot it may run in a
    // transaction), so the next apply's drop does not see it.
    let orphan = env.connect_to("shard-eu", "ecommerce").await;
    orphan
        .batch_execute(
            "BEGIN; CREATE SUBSCRIPTION dbtopo_ref_shard_eu CONNECTION 'host=nowhere' \
             PUBLICATION dbtopo_ref_shard_eu WITH (connect = false, slot_name = NONE)",
        )
        .await
        .unwrap();
    let file = env.file.clone();
    let apply = tokio::task::spawn_blocking(move || {
        dbtopo(&["apply", file.to_str().unwrap(), "--auto-approve"])
            .output()
            .unwrap()
    });
    // Commit once the apply waits on it (its CREATE meets the uncommitted name).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = shard
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE query LIKE 'CREATE SUBSCRIPTION%' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the apply never reached its CREATE"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    orphan.batch_execute("COMMIT").await.unwrap();
    let output = apply.await.unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let plan = env.plan().await;
    assert!(
        plan.is_empty(),
        "{}\n{}",
        dbtopo::plan::render_text(&plan),
        String::from_utf8_lossy(&output.stdout)
    );
}
