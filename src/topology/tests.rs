use std::collections::BTreeMap;
use std::path::Path;

use miette::Diagnostic;

use super::*;
use crate::diagnostics::testing::{help, labels, messages, only_one};

const DEFAULT_FILE: &str = include_str!("../../topology.yaml");

/// A minimal valid file; tests append or replace parts of it.
const MINIMAL: &str = "name: shop\npostgres:\n  nodes:\n    primary: { port: 5433 }\n";

fn problems(yaml: &str) -> Vec<Problem> {
    match load_str("test.yaml", yaml) {
        Ok(t) => panic!("expected problems, loaded {t:#?}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// The single problem in `yaml`, checked to carry a primary label.
fn only(yaml: &str) -> Problem {
    only_one(problems(yaml))
}

fn render(err: &TopologyError) -> String {
    crate::test_support::render_report(err)
}

fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The default topology's fragments: an order and what belongs to it on its region's node,
/// users' credentials apart, catalog tables copied to the shards.
fn default_fragments() -> Fragments {
    let by_region = || Fragmentation::Horizontal {
        key: "region".into(),
        parts: vec![
            HorizontalPart {
                node: "shard-eu".into(),
                bound: Bound::List {
                    values: vec!["EU".into()],
                },
            },
            HorizontalPart {
                node: "shard-us".into(),
                bound: Bound::List {
                    values: vec!["US".into()],
                },
            },
        ],
    };
    let shards = || vec!["shard-eu".to_owned(), "shard-us".to_owned()];
    Fragments {
        coordinator: "primary".into(),
        tables: BTreeMap::from([
            ("orders".to_owned(), by_region()),
            ("order_details".to_owned(), by_region()),
            ("transactions".to_owned(), by_region()),
            ("shipping".to_owned(), by_region()),
            (
                "users".to_owned(),
                Fragmentation::Vertical {
                    key: "user_id".into(),
                    parts: vec![
                        VerticalPart {
                            node: "primary".into(),
                            columns: ["email", "name", "region", "created_at"]
                                .map(String::from)
                                .to_vec(),
                        },
                        VerticalPart {
                            node: "shard-eu".into(),
                            columns: vec!["password_hash".into()],
                        },
                    ],
                },
            ),
        ]),
        reference_tables: BTreeMap::from([
            ("categories".to_owned(), shards()),
            ("products".to_owned(), shards()),
        ]),
        indexes: vec![DistributedIndex {
            table: "orders".into(),
            columns: vec!["status".into(), "order_date".into()],
            unique: false,
        }],
    }
}

#[test]
fn default_file_loads_to_the_ecommerce_topology() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topology.yaml");
    let topology = load(&path).unwrap();
    let node = |name: &str, port| Node {
        name: name.to_owned(),
        port,
        settings: BTreeMap::new(),
    };
    let expected = Topology {
        name: "ecommerce".to_owned(),
        images: Images {
            postgres: "postgres:17".to_owned(),
            mongo: "mongo:7".to_owned(),
        },
        postgres: Postgres {
            settings: settings(&[
                ("wal_level", "logical"),
                ("max_wal_senders", "10"),
                ("max_replication_slots", "10"),
                ("wal_keep_size", "256MB"),
                ("hot_standby", "on"),
                ("max_prepared_transactions", "16"),
                ("enable_partitionwise_join", "on"),
                ("enable_partitionwise_aggregate", "on"),
                ("max_connections", "100"),
                ("shared_buffers", "128MB"),
            ]),
            access: Vec::new(),
            replication_user: "repuser".to_owned(),
            nodes: [
                node("primary", 5433),
                node("shard-eu", 5435),
                node("shard-us", 5436),
            ]
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect(),
            replicas: BTreeMap::from([(
                "primary-replica".to_owned(),
                Replica {
                    name: "primary-replica".to_owned(),
                    of: "primary".to_owned(),
                    port: 5434,
                    settings: BTreeMap::new(),
                    synchronous: false,
                },
            )]),
            schema: Some(SchemaTarget {
                file: "manifests/ecommerce.sql".to_owned(),
                path: Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/ecommerce.sql"),
                database: "ecommerce".to_owned(),
                nodes: vec!["primary".to_owned()],
                manifest: Some(crate::schema::SqlManifest::parse(
                    "manifests/ecommerce.sql",
                    include_str!("../../manifests/ecommerce.sql").to_owned(),
                )),
            }),
            fragments: Some(default_fragments()),
        },
        mongo: Mongo {
            replica_sets: BTreeMap::from([(
                "rs0".to_owned(),
                ReplicaSet {
                    name: "rs0".to_owned(),
                    members: vec![
                        member(0, "rs0", 27017, 10),
                        member(1, "rs0", 27018, 10),
                        member(2, "rs0", 27019, 10),
                    ],
                    database: "ecommerce".to_owned(),
                    collections: Some(CollectionsDir {
                        dir: "manifests/mongo".to_owned(),
                        path: Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/mongo"),
                    }),
                    profiles: vec!["mongo".to_owned()],
                },
            )]),
        },
        warnings: Vec::new(),
        setting_places: Default::default(),
    };
    assert_eq!(topology, expected);
}

#[test]
fn the_brief_example_loads_with_normalized_values() {
    let yaml = r#"
name: ecommerce
images: { postgres: "postgres:16", mongo: "mongo:6" }
postgres:
  replication_user: streamer
  settings:
    Max_Prepared_Transactions: 16
    wal_level: replica
    fsync: true
    synchronous_commit: off
    random_page_cost: 1.5
    auto_explain.log_min_duration: '250ms'
  access:
    - { database: all, user: all, address: 0.0.0.0/0, method: scram-sha-256 }
    - { database: replication, user: streamer, address: "::/0" }
  nodes:
    primary:  { port: 5433, settings: { work_mem: 8MB } }
    shard-eu: { port: 5435 }
  replicas:
    primary-replica: { of: primary, port: 5434, settings: {} }
"#;
    let t = load_str("brief.yaml", yaml).unwrap();
    assert_eq!(t.images.postgres, "postgres:16");
    assert_eq!(t.images.mongo, "mongo:6");
    assert_eq!(t.postgres.replication_user, "streamer");
    assert_eq!(
        t.postgres.settings,
        settings(&[
            ("max_prepared_transactions", "16"),
            ("wal_level", "replica"),
            ("fsync", "on"),
            ("synchronous_commit", "off"),
            ("random_page_cost", "1.5"),
            ("auto_explain.log_min_duration", "250ms"),
        ])
    );
    assert_eq!(
        t.postgres.access,
        vec![
            AccessRule {
                database: "all".into(),
                user: "all".into(),
                address: "0.0.0.0/0".into(),
            },
            AccessRule {
                database: "replication".into(),
                user: "streamer".into(),
                address: "::/0".into(),
            },
        ]
    );
    assert_eq!(
        t.postgres.nodes["primary"].settings,
        settings(&[("work_mem", "8MB")])
    );
    assert_eq!(t.postgres.nodes["shard-eu"].port, 5435);
    assert_eq!(t.postgres.replicas["primary-replica"].of, "primary");
    assert!(t.postgres.replicas["primary-replica"].settings.is_empty());
}

#[test]
fn missing_file_is_a_read_error_with_the_path() {
    let path = Path::new("/nonexistent/dbtopo/topology.yaml");
    let err = load(path).unwrap_err();
    assert!(
        matches!(&err, TopologyError::Read { path: p, source }
            if p == path && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("/nonexistent/dbtopo/topology.yaml")
    );
    assert!(err.problems().is_empty());
}

#[test]
fn environment_name_rules() {
    for (name, reason) in [
        ("Shop", "it starts with `S` (use lowercase)"),
        ("1shop", "it starts with `1`"),
        ("my_shop", "`_` is not allowed"),
        ("shop-", "it ends with `-`"),
        ("\"\"", "it is empty"),
        (&"a".repeat(41), "it is 41 characters long, the limit is 40"),
    ] {
        let yaml = MINIMAL.replace("name: shop", &format!("name: {name}"));
        let p = only(&yaml);
        assert!(p.to_string().starts_with("invalid environment name"), "{p}");
        assert_eq!(labels(&p), [reason], "for {name}");
        assert_eq!(p.snippet(), Some(name));
        assert!(help(&p).contains("Docker"));
    }
    let forty = MINIMAL.replace("name: shop", &format!("name: {}", "a".repeat(40)));
    assert_eq!(load_str("t", &forty).unwrap().name.len(), 40);
}

#[test]
fn rules_accept_valid_values_and_suggest_only_near_misses() {
    assert_eq!(rules::env_name("ecommerce-2"), Ok(()));
    assert_eq!(rules::server_name("shard_eu-1"), Ok(()));
    assert_eq!(rules::setting_name("_x.y_1"), Ok(()));
    assert_eq!(rules::role_name("_repuser1"), Ok(()));
    assert_eq!(rules::image("ghcr.io/org/pg:17.2@sha256:abc"), Ok(()));
    for address in ["all", "0.0.0.0/0", "172.16.0.0/12", "::/0", "fe80::1/64"] {
        assert_eq!(rules::hba_address(address), Ok(()), "{address}");
    }
    let nodes = ["primary", "shard-eu", "shard-us", "b"];
    assert_eq!(
        crate::diagnostics::closest("primay", nodes.into_iter()),
        Some("primary")
    );
    assert_eq!(
        crate::diagnostics::closest("Shard-EU", nodes.into_iter()),
        Some("shard-eu")
    );
    assert_eq!(crate::diagnostics::closest("a", nodes.into_iter()), None);
    assert_eq!(
        crate::diagnostics::closest("warehouse", nodes.into_iter()),
        None
    );
}

#[test]
fn missing_name_and_postgres_are_reported_together() {
    let all = problems("images: { postgres: 'postgres:17' }\n");
    assert_eq!(
        messages(&all),
        ["missing environment `name`", "missing `postgres` section"]
    );
    assert!(all.iter().all(|p| p.span().is_some()));
}

#[test]
fn empty_file_reports_what_is_missing() {
    let all = problems("");
    assert_eq!(all.len(), 2, "{:?}", messages(&all));
    assert_eq!(all[0].to_string(), "missing environment `name`");
}

#[test]
fn server_name_rules() {
    let p = only(&MINIMAL.replace("primary:", "Primary:"));
    assert_eq!(p.to_string(), "invalid server name `Primary`");
    assert_eq!(p.snippet(), Some("Primary"));

    let long = "r".repeat(41);
    let yaml = format!("{MINIMAL}  replicas:\n    {long}: {{ of: primary, port: 5434 }}\n");
    let p = only(&yaml);
    assert_eq!(labels(&p), ["it is 41 characters long, the limit is 40"]);

    let yaml = format!("{MINIMAL}    node.one: {{ port: 5440 }}\n");
    assert_eq!(labels(&only(&yaml)), ["`.` is not allowed"]);
}

#[test]
fn node_and_replica_with_the_same_name_is_reported_at_the_second() {
    let yaml = format!("{MINIMAL}  replicas:\n    primary: {{ of: primary, port: 5434 }}\n");
    let p = only(&yaml);
    assert_eq!(p.to_string(), "`primary` is both a node and a replica");
    assert_eq!(labels(&p), ["defined again here", "first defined here"]);
    let second = yaml.rfind("primary:").unwrap();
    assert_eq!(p.span().unwrap().offset(), second);
}

#[test]
fn names_that_share_a_replication_slot_are_refused() {
    let yaml = format!("{MINIMAL}    shard-eu: {{ port: 5435 }}\n    shard_eu: {{ port: 5436 }}\n");
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "`shard-eu` and `shard_eu` would share the replication slot `shard_eu`"
    );
    assert_eq!(p.snippet(), Some("shard_eu"));
}

#[test]
fn port_rules() {
    for (port, message) in [
        ("80", "port 80 of node `primary` is out of range"),
        ("70000", "port 70000 of node `primary` is out of range"),
        ("-1", "port -1 of node `primary` is out of range"),
        (
            "'5433'",
            "port of node `primary` must be an integer, found the string `5433`",
        ),
        (
            "54.33",
            "port of node `primary` must be an integer, found the number `54.33`",
        ),
    ] {
        let p = only(&MINIMAL.replace("5433", port));
        assert_eq!(p.to_string(), message);
        assert_eq!(p.snippet(), Some(port));
    }
    for port in ["1024", "65535"] {
        assert!(load_str("t", &MINIMAL.replace("5433", port)).is_ok());
    }
    let p = only(&MINIMAL.replace("{ port: 5433 }", "{ port: }"));
    assert_eq!(p.to_string(), "node `primary` has no `port`");
    assert_eq!(p.snippet(), Some("primary"));
    let p = only(&MINIMAL.replace("{ port: 5433 }", "{}"));
    assert_eq!(p.to_string(), "node `primary` has no `port`");
    let p = only(&MINIMAL.replace(" { port: 5433 }", ""));
    assert_eq!(p.to_string(), "node `primary` has no `port`");
    let all = problems(&format!("{MINIMAL}  replicas:\n    r:\n"));
    assert_eq!(
        messages(&all),
        ["replica `r` has no `of`", "replica `r` has no `port`"]
    );
}

#[test]
fn duplicate_host_port_points_at_the_second_use_and_labels_the_first() {
    let yaml = format!("{MINIMAL}  replicas:\n    copy: {{ of: primary, port: 5433 }}\n");
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "host port 5433 is used by both `primary` and `copy`"
    );
    assert_eq!(labels(&p), ["used again here", "first used by `primary`"]);
    let spans: Vec<usize> = p.labels().unwrap().map(|l| l.inner().offset()).collect();
    assert_eq!(
        spans,
        [yaml.rfind("5433").unwrap(), yaml.find("5433").unwrap()]
    );
}

#[test]
fn replica_of_an_unknown_node_suggests_the_closest_name() {
    let yaml = format!(
        "{MINIMAL}    shard-eu: {{ port: 5435 }}\n  replicas:\n    r: {{ of: primay, port: 5434 }}\n"
    );
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "replica `r` streams from unknown node `primay`"
    );
    assert_eq!(p.snippet(), Some("primay"));
    assert_eq!(
        help(&p),
        "did you mean `primary`? known nodes: primary, shard-eu"
    );

    let far = yaml.replace("primay", "warehouse");
    assert_eq!(help(&only(&far)), "known nodes: primary, shard-eu");
}

