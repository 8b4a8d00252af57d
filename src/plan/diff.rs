//! Desired vs observed → the list of changes. Pure: a symmetric comparison of two [`State`]s.

use std::collections::{BTreeMap, BTreeSet};

use super::settings::same_value;
use super::{
    Action, Address, Change, Detail, Effect, FileSpec, Operation, ServerSpec, UpstreamServer,
};
use crate::model::{self, Live, Server, State, label};
use crate::templates::parse_conf_settings;

pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let desired = &on_observed_network(desired, observed);
    let env = desired.env.as_str();
    let mut changes = Vec::new();

    for (reference, _) in desired
        .images
        .iter()
        .filter(|(r, _)| !observed.images.get(*r).copied().unwrap_or(false))
    {
        changes.push(Change {
            address: image_address(reference),
            action: Action::Create,
            reason: "image is not present locally: pull it, or build it from Debian packages when no registry answers".into(),
            details: vec![],
            after: vec![],
            operation: Operation::EnsureImage { reference: reference.clone() },
        });
    }

    if let Some(network) = &desired.network
        && observed.network.as_deref() != Some(network.as_str())
    {
        changes.push(Change {
            address: Address::Network(network.clone()),
            action: Action::Create,
            reason: "network does not exist".into(),
            details: vec![],
            after: vec![],
            operation: Operation::CreateNetwork {
                name: network.clone(),
                labels: env_labels(env),
            },
        });
    }

    for node in desired.volumes.difference(&observed.volumes) {
        let mut labels = env_labels(env);
        labels.insert(label::NODE.into(), node.clone());
        // A replica's volume comes after its upstream's new one: an apply interrupted in
        // between never leaves a replica's volume where its primary has none, which would
        // look like a primary that lost its data.
        let upstream_volume = desired
            .servers
            .get(node)
            .and_then(|s| s.role.upstream())
            .filter(|upstream| !observed.volumes.contains(*upstream))
            .map(volume_address);
        changes.push(Change {
            address: volume_address(node),
            action: Action::Create,
            reason: "data volume does not exist".into(),
            details: vec![Detail::new(
                "name",
                None,
                Some(model::volume_name(env, node)),
            )],
            after: upstream_volume.into_iter().collect(),
            operation: Operation::CreateVolume {
                name: model::volume_name(env, node),
                labels,
            },
        });
    }

    for server in desired.servers.values() {
        let seen = observed.servers.get(&server.node);
        changes.extend(server_change(desired, observed, server, seen));
        changes.extend(role_changes(server, seen));
        changes.extend(slot_changes(server, seen));
    }

    for seen in observed
        .servers
        .values()
        .filter(|s| !desired.servers.contains_key(&s.node))
    {
        if let Some(container) = &seen.container {
            changes.push(Change {
                address: node_address(&seen.node),
                action: Action::Delete,
                reason: "node is no longer in the topology".into(),
                details: vec![Detail::new("container", Some(container.name.clone()), None)],
                after: vec![],
                operation: Operation::RemoveContainer {
                    name: container.name.clone(),
                },
            });
        }
        changes.extend(slot_changes(&no_slots(seen), Some(seen)));
    }

    for node in observed.volumes.difference(&desired.volumes) {
        changes.push(Change {
            address: volume_address(node),
            action: Action::Delete,
            reason: "node is no longer in the topology: its data is deleted".into(),
            details: vec![Detail::new(
                "name",
                Some(model::volume_name(env, node)),
                None,
            )],
            after: vec![node_address(node)],
            operation: Operation::RemoveVolume {
                name: model::volume_name(env, node),
            },
        });
    }

    standby_first(&mut changes);
    pace_initializations(&mut changes, desired, observed);
    start_early(&mut changes, observed);
    changes
}

