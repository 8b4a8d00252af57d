//! The command line: exit codes and diagnostics, no Docker needed.

use std::process::{Command, Stdio};

fn dbtopo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dbtopo"))
        .args(args)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn validate_accepts_the_default_topology() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/topology.yaml");
    let output = dbtopo(&["validate", file]);
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("environment \"ecommerce\", 3 node(s), 1 replica(s)")
    );
}

#[test]
fn validate_reports_every_problem_with_its_place_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("dbtopo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "name: shop\npostgres:\n  nodes:\n    primary: { port: 5433 }\n    Bad_Name: { port: 5433 }\n  replicas:\n    copy: { of: primry, port: 5434 }\n",
    )
    .unwrap();
    let output = dbtopo(&["validate", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Bad_Name"), "{stderr}");
    assert!(stderr.contains("5433"), "{stderr}");
    assert!(stderr.contains("primry"), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:5"),
        "points at the line: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let output = dbtopo(&["plan", "/nonexistent/topology.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/topology.yaml"));
}
