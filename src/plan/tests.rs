//! Diff, ordering and rendering on hand-made states: no Docker needed.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::desired::desired_state;
use crate::model::State;
use crate::topology::{AccessRule, Images, Node, Postgres, Replica, Topology};

fn topology() -> Topology {
    let settings = BTreeMap::from([
        ("max_prepared_transactions".to_string(), "16".to_string()),
        ("work_mem".to_string(), "8MB".to_string()),
    ]);
    Topology {
        name: "shop".into(),
        images: Images {
            postgres: "postgres:17".into(),
            mongo: "mongo:7".into(),
        },
        postgres: Postgres {
            settings,
            access: vec![AccessRule {
                database: "all".into(),
                user: "all".into(),
                address: "10.0.0.0/8".into(),
            }],
            replication_user: "repuser".into(),
            nodes: BTreeMap::new(),
            replicas: BTreeMap::from([(
                "primary-replica".to_string(),
                Replica {
                    name: "primary-replica".into(),
                    of: "primary".into(),
                    port: 5434,
                    settings: BTreeMap::new(),
                    synchronous: false,
                },
            )]),
            schema: None,
            fragments: None,
        },
        mongo: Default::default(),
        warnings: Vec::new(),
        setting_places: Default::default(),
    }
    .with_node("primary", 5433)
}

impl Topology {
    /// This topology with one more read-write node.
    fn with_node(mut self, name: &str, port: u16) -> Topology {
        let node = Node {
            name: name.into(),
            port,
            settings: BTreeMap::new(),
        };
        self.postgres.nodes.insert(name.into(), node);
        self
    }
}

fn empty(env: &str) -> State {
    State {
        env: env.into(),
        ..State::default()
    }
}

/// What a converged environment looks like to the observer.
fn converged(desired: &State) -> State {
    super::fixtures::converged_state(desired)
}

fn wave_of(plan: &Plan, address: &str) -> usize {
    let index = plan
        .changes
        .iter()
        .position(|c| c.address == address)
        .unwrap();
    plan.waves.iter().position(|w| w.contains(&index)).unwrap()
}

fn set_setting(topology: &mut Topology, name: &str, value: &str) {
    topology.postgres.settings.insert(name.into(), value.into());
}

#[test]
fn empty_environment_plans_everything_in_dependency_waves() {
    let desired = desired_state(&topology()).unwrap();
    let plan = Plan::new("shop".into(), diff(&desired, &empty("shop")));
    insta::assert_snapshot!("fresh_plan", render_text(&plan));
    assert!(wave_of(&plan, "node.primary") > wave_of(&plan, "network.shop-net"));
    assert!(wave_of(&plan, "role.primary.repuser") > wave_of(&plan, "node.primary"));
    assert!(wave_of(&plan, "slot.primary.dbtopo_primary_replica") > wave_of(&plan, "node.primary"));
    assert!(
        wave_of(&plan, "node.primary-replica")
            > wave_of(&plan, "slot.primary.dbtopo_primary_replica")
    );
    // A replica's volume only after its primary's: an apply interrupted in between never
    // leaves what looks like a primary that lost its data.
    assert!(wave_of(&plan, "volume.primary-replica") > wave_of(&plan, "volume.primary"));
    assert_eq!(
        Counts::of(&plan),
        Counts {
            add: 8,
            change: 0,
            destroy: 0
        }
    );
}

#[test]
fn new_nodes_initialize_at_most_one_per_cpu_with_the_replicated_node_first() {
    let topology = topology()
        .with_node("shard-eu", 5435)
        .with_node("shard-us", 5436);
    let desired = desired_state(&topology).unwrap();
    let observed = State {
        cpus: Some(2),
        ..empty("shop")
    };
    let plan = Plan::new("shop".into(), diff(&desired, &observed));
    assert_eq!(
        wave_of(&plan, "node.primary"),
        wave_of(&plan, "node.shard-eu")
    );
    assert!(wave_of(&plan, "node.shard-us") > wave_of(&plan, "node.primary"));
    let shard_us = plan
        .changes
        .iter()
        .find(|c| c.address == "node.shard-us")
        .unwrap();
    assert!(shard_us.after.contains(&Address::node("primary")));

    // With its volume already there, a node does not run initdb and is not held back.
    let mut observed = observed;
    observed.volumes.insert("shard-us".into());
    let plan = Plan::new("shop".into(), diff(&desired, &observed));
    assert_eq!(
        wave_of(&plan, "node.shard-us"),
        wave_of(&plan, "node.primary")
    );
}

