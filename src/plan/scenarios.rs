//! Whole plans as data: `plan(&Desired, &Observed)` on three topologies (the default file, one
//! with range and hash fragments, one with several replicas) against observed states written
//! as fixtures, each drift on its own. Snapshots show the text a user reads and the order the
//! changes run in, with their prerequisites; no Docker.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::fixtures::{converged, nothing};
use super::{Plan, plan, render_text};
use crate::desired::{Desired, Manifests};
use crate::fragments::coordinator::PartLocation;
use crate::model::LiveSetting;
use crate::observed::{CoordinatorState, Observed, Prepared, SubscriptionState};
use crate::schema::{NodeSchema, ObservedSchema};
use crate::topology::{self, Topology};

/// The default `topology.yaml`, with its SQL manifest.
fn shop() -> Desired {
    desired(topology::load(Path::new("topology.yaml")).expect("the default topology loads"))
}

/// Range, hash, list and vertical fragments over three nodes, other names and ports.
fn fragmented() -> Desired {
    let yaml = "
name: frag
postgres:
  settings: { wal_level: logical }
  nodes:
    hub: { port: 6101 }
    east: { port: 6102 }
    west: { port: 6103 }
  schema: { file: tests/fixtures/fragments.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - { node: east, values: [EU] }
          - { node: west, values: [US] }
    reviews:
      horizontal:
        key: product_id
        by: range
        parts:
          - { node: east, to: 1000 }
          - { node: hub, from: 1000 }
    events:
      horizontal: { key: user_id, by: hash, parts: [{ node: east }, { node: west }, { node: east }] }
    users:
      vertical:
        key: user_id
        parts:
          - { node: hub, columns: [email, name] }
          - { node: west, columns: [password_hash] }
  indexes:
    - { table: orders, columns: [total] }
  reference_tables:
    categories: [east, west]
";
    desired(topology::load_str("fragmented.yaml", yaml).expect("the topology loads"))
}

/// Two nodes, one with two replicas and one with one, a schema on both, no fragments.
fn replicated() -> Desired {
    let yaml = "
name: bank
postgres:
  replication_user: streamer
  settings: { max_connections: 100, max_prepared_transactions: 8 }
  nodes:
    ledger: { port: 6201 }
    audit: { port: 6202, settings: { work_mem: 16MB } }
  replicas:
    ledger-a: { of: ledger, port: 6203 }
    ledger-b: { of: ledger, port: 6204 }
    audit-a: { of: audit, port: 6205 }
  schema: { file: tests/fixtures/accounts.sql, database: bank, nodes: [ledger, audit] }
";
    desired(topology::load_str("replicated.yaml", yaml).expect("the topology loads"))
}

fn desired(topology: Topology) -> Desired {
    let topology = topology.with_profiles(&[]);
    Desired::build(&topology, &Manifests::default()).expect("the desired state")
}

/// The plan as the user reads it, then the order it runs in: each wave's changes with what
/// they wait for, and what is deferred with its reason.
fn outline(plan: &Plan) -> String {
    let mut out = render_text(plan);
    out.push_str("\n--- order ---\n");
    for (n, wave) in plan.waves.iter().enumerate() {
        for &i in wave {
            let change = &plan.changes[i];
            let after: Vec<String> = change.after.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "wave {n}: {} {:?} after [{}]",
                change.address,
                change.action,
                after.join(", ")
            );
        }
    }
    for deferral in &plan.deferred {
        let _ = writeln!(
            out,
            "deferred: {} ({})",
            deferral.address,
            serde_json::to_string(&deferral.reason).unwrap()
        );
    }
    out
}

/// Plan, snapshot, and check that the converged state plans nothing.
fn check(name: &str, desired: &Desired, observed: &Observed) -> Plan {
    let plan = plan(desired, observed).unwrap_or_else(|e| panic!("{name}: {e}"));
    insta::assert_snapshot!(name, outline(&plan));
    let converged = super::plan(desired, &converged(desired)).unwrap();
    assert!(converged.is_converged(), "{}", render_text(&converged));
    plan
}