/// The desired files with the subnets of the environment's network written into pg_hba.conf,
/// where the network exists. Where it does not yet, they keep the placeholder, which the
/// executor fills in from the network it has just created.
fn on_observed_network(desired: &State, observed: &State) -> State {
    let mut desired = desired.clone();
    if desired.network.is_none() || observed.network != desired.network {
        return desired;
    }
    for server in desired.servers.values_mut() {
        if let Some(config) = &server.config {
            server.config = Some(config.on_network(&observed.network_subnets));
        }
    }
    desired
}

/// What a server's container needs before it can be created.
fn container_prerequisites(spec: &ServerSpec) -> Vec<Address> {
    vec![
        Address::Network(spec.network.clone()),
        volume_address(&spec.node),
        image_address(&spec.image),
    ]
}

/// A new node that waits for other nodes (a replica for its upstream, a node paced behind
/// another) gets its container started at once, held before its data is initialized: the
/// container start then overlaps the wait. Only where the data volume is new, since a server
/// with data starts without waiting for its turn.
fn start_early(changes: &mut [Change], observed: &State) {
    for change in changes.iter_mut() {
        let Operation::RunServer {
            spec,
            start_early_after,
        } = &mut change.operation
        else {
            continue;
        };
        let container_after = container_prerequisites(spec);
        let waits_for_others = change.after.iter().any(|a| !container_after.contains(a));
        if change.action == Action::Create
            && waits_for_others
            && !observed.volumes.contains(&spec.node)
        {
            *start_early_after = Some(container_after);
        }
    }
}

/// New nodes run initdb, which is CPU-bound: more of them at once than the engine has CPUs only
/// slows every one down. So they go in lanes of `cpus`, nodes that replicas wait for first,
/// each later one after the one `cpus` places ahead of it.
fn pace_initializations(changes: &mut [Change], desired: &State, observed: &State) {
    let Some(cpus) = observed.cpus else { return };
    let mut fresh: Vec<(bool, Address)> = changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .filter_map(|c| match &c.operation {
            Operation::RunServer { spec, .. } if spec.role == crate::model::Role::Primary => {
                Some(spec)
            }
            _ => None,
        })
        .filter(|spec| !observed.volumes.contains(&spec.node))
        .map(|spec| {
            let has_replicas = desired
                .servers
                .get(&spec.node)
                .is_some_and(|s| !s.slots.is_empty());
            (!has_replicas, node_address(&spec.node))
        })
        .collect();
    fresh.sort();
    for (i, (_, address)) in fresh.iter().enumerate().skip(cpus) {
        let ahead = fresh[i - cpus].1.clone();
        if let Some(change) = changes.iter_mut().find(|c| c.address == *address) {
            change.after.push(ahead);
        }
    }
}

/// Settings a hot standby needs at least as high as its upstream's (PostgreSQL pauses replay
/// otherwise): when one grows, the standby restarts before its upstream.
const STANDBY_MINIMUMS: [&str; 5] = [
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_wal_senders",
    "max_worker_processes",
];

/// A standby minimum's (before, after), when both are numbers.
fn standby_minimum(detail: &Detail) -> Option<(i64, i64)> {
    let number = |v: &Option<String>| v.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
    STANDBY_MINIMUMS
        .contains(&detail.field.as_str())
        .then(|| Some((number(&detail.before)?, number(&detail.after)?)))
        .flatten()
}

fn grows(detail: &Detail) -> bool {
    standby_minimum(detail).is_some_and(|(before, after)| after > before)
}

fn shrinks(detail: &Detail) -> bool {
    standby_minimum(detail).is_some_and(|(before, after)| after < before)
}

fn standby_first(changes: &mut [Change]) {
    let flips: Vec<(Address, Address)> = changes
        .iter()
        .filter(|c| c.action == Action::Restart && c.details.iter().any(grows))
        .filter_map(|c| match &c.operation {
            Operation::Reconfigure { spec, .. } => spec
                .role
                .upstream()
                .map(|up| (node_address(&spec.node), node_address(up))),
            _ => None,
        })
        .collect();
    for (replica, upstream) in flips {
        for change in changes.iter_mut() {
            if change.address == replica {
                change.after.retain(|a| *a != upstream);
            } else if change.address == upstream {
                change.after.push(replica.clone());
            }
        }
    }
}

