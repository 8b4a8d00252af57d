//! Reference-copy subscriptions a node holds besides its own. A promoted replica holds, by
//! replication, the subscription its old primary made under that node's name; once it runs as
//! a primary that subscription's worker starts and applies the coordinator's changes to the
//! copies, beside the node's own subscription. It is detached and dropped first, and the
//! logical slot it leaves on its publisher goes with it.

use std::collections::BTreeMap;

use crate::desired::Desired;
use crate::observed::{CoordinatorState, LeftoverSubscription};

use super::diff::node_address;
use super::fragments::detach_and_drop;
use super::{Action, Address, Change, Deferral, Operation};
use crate::schema::ddl::quote;

/// Each leftover subscription's drop and its slot's, ordered before the node's own
/// subscription and the coordinator's publication of the same name.
pub fn subscriptions(
    desired: &Desired,
    leftovers: &BTreeMap<String, Vec<LeftoverSubscription>>,
    changes: &mut Vec<Change>,
) {
    let Some(database) = desired.schema.as_ref().map(|s| s.target.database.clone()) else {
        return;
    };
    for (node, found) in leftovers {
        if !desired.state.servers.contains_key(node) {
            continue;
        }
        for leftover in found {
            let address = Address::Subscription(leftover.name.clone());
            if changes.iter().any(|c| c.address == address) {
                continue;
            }
            changes.push(Change {
                address: address.clone(),
                action: Action::Delete,
                reason: format!(
                    "{node} holds subscription {} besides its own (made by the server it was \
                     promoted in place of): detached and dropped, so the copies are written \
                     once",
                    leftover.name
                ),
                details: Vec::new(),
                after: vec![node_address(node)],
                operation: Operation::RunSql {
                    node: node.clone(),
                    host_port: desired.host_port(node),
                    database: database.clone(),
                    statements: vec![detach_and_drop(&leftover.name)],
                    transactional: false,
                },
            });
            // Its slot on the coordinator is dropped as an orphan (see `orphan_slots`).
            if let Some(slot) = slot_drop(desired, node, leftover)
                .filter(|c| Some(node_of(&c.address)) != desired.coordinator())
            {
                changes.push(slot);
            }
            for change in changes.iter_mut() {
                let waits = match &change.address {
                    Address::Subscription(name) => *name != leftover.name,
                    Address::Publication(name) => *name == leftover.name,
                    _ => false,
                };
                if waits && !change.after.contains(&address) {
                    change.after.push(address.clone());
                }
            }
        }
    }
}

/// Every subscription the plan changes or defers.
fn subscription_addresses(changes: &[Change], deferred: &[Deferral]) -> Vec<Address> {
    changes
        .iter()
        .map(|c| &c.address)
        .chain(deferred.iter().map(|d| &d.address))
        .filter(|a| matches!(a, Address::Subscription(_)))
        .cloned()
        .collect()
}

/// A publication no node copies from any more goes after every subscription change: a
/// subscriber that still streams it (a server about to be promoted in its node's place, a
/// leftover subscription) is detached or made again first.
pub fn publications_last(changes: &mut [Change], deferred: &[Deferral]) {
    let subscriptions = subscription_addresses(changes, deferred);
    for change in changes.iter_mut() {
        if matches!(change.address, Address::Publication(_)) && change.action == Action::Delete {
            for address in &subscriptions {
                if !change.after.contains(address) {
                    change.after.push(address.clone());
                }
            }
        }
    }
}

fn node_of(address: &Address) -> &str {
    match address {
        Address::Slot { node, .. } => node,
        _ => "",
    }
}

/// The coordinator's `dbtopo_ref_*` logical slots no subscription uses: left by a subscription
/// dropped or detached before (a leftover one, one an apply was cut off after detaching), they
/// hold WAL forever, and one named as a subscription still to be made takes the name it needs.
/// Dropped after every subscription change, so nothing still streams from them.
pub fn orphan_slots(
    desired: &Desired,
    state: &CoordinatorState,
    changes: &mut Vec<Change>,
    deferred: &[Deferral],
) {
    let (CoordinatorState::Observed(found), Some(coordinator)) = (state, desired.coordinator())
    else {
        return;
    };
    let subscriptions = subscription_addresses(changes, deferred);
    for slot in &found.logical_slots {
        let subscription = Address::Subscription(slot.clone());
        let made = changes
            .iter()
            .find(|c| c.address == subscription)
            .map(|c| c.action);
        let wanted = desired.subscriptions().iter().any(|(_, o)| o.name == *slot);
        let reason = match made {
            _ if !wanted => "no subscription uses it any more: it would hold WAL forever",
            Some(Action::Create) => {
                "left by a subscription of the same name that is gone: the subscription made \
                 now needs the name"
            }
            _ => continue,
        };
        let address = Address::Slot {
            node: coordinator.to_owned(),
            slot: slot.clone(),
        };
        let mut after = vec![node_address(coordinator)];
        after.extend(
            subscriptions
                .iter()
                .filter(|a| **a != subscription || !wanted)
                .cloned(),
        );
        changes.retain(|c| c.address != address);
        changes.push(Change {
            address: address.clone(),
            action: Action::Delete,
            reason: reason.to_owned(),
            details: Vec::new(),
            after,
            operation: Operation::DropSlot {
                node: coordinator.to_owned(),
                host_port: desired.host_port(coordinator),
                slot: slot.clone(),
            },
        });
        if wanted && let Some(made) = changes.iter_mut().find(|c| c.address == subscription) {
            made.after.push(address);
            // A subscription an interrupted apply's CREATE SUBSCRIPTION finished after the
            // observation would be dropped with its slot, which is gone by then: it is
            // detached from it first.
            if let Operation::RunSql { statements, .. } = &mut made.operation {
                let plain = format!("DROP SUBSCRIPTION IF EXISTS {};", quote(slot));
                for statement in statements.iter_mut() {
                    if *statement == plain {
                        *statement = detach_and_drop(slot);
                    }
                }
            }
        }
    }
}

/// The logical slot the leftover subscription kept on its publisher, dropped once the
/// subscription no longer uses it (on a publisher that runs as a replica now, once it does).
fn slot_drop(desired: &Desired, node: &str, leftover: &LeftoverSubscription) -> Option<Change> {
    let publisher = leftover
        .publisher_host
        .as_deref()?
        .strip_prefix(&format!("{}-", desired.env()))?;
    let server = desired.state.servers.get(publisher)?;
    let host_port = server.container.as_ref()?.host_port;
    Some(Change {
        address: Address::Slot {
            node: publisher.to_owned(),
            slot: leftover.name.clone(),
        },
        action: Action::Delete,
        reason: format!(
            "the logical slot of {node}'s leftover subscription {}: it would hold WAL on \
             {publisher} forever",
            leftover.name
        ),
        details: Vec::new(),
        after: vec![
            node_address(publisher),
            Address::Subscription(leftover.name.clone()),
        ],
        operation: Operation::DropSlot {
            node: publisher.to_owned(),
            host_port,
            slot: leftover.name.clone(),
        },
    })
}