fn server_mut<'a>(observed: &'a mut Observed, node: &str) -> &'a mut crate::model::Server {
    observed.state.servers.get_mut(node).expect("the node")
}

fn stop(observed: &mut Observed, node: &str) {
    let server = server_mut(observed, node);
    server.container.as_mut().unwrap().running = false;
    // A server that does not answer reports no roles and no slots.
    server.live = None;
    server.replication_roles.clear();
    server.slots.clear();
    not_answering(observed, node);
}

/// What a node that cannot be asked looks like: its tables and subscription unknown.
fn not_answering(observed: &mut Observed, node: &str) {
    if observed.schemas.contains_key(node) {
        observed.schemas.insert(node.into(), NodeSchema::Unknown);
    }
    if observed.subscriptions.contains_key(node) {
        observed
            .subscriptions
            .insert(node.into(), SubscriptionState::Unknown);
    }
}

#[test]
fn shop_from_nothing() {
    let desired = shop();
    let plan = check("shop_from_nothing", &desired, &nothing(&desired));
    assert!(plan.deferred.is_empty());
}

#[test]
fn shop_converged_plans_nothing() {
    let desired = shop();
    let plan = check("shop_converged", &desired, &converged(&desired));
    assert!(plan.is_converged());
}

#[test]
fn shop_container_stopped() {
    let desired = shop();
    let mut observed = converged(&desired);
    stop(&mut observed, "shard-us");
    let plan = check("shop_container_stopped", &desired, &observed);
    assert!(!plan.is_empty());
}

#[test]
fn shop_container_removed() {
    let desired = shop();
    let mut observed = converged(&desired);
    observed.state.servers.remove("shard-eu");
    not_answering(&mut observed, "shard-eu");
    check("shop_container_removed", &desired, &observed);
}

#[test]
fn shop_setting_changed_with_alter_system() {
    let desired = shop();
    let mut observed = converged(&desired);
    let live = server_mut(&mut observed, "primary").live.as_mut().unwrap();
    live.altered.insert("work_mem".into());
    live.settings.insert(
        "work_mem".into(),
        LiveSetting {
            value: "65536".into(),
            unit: Some("kB".into()),
            context: "user".into(),
            pending_restart: false,
            accepts: None,
        },
    );
    check("shop_alter_system", &desired, &observed);
}

#[test]
fn shop_slot_dropped_and_role_missing() {
    let desired = shop();
    let mut observed = converged(&desired);
    let primary = server_mut(&mut observed, "primary");
    primary.slots.clear();
    primary.replication_roles.clear();
    check("shop_slot_and_role", &desired, &observed);
}

/// DROP SUBSCRIPTION by hand: its slot on the coordinator went with it.
#[test]
fn shop_subscription_dropped() {
    let desired = shop();
    let mut observed = converged(&desired);
    observed
        .subscriptions
        .insert("shard-eu".into(), SubscriptionState::Observed(None));
    if let CoordinatorState::Observed(found) = &mut observed.coordinator {
        found.logical_slots.remove("dbtopo_ref_shard_eu");
    }
    check("shop_subscription_dropped", &desired, &observed);
}

/// A subscription dropped once detached from its slot (an apply cut off between the two): the
/// slot is dropped before the subscription is made again, which needs its name.
#[test]
fn shop_subscription_dropped_with_its_slot_left() {
    let desired = shop();
    let mut observed = converged(&desired);
    observed
        .subscriptions
        .insert("shard-eu".into(), SubscriptionState::Observed(None));
    check(
        "shop_subscription_dropped_with_its_slot_left",
        &desired,
        &observed,
    );
}

#[test]
fn shop_subscription_disabled() {
    let desired = shop();
    let mut observed = converged(&desired);
    let Some(SubscriptionState::Observed(Some(found))) = observed.subscriptions.get_mut("shard-us")
    else {
        unreachable!("converged");
    };
    found.enabled = false;
    let plan = check("shop_subscription_disabled", &desired, &observed);
    assert_eq!(plan.changes.len(), 1);
}