/// What the observation shows wrong that no change repairs: a running replica that answers
/// but does not stream (its upstream is a different cluster, or WAL it needs is gone).
pub fn warnings(desired: &State, observed: &State) -> Vec<String> {
    desired
        .servers
        .values()
        .filter_map(|server| {
            let upstream = server.role.upstream()?;
            let seen = observed.servers.get(&server.node)?;
            // A server whose role changes is replaced by the plan: not a warning.
            if seen.role != server.role {
                return None;
            }
            let live = seen.live.as_ref()?;
            (!live.streaming).then(|| {
                format!(
                    "replica {} answers but does not stream from {upstream}; see: docker logs {}",
                    server.node,
                    model::container_name(&desired.env, &server.node)
                )
            })
        })
        .collect()
}

pub fn node_address(node: &str) -> Address {
    Address::Node(node.to_owned())
}

fn volume_address(node: &str) -> Address {
    Address::Volume(node.to_owned())
}

fn image_address(reference: &str) -> Address {
    Address::Image(reference.to_owned())
}

fn env_labels(env: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(label::ENV.to_string(), env.to_string())])
}

/// The same server wanting none of its slots: used for servers that leave the topology.
fn no_slots(server: &Server) -> Server {
    Server {
        slots: BTreeSet::new(),
        ..server.clone()
    }
}

/// What a server's container waits for: its network, volume and image, and for a replica its
/// upstream with the replication role and the replica's slot.
pub(super) fn server_prerequisites(
    desired: &State,
    server: &Server,
    spec: &ServerSpec,
) -> Vec<Address> {
    let mut after = container_prerequisites(spec);
    if let Some(up) = server.role.upstream() {
        after.push(node_address(up));
        after.push(Address::Role {
            node: up.to_owned(),
            role: replication_user(desired, up),
        });
        after.push(Address::Slot {
            node: up.to_owned(),
            slot: model::slot_name(&server.node),
        });
    }
    after
}

pub(super) fn server_spec(desired: &State, server: &Server) -> Option<ServerSpec> {
    let container = server.container.as_ref()?;
    let config = server.config.as_ref()?;
    let mut labels = env_labels(&desired.env);
    labels.insert(label::NODE.into(), server.node.clone());
    labels.insert(label::ROLE.into(), server.role.as_label().into());
    if let Some(up) = server.role.upstream() {
        labels.insert(label::UPSTREAM.into(), up.into());
    }
    labels.insert(label::SPEC_HASH.into(), container.spec_hash.clone());
    labels.insert(label::CONFIG_HASH.into(), config.hash());
    let file = |name: &str, content: &str| FileSpec {
        path: format!("{}/{name}", model::CONFIG_DIR),
        mode: 0o644,
        content: content.to_string(),
    };
    Some(ServerSpec {
        env: desired.env.clone(),
        node: server.node.clone(),
        role: server.role.clone(),
        container: container.name.clone(),
        image: container.image.clone(),
        host_port: container.host_port,
        network: desired.network.clone().unwrap_or_default(),
        volume: model::volume_name(&desired.env, &server.node),
        labels,
        files: vec![
            file("postgresql.conf", &config.postgresql_conf),
            file("pg_hba.conf", &config.pg_hba_conf),
            file(
                "bootstrap.sh",
                server.bootstrap.as_deref().unwrap_or_default(),
            ),
        ],
    })
}

