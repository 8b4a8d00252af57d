//! `DOCKER_HOST` is honoured as the docker CLI honours it: an engine named there that does not
//! answer is an error naming it, never a silent fall back to the local engine. No Docker
//! Engine is needed.

use std::process::Command;

fn dbtopo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env(
            "DBTOPO_STATE_DIR",
            std::env::temp_dir().join("dbtopo-docker-host-test"),
        )
        .env_remove("DOCKER_TLS_VERIFY");
    command
}

#[test]
fn an_engine_named_in_docker_host_that_does_not_answer_is_an_error_naming_it() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("tcp://127.0.0.1:{port}");
    let output = dbtopo(&["plan", "topology.yaml"])
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&host), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).is_empty());
}

#[test]
fn tls_to_the_engine_is_refused_clearly() {
    let output = dbtopo(&["plan", "topology.yaml"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:2376")
        .env("DOCKER_TLS_VERIFY", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DOCKER_TLS_VERIFY"), "{stderr}");
}
