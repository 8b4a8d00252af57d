//! The plan: plain, serializable data. The executor runs its operations in wave order and
//! decides nothing of its own.

mod address;
mod assemble;
mod data_loss;
mod diff;
pub mod fragments;
mod leftovers;
pub mod mongo;
pub mod movement;
mod order;
pub mod prepared;
mod prerequisites;
mod promotion;
mod renames;
mod render;
pub mod schema;
pub mod settings;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Role;

pub use address::Address;
pub use assemble::plan;

/// Why no plan could be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    /// The environment is in a state the topology cannot be brought to from (a table in the
    /// way of a fragment, a movement that could lose rows).
    #[error("{0}")]
    #[diagnostic(code(dbtopo::plan::refused))]
    Refused(String),
    #[error("{}", foreign_list(.0))]
    #[diagnostic(
        code(dbtopo::plan::foreign_object),
        help(
            "dbtopo changes only objects that carry its label for this environment, and nothing was \
             touched: remove or rename these objects, or give the environment another name"
        )
    )]
    Foreign(Vec<crate::observed::ForeignObject>),
    #[error("{}", ports_list(.0))]
    #[diagnostic(
        code(dbtopo::plan::port_taken),
        help(
            "stop the program that holds the port, or give the server another `port:`; nothing was touched"
        )
    )]
    PortsTaken(BTreeMap<String, u16>),
    #[error("settings the servers would refuse:\n{}", .0.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n"))]
    #[diagnostic(
        code(dbtopo::plan::bad_setting),
        help("fix these in the topology; nothing was touched")
    )]
    BadSettings(Vec<RefusedSetting>),
    #[error(
        "planner bug: {change} waits for {prerequisite}, which is neither planned, deferred nor known to be in place"
    )]
    #[diagnostic(
        code(dbtopo::plan::unknown_prerequisite),
        help("nothing was changed; please report this with the topology")
    )]
    UnknownPrerequisite {
        change: Address,
        prerequisite: Address,
    },
}
/// A setting value the servers would refuse, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedSetting {
    pub node: String,
    pub name: String,
    pub why: String,
}

impl std::fmt::Display for RefusedSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {}: {}", self.node, self.why)
    }
}

pub use diff::{diff, warnings};
pub use order::waves;
pub use render::{Counts, render_json, render_text};

/// What a change costs, from cheapest to most disruptive (Terraform's vocabulary, plus the
/// PostgreSQL distinction between a reload and a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    /// Changed in place, the server keeps running (configuration reload, SQL).
    Update,
    /// A stopped container is started again.
    Start,
    /// The server restarts in the same container.
    Restart,
    /// The container is removed and created again; its data volume is kept.
    Replace,
    /// A replica becomes its cluster's primary (switchover or failover); its container is made
    /// again as a primary's.
    Promote,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update | Action::Start | Action::Restart => "~",
            Action::Replace => "-/+",
            Action::Promote => "^",
            Action::Delete => "-",
        }
    }

    pub fn phrase(self) -> &'static str {
        match self {
            Action::Create => "will be created",
            Action::Update => "will be updated in place",
            Action::Start => "will be started",
            Action::Restart => "will be restarted",
            Action::Replace => "must be replaced",
            Action::Promote => "will be promoted",
            Action::Delete => "will be destroyed",
        }
    }
}

/// What a detail costs when it is carried out: it decides how the change runs, and the text
/// shown beside the detail is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Taken up by a configuration reload; the server keeps running.
    Reload,
    /// Taken up only when the server restarts.
    Restart,
    /// Set with ALTER SYSTEM behind dbtopo's back: reset, then reloaded or restarted.
    ResetAltered { restart: bool },
    /// The container must be made again (the data volume is kept).
    Replace,
    /// A configuration file dbtopo writes is missing in the container: written again.
    Rewrite,
    /// Rows move to the new parts, then this copy is dropped.
    MoveRows,
    /// The object is dropped.
    Drop,
    /// Data that exists nowhere else is lost (a server made again on an empty volume).
    LosesData,
}