fn early_start(plan: &Plan, address: &str) -> Option<Vec<Address>> {
    let change = plan.changes.iter().find(|c| c.address == address).unwrap();
    match &change.operation {
        Operation::RunServer {
            start_early_after, ..
        } => start_early_after.clone(),
        other => panic!("{address} is not a server creation: {other:?}"),
    }
}

#[test]
fn new_nodes_that_wait_for_others_start_their_container_early_on_its_own_prerequisites() {
    let topology = topology().with_node("shard-eu", 5435);
    let desired = desired_state(&topology).unwrap();
    let observed = State {
        cpus: Some(1),
        ..empty("shop")
    };
    let plan = Plan::new("shop".into(), diff(&desired, &observed));
    // The replica waits for its upstream, shard-eu for the one CPU: both start early, on what
    // their container alone needs; the first node starts in its own turn.
    let container_needs = |node: &str| {
        Some(vec![
            Address::Network("shop-net".into()),
            Address::Volume(node.into()),
            Address::Image("postgres:17".into()),
        ])
    };
    assert_eq!(early_start(&plan, "node.primary"), None);
    assert_eq!(
        early_start(&plan, "node.primary-replica"),
        container_needs("primary-replica")
    );
    assert_eq!(
        early_start(&plan, "node.shard-eu"),
        container_needs("shard-eu")
    );
    let early = plan.early_prerequisites();
    let replica = plan
        .changes
        .iter()
        .position(|c| c.address == "node.primary-replica")
        .unwrap();
    let early_names: BTreeSet<String> = early[replica]
        .as_ref()
        .unwrap()
        .iter()
        .map(|&i| plan.changes[i].address.to_string())
        .collect();
    assert_eq!(
        early_names,
        BTreeSet::from([
            "image.postgres:17".to_string(),
            "network.shop-net".to_string(),
            "volume.primary-replica".to_string()
        ])
    );

    // A node whose data volume exists starts its server at once: it is never started early.
    let mut observed = observed;
    observed.volumes.insert("primary-replica".into());
    let plan = Plan::new("shop".into(), diff(&desired, &observed));
    assert_eq!(early_start(&plan, "node.primary-replica"), None);
}

#[test]
fn converged_environment_has_no_changes() {
    let desired = desired_state(&topology()).unwrap();
    let plan = Plan::new("shop".into(), diff(&desired, &converged(&desired)));
    assert!(plan.is_empty(), "{}", render_text(&plan));
    assert_eq!(
        render_text(&plan),
        "No changes. Environment \"shop\" matches the topology.\n"
    );
}

#[test]
fn reload_only_setting_is_an_update_and_postmaster_setting_a_restart() {
    let desired = desired_state(&topology()).unwrap();
    let observed = converged(&desired);

    let mut changed = topology();
    set_setting(&mut changed, "work_mem", "16MB");
    let plan = Plan::new(
        "shop".into(),
        diff(&desired_state(&changed).unwrap(), &observed),
    );
    assert_eq!(plan.changes.len(), 2);
    assert!(plan.changes.iter().all(|c| c.action == Action::Update));
    assert!(matches!(
        plan.changes[0].operation,
        Operation::Reconfigure { restart: false, .. }
    ));

    let mut changed = topology();
    set_setting(&mut changed, "max_prepared_transactions", "32");
    let plan = Plan::new(
        "shop".into(),
        diff(&desired_state(&changed).unwrap(), &observed),
    );
    assert!(plan.changes.iter().all(|c| c.action == Action::Restart));
    // Growing a setting a standby needs at least as high: the standby goes first.
    assert!(wave_of(&plan, "node.primary-replica") < wave_of(&plan, "node.primary"));
    insta::assert_snapshot!("restart_plan", render_text(&plan));
}