#[test]
fn cascading_replicas_are_refused() {
    let yaml = format!(
        "{MINIMAL}  replicas:\n    r1: {{ of: primary, port: 5434 }}\n    r2: {{ of: r1, port: 5437 }}\n"
    );
    let p = only(&yaml);
    assert_eq!(p.to_string(), "cascading replicas are not supported");
    assert_eq!(p.snippet(), Some("r1"));
    assert!(
        help(&p).starts_with("did you mean `of: primary`"),
        "{}",
        help(&p)
    );
}

#[test]
fn replica_without_of_is_reported() {
    let yaml = format!("{MINIMAL}  replicas:\n    r1: {{ port: 5434 }}\n");
    let p = only(&yaml);
    assert_eq!(p.to_string(), "replica `r1` has no `of`");
    assert!(help(&p).contains("known nodes: primary"));
}

#[test]
fn nodes_must_not_be_empty() {
    let p = only("name: shop\npostgres:\n  nodes: {}\n");
    assert_eq!(p.to_string(), "no PostgreSQL nodes are defined");
    assert_eq!(p.snippet(), Some("{"));
    let p = only("name: shop\npostgres:\n  replication_user: rep\n");
    assert_eq!(p.to_string(), "no PostgreSQL nodes are defined");
}

#[test]
fn setting_rules() {
    let global = |s: &str| format!("{MINIMAL}  settings:\n    {s}\n");
    let p = only(&global("work-mem: 8MB"));
    assert_eq!(p.to_string(), "invalid setting name `work-mem`");
    assert_eq!(labels(&p), ["`-` is not allowed"]);

    for managed in rules::MANAGED_SETTINGS {
        let p = only(&global(&format!("{managed}: x")));
        assert_eq!(
            p.to_string(),
            format!("setting `{managed}` is managed by dbtopo")
        );
        assert_eq!(p.snippet(), Some(*managed));
    }
    let p = only(&global("Listen_Addresses: '*'"));
    assert_eq!(
        p.to_string(),
        "setting `listen_addresses` is managed by dbtopo"
    );

    let p = only(&global("work_mem:"));
    assert_eq!(p.to_string(), "setting `work_mem` has no value");

    let p = only(&global("work_mem: \"8\\nMB\""));
    assert_eq!(
        p.to_string(),
        "value of setting `work_mem` is not a single line"
    );

    let p = only(&global("work_mem: 8MB\n    WORK_MEM: 4MB"));
    assert_eq!(p.to_string(), "setting `work_mem` is set twice");
    assert_eq!(p.snippet(), Some("WORK_MEM"));
}

