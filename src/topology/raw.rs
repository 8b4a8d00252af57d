//! The topology file exactly as written: every value keeps its source location.
//!
//! Required keys are `Option`s here so that a missing key becomes a collected validation
//! problem instead of aborting the parse; `deny_unknown_fields` turns typos into errors.
//!
//! The same types give the file's JSON Schema (`dbtopo schema`): the `///` comments are its
//! descriptions, and `#[schemars(with = ...)]` names each field's type without its span
//! (src/topology/json_schema.rs has the hand-written parts).

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::json_schema::{Flag, PartitionBy, Port, Priority, SettingValue, Text, Votes};

/// A dbtopo topology: the PostgreSQL servers and MongoDB replica sets of one environment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "dbtopo topology")]
pub(super) struct RawTopology {
    /// Environment name: the prefix of every Docker object (`<name>-primary`, `<name>-net`).
    #[schemars(with = "Option<Text>")]
    pub name: Option<Spanned<String>>,
    /// The Docker images of the servers.
    pub images: Option<RawImages>,
    /// The PostgreSQL nodes, replicas, schema and fragments.
    #[schemars(with = "Option<RawPostgres>")]
    pub postgres: Option<Spanned<RawPostgres>>,
    /// The MongoDB replica sets (docs/mongodb.md).
    #[schemars(with = "Option<RawMongo>")]
    pub mongo: Option<Spanned<RawMongo>>,
}

/// The Docker images of the servers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Images")]
pub(super) struct RawImages {
    /// The PostgreSQL image; default `postgres:17`.
    #[schemars(with = "Option<Text>")]
    pub postgres: Option<Spanned<String>>,
    /// The MongoDB image, for the replica sets (e.g. `mongo:7`).
    #[schemars(with = "Option<Text>")]
    pub mongo: Option<Spanned<String>>,
}

/// The PostgreSQL part: servers, settings, access rules, schema and where tables live.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Postgres")]
pub(super) struct RawPostgres {
    /// The role replicas stream WAL as; default `repuser`.
    #[schemars(with = "Option<Text>")]
    pub replication_user: Option<Spanned<String>>,
    /// postgresql.conf settings for every server (a node or replica overrides them with its own).
    #[schemars(with = "Option<Entries<SettingValue>>")]
    pub settings: Option<RawSettings>,
    /// Addresses admitted besides the environment's network, always with scram-sha-256.
    #[schemars(with = "Option<Vec<RawAccess>>")]
    pub access: Option<Vec<Spanned<RawAccess>>>,
    /// Independent read-write servers, keyed by name.
    #[schemars(with = "Option<Entries<Option<RawNode>>>")]
    pub nodes: Option<Spanned<Entries<Option<RawNode>>>>,
    /// Streaming replicas: read-only copies of a node, keyed by name.
    #[schemars(with = "Option<Entries<Option<RawReplica>>>")]
    pub replicas: Option<Entries<Option<RawReplica>>>,
    /// The desired tables, from an SQL manifest (docs/schema.md).
    #[schemars(with = "Option<RawSchema>")]
    pub schema: Option<Spanned<RawSchema>>,
    /// Fragmented tables, keyed by table name (docs/fragments.md).
    #[schemars(with = "Option<Entries<RawFragment>>")]
    pub fragments: Option<Spanned<Entries<Spanned<RawFragment>>>>,
    /// Tables copied by logical replication: table name → the nodes that receive a copy.
    #[schemars(with = "Option<Entries<Vec<Text>>>")]
    pub reference_tables: Option<RawReferences>,
    /// Indexes built on every fragment of their table.
    #[schemars(with = "Option<Vec<RawIndex>>")]
    pub indexes: Option<Vec<Spanned<RawIndex>>>,
}

/// Reference tables: table → the nodes that receive a copy.
pub(super) type RawReferences = Spanned<Entries<Spanned<Vec<Spanned<String>>>>>;

/// One fragmented table: exactly one of `horizontal` or `vertical`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Fragment")]
pub(super) struct RawFragment {
    /// Rows spread over nodes by the key: by list, range or hash.
    #[schemars(with = "Option<RawHorizontal>")]
    pub horizontal: Option<Spanned<RawHorizontal>>,
    /// Columns spread over nodes, each part joined to the others on the key.
    #[schemars(with = "Option<RawVertical>")]
    pub vertical: Option<Spanned<RawVertical>>,
}

