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

/// A scratch folder for one test, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dbtopo-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn validate_parses_the_schema_manifest_and_points_at_its_errors() {
    let scratch = Scratch::new("sql");
    scratch.write("schema.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\nCREATE TABLE b (a_id bigint REFERENCES nope (id));\n");
    let file = scratch.write(
        "topology.yaml",
        "name: shop\npostgres:\n  nodes:\n    primary: { port: 5433 }\n  schema:\n    file: schema.sql\n",
    );
    let output = dbtopo(&["validate", &file]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schema.sql:2:"), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");

    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/topology.yaml");
    let output = dbtopo(&["validate", default]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("schema manifests/ecommerce.sql (9 tables, 6 indexes) into database \"ecommerce\" on primary"),
        "{stdout}"
    );
}

#[test]
fn erd_prints_mermaid_and_draws_svg_without_graphviz() {
    let scratch = Scratch::new("erd");
    let svg = scratch.0.join("schema.svg");
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/topology.yaml");
    // An empty PATH: no `dot` to be found, so the SVG can only be drawn in process.
    let output = Command::new(env!("CARGO_BIN_EXE_dbtopo"))
        .args(["erd", default, "--svg", svg.to_str().unwrap()])
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .env("PATH", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("Wrote {}.", svg.display())),
        "{stderr}"
    );
    let mermaid = String::from_utf8_lossy(&output.stdout);
    assert!(mermaid.starts_with("erDiagram\n"), "{mermaid}");
    assert!(mermaid.contains("orders ||--o| shipping"), "{mermaid}");

    let drawing = std::fs::read_to_string(&svg).expect("the SVG");
    assert!(
        drawing.starts_with("<?xml") || drawing.starts_with("<svg"),
        "{drawing}"
    );
    assert!(drawing.contains("<svg ") && drawing.trim_end().ends_with("</svg>"));
    let sql = include_str!("../manifests/ecommerce.sql");
    let schema = dbtopo::schema::parse_schema("ecommerce.sql", sql).expect("the manifest parses");
    assert_eq!(schema.tables.len(), 9);
    for table in schema.tables.keys() {
        assert!(
            drawing.contains(&format!(">{table}<")),
            "{table} is not drawn"
        );
    }
    // A foreign key is an edge (a path) labelled with its name and cardinality.
    assert!(drawing.contains("<path "), "no edge is drawn");
    assert!(
        drawing.contains(">shipping_order_id_fkey (0..1 : 1)<"),
        "the foreign key shipping_order_id_fkey is not drawn"
    );
    assert!(drawing.contains(">orders_status_check CHECK (status IN ("));

    let no_schema = scratch.write(
        "plain.yaml",
        "name: shop\npostgres:\n  nodes:\n    primary: { port: 5433 }\n",
    );
    let output = dbtopo(&["erd", &no_schema]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("declares no schema"));
}

#[test]
fn fragments_are_validated_and_planned() {
    let scratch = Scratch::new("fragments");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fragments.sql");
    // `plan` asks Docker about the environment: a name and ports no one else uses.
    let name = format!("tcli-{}", std::process::id());
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let [p1, p2, p3] = [0, 1, 2].map(|i| listeners[i].local_addr().unwrap().port());
    drop(listeners);
    let topology = format!(
        "name: {name}\npostgres:\n  nodes:\n    primary: {{ port: {p1} }}\n    shard-eu: {{ port: {p2} }}\n    shard-us: {{ port: {p3} }}\n  schema: {{ file: {manifest}, nodes: [primary] }}\n  fragments:\n    orders:\n      horizontal:\n        key: region\n        by: list\n        parts:\n          - {{ node: shard-eu, values: [EU] }}\n          - {{ node: primary, values: [US] }}\n    users:\n      vertical:\n        key: user_id\n        parts:\n          - {{ node: primary, columns: [email, name] }}\n          - {{ node: shard-eu, columns: [password_hash] }}\n"
    );
    let file = scratch.write("topology.yaml", &topology);
    let output = dbtopo(&["validate", &file]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("2 fragmented table(s) coordinated by primary"),
        "{stdout}"
    );

    let output = dbtopo(&["plan", "--detailed-exitcode", &file]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    for planned in [
        "fragmented_table.orders",
        "vertical_table.users",
        "ALTER TABLE orders ATTACH PARTITION orders_us_local FOR VALUES IN ('US');",
    ] {
        assert!(
            stdout.contains(planned),
            "{planned} is not planned:\n{stdout}"
        );
    }

    let gap = scratch.write(
        "gap.yaml",
        &topology.replace("values: [US]", "values: [EU]"),
    );
    let output = dbtopo(&["validate", &gap]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("value `EU` is in two parts"), "{stderr}");
    assert!(
        stderr.contains("no part takes US of `orders.region`"),
        "{stderr}"
    );
}

/// Terraform's exit codes: a usage error is 1 (2 stays what `plan --detailed-exitcode` says
/// of changes present); help and version are 0.
#[test]
fn a_usage_error_exits_1_and_help_exits_0() {
    let bogus = dbtopo(&["plan", "--detailed-exitcode", "--bogus"]);
    assert_eq!(bogus.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bogus.stderr).contains("--bogus"),
        "{bogus:?}"
    );
    assert_eq!(dbtopo(&[]).status.code(), Some(1), "no command");
    assert_eq!(dbtopo(&["--help"]).status.code(), Some(0));
    assert_eq!(dbtopo(&["--version"]).status.code(), Some(0));
}