#[test]
fn server_settings_are_validated_and_normalized() {
    let yaml = MINIMAL.replace(
        "{ port: 5433 }",
        "{ port: 5433, settings: { Work_Mem: 8MB, jit: no, port: 1 } }",
    );
    let p = only(&yaml);
    assert_eq!(p.to_string(), "setting `port` is managed by dbtopo");

    let yaml = format!(
        "{MINIMAL}  replicas:\n    r: {{ of: primary, port: 5434, settings: {{ Work_Mem: 8MB, jit: no, x.y: 0.25 }} }}\n"
    );
    let t = load_str("t", &yaml).unwrap();
    assert_eq!(
        t.postgres.replicas["r"].settings,
        settings(&[("work_mem", "8MB"), ("jit", "off"), ("x.y", "0.25")])
    );
}

#[test]
fn access_rules() {
    let rule = |r: &str| format!("{MINIMAL}  access:\n    - {r}\n");
    for method in ["trust", "md5", "password"] {
        let p = only(&rule(&format!(
            "{{ database: all, user: all, address: all, method: {method} }}"
        )));
        assert_eq!(
            p.to_string(),
            format!("access method `{method}` is not allowed for TCP connections")
        );
        assert_eq!(p.snippet(), Some(method));
        assert!(help(&p).contains("scram-sha-256"));
    }
    for (address, reason) in [
        ("10.0.0.0", "it has no `/prefix` length"),
        ("10.0.0.0/33", "the prefix length must be 0..=32"),
        ("'::/129'", "the prefix length must be 0..=128"),
        (
            "db.example/8",
            "`db.example` is not an IPv4 or IPv6 address",
        ),
    ] {
        let p = only(&rule(&format!(
            "{{ database: all, user: all, address: {address} }}"
        )));
        assert!(p.to_string().starts_with("invalid access address"), "{p}");
        assert_eq!(labels(&p), [reason]);
    }
    let p = only(&rule("{ database: '', user: all, address: all }"));
    assert_eq!(p.to_string(), "invalid access database ``");
    let p = only(&rule("{ database: all, user: 'a b', address: all }"));
    assert_eq!(
        labels(&p),
        ["whitespace ` ` is not allowed in pg_hba.conf fields"]
    );
    let p = only(&rule("{ database: all, address: all }"));
    assert_eq!(p.to_string(), "access rule has no `user`");

    let ok = rule("{ database: shop, user: app, address: '::1/128', method: scram-sha-256 }");
    let t = load_str("t", &ok).unwrap();
    assert_eq!(t.postgres.access[0].address, "::1/128");
}

#[test]
fn replication_user_rules() {
    for (user, reason) in [
        ("postgres", "`postgres` is the superuser"),
        ("pg_repl", "the `pg_` prefix is reserved by PostgreSQL"),
        ("Rep", "it starts with `R` (use lowercase)"),
        ("rep-user", "`-` is not allowed"),
    ] {
        let yaml = MINIMAL.replace(
            "postgres:\n",
            &format!("postgres:\n  replication_user: {user}\n"),
        );
        let p = only(&yaml);
        assert_eq!(p.to_string(), format!("invalid replication_user `{user}`"));
        assert_eq!(labels(&p), [reason]);
    }
}

#[test]
fn image_rules() {
    let p = only(&format!("{MINIMAL}images: {{ postgres: '' }}\n"));
    assert_eq!(p.to_string(), "invalid image reference ``");
    let p = only(&format!("{MINIMAL}images: {{ mongo: 'mongo 7' }}\n"));
    assert_eq!(labels(&p), ["it contains whitespace (whitespace ` `)"]);
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let yaml = "\
name: Shop_1
postgres:
  replication_user: postgres
  settings: { port: 1, Bad-Name: 2 }
  access:
    - { database: all, user: all, address: 10.0.0.0, method: trust }
  nodes:
    primary: { port: 80 }
    shard-eu: { port: 5435 }
  replicas:
    shard-eu: { of: primay, port: 5435 }
";
    let all = problems(yaml);
    assert_eq!(
        messages(&all),
        [
            "invalid environment name `Shop_1`",
            "invalid replication_user `postgres`",
            "setting `port` is managed by dbtopo",
            "invalid setting name `Bad-Name`",
            "invalid access address `10.0.0.0`",
            "access method `trust` is not allowed for TCP connections",
            "port 80 of node `primary` is out of range",
            "`shard-eu` is both a node and a replica",
            "replica `shard-eu` streams from unknown node `primay`",
            "host port 5435 is used by both `shard-eu` and `shard-eu`",
        ]
    );
}

#[test]
fn unknown_key_points_at_the_key_and_suggests_a_fix() {
    let yaml = format!("{MINIMAL}  replica:\n    r: {{ of: primary, port: 5434 }}\n");
    let p = only(&yaml);
    assert_eq!(p.to_string(), "unknown key `replica`");
    assert_eq!(p.snippet(), Some("replica"));
    assert!(
        help(&p).starts_with("did you mean `replicas`?"),
        "{}",
        help(&p)
    );

    let p = only(&MINIMAL.replace("port:", "prot:"));
    assert_eq!(p.to_string(), "unknown key `prot`");
    assert!(help(&p).starts_with("did you mean `port`?"));
}

#[test]
fn yaml_syntax_error_is_a_spanned_diagnostic() {
    let p = only("name: shop\npostgres:\n  nodes: { primary: { port: 5433 }\n");
    assert!(p.to_string().starts_with("invalid YAML"), "{p}");
    assert!(p.to_string().contains("unclosed"), "{p}");
    assert!(help(&p).contains("brackets"));

    let p = only(&format!("{MINIMAL}---\nname: other\n"));
    assert!(help(&p).contains("single YAML document"), "{}", help(&p));
}

