//! `plan(&Desired, &Observed)`: the whole plan from data. Pure: no I/O, no async; each part
//! (servers, schema, fragments, reference copies, prepared transactions, MongoDB) is diffed
//! here and the parts are tied together by their prerequisites.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::{Desired, DesiredSchema};
use crate::fragments::placement;
use crate::model;
use crate::observed::{CoordinatorState, Observed, SetObservation, SubscriptionState};
use crate::plan::prepared::Resolution;
use crate::schema::NodeSchema;

use super::{
    Action, Address, Change, DeferReason, Deferral, Operation, Plan, PlanError, fragments,
    movement, prepared, schema,
};

/// The plan that brings `observed` to `desired`.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<Plan, PlanError> {
    if !observed.foreign.is_empty() {
        return Err(PlanError::Foreign(observed.foreign.clone()));
    }
    if !observed.ports_taken.is_empty() {
        return Err(PlanError::PortsTaken(observed.ports_taken.clone()));
    }
    let refused = refused_settings(desired, observed);
    if !refused.is_empty() {
        return Err(PlanError::BadSettings(refused));
    }
    let mut changes = super::diff(&desired.state, &observed.state);
    super::promotion::promotions(desired, observed, &mut changes)?;
    super::data_loss::guard(desired, observed, &mut changes);
    let mut deferred = Vec::new();
    if let Some(schema) = &desired.schema {
        let mut found = coordinator_views(schema, &observed.schemas);
        // Fragments first: the tables of parts that move are held back from the schema diff
        // until their rows are safe elsewhere.
        let fragment_changes = match &schema.fragments {
            Some(_) => fragment_changes(desired, schema, &observed.coordinator, &mut found)?,
            None => Vec::new(),
        };
        let renames = match &schema.fragments {
            Some(fragments) => super::renames::column_groups(desired, fragments, &mut found),
            None => Vec::new(),
        };
        let targets = schema.node_targets();
        let inputs: Vec<schema::NodeInput<'_>> = targets
            .iter()
            .filter_map(|target| {
                Some(schema::NodeInput {
                    node: &target.node,
                    host_port: desired.host_port(&target.node),
                    observed: found.get(&target.node)?,
                    fresh: &target.fresh,
                    renames: match schema.fragments.as_ref() {
                        Some(f) if f.coordinator == target.node => &renames,
                        _ => &[],
                    },
                })
            })
            .collect();
        let (schema_changes, waiting) = schema::changes(&schema.target, &inputs);
        changes.extend(schema_changes);
        changes.extend(fragment_changes);
        deferred = waiting;
        deferred.extend(unobserved_coordinator_objects(
            schema,
            &observed.coordinator,
        ));
        let (subscriptions, waiting) =
            subscription_changes(desired, schema, &observed.subscriptions);
        changes.extend(subscriptions);
        super::leftovers::subscriptions(desired, &observed.leftover_subscriptions, &mut changes);
        deferred.extend(waiting);
        super::leftovers::publications_last(&mut changes, &deferred);
        super::leftovers::orphan_slots(desired, &observed.coordinator, &mut changes, &deferred);
    }
    let in_doubt: Vec<_> = observed
        .prepared
        .iter()
        .map(|found| {
            let resolution = match &observed.decisions {
                None => Resolution::Wait,
                Some(decisions) => {
                    let id = model::parse_gid(&found.gid).map(|(id, _)| id);
                    prepared::resolve(
                        id.and_then(|id| decisions.get(id)).map(String::as_str),
                        found.age,
                    )
                }
            };
            (found.clone(), resolution, desired.host_port(&found.node))
        })
        .collect();
    let (finish, in_doubt_notices, held) = prepared::changes(&in_doubt, &mut changes);
    changes.extend(finish);
    super::promotion::finish_before_fencing(&mut changes);
    changes.extend(decisions_done(desired, observed, &in_doubt));
    deferred.extend(held);
    let (mongo_changes, mongo_warnings, deferred_mongo) =
        mongo_changes(desired, observed, &changes);
    changes.extend(mongo_changes);
    deferred.extend(deferred_mongo);
    schema_after_roles(&mut changes);
    let known = known_addresses(desired, observed);
    let (changes, deferred) = super::prerequisites::settle(changes, deferred, &known)?;
    let mut plan = Plan::new(desired.state.env.clone(), changes);
    plan.warnings = super::warnings(&desired.state, &observed.state);
    plan.warnings
        .extend(idle_subscriptions(&observed.subscriptions));
    plan.notices = in_doubt_notices;
    plan.warnings.extend(mongo_warnings);
    plan.deferred = deferred;
    Ok(plan)
}

