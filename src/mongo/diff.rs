//! What a replica set needs: initiation, reconfigurations that change one member at a time,
//! and the collection and index commands that make its database match the manifests. Pure.

use std::collections::BTreeMap;

use bson::{Bson, Document, doc};
use serde::Serialize;

use super::model::{Collection, MongoIndex};
use crate::topology::{MongoMember, ReplicaSet};

/// The port mongod listens on inside its container.
pub const MEMBER_PORT: u16 = 27017;

/// mongod's code for a second `replSetInitiate`.
pub const ALREADY_INITIALIZED: i32 = 23;

/// The user dbtopo creates in `admin` and connects as.
pub const ADMIN_USER: &str = "dbtopo";

/// Stands for the admin password in the commands shown in plans; put in only when run.
pub const ADMIN_PASSWORD_PLACEHOLDER: &str = "<mongo admin password>";

/// The step that creates dbtopo's admin user: allowed without authentication only while the
/// set has no user at all and only from the member itself (MongoDB's localhost exception).
pub fn create_admin_user() -> MongoStep {
    MongoStep::command(
        "admin",
        doc! {
            "createUser": ADMIN_USER,
            "pwd": ADMIN_PASSWORD_PLACEHOLDER,
            "roles": [{ "role": "root", "db": "admin" }],
        },
    )
}

/// One member as the replica set configuration holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberConfig {
    pub id: u32,
    /// `<container>:27017`, as the members reach each other on the environment's network.
    pub host: String,
    pub priority_tenths: u32,
    pub votes: u8,
    pub hidden: bool,
    pub arbiter: bool,
}

impl MemberConfig {
    pub fn of(env: &str, member: &MongoMember) -> MemberConfig {
        MemberConfig {
            id: member.id,
            host: format!(
                "{}:{MEMBER_PORT}",
                crate::model::container_name(env, &member.name)
            ),
            priority_tenths: if member.arbiter {
                0
            } else {
                member.priority_tenths
            },
            votes: member.votes,
            hidden: member.hidden,
            arbiter: member.arbiter,
        }
    }

    fn document(&self) -> Document {
        let mut member = doc! {
            "_id": self.id as i32,
            "host": &self.host,
            "priority": f64::from(self.priority_tenths) / 10.0,
            "votes": i32::from(self.votes),
        };
        if self.hidden {
            member.insert("hidden", true);
        }
        if self.arbiter {
            member.insert("arbiterOnly", true);
        }
        member
    }

    fn votes(&self) -> bool {
        self.votes > 0
    }
}

/// What one member reports of its replica set.
#[derive(Debug, Clone, PartialEq)]
pub enum SetState {
    /// dbtopo's admin user does not exist yet, so nothing can be read: a new set (or one
    /// whose bootstrap stopped half-way) that only the localhost exception can enter.
    NoAdminUser,
    /// Started with `--replSet` but never initiated.
    NotInitiated,
    Initiated {
        version: i64,
        members: Vec<MemberConfig>,
    },
}

/// One thing to do through the member the controller talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum MongoStep {
    /// A database command, as relaxed extended JSON (the plan shows it as written). An error
    /// with one of the `accepted` codes counts as done (`AlreadyInitialized` when a bootstrap
    /// runs again).
    Command {
        database: String,
        command: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        accepted: Vec<i32>,
    },
    /// Wait until the member reports a writable primary (after an initiation or a
    /// reconfiguration, which can start an election).
    WaitForPrimary,
}

impl MongoStep {
    fn command(database: &str, command: Document) -> MongoStep {
        MongoStep::Command {
            database: database.to_owned(),
            command: Bson::Document(command).into_relaxed_extjson().to_string(),
            accepted: Vec::new(),
        }
    }
}

/// A change of the set itself: initiate it, or one reconfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetChange {
    pub reason: String,
    pub steps: Vec<MongoStep>,
}

/// The members the topology wants, in `_id` order.
pub fn desired_members(env: &str, set: &ReplicaSet) -> Vec<MemberConfig> {
    set.members
        .iter()
        .map(|m| MemberConfig::of(env, m))
        .collect()
}