fn server_change(
    desired: &State,
    observed: &State,
    server: &Server,
    seen: Option<&Server>,
) -> Option<Change> {
    let spec = server_spec(desired, server)?;
    let want = server.container.as_ref()?;
    let address = node_address(&server.node);
    let after = server_prerequisites(desired, server, &spec);
    let change = |action, reason: String, details, operation| {
        Some(Change {
            address: address.clone(),
            action,
            reason,
            details,
            after: after.clone(),
            operation,
        })
    };

    let Some(have) = seen.and_then(|s| s.container.as_ref()) else {
        let reason = if observed.volumes.contains(&server.node) {
            "container does not exist; its data volume exists and is reused".to_string()
        } else {
            "container does not exist".to_string()
        };
        let details = vec![
            Detail::new("container", None, Some(want.name.clone())),
            Detail::new("image", None, Some(want.image.clone())),
            Detail::new("port", None, Some(format!("127.0.0.1:{}", want.host_port))),
            Detail::new("role", None, Some(role_text(server))),
        ];
        return change(
            Action::Create,
            reason,
            details,
            Operation::RunServer {
                spec,
                start_early_after: None,
            },
        );
    };
    let seen = seen.expect("container implies server");

    let mut forced = Vec::new();
    if have.image != want.image {
        forced.push(Detail::new(
            "image",
            Some(have.image.clone()),
            Some(want.image.clone()),
        ));
    }
    if have.host_port != want.host_port {
        forced.push(Detail::new(
            "port",
            Some(have.host_port.to_string()),
            Some(want.host_port.to_string()),
        ));
    }
    if seen.role != server.role {
        forced.push(Detail::new(
            "role",
            Some(role_text(seen)),
            Some(role_text(server)),
        ));
    }
    if forced.is_empty() && have.spec_hash != want.spec_hash {
        forced.push(Detail::new(
            "bootstrap",
            Some(have.spec_hash.clone()),
            Some(want.spec_hash.clone()),
        ));
    }
    if !forced.is_empty() {
        let fields: Vec<&str> = forced.iter().map(|d| d.field.as_str()).collect();
        let reason = format!("{} changed; the data volume is kept", fields.join(", "));
        let forced = forced
            .into_iter()
            .map(|d| d.effect(Effect::Replace))
            .collect();
        return change(
            Action::Replace,
            reason,
            forced,
            Operation::RunServer {
                spec,
                start_early_after: None,
            },
        );
    }

    let config_details = config_details(server, seen);
    if !have.running {
        return change(
            Action::Start,
            "container is not running".into(),
            config_details,
            Operation::StartServer { spec },
        );
    }
    let Some(live) = &seen.live else {
        let port = have.host_port;
        let why = match &seen.silent {
            Some(why) => format!(
                "container is running but PostgreSQL on 127.0.0.1:{port} does not answer: {why}"
            ),
            None => {
                format!("container is running but PostgreSQL on 127.0.0.1:{port} does not answer")
            }
        };
        return change(
            Action::Restart,
            why,
            config_details,
            Operation::Reconfigure {
                spec,
                restart: true,
                reset_altered: false,
                catch_up_with: None,
            },
        );
    };

    // What the server holds says more than the file: it wins when both name a setting.
    let mut details = live_drift(server, live);
    let held: BTreeSet<String> = details.iter().map(|d| d.field.clone()).collect();
    details.extend(
        config_details
            .into_iter()
            .filter(|d| !held.contains(&d.field)),
    );
    if details.is_empty() {
        return None;
    }
    let reset_altered = !live.altered.is_empty();
    let restart = details
        .iter()
        .any(|d| d.effect.is_some_and(Effect::needs_restart));
    let (action, what) = if restart {
        (Action::Restart, "restart")
    } else {
        (Action::Update, "reload")
    };
    let mut fields: Vec<&str> = Vec::new();
    for detail in &details {
        if !fields.contains(&detail.field.as_str()) {
            fields.push(&detail.field);
        }
    }
    let reason = format!(
        "configuration differs ({}); applied with a {what}",
        fields.join(", ")
    );
    let catch_up_with = server
        .role
        .upstream()
        .filter(|_| restart && details.iter().any(shrinks))
        .and_then(|up| desired.servers.get(up))
        .and_then(|up| {
            Some(UpstreamServer {
                node: up.node.clone(),
                host_port: up.container.as_ref()?.host_port,
            })
        });
    change(
        action,
        reason,
        details,
        Operation::Reconfigure {
            spec,
            restart,
            reset_altered,
            catch_up_with,
        },
    )
}