/// What no change repairs still keeps the plan from saying "No changes": a replica that
/// does not stream, a subscription whose worker does not run.
#[test]
fn shop_replica_not_streaming_and_subscription_idle() {
    let desired = shop();
    let mut observed = converged(&desired);
    server_mut(&mut observed, "primary-replica")
        .live
        .as_mut()
        .unwrap()
        .streaming = false;
    let Some(SubscriptionState::Observed(Some(found))) = observed.subscriptions.get_mut("shard-eu")
    else {
        unreachable!("converged");
    };
    found.worker = false;
    let plan = check("shop_not_streaming", &desired, &observed);
    assert!(plan.is_empty() && !plan.is_converged());
    assert_eq!(plan.warnings.len(), 2);
    assert!(!render_text(&plan).contains("No changes."));
}

#[test]
fn shop_user_mapping_dropped() {
    let desired = shop();
    let mut observed = converged(&desired);
    let CoordinatorState::Observed(found) = &mut observed.coordinator else {
        unreachable!("converged");
    };
    assert!(found.user_mappings.remove("dbtopo_shard_eu"));
    let plan = check("shop_user_mapping_dropped", &desired, &observed);
    assert_eq!(plan.changes.len(), 1);
    // The password is added when the statement runs; the plan shows its placeholder.
    assert!(render_text(&plan).contains(crate::fragments::coordinator::PASSWORD_PLACEHOLDER));
}

/// A cold apply stopped after the containers were created: all exist, none started.
#[test]
fn shop_interrupted_before_any_server_started() {
    let desired = shop();
    let mut observed = converged(&desired);
    for node in ["primary", "primary-replica", "shard-eu", "shard-us"] {
        stop(&mut observed, node);
    }
    observed.coordinator = CoordinatorState::Unknown;
    let plan = check("shop_interrupted_nothing_started", &desired, &observed);
    assert!(
        plan.changes.iter().all(|c| c.address.kind() != "schema"),
        "no schema is compared before its server answers"
    );
}

/// A cold apply stopped once the coordinator answered but before the shards did: the
/// coordinator's fragment objects wait for the shards' tables instead of running first.
#[test]
fn shop_interrupted_with_the_shards_not_answering() {
    let desired = shop();
    let mut observed = nothing(&desired);
    let servers = converged(&desired).state;
    observed.state = servers;
    for node in ["shard-eu", "shard-us", "primary-replica"] {
        stop(&mut observed, node);
    }
    let targets = desired.schema.as_ref().unwrap().node_targets();
    let primary = targets.iter().find(|t| t.node == "primary").unwrap();
    observed.schemas.insert(
        "primary".into(),
        NodeSchema::Observed(ObservedSchema {
            database_exists: false,
            current: Default::default(),
            invalid_indexes: Default::default(),
            desired: primary.fresh.clone(),
            row_counts: Default::default(),
        }),
    );
    for node in ["shard-eu", "shard-us"] {
        not_answering(&mut observed, node);
    }
    let plan = check("shop_interrupted_shards_silent", &desired, &observed);
    assert!(
        plan.changes
            .iter()
            .all(|c| !matches!(c.address.kind(), "fragmented_table" | "vertical_table")),
        "fragment objects wait for their shards"
    );
    assert!(plan.pending().count() > 0);
}

