//! Every request to a server has a deadline, on a real server: the server cancels a statement
//! that runs past `DBTOPO_STATEMENT_TIMEOUT`, a paused server is let go soon after, and the
//! command that meets it names the node, PostgreSQL and the port.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;

const ONE_NODE: &str = "
name: deadline
postgres:
  nodes:
    ledger: { port: 5811 }
";

/// Seconds a statement may run in this test's sessions and commands.
const STATEMENT_SECONDS: u64 = 2;

fn docker_cli(args: &[&str]) {
    let status = Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run docker");
    assert!(status.success(), "docker {args:?}");
}

/// Unpauses the container when the test ends, even when it fails.
struct Paused(String);

impl Paused {
    fn new(container: &str) -> Paused {
        docker_cli(&["pause", container]);
        Paused(container.to_owned())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["unpause", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn dbtopo(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbtopo"))
        .args(args)
        .arg(&env.file)
        .env("NO_COLOR", "1")
        .env(
            dbtopo::pg::STATEMENT_TIMEOUT_ENV,
            STATEMENT_SECONDS.to_string(),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run dbtopo")
}

#[tokio::test]
async fn a_statement_or_a_server_that_never_ends_fails_within_its_deadline() {
    // SAFETY: set before this binary's only test starts any other thread.
    unsafe {
        std::env::set_var(
            dbtopo::pg::STATEMENT_TIMEOUT_ENV,
            STATEMENT_SECONDS.to_string(),
        )
    };
    let env = TestEnv::from_yaml("deadline", ONE_NODE);
    env.apply().await.expect("apply");
    let port = env.port("ledger");

    // The server itself cancels a statement that runs too long.
    let client = env.connect("ledger").await;
    let shown = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(shown, format!("{STATEMENT_SECONDS}s"));
    let started = Instant::now();
    let error = client
        .batch_execute("SELECT pg_sleep(30)")
        .await
        .expect_err("cancelled");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        dbtopo::pg::server_message(&error).contains("statement timeout"),
        "{error}"
    );

    // A server that stops answering in the middle of a session: the request ends soon after
    // the statement timeout, with the port in the error, and the session is over.
    let client = env.connect("ledger").await;
    let paused = Paused::new(&env.container("ledger"));
    let started = Instant::now();
    let error = client
        .batch_execute("SELECT 1")
        .await
        .expect_err("no answer from a paused server");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(STATEMENT_SECONDS + 15),
        "{waited:?}"
    );
    let message = dbtopo::pg::server_message(&error);
    assert!(
        message.contains(&format!("PostgreSQL on 127.0.0.1:{port} sent no answer")),
        "{message}"
    );

    // The commands meet the paused server at its startup and name it: the plan shows the
    // silent node as a change, verify fails.
    for command in ["plan", "verify"] {
        let started = Instant::now();
        let output = dbtopo(&env, &[command]);
        let waited = started.elapsed();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            waited < Duration::from_secs(30),
            "{command} took {waited:?}"
        );
        assert_eq!(
            output.status.success(),
            command == "plan",
            "{command}:\n{text}"
        );
        let named = match command {
            "plan" => format!(
                "PostgreSQL on 127.0.0.1:{port} does not answer: error communicating with the server: no PostgreSQL startup"
            ),
            _ => "ledger".to_owned(),
        };
        assert!(
            text.contains(&named) && text.contains(&port.to_string()),
            "{command} does not name the node and its port:\n{text}"
        );
    }
    drop(paused);

    // Once it answers again, so does everything else.
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
}