/// Horizontal fragments: each row goes to the part its key selects.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Horizontal")]
pub(super) struct RawHorizontal {
    /// The column that decides a row's part.
    #[schemars(with = "Option<Text>")]
    pub key: Option<Spanned<String>>,
    /// How the key is split: `list`, `range` or `hash`.
    #[schemars(with = "Option<PartitionBy>")]
    pub by: Option<Spanned<String>>,
    /// The parts, each on one node.
    #[schemars(with = "Option<Vec<RawHorizontalPart>>")]
    pub parts: Option<Spanned<Vec<Spanned<RawHorizontalPart>>>>,
}

/// One horizontal part: its node and the keys it takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HorizontalPart")]
pub(super) struct RawHorizontalPart {
    /// The node holding this part.
    #[schemars(with = "Option<Text>")]
    pub node: Option<Spanned<String>>,
    /// `by: list`: the key values of this part.
    #[schemars(with = "Option<Vec<Scalar>>")]
    pub values: Option<Spanned<Vec<Spanned<Scalar>>>>,
    /// This part takes the rows no other part takes.
    #[schemars(with = "Option<Flag>")]
    pub default: Option<Spanned<bool>>,
    /// `by: range`: the lowest key of this part (included).
    #[schemars(with = "Option<Scalar>")]
    pub from: Option<Spanned<Scalar>>,
    /// `by: range`: the key where this part ends (excluded).
    #[schemars(with = "Option<Scalar>")]
    pub to: Option<Spanned<Scalar>>,
}

/// Vertical fragments: the table's columns spread over nodes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Vertical")]
pub(super) struct RawVertical {
    /// The column every part keeps, to join the parts.
    #[schemars(with = "Option<Text>")]
    pub key: Option<Spanned<String>>,
    /// The parts, each on one node.
    #[schemars(with = "Option<Vec<RawVerticalPart>>")]
    pub parts: Option<Spanned<Vec<Spanned<RawVerticalPart>>>>,
}

/// One vertical part: its node and its columns.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "VerticalPart")]
pub(super) struct RawVerticalPart {
    /// The node holding these columns.
    #[schemars(with = "Option<Text>")]
    pub node: Option<Spanned<String>>,
    /// The columns of this part (besides the key).
    #[schemars(with = "Option<Vec<Text>>")]
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
}

/// An index built on every fragment of its table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Index")]
pub(super) struct RawIndex {
    /// The indexed table.
    #[schemars(with = "Option<Text>")]
    pub table: Option<Spanned<String>>,
    /// The indexed columns, in order.
    #[schemars(with = "Option<Vec<Text>>")]
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
    /// A unique index.
    #[schemars(with = "Option<Flag>")]
    pub unique: Option<bool>,
}

/// The desired tables: an SQL manifest compared with the database's catalog.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Schema")]
pub(super) struct RawSchema {
    /// CREATE TABLE / CREATE INDEX or `pg_dump -s` output, relative to the topology file.
    #[schemars(with = "Option<Text>")]
    pub file: Option<Spanned<String>>,
    /// The database holding the schema, created when missing; default `postgres`.
    #[schemars(with = "Option<Text>")]
    pub database: Option<Spanned<String>>,
    /// The nodes that receive the schema; default every node (replicas cannot be listed).
    #[schemars(with = "Option<Vec<Text>>")]
    pub nodes: Option<Vec<Spanned<String>>>,
}

/// Setting name → scalar value, in file order.
pub(super) type RawSettings = Entries<Spanned<Scalar>>;

/// One more address range admitted, for one database and one user.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Access")]
pub(super) struct RawAccess {
    /// `all`, `replication` or a database name.
    #[schemars(with = "Option<Text>")]
    pub database: Option<Spanned<String>>,
    /// `all` or a role name.
    #[schemars(with = "Option<Text>")]
    pub user: Option<Spanned<String>>,
    /// The client addresses, in CIDR form (e.g. `10.0.0.0/8`).
    #[schemars(with = "Option<Text>")]
    pub address: Option<Spanned<String>>,
    /// The authentication method; default `scram-sha-256`, weak TCP methods are refused.
    #[schemars(with = "Option<Text>")]
    pub method: Option<Spanned<String>>,
}

// Nodes and replicas are `Option` in their maps so that `primary:` with no body is reported
// as a node without a port rather than a type error.
/// A read-write PostgreSQL server.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Node")]
pub(super) struct RawNode {
    /// The host port, published on 127.0.0.1 only.
    #[schemars(with = "Option<Port>")]
    pub port: Option<Spanned<Scalar>>,
    /// postgresql.conf settings of this server, over the shared ones.
    #[schemars(with = "Option<Entries<SettingValue>>")]
    pub settings: Option<RawSettings>,
}