#[test]
fn shop_in_doubt_transactions() {
    let desired = shop();
    let mut observed = converged(&desired);
    let prepared = |node: &str, id: &str, age: u64| Prepared {
        node: node.into(),
        gid: crate::model::participant_gid(id, node),
        database: "ecommerce".into(),
        age: Duration::from_secs(age),
    };
    observed.prepared = vec![
        prepared("shard-eu", "committed", 5),
        prepared("shard-us", "young", 5),
        prepared("shard-us", "abandoned", 600),
    ];
    observed.decisions = Some([("committed".into(), "commit".into())].into());
    let plan = check("shop_in_doubt", &desired, &observed);
    assert_eq!(plan.changes.len(), 3, "{}", render_text(&plan));
    assert!(
        plan.changes
            .iter()
            .any(|c| c.address == "txn_decision.committed")
    );
    assert_eq!(plan.notices.len(), 1);

    // Without the decision record nothing is resolved: a commit is never rolled back.
    observed.decisions = None;
    let plan = super::plan(&desired, &observed).unwrap();
    assert!(plan.changes.is_empty(), "{}", render_text(&plan));
}

#[test]
fn fragmented_from_nothing() {
    let desired = fragmented();
    check("fragmented_from_nothing", &desired, &nothing(&desired));
}

#[test]
fn fragmented_coordinator_not_answering() {
    let desired = fragmented();
    let mut observed = converged(&desired);
    stop(&mut observed, "hub");
    observed.coordinator = CoordinatorState::Unknown;
    check("fragmented_coordinator_silent", &desired, &observed);
}

/// A movement stopped after its rows were copied: the old copies are left to drop.
#[test]
fn fragmented_move_half_done() {
    let desired = fragmented();
    let mut observed = converged(&desired);
    let CoordinatorState::Observed(found) = &mut observed.coordinator else {
        unreachable!("converged");
    };
    found.moved.insert(
        "dbtopo_moved_0123456789ab".into(),
        PartLocation::Remote {
            server: "dbtopo_east".into(),
            table: "orders_old".into(),
        },
    );
    found
        .moved
        .insert("dbtopo_moved_local".into(), PartLocation::Local);
    check("fragmented_move_half_done", &desired, &observed);
}

#[test]
fn replicated_from_nothing() {
    let desired = replicated();
    check("replicated_from_nothing", &desired, &nothing(&desired));
}

#[test]
fn replicated_replica_stopped_and_its_slot_dropped() {
    let desired = replicated();
    let mut observed = converged(&desired);
    stop(&mut observed, "ledger-b");
    server_mut(&mut observed, "ledger")
        .slots
        .remove("dbtopo_ledger_b");
    check("replicated_replica_stopped", &desired, &observed);
}

/// A primary's container and volume removed while its replicas hold its data: making it
/// again empty is destructive, says where the data still is, and takes the replicas along.
#[test]
fn replicated_primary_volume_lost() {
    let desired = replicated();
    let mut observed = converged(&desired);
    observed.state.servers.remove("ledger");
    observed.state.volumes.remove("ledger");
    not_answering(&mut observed, "ledger");
    for (replica, lsn) in [("ledger-a", "0/3A000000"), ("ledger-b", "0/39FFF0C8")] {
        let live = server_mut(&mut observed, replica).live.as_mut().unwrap();
        live.system_identifier = Some("7445126350112321233".into());
        live.timeline = Some(1);
        live.lsn = Some(lsn.into());
        live.streaming = false;
    }
    let plan = check("replicated_primary_volume_lost", &desired, &observed);
    let losses: Vec<String> = plan
        .data_losses()
        .iter()
        .map(|(address, why)| format!("{address}: {why}"))
        .collect();
    assert_eq!(losses.len(), 3, "{losses:#?}");
    assert!(
        losses[0]
            .contains("replica ledger-a still holds its data (timeline 1, up to LSN 0/3A000000)")
    );
    // The plan names the edit that keeps the data: the replica furthest ahead, promoted.
    let node = plan
        .changes
        .iter()
        .find(|c| c.address == "node.ledger")
        .unwrap();
    assert!(
        node.reason
            .contains("promote ledger-a, the replica that has replayed furthest"),
        "{}",
        node.reason
    );

    // Without the replicas' volumes nothing shows the node held data: a new node, not a loss.
    let mut observed = nothing(&desired);
    observed.state.network = Some("bank-net".into());
    assert!(
        super::plan(&desired, &observed)
            .unwrap()
            .data_losses()
            .is_empty()
    );
}

