//! After any interruption, the next apply converges in one run: a cold apply of the default
//! topology (servers, schema, fragments, reference copies) is killed after each of its steps
//! in turn (the executor aborts the process, as a kill would, when
//! `DBTOPO_TEST_CRASH_AFTER_STEPS` changes are done); then one apply must succeed, the plan be
//! empty and `verify` pass.

mod common;

use std::process::{Command, Stdio};

use common::{TestEnv, text};

fn dbtopo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(args)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .env_remove(dbtopo::execute::CRASH_AFTER_ENV);
    command
}

#[test]
fn a_cold_apply_killed_after_any_step_converges_with_one_more_apply() {
    let env = TestEnv::from_default("faults");
    let file = env.file.to_str().unwrap().to_owned();
    let plan = dbtopo(&["plan", &file, "--json"]).output().unwrap();
    assert!(plan.status.success(), "{}", text(&plan));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let steps = json["changes"].as_array().unwrap().len();
    assert!(
        steps > 20,
        "a cold apply of the default topology has {steps} steps"
    );

    let mut failures = Vec::new();
    let mut applies_after = Vec::new();
    for crash_after in 1..steps {
        let killed = dbtopo(&["apply", &file, "--auto-approve"])
            .env(dbtopo::execute::CRASH_AFTER_ENV, crash_after.to_string())
            .output()
            .unwrap();
        if killed.status.success() {
            failures.push(format!("step {crash_after}: the apply was not interrupted"));
        }
        let again = dbtopo(&["apply", &file, "--auto-approve"])
            .output()
            .unwrap();
        let plan = dbtopo(&["plan", &file, "--detailed-exitcode"])
            .output()
            .unwrap();
        let verify = dbtopo(&["verify", &file]).output().unwrap();
        let converged =
            again.status.success() && plan.status.code() == Some(0) && verify.status.success();
        applies_after.push((crash_after, converged));
        if !converged {
            failures.push(format!(
                "killed after step {crash_after}: the next apply {}, plan exit {:?}, verify {}\n{}\n{}\n{}",
                if again.status.success() { "succeeded" } else { "failed" },
                plan.status.code(),
                if verify.status.success() { "passed" } else { "failed" },
                text(&again),
                text(&plan),
                text(&verify)
            ));
        }
        let destroyed = dbtopo(&["destroy", &file, "--auto-approve"])
            .output()
            .unwrap();
        assert!(destroyed.status.success(), "{}", text(&destroyed));
    }
    eprintln!(
        "fault matrix: {} kills, converged with one apply after {} of them",
        applies_after.len(),
        applies_after.iter().filter(|(_, ok)| *ok).count()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
