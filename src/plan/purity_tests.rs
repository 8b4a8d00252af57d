//! The planner and the desired state are pure: no module under `src/plan` or `src/desired`
//! names a crate or API that reaches Docker, a server, a file or a socket.

use std::path::Path;

const FORBIDDEN: [&str; 9] = [
    "bollard",
    "tokio_postgres",
    "mongodb",
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
    "async fn",
    ".await",
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_planner_and_the_desired_state_do_no_io() {
    let mut files = Vec::new();
    for dir in ["src/plan", "src/desired"] {
        sources(Path::new(dir), &mut files);
    }
    assert!(files.len() > 10, "found {files:?}");
    let mut found = Vec::new();
    for file in &files {
        if file.ends_with("purity_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O in the planner:\n{}",
        found.join("\n")
    );
}