/// A replica that holds another cluster than its upstream (its upstream was made again) is
/// drift: copied anew from its upstream, which discards what it holds.
#[test]
fn replicated_replica_of_another_cluster() {
    let desired = replicated();
    let mut observed = converged(&desired);
    for (node, id) in [
        ("ledger", "7445"),
        ("ledger-a", "7445"),
        ("ledger-b", "6001"),
    ] {
        server_mut(&mut observed, node)
            .live
            .as_mut()
            .unwrap()
            .system_identifier = Some(id.into());
    }
    let plan = check("replicated_replica_of_another_cluster", &desired, &observed);
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].address, "node.ledger-b");
    assert_eq!(plan.data_losses().len(), 1);
}

/// Raising a setting a hot standby needs at least as high as its upstream: the standbys
/// restart first.
#[test]
fn replicated_max_connections_raised() {
    let desired = replicated();
    let mut observed = converged(&desired);
    for server in observed.state.servers.values_mut() {
        let live = server.live.as_mut().unwrap();
        live.settings.get_mut("max_connections").unwrap().value = "50".into();
        let config = server.config.as_mut().unwrap();
        config.postgresql_conf = config
            .postgresql_conf
            .replace("max_connections = 100", "max_connections = 50");
    }
    let plan = check("replicated_max_connections_raised", &desired, &observed);
    let wave = |address: &str| {
        let i = plan.changes.iter().position(|c| c.address == address);
        plan.waves
            .iter()
            .position(|w| w.contains(&i.expect(address)))
            .unwrap()
    };
    assert!(wave("node.ledger-a") < wave("node.ledger"));
    assert!(wave("node.audit-a") < wave("node.audit"));
}

/// `replicated` after a switchover: ledger-a is the node, ledger and ledger-b its replicas
/// (each server keeps its name, port and volume).
fn replicated_switched() -> Desired {
    let yaml = "
name: bank
postgres:
  replication_user: streamer
  settings: { max_connections: 100, max_prepared_transactions: 8 }
  nodes:
    ledger-a: { port: 6203 }
    audit: { port: 6202, settings: { work_mem: 16MB } }
  replicas:
    ledger: { of: ledger-a, port: 6201 }
    ledger-b: { of: ledger-a, port: 6204 }
    audit-a: { of: audit, port: 6205 }
  schema: { file: tests/fixtures/accounts.sql, database: bank, nodes: [ledger-a, audit] }
";
    desired(topology::load_str("switched.yaml", yaml).expect("the topology loads"))
}

fn promotion(plan: &Plan) -> &super::Change {
    plan.changes
        .iter()
        .find(|c| c.action == super::Action::Promote)
        .expect("a promotion")
}

/// A replica declared the node while its primary runs: one promotion (a switchover that loses
/// nothing), then the old primary rejoins as a replica and the other replica follows.
#[test]
fn replicated_switchover() {
    let observed = converged(&replicated());
    let desired = replicated_switched();
    let plan = check("replicated_switchover", &desired, &observed);
    let promoted = promotion(&plan);
    assert_eq!(promoted.address, "node.ledger-a");
    assert!(
        promoted.reason.starts_with("switchover:"),
        "{}",
        promoted.reason
    );
    assert!(plan.data_losses().is_empty(), "{:?}", plan.data_losses());
    let super::Operation::PromoteServer {
        old_primary,
        unverified,
        ..
    } = &promoted.operation
    else {
        panic!("{:?}", promoted.operation);
    };
    assert_eq!(old_primary.as_ref().unwrap().node, "ledger");
    assert!(!unverified);
    // The old primary and the other replica move only once ledger-a is the primary.
    for node in ["node.ledger", "node.ledger-b"] {
        let change = plan.changes.iter().find(|c| c.address == node).unwrap();
        assert!(
            change.after.iter().any(|a| *a == "node.ledger-a"),
            "{node}: {:?}",
            change.after
        );
    }
}

