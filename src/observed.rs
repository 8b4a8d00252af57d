//! `Observed`: every fact a plan is computed from, read by `observe` in one pass and handed
//! to the pure `plan::plan`. Plain data, so whole plans can be tested with fixtures.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::fragments::coordinator::Found;
use crate::model::State;
use crate::mongo::diff::SetState;
use crate::mongo::model::Collection;
use crate::schema::NodeSchema;

/// What the environment holds, as observed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Docker objects and what each running server reports of itself.
    pub state: State,
    /// What the database of each node that receives tables holds, by node.
    pub schemas: BTreeMap<String, NodeSchema>,
    /// The coordinator's fragment objects (fragmented topologies only).
    pub coordinator: CoordinatorState,
    /// Each copying node's subscription to the reference tables, by node.
    pub subscriptions: BTreeMap<String, SubscriptionState>,
    /// Reference-copy subscriptions on a node other than the one it should have, by node: a
    /// promoted replica holds the subscription its old primary made, under that node's name.
    pub leftover_subscriptions: BTreeMap<String, Vec<LeftoverSubscription>>,
    /// dbtopo's prepared transactions left on the running primaries.
    pub prepared: Vec<Prepared>,
    /// The coordinator's recorded decisions for them, by global id; `None` when the record
    /// could not be read (then nothing is resolved: a commit must never be rolled back).
    pub decisions: Option<BTreeMap<String, String>>,
    pub mongo: MongoObserved,
    /// Objects that take a name of this environment but are not its own.
    pub foreign: Vec<ForeignObject>,
    /// Host ports that a server or member still to be published needs, held by another
    /// program (node → port).
    pub ports_taken: BTreeMap<String, u16>,
}

/// The Docker names an environment's objects take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnNames {
    pub containers: std::collections::BTreeSet<String>,
    pub volumes: std::collections::BTreeSet<String>,
    pub networks: std::collections::BTreeSet<String>,
}

/// A Docker object with one of the environment's names but without its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignObject {
    pub kind: &'static str,
    pub name: String,
    /// The environment its label names, if it is another environment's.
    pub owner: Option<String>,
}

/// What is known of the coordinator's database.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CoordinatorState {
    /// The database is new (or its server is): nothing exists yet.
    Fresh,
    /// The server could not be asked: the comparison waits.
    #[default]
    Unknown,
    Observed(Found),
}

/// What is known of one node's subscription to its reference tables.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionState {
    Fresh,
    Unknown,
    /// The subscription of that name, when it exists.
    Observed(Option<FoundSubscription>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSubscription {
    /// `dbtopo <hash>` of the definition it was made from.
    pub comment: Option<String>,
    /// A disabled subscription applies nothing: the copies stop following the coordinator.
    pub enabled: bool,
    /// Its apply worker runs (an enabled subscription without one does not follow yet).
    pub worker: bool,
    /// The host it subscribes to: the coordinator's container, unless the coordinator moved.
    pub publisher_host: Option<String>,
}

/// A `dbtopo_ref_*` subscription a node holds besides its own: it would apply the
/// coordinator's changes to the copies a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftoverSubscription {
    pub name: String,
    /// The host it subscribes to, where its logical slot is.
    pub publisher_host: Option<String>,
}

/// One of dbtopo's prepared transactions on a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    pub node: String,
    pub gid: String,
    /// The database it must be finished in.
    pub database: String,
    pub age: Duration,
}

/// The MongoDB replica sets (only read when the topology has some).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MongoObserved {
    pub image_present: bool,
    /// Member containers by set, then by node.
    pub members: BTreeMap<String, BTreeMap<String, FoundMember>>,
    /// What each set's first member reports, by set; a set whose first member does not run
    /// is absent.
    pub sets: BTreeMap<String, SetObservation>,
}

/// A member container as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMember {
    pub running: bool,
    pub spec_hash: String,
}

/// What is known of a set's data.
#[derive(Debug, Clone, PartialEq)]
pub enum SetObservation {
    /// Its first member is being created: nothing exists yet.
    Fresh,
    /// Its first member runs but could not be asked (why, for the plan's warning).
    Unknown(String),
    Found {
        state: SetState,
        collections: BTreeMap<String, Collection>,
        /// Each member's replication state by id, as the first member reports it (empty
        /// before the set is initiated).
        member_states: BTreeMap<u32, String>,
    },
}