#[test]
fn shrinking_a_standby_minimum_restarts_the_upstream_first() {
    let desired = desired_state(&topology()).unwrap();
    let observed = converged(&desired);
    let mut changed = topology();
    set_setting(&mut changed, "max_prepared_transactions", "8");
    let plan = Plan::new(
        "shop".into(),
        diff(&desired_state(&changed).unwrap(), &observed),
    );
    assert!(wave_of(&plan, "node.primary") < wave_of(&plan, "node.primary-replica"));
    // The replica replays the primary's lower value before it restarts; the primary waits for
    // nothing.
    assert_eq!(
        catch_up_with(&plan, "node.primary-replica"),
        Some(UpstreamServer {
            node: "primary".into(),
            host_port: 5433
        })
    );
    assert_eq!(catch_up_with(&plan, "node.primary"), None);

    // Raising: the replica goes first and waits for nothing.
    let mut changed = topology();
    set_setting(&mut changed, "max_prepared_transactions", "32");
    let plan = Plan::new(
        "shop".into(),
        diff(&desired_state(&changed).unwrap(), &observed),
    );
    assert_eq!(catch_up_with(&plan, "node.primary-replica"), None);
}

fn catch_up_with(plan: &Plan, address: &str) -> Option<UpstreamServer> {
    let change = plan.changes.iter().find(|c| c.address == address)?;
    match &change.operation {
        Operation::Reconfigure { catch_up_with, .. } => catch_up_with.clone(),
        other => panic!("{address}: {other:?}"),
    }
}

#[test]
fn new_image_replaces_the_container_and_keeps_the_volume() {
    let desired = desired_state(&topology()).unwrap();
    let observed = converged(&desired);
    let mut changed = topology();
    changed.images.postgres = "postgres:17.6".into();
    let mut changed = desired_state(&changed).unwrap();
    changed.images.clear();
    let plan = Plan::new("shop".into(), diff(&changed, &observed));
    assert_eq!(plan.changes.len(), 2);
    for change in &plan.changes {
        assert_eq!(change.action, Action::Replace);
        assert_eq!(change.details[0].field, "image");
    }
    assert!(!plan.changes.iter().any(|c| c.address.kind() == "volume"));
}

#[test]
fn drift_is_named_stopped_container_dropped_slot_and_altered_setting() {
    let desired = desired_state(&topology()).unwrap();
    let mut observed = converged(&desired);
    let primary = observed.servers.get_mut("primary").unwrap();
    primary.slots = BTreeSet::new();
    let live = primary.live.as_mut().unwrap();
    live.altered.insert("work_mem".into());
    live.settings.get_mut("work_mem").unwrap().value = "64MB".into();
    let replica = observed.servers.get_mut("primary-replica").unwrap();
    replica.container.as_mut().unwrap().running = false;
    replica.live = None;

    let plan = Plan::new("shop".into(), diff(&desired, &observed));
    let actions: BTreeMap<String, Action> = plan
        .changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect();
    assert_eq!(
        actions,
        BTreeMap::from([
            ("node.primary".to_string(), Action::Update),
            ("node.primary-replica".to_string(), Action::Start),
            (
                "slot.primary.dbtopo_primary_replica".to_string(),
                Action::Create
            ),
        ])
    );
    let primary = plan
        .changes
        .iter()
        .find(|c| c.address == "node.primary")
        .unwrap();
    assert!(matches!(
        primary.operation,
        Operation::Reconfigure {
            reset_altered: true,
            restart: false,
            ..
        }
    ));
    insta::assert_snapshot!("drift_plan", render_text(&plan));
}

#[test]
fn a_replica_that_answers_but_does_not_stream_is_a_warning_not_a_change() {
    let desired = desired_state(&topology()).unwrap();
    let mut observed = converged(&desired);
    assert!(warnings(&desired, &observed).is_empty());
    let replica = observed.servers.get_mut("primary-replica").unwrap();
    replica.live.as_mut().unwrap().streaming = false;
    assert!(diff(&desired, &observed).is_empty());
    let found = warnings(&desired, &observed);
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("primary-replica answers but does not stream from primary"));
}

#[test]
fn removed_replica_deletes_container_volume_and_slot_in_order() {
    let desired = desired_state(&topology()).unwrap();
    let observed = converged(&desired);
    let mut smaller = topology();
    smaller.postgres.replicas.clear();
    let plan = Plan::new(
        "shop".into(),
        diff(&desired_state(&smaller).unwrap(), &observed),
    );
    let addresses: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
    for address in [
        "node.primary-replica",
        "volume.primary-replica",
        "slot.primary.dbtopo_primary_replica",
    ] {
        assert!(addresses.iter().any(|a| a == address), "{address}");
    }
    assert!(
        wave_of(&plan, "slot.primary.dbtopo_primary_replica")
            > wave_of(&plan, "node.primary-replica")
    );
    assert!(wave_of(&plan, "volume.primary-replica") > wave_of(&plan, "node.primary-replica"));
    let counts = Counts::of(&plan);
    assert_eq!(counts.destroy, 3);
}

