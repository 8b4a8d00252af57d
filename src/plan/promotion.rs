//! Promotions: a server the topology declares a primary that runs as a replica (or is still in
//! recovery) becomes its cluster's primary. With its old primary running, that is a
//! switchover: no acknowledged write is lost, since apply stops the old primary cleanly and
//! promotes only once the replica replayed past its last checkpoint. With the old primary
//! stopped cleanly, the same proof comes from its `pg_control`. Otherwise (its data gone, a
//! crash, a server that does not answer) the promotion may lose what only the old primary
//! held: the change is marked as losing data, and says where that data still is.

use crate::desired::Desired;
use crate::model::{Role, Server};
use crate::observed::Observed;
use crate::pg::control::format_lsn;
use crate::status::parse_lsn;
use crate::templates::SYNCHRONOUS_MARK;

use super::diff::{server_prerequisites, server_spec};
use super::{Action, Address, Change, Detail, Effect, OldPrimary, Operation, PlanError};

/// Turn the change of each server to promote into its promotion, and order what depends on it.
/// What the coordinator names after the promoted node follows in the round after it (see
/// `movement::Nodes::same_rows` and `renames`).
pub fn promotions(
    desired: &Desired,
    observed: &Observed,
    changes: &mut Vec<Change>,
) -> Result<(), PlanError> {
    for server in desired.state.servers.values() {
        if server.role != Role::Primary {
            continue;
        }
        let missing;
        let seen = match observed
            .state
            .servers
            .get(&server.node)
            .filter(|s| s.container.is_some())
        {
            Some(seen) => seen,
            None => match cut_off(desired, observed, server) {
                Some(placeholder) => {
                    missing = placeholder;
                    &missing
                }
                None => continue,
            },
        };
        // A container made for the promotion but stopped before it (an apply cut off) holds
        // a standby's data: its pg_control says so.
        let in_recovery = seen.live.as_ref().is_some_and(|l| l.in_recovery)
            || seen.container.as_ref().is_some_and(|c| !c.running)
                && seen.ended.is_some_and(|e| e.in_recovery);
        let was_replica_of = seen.role.upstream();
        if was_replica_of.is_none() && !in_recovery {
            continue;
        }
        let old_node = was_replica_of.map(str::to_owned).or_else(|| {
            observed
                .state
                .servers
                .values()
                .find(|other| {
                    other.node != server.node
                        && other.role == Role::Primary
                        && desired
                            .state
                            .servers
                            .get(&other.node)
                            .is_none_or(|d| d.role.upstream() == Some(&server.node))
                })
                .map(|other| other.node.clone())
        });
        let old = old_node
            .as_deref()
            .and_then(|node| observed.state.servers.get(node))
            .filter(|old| old.container.is_some());
        let promotion = promotion(desired, observed, server, seen, old_node.as_deref(), old);
        let Some(spec) = server_spec(&desired.state, server) else {
            continue;
        };
        let address = Address::node(&server.node);
        let after = server_prerequisites(&desired.state, server, &spec);
        changes.retain(|c| c.address != address);
        changes.push(Change {
            address: address.clone(),
            action: Action::Promote,
            reason: promotion.reason,
            details: promotion.details,
            after,
            operation: Operation::PromoteServer {
                spec,
                // Its own when it can be read; a container made but never given its files (an
                // apply cut off) gets the one dbtopo renders for it as that standby. Only while
                // the old primary runs: a standby whose primary's name no longer resolves can
                // hold its promotion for seconds in the name lookup.
                standby_conf: seen
                    .config
                    .as_ref()
                    .map(|c| c.postgresql_conf.clone())
                    .or_else(|| {
                        old_node
                            .as_ref()
                            .and_then(|o| server.standby_confs.get(o).cloned())
                    })
                    .filter(|_| {
                        old.is_some_and(|o| o.container.as_ref().is_some_and(|c| c.running))
                    }),
                old_primary: old.map(|old| OldPrimary {
                    node: old.node.clone(),
                    container: old
                        .container
                        .as_ref()
                        .map(|c| c.name.clone())
                        .unwrap_or_default(),
                    running: old.container.as_ref().is_some_and(|c| c.running),
                    host_port: old.container.as_ref().map_or(0, |c| c.host_port),
                }),
                unverified: promotion.unverified,
            },
        });
        // The old primary is stopped by the promotion: whatever else happens to it comes after.
        if let Some(old_node) = &old_node {
            for change in changes.iter_mut() {
                let on_old = match &change.address {
                    Address::Node(node) => node == old_node,
                    Address::Slot { node, .. } | Address::Role { node, .. } => node == old_node,
                    _ => false,
                };
                if on_old && !change.after.contains(&address) {
                    change.after.push(address.clone());
                }
                // A slot dropped on the old primary waits until it runs again, as a replica.
                if matches!(&change.address, Address::Slot { node, .. } if node == old_node)
                    && change.action == Action::Delete
                {
                    change.after.push(Address::node(old_node));
                }
            }
        }
    }
    Ok(())
}

