//! The topology file exactly as written: every value keeps its source location.
//!
//! Required keys are `Option`s here so that a missing key becomes a collected validation
//! problem instead of aborting the parse; `deny_unknown_fields` turns typos into errors.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    pub name: Option<Spanned<String>>,
    pub images: Option<RawImages>,
    pub postgres: Option<Spanned<RawPostgres>>,
    pub mongo: Option<Spanned<RawMongo>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImages {
    pub postgres: Option<Spanned<String>>,
    pub mongo: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPostgres {
    pub replication_user: Option<Spanned<String>>,
    pub settings: Option<RawSettings>,
    pub access: Option<Vec<Spanned<RawAccess>>>,
    pub nodes: Option<Spanned<Entries<Option<RawNode>>>>,
    pub replicas: Option<Entries<Option<RawReplica>>>,
    pub schema: Option<Spanned<RawSchema>>,
    pub fragments: Option<Spanned<Entries<Spanned<RawFragment>>>>,
    pub reference_tables: Option<RawReferences>,
    pub indexes: Option<Vec<Spanned<RawIndex>>>,
}

/// Reference tables: table → the nodes that receive a copy.
pub(super) type RawReferences = Spanned<Entries<Spanned<Vec<Spanned<String>>>>>;

/// One fragmented table: exactly one of the two ways.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFragment {
    pub horizontal: Option<Spanned<RawHorizontal>>,
    pub vertical: Option<Spanned<RawVertical>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHorizontal {
    pub key: Option<Spanned<String>>,
    pub by: Option<Spanned<String>>,
    pub parts: Option<Spanned<Vec<Spanned<RawHorizontalPart>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHorizontalPart {
    pub node: Option<Spanned<String>>,
    pub values: Option<Spanned<Vec<Spanned<Scalar>>>>,
    pub default: Option<Spanned<bool>>,
    pub from: Option<Spanned<Scalar>>,
    pub to: Option<Spanned<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVertical {
    pub key: Option<Spanned<String>>,
    pub parts: Option<Spanned<Vec<Spanned<RawVerticalPart>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerticalPart {
    pub node: Option<Spanned<String>>,
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIndex {
    pub table: Option<Spanned<String>>,
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
    pub unique: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchema {
    pub file: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
    pub nodes: Option<Vec<Spanned<String>>>,
}

/// Setting name → scalar value, in file order.
pub(super) type RawSettings = Entries<Spanned<Scalar>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    pub database: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
}

/// Nodes and replicas are `Option` in their maps so that `primary:` with no body is reported
/// as a node without a port rather than a type error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub port: Option<Spanned<Scalar>>,
    pub settings: Option<RawSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplica {
    pub of: Option<Spanned<String>>,
    pub port: Option<Spanned<Scalar>>,
    /// Every commit on its node waits until this replica has it.
    pub synchronous: Option<Spanned<bool>>,
    pub settings: Option<RawSettings>,
}

/// The `mongo:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMongo {
    pub replica_sets: Option<Spanned<Entries<Option<RawReplicaSet>>>>,
}

/// One replica set; `rs0:` with no body is reported as a set without members.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplicaSet {
    pub database: Option<Spanned<String>>,
    pub collections: Option<Spanned<String>>,
    pub members: Option<Spanned<RawMembers>>,
    /// The first host port when `members` is a count.
    pub port: Option<Spanned<Scalar>>,
    /// Applied only when one of these profiles is active (`--profile`).
    pub profiles: Option<Vec<Spanned<String>>>,
}

/// `members:` is a count (ports from the set's `port`) or a list of members.
#[derive(Debug)]
pub(super) enum RawMembers {
    /// A number, string, boolean or empty value: checked later to be a count in range.
    Count(Scalar),
    List(Vec<Spanned<RawMember>>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMember {
    pub port: Option<Spanned<Scalar>>,
    pub priority: Option<Spanned<Scalar>>,
    pub votes: Option<Spanned<Scalar>>,
    pub hidden: Option<Spanned<bool>>,
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