/// Initiation with every member, or the reconfigurations from the current members to the
/// wanted ones, each changing a single member (so at most one voting member is added or
/// removed each time, as MongoDB requires), versions counting up from the current one.
pub fn set_changes(name: &str, wanted: &[MemberConfig], state: &SetState) -> Vec<SetChange> {
    let config = |version: i64, members: &[MemberConfig]| {
        doc! {
            "_id": name,
            "version": version,
            "members": members.iter().map(|m| Bson::Document(m.document())).collect::<Vec<_>>(),
        }
    };
    let (version, current) = match state {
        SetState::NoAdminUser => {
            let mut initiate =
                MongoStep::command("admin", doc! { "replSetInitiate": config(1, wanted) });
            if let MongoStep::Command { accepted, .. } = &mut initiate {
                accepted.push(ALREADY_INITIALIZED);
            }
            return vec![SetChange {
                reason: format!(
                    "replica set {name} has no admin user yet: initiate it (unless it is) with \
                     {} member(s), then create the user through the localhost exception",
                    wanted.len()
                ),
                steps: vec![initiate, MongoStep::WaitForPrimary, create_admin_user()],
            }];
        }
        SetState::NotInitiated => {
            return vec![SetChange {
                reason: format!(
                    "replica set {name} is not initiated: initiate it with {} member(s)",
                    wanted.len()
                ),
                steps: vec![
                    MongoStep::command("admin", doc! { "replSetInitiate": config(1, wanted) }),
                    MongoStep::WaitForPrimary,
                ],
            }];
        }
        SetState::Initiated { version, members } => (*version, members.clone()),
    };
    let mut members: BTreeMap<u32, MemberConfig> = current.into_iter().map(|m| (m.id, m)).collect();
    let wanted_by_id: BTreeMap<u32, &MemberConfig> = wanted.iter().map(|m| (m.id, m)).collect();
    // Changes that keep the voters first, then voters removed, then voters added.
    let mut order: Vec<(u8, u32)> = Vec::new();
    for (id, current) in &members {
        match wanted_by_id.get(id) {
            None => order.push((if current.votes() { 1 } else { 0 }, *id)),
            Some(w) if *w != current => {
                let rank = match (current.votes(), w.votes()) {
                    (true, false) => 1,
                    (false, true) => 2,
                    _ => 0,
                };
                order.push((rank, *id));
            }
            Some(_) => {}
        }
    }
    for (id, w) in &wanted_by_id {
        if !members.contains_key(id) {
            order.push((if w.votes() { 2 } else { 0 }, *id));
        }
    }
    order.sort();
    let mut changes = Vec::new();
    let mut version = version;
    for (_, id) in order {
        let what = match (members.get(&id), wanted_by_id.get(&id)) {
            (Some(_), None) => {
                members.remove(&id);
                format!("remove member {id}")
            }
            (None, Some(w)) => {
                members.insert(id, (*w).clone());
                format!("add member {id} ({})", w.host)
            }
            (Some(_), Some(w)) => {
                members.insert(id, (*w).clone());
                format!("change member {id} ({})", w.host)
            }
            (None, None) => continue,
        };
        version += 1;
        let list: Vec<MemberConfig> = members.values().cloned().collect();
        changes.push(SetChange {
            reason: format!(
                "{what}: one member per reconfiguration, so at most one voting member changes"
            ),
            steps: vec![
                MongoStep::command("admin", doc! { "replSetReconfig": config(version, &list) }),
                MongoStep::WaitForPrimary,
            ],
        });
    }
    changes
}

/// What becomes of one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionChange {
    pub collection: String,
    pub kind: CollectionChangeKind,
    pub steps: Vec<MongoStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionChangeKind {
    Create,
    /// Its validation rules differ (collMod).
    Modify,
    /// An index is added, dropped or made again; the documents stay.
    Indexes,
}