/// On a terminal (a pseudo-terminal from `script`) a diagnostic is coloured, unless
/// `--no-color` or NO_COLOR says otherwise.
#[test]
fn no_color_and_no_color_env_turn_colours_off_on_a_terminal() {
    let on_terminal = |args: &str, no_color_env: bool| {
        let mut command = Command::new("script");
        command
            .args([
                "-qec",
                &format!(
                    "{} validate /nonexistent/topology.yaml {args}",
                    env!("CARGO_BIN_EXE_dbtopo")
                ),
                "/dev/null",
            ])
            .stdin(Stdio::null())
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE");
        if no_color_env {
            command.env("NO_COLOR", "1");
        }
        let output = command.output().expect("script runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let coloured = on_terminal("", false);
    assert!(
        coloured.contains("/nonexistent/topology.yaml"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\x1b["),
        "coloured on a terminal: {coloured:?}"
    );
    let plain = on_terminal("--no-color", false);
    assert!(plain.contains("/nonexistent/topology.yaml"), "{plain}");
    assert!(!plain.contains("\x1b["), "{plain:?}");
    assert!(!on_terminal("", true).contains("\x1b["));
}

/// `validate --json`: every problem, each label with its file, line and column; the default
/// topology valid with no error.
#[test]
fn validate_json_gives_every_problem_with_its_line_and_column() {
    let dir = std::env::temp_dir().join(format!("dbtopo-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "name: shop\npostgres:\n  nodes:\n    primary: { port: 5433 }\n    Bad_Name: { port: 5433 }\n  replicas:\n    copy: { of: primry, port: 5434 }\n",
    )
    .unwrap();
    let output = dbtopo(&["validate", file.to_str().unwrap(), "--json"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["valid"], false, "{report:#}");
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert!(diagnostics.len() >= 3, "{report:#}");
    assert_eq!(report["error_count"], diagnostics.len());
    let lines: Vec<(u64, u64)> = diagnostics
        .iter()
        .flat_map(|d| d["labels"].as_array().unwrap())
        .map(|l| {
            assert!(l["file"].as_str().unwrap().ends_with("bad.yaml"), "{l:#}");
            (l["line"].as_u64().unwrap(), l["column"].as_u64().unwrap())
        })
        .collect();
    assert!(lines.contains(&(5, 5)), "Bad_Name at 5:5: {lines:?}");
    assert!(
        lines.iter().any(|(line, _)| *line == 7),
        "primry: {lines:?}"
    );

    let default = dbtopo(&[
        "validate",
        concat!(env!("CARGO_MANIFEST_DIR"), "/topology.yaml"),
        "--json",
    ]);
    assert!(default.status.success());
    let report: serde_json::Value = serde_json::from_slice(&default.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["error_count"], 0);
}

/// Shell completions and the manual page name every command; bash reads the script without a
/// syntax error; an unknown shell is a usage error.
#[test]
fn completions_and_the_manual_page_cover_every_command() {
    let commands = [
        "validate",
        "plan",
        "apply",
        "destroy",
        "seed",
        "verify",
        "txn",
        "workload",
        "erd",
        "completions",
        "man",
    ];
    let bash = dbtopo(&["completions", "bash"]);
    assert!(bash.status.success(), "{bash:?}");
    let script = String::from_utf8(bash.stdout).unwrap();
    for command in commands {
        assert!(script.contains(command), "bash completion lacks {command}");
    }
    let syntax = Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    for shell in ["zsh", "fish"] {
        let output = dbtopo(&["completions", shell]);
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("validate"));
    }
    let man = dbtopo(&["man"]);
    assert!(man.status.success());
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(page.contains(".TH dbtopo 1"), "{page}");
    assert!(page.contains("\\-\\-no\\-color"), "{page}");
    for command in commands {
        assert!(page.contains(command), "the manual page lacks {command}");
    }
    assert_eq!(dbtopo(&["completions", "nosh"]).status.code(), Some(1));
}