/// A promotion cut off between the removal of the replica's container and the making of its
/// new one: no container, its volume (a standby's data), and its old primary still running as
/// the primary with the topology making it this server's replica. Made as a fresh primary it
/// would start in recovery beside that primary; it is promoted instead. The server as it was,
/// a replica of the old primary, stands in for the missing observation.
fn cut_off(desired: &Desired, observed: &Observed, server: &Server) -> Option<Server> {
    if !observed.state.volumes.contains(&server.node) {
        return None;
    }
    let old = observed.state.servers.values().find(|other| {
        other.role == Role::Primary
            && other.container.as_ref().is_some_and(|c| c.running)
            && desired
                .state
                .servers
                .get(&other.node)
                .is_some_and(|d| d.role.upstream() == Some(&server.node))
    })?;
    let mut placeholder = server.clone();
    placeholder.role = Role::Replica {
        upstream: old.node.clone(),
    };
    placeholder.container = None;
    placeholder.config = None;
    placeholder.live = None;
    placeholder.ended = None;
    Some(placeholder)
}

/// A transaction dbtopo left prepared on a primary about to be fenced is finished there
/// first: once fenced that server runs as a replica, where COMMIT PREPARED cannot run. One
/// still undecided is carried by the promotion (it is in the WAL the replica replays) and
/// finished on the new primary by a later apply.
pub fn finish_before_fencing(changes: &mut [Change]) {
    let fenced: Vec<(Address, String)> = changes
        .iter()
        .filter_map(|c| match &c.operation {
            Operation::PromoteServer {
                old_primary: Some(old),
                ..
            } if old.running => Some((c.address.clone(), old.node.clone())),
            _ => None,
        })
        .collect();
    for (promotion, node) in fenced {
        let finishes: Vec<Address> = changes
            .iter()
            .filter(|c| matches!(&c.address, Address::PreparedXact { node: n, .. } if *n == node))
            .map(|c| c.address.clone())
            .collect();
        let old = Address::node(&node);
        for change in changes.iter_mut() {
            if finishes.contains(&change.address) {
                change.after.retain(|a| *a != old && *a != promotion);
            } else if change.address == promotion {
                change.after.extend(finishes.iter().cloned());
            }
        }
    }
}

struct Promotion {
    reason: String,
    details: Vec<Detail>,
    unverified: bool,
}