#[test]
fn syntax_error_span_is_in_bytes_after_multibyte_text() {
    // serde-saphyr reports syntax errors in characters only; the span must be converted.
    let yaml = "name: shop # café ☕\npostgres:\n  nodes: { primary: 'x }\n";
    let p = only(yaml);
    assert_eq!(p.snippet(), Some("'"), "{p}");
}

#[test]
fn type_error_is_a_spanned_diagnostic() {
    let p = only("name: shop\npostgres:\n  nodes: [primary]\n");
    assert!(p.to_string().starts_with("unexpected value"), "{p}");
    assert_eq!(p.snippet(), Some("["));
}

#[test]
fn duplicate_yaml_key_is_reported() {
    let yaml = format!("{MINIMAL}    primary: {{ port: 5434 }}\n");
    let p = only(&yaml);
    assert!(
        p.to_string().contains("duplicate mapping key `primary`"),
        "{p}"
    );
    assert_eq!(p.span().unwrap().offset(), yaml.rfind("primary").unwrap());
}

#[test]
fn top_level_error_counts_problems_and_relates_them() {
    let err = load_str("bad.yaml", "name: Bad\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`bad.yaml` is not a valid topology: 2 problems"
    );
    assert_eq!(err.related().unwrap().count(), 2);
    let one = load_str("bad.yaml", "name: x\npostgres: { nodes: {} }\n").unwrap_err();
    assert_eq!(
        one.to_string(),
        "`bad.yaml` is not a valid topology: 1 problem"
    );
}

/// Damaged versions of the default file must produce errors, never panics, and every
/// report must render. Each position gets a deletion and one rotating insertion.
#[test]
fn no_panic_on_damaged_input() {
    const INSERTS: [&str; 10] = [":", "[", "'", "\t", "é", "{", "- ", "&a", "*a", "\n "];
    let chars: Vec<char> = DEFAULT_FILE.chars().collect();
    let mut failures = 0;
    for i in 0..chars.len() {
        for insert in ["", INSERTS[i % INSERTS.len()]] {
            let mut damaged: String = chars[..i].iter().collect();
            damaged.push_str(insert);
            damaged.extend(&chars[i + 1..]);
            if let Err(err) = load_str("damaged.yaml", &damaged) {
                failures += 1;
                assert!(render(&err).contains("damaged.yaml"));
            }
        }
    }
    assert!(
        failures > chars.len() / 2,
        "only {failures} damaged files failed"
    );
}

#[test]
fn report_with_several_problems_snapshot() {
    let yaml = "\
name: shop-
postgres:
  settings:
    data_directory: /tmp/pg
  access:
    - { database: all, user: all, address: 0.0.0.0/0, method: md5 }
  nodes:
    primary: { port: 5433 }
    shard-eu: { port: 70000 }
  replicas:
    primary-replica: { of: primry, port: 5433 }
";
    let err = load_str("topology.yaml", yaml).unwrap_err();
    insta::assert_snapshot!(render(&err));
}

#[test]
fn report_for_unknown_key_snapshot() {
    let yaml = "name: shop\npostgres:\n  nodes:\n    primary: { port: 5433, setting: {} }\n";
    let err = load_str("topology.yaml", yaml).unwrap_err();
    insta::assert_snapshot!(render(&err));
}

