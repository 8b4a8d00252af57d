//! What one mongod holds in memory, shared by all its connections: the replica set's
//! configuration and member state, collections with their options, indexes and documents,
//! users, and a log of the commands received.

use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Options;
use super::scram::ScramCredentials;

/// Commands that change state, as a test asserting "nothing was written" counts them.
pub const WRITE_COMMANDS: &[&str] = &[
    "replSetInitiate",
    "replSetReconfig",
    "createUser",
    "updateUser",
    "dropUser",
    "create",
    "collMod",
    "drop",
    "createIndexes",
    "dropIndexes",
    "insert",
    "update",
    "delete",
];

/// One command as received, before any check: a rejected command was still sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCommand {
    pub database: String,
    pub name: String,
}

impl LoggedCommand {
    pub fn is_write(&self) -> bool {
        WRITE_COMMANDS.contains(&self.name.as_str())
    }
}

/// The member's place in its replica set, as `replSetGetStatus` and `hello` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Started with `--replSet` but not initiated: hello says "Does not have a valid replica
    /// set config".
    Uninitiated,
    /// Initiated, not yet elected: readable, not writable.
    Secondary,
    Primary,
}

impl MemberState {
    pub fn code(self) -> i32 {
        match self {
            Self::Uninitiated => 0,
            Self::Secondary => 2,
            Self::Primary => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Uninitiated => "STARTUP",
            Self::Secondary => "SECONDARY",
            Self::Primary => "PRIMARY",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplicaSet {
    /// The configuration as `replSetGetConfig` returns it, defaults filled in.
    pub config: Document,
    /// When the election that makes this member primary completes.
    pub elected_at: Instant,
    pub elected: bool,
}

#[derive(Debug, Clone)]
pub struct Collection {
    /// `create`/`collMod` options as `listCollections` reports them.
    pub options: Document,
    pub uuid: Binary,
    /// Index specifications as `listIndexes` reports them, `_id_` first.
    pub indexes: Vec<Document>,
    pub documents: Vec<Document>,
}

impl Collection {
    pub fn new() -> Self {
        Self {
            options: Document::new(),
            uuid: new_uuid(),
            indexes: vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }],
            documents: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub user: String,
    pub db: String,
    pub user_id: Binary,
    /// Normalised to `{role, db}` documents, as `usersInfo` reports them.
    pub roles: Vec<Bson>,
    pub mechanisms: Vec<String>,
    pub credentials: Option<ScramCredentials>,
}

/// A copy of the state for a test to inspect.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub member_state: MemberState,
    pub replica_set_config: Option<Document>,
    /// Keyed by namespace, `db.collection`.
    pub collections: BTreeMap<String, Collection>,
    /// Keyed by `db.user`, as mongod's `_id` for users.
    pub users: BTreeMap<String, User>,
}

pub struct State {
    pub options: Options,
    /// The address clients reach this double at, `127.0.0.1:<port>`.
    pub address: String,
    pub process_id: ObjectId,
    pub topology_counter: i64,
    topology_changes: watch::Sender<i64>,
    pub replica_set: Option<ReplicaSet>,
    pub collections: BTreeMap<String, Collection>,
    pub users: BTreeMap<String, User>,
    pub command_log: Vec<LoggedCommand>,
}

impl State {
    pub fn new(options: Options, address: String) -> Self {
        Self {
            options,
            address,
            process_id: ObjectId::new(),
            topology_counter: 0,
            topology_changes: watch::Sender::new(0),
            replica_set: None,
            collections: BTreeMap::new(),
            users: BTreeMap::new(),
            command_log: Vec::new(),
        }
    }

    /// Completes a pending election whose time has come. Called before every command and by
    /// awaiting hellos, so that time alone moves the member from secondary to primary.
    pub fn advance(&mut self, now: Instant) {
        if let Some(replica_set) = &mut self.replica_set
            && !replica_set.elected
            && now >= replica_set.elected_at
        {
            replica_set.elected = true;
            replica_set.config.insert("term", 1i64);
            self.topology_changed();
        }
    }

    /// When a pending election completes, for an awaiting hello to wake at.
    pub fn pending_election(&self) -> Option<Instant> {
        self.replica_set
            .as_ref()
            .filter(|replica_set| !replica_set.elected)
            .map(|replica_set| replica_set.elected_at)
    }

    pub fn member_state(&self) -> MemberState {
        match &self.replica_set {
            None => MemberState::Uninitiated,
            Some(replica_set) if replica_set.elected => MemberState::Primary,
            Some(_) => MemberState::Secondary,
        }
    }

    /// Records a change that hello reports (member state, config), so that clients awaiting
    /// a topology change get their answer.
    pub fn topology_changed(&mut self) {
        self.topology_counter += 1;
        self.topology_changes.send_replace(self.topology_counter);
    }

    pub fn subscribe_topology_changes(&self) -> watch::Receiver<i64> {
        self.topology_changes.subscribe()
    }

    pub fn initiate(&mut self, config: Document, election_delay: Duration) {
        self.replica_set = Some(ReplicaSet {
            config,
            elected_at: Instant::now() + election_delay,
            elected: false,
        });
        self.topology_changed();
        self.advance(Instant::now());
    }

    /// The host this member is in its configuration: `Options::self_host` when given, else
    /// the first member's.
    pub fn my_host(&self) -> Option<String> {
        let config = &self.replica_set.as_ref()?.config;
        if let Some(host) = &self.options.self_host {
            return Some(host.clone());
        }
        let members = config.get_array("members").ok()?;
        let first = members.first()?.as_document()?;
        first.get_str("host").ok().map(str::to_string)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            member_state: self.member_state(),
            replica_set_config: self
                .replica_set
                .as_ref()
                .map(|replica_set| replica_set.config.clone()),
            collections: self.collections.clone(),
            users: self.users.clone(),
        }
    }
}

pub fn new_uuid() -> Binary {
    let bytes: [u8; 16] = rand::random();
    Binary {
        subtype: BinarySubtype::Uuid,
        bytes: bytes.to_vec(),
    }
}