fn promotion(
    desired: &Desired,
    observed: &Observed,
    server: &Server,
    seen: &Server,
    old_node: Option<&str>,
    old: Option<&Server>,
) -> Promotion {
    let node = &server.node;
    let replayed = seen.live.as_ref().and_then(|l| l.lsn.clone());
    let replayed_text = replayed
        .as_deref()
        .map_or("an unknown position".to_owned(), |lsn| format!("LSN {lsn}"));
    let rejoin = |old: &str| match desired.state.servers.get(old).map(|d| &d.role) {
        Some(Role::Replica { upstream }) if upstream == node => format!(
            "{old} rejoins as a replica of {node} (pg_rewind; a fresh copy if rewind cannot work, \
             its old data kept beside it)"
        ),
        Some(_) => format!("{old} stays stopped until its own change"),
        None => format!("{old} leaves the topology"),
    };
    let role_detail = Detail::new(
        "role",
        Some(match seen.role.upstream() {
            Some(up) => format!("replica of {up}"),
            None => "primary still in recovery".to_owned(),
        }),
        Some("primary".to_owned()),
    );
    let Some(old_node) = old_node else {
        return lossy(
            node,
            role_detail,
            format!(
                "failover: {node} becomes a primary; no old primary of its cluster is left, so \
                 what was written after {node}'s {replayed_text} cannot be compared"
            ),
            "nowhere".to_owned(),
        );
    };
    let volume = crate::model::volume_name(&desired.state.env, old_node);
    let data_kept = if observed.state.volumes.contains(old_node) {
        format!("in volume {volume}, kept as it is")
    } else {
        "nowhere: its volume is gone".to_owned()
    };
    let Some(old) = old else {
        return unproven(
            seen,
            old_node,
            role_detail,
            format!(
                "failover: {node} becomes the primary in place of {old_node}, whose container is \
                 gone; {node} has replayed up to {replayed_text}, and what {old_node} wrote \
                 after that is lost. {}",
                rejoin(old_node)
            ),
            data_kept,
        );
    };
    let old_running = old.container.as_ref().is_some_and(|c| c.running);
    // A primary that runs is stopped cleanly by apply, which then has its proof (its last
    // checkpoint), also when it did not answer the observation (it was starting, or busy).
    if old_running {
        return Promotion {
            reason: format!(
                "switchover: {node} becomes the primary, {old_node} its replica. Writes pause \
                 while {old_node} stops cleanly and {node} replays the rest of its WAL (apply \
                 checks {node} got past {old_node}'s last checkpoint, or promotes nothing and \
                 starts {old_node} again); then {}",
                rejoin(old_node)
            ),
            details: vec![
                role_detail,
                Detail::new(
                    "old primary",
                    Some(format!("{old_node} (running)")),
                    Some(format!("{old_node} stopped cleanly first")),
                ),
            ],
            unverified: false,
        };
    }
    let handed_over = match (old.ended, replayed.as_deref().and_then(parse_lsn)) {
        (Some(ended), Some(replayed)) => ended.clean && replayed > ended.checkpoint,
        _ => false,
    };
    if !old_running && handed_over {
        let checkpoint = old
            .ended
            .map(|e| format_lsn(e.checkpoint))
            .unwrap_or_default();
        return Promotion {
            reason: format!(
                "{node} becomes the primary in place of {old_node}, which stopped cleanly at \
                 LSN {checkpoint}: {node} has replayed past it ({replayed_text}), so nothing is \
                 lost; then {}",
                rejoin(old_node)
            ),
            details: vec![role_detail],
            unverified: false,
        };
    }
    let why = {
        match old.ended {
            Some(ended) if ended.clean => format!(
                "{old_node} stopped cleanly at LSN {}, and {node} has replayed only up to \
                 {replayed_text}",
                format_lsn(ended.checkpoint)
            ),
            Some(_) => format!("{old_node} did not shut down cleanly (crashed or killed)"),
            None => format!("{old_node}'s data cannot be read"),
        }
    };
    unproven(
        seen,
        old_node,
        role_detail,
        format!(
            "failover: {node} becomes the primary in place of {old_node}: {why}, so what \
             {old_node} wrote after {node}'s {replayed_text} may be lost ({old_node}'s container \
             is stopped first, so it takes no more writes; starting it again lets it hand over \
             cleanly instead). {}",
            rejoin(old_node)
        ),
        data_kept,
    )
}

/// Whether the replica's own configuration records that `old`'s commits waited for it.
fn was_synchronous_of(seen: &Server, old: &str) -> bool {
    seen.config.as_ref().is_some_and(|c| {
        c.postgresql_conf
            .contains(&format!("{SYNCHRONOUS_MARK} of {old}:"))
    })
}

/// A promotion whose proof is missing: it loses data, unless the replica was synchronous.
fn unproven(
    seen: &Server,
    old_node: &str,
    role_detail: Detail,
    reason: String,
    data_kept: String,
) -> Promotion {
    let node = &seen.node;
    if was_synchronous_of(seen, old_node) {
        return Promotion {
            reason: format!(
                "{reason} But {node} is a synchronous standby of {old_node}: {old_node} reported \
                 no commit done before {node} had it, so no acknowledged commit is lost."
            ),
            details: vec![role_detail],
            unverified: true,
        };
    }
    lossy(node, role_detail, reason, data_kept)
}

fn lossy(node: &str, role_detail: Detail, reason: String, data_kept: String) -> Promotion {
    Promotion {
        reason,
        details: vec![
            role_detail,
            Detail::new(
                "data",
                Some(format!("what only the old primary held: {data_kept}")),
                Some(format!("{node}'s copy")),
            )
            .effect(Effect::LosesData),
        ],
        unverified: true,
    }
}