#[test]
fn pathological_inputs_are_errors() {
    let deep_seq = format!("name: {}", "[".repeat(100_000));
    let deep_map = format!("postgres: {}", "{a: ".repeat(100_000));
    let deep_block: String = (0..5_000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n\
                name: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
    for yaml in [
        &deep_seq,
        &deep_map,
        &deep_block,
        bomb,
        "\u{feff}",
        "\0",
        "name: \u{1b}[31m",
    ] {
        let err = load_str("evil.yaml", yaml).unwrap_err();
        assert!(!err.problems().is_empty());
        assert!(!render(&err).is_empty());
    }
}

#[test]
fn schema_defaults_to_database_postgres_on_every_node() {
    let yaml = format!(
        "{MINIMAL}    shard: {{ port: 5435 }}\n  schema:\n    file: manifests/ecommerce.sql\n"
    );
    let t = load_str("test.yaml", &yaml).unwrap();
    let schema = t.postgres.schema.expect("a schema");
    assert_eq!(schema.database, "postgres");
    assert_eq!(schema.nodes, ["primary", "shard"]);
    assert!(schema.path.ends_with("manifests/ecommerce.sql"));
}

#[test]
fn schema_problems_are_reported_together_at_their_values() {
    let yaml = format!(
        "{MINIMAL}  replicas:\n    primary-replica: {{ of: primary, port: 5434 }}\n  schema:\n    \
         file: manifests/missing.sql\n    database: Shop\n    nodes: [primary-replica, primray]\n"
    );
    let all = problems(&yaml);
    assert_eq!(
        messages(&all),
        [
            "schema file `manifests/missing.sql` not found",
            "invalid database name `Shop`",
            "`primary-replica` is a replica",
            "unknown node `primray`",
        ]
    );
    let snippets: Vec<&str> = all.iter().filter_map(|p| p.snippet()).collect();
    assert_eq!(
        snippets,
        [
            "manifests/missing.sql",
            "Shop",
            "primary-replica",
            "primray"
        ]
    );
    assert!(help(&all[3]).contains("did you mean `primary`?"));
    assert!(help(&all[2]).contains("by replication"));
}

const FRAGMENT_NODES: &str = "name: shop
postgres:
  settings: { wal_level: logical }
  nodes:
    primary: { port: 5433 }
    shard-eu: { port: 5435 }
    shard-us: { port: 5436 }
  replicas:
    primary-replica: { of: primary, port: 5434 }
  schema: { file: tests/fixtures/fragments.sql, nodes: [primary] }
";

#[test]
fn fragments_load_into_partition_bounds_column_groups_and_copies() {
    let yaml = format!(
        "{FRAGMENT_NODES}  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - {{ node: shard-eu, values: [EU] }}
          - {{ node: shard-us, values: [US] }}
    reviews:
      horizontal:
        key: product_id
        by: range
        parts:
          - {{ node: shard-us, from: 1000 }}
          - {{ node: shard-eu, to: 1000 }}
    events:
      horizontal: {{ key: user_id, by: hash, parts: [{{ node: shard-eu }}, {{ node: shard-us }}, {{ node: primary }}] }}
    users:
      vertical:
        key: user_id
        parts:
          - {{ node: primary, columns: [email, name] }}
          - {{ node: shard-eu, columns: [user_id, password_hash] }}
  reference_tables:
    categories: [shard-eu, shard-us]
  indexes:
    - {{ table: orders, columns: [total] }}
"
    );
    let t = load_str("test.yaml", &yaml).unwrap_or_else(|e| panic!("{}", render(&e)));
    let fragments = t.postgres.fragments.expect("fragments");
    assert_eq!(fragments.coordinator, "primary");
    let part = |node: &str, bound: Bound| HorizontalPart {
        node: node.into(),
        bound,
    };
    assert_eq!(
        fragments.tables["orders"],
        Fragmentation::Horizontal {
            key: "region".into(),
            parts: vec![
                part(
                    "shard-eu",
                    Bound::List {
                        values: vec!["EU".into()]
                    }
                ),
                part(
                    "shard-us",
                    Bound::List {
                        values: vec!["US".into()]
                    }
                ),
            ],
        }
    );
    assert_eq!(
        fragments.tables["reviews"],
        Fragmentation::Horizontal {
            key: "product_id".into(),
            parts: vec![
                part(
                    "shard-us",
                    Bound::Range {
                        from: Some("1000".into()),
                        to: None
                    }
                ),
                part(
                    "shard-eu",
                    Bound::Range {
                        from: None,
                        to: Some("1000".into())
                    }
                ),
            ],
        }
    );
    let Fragmentation::Horizontal { parts, .. } = &fragments.tables["events"] else {
        panic!("events is horizontal");
    };
    assert_eq!(
        parts.iter().map(|p| p.bound.clone()).collect::<Vec<_>>(),
        (0..3)
            .map(|remainder| Bound::Hash {
                modulus: 3,
                remainder
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        fragments.tables["users"],
        Fragmentation::Vertical {
            key: "user_id".into(),
            parts: vec![
                VerticalPart {
                    node: "primary".into(),
                    columns: vec!["email".into(), "name".into()]
                },
                VerticalPart {
                    node: "shard-eu".into(),
                    columns: vec!["password_hash".into()]
                },
            ],
        }
    );
    assert_eq!(
        fragments.reference_tables["categories"],
        ["shard-eu", "shard-us"]
    );
    assert_eq!(
        fragments.indexes,
        [DistributedIndex {
            table: "orders".into(),
            columns: vec!["total".into()],
            unique: false
        }]
    );
}

#[test]
fn fragment_problems_are_reported_together_at_their_values() {
    let yaml = format!(
        "{FRAGMENT_NODES}  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - {{ node: shard-eu, values: [EU, APAC] }}
          - {{ node: primary-replica, values: [EU] }}
    reviews:
      horizontal:
        key: rating
        by: range
        parts:
          - {{ node: shard-eu, from: 1, to: 3 }}
          - {{ node: shard-us, from: 2, to: 6 }}
    users:
      vertical:
        key: user_id
        parts:
          - {{ node: primary, columns: [email, name] }}
          - {{ node: shard-eu, columns: [name] }}
    ordres:
      horizontal: {{ key: x, by: hash, parts: [{{ node: shard-eu }}] }}
  reference_tables:
    orders: [shard-eu]
    categories: [primary, shard-uss]
  indexes:
    - {{ table: orders, columns: [total], unique: true }}
    - {{ table: users, columns: [email, password_hash] }}
"
    );
    let all = problems(&yaml);
    let found: Vec<(String, Option<&str>)> =
        all.iter().map(|p| (p.to_string(), p.snippet())).collect();
    let expected: Vec<(&str, Option<&str>)> = vec![
        ("value `EU` is in two parts", Some("EU")),
        ("`primary-replica` is a replica", Some("primary-replica")),
        ("value `APAC` can never occur", Some("APAC")),
        ("no part takes US of `orders.region`", None),
        (
            "unique keys of `reviews` do not include the fragment key `rating`",
            Some("rating"),
        ),
        ("two ranges overlap", None),
        ("the ranges leave out below 1, from 6 up", None),
        ("column `name` is in two parts", Some("name")),
        ("no part holds password_hash of `users`", None),
        ("unknown table `ordres`", Some("ordres")),
        ("`orders` is fragmented", Some("orders")),
        ("`primary` is the coordinator", Some("primary")),
        ("unknown node `shard-uss`", Some("shard-uss")),
        (
            "a unique index on `orders` must include its fragment key `region`",
            None,
        ),
        (
            "no column group of `users` holds all of these columns",
            None,
        ),
    ];
    for (message, snippet) in &expected {
        let hit = found.iter().find(|(m, _)| m == message);
        let Some((_, got)) = hit else {
            panic!("missing `{message}` in {found:#?}");
        };
        if let Some(snippet) = snippet {
            assert_eq!(got.as_deref(), Some(*snippet), "{message}");
        }
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    let near = all
        .iter()
        .find(|p| p.to_string() == "unknown table `ordres`")
        .unwrap();
    assert!(help(near).contains("did you mean `orders`?"));
}

#[test]
fn list_parts_without_a_check_need_a_default_and_fragments_need_one_coordinator() {
    let yaml = format!(
        "{FRAGMENT_NODES}  fragments:
    categories:
      horizontal:
        key: category_id
        by: list
        parts:
          - {{ node: shard-eu, values: [1, 2] }}
"
    );
    let problem = only(&yaml);
    assert_eq!(
        problem.to_string(),
        "the list parts of `categories` may not cover every `category_id`"
    );
    assert!(help(&problem).contains("default: true"));
    let with_default = yaml.replace(
        "values: [1, 2] }",
        "values: [1, 2] }\n          - { node: shard-us, default: true }",
    );
    assert!(
        load_str("test.yaml", &with_default).is_ok(),
        "{with_default}"
    );

    let two_coordinators = yaml.replace("nodes: [primary] }", "nodes: [primary, shard-us] }");
    let messages = messages(&problems(&two_coordinators));
    assert!(
        messages.contains(&"fragments need exactly one schema node".to_owned()),
        "{messages:?}"
    );
}

#[test]
fn reference_tables_need_logical_replication_on_the_coordinator() {
    let yaml = format!("{FRAGMENT_NODES}  reference_tables:\n    categories: [shard-eu]\n")
        .replace("  settings: { wal_level: logical }\n", "");
    let problem = only(&yaml);
    assert_eq!(
        problem.to_string(),
        "reference tables need `wal_level: logical` on the coordinator"
    );
    assert!(help(&problem).contains("it is `replica`"));
}

/// The brief's Mongo section, after a PostgreSQL node.
const MONGO: &str = r#"name: shop
images: { mongo: "mongo:7" }
postgres:
  nodes:
    primary: { port: 5433 }
mongo:
  replica_sets:
    rs0:
      database: ecommerce
      collections: manifests/mongo
      members: 3
      port: 27017
    analytics:
      profiles: [analytics]
      members:
        - { port: 27117, priority: 2 }
        - { port: 27118 }
        - { port: 27119, arbiter: true }
        - { port: 27120, priority: 0, hidden: true, votes: 0 }
"#;

/// `MINIMAL` with a Mongo section holding `sets` (indented as `replica_sets` entries).
fn with_mongo(sets: &str) -> String {
    format!("{MINIMAL}mongo:\n  replica_sets:\n{sets}")
}

fn member(id: u32, set: &str, port: u16, priority_tenths: u32) -> MongoMember {
    MongoMember {
        id,
        name: format!("{set}-{id}"),
        port,
        priority_tenths,
        votes: 1,
        hidden: false,
        arbiter: false,
    }
}

#[test]
fn mongo_replica_sets_load_from_a_count_and_from_a_list() {
    let t = load_str("test.yaml", MONGO).unwrap();
    let rs0 = ReplicaSet {
        name: "rs0".into(),
        members: vec![
            member(0, "rs0", 27017, 10),
            member(1, "rs0", 27018, 10),
            member(2, "rs0", 27019, 10),
        ],
        database: "ecommerce".into(),
        collections: Some(CollectionsDir {
            dir: "manifests/mongo".into(),
            path: Path::new(".").join("manifests/mongo"),
        }),
        profiles: Vec::new(),
    };
    let analytics = ReplicaSet {
        name: "analytics".into(),
        members: vec![
            member(0, "analytics", 27117, 20),
            member(1, "analytics", 27118, 10),
            MongoMember {
                priority_tenths: 0,
                arbiter: true,
                ..member(2, "analytics", 27119, 0)
            },
            MongoMember {
                votes: 0,
                hidden: true,
                ..member(3, "analytics", 27120, 0)
            },
        ],
        database: "app".into(),
        collections: None,
        profiles: vec!["analytics".into()],
    };
    assert_eq!(
        t.mongo,
        Mongo {
            replica_sets: BTreeMap::from([("rs0".into(), rs0), ("analytics".into(), analytics)]),
        }
    );
    assert_eq!(t.images.mongo, "mongo:7");
    // Three voters in each set: no warning.
    assert_eq!(t.warnings, Vec::<String>::new());
    // Without a `mongo` section there are no replica sets.
    assert_eq!(load_str("t", MINIMAL).unwrap().mongo, Mongo::default());
    // A set with profiles is there only while one of them is active.
    let names = |t: Topology| t.mongo.replica_sets.into_keys().collect::<Vec<_>>();
    assert_eq!(names(t.clone().with_profiles(&[])), ["rs0"]);
    assert_eq!(
        names(t.with_profiles(&["analytics".into()])),
        ["analytics", "rs0"]
    );
}

#[test]
fn mongo_priorities_are_kept_in_tenths() {
    let yaml = with_mongo(
        "    rs0:\n      members:\n        - { port: 27017, priority: 0.5 }\n        \
         - { port: 27018, priority: 1000 }\n        - { port: 27019, priority: 2.5 }\n        \
         - { port: 27020, priority: 0.3, votes: 1 }\n        \
         - { port: 27021, priority: 0.0, votes: 0, hidden: false }\n",
    );
    let t = load_str("test.yaml", &yaml).unwrap();
    let set = &t.mongo.replica_sets["rs0"];
    let tenths: Vec<u32> = set.members.iter().map(|m| m.priority_tenths).collect();
    assert_eq!(tenths, [5, 10_000, 25, 3, 0]);
    assert_eq!(set.members[4].votes, 0);
}

#[test]
fn an_even_number_of_voting_members_is_a_warning_with_its_place() {
    let warning = |members: &str| {
        let yaml = with_mongo(&format!(
            "    rs0:\n      port: 27017\n      members: {members}\n"
        ));
        let t = load_str("topology.yaml", &yaml).unwrap();
        let line = yaml.lines().position(|l| l.contains("members:")).unwrap() + 1;
        (t.warnings, line)
    };
    for count in [2, 4] {
        let (warnings, line) = warning(&count.to_string());
        assert_eq!(
            warnings,
            [format!(
                "topology.yaml:{line}:16: replica set rs0 has {count} voting members: an even \
                 number can leave no majority after a split; add or remove one, or make one \
                 non-voting"
            )]
        );
    }
    for count in ["1", "3", "7"] {
        assert_eq!(warning(count).0, Vec::<String>::new(), "for {count}");
    }
    // Non-voting members and arbiters are counted for what they are.
    let listed = |entries: &str| {
        let yaml = with_mongo(&format!("    rs0:\n      members: [{entries}]\n"));
        load_str("test.yaml", &yaml).unwrap().warnings
    };
    let four_with_an_arbiter =
        "{ port: 27017 }, { port: 27018 }, { port: 27019 }, { port: 27020, arbiter: true }";
    assert_eq!(listed(four_with_an_arbiter).len(), 1);
    let four_one_silent = "{ port: 27017 }, { port: 27018 }, { port: 27019 }, \
        { port: 27020, votes: 0, priority: 0 }";
    assert!(listed(four_one_silent).is_empty());
    let two = listed("{ port: 27017 }, { port: 27018, priority: 0 }");
    assert!(
        two[0].starts_with("test.yaml:8:16: replica set rs0 has 2 voting members"),
        "{two:?}"
    );
}

#[test]
fn mongo_member_count_and_port_rules() {
    let counted = |members: &str, port: &str| {
        with_mongo(&format!(
            "    rs0:\n      members: {members}\n      port: {port}\n"
        ))
    };
    for (members, message) in [
        ("0", "replica set `rs0` cannot have 0 members"),
        ("51", "replica set `rs0` cannot have 51 members"),
        ("-3", "replica set `rs0` cannot have -3 members"),
        (
            "three",
            "`members` of replica set `rs0` must be a count or a list, found the string `three`",
        ),
        (
            "2.5",
            "`members` of replica set `rs0` must be a count or a list, found the number `2.5`",
        ),
        ("[]", "replica set `rs0` has no members"),
    ] {
        let yaml = counted(members, "27017");
        let yaml = if members == "[]" {
            yaml.replace("\n      port: 27017", "")
        } else {
            yaml
        };
        let p = only(&yaml);
        assert_eq!(p.to_string(), message);
        let snippet = if members == "[]" { "[" } else { members };
        assert_eq!(p.snippet(), Some(snippet), "for {members}");
    }
    // Counted members all vote: 50 is a valid size but too many voters.
    assert!(load_str("t", &counted("7", "27017")).is_ok());
    assert_eq!(
        only(&counted("50", "27017")).to_string(),
        "replica set `rs0` has 50 voting members, MongoDB allows at most 7"
    );

    let p = only(&with_mongo("    rs0:\n      members: 3\n"));
    assert_eq!(p.to_string(), "replica set `rs0` has no `port`");
    assert_eq!(p.snippet(), Some("3"));
    assert!(help(&p).contains("27017, 27018"));

    let p = only(&counted("3", "65534"));
    assert_eq!(
        p.to_string(),
        "host ports 65534..=65536 of replica set `rs0` run past 65535"
    );
    assert_eq!(p.snippet(), Some("65534"));
    assert_eq!(labels(&p), ["member 2 would get port 65536"]);
    assert!(help(&p).contains("at most 65533"));
    assert!(load_str("t", &counted("3", "65533")).is_ok());

    for (port, message) in [
        ("80", "port 80 of replica set `rs0` is out of range"),
        (
            "'27017'",
            "port of replica set `rs0` must be an integer, found the string `27017`",
        ),
    ] {
        let p = only(&counted("3", port));
        assert_eq!(p.to_string(), message);
        assert_eq!(p.snippet(), Some(port));
    }

    let p = only(&with_mongo(
        "    rs0:\n      port: 27017\n      members: [{ port: 27018 }]\n",
    ));
    assert_eq!(
        p.to_string(),
        "`port` of replica set `rs0` is not allowed with a list of members"
    );
    assert_eq!(p.snippet(), Some("27017"));

    let p = only(&with_mongo(
        "    rs0:\n      members:\n        - { port: 27017 }\n        - { priority: 2 }\n",
    ));
    assert_eq!(p.to_string(), "Mongo member `rs0-1` has no `port`");
    assert_eq!(p.snippet(), Some("{"));
    assert_eq!(labels(&p), ["add `port: <host port>` to this Mongo member"]);

    let many: Vec<String> = (0..51)
        .map(|i| format!("{{ port: {} }}", 30000 + i))
        .collect();
    let yaml = with_mongo(&format!("    rs0:\n      members: [{}]\n", many.join(", ")));
    let all = messages(&problems(&yaml));
    assert!(
        all.contains(&"replica set `rs0` has 51 members, MongoDB allows at most 50".to_owned()),
        "{all:?}"
    );

    let p = only(&counted("8", "27017"));
    assert_eq!(
        p.to_string(),
        "replica set `rs0` has 8 voting members, MongoDB allows at most 7"
    );
    assert_eq!(p.snippet(), Some("8"));
}

#[test]
fn mongo_election_rules() {
    let member = |entry: &str| {
        with_mongo(&format!(
            "    rs0:\n      members:\n        - {{ port: 27017 }}\n        - {{ port: 27018 }}\n        \
             - {entry}\n"
        ))
    };
    for (entry, message, snippet) in [
        (
            "{ port: 27019, priority: 1001 }",
            "priority 1001 of Mongo member `rs0-2` is out of range",
            "1001",
        ),
        (
            "{ port: 27019, priority: -1 }",
            "priority -1 of Mongo member `rs0-2` is out of range",
            "-1",
        ),
        (
            "{ port: 27019, priority: 0.55 }",
            "priority 0.55 of Mongo member `rs0-2` is finer than tenths",
            "0.55",
        ),
        (
            "{ port: 27019, priority: high }",
            "priority of Mongo member `rs0-2` must be a number, found the string `high`",
            "high",
        ),
        (
            "{ port: 27019, votes: 2 }",
            "votes of Mongo member `rs0-2` must be 0 or 1, found the integer `2`",
            "2",
        ),
        (
            "{ port: 27019, votes: 0 }",
            "non-voting member `rs0-2` must have priority 0",
            "0",
        ),
        (
            "{ port: 27019, votes: 0, priority: 3 }",
            "non-voting member `rs0-2` must have priority 0",
            "0",
        ),
        (
            "{ port: 27019, hidden: true }",
            "hidden member `rs0-2` must have priority 0",
            "true",
        ),
        (
            "{ port: 27019, arbiter: true, priority: 1 }",
            "arbiter `rs0-2` cannot have a priority",
            "1",
        ),
        (
            "{ port: 27019, arbiter: true, hidden: true }",
            "arbiter `rs0-2` cannot be hidden",
            "true",
        ),
        (
            "{ port: 27019, arbiter: true, votes: 0 }",
            "arbiter `rs0-2` must vote",
            "0",
        ),
    ] {
        let p = only(&member(entry));
        assert_eq!(p.to_string(), message, "for {entry}");
        assert_eq!(p.snippet(), Some(snippet), "for {entry}");
    }
    let p = only(&member("{ port: 27019, votes: 0, priority: 3 }"));
    assert_eq!(labels(&p), ["votes: 0", "priority 3"]);
    assert!(help(&p).contains("priority: 0"));
    let p = only(&member("{ port: 27019, votes: 0 }"));
    assert_eq!(labels(&p), ["votes: 0", "priority 1 by default"]);

    // Explicit zeros are fine for arbiters, hidden and non-voting members.
    for entry in [
        "{ port: 27019, arbiter: true, priority: 0, hidden: false, votes: 1 }",
        "{ port: 27019, hidden: true, priority: 0 }",
        "{ port: 27019, votes: 0, priority: 0 }",
    ] {
        assert!(load_str("t", &member(entry)).is_ok(), "{entry}");
    }

    let yaml = with_mongo(
        "    rs0:\n      members: [{ port: 27017, priority: 0 }, { port: 27018, arbiter: true }, \
         { port: 27019, priority: 0 }]\n",
    );
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "replica set `rs0` has no member that can become primary"
    );
    assert_eq!(p.snippet(), Some("["));
}

#[test]
fn mongo_names_database_and_collections_folder() {
    let set = |name: &str, extra: &str| {
        with_mongo(&format!(
            "    {name}:\n      members: 1\n      port: 27017\n{extra}"
        ))
    };
    let p = only(&set("Rs0", ""));
    assert_eq!(p.to_string(), "invalid replica set name `Rs0`");
    assert_eq!(p.snippet(), Some("Rs0"));
    assert_eq!(labels(&p), ["it starts with `R` (use lowercase)"]);
    assert_eq!(labels(&only(&set("rs.0", ""))), ["`.` is not allowed"]);

    for (database, reason) in [
        ("admin", "`admin` is one of MongoDB's own databases"),
        ("my.db", "`.` is not allowed"),
        ("'a b'", "` ` is not allowed"),
        ("''", "it is empty"),
    ] {
        let p = only(&set("rs0", &format!("      database: {database}\n")));
        assert!(
            p.to_string().starts_with("invalid Mongo database name"),
            "{p}"
        );
        assert_eq!(labels(&p), [reason], "for {database}");
        assert_eq!(p.snippet(), Some(database));
    }

    let p = only(&set("rs0", "      collections: manifests/nowhere\n"));
    assert_eq!(
        p.to_string(),
        "collections folder `manifests/nowhere` not found"
    );
    assert_eq!(p.snippet(), Some("manifests/nowhere"));
    assert_eq!(labels(&p), ["no folder at ./manifests/nowhere"]);
    let p = only(&set("rs0", "      collections: manifests/ecommerce.sql\n"));
    assert_eq!(labels(&p), ["./manifests/ecommerce.sql is not a folder"]);
    let p = only(&set("rs0", "      collections: ''\n"));
    assert_eq!(p.to_string(), "`collections` is empty");

    // Resolved against the topology file's folder.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topology.yaml");
    let t = load_str(
        &path.display().to_string(),
        &set("rs0", "      collections: manifests/mongo/\n"),
    )
    .unwrap();
    let dir = t.mongo.replica_sets["rs0"].collections.clone().unwrap();
    assert_eq!(dir.dir, "manifests/mongo/");
    assert_eq!(dir.path, path.parent().unwrap().join("manifests/mongo/"));
    assert!(dir.path.is_dir());
}

#[test]
fn mongo_member_names_must_not_clash_with_postgres_servers() {
    let yaml = format!(
        "{MINIMAL}    rs0-1: {{ port: 5440 }}\nmongo:\n  replica_sets:\n    rs0: {{ members: 3, port: 27017 }}\n"
    );
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "`rs0-1` is both a PostgreSQL node and a Mongo member"
    );
    assert_eq!(p.snippet(), Some("rs0"));
    assert_eq!(labels(&p), ["this member is `rs0-1`", "PostgreSQL node"]);
    let spans: Vec<usize> = p.labels().unwrap().map(|l| l.inner().offset()).collect();
    assert_eq!(
        spans,
        [yaml.rfind("rs0:").unwrap(), yaml.find("rs0-1").unwrap()]
    );

    let yaml = format!(
        "{MINIMAL}  replicas:\n    cache-0: {{ of: primary, port: 5434 }}\nmongo:\n  replica_sets:\n    \
         cache:\n      members:\n        - {{ port: 27017 }}\n"
    );
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "`cache-0` is both a PostgreSQL replica and a Mongo member"
    );
    assert_eq!(p.snippet(), Some("{"));
}

#[test]
fn duplicate_host_ports_cover_mongo_members() {
    // A listed member on a node's port.
    let yaml = with_mongo(
        "    rs0:\n      members:\n        - { port: 27017 }\n        - { port: 5433 }\n",
    );
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "host port 5433 is used by both `primary` and `rs0-1`"
    );
    assert_eq!(labels(&p), ["used again here", "first used by `primary`"]);
    let spans: Vec<usize> = p.labels().unwrap().map(|l| l.inner().offset()).collect();
    assert_eq!(
        spans,
        [yaml.rfind("5433").unwrap(), yaml.find("5433").unwrap()]
    );
    assert!(help(&p).contains("Mongo member"), "{}", help(&p));

    // A counted member: the set's `port` is where its port comes from.
    let yaml = with_mongo("    rs0: { members: 3, port: 5431 }\n");
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "host port 5433 is used by both `primary` and `rs0-2`"
    );
    assert_eq!(p.snippet(), Some("5431"));
    assert_eq!(
        labels(&p),
        [
            "used again here: `rs0-2` gets 5431 + 2",
            "first used by `primary`"
        ]
    );

    // Two sets whose counted ranges overlap.
    let yaml =
        with_mongo("    rs0: { members: 3, port: 27017 }\n    rs1: { members: 3, port: 27019 }\n");
    let p = only(&yaml);
    assert_eq!(
        p.to_string(),
        "host port 27019 is used by both `rs0-2` and `rs1-0`"
    );
    assert_eq!(p.snippet(), Some("27019"));
    assert_eq!(
        labels(&p),
        ["used again here", "first used by `rs0-2` (27017 + 2)"]
    );

    // A Mongo member before the PostgreSQL node in the file is the first use.
    let yaml = "name: shop\nmongo:\n  replica_sets:\n    rs0: { members: 1, port: 5433 }\n\
                postgres:\n  nodes:\n    primary: { port: 5433 }\n";
    let p = only(yaml);
    assert_eq!(
        p.to_string(),
        "host port 5433 is used by both `rs0-0` and `primary`"
    );
}

