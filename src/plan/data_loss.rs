//! Servers made again on an empty volume although their data existed: the plan marks those
//! changes as losing data (apply refuses them without `--allow-destructive`) and says where
//! the data still is; a replica whose upstream is another cluster than the one it copies is
//! drift, copied anew from its upstream only when the loss is accepted.

use crate::desired::Desired;
use crate::fragments::{coordinator, placement};
use crate::model::{Live, Role, Server};
use crate::observed::{CoordinatorState, Observed, SubscriptionState};

use super::diff::{server_prerequisites, server_spec};
use super::{Action, Address, Change, Detail, Effect, Operation};

/// Mark the new primaries whose data existed, and plan the rebuild of the replicas that hold
/// another cluster than their upstream (or will, once their upstream is made again).
pub fn guard(desired: &Desired, observed: &Observed, changes: &mut Vec<Change>) {
    let mut remade = Vec::new();
    for change in changes.iter_mut() {
        let Operation::RunServer { spec, .. } = &change.operation else {
            continue;
        };
        if change.action != Action::Create
            || spec.role != Role::Primary
            || observed.state.volumes.contains(&spec.node)
        {
            continue;
        }
        let node = spec.node.clone();
        let evidence = evidence(desired, observed, &node);
        if evidence.is_empty() {
            continue;
        }
        change.reason = format!(
            "its data volume is gone, but {node} held data: {}",
            evidence.join("; ")
        );
        if let Some(edit) = promotion_advice(desired, observed, &node) {
            change.reason.push_str(&format!(". {edit}"));
        }
        change.details.push(
            Detail::new(
                "data",
                Some(format!(
                    "{node} is made again, empty ({})",
                    evidence.join("; ")
                )),
                Some("a new, empty cluster".into()),
            )
            .effect(Effect::LosesData),
        );
        remade.push(node);
    }
    for server in desired.state.servers.values() {
        let Some(upstream) = server.role.upstream() else {
            continue;
        };
        let live = |node: &str| observed.state.servers.get(node)?.live.as_ref();
        let holds = live(&server.node).and_then(|l| l.system_identifier.clone());
        let reason = if remade.iter().any(|n| n == upstream) {
            observed.state.volumes.contains(&server.node).then(|| {
                format!(
                    "its upstream {upstream} is made again as a new cluster: {} copies it anew",
                    server.node
                )
            })
        } else {
            let want = live(upstream).and_then(|l| l.system_identifier.clone());
            match (&holds, &want) {
                (Some(holds), Some(want)) if holds != want => Some(format!(
                    "it holds cluster {holds}, but its upstream {upstream} is cluster {want}: \
                     it cannot stream and is copied anew from {upstream}"
                )),
                _ => None,
            }
        };
        if let Some(reason) = reason {
            rebuild(desired, server, &reason, live(&server.node), changes);
        }
    }
}

/// The edit that keeps a lost primary's data: its replica that replayed furthest, made the
/// node (docs/switchover.md).
fn promotion_advice(desired: &Desired, observed: &Observed, node: &str) -> Option<String> {
    let (replica, lsn) = desired
        .state
        .servers
        .values()
        .filter(|r| r.role.upstream() == Some(node))
        .filter_map(|r| {
            let live = observed.state.servers.get(&r.node)?.live.as_ref()?;
            let lsn = live.lsn.clone()?;
            Some((r.node.clone(), crate::status::parse_lsn(&lsn)?, lsn))
        })
        .max_by_key(|(_, position, _)| *position)
        .map(|(replica, _, lsn)| (replica, lsn))?;
    Some(format!(
        "To keep it instead, promote {replica}, the replica that has replayed furthest (up to \
         LSN {lsn}): in the topology make {replica} the node and {node} its replica (each keeps \
         its port; the schema's and fragments' `{node}` become `{replica}`), then plan again \
         (docs/switchover.md)"
    ))
}

/// What shows that `node` held data before: who still has it, or points at it.
fn evidence(desired: &Desired, observed: &Observed, node: &str) -> Vec<String> {
    let mut found = Vec::new();
    for replica in desired.state.servers.values() {
        if replica.role.upstream() != Some(node) || !observed.state.volumes.contains(&replica.node)
        {
            continue;
        }
        let live = observed
            .state
            .servers
            .get(&replica.node)
            .and_then(|s| s.live.as_ref());
        found.push(format!(
            "replica {} still holds its data{}",
            replica.node,
            held(live, false)
        ));
    }
    if let CoordinatorState::Observed(objects) = &observed.coordinator {
        let server = placement::server_name(node);
        if objects.servers.contains_key(&server) {
            found.push(format!(
                "the coordinator's foreign server {server} points at the fragments it held"
            ));
        }
        if objects
            .publications
            .contains_key(&coordinator::reference_name(node))
        {
            found.push("the coordinator publishes reference tables to it".to_owned());
        }
    }
    let coordinates = desired
        .schema
        .as_ref()
        .and_then(|s| s.fragments.as_ref())
        .is_some_and(|f| f.coordinator == node);
    if coordinates {
        for (other, state) in &observed.subscriptions {
            if matches!(state, SubscriptionState::Observed(Some(_))) {
                found.push(format!("node {other} subscribes to its reference tables"));
            }
        }
    }
    found
}

/// ` (cluster 7445…, timeline 1, up to LSN 0/3A000000)`, as far as the server said; the
/// cluster only `with_cluster`.
fn held(live: Option<&Live>, with_cluster: bool) -> String {
    let Some(live) = live else {
        return String::new();
    };
    let mut parts = Vec::new();
    if with_cluster && let Some(id) = &live.system_identifier {
        parts.push(format!("cluster {id}"));
    }
    if let Some(timeline) = live.timeline {
        parts.push(format!("timeline {timeline}"));
    }
    if let Some(lsn) = &live.lsn {
        parts.push(format!("up to LSN {lsn}"));
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!(" ({})", parts.join(", ")),
    }
}

/// Replace whatever the plan does to `server` with making it again from its upstream.
fn rebuild(
    desired: &Desired,
    server: &Server,
    reason: &str,
    live: Option<&Live>,
    changes: &mut Vec<Change>,
) {
    let Some(spec) = server_spec(&desired.state, server) else {
        return;
    };
    let address = Address::node(&server.node);
    let volume = Address::Volume(server.node.clone());
    changes.retain(|c| c.address != address && c.address != volume);
    let holds = held(live, true);
    changes.push(Change {
        address,
        action: Action::Replace,
        reason: reason.to_owned(),
        details: vec![
            Detail::new(
                "data",
                Some(format!("{} discards what it holds{holds}", server.node)),
                Some(format!(
                    "a copy of {}",
                    server.role.upstream().unwrap_or("")
                )),
            )
            .effect(Effect::LosesData),
        ],
        after: server_prerequisites(&desired.state, server, &spec),
        operation: Operation::RebuildServer { spec },
    });
}