/// The same apply stopped after the old primary was stopped cleanly and ledger-a's new
/// container started, still in recovery: the next plan promotes it, without loss, because
/// ledger-a replayed past ledger's last checkpoint; had it not, the promotion loses data.
#[test]
fn replicated_switchover_interrupted() {
    let desired = replicated_switched();
    let mut observed = converged(&replicated());
    let switched = converged(&desired);
    let mut ledger_a = switched.state.servers["ledger-a"].clone();
    let live = ledger_a.live.as_mut().unwrap();
    live.in_recovery = true;
    live.lsn = Some("0/3000100".into());
    observed.state.servers.insert("ledger-a".into(), ledger_a);
    let ledger = server_mut(&mut observed, "ledger");
    ledger.container.as_mut().unwrap().running = false;
    ledger.live = None;
    ledger.replication_roles.clear();
    ledger.slots.clear();
    ledger.ended = Some(crate::model::Ended {
        clean: true,
        checkpoint: 0x3000028,
        in_recovery: false,
    });
    not_answering(&mut observed, "ledger");
    let plan = check("replicated_switchover_interrupted", &desired, &observed);
    let promoted = promotion(&plan);
    assert!(
        promoted.reason.contains("stopped cleanly at LSN 0/3000028"),
        "{}",
        promoted.reason
    );
    assert!(plan.data_losses().is_empty());

    let replayed = server_mut(&mut observed, "ledger-a").live.as_mut().unwrap();
    replayed.lsn = Some("0/3000000".into());
    let plan = super::plan(&desired, &observed).unwrap();
    assert_eq!(plan.data_losses().len(), 1, "{}", render_text(&plan));
    assert!(
        promotion(&plan)
            .reason
            .contains("has replayed only up to LSN 0/3000000")
    );
}

/// The same apply stopped once ledger-a's container was made as a primary's, before it
/// started: its pg_control says it is still a standby, so the next plan promotes it (the
/// switchover again, ledger still running), rather than starting it as if it were a primary.
#[test]
fn a_promotion_cut_off_before_its_container_started_is_planned_again() {
    let desired = replicated_switched();
    let mut observed = converged(&replicated());
    let mut ledger_a = converged(&desired).state.servers["ledger-a"].clone();
    ledger_a.container.as_mut().unwrap().running = false;
    ledger_a.live = None;
    ledger_a.ended = Some(crate::model::Ended {
        clean: true,
        checkpoint: 0x3000028,
        in_recovery: true,
    });
    observed.state.servers.insert("ledger-a".into(), ledger_a);
    let plan = plan(&desired, &observed).unwrap();
    let promoted = promotion(&plan);
    assert_eq!(promoted.address, "node.ledger-a");
    assert!(
        promoted.reason.starts_with("switchover:"),
        "{}",
        promoted.reason
    );
    // Had it been promoted before it stopped, it is a primary: started, not promoted.
    if let Some(ended) = &mut server_mut(&mut observed, "ledger-a").ended {
        ended.in_recovery = false;
    }
    let plan = super::plan(&desired, &observed).unwrap();
    assert!(
        plan.changes
            .iter()
            .all(|c| c.action != super::Action::Promote),
        "{}",
        render_text(&plan)
    );
}

/// The same apply stopped between the removal of ledger-a's replica container and the making
/// of its new one: only its volume is left, and ledger still runs as the primary. The next
/// plan promotes ledger-a (its volume holds a standby's data) rather than making it a new
/// primary beside ledger.
#[test]
fn a_promotion_cut_off_with_the_replicas_container_gone_is_planned_again() {
    let desired = replicated_switched();
    let mut observed = converged(&replicated());
    observed.state.servers.remove("ledger-a");
    not_answering(&mut observed, "ledger-a");
    let plan = plan(&desired, &observed).unwrap();
    let promoted = promotion(&plan);
    assert_eq!(promoted.address, "node.ledger-a");
    assert!(
        promoted.reason.starts_with("switchover:"),
        "{}",
        promoted.reason
    );
    let super::Operation::PromoteServer { standby_conf, .. } = &promoted.operation else {
        panic!();
    };
    let conf = standby_conf.as_deref().expect("a standby configuration");
    assert!(conf.contains("host=bank-ledger "), "{conf}");
    assert!(
        conf.contains("primary_slot_name = 'dbtopo_ledger_a'"),
        "{conf}"
    );
}

