//! What the topology asks for, built purely from the `Topology` (which carries its SQL
//! manifest, read and parsed once when it was loaded) and the collection manifests: the
//! servers, the schema with its fragments and reference copies, and the MongoDB sets. Files
//! are read at the edge, never here.

mod servers;

use std::collections::{BTreeMap, BTreeSet};

use miette::{IntoDiagnostic, Result, miette};

pub use servers::{container_spec_hash, desired_state};

use crate::fragments::coordinator::{self, CoordinatorObject, ObjectKind};
use crate::fragments::placement::{self, Placement};
use crate::model::{self, State};
use crate::mongo::model::Collection;
use crate::schema::{Manifest, Schema, ddl};
use crate::topology::{ReplicaSet, SchemaTarget, Topology};

/// The collection manifests, read from disk by the caller.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Each replica set's collections, by set.
    pub collections: BTreeMap<String, Vec<Collection>>,
}

/// What the topology asks for.
pub struct Desired {
    pub state: State,
    pub schema: Option<DesiredSchema>,
    pub mongo: Vec<DesiredSet>,
    pub mongo_image: String,
    /// Where the topology writes each setting, to show a refused value at its place.
    pub setting_places: crate::topology::SettingPlaces,
}

/// A replica set and the collections its manifests declare.
pub struct DesiredSet {
    pub set: ReplicaSet,
    pub collections: Vec<Collection>,
}

pub struct DesiredSchema {
    pub target: SchemaTarget,
    pub manifest: Manifest,
    /// The manifest's text as the server runs it to normalize it ([`Manifest::server_sql`]).
    pub sql: String,
    pub fragments: Option<DesiredFragments>,
}

/// Horizontally fragmented tables: where their parts live and what the coordinator needs.
pub struct DesiredFragments {
    pub coordinator: String,
    pub fragmented: BTreeSet<String>,
    pub placement: Placement,
    pub objects: Vec<CoordinatorObject>,
    /// The topology's `indexes:` on fragmented tables.
    pub indexes: Vec<crate::topology::DistributedIndex>,
}

/// One node that receives tables: the SQL that describes them (run in a scratch schema to
/// normalize) and the model used when the node is new.
pub struct NodeTarget {
    pub node: String,
    pub sql: String,
    pub fresh: Schema,
    /// The coordinator of fragmented tables: those tables are managed as coordinator
    /// objects, not by the schema diff.
    pub coordinator: bool,
}

impl Desired {
    /// Build the desired state. Pure: the collections come in `manifests`.
    pub fn build(topology: &Topology, manifests: &Manifests) -> Result<Desired> {
        let state = desired_state(topology).into_diagnostic()?;
        let schema = match &topology.postgres.schema {
            Some(target) => Some(DesiredSchema::build(topology, target)?),
            None => None,
        };
        let mongo = topology
            .mongo
            .replica_sets
            .values()
            .map(|set| DesiredSet {
                set: set.clone(),
                collections: manifests
                    .collections
                    .get(&set.name)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Desired {
            state,
            schema,
            mongo,
            mongo_image: topology.images.mongo.clone(),
            setting_places: topology.setting_places.clone(),
        })
    }

    pub fn env(&self) -> &str {
        &self.state.env
    }

    /// The Docker names of this environment's containers, volumes and network.
    pub fn own_names(&self) -> crate::observed::OwnNames {
        let env = self.env();
        let nodes = self.state.servers.keys().cloned().chain(
            self.mongo
                .iter()
                .flat_map(|s| s.set.members.iter().map(|m| m.name.clone())),
        );
        let mut names = crate::observed::OwnNames::default();
        for node in nodes {
            names.containers.insert(model::container_name(env, &node));
            names.volumes.insert(model::volume_name(env, &node));
        }
        names.networks.insert(model::network_name(env));
        names
    }

    /// The host port the topology gives `node` (0 for a node it does not have).
    pub fn host_port(&self, node: &str) -> u16 {
        self.state
            .servers
            .get(node)
            .and_then(|s| s.container.as_ref())
            .map_or(0, |c| c.host_port)
    }

    /// Each copying node's subscription to its reference tables, by node.
    pub fn subscriptions(&self) -> Vec<(String, CoordinatorObject)> {
        let Some(schema) = &self.schema else {
            return Vec::new();
        };
        let Some(fragments) = &schema.fragments else {
            return Vec::new();
        };
        fragments
            .placement
            .references
            .iter()
            .map(|(node, tables)| {
                let object = coordinator::subscription(
                    self.env(),
                    &fragments.coordinator,
                    &schema.target.database,
                    node,
                    tables,
                );
                (node.clone(), object)
            })
            .collect()
    }

    /// The node that answers for whole tables and records transaction decisions.
    pub fn coordinator(&self) -> Option<&str> {
        let schema = self.schema.as_ref()?;
        Some(match &schema.fragments {
            Some(f) => f.coordinator.as_str(),
            None => schema.target.nodes.first()?.as_str(),
        })
    }
}

impl DesiredSchema {
    fn build(topology: &Topology, target: &SchemaTarget) -> Result<DesiredSchema> {
        let Some(read) = &target.manifest else {
            return Err(miette!("cannot read schema file {}", target.path.display()));
        };
        let manifest = read.parsed.clone()?;
        // What the server runs to normalize the manifest (blanked where dbtopo ignores it).
        let sql = manifest.server_sql.clone();
        let fragments = topology.postgres.fragments.as_ref().map(|fragments| {
            let placement = placement::place(&manifest.schema, fragments);
            DesiredFragments {
                coordinator: fragments.coordinator.clone(),
                fragmented: fragments.tables.keys().cloned().collect(),
                objects: coordinator::objects(&topology.name, &target.database, &placement),
                indexes: fragments.indexes.clone(),
                placement,
            }
        });
        Ok(DesiredSchema {
            target: target.clone(),
            manifest,
            sql,
            fragments,
        })
    }