#[test]
fn mongo_unknown_keys_and_missing_parts() {
    let p = only(&with_mongo(
        "    rs0:\n      members:\n        - { port: 27017, priorty: 2 }\n",
    ));
    assert_eq!(p.to_string(), "unknown key `priorty`");
    assert_eq!(p.snippet(), Some("priorty"));
    assert!(
        help(&p).starts_with("did you mean `priority`?"),
        "{}",
        help(&p)
    );

    let p = only(&with_mongo("    rs0: { member: 3, port: 27017 }\n"));
    assert_eq!(p.to_string(), "unknown key `member`");
    assert!(
        help(&p).starts_with("did you mean `members`?"),
        "{}",
        help(&p)
    );

    let p = only(&format!("{MINIMAL}mongo:\n  replica_set: {{}}\n"));
    assert!(
        help(&p).starts_with("did you mean `replica_sets`?"),
        "{}",
        help(&p)
    );

    let p = only(&format!("{MINIMAL}mongo: {{}}\n"));
    assert_eq!(p.to_string(), "`mongo` has no `replica_sets`");
    let p = only(&format!("{MINIMAL}mongo:\n  replica_sets: {{}}\n"));
    assert_eq!(p.to_string(), "no Mongo replica sets are defined");
    assert_eq!(p.snippet(), Some("{"));
    let p = only(&with_mongo("    rs0:\n"));
    assert_eq!(p.to_string(), "replica set `rs0` has no `members`");
    assert_eq!(p.snippet(), Some("rs0"));

    let p = only(&with_mongo("    rs0: { members: { port: 27017 } }\n"));
    assert!(p.to_string().starts_with("unexpected value"), "{p}");
    let p = only(&with_mongo(
        "    rs0: { members: [{ port: 27017, hidden: maybe }] }\n",
    ));
    assert!(p.to_string().starts_with("unexpected value"), "{p}");
}