/// The primary's container and volume are gone and the topology promotes ledger-a: a
/// failover, which may lose what ledger wrote after ledger-a's last replayed position.
#[test]
fn replicated_failover() {
    let desired = replicated_switched();
    let mut observed = converged(&replicated());
    observed.state.servers.remove("ledger");
    observed.state.volumes.remove("ledger");
    not_answering(&mut observed, "ledger");
    server_mut(&mut observed, "ledger-a")
        .live
        .as_mut()
        .unwrap()
        .lsn = Some("0/3A000000".into());
    let plan = check("replicated_failover", &desired, &observed);
    let promoted = promotion(&plan);
    assert!(
        promoted.reason.starts_with("failover:"),
        "{}",
        promoted.reason
    );
    assert!(
        promoted.reason.contains("LSN 0/3A000000"),
        "{}",
        promoted.reason
    );
    let losses = plan.data_losses();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0].0, "node.ledger-a");
    let super::Operation::PromoteServer { unverified, .. } = &promoted.operation else {
        panic!();
    };
    assert!(unverified);
}

/// A fragment node and its replica, the coordinator's vertical column group and reference
/// copies on it; `east` names the node, `replica` its replica.
fn fragment_cluster(east: &str, replica: &str) -> Desired {
    let yaml = format!(
        "
name: frag
postgres:
  settings: {{ wal_level: logical }}
  nodes:
    hub: {{ port: 6101 }}
    {east}: {{ port: 6102 }}
  replicas:
    {replica}: {{ of: {east}, port: 6104 }}
  schema: {{ file: tests/fixtures/fragments.sql, database: shop, nodes: [hub] }}
  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - {{ node: {east}, values: [EU] }}
          - {{ node: hub, values: [US] }}
    users:
      vertical:
        key: user_id
        parts:
          - {{ node: hub, columns: [email, name] }}
          - {{ node: {east}, columns: [password_hash] }}
  reference_tables:
    categories: [{east}]
"
    );
    desired(topology::load_str("fragment_cluster.yaml", &yaml).expect("the topology loads"))
}

/// What the environment looks like once `east-r` was promoted in place of `east` (which now
/// streams from it), before the coordinator followed: its objects and the copy's subscription
/// are still those made for `east`, and `east-r` holds `east`'s tables, subscription included.
fn fragment_node_promoted() -> (Desired, Observed) {
    let before = converged(&fragment_cluster("east", "east-r"));
    let after = fragment_cluster("east-r", "east");
    let mut observed = converged(&after);
    observed.coordinator = before.coordinator.clone();
    let subscription = before.subscriptions["east"].clone();
    observed
        .subscriptions
        .insert("east-r".into(), SubscriptionState::Observed(None));
    observed.leftover_subscriptions.insert(
        "east-r".into(),
        vec![crate::observed::LeftoverSubscription {
            name: "dbtopo_ref_east".into(),
            publisher_host: match subscription {
                SubscriptionState::Observed(Some(found)) => found.publisher_host,
                _ => None,
            },
        }],
    );
    (after, observed)
}

/// A fragment node's replica made the node: one promotion, then nothing moves. Its parts are
/// re-pointed on the coordinator (the rows are the same, replicated), the column group's
/// foreign table and the reference copy follow it, and the copy's subscription is made on it.
#[test]
fn a_fragment_nodes_switchover() {
    let before = converged(&fragment_cluster("east", "east-r"));
    let after = fragment_cluster("east-r", "east");
    let mut observed = before.clone();
    // A standby's tables are compared once it is promoted.
    not_answering(&mut observed, "east");
    observed
        .schemas
        .insert("east-r".into(), NodeSchema::Unknown);
    observed
        .subscriptions
        .insert("east-r".into(), SubscriptionState::Unknown);
    let plan = check("a_fragment_nodes_switchover", &after, &observed);
    assert_eq!(promotion(&plan).address, "node.east-r");
    assert!(plan.data_losses().is_empty(), "{}", render_text(&plan));
    let text = render_text(&plan);
    assert!(!text.contains("moves"), "{text}");
}

