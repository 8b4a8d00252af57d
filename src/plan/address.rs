//! Typed addresses: what identifies every change of a plan and every prerequisite, so that a
//! prerequisite is checked against the plan instead of matched as text.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// One resource dbtopo manages. Shown (and serialized) as `kind.name`, e.g. `node.primary`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    Image(String),
    Network(String),
    /// A server's data volume, by node.
    Volume(String),
    /// A server's container, by node.
    Node(String),
    Role {
        node: String,
        role: String,
    },
    Slot {
        node: String,
        slot: String,
    },
    /// The tables of one node's database, by node.
    Schema(String),
    FdwServer(String),
    FragmentedTable(String),
    Publication(String),
    Subscription(String),
    VerticalTable(String),
    ReferenceCopy(String),
    /// A fragment table left on a node by a part that moved away.
    OldFragment {
        node: String,
        table: String,
    },
    /// A part kept on the coordinator after its rows were copied elsewhere.
    MovedPart(String),
    PreparedXact {
        node: String,
        gid: String,
    },
    /// A distributed transaction's decision record on the coordinator, by global id.
    TxnDecision(String),
    MongoMember(String),
    ReplicaSet(String),
    MongoCollection {
        set: String,
        collection: String,
    },
}

impl Address {
    /// The part before the first dot: what kind of resource this is.
    pub fn kind(&self) -> &'static str {
        match self {
            Address::Image(_) => "image",
            Address::Network(_) => "network",
            Address::Volume(_) => "volume",
            Address::Node(_) => "node",
            Address::Role { .. } => "role",
            Address::Slot { .. } => "slot",
            Address::Schema(_) => "schema",
            Address::FdwServer(_) => "fdw_server",
            Address::FragmentedTable(_) => "fragmented_table",
            Address::Publication(_) => "publication",
            Address::Subscription(_) => "subscription",
            Address::VerticalTable(_) => "vertical_table",
            Address::ReferenceCopy(_) => "reference_copy",
            Address::OldFragment { .. } => "old_fragment",
            Address::MovedPart(_) => "moved_part",
            Address::PreparedXact { .. } => "prepared_xact",
            Address::TxnDecision(_) => "txn_decision",
            Address::MongoMember(_) => "mongo_member",
            Address::ReplicaSet(_) => "replica_set",
            Address::MongoCollection { .. } => "mongo_collection",
        }
    }

    pub fn node(node: &str) -> Address {
        Address::Node(node.to_owned())
    }

    pub fn schema(node: &str) -> Address {
        Address::Schema(node.to_owned())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            Address::Image(name)
            | Address::Network(name)
            | Address::Volume(name)
            | Address::Node(name)
            | Address::Schema(name)
            | Address::FdwServer(name)
            | Address::FragmentedTable(name)
            | Address::Publication(name)
            | Address::Subscription(name)
            | Address::VerticalTable(name)
            | Address::ReferenceCopy(name)
            | Address::MovedPart(name)
            | Address::TxnDecision(name)
            | Address::MongoMember(name)
            | Address::ReplicaSet(name) => write!(f, "{kind}.{name}"),
            Address::Role { node, role: name }
            | Address::Slot { node, slot: name }
            | Address::OldFragment { node, table: name }
            | Address::PreparedXact { node, gid: name } => write!(f, "{kind}.{node}.{name}"),
            Address::MongoCollection { set, collection } => {
                write!(f, "{kind}.{set}.{collection}")
            }
        }
    }
}

/// An address that is not `kind.name` of a known kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address: expected kind.name, e.g. node.primary")]
pub struct BadAddress(String);

impl FromStr for Address {
    type Err = BadAddress;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadAddress(text.to_owned());
        let (kind, name) = text.split_once('.').ok_or_else(bad)?;
        let one = || name.to_owned();
        let two = || {
            name.split_once('.')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(bad)
        };
        if name.is_empty() {
            return Err(bad());
        }
        Ok(match kind {
            "image" => Address::Image(one()),
            "network" => Address::Network(one()),
            "volume" => Address::Volume(one()),
            "node" => Address::Node(one()),
            "schema" => Address::Schema(one()),
            "fdw_server" => Address::FdwServer(one()),
            "fragmented_table" => Address::FragmentedTable(one()),
            "publication" => Address::Publication(one()),
            "subscription" => Address::Subscription(one()),
            "vertical_table" => Address::VerticalTable(one()),
            "reference_copy" => Address::ReferenceCopy(one()),
            "moved_part" => Address::MovedPart(one()),
            "txn_decision" => Address::TxnDecision(one()),
            "mongo_member" => Address::MongoMember(one()),
            "replica_set" => Address::ReplicaSet(one()),
            "role" => two().map(|(node, role)| Address::Role { node, role })?,
            "slot" => two().map(|(node, slot)| Address::Slot { node, slot })?,
            "old_fragment" => two().map(|(node, table)| Address::OldFragment { node, table })?,
            "prepared_xact" => two().map(|(node, gid)| Address::PreparedXact { node, gid })?,
            "mongo_collection" => {
                two().map(|(set, collection)| Address::MongoCollection { set, collection })?
            }
            _ => return Err(bad()),
        })
    }
}

/// Tests write addresses as text.
#[cfg(test)]
impl From<&str> for Address {
    fn from(text: &str) -> Self {
        text.parse().expect("a valid address")
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl PartialEq<str> for Address {
    fn eq(&self, other: &str) -> bool {
        other.parse::<Address>().is_ok_and(|a| a == *self)
    }
}

impl PartialEq<&str> for Address {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_kind_dot_name() {
        assert_eq!(Address::node("primary").to_string(), "node.primary");
        let slot = Address::Slot {
            node: "primary".into(),
            slot: "dbtopo_replica".into(),
        };
        assert_eq!(slot.to_string(), "slot.primary.dbtopo_replica");
        assert_eq!(slot, "slot.primary.dbtopo_replica");
        assert_eq!(
            serde_json::to_string(&Address::schema("shard-eu")).unwrap(),
            "\"schema.shard-eu\""
        );
        for text in [
            "image.postgres:17",
            "slot.primary.dbtopo_replica",
            "prepared_xact.shard-eu.dbtopo:18f2-0a:shard-eu",
            "mongo_collection.rs0.product_catalog",
            "old_fragment.shard-us.orders_eu",
            "txn_decision.18f2-0a",
        ] {
            assert_eq!(text.parse::<Address>().unwrap().to_string(), text);
        }
        assert!("nodeprimary".parse::<Address>().is_err());
        assert!("table.users".parse::<Address>().is_err());
        assert!("role.primary".parse::<Address>().is_err());
    }
}