#[test]
fn mongo_problems_are_reported_together_in_file_order() {
    let yaml = "\
name: shop
postgres:
  nodes:
    primary: { port: 5433 }
    rs0-0: { port: 5434 }
mongo:
  replica_sets:
    rs0:
      database: local
      collections: manifests/none
      members: 3
    analytics:
      port: 27117
      members:
        - { port: 5434, priority: 0.25 }
        - { port: 27118, hidden: true }
        - { port: 27119, arbiter: true, priority: 2 }
";
    assert_eq!(
        messages(&problems(yaml)),
        [
            "`rs0-0` is both a PostgreSQL node and a Mongo member",
            "invalid Mongo database name `local`",
            "collections folder `manifests/none` not found",
            "replica set `rs0` has no `port`",
            "`port` of replica set `analytics` is not allowed with a list of members",
            "host port 5434 is used by both `rs0-0` and `analytics-0`",
            "priority 0.25 of Mongo member `analytics-0` is finer than tenths",
            "hidden member `analytics-1` must have priority 0",
            "arbiter `analytics-2` cannot have a priority",
        ]
    );
}

#[test]
fn report_for_mongo_problems_snapshot() {
    let yaml = "\
name: shop
postgres:
  nodes:
    primary: { port: 5433 }
mongo:
  replica_sets:
    rs0:
      members: 3
      port: 5431
    analytics:
      members:
        - { port: 27117 }
        - { port: 27118, votes: 0 }
";
    let err = load_str("topology.yaml", yaml).unwrap_err();
    insta::assert_snapshot!(render(&err));
}