/// A node's tables wait for its replication role: the role's grants on the functions pg_rewind
/// uses are made in `template1` too, which a database created while that runs would copy
/// without them (and `CREATE DATABASE` refuses while `template1` has a connection).
fn schema_after_roles(changes: &mut [Change]) {
    let roles: Vec<Address> = changes
        .iter()
        .filter(|c| matches!(c.address, Address::Role { .. }))
        .map(|c| c.address.clone())
        .collect();
    for change in changes.iter_mut() {
        let Address::Schema(node) = &change.address else {
            continue;
        };
        for role in &roles {
            if matches!(role, Address::Role { node: on, .. } if on == node)
                && !change.after.contains(role)
            {
                change.after.push(role.clone());
            }
        }
    }
}

/// The desired settings a server of the environment would refuse, judged by the `pg_settings`
/// of one that answers (all run the same image), else by the catalogue dbtopo carries for the
/// image's PostgreSQL; `shared_buffers` also against the machine's memory.
fn refused_settings(desired: &Desired, observed: &Observed) -> Vec<super::RefusedSetting> {
    let image = desired
        .state
        .servers
        .values()
        .find_map(|s| s.container.as_ref())
        .map(|c| c.image.as_str());
    let known = observed
        .state
        .servers
        .values()
        .filter_map(|s| s.live.as_ref())
        .map(|live| &live.settings)
        .find(|settings| settings.values().any(|s| s.accepts.is_some()))
        .or_else(|| image.and_then(super::settings::builtin_catalogue));
    let mut refused = Vec::new();
    for server in desired.state.servers.values() {
        for (name, value) in &server.settings {
            let why = known
                .and_then(|known| super::settings::refusal(name, value, known))
                .or_else(|| {
                    let memory = observed.state.memory?;
                    super::settings::beyond_memory(name, value, memory)
                });
            if let Some(why) = why {
                refused.push(super::RefusedSetting {
                    node: server.node.clone(),
                    name: name.clone(),
                    why,
                });
            }
        }
    }
    refused
}

/// Enabled subscriptions whose worker does not run: their copies do not follow (yet).
fn idle_subscriptions(observed: &BTreeMap<String, SubscriptionState>) -> Vec<String> {
    observed
        .iter()
        .filter_map(|(node, state)| match state {
            SubscriptionState::Observed(Some(found)) if found.enabled && !found.worker => {
                Some(format!(
                    "the subscription of node {node} has no worker running: its reference \
                     copies do not follow the coordinator yet"
                ))
            }
            _ => None,
        })
        .collect()
}

/// The decision records whose transactions this plan finishes everywhere: deleted after the
/// last participant, so the table keeps only what is still in doubt.
fn decisions_done(
    desired: &Desired,
    observed: &Observed,
    in_doubt: &[(crate::observed::Prepared, Resolution, u16)],
) -> Vec<Change> {
    let (Some(decisions), Some(coordinator), Some(schema)) =
        (&observed.decisions, desired.coordinator(), &desired.schema)
    else {
        return Vec::new();
    };
    let mut by_id: BTreeMap<&str, Vec<(&crate::observed::Prepared, Resolution)>> = BTreeMap::new();
    for (found, resolution, _) in in_doubt {
        if let Some((id, _)) = model::parse_gid(&found.gid) {
            by_id.entry(id).or_default().push((found, *resolution));
        }
    }
    by_id
        .into_iter()
        .filter(|(id, participants)| {
            decisions.contains_key(*id) && participants.iter().all(|(_, r)| *r != Resolution::Wait)
        })
        .map(|(id, participants)| Change {
            address: Address::TxnDecision(id.to_owned()),
            action: Action::Delete,
            reason: "every participant is finished by this plan: the record is no longer needed"
                .to_owned(),
            details: Vec::new(),
            // On the coordinator once it answers: not while a promotion makes its container.
            after: participants
                .iter()
                .map(|(found, _)| prepared::address(found))
                .chain([super::diff::node_address(coordinator)])
                .collect(),
            operation: Operation::RunSql {
                node: coordinator.to_owned(),
                host_port: desired.host_port(coordinator),
                database: schema.target.database.clone(),
                statements: vec![format!(
                    "DELETE FROM dbtopo.txn_decisions WHERE gid = '{}';",
                    id.replace('\'', "''")
                )],
                transactional: true,
            },
        })
        .collect()
}