fn replication_user(desired: &State, upstream: &str) -> String {
    desired
        .servers
        .get(upstream)
        .and_then(|s| s.replication_roles.iter().next().cloned())
        .unwrap_or_default()
}

fn role_text(server: &Server) -> String {
    match server.role.upstream() {
        Some(up) => format!("replica of {up}"),
        None => "primary".into(),
    }
}

/// Settings whose line in postgresql.conf changes, and whether pg_hba.conf changes.
fn config_details(server: &Server, seen: &Server) -> Vec<Detail> {
    let Some(want) = &server.config else {
        return vec![];
    };
    let Some(have) = &seen.config else {
        return vec![
            Detail::new("postgresql.conf", None, Some("rendered".into())).effect(Effect::Rewrite),
        ];
    };
    let mut details = Vec::new();
    let before = parse_conf_settings(&have.postgresql_conf);
    let after = parse_conf_settings(&want.postgresql_conf);
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        let (b, a) = (before.get(name), after.get(name));
        if b != a {
            let note = classify(name, seen.live.as_ref());
            details.push(Detail::new(name.clone(), b.cloned(), a.cloned()).effect(note));
        }
    }
    if have.pg_hba_conf != want.pg_hba_conf {
        details.extend(hba_details(&have.pg_hba_conf, &want.pg_hba_conf));
    }
    if details.is_empty() && have != want {
        details.push(Detail::new("postgresql.conf", None, None).effect(Effect::Reload));
    }
    details
}

/// The pg_hba.conf rules that go and come, each as one detail, so the plan shows which
/// addresses a server stops or starts admitting; a file that differs only in its comments is
/// one detail without values. A reload takes them up.
fn hba_details(have: &str, want: &str) -> Vec<Detail> {
    let rules = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    };
    let (before, after) = (rules(have), rules(want));
    let gone = before
        .iter()
        .filter(|rule| !after.contains(rule))
        .map(|rule| Detail::new("pg_hba.conf", Some(rule.clone()), None));
    let come = after
        .iter()
        .filter(|rule| !before.contains(rule))
        .map(|rule| Detail::new("pg_hba.conf", None, Some(rule.clone())));
    let mut details: Vec<Detail> = gone.chain(come).collect();
    if details.is_empty() {
        details.push(Detail::new("pg_hba.conf", None, None));
    }
    details
        .into_iter()
        .map(|d| d.effect(Effect::Reload))
        .collect()
}

/// Settings the running server holds at another value than its file says: changed with
/// ALTER SYSTEM, or waiting for a restart.
fn live_drift(server: &Server, live: &Live) -> Vec<Detail> {
    let mut details = Vec::new();
    let want = server
        .config
        .as_ref()
        .map(|c| parse_conf_settings(&c.postgresql_conf))
        .unwrap_or_default();
    for (name, value) in &want {
        let Some(current) = live.settings.get(name) else {
            continue;
        };
        if current.pending_restart {
            details.push(
                Detail::new(name.clone(), Some(shown(current)), Some(value.clone()))
                    .effect(Effect::Restart),
            );
        } else if !same_value(value, current) && !live.altered.contains(name) {
            let note = classify(name, Some(live));
            details.push(
                Detail::new(name.clone(), Some(shown(current)), Some(value.clone())).effect(note),
            );
        }
    }
    for name in &live.altered {
        let before = live.settings.get(name).map(shown);
        let after = want.get(name).cloned().or(Some("(default)".into()));
        let restart = classify(name, Some(live)).needs_restart();
        details.push(
            Detail::new(name.clone(), before, after).effect(Effect::ResetAltered { restart }),
        );
    }
    details
}