impl Effect {
    /// Whether carrying it out needs the server restarted.
    pub fn needs_restart(self) -> bool {
        matches!(
            self,
            Effect::Restart | Effect::ResetAltered { restart: true }
        )
    }

    /// The words shown beside the detail.
    pub fn note(self) -> &'static str {
        match self {
            Effect::Reload => "reload",
            Effect::Restart => "restart",
            Effect::ResetAltered { restart: false } => "set with ALTER SYSTEM; reset, reload",
            Effect::ResetAltered { restart: true } => "set with ALTER SYSTEM; reset, restart",
            Effect::Replace => "forces replacement",
            Effect::Rewrite => "missing in the container",
            Effect::MoveRows => "rows copied to the new parts, then this copy is dropped",
            Effect::Drop => "dropped",
            Effect::LosesData => "DESTRUCTIVE: loses data",
        }
    }
}

/// One field of a change: what it was, what it becomes, and what that costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub effect: Option<Effect>,
}

impl Detail {
    pub fn new(field: impl Into<String>, before: Option<String>, after: Option<String>) -> Self {
        Detail {
            field: field.into(),
            before,
            after,
            effect: None,
        }
    }

    pub fn effect(mut self, effect: Effect) -> Self {
        self.effect = Some(effect);
        self
    }
}

/// One resource's change: shown to the user, and carrying the operation that performs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Stable address, e.g. `node.primary`, `slot.primary.dbtopo_primary_replica`.
    pub address: Address,
    pub action: Action,
    pub reason: String,
    pub details: Vec<Detail>,
    /// Addresses that must be done first (only those in the same plan matter).
    pub after: Vec<Address>,
    pub operation: Operation,
}

/// A file written into a container before it starts or when its configuration changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSpec {
    pub path: String,
    pub mode: u32,
    pub content: String,
}

/// Everything needed to create (or reconfigure) one server's container. Holds no secrets:
/// the executor adds them from the secret store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSpec {
    pub env: String,
    pub node: String,
    pub role: Role,
    pub container: String,
    pub image: String,
    pub host_port: u16,
    pub network: String,
    pub volume: String,
    pub labels: BTreeMap<String, String>,
    pub files: Vec<FileSpec>,
}

/// The primary a promotion takes over from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OldPrimary {
    pub node: String,
    pub container: String,
    /// Whether its container was seen running (it is stopped before the promotion).
    pub running: bool,
    /// The host port its container publishes (a checkpoint is asked for there first).
    pub host_port: u16,
}

/// A replica's upstream, as the executor reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamServer {
    pub node: String,
    pub host_port: u16,
}

/// One MongoDB replica set member's container. Holds no secrets: the executor writes the
/// keyfile from the secret store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MongoMemberSpec {
    pub env: String,
    /// The replica set (`--replSet`).
    pub set: String,
    /// `<set>-<id>`.
    pub node: String,
    pub container: String,
    pub image: String,
    pub host_port: u16,
    pub network: String,
    pub volume: String,
    pub labels: BTreeMap<String, String>,
}