/// The coordinator's fragment objects, while the coordinator cannot be asked.
fn unobserved_coordinator_objects(
    schema: &DesiredSchema,
    state: &CoordinatorState,
) -> Vec<Deferral> {
    let Some(fragments) = &schema.fragments else {
        return Vec::new();
    };
    if *state != CoordinatorState::Unknown {
        return Vec::new();
    }
    fragments
        .objects
        .iter()
        .map(|object| Deferral {
            address: fragments::address(object),
            reason: DeferReason::NotAnswering {
                node: fragments.coordinator.clone(),
            },
        })
        .collect()
}

/// Every resource the plan may wait for without changing it: all that the topology asks for
/// and all that was found. One of them with no change is in place (or deferred).
fn known_addresses(desired: &Desired, observed: &Observed) -> BTreeSet<Address> {
    let mut known = BTreeSet::new();
    for state in [&desired.state, &observed.state] {
        known.extend(state.images.keys().cloned().map(Address::Image));
        known.extend(state.network.iter().cloned().map(Address::Network));
        known.extend(state.volumes.iter().cloned().map(Address::Volume));
        for server in state.servers.values() {
            known.insert(Address::node(&server.node));
            known.extend(server.replication_roles.iter().map(|role| Address::Role {
                node: server.node.clone(),
                role: role.clone(),
            }));
            known.extend(server.slots.iter().map(|slot| Address::Slot {
                node: server.node.clone(),
                slot: slot.clone(),
            }));
        }
    }
    if let Some(schema) = &desired.schema {
        known.extend(
            schema
                .node_targets()
                .iter()
                .map(|t| Address::schema(&t.node)),
        );
        if let Some(fragments) = &schema.fragments {
            known.extend(fragments.objects.iter().map(fragments::address));
        }
        known.extend(
            desired
                .subscriptions()
                .iter()
                .map(|(_, object)| fragments::address(object)),
        );
    }
    known.extend(observed.prepared.iter().map(prepared::address));
    if !desired.mongo.is_empty() {
        known.insert(Address::Image(desired.mongo_image.clone()));
    }
    for wanted in &desired.mongo {
        known.insert(Address::ReplicaSet(wanted.set.name.clone()));
        known.extend(
            wanted
                .set
                .members
                .iter()
                .map(|m| Address::MongoMember(m.name.clone())),
        );
        known.extend(wanted.collections.iter().map(|c| Address::MongoCollection {
            set: wanted.set.name.clone(),
            collection: c.name.clone(),
        }));
    }
    known
}

/// Each node's observed schema as the schema diff compares it: on the coordinator, without
/// what the coordinator objects manage.
fn coordinator_views(
    schema: &DesiredSchema,
    observed: &BTreeMap<String, NodeSchema>,
) -> BTreeMap<String, NodeSchema> {
    let coordinators: BTreeSet<&str> = match &schema.fragments {
        Some(_) => schema.target.nodes.iter().map(String::as_str).collect(),
        None => BTreeSet::new(),
    };
    observed
        .iter()
        .map(|(node, state)| {
            let state = match state {
                NodeSchema::Observed(found) if coordinators.contains(node.as_str()) => {
                    let mut found = found.clone();
                    found.current = schema.coordinator_current(&found.current);
                    found.desired = schema.coordinator_current(&found.desired);
                    NodeSchema::Observed(found)
                }
                other => other.clone(),
            };
            (node.clone(), state)
        })
        .collect()
}

