//! The model shared by the desired and the observed state, with the naming and labelling rules
//! that tie Docker objects to an environment.
//!
//! Desired and observed are the same types so the diff is a symmetric comparison; fields that
//! only an observation can fill (is the server reachable, what does `pg_settings` say) are
//! `Option`s left empty on the desired side.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Label keys: the labels are the state, there is no state file.
pub mod label {
    pub const ENV: &str = "dbtopo.env";
    pub const NODE: &str = "dbtopo.node";
    pub const ROLE: &str = "dbtopo.role";
    pub const UPSTREAM: &str = "dbtopo.upstream";
    pub const SPEC_HASH: &str = "dbtopo.spec-hash";
    pub const CONFIG_HASH: &str = "dbtopo.config-hash";
    /// On MongoDB members: the replica set (PostgreSQL observation skips these containers).
    pub const MONGO_SET: &str = "dbtopo.mongo-set";
    /// On volumes dbtopo keeps across environments: what they cache.
    pub const CACHE: &str = "dbtopo.cache";
}

/// Port every server listens on inside its container.
pub const SERVER_PORT: u16 = 5432;
/// Where the data volume is mounted; the cluster lives in `data/` below it.
pub const VOLUME_MOUNT: &str = "/var/lib/dbtopo";
/// Rendered configuration and the bootstrap script inside a container.
pub const CONFIG_DIR: &str = "/etc/dbtopo";
/// The superuser the controller connects as.
pub const SUPERUSER: &str = "postgres";
/// Fresh clusters that new nodes copy instead of running initdb: a volume shared by every
/// environment (it holds no password), kept by `destroy` like the image it goes with.
pub const INITDB_CACHE_VOLUME: &str = "dbtopo-initdb-cache";
/// Where primaries see that volume.
pub const INITDB_CACHE_MOUNT: &str = "/var/lib/dbtopo-initdb";

pub fn network_name(env: &str) -> String {
    format!("{env}-net")
}

pub fn container_name(env: &str, node: &str) -> String {
    format!("{env}-{node}")
}

pub fn volume_name(env: &str, node: &str) -> String {
    format!("{env}-{node}-data")
}

/// Physical replication slot on the upstream for one replica. The prefix marks slots dbtopo
/// owns, so a slot of a removed replica can be told from a slot somebody else made.
pub fn slot_name(replica: &str) -> String {
    format!("{SLOT_PREFIX}{}", replica.replace('-', "_"))
}

pub const SLOT_PREFIX: &str = "dbtopo_";

/// The prefix of every prepared transaction dbtopo makes.
pub const GID_PREFIX: &str = "dbtopo:";

/// The gid of a distributed transaction's prepared part on `node`.
pub fn participant_gid(id: &str, node: &str) -> String {
    format!("{GID_PREFIX}{id}:{node}")
}

/// The global id and node of a dbtopo gid (`dbtopo:<id>:<node>`).
pub fn parse_gid(gid: &str) -> Option<(&str, &str)> {
    gid.strip_prefix(GID_PREFIX)?.split_once(':')
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    Primary,
    Replica { upstream: String },
}

impl Role {
    pub fn as_label(&self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica { .. } => "replica",
        }
    }

    pub fn upstream(&self) -> Option<&str> {
        match self {
            Role::Primary => None,
            Role::Replica { upstream } => Some(upstream),
        }
    }
}

/// One environment, desired or observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct State {
    pub env: String,
    /// Docker network of the environment, by name.
    pub network: Option<String>,
    /// The subnets Docker gave that network (observed side only): pg_hba.conf admits them.
    pub network_subnets: Vec<String>,
    /// Image references and whether each is present locally.
    pub images: BTreeMap<String, bool>,
    /// Data volumes by node name.
    pub volumes: BTreeSet<String>,
    /// Servers by node name.
    pub servers: BTreeMap<String, Server>,
    /// CPUs of the Docker Engine's machine (observed side only): how many new servers can run
    /// initdb, which is CPU-bound, at once without slowing each other down.
    pub cpus: Option<usize>,
    /// Bytes of memory of the Docker Engine's machine (observed side only).
    pub memory: Option<u64>,
}