#[test]
fn json_plan_carries_no_secret_and_counts() {
    let desired = desired_state(&topology()).unwrap();
    let plan = Plan::new("shop".into(), diff(&desired, &empty("shop")));
    let json: serde_json::Value = serde_json::from_str(&render_json(&plan)).unwrap();
    assert_eq!(json["summary"]["add"], 8);
    assert_eq!(
        json["changes"].as_array().unwrap().len(),
        plan.changes.len()
    );
    // Secrets are added by the executor; the plan never carries a file of the secrets folder.
    assert!(!render_json(&plan).contains("/etc/dbtopo/secrets/"));
    // The stable format: a version, typed addresses and prerequisites, waves by address.
    assert_eq!(json["format_version"], "2");
    assert_eq!(json["environment"], "shop");
    let replica = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "node.primary-replica")
        .unwrap();
    assert_eq!(replica["action"], "create");
    assert!(
        replica["after"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("slot.primary.dbtopo_primary_replica"))
    );
    assert_eq!(json["waves"].as_array().unwrap().len(), plan.waves.len());
    assert!(!render_json(&plan).contains("\"operation\""));
}

fn schema_target() -> crate::topology::SchemaTarget {
    crate::topology::SchemaTarget {
        file: "schema.sql".into(),
        path: "schema.sql".into(),
        database: "shop".into(),
        nodes: vec!["primary".into()],
        manifest: None,
    }
}

#[test]
fn schema_changes_show_their_sql_and_flag_what_destroys_data() {
    let parse = |sql: &str| crate::schema::parse_schema("schema.sql", sql).unwrap();
    let current = parse(
        "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(64) NOT NULL, legacy text);",
    );
    let desired = parse(
        "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(32) NOT NULL);\n\
         CREATE INDEX users_email_idx ON users (email);",
    );
    let observed = crate::schema::NodeSchema::Observed(crate::schema::ObservedSchema {
        database_exists: true,
        current,
        invalid_indexes: BTreeSet::new(),
        desired: desired.clone(),
        row_counts: BTreeMap::from([("users".to_owned(), 42)]),
    });
    let nodes = [schema::NodeInput {
        node: "primary",
        host_port: 5433,
        observed: &observed,
        fresh: &desired,
        renames: &[],
    }];
    let (changes, deferred) = schema::changes(&schema_target(), &nodes);
    assert!(deferred.is_empty());
    let plan = Plan::new("shop".into(), changes);
    let destructive: Vec<&str> = plan
        .destructive_steps()
        .iter()
        .map(|(_, s)| s.object.as_str())
        .collect();
    assert_eq!(destructive, ["column users.legacy", "column users.email"]);
    insta::assert_snapshot!("schema_plan", render_text(&plan));
}

#[test]
fn schema_of_a_new_server_is_planned_from_the_manifest_and_of_an_unreachable_one_deferred() {
    let desired = crate::schema::parse_schema("schema.sql", "CREATE TABLE t (id int);").unwrap();
    let fresh = crate::schema::NodeSchema::Fresh;
    let unknown = crate::schema::NodeSchema::Unknown;
    let nodes = [
        schema::NodeInput {
            node: "primary",
            host_port: 5433,
            observed: &fresh,
            fresh: &desired,
            renames: &[],
        },
        schema::NodeInput {
            node: "shard",
            host_port: 5435,
            observed: &unknown,
            fresh: &desired,
            renames: &[],
        },
    ];
    let (changes, deferred) = schema::changes(&schema_target(), &nodes);
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].address, Address::schema("shard"));
    assert_eq!(
        deferred[0].reason,
        DeferReason::NotAnswering {
            node: "shard".into()
        }
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, Action::Create);
    assert_eq!(changes[0].after, ["node.primary"]);
    let Operation::ApplySchema {
        create_database,
        steps,
        ..
    } = &changes[0].operation
    else {
        panic!("not a schema operation");
    };
    assert!(create_database);
    assert_eq!(steps.len(), 1);
    let mut plan = Plan::new("shop".into(), changes);
    plan.deferred = deferred;
    assert!(
        render_text(&plan)
            .contains("schema.shard is compared with the manifest once node.shard answers")
    );
}