/// Damaged versions of a Mongo section: errors, never panics.
#[test]
fn no_panic_on_damaged_mongo_sections() {
    const INSERTS: [&str; 6] = [":", "[", "-1", "{", "- ", "\n "];
    let chars: Vec<char> = MONGO.chars().collect();
    for i in 0..chars.len() {
        let mut damaged: String = chars[..i].iter().collect();
        damaged.push_str(INSERTS[i % INSERTS.len()]);
        damaged.extend(&chars[i + 1..]);
        if let Err(err) = load_str("damaged.yaml", &damaged) {
            assert!(render(&err).contains("damaged.yaml"));
        }
    }
}

#[test]
fn every_setting_keeps_its_place_in_the_file() {
    let text = "name: shop\npostgres:\n  settings: { work_mem: 4MB, TimeZone: UTC }\n  nodes:\n    a: { port: 5433, settings: { work_mem: 8MB } }\n    b: { port: 5434 }\n";
    let t = load_str("t.yaml", text).unwrap();
    let at = |node: &str, name: &str| {
        let span = t.setting_places.place(node, name).expect("placed");
        &text[span.offset()..span.offset() + span.len()]
    };
    assert_eq!(at("a", "work_mem"), "8MB");
    assert_eq!(at("b", "work_mem"), "4MB");
    assert_eq!(at("b", "timezone"), "UTC");
    assert!(t.setting_places.place("b", "shared_buffers").is_none());
}

#[test]
fn a_replica_below_its_nodes_standby_minimum_is_refused_at_the_value() {
    let yaml = |node: &str, replica: &str| {
        format!(
            "name: shop\npostgres:\n  nodes:\n    main: {{ port: 5433{node} }}\n  replicas:\n    copy: {{ of: main, port: 5434{replica} }}\n"
        )
    };
    // The replica's own value, below the node's.
    let p = only(&yaml(
        ", settings: { max_connections: 200 }",
        ", settings: { max_connections: 150 }",
    ));
    assert!(
        p.to_string().contains(
            "replica `copy` would run with max_connections = 150, below its node `main`'s 200"
        ),
        "{p}"
    );
    assert_eq!(p.snippet(), Some("150"));
    // The node raises it and the replica keeps PostgreSQL's default: shown at the node's.
    let p = only(&yaml(", settings: { max_connections: 200 }", ""));
    assert!(p.to_string().contains("max_connections = 100"), "{p}");
    assert_eq!(p.snippet(), Some("200"));
    // Another standby minimum.
    let p = only(&yaml(
        ", settings: { max_prepared_transactions: 16 }",
        ", settings: { max_prepared_transactions: 8 }",
    ));
    assert_eq!(p.snippet(), Some("8"));
    // Equal or above, or shared by both: accepted.
    for (node, replica) in [
        (
            ", settings: { max_connections: 200 }",
            ", settings: { max_connections: 200 }",
        ),
        ("", ", settings: { max_connections: 300 }"),
    ] {
        assert!(
            load_str("t.yaml", &yaml(node, replica)).is_ok(),
            "{node} {replica}"
        );
    }
    let shared = "name: shop\npostgres:\n  settings: { max_connections: 200 }\n  nodes:\n    main: { port: 5433 }\n  replicas:\n    copy: { of: main, port: 5434 }\n";
    assert!(load_str("t.yaml", shared).is_ok());
}