/// One PostgreSQL server: a container, its rendered configuration and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub node: String,
    pub role: Role,
    pub container: Option<Container>,
    /// Rendered postgresql.conf and pg_hba.conf (desired) or the files found in the container.
    pub config: Option<ConfigFiles>,
    /// Settings declared for this server, normalized (desired side only).
    pub settings: BTreeMap<String, String>,
    /// What the running server reports (observed side only; `None` when unreachable).
    pub live: Option<Live>,
    /// Why a running container's server did not answer (observed side only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent: Option<String>,
    /// How the cluster of a stopped container ended, from its `pg_control` (observed side
    /// only): what a promotion of its replica must have replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// Roles this server must have with REPLICATION LOGIN (the replication role, where it has replicas).
    pub replication_roles: BTreeSet<String>,
    /// Replication slots dbtopo manages on this server.
    pub slots: BTreeSet<String>,
    /// The rendered bootstrap script (desired side only; its hash is part of `spec_hash`).
    pub bootstrap: Option<String>,
    /// A node's postgresql.conf as a standby of each of its replicas (desired side only): what
    /// it streams with, once promoted in a replica's place, until that server is fenced.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub standby_confs: BTreeMap<String, String>,
}

/// A stopped cluster's end, as its `pg_control` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ended {
    /// Shut down cleanly: its last checkpoint is the last thing it wrote.
    pub clean: bool,
    /// Where that checkpoint record starts, in bytes of WAL.
    pub checkpoint: u64,
    /// It was a standby when it stopped (a promotion not done yet).
    pub in_recovery: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub host_port: u16,
    /// Hash of everything that forces a new container when it changes.
    pub spec_hash: String,
    pub running: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigFiles {
    pub postgresql_conf: String,
    pub pg_hba_conf: String,
}

impl ConfigFiles {
    pub fn hash(&self) -> String {
        crate::hashing::short_hash(&[&self.postgresql_conf, &self.pg_hba_conf])
    }

    /// The files with the environment network's `subnets` written into pg_hba.conf.
    pub fn on_network(&self, subnets: &[String]) -> ConfigFiles {
        ConfigFiles {
            postgresql_conf: self.postgresql_conf.clone(),
            pg_hba_conf: crate::templates::admit_network(&self.pg_hba_conf, subnets),
        }
    }
}

/// A running server's own view of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Live {
    /// Every row of pg_settings, by name.
    pub settings: BTreeMap<String, LiveSetting>,
    /// Settings overridden with ALTER SYSTEM (postgresql.auto.conf), which dbtopo never uses.
    pub altered: BTreeSet<String>,
    pub in_recovery: bool,
    /// For a replica: the WAL receiver reports `streaming`.
    pub streaming: bool,
    /// The cluster's identity (`pg_control_system()`): a replica has its upstream's.
    pub system_identifier: Option<String>,
    /// The timeline of the last checkpoint.
    pub timeline: Option<i32>,
    /// How far its WAL goes: replayed on a replica, written on a primary.
    pub lsn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveSetting {
    pub value: String,
    pub unit: Option<String>,
    /// pg_settings.context: `postmaster` settings need a restart, the others a reload.
    pub context: String,
    pub pending_restart: bool,
    /// What values the server accepts (`None` where not read).
    pub accepts: Option<Accepts>,
}

/// The values a server accepts for a setting, as `pg_settings` says: its type, bounds (in
/// the setting's unit) and, for an enum, the names it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepts {
    /// `bool`, `integer`, `real`, `enum` or `string`.
    pub vartype: String,
    pub min: Option<String>,
    pub max: Option<String>,
    pub enumvals: Vec<String>,
}

impl LiveSetting {
    pub fn needs_restart(&self) -> bool {
        self.context == "postmaster"
    }
}
