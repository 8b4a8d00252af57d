//! The MongoDB part of the plan: member containers, the replica set (bootstrap or one
//! reconfiguration per member), and collections with their indexes. Pure.

use std::collections::BTreeMap;

use super::{Action, Address, Change, Detail, Effect, MongoMemberSpec, Operation};
use crate::hashing::short_hash;
use crate::model::{self, label};
use crate::mongo::diff::{self, CollectionChangeKind, MongoStep, SetState};
use crate::mongo::model::Collection;
use crate::topology::ReplicaSet;

pub use crate::observed::{FoundMember, SetObservation};

pub struct SetInput<'a> {
    pub set: &'a ReplicaSet,
    /// The collections its manifests declare.
    pub collections: &'a [Collection],
    /// Member containers found, by node (`rs0-0`).
    pub members: &'a BTreeMap<String, FoundMember>,
    pub observed: &'a SetObservation,
}

pub fn member_address(node: &str) -> Address {
    Address::MongoMember(node.to_owned())
}

pub fn set_address(set: &str) -> Address {
    Address::ReplicaSet(set.to_owned())
}

/// The container spec of every member of `set`, with the hash that tells when to replace it.
pub fn member_specs(env: &str, image: &str, set: &ReplicaSet) -> Vec<MongoMemberSpec> {
    set.members
        .iter()
        .map(|member| {
            let container = model::container_name(env, &member.name);
            let volume = model::volume_name(env, &member.name);
            let network = model::network_name(env);
            let port = member.port.to_string();
            let hash = short_hash(&[image, &port, &set.name, &network, &volume]);
            MongoMemberSpec {
                env: env.to_owned(),
                set: set.name.clone(),
                node: member.name.clone(),
                container,
                image: image.to_owned(),
                host_port: member.port,
                network,
                volume,
                labels: BTreeMap::from([
                    (label::ENV.to_owned(), env.to_owned()),
                    (label::NODE.to_owned(), member.name.clone()),
                    (label::MONGO_SET.to_owned(), set.name.clone()),
                    (label::SPEC_HASH.to_owned(), hash),
                ]),
            }
        })
        .collect()
}

