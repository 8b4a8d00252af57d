//! Each way an apply can fail before it starts, or at its first step, leaves the environment
//! as it was (or, for one not made yet, something the next apply completes) and says what to
//! do: a setting PostgreSQL rejects, an image that cannot be had, a port another program
//! holds, a Docker Engine that does not answer. After the cause is fixed, one apply converges.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, docker, text};

/// A node and its replica, on ports and names unlike the default topology's.
const VAULT: &str = "
name: vault
postgres:
  settings:
    max_connections: 40
  nodes:
    vault: { port: 6301, settings: { work_mem: 6MB } }
  replicas:
    vault-echo: { of: vault, port: 6302 }
";

/// `dbtopo ARGS` as a user runs it, with the test binary's state folder (inherited).
fn dbtopo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DOCKER_TLS_VERIFY")
        .stdin(Stdio::null());
    command
}

fn apply(env: &TestEnv) -> Output {
    dbtopo(&["apply", env.file.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap()
}

/// What the environment is made of: each container's id, image, state and start time, and
/// the names of its volumes and network. Equal snapshots mean nothing was touched.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    containers: BTreeMap<String, (String, String, bool, String)>,
    volumes: Vec<String>,
    networks: Vec<String>,
}

async fn snapshot(env: &TestEnv) -> Snapshot {
    let docker = docker().await;
    let inventory = dbtopo::observe::docker::inventory(&docker, &env.name)
        .await
        .unwrap();
    let mut containers = BTreeMap::new();
    for name in &inventory.containers {
        let inspect = docker.inspect_container(name, None).await.unwrap();
        let state = inspect.state.unwrap_or_default();
        containers.insert(
            name.clone(),
            (
                inspect.id.unwrap_or_default(),
                inspect.config.and_then(|c| c.image).unwrap_or_default(),
                state.running.unwrap_or(false),
                state.started_at.unwrap_or_default(),
            ),
        );
    }
    Snapshot {
        containers,
        volumes: inventory.volumes.iter().map(|(v, _)| v.clone()).collect(),
        networks: inventory.networks.clone(),
    }
}

/// VAULT applied, with a row on the primary that the replica has.
async fn applied(prefix: &str) -> TestEnv {
    let env = TestEnv::from_yaml(prefix, VAULT);
    env.apply().await.expect("first apply");
    env.connect("vault")
        .await
        .batch_execute("CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (1);")
        .await
        .unwrap();
    echo_has(&env, 1).await;
    env
}

/// The replica has `rows` rows of `kept` within a few seconds.
async fn echo_has(env: &TestEnv, rows: i64) {
    let echo = env.connect("vault-echo").await;
    let mut seen = -1;
    for _ in 0..100 {
        seen = echo
            .query_one("SELECT count(*) FROM kept", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        if seen == rows {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("vault-echo has {seen} rows of kept, not {rows}");
}

/// The file's environment matches and streams, with its row.
async fn converged(env: &TestEnv) {
    env.assert_converged_and_streaming("vault-echo").await;
    let output = dbtopo(&["plan", env.file.to_str().unwrap(), "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("No changes."), "{}", text(&output));
}

/// A value the server's `pg_settings` refuses is a plan error naming node and setting, and one
/// only the server binary refuses (a time zone that does not exist) stops before any restart:
/// either way every container runs on as it was, and the fixed value converges in one apply.
#[tokio::test(flavor = "multi_thread")]
async fn a_setting_postgresql_rejects_changes_nothing() {
    let env = applied("failset").await;
    let before = snapshot(&env).await;

    env.rewrite(|t| t.replace("work_mem: 6MB", "work_mem: banana"));
    let output = apply(&env);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    for expected in [
        "vault",
        "work_mem",
        "banana",
        "fix the value in the topology",
    ] {
        assert!(said.contains(expected), "{expected}\n{said}");
    }
    assert_eq!(snapshot(&env).await, before, "{said}");

    env.rewrite(|t| {
        t.replace(
            "work_mem: banana",
            "work_mem: 6MB, log_timezone: Europe/Atlantis",
        )
    });
    let output = apply(&env);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    let port = env.port("vault");
    for expected in [
        format!("vault (PostgreSQL, port {port}) refuses its new configuration"),
        "Europe/Atlantis".to_owned(),
        "run apply again once the cause is fixed".to_owned(),
    ] {
        assert!(said.contains(&expected), "{expected}\n{said}");
    }
    assert_eq!(snapshot(&env).await, before, "{said}");
    env.connect("vault")
        .await
        .batch_execute("INSERT INTO kept VALUES (2)")
        .await
        .unwrap();
    echo_has(&env, 2).await;

    env.rewrite(|t| t.replace("log_timezone: Europe/Atlantis", "log_timezone: Europe/Oslo"));
    let output = apply(&env);
    assert!(output.status.success(), "{}", text(&output));
    converged(&env).await;
    echo_has(&env, 2).await;
}

/// On an environment not made yet no server of its own can judge the value (the catalogue
/// dbtopo carries for the image's PostgreSQL does, where it has one): whatever the first
/// apply gets to, it fails naming the setting, and once the value is fixed one apply makes
/// the whole environment.
#[tokio::test(flavor = "multi_thread")]
async fn a_setting_postgresql_rejects_on_a_new_environment_ends_re_appliable() {
    let env = TestEnv::from_yaml("failsetnew", VAULT);
    env.rewrite(|t| t.replace("work_mem: 6MB", "work_mem: banana"));
    let output = apply(&env);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("work_mem"), "{said}");
    // Judged by the plan (nothing made), or by the server itself when it starts: then the
    // error names the server, PostgreSQL and its port.
    let port = env.port("vault");
    let judged_by_plan = said.contains("node vault: work_mem") && said.contains("fix the value");
    let judged_at_start = said.contains(&format!(
        "PostgreSQL in container {} (port {port}) did not answer",
        env.container("vault")
    )) && said.contains("run apply again");
    assert!(judged_by_plan || judged_at_start, "{said}");

    env.rewrite(|t| t.replace("work_mem: banana", "work_mem: 6MB"));
    let output = apply(&env);
    assert!(output.status.success(), "{}", text(&output));
    converged(&env).await;
}

/// An image no registry serves and Debian does not package: apply says which image, that no
/// registry answered and how to provide it, and touches nothing (the environment runs on its
/// old image); with the image name restored, the plan is empty.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_had_changes_nothing() {
    let env = applied("failimg").await;
    let before = snapshot(&env).await;

    env.rewrite(|t| format!("images: {{ postgres: \"nosuch/postgres:99\" }}\n{t}"));
    let output = apply(&env);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    for expected in [
        "cannot get image `nosuch/postgres:99`",
        "No registry answered",
        "docker load",
        "images.postgres",
    ] {
        assert!(said.contains(expected), "{expected}\n{said}");
    }
    assert_eq!(snapshot(&env).await, before, "{said}");
    env.connect("vault")
        .await
        .batch_execute("INSERT INTO kept VALUES (2)")
        .await
        .unwrap();
    echo_has(&env, 2).await;

    env.rewrite(|t| t.replace("images: { postgres: \"nosuch/postgres:99\" }\n", ""));
    let output = apply(&env);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("No changes."), "{}", text(&output));
    assert_eq!(snapshot(&env).await, before);
    converged(&env).await;
}

/// The same image on an environment not made yet: nothing that needs the image is made, and
/// with the image name fixed one apply makes the whole environment.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_had_on_a_new_environment_ends_re_appliable() {
    let env = TestEnv::from_yaml("failimgnew", VAULT);
    env.rewrite(|t| format!("images: {{ postgres: \"nosuch/postgres:99\" }}\n{t}"));
    let output = apply(&env);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot get image `nosuch/postgres:99`"),
        "{said}"
    );
    assert!(
        snapshot(&env).await.containers.is_empty(),
        "a container without its image: {said}"
    );

    env.rewrite(|t| t.replace("images: { postgres: \"nosuch/postgres:99\" }\n", ""));
    let output = apply(&env);
    assert!(output.status.success(), "{}", text(&output));
    converged(&env).await;
}

/// A new node whose port another program holds: the plan names node and port and says what to
/// do, nothing is touched; once the port is free, one apply adds the node.
#[tokio::test(flavor = "multi_thread")]
async fn a_port_in_use_changes_nothing() {
    let env = applied("failport").await;
    let before = snapshot(&env).await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    env.rewrite(|t| {
        t.replace(
            "  replicas:",
            &format!("    ledger: {{ port: {port} }}\n  replicas:"),
        )
    });

    for command in ["plan", "apply"] {
        let output = match command {
            "plan" => dbtopo(&["plan", env.file.to_str().unwrap()])
                .output()
                .unwrap(),
            _ => apply(&env),
        };
        let said = text(&output);
        assert_eq!(output.status.code(), Some(1), "{command}: {said}");
        for expected in [
            format!("ledger needs 127.0.0.1:{port}, which another program holds"),
            "stop the program that holds the port".to_owned(),
        ] {
            assert!(said.contains(&expected), "{command}: {expected}\n{said}");
        }
        assert_eq!(snapshot(&env).await, before, "{command}: {said}");
    }

    drop(holder);
    let output = apply(&env);
    assert!(output.status.success(), "{}", text(&output));
    converged(&env).await;
    let ledger = dbtopo::observe::postgres::connect_to(
        port,
        &dbtopo::secrets::load_existing(&env.name)
            .unwrap()
            .unwrap()
            .superuser,
        "postgres",
        Duration::from_secs(5),
    )
    .await;
    assert!(ledger.is_ok(), "ledger answers on {port}");
}

/// The longest a command may take against an engine that is not there: the engine's first
/// answer has a 10 s deadline, and a refused connection needs none of it.
const ENGINE_DEADLINE: Duration = Duration::from_secs(12);

/// `plan`, `apply` and `destroy` against an engine that is not there (a closed TCP port, a
/// missing socket) fail at once, naming the engine and what to check; the real environment
/// is untouched and applying with the real engine finds nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_engine_changes_nothing() {
    let env = applied("failengine").await;
    let before = snapshot(&env).await;
    let closed = common::free_ports(1)[0];
    let file = env.file.to_str().unwrap();
    for host in [
        format!("tcp://127.0.0.1:{closed}"),
        "unix:///nonexistent.sock".to_owned(),
    ] {
        for args in [
            vec!["plan", file],
            vec!["apply", file, "--auto-approve"],
            vec!["destroy", file, "--auto-approve"],
        ] {
            let started = Instant::now();
            let output = dbtopo(&args).env("DOCKER_HOST", &host).output().unwrap();
            let took = started.elapsed();
            let said = text(&output);
            assert_eq!(output.status.code(), Some(1), "{args:?} on {host}: {said}");
            assert!(took < ENGINE_DEADLINE, "{args:?} on {host} took {took:?}");
            for expected in [host.as_str(), "is the Docker Engine running"] {
                assert!(said.contains(expected), "{args:?}: {expected}\n{said}");
            }
        }
    }
    // An engine that takes the connection and never answers: apply gives up at the deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("tcp://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let output = dbtopo(&["apply", file, "--auto-approve"])
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    let took = started.elapsed();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        took < ENGINE_DEADLINE,
        "apply on a silent engine took {took:?}"
    );
    assert!(
        said.contains(&format!("{host} did not answer within")),
        "{said}"
    );
    drop(silent);

    assert_eq!(snapshot(&env).await, before);
    let secrets = dbtopo::secrets::load_existing(&env.name).unwrap();
    assert!(
        secrets.is_some(),
        "destroy kept the environment's passwords"
    );

    let output = apply(&env);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("No changes."), "{}", text(&output));
    assert_eq!(snapshot(&env).await, before);
    converged(&env).await;
}