/// The coordinator's fragment objects, the movements of parts that change node, and the
/// cleanup of their old copies. Holds the moving tables back from `found`.
fn fragment_changes(
    desired: &Desired,
    schema: &DesiredSchema,
    state: &CoordinatorState,
    found: &mut BTreeMap<String, NodeSchema>,
) -> Result<Vec<Change>, PlanError> {
    let Some(fragments) = &schema.fragments else {
        return Ok(Vec::new());
    };
    let nodes = movement::Nodes {
        coordinator: &fragments.coordinator,
        by_server: desired
            .state
            .servers
            .keys()
            .map(|node| (placement::server_name(node), node.clone()))
            .collect(),
        ports: desired
            .state
            .servers
            .keys()
            .map(|node| (node.clone(), desired.host_port(node)))
            .collect(),
        database: &schema.target.database,
        wanted: fragments
            .placement
            .fragment_nodes
            .iter()
            .map(|(node, s)| (node.clone(), s.tables.keys().cloned().collect()))
            .collect(),
        upstream: desired
            .state
            .servers
            .values()
            .filter_map(|s| Some((s.node.clone(), s.role.upstream()?.to_owned())))
            .collect(),
    };
    let observed_objects = match state {
        CoordinatorState::Observed(f) => Some(f),
        _ => None,
    };
    let mut movements = BTreeMap::new();
    let mut planned = Vec::new();
    for object in &fragments.objects {
        if let Some(found) = observed_objects
            && let Some(m) = movement::movement(object, found, &nodes)
                .map_err(|r| PlanError::Refused(r.to_string()))?
        {
            planned.push((fragments::address(object), m.clone()));
            movements.insert(object.name.clone(), m);
        }
    }
    hold_back(
        found,
        &movement::held_tables(&planned, observed_objects, &nodes),
        &fragments.coordinator,
    );
    let cleanup = movement::cleanup(&planned, observed_objects, &nodes);
    let cleanup_addresses: Vec<Address> = cleanup.iter().map(|c| c.address.clone()).collect();
    let fragment_nodes: Vec<String> = fragments.placement.fragment_nodes.keys().cloned().collect();
    let mut changes = fragments::changes(&fragments::Input {
        objects: &fragments.objects,
        state,
        coordinator: &fragments.coordinator,
        host_port: desired.host_port(&fragments.coordinator),
        database: &schema.target.database,
        fragment_nodes: &fragment_nodes,
        movements: &movements,
        nodes: &nodes,
        cleanup: &cleanup_addresses,
    })
    .map_err(PlanError::Refused)?;
    changes.extend(cleanup);
    Ok(changes)
}

/// Leave the old copies of moving parts, and the coordinator's kept old parts, out of what
/// the schema diff sees, so it neither drops them nor counts them as changes.
fn hold_back(
    found: &mut BTreeMap<String, NodeSchema>,
    held: &BTreeMap<String, BTreeSet<String>>,
    coordinator: &str,
) {
    for (node, state) in found {
        let NodeSchema::Observed(observed) = state else {
            continue;
        };
        let held = held.get(node.as_str());
        let keep = |table: &str| {
            !(held.is_some_and(|h| h.contains(table))
                || (node == coordinator && table.starts_with(movement::MOVED_PREFIX)))
        };
        observed.current.tables.retain(|name, _| keep(name));
        observed
            .current
            .indexes
            .retain(|_, index| keep(&index.table));
    }
}

/// Each copying node's subscription to its reference tables.
fn subscription_changes(
    desired: &Desired,
    schema: &DesiredSchema,
    observed: &BTreeMap<String, SubscriptionState>,
) -> (Vec<Change>, Vec<Deferral>) {
    let Some(fragments) = &schema.fragments else {
        return Default::default();
    };
    let mut changes = Vec::new();
    let mut deferred = Vec::new();
    for (node, object) in desired.subscriptions() {
        let node = &node;
        let state = observed
            .get(node)
            .cloned()
            .unwrap_or(SubscriptionState::Unknown);
        if state == SubscriptionState::Unknown {
            deferred.push(Deferral {
                address: fragments::address(&object),
                reason: DeferReason::NotAnswering { node: node.clone() },
            });
            continue;
        }
        let publisher_host = model::container_name(desired.env(), &fragments.coordinator);
        changes.extend(fragments::subscription_change(
            &object,
            &state,
            node,
            &fragments.coordinator,
            &publisher_host,
            desired.host_port(node),
            &schema.target.database,
        ));
        changes.extend(abandoned_slot(
            desired,
            &object.name,
            &state,
            &publisher_host,
        ));
    }
    (changes, deferred)
}