/// The concrete work of a change. Each is idempotent: safe to run again after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    EnsureImage {
        reference: String,
    },
    CreateNetwork {
        name: String,
        labels: BTreeMap<String, String>,
    },
    CreateVolume {
        name: String,
        labels: BTreeMap<String, String>,
    },
    /// Create the container (removing a stale one of the same name), write its files, start
    /// it and wait until the server answers.
    RunServer {
        spec: ServerSpec,
        /// For a new node that waits for others: its container is created and started as soon
        /// as these are done, and holds before initializing its data until the change's turn.
        /// Container start is slow on some engines; this takes it off the path the node waits on.
        start_early_after: Option<Vec<Address>>,
    },
    /// Make a replica its cluster's primary. A running old primary is stopped first (a fast
    /// shutdown, which sends its standbys everything it wrote); where its container exists,
    /// its last checkpoint is read from its data and the replica must have replayed past it,
    /// or nothing else happens. Then the replica's container is made again from `spec` (a
    /// primary's) and it is promoted. With the replica's own configuration, that container
    /// starts first, still a streaming standby, so writes pause only for the handover.
    PromoteServer {
        spec: ServerSpec,
        /// The replica's postgresql.conf as found: its new container starts with it, still
        /// streaming, before the old primary stops.
        standby_conf: Option<String>,
        /// The replica's current container, stopped once it has caught up.
        old_primary: Option<OldPrimary>,
        /// The old primary's last position cannot be known (its data is gone): promote anyway.
        /// Only planned as a change that loses data.
        unverified: bool,
    },
    /// Remove the container and its data volume, then make both again as `RunServer` does: a
    /// replica whose data is another cluster's is copied anew from its upstream.
    RebuildServer {
        spec: ServerSpec,
    },
    /// Write the current files into a stopped container, start it, wait until it answers.
    StartServer {
        spec: ServerSpec,
    },
    /// Write new files; undo ALTER SYSTEM overrides if any; then reload, or restart.
    Reconfigure {
        spec: ServerSpec,
        restart: bool,
        reset_altered: bool,
        /// For a replica that lowers a setting a hot standby needs at least as high as its
        /// upstream: the upstream, whose WAL it replays up to the upstream's current position
        /// before it restarts. The upstream's lower value reaches the replica only through
        /// its WAL, and a standby refuses to start below the last value it replayed.
        catch_up_with: Option<UpstreamServer>,
    },
    EnsureReplicationRole {
        node: String,
        host_port: u16,
        role: String,
    },
    CreateSlot {
        node: String,
        host_port: u16,
        slot: String,
    },
    DropSlot {
        node: String,
        host_port: u16,
        slot: String,
    },
    /// Create the database if needed, run the transactional steps in one transaction, then
    /// the concurrent index steps one by one.
    ApplySchema {
        node: String,
        host_port: u16,
        database: String,
        create_database: bool,
        steps: Vec<crate::schema::Step>,
    },
    /// Run statements in a database of a node, in one transaction unless a statement cannot
    /// run in one; the superuser password placeholders are replaced only then.
    RunSql {
        node: String,
        host_port: u16,
        database: String,
        statements: Vec<String>,
        transactional: bool,
    },
    /// Create the member's volume if missing and its container (removing a stale one), write
    /// the keyfile, start it and wait until it answers `hello`.
    RunMongoMember {
        spec: MongoMemberSpec,
    },
    /// Start a stopped member and wait until it answers.
    StartMongoMember {
        spec: MongoMemberSpec,
    },
    /// Commands to a replica set through one member: on the member itself (`mongosh` inside
    /// its container, the only place the localhost exception admits before the admin user
    /// exists) when `local`, else through its 127.0.0.1 port as dbtopo's admin user.
    MongoCommands {
        set: String,
        host_port: u16,
        container: String,
        local: bool,
        steps: Vec<crate::mongo::diff::MongoStep>,
    },
    RemoveContainer {
        name: String,
    },
    RemoveVolume {
        name: String,
    },
    RemoveNetwork {
        name: String,
    },
}

/// A whole plan: changes in display order and the waves they run in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub env: String,
    pub changes: Vec<Change>,
    /// Indexes into `changes`; the changes of one wave are independent and run in parallel.
    pub waves: Vec<Vec<usize>>,
    /// Problems no change can fix, such as a replica that does not stream.
    pub warnings: Vec<String>,
    /// What is left alone on purpose for now (a prepared transaction too young to judge):
    /// shown, but not a failure to converge.
    pub notices: Vec<String>,
    /// What cannot be compared or planned yet, each with its reason.
    pub deferred: Vec<Deferral>,
}

fn ports_list(ports: &BTreeMap<String, u16>) -> String {
    let lines: Vec<String> = ports
        .iter()
        .map(|(node, port)| format!("  {node} needs 127.0.0.1:{port}, which another program holds"))
        .collect();
    format!("host ports are taken:\n{}", lines.join("\n"))
}

fn foreign_list(objects: &[crate::observed::ForeignObject]) -> String {
    let lines: Vec<String> = objects
        .iter()
        .map(|o| match &o.owner {
            Some(env) => format!("  {} {} belongs to environment \"{env}\"", o.kind, o.name),
            None => format!("  {} {} was not made by dbtopo", o.kind, o.name),
        })
        .collect();
    format!(
        "names this environment needs are taken by objects that are not its own:\n{}",
        lines.join("\n")
    )
}

