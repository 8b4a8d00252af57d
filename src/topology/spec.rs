//! The validated, normalized topology: what the rest of dbtopo consumes.
//!
//! Produced only by [`super::load`]; every value here has passed validation, so later stages
//! never re-check names, ports or references.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// A whole validated topology file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// Environment name: the prefix of every Docker object (`<name>-<node>`, `<name>-net`).
    pub name: String,
    pub images: Images,
    pub postgres: Postgres,
    /// MongoDB replica sets; empty when the topology declares none.
    pub mongo: Mongo,
    /// Problems that do not stop the topology (an even number of voting members), each with
    /// its place in the file (`topology.yaml:71:7: ...`).
    pub warnings: Vec<String>,
    /// Where each setting is written, for problems found once servers are asked.
    #[serde(skip)]
    pub setting_places: SettingPlaces,
}

/// The place of every setting in the topology file, so that a value judged wrong after
/// loading (refused by the servers' `pg_settings`) is shown where it is written.
#[derive(Debug, Clone, Default)]
pub struct SettingPlaces {
    source: Option<crate::diagnostics::Source>,
    /// By scope (a server's name, or empty for the shared `postgres.settings`) and name.
    spans: BTreeMap<(String, String), miette::SourceSpan>,
}

/// Places are where a value is written, not part of what the topology asks for.
impl PartialEq for SettingPlaces {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SettingPlaces {}

impl SettingPlaces {
    pub(crate) fn new(source: &crate::diagnostics::Source) -> Self {
        SettingPlaces {
            source: Some(source.clone()),
            spans: BTreeMap::new(),
        }
    }

    pub(crate) fn insert(&mut self, scope: &str, name: &str, span: miette::SourceSpan) {
        self.spans.insert((scope.to_owned(), name.to_owned()), span);
    }

    /// Where the value `node` gets for setting `name` is written: its own, else the shared
    /// one. `None` for a topology not read from a file.
    pub fn place(&self, node: &str, name: &str) -> Option<miette::SourceSpan> {
        self.source.as_ref()?;
        self.spans
            .get(&(node.to_owned(), name.to_owned()))
            .or_else(|| self.spans.get(&(String::new(), name.to_owned())))
            .copied()
    }

    /// A problem at `place` (from [`SettingPlaces::place`]).
    pub fn problem(&self, place: miette::SourceSpan, message: &str) -> Option<super::Problem> {
        Some(
            self.source
                .as_ref()?
                .problem(message)
                .at_span(place, "the servers refuse this value")
                .help("fix the value in the topology; nothing was touched"),
        )
    }
}

/// The `mongo:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Mongo {
    /// Replica sets by name.
    pub replica_sets: BTreeMap<String, ReplicaSet>,
}

/// One replica set: its members (each a container) and the collections of its database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaSet {
    /// The set's name (`--replSet`), also its members' prefix: `rs0-0`, `rs0-1`, ...
    pub name: String,
    /// In member `_id` order (0, 1, ...).
    pub members: Vec<MongoMember>,
    /// The database the collections live in (default: `app`).
    pub database: String,
    /// The folder of collection manifests (one `<collection>.yaml` each), when declared.
    pub collections: Option<CollectionsDir>,
    /// When not empty, the set is part of the environment only while one of these profiles
    /// is active (`--profile`), as with Docker Compose's profiles.
    pub profiles: Vec<String>,
}