    /// Every node that receives tables: the schema's nodes, then the fragment nodes.
    pub fn node_targets(&self) -> Vec<NodeTarget> {
        let mut targets: Vec<NodeTarget> = self
            .target
            .nodes
            .iter()
            .map(|node| NodeTarget {
                node: node.clone(),
                sql: self.coordinator_sql(),
                fresh: self.coordinator_view(&self.manifest.schema),
                coordinator: self.fragments.is_some(),
            })
            .collect();
        for (node, schema) in self
            .fragments
            .iter()
            .flat_map(|f| &f.placement.fragment_nodes)
        {
            targets.push(NodeTarget {
                node: node.clone(),
                sql: schema_sql(schema),
                fresh: schema.clone(),
                coordinator: false,
            });
        }
        targets
    }

    /// What the coordinator's tables are normalized from: the manifest, then the tables of
    /// the parts it keeps itself (derived from the manifest), so those come back spelled by
    /// the server too.
    fn coordinator_sql(&self) -> String {
        let derived = self.coordinator_view(&self.manifest.schema);
        let mut local = Schema::default();
        for (name, table) in &derived.tables {
            if !self.manifest.schema.tables.contains_key(name) {
                local.tables.insert(name.clone(), table.clone());
            }
        }
        for (name, index) in &derived.indexes {
            if local.tables.contains_key(&index.table) {
                local.indexes.insert(name.clone(), index.clone());
            }
        }
        if local.tables.is_empty() {
            self.sql.clone()
        } else {
            format!("{}\n{}", self.sql, schema_sql(&local))
        }
    }

    /// The coordinator's catalog (or the normalized manifest, which holds the local parts
    /// already) without what the coordinator objects manage.
    pub fn coordinator_current(&self, schema: &Schema) -> Schema {
        match &self.fragments {
            Some(f) => placement::coordinator_schema(schema, &f.fragmented, &[], &[]),
            None => schema.clone(),
        }
    }

    /// The coordinator's desired tables: `schema` without what the coordinator objects manage,
    /// with the local parts of fragmented tables derived from their logical tables.
    fn coordinator_view(&self, schema: &Schema) -> Schema {
        match &self.fragments {
            Some(f) => placement::coordinator_schema(
                schema,
                &f.fragmented,
                &f.placement.vertical,
                &f.placement.local_partitions,
            ),
            None => schema.clone(),
        }
    }
}

impl DesiredFragments {
    /// The tables and views the coordinator's fragment objects are made of.
    pub fn coordinator_tables(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    ObjectKind::PartitionedTable
                        | ObjectKind::VerticalTable
                        | ObjectKind::ReferenceCopy
                )
            })
            .map(|o| o.name.clone())
            .collect()
    }
}

/// DDL that creates `schema` (run inside a transaction, so indexes are built plainly).
fn schema_sql(schema: &Schema) -> String {
    let mut sql: Vec<String> = schema.tables.values().map(ddl::create_table).collect();
    sql.extend(
        schema
            .indexes
            .values()
            .map(|i| ddl::index_definition(i, false)),
    );
    sql.join("\n")
}