/// The pg_hba.conf lines a plan's operation would write into `node`'s container.
fn hba_written(plan: &Plan, node: &str) -> String {
    plan.changes
        .iter()
        .find_map(|c| match &c.operation {
            Operation::RunServer { spec, .. } | Operation::Reconfigure { spec, .. }
                if spec.node == node =>
            {
                spec.files
                    .iter()
                    .find(|f| f.path.ends_with("/pg_hba.conf"))
                    .map(|f| f.content.clone())
            }
            _ => None,
        })
        .expect("a change that writes the node's files")
}

#[test]
fn an_added_access_rule_is_shown_and_reloaded_without_a_restart() {
    let desired = desired_state(&topology()).unwrap();
    let observed = converged(&desired);
    let mut changed = topology();
    changed.postgres.access.push(AccessRule {
        database: "shop".into(),
        user: "app".into(),
        address: "192.168.7.0/24".into(),
    });
    let plan = Plan::new(
        "shop".into(),
        diff(&desired_state(&changed).unwrap(), &observed),
    );
    assert_eq!(plan.changes.len(), 2, "{}", render_text(&plan));
    for change in &plan.changes {
        assert_eq!(change.action, Action::Update);
        assert!(matches!(
            change.operation,
            Operation::Reconfigure { restart: false, .. }
        ));
        assert_eq!(
            change.details,
            vec![
                Detail::new(
                    "pg_hba.conf",
                    None,
                    Some("host shop app 192.168.7.0/24 scram-sha-256".into())
                )
                .effect(Effect::Reload)
            ]
        );
    }
    // The file written keeps the environment's network, as observed, before the rule.
    let written = hba_written(&plan, "primary");
    let network = written
        .find(&format!("all all {}", super::fixtures::NETWORK_SUBNET))
        .or_else(|| {
            written.find(&format!(
                "all           all           {}",
                super::fixtures::NETWORK_SUBNET
            ))
        })
        .expect("the network's rule");
    assert!(network < written.find("192.168.7.0/24").unwrap());
    assert!(!written.contains(crate::templates::NETWORK_ADDRESS));

    // Taken away again: the rule goes, the rest stays.
    let plan = Plan::new(
        "shop".into(),
        diff(&desired, &converged(&desired_state(&changed).unwrap())),
    );
    let details: Vec<_> = plan.changes.iter().flat_map(|c| &c.details).collect();
    assert_eq!(details.len(), 2);
    assert!(details.iter().all(|d| d.before.as_deref()
        == Some("host shop app 192.168.7.0/24 scram-sha-256")
        && d.after.is_none()));
}

#[test]
fn a_network_made_anew_with_another_subnet_is_admitted_instead_of_the_old_one() {
    let desired = desired_state(&topology()).unwrap();
    let mut observed = converged(&desired);
    observed.network_subnets = vec!["172.29.0.0/16".into(), "fd00:29::/64".into()];
    let plan = Plan::new("shop".into(), diff(&desired, &observed));
    let text = render_text(&plan);
    assert!(
        text.contains("+ pg_hba.conf = \"host all all 172.29.0.0/16 scram-sha-256\""),
        "{text}"
    );
    assert!(
        text.contains("+ pg_hba.conf = \"host replication repuser fd00:29::/64 scram-sha-256\"")
    );
    assert!(text.contains(&format!(
        "- pg_hba.conf = \"host all all {} scram-sha-256\"",
        super::fixtures::NETWORK_SUBNET
    )));
    assert!(
        plan.changes
            .iter()
            .all(|c| matches!(c.operation, Operation::Reconfigure { restart: false, .. }))
    );
}

#[test]
fn before_the_network_exists_the_files_keep_its_placeholder_for_the_executor() {
    let desired = desired_state(&topology()).unwrap();
    let plan = Plan::new("shop".into(), diff(&desired, &empty("shop")));
    let written = hba_written(&plan, "primary");
    assert!(
        written.contains(crate::templates::NETWORK_ADDRESS),
        "{written}"
    );
    // No rule admits every address: only the network and the topology's own rules.
    for line in written.lines().filter(|l| l.starts_with("host")) {
        let address = line.split_whitespace().nth(3).unwrap();
        assert!(
            address == crate::templates::NETWORK_ADDRESS || address == "10.0.0.0/8",
            "{line}"
        );
    }
}