/// The round after the promotion: the coordinator's objects follow east-r without moving a
/// row, the subscription left from east is detached and its slot dropped before east-r's
/// subscription is made, east's server and publication go.
#[test]
fn a_fragment_nodes_promotion_re_points_the_coordinator() {
    let (desired, observed) = fragment_node_promoted();
    let plan = check(
        "a_fragment_nodes_promotion_re_points_the_coordinator",
        &desired,
        &observed,
    );
    assert!(plan.data_losses().is_empty(), "{}", render_text(&plan));
    let change = |address: &str| {
        plan.changes
            .iter()
            .find(|c| c.address == address)
            .unwrap_or_else(|| panic!("{address} in\n{}", render_text(&plan)))
    };
    assert_eq!(
        change("fdw_server.dbtopo_east").action,
        super::Action::Delete
    );
    assert_eq!(
        change("fdw_server.dbtopo_east_r").action,
        super::Action::Create
    );
    let orders = change("fragmented_table.orders");
    assert!(orders.reason.contains("re-pointed"), "{}", orders.reason);
    let leftover = change("subscription.dbtopo_ref_east");
    assert_eq!(leftover.action, super::Action::Delete);
    assert!(
        change("subscription.dbtopo_ref_east_r")
            .after
            .iter()
            .any(|a| *a == "subscription.dbtopo_ref_east"),
        "the old subscription goes first"
    );
    assert_eq!(
        change("publication.dbtopo_ref_east").action,
        super::Action::Delete
    );
}

/// The default topology with its coordinator's replica made the node: the column group the
/// coordinator keeps (`users_primary`) is renamed with the promotion, not dropped.
#[test]
fn the_default_coordinators_column_group_follows_its_promotion() {
    let text = include_str!("../../topology.yaml");
    let switched = text
        .replace(
            "    primary:  { port: 5433 }",
            "    primary-replica: { port: 5434 }",
        )
        .replace(
            "    primary-replica: { of: primary, port: 5434 }",
            "    primary: { of: primary-replica, port: 5433 }",
        )
        .replace("nodes: [primary]", "nodes: [primary-replica]")
        .replace(
            "{ node: primary, columns",
            "{ node: primary-replica, columns",
        );
    let after = desired(topology::load_str("switched.yaml", &switched).unwrap());
    // The round after the promotion: primary-replica answers with the coordinator's tables.
    let before = converged(&shop());
    let mut observed = converged(&after);
    let (NodeSchema::Observed(was), Some(NodeSchema::Observed(now))) = (
        &before.schemas["primary"],
        observed.schemas.get_mut("primary-replica"),
    ) else {
        panic!("both observed");
    };
    now.current = was.current.clone();
    now.row_counts.insert("users_primary".into(), 100);
    observed.coordinator = before.coordinator.clone();
    let plan = check(
        "the_default_coordinators_column_group_follows_its_promotion",
        &after,
        &observed,
    );
    assert!(plan.data_losses().is_empty(), "{}", render_text(&plan));
    let schema = plan
        .changes
        .iter()
        .find(|c| c.address == "schema.primary-replica")
        .expect("the coordinator's schema change");
    let super::Operation::ApplySchema { steps, .. } = &schema.operation else {
        panic!();
    };
    assert!(
        steps[0]
            .sql
            .contains("ALTER TABLE users_primary RENAME TO users_primary_replica"),
        "{steps:#?}"
    );
    assert!(steps.iter().all(|s| s.destroys.is_none()), "{steps:#?}");
}