/// A resource left out of the plan for now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deferral {
    pub address: Address,
    pub reason: DeferReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeferReason {
    /// Its server exists but does not answer yet (stopped, starting): compared once it does,
    /// during apply.
    NotAnswering { node: String },
    /// The replica set's first member does not run: compared once it does, during apply.
    MemberStopped { member: String },
    /// A prerequisite is deferred itself.
    WaitsFor { address: Address },
    /// Held back behind an undecided prepared transaction, whose locks it would wait for; no
    /// apply can clear this until the transaction's coordinator or its timeout decides.
    InDoubt { gid: String },
}

impl Plan {
    pub fn new(env: String, changes: Vec<Change>) -> Plan {
        let waves = waves(&changes);
        Plan {
            env,
            changes,
            waves,
            warnings: Vec::new(),
            notices: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// Steps that can lose data, with the address of their change.
    pub fn destructive_steps(&self) -> Vec<(&Address, &crate::schema::Step)> {
        self.changes
            .iter()
            .filter_map(|change| match &change.operation {
                Operation::ApplySchema { steps, .. } => Some((&change.address, steps)),
                _ => None,
            })
            .flat_map(|(address, steps)| {
                steps
                    .iter()
                    .filter(|s| s.destroys.is_some())
                    .map(move |s| (address, s))
            })
            .collect()
    }

    /// Everything in the plan that can lose data, with the address of its change and why:
    /// schema steps and servers made again on an empty volume. Apply refuses these without
    /// `--allow-destructive`.
    pub fn data_losses(&self) -> Vec<(&Address, String)> {
        let steps = self.destructive_steps().into_iter().map(|(address, step)| {
            let why = step.destroys.as_deref().unwrap_or_default();
            (address, format!("{} ({why})", step.object))
        });
        let servers = self.changes.iter().flat_map(|change| {
            change
                .details
                .iter()
                .filter(|d| d.effect == Some(Effect::LosesData))
                .map(move |d| {
                    (
                        &change.address,
                        d.before.clone().unwrap_or_else(|| d.field.clone()),
                    )
                })
        });
        steps.chain(servers).collect()
    }

    /// For each change, the indexes of the changes it waits for.
    pub fn prerequisites(&self) -> Vec<Vec<usize>> {
        order::prerequisites(&self.changes)
    }

    /// For each change that starts early, the indexes of the changes its early start waits for.
    pub fn early_prerequisites(&self) -> Vec<Option<Vec<usize>>> {
        order::early_prerequisites(&self.changes)
    }

    /// No change and nothing left to compare (what waits for an in-doubt transaction is
    /// left alone on purpose, and shown as a notice).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.pending().next().is_none()
    }

    /// Nothing to do and nothing wrong: no change, no deferral, no warning (a replica that
    /// does not stream, a subscription without its worker) and no notice (an in-doubt
    /// transaction left alone). `plan --detailed-exitcode` exits 0 only then.
    pub fn is_converged(&self) -> bool {
        self.changes.is_empty()
            && self.deferred.is_empty()
            && self.warnings.is_empty()
            && self.notices.is_empty()
    }

    /// Deferrals that an apply clears by running the changes they wait for.
    pub fn pending(&self) -> impl Iterator<Item = &Deferral> {
        self.deferred
            .iter()
            .filter(|d| !matches!(self.root_reason(d), DeferReason::InDoubt { .. }))
    }

    /// What a deferral waits for in the end, following `WaitsFor` through the other deferrals.
    pub fn root_reason<'a>(&'a self, deferral: &'a Deferral) -> &'a DeferReason {
        let mut reason = &deferral.reason;
        for _ in 0..self.deferred.len() {
            let DeferReason::WaitsFor { address } = reason else {
                break;
            };
            match self.deferred.iter().find(|d| &d.address == address) {
                Some(next) => reason = &next.reason,
                None => break,
            }
        }
        reason
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod purity_tests;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;