/// The logical slot a subscription left on the coordinator it followed before the coordinator
/// moved (a promotion): dropped on that server once it runs as a replica, or it would hold WAL
/// forever.
fn abandoned_slot(
    desired: &Desired,
    name: &str,
    state: &SubscriptionState,
    publisher_host: &str,
) -> Option<Change> {
    let SubscriptionState::Observed(Some(found)) = state else {
        return None;
    };
    let old_host = found.publisher_host.as_deref()?;
    if old_host == publisher_host {
        return None;
    }
    let old = old_host.strip_prefix(&format!("{}-", desired.env()))?;
    let host_port = desired
        .state
        .servers
        .get(old)?
        .container
        .as_ref()?
        .host_port;
    Some(Change {
        address: Address::Slot {
            node: old.to_owned(),
            slot: name.to_owned(),
        },
        action: Action::Delete,
        reason: format!(
            "subscription {name} leaves its logical slot on {old}, the coordinator before: \
             dropped once {old} runs as a replica (a kept slot would hold WAL forever)"
        ),
        details: vec![],
        after: vec![Address::node(old), Address::Subscription(name.to_owned())],
        operation: Operation::DropSlot {
            node: old.to_owned(),
            host_port,
            slot: name.to_owned(),
        },
    })
}

/// The replica sets' changes, warnings, and the sets compared only during apply. The Mongo
/// image is made sure of after every PostgreSQL change, so when it cannot be had the
/// PostgreSQL part is applied all the same.
fn mongo_changes(
    desired: &Desired,
    observed: &Observed,
    postgres_changes: &[Change],
) -> (Vec<Change>, Vec<String>, Vec<Deferral>) {
    if desired.mongo.is_empty() {
        return Default::default();
    }
    let env = desired.env();
    let image = &desired.mongo_image;
    let mut changes = Vec::new();
    let mut prerequisites = vec![Address::Network(model::network_name(env))];
    if !observed.mongo.image_present {
        let address = Address::Image(image.clone());
        changes.push(Change {
            address: address.clone(),
            action: Action::Create,
            reason: "image is not present locally: pull it (MongoDB cannot be built from \
                     Debian packages)"
                .into(),
            details: Vec::new(),
            after: postgres_changes.iter().map(|c| c.address.clone()).collect(),
            operation: Operation::EnsureImage {
                reference: image.clone(),
            },
        });
        prerequisites.push(address);
    }
    let none = BTreeMap::new();
    let unknown = SetObservation::Unknown(String::new());
    let fresh = SetObservation::Fresh;
    let mut deferred = Vec::new();
    let inputs: Vec<super::mongo::SetInput<'_>> = desired
        .mongo
        .iter()
        .map(|wanted| {
            let members = observed
                .mongo
                .members
                .get(&wanted.set.name)
                .unwrap_or(&none);
            let observed = match observed.mongo.sets.get(&wanted.set.name) {
                Some(found) => found,
                None if wanted.set.members.is_empty() => &fresh,
                None => {
                    // A stopped first member is started first; its set is compared once it runs.
                    deferred.push(Deferral {
                        address: Address::ReplicaSet(wanted.set.name.clone()),
                        reason: DeferReason::MemberStopped {
                            member: wanted.set.members[0].name.clone(),
                        },
                    });
                    &unknown
                }
            };
            super::mongo::SetInput {
                set: &wanted.set,
                collections: &wanted.collections,
                members,
                observed,
            }
        })
        .collect();
    let (set_changes, mut warnings) = super::mongo::changes(env, image, &inputs, &prerequisites);
    warnings.retain(|w| {
        !deferred.iter().any(|d| match &d.address {
            Address::ReplicaSet(set) => w.starts_with(&format!("replica set {set} ")),
            _ => false,
        })
    });
    changes.extend(set_changes);
    (changes, warnings, deferred)
}