impl Topology {
    /// The topology as `profiles` make it: replica sets of no active profile are left out
    /// (neither planned nor removed).
    pub fn with_profiles(mut self, profiles: &[String]) -> Topology {
        self.mongo.replica_sets.retain(|_, set| {
            set.profiles.is_empty() || set.profiles.iter().any(|p| profiles.contains(p))
        });
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MongoMember {
    /// The member `_id` in the replica set configuration: its position in the list.
    pub id: u32,
    /// `<set>-<id>`: the node name, as in the container name `<env>-<set>-<id>`.
    pub name: String,
    /// Host port (127.0.0.1) that reaches the member's 27017.
    pub port: u16,
    /// Election priority in tenths (MongoDB's priority × 10, so 1 is 10 and 0.5 is 5):
    /// default 10, 0 for arbiters and hidden members.
    pub priority_tenths: u32,
    /// 0 or 1, default 1.
    pub votes: u8,
    pub hidden: bool,
    pub arbiter: bool,
}

/// Where a replica set's collection manifests are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionsDir {
    /// As written in the topology (for messages).
    pub dir: String,
    /// Resolved against the topology file's folder.
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Images {
    /// PostgreSQL image reference, default `postgres:17`.
    pub postgres: String,
    /// MongoDB image reference, default `mongo:7` (used by the Mongo issue).
    pub mongo: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Postgres {
    /// Settings for every server (nodes and replicas), values normalized to strings
    /// (`true`/`false` become `on`/`off`, numbers their decimal text).
    pub settings: BTreeMap<String, String>,
    /// Addresses admitted besides the environment's own network, rendered after its rules.
    pub access: Vec<AccessRule>,
    /// Role used by replicas to stream from their upstream, default `repuser`.
    pub replication_user: String,
    /// Independent (read-write) servers, by node name.
    pub nodes: BTreeMap<String, Node>,
    /// Streaming replicas, by name; `of` names an entry of `nodes`.
    pub replicas: BTreeMap<String, Replica>,
    /// The desired schema and where it goes; `None` when the topology declares none.
    pub schema: Option<SchemaTarget>,
    /// How tables are spread over the nodes; `None` when nothing is fragmented.
    pub fragments: Option<Fragments>,
}

/// The distribution of the schema's tables: fragments, reference copies, distributed indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fragments {
    /// The node that answers for whole tables: the schema's node.
    pub coordinator: String,
    pub tables: BTreeMap<String, Fragmentation>,
    /// Tables copied to other nodes for local joins: table → nodes.
    pub reference_tables: BTreeMap<String, Vec<String>>,
    pub indexes: Vec<DistributedIndex>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fragmentation {
    /// Rows split by the value of `key`.
    Horizontal {
        key: String,
        parts: Vec<HorizontalPart>,
    },
    /// Columns split into groups that each carry the key.
    Vertical {
        key: String,
        parts: Vec<VerticalPart>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HorizontalPart {
    pub node: String,
    pub bound: Bound,
}

/// Which rows a horizontal part holds, in PostgreSQL's partitioning terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Bound {
    /// `FOR VALUES IN (...)`, values as SQL literals' text.
    List { values: Vec<String> },
    /// `FOR VALUES FROM (from) TO (to)`; `None` is MINVALUE / MAXVALUE.
    Range {
        from: Option<String>,
        to: Option<String>,
    },
    /// `FOR VALUES WITH (MODULUS m, REMAINDER r)`.
    Hash { modulus: u32, remainder: u32 },
    /// The rows no other part takes.
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerticalPart {
    pub node: String,
    /// The part's columns besides the key.
    pub columns: Vec<String>,
}

/// An index declared for a fragmented table: built on every fragment holding its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistributedIndex {
    pub table: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

/// Which SQL manifest describes the schema, which database receives it, on which nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaTarget {
    /// The manifest's path as written in the topology (for messages).
    pub file: String,
    /// The manifest's path resolved against the topology file's folder.
    pub path: PathBuf,
    /// Created when missing; default `postgres`.
    pub database: String,
    /// Nodes (never replicas: they receive the schema by replication); default all nodes.
    pub nodes: Vec<String>,
    /// The manifest, read and parsed when the topology is loaded; `None` when the file could
    /// not be read (the desired state says why).
    #[serde(skip)]
    pub manifest: Option<crate::schema::SqlManifest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    /// Host port published on 127.0.0.1.
    pub port: u16,
    /// Per-node settings; they override `Postgres::settings`.
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    pub name: String,
    /// The node this replica streams from.
    pub of: String,
    pub port: u16,
    pub settings: BTreeMap<String, String>,
    /// Its node waits for it to have each commit before reporting the commit done
    /// (`synchronous_standby_names`): a promotion of it then loses no acknowledged commit.
    pub synchronous: bool,
}

/// One pg_hba.conf line for TCP connections. Always `host` type and `scram-sha-256`:
/// validation refuses weaker methods for TCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRule {
    /// `all`, `replication`, or a database name.
    pub database: String,
    /// `all` or a role name.
    pub user: String,
    /// CIDR address, e.g. `0.0.0.0/0` or `172.16.0.0/12`.
    pub address: String,
}