/// A streaming replica: a read-only copy of a node.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Replica")]
pub(super) struct RawReplica {
    /// The node it streams from (cascading replicas are not supported).
    #[schemars(with = "Option<Text>")]
    pub of: Option<Spanned<String>>,
    /// The host port, published on 127.0.0.1 only.
    #[schemars(with = "Option<Port>")]
    pub port: Option<Spanned<Scalar>>,
    /// Every commit on its node waits until this replica has it.
    #[schemars(with = "Option<Flag>")]
    pub synchronous: Option<Spanned<bool>>,
    /// postgresql.conf settings of this server, over the shared ones.
    #[schemars(with = "Option<Entries<SettingValue>>")]
    pub settings: Option<RawSettings>,
}

/// The `mongo:` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Mongo")]
pub(super) struct RawMongo {
    /// MongoDB replica sets, keyed by name.
    #[schemars(with = "Option<Entries<Option<RawReplicaSet>>>")]
    pub replica_sets: Option<Spanned<Entries<Option<RawReplicaSet>>>>,
}

// `rs0:` with no body is reported as a set without members.
/// One MongoDB replica set.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReplicaSet")]
pub(super) struct RawReplicaSet {
    /// The database holding the collections.
    #[schemars(with = "Option<Text>")]
    pub database: Option<Spanned<String>>,
    /// The folder of collection manifests, relative to the topology file.
    #[schemars(with = "Option<Text>")]
    pub collections: Option<Spanned<String>>,
    /// A member count (host ports from `port` up) or a list of members.
    #[schemars(with = "Option<RawMembers>")]
    pub members: Option<Spanned<RawMembers>>,
    /// The first host port when `members` is a count.
    #[schemars(with = "Option<Port>")]
    pub port: Option<Spanned<Scalar>>,
    /// Applied only when one of these profiles is active (`--profile`).
    #[schemars(with = "Option<Vec<Text>>")]
    pub profiles: Option<Vec<Spanned<String>>>,
}

/// `members:` is a count (ports from the set's `port`) or a list of members.
#[derive(Debug)]
pub(super) enum RawMembers {
    /// A number, string, boolean or empty value: checked later to be a count in range.
    Count(Scalar),
    List(Vec<Spanned<RawMember>>),
}

/// One replica set member.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Member")]
pub(super) struct RawMember {
    /// The host port, published on 127.0.0.1 only.
    #[schemars(with = "Option<Port>")]
    pub port: Option<Spanned<Scalar>>,
    /// Election priority (0 never becomes primary).
    #[schemars(with = "Option<Priority>")]
    pub priority: Option<Spanned<Scalar>>,
    /// Votes in elections: 0 or 1.
    #[schemars(with = "Option<Votes>")]
    pub votes: Option<Spanned<Scalar>>,
    /// Hidden from clients (priority 0).
    #[schemars(with = "Option<Flag>")]
    pub hidden: Option<Spanned<bool>>,
    /// An arbiter: votes, holds no data.
    #[schemars(with = "Option<Flag>")]
    pub arbiter: Option<Spanned<bool>>,
}

impl<'de> Deserialize<'de> for RawMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = RawMembers;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member count or a list of members")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawMembers, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = seq.next_element()? {
                    members.push(member);
                }
                Ok(RawMembers::List(members))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Null))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Int(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Int(v.into())))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Int(v)))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Int(
                    i128::try_from(v).unwrap_or(i128::MAX),
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMembers, E> {
                Ok(RawMembers::Count(Scalar::Str(v.to_owned())))
            }
        }

        deserializer.deserialize_any(MembersVisitor)
    }
}

/// A YAML mapping keyed by user-chosen names, in file order and with key spans
/// (a `BTreeMap` would lose both, and we label keys such as node names).
#[derive(Debug)]
pub(super) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A scalar whose type is decided by the YAML (setting values, ports); checked later so a
/// wrong type is a collected problem rather than a parse abort.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// Short description for messages, e.g. "the string `5433`".
    pub fn describe(&self) -> String {
        match self {
            Scalar::Null => "an empty value".to_owned(),
            Scalar::Bool(b) => format!("the boolean `{b}`"),
            Scalar::Int(i) => format!("the integer `{i}`"),
            Scalar::Float(x) => format!("the number `{x}`"),
            Scalar::Str(s) => format!("the string `{s}`"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single value (string, number or boolean)")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                i128::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer is too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Parse the YAML into the raw shape; only syntax, type and unknown-key errors fail here.
pub(super) fn parse(source: &str) -> Result<Spanned<RawTopology>, serde_saphyr::Error> {
    serde_saphyr::from_str(source)
}