/// Every change the sets need; `prerequisites` (the image, the network) come first.
pub fn changes(
    env: &str,
    image: &str,
    sets: &[SetInput<'_>],
    prerequisites: &[Address],
) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for input in sets {
        let specs = member_specs(env, image, input.set);
        let mut member_addresses = Vec::new();
        for spec in &specs {
            let address = member_address(&spec.node);
            member_addresses.push(address.clone());
            let found = input.members.get(&spec.node);
            let (action, reason, operation) = match found {
                None => (
                    Action::Create,
                    "container does not exist".to_owned(),
                    Operation::RunMongoMember { spec: spec.clone() },
                ),
                Some(f) if Some(&f.spec_hash) != spec.labels.get(label::SPEC_HASH) => (
                    Action::Replace,
                    "its image, port or network changed; the data volume is kept".to_owned(),
                    Operation::RunMongoMember { spec: spec.clone() },
                ),
                Some(f) if !f.running => (
                    Action::Start,
                    "container is stopped".to_owned(),
                    Operation::StartMongoMember { spec: spec.clone() },
                ),
                Some(_) => continue,
            };
            changes.push(Change {
                address,
                action,
                reason,
                details: Vec::new(),
                after: prerequisites.to_vec(),
                operation,
            });
        }
        let Some(first) = specs.first() else {
            continue;
        };
        let wanted = diff::desired_members(env, input.set);
        let (state, current) = match input.observed {
            SetObservation::Unknown(why) => {
                warnings.push(format!(
                    "replica set {} could not be asked ({why}); its members and collections \
                     are compared once it answers",
                    input.set.name
                ));
                continue;
            }
            SetObservation::Fresh => (SetState::NoAdminUser, BTreeMap::new()),
            SetObservation::Found {
                state, collections, ..
            } => (state.clone(), collections.clone()),
        };
        let set_changes = diff::set_changes(&input.set.name, &wanted, &state);
        let bootstrap = state == SetState::NoAdminUser;
        let set_address = set_address(&input.set.name);
        if !set_changes.is_empty() {
            let steps: Vec<MongoStep> = set_changes
                .iter()
                .flat_map(|c| c.steps.iter().cloned())
                .collect();
            changes.push(Change {
                address: set_address.clone(),
                action: if bootstrap {
                    Action::Create
                } else {
                    Action::Update
                },
                reason: set_changes
                    .iter()
                    .map(|c| c.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                details: Vec::new(),
                after: member_addresses.clone(),
                operation: Operation::MongoCommands {
                    set: input.set.name.clone(),
                    host_port: first.host_port,
                    container: first.container.clone(),
                    local: bootstrap,
                    steps,
                },
            });
        }
        // Members the topology no longer has: out of the set first, then their containers
        // (their volumes are kept until destroy).
        for node in input
            .members
            .keys()
            .filter(|node| !specs.iter().any(|spec| &spec.node == *node))
        {
            changes.push(Change {
                address: member_address(node),
                action: Action::Delete,
                reason: "no longer a member: removed once the set is reconfigured without it; \
                         its volume is kept"
                    .to_owned(),
                details: Vec::new(),
                after: vec![set_address.clone()],
                operation: Operation::RemoveContainer {
                    name: model::container_name(env, node),
                },
            });
        }
        let current = if bootstrap { BTreeMap::new() } else { current };
        for change in diff::collection_changes(&input.set.database, input.collections, &current) {
            let (action, reason) = match change.kind {
                CollectionChangeKind::Create => {
                    (Action::Create, "collection does not exist".to_owned())
                }
                CollectionChangeKind::Modify => (
                    Action::Update,
                    "its validation rules differ from the manifest (collMod)".to_owned(),
                ),
                CollectionChangeKind::Indexes => (
                    Action::Update,
                    "its indexes differ from the manifest; the documents stay".to_owned(),
                ),
            };
            let details = index_details(&change.steps);
            changes.push(Change {
                address: Address::MongoCollection {
                    set: input.set.name.clone(),
                    collection: change.collection.clone(),
                },
                action,
                reason,
                details,
                after: std::iter::once(set_address.clone())
                    .chain(member_addresses.iter().cloned())
                    .collect(),
                operation: Operation::MongoCommands {
                    set: input.set.name.clone(),
                    host_port: first.host_port,
                    container: first.container.clone(),
                    local: false,
                    steps: change.steps,
                },
            });
        }
    }
    (changes, warnings)
}

/// Dropped indexes, named, so a plan shows what goes away.
fn index_details(steps: &[MongoStep]) -> Vec<Detail> {
    steps
        .iter()
        .filter_map(|step| match step {
            MongoStep::Command { command, .. } if command.starts_with("{\"dropIndexes\"") => {
                let value: serde_json::Value = serde_json::from_str(command).ok()?;
                let index = value.get("index")?.as_str()?.to_owned();
                Some(Detail::new(format!("index {index}"), Some(index), None).effect(Effect::Drop))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::diff::desired_members;
    use crate::topology::MongoMember;

    fn set(count: u32) -> ReplicaSet {
        ReplicaSet {
            name: "rs0".into(),
            members: (0..count)
                .map(|id| MongoMember {
                    id,
                    name: format!("rs0-{id}"),
                    port: 27017 + id as u16,
                    priority_tenths: 10,
                    votes: 1,
                    hidden: false,
                    arbiter: false,
                })
                .collect(),
            database: "shop".into(),
            collections: None,
            profiles: Vec::new(),
        }
    }

    fn running(set: &ReplicaSet) -> BTreeMap<String, FoundMember> {
        member_specs("shop", "mongo:7", set)
            .into_iter()
            .map(|spec| {
                let hash = spec.labels[label::SPEC_HASH].clone();
                (
                    spec.node,
                    FoundMember {
                        running: true,
                        spec_hash: hash,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_new_set_gets_members_then_its_bootstrap_on_the_first_member() {
        let three = set(3);
        let (changes, warnings) = changes(
            "shop",
            "mongo:7",
            &[SetInput {
                set: &three,
                collections: &[],
                members: &BTreeMap::new(),
                observed: &SetObservation::Fresh,
            }],
            &[Address::Network("shop-net".to_owned())],
        );
        assert!(warnings.is_empty());
        let addresses: Vec<String> = changes.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(
            addresses,
            [
                "mongo_member.rs0-0",
                "mongo_member.rs0-1",
                "mongo_member.rs0-2",
                "replica_set.rs0"
            ]
        );
        let Operation::MongoCommands {
            local, container, ..
        } = &changes[3].operation
        else {
            panic!("the bootstrap is a command change");
        };
        assert!(*local, "run on the member: the localhost exception");
        assert_eq!(container, "shop-rs0-0");
        assert_eq!(changes[0].after, ["network.shop-net"]);
    }

    #[test]
    fn a_member_left_out_is_reconfigured_away_then_removed() {
        let four = set(4);
        let three = set(3);
        let observed = SetObservation::Found {
            state: SetState::Initiated {
                version: 5,
                members: desired_members("shop", &four),
            },
            collections: BTreeMap::new(),
            member_states: BTreeMap::new(),
        };
        let (changes, _) = changes(
            "shop",
            "mongo:7",
            &[SetInput {
                set: &three,
                collections: &[],
                members: &running(&four),
                observed: &observed,
            }],
            &[],
        );
        let summary: Vec<(&str, Action)> = changes
            .iter()
            .map(|c| (c.address.kind(), c.action))
            .collect();
        assert_eq!(
            summary,
            [
                ("replica_set", Action::Update),
                ("mongo_member", Action::Delete)
            ]
        );
        assert_eq!(changes[1].after, ["replica_set.rs0"]);
    }
}