/// A live value as a person would write it: `16384` in 8kB pages is `128MB`.
fn shown(setting: &crate::model::LiveSetting) -> String {
    let Some(unit) = setting.unit.as_deref().filter(|u| !u.is_empty()) else {
        return setting.value.clone();
    };
    let scale = unit
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse::<u64>()
        .unwrap_or(1);
    let base = unit.trim_start_matches(|c: char| c.is_ascii_digit());
    match (setting.value.parse::<u64>(), base) {
        (Ok(n), "kB") if (n * scale) % 1024 == 0 && n > 0 => format!("{}MB", n * scale / 1024),
        (Ok(n), _) => format!("{}{base}", n * scale),
        _ => setting.value.clone(),
    }
}

/// `restart` for settings PostgreSQL reads only at start (context `postmaster`), else `reload`.
/// Unknown to the server (not running yet): the start picks the file up anyway.
fn classify(name: &str, live: Option<&Live>) -> Effect {
    match live.and_then(|l| l.settings.get(name)) {
        Some(s) if s.needs_restart() => Effect::Restart,
        _ => Effect::Reload,
    }
}

fn role_changes(server: &Server, seen: Option<&Server>) -> Vec<Change> {
    let Some(container) = &server.container else {
        return vec![];
    };
    let have = seen
        .map(|s| s.replication_roles.clone())
        .unwrap_or_default();
    server
        .replication_roles
        .difference(&have)
        .map(|role| Change {
            address: Address::Role {
                node: server.node.clone(),
                role: role.clone(),
            },
            action: Action::Create,
            reason: match seen.and_then(|s| s.live.as_ref()) {
                Some(_) => format!(
                    "replication role {role} does not exist on {}, or cannot read the files \
                     pg_rewind needs",
                    server.node
                ),
                None => format!(
                    "{} does not answer yet: role {role} is ensured once it does",
                    server.node
                ),
            },
            details: vec![Detail::new(
                "attributes",
                None,
                Some(
                    "LOGIN REPLICATION; EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file \
                     (for pg_rewind)"
                        .into(),
                ),
            )],
            after: vec![node_address(&server.node)],
            operation: Operation::EnsureReplicationRole {
                node: server.node.clone(),
                host_port: container.host_port,
                role: role.clone(),
            },
        })
        .collect()
}

fn slot_changes(server: &Server, seen: Option<&Server>) -> Vec<Change> {
    let have = seen.map(|s| s.slots.clone()).unwrap_or_default();
    let port = server
        .container
        .as_ref()
        .or(seen.and_then(|s| s.container.as_ref()))
        .map(|c| c.host_port);
    let Some(host_port) = port else { return vec![] };
    let node = &server.node;
    let create = server.slots.difference(&have).map(|slot| Change {
        address: Address::Slot {
            node: node.clone(),
            slot: slot.clone(),
        },
        action: Action::Create,
        reason: match seen.and_then(|s| s.live.as_ref()) {
            Some(_) => format!("physical replication slot {slot} does not exist on {node}"),
            None => format!("{node} does not answer yet: slot {slot} is ensured once it does"),
        },
        details: vec![],
        after: vec![node_address(node)],
        operation: Operation::CreateSlot {
            node: node.clone(),
            host_port,
            slot: slot.clone(),
        },
    });
    let drop = have.difference(&server.slots).map(|slot| Change {
        address: Address::Slot {
            node: node.clone(),
            slot: slot.clone(),
        },
        action: Action::Delete,
        reason: format!("no replica uses slot {slot} any more; a kept slot would hold WAL forever"),
        details: vec![],
        after: vec![node_address(&slot_owner(slot))],
        operation: Operation::DropSlot {
            node: node.clone(),
            host_port,
            slot: slot.clone(),
        },
    });
    create.chain(drop).collect()
}

/// The replica node a managed slot belongs to (best effort: `-` and `_` are not told apart).
fn slot_owner(slot: &str) -> String {
    slot.strip_prefix(model::SLOT_PREFIX)
        .unwrap_or(slot)
        .replace('_', "-")
}
