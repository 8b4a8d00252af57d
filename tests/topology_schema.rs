//! The topology's JSON Schema (`dbtopo schema`): the committed `topology.schema.json` is what
//! the command prints, and every topology the loader accepts passes it. No Docker needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MODELINE: &str = "# yaml-language-server: $schema=topology.schema.json";

/// What `dbtopo schema` prints; it must exit 0.
fn printed_schema() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dbtopo"))
        .arg("schema")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`dbtopo schema` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&dbtopo::topology::topology_schema()).unwrap()
}

/// The YAML as the JSON an editor's language server checks (anchors and aliases resolved).
fn as_json(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap()
}

/// The schema's complaints about a topology, one line each: none when it passes, else every
/// failed keyword down to the leaves (`anyOf` alone would only name the outermost value).
fn schema_errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let instance = as_json(yaml);
    if validator.is_valid(&instance) {
        return Vec::new();
    }
    let evaluation = validator.evaluate(&instance);
    evaluation
        .iter_errors()
        .map(|error| format!("at `{}`: {}", error.instance_location, error.error))
        .collect()
}

/// Loads the topology as the commands do, relative paths from the repository's root.
fn loader_accepts(name: &Path, yaml: &str) -> bool {
    dbtopo::topology::load_str(&name.display().to_string(), yaml).is_ok()
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(path);
        }
    }
}

#[test]
fn the_committed_schema_is_what_dbtopo_schema_prints() {
    let printed = printed_schema();
    serde_json::from_str::<Value>(&printed).expect("`dbtopo schema` prints JSON");
    let committed =
        std::fs::read_to_string(Path::new(ROOT).join("topology.schema.json")).unwrap_or_default();
    assert!(
        committed == printed,
        "topology.schema.json differs from what `dbtopo schema` prints now: regenerate it \
         with `dbtopo schema > topology.schema.json` (e.g. `cargo run -q -- schema > \
         topology.schema.json`) and commit it"
    );
}

#[test]
fn the_default_topology_names_the_schema_and_passes_it() {
    let yaml = std::fs::read_to_string(Path::new(ROOT).join("topology.yaml")).unwrap();
    assert_eq!(yaml.lines().next(), Some(MODELINE));
    assert!(loader_accepts(
        &Path::new(ROOT).join("topology.yaml"),
        &yaml
    ));
    assert_eq!(schema_errors(&validator(), &yaml), Vec::<String>::new());
}

#[test]
fn every_yaml_fixture_the_loader_accepts_passes_the_schema() {
    let validator = validator();
    let mut files = Vec::new();
    yaml_files(&Path::new(ROOT).join("tests"), &mut files);
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let yaml = std::fs::read_to_string(file).unwrap();
        if !loader_accepts(file, &yaml) {
            continue;
        }
        for error in schema_errors(&validator, &yaml) {
            failures.push(format!("{}: {error}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// Topologies the switchover tests write inline (tests/switchover.rs), copied.
const SWITCHOVER_TOPOLOGY: &str = "
name: swo
postgres:
  settings: { max_prepared_transactions: 8 }
  nodes:
    main: { port: 5871 }
  replicas:
    main-r1: { of: main, port: 5872 }
    main-r2: { of: main, port: 5873 }
  schema: { file: tests/fixtures/ticks.sql, database: bank, nodes: [main] }
";

const FRAGMENTED: &str = "
name: coo
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5877 }
    eu: { port: 5878 }
  replicas:
    hub-r: { of: hub, port: 5879 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: hub, values: [US] }
    order_details: { horizontal: *by_region }
    transactions: { horizontal: *by_region }
    shipping: { horizontal: *by_region }
    users:
      vertical:
        key: user_id
        parts:
          - { node: hub, columns: [email, name, region, created_at] }
          - { node: eu, columns: [password_hash] }
  reference_tables:
    categories: [eu]
    products: [eu]
";

const FRAGMENT_NODE: &str = "
name: frn
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5884 }
    eu: { port: 5885 }
    us: { port: 5886 }
  replicas:
    eu-r: { of: eu, port: 5887 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: us, values: [US] }
    order_details: { horizontal: *by_region }
    transactions: { horizontal: *by_region }
    shipping: { horizontal: *by_region }
    users:
      vertical:
        key: user_id
        parts:
          - { node: hub, columns: [email, name, region, created_at] }
          - { node: eu, columns: [password_hash] }
  reference_tables:
    categories: [eu, us]
    products: [eu, us]
";

/// A replica set, member lists, YAML 1.1 booleans and settings of every scalar type: the
/// loose corners of the schema, which must take what the loader takes.
const LOOSE_CORNERS: &str = "
name: corners
postgres:
  settings: { hot_standby: on, max_connections: 50, random_page_cost: 1.5, jit: false }
  nodes:
    main: { port: 5901, settings: { work_mem: 8MB } }
    shard: { port: 5903 }
  replicas:
    main-r: { of: main, port: 5902, synchronous: yes }
  indexes:
    - { table: orders, columns: [order_id, status], unique: 'true' }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [main] }
  fragments:
    orders:
      horizontal:
        key: order_id
        by: range
        parts: [{ node: main, to: 1000 }, { node: shard, from: 1000 }]
mongo:
  replica_sets:
    rs0: { members: 3, port: 27101 }
    rs1:
      members:
        - { port: 27111, priority: 2.5 }
        - { port: 27112, priority: 0, votes: 0, hidden: true }
        - { port: 27113 }
";

#[test]
fn the_switchover_tests_topologies_pass_the_schema() {
    let validator = validator();
    let name = Path::new(ROOT).join("inline.yaml");
    for (label, yaml) in [
        ("TOPOLOGY", SWITCHOVER_TOPOLOGY),
        ("FRAGMENTED", FRAGMENTED),
        ("FRAGMENT_NODE", FRAGMENT_NODE),
        ("LOOSE_CORNERS", LOOSE_CORNERS),
    ] {
        assert!(loader_accepts(&name, yaml), "the loader refuses {label}");
        assert_eq!(
            schema_errors(&validator, yaml),
            Vec::<String>::new(),
            "{label}"
        );
    }
}

#[test]
fn an_unknown_key_fails_the_schema_as_it_fails_the_loader() {
    let validator = validator();
    let default = std::fs::read_to_string(Path::new(ROOT).join("topology.yaml")).unwrap();
    let name = Path::new(ROOT).join("typo.yaml");
    for (typo, yaml) in [
        (
            "nodez",
            default.replace(
                "postgres:\n",
                "postgres:\n  nodez: { extra: { port: 5999 } }\n",
            ),
        ),
        (
            "prot",
            default.replace("primary:  { port: 5433 }", "primary:  { prot: 5433 }"),
        ),
        ("colour", format!("{default}\ncolour: blue\n")),
    ] {
        assert_ne!(yaml, default, "the typo `{typo}` was not written");
        assert!(!loader_accepts(&name, &yaml), "the loader accepts `{typo}`");
        let errors = schema_errors(&validator, &yaml);
        assert!(
            errors.iter().any(|e| e.contains(typo)),
            "the schema does not refuse `{typo}`: {errors:?}"
        );
    }
}