/// The commands that bring `database` from `observed` to `wanted`. Collections the manifests
/// do not name are left alone (dropping one would lose its documents); indexes the manifest
/// does not name are dropped (shown in the plan), `_id_` never.
pub fn collection_changes(
    database: &str,
    wanted: &[Collection],
    observed: &BTreeMap<String, Collection>,
) -> Vec<CollectionChange> {
    let mut changes = Vec::new();
    for collection in wanted {
        let Some(current) = observed.get(&collection.name) else {
            let mut create = doc! { "create": &collection.name };
            if let Some(validator) = &collection.validator {
                create.insert("validator", validator.clone());
            }
            create.insert("validationLevel", &collection.validation_level);
            create.insert("validationAction", &collection.validation_action);
            let mut steps = vec![MongoStep::command(database, create)];
            if !collection.indexes.is_empty() {
                steps.push(create_indexes(
                    database,
                    &collection.name,
                    &collection.indexes,
                ));
            }
            changes.push(CollectionChange {
                collection: collection.name.clone(),
                kind: CollectionChangeKind::Create,
                steps,
            });
            continue;
        };
        let mut steps = Vec::new();
        let rules_differ = !same_document(
            collection.validator.as_ref().unwrap_or(&Document::new()),
            current.validator.as_ref().unwrap_or(&Document::new()),
        ) || collection.validation_level != current.validation_level
            || collection.validation_action != current.validation_action;
        if rules_differ {
            steps.push(MongoStep::command(
                database,
                doc! {
                    "collMod": &collection.name,
                    "validator": collection.validator.clone().unwrap_or_default(),
                    "validationLevel": &collection.validation_level,
                    "validationAction": &collection.validation_action,
                },
            ));
        }
        let current_indexes: BTreeMap<&str, &MongoIndex> = current
            .indexes
            .iter()
            .map(|i| (i.name.as_str(), i))
            .collect();
        let wanted_names: Vec<&str> = collection.indexes.iter().map(|i| i.name.as_str()).collect();
        let mut drop: Vec<&str> = current_indexes
            .keys()
            .filter(|name| !wanted_names.contains(name))
            .copied()
            .collect();
        let mut create = Vec::new();
        for index in &collection.indexes {
            match current_indexes.get(index.name.as_str()) {
                None => create.push(index.clone()),
                Some(found) if !same_index(index, found) => {
                    drop.push(&index.name);
                    create.push(index.clone());
                }
                Some(_) => {}
            }
        }
        for name in &drop {
            steps.push(MongoStep::command(
                database,
                doc! { "dropIndexes": &collection.name, "index": *name },
            ));
        }
        if !create.is_empty() {
            steps.push(create_indexes(database, &collection.name, &create));
        }
        if !steps.is_empty() {
            changes.push(CollectionChange {
                collection: collection.name.clone(),
                kind: if rules_differ {
                    CollectionChangeKind::Modify
                } else {
                    CollectionChangeKind::Indexes
                },
                steps,
            });
        }
    }
    changes
}

fn create_indexes(database: &str, collection: &str, indexes: &[MongoIndex]) -> MongoStep {
    let specs: Vec<Bson> = indexes
        .iter()
        .map(|index| {
            let mut spec = doc! { "key": index.key.clone(), "name": &index.name };
            if index.unique {
                spec.insert("unique", true);
            }
            if let Some(filter) = &index.partial_filter {
                spec.insert("partialFilterExpression", filter.clone());
            }
            if let Some(seconds) = index.expire_after_seconds {
                spec.insert("expireAfterSeconds", seconds);
            }
            Bson::Document(spec)
        })
        .collect();
    MongoStep::command(
        database,
        doc! { "createIndexes": collection, "indexes": specs },
    )
}

fn same_index(a: &MongoIndex, b: &MongoIndex) -> bool {
    same_document(&a.key, &b.key)
        && a.unique == b.unique
        && match (&a.partial_filter, &b.partial_filter) {
            (None, None) => true,
            (Some(x), Some(y)) => same_document(x, y),
            _ => false,
        }
        && a.expire_after_seconds == b.expire_after_seconds
}

/// Documents equal field by field in order, numbers compared by value (a manifest's `1` and
/// the server's `1.0` or `NumberLong(1)` are the same).
pub fn same_document(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

fn same_value(a: &Bson, b: &Bson) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => return x == y,
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => same_document(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        _ => a == b,
    }
}

fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
