//! The desired state (servers, schema, fragments) and `plan_for`: observe, then diff each part.

use std::collections::{BTreeMap, BTreeSet};

use bollard::Docker;
use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::desired::desired_state;
use crate::execute;
use crate::fragments::coordinator::{self, CoordinatorObject, Found, ObjectKind};
use crate::fragments::placement::{self, Placement};
use crate::model::State;
use crate::observe::{self, catalog::SchemaObserveError};
use crate::plan::{self, Plan, movement};
use crate::schema::{
    Manifest, NodeSchema, ObservedSchema, RejectedByServer, Schema, ddl, parse_manifest,
};
use crate::secrets::Secrets;
use crate::topology::{SchemaTarget, Topology};
use crate::txn::recovery::{self, Prepared, Resolution};

/// What the topology asks for: the servers, the schema with its parsed manifest, and the
/// MongoDB replica sets with their collections.
pub struct Desired {
    pub state: State,
    pub schema: Option<DesiredSchema>,
    pub mongo: Vec<DesiredSet>,
    pub mongo_image: String,
}

/// A replica set and the collections its manifests declare.
pub struct DesiredSet {
    pub set: crate::topology::ReplicaSet,
    pub collections: Vec<crate::mongo::model::Collection>,
}

pub struct DesiredSchema {
    pub target: SchemaTarget,
    pub manifest: Manifest,
    /// The manifest's text, run as is on the server to normalize it.
    pub sql: String,
    pub fragments: Option<DesiredFragments>,
}

/// Horizontally fragmented tables: where their parts live and what the coordinator needs.
pub struct DesiredFragments {
    pub coordinator: String,
    pub fragmented: BTreeSet<String>,
    pub placement: Placement,
    pub objects: Vec<CoordinatorObject>,
}

/// One node that receives tables: the SQL that describes them (run in a scratch schema to
/// normalize) and the model used when the node is new.
struct NodeTarget {
    node: String,
    sql: String,
    fresh: Schema,
    /// The coordinator of fragmented tables: those tables are managed as coordinator
    /// objects, not by the schema diff.
    coordinator: bool,
}

impl DesiredSchema {
    fn node_targets(&self) -> Vec<NodeTarget> {
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
    fn coordinator_current(&self, schema: &Schema) -> Schema {
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

pub fn desired(topology: &Topology) -> Result<Desired> {
    let state = desired_state(topology).into_diagnostic()?;
    let schema = match &topology.postgres.schema {
        None => None,
        Some(target) => {
            let sql = std::fs::read_to_string(&target.path)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read schema file {}", target.path.display()))?;
            let manifest = parse_manifest(&target.file, &sql)?;
            let fragments = topology.postgres.fragments.as_ref().map(|fragments| {
                let placement = placement::place(&manifest.schema, fragments);
                DesiredFragments {
                    coordinator: fragments.coordinator.clone(),
                    fragmented: fragments.tables.keys().cloned().collect(),
                    objects: coordinator::objects(&topology.name, &target.database, &placement),
                    placement,
                }
            });
            Some(DesiredSchema {
                target: target.clone(),
                manifest,
                sql,
                fragments,
            })
        }
    };
    let mongo = topology
        .mongo
        .replica_sets
        .values()
        .map(|set| {
            let collections = match &set.collections {
                Some(dir) => crate::mongo::manifest::load_collections(dir)?,
                None => Vec::new(),
            };
            Ok(DesiredSet {
                set: set.clone(),
                collections,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Desired {
        state,
        schema,
        mongo,
        mongo_image: topology.images.mongo.clone(),
    })
}

pub async fn plan_for(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
) -> Result<Plan> {
    plan_with(docker, desired, secrets, None).await
}

/// [`plan_for`], with the sessions `early` already opening when given.
pub async fn plan_with(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
    early: Option<EarlySessions>,
) -> Result<Plan> {
    // The servers are asked while Docker is: a plan costs the slower of the two.
    let sessions = async {
        match early {
            Some(early) => early.join().await,
            None => open_sessions(desired, secrets).await,
        }
    };
    let (listing, mut sessions) = tokio::join!(observe::list(docker, &desired.state), sessions);
    let observed =
        observe::observe_listed(docker, &desired.state.env, listing?, secrets, &mut sessions)
            .await?;
    let (probes, mut answered) = probes(sessions);
    let mut changes = plan::diff(&desired.state, &observed);
    let mut deferred = Vec::new();
    let targets = desired.schema.as_ref().map(|s| s.node_targets());
    let found_schemas = match (&desired.schema, &targets) {
        (Some(schema), Some(targets)) => Some(schema_states(
            &desired.state,
            &observed,
            schema,
            targets,
            probes,
        )?),
        _ => None,
    };
    let in_doubt_found = in_doubt(desired, &observed, secrets, &mut answered).await;
    let mut subscriptions_found = subscription_states(found_schemas.as_deref(), &mut answered)?;
    if let (Some(schema), Some(targets), Some(mut found)) =
        (&desired.schema, targets, found_schemas)
    {
        // Fragments first: the tables of parts that move are held back from the schema diff
        // until their rows are safe elsewhere.
        let mut fragment_changes = Vec::new();
        if let Some(fragments) = &schema.fragments {
            let coordinator = found
                .iter()
                .find(|(node, _, _)| *node == fragments.coordinator);
            let coordinator_port = coordinator.map_or(0, |(_, port, _)| *port);
            let state = coordinator_state(coordinator, &mut answered)?;
            let nodes = movement::Nodes {
                coordinator: &fragments.coordinator,
                by_server: desired
                    .state
                    .servers
                    .keys()
                    .map(|node| (placement::server_name(node), node.clone()))
                    .collect(),
                ports: desired
                    .state
                    .servers
                    .keys()
                    .map(|node| (node.clone(), host_port(&desired.state, node)))
                    .collect(),
                database: &schema.target.database,
                wanted: fragments
                    .placement
                    .fragment_nodes
                    .iter()
                    .map(|(node, s)| (node.clone(), s.tables.keys().cloned().collect()))
                    .collect(),
            };
            let observed_objects = match &state {
                plan::fragments::CoordinatorState::Observed(f) => Some(f),
                _ => None,
            };
            let mut movements = BTreeMap::new();
            let mut planned = Vec::new();
            for object in &fragments.objects {
                if let Some(found) = observed_objects
                    && let Some(m) =
                        movement::movement(object, found, &nodes).map_err(|r| miette!("{r}"))?
                {
                    planned.push((plan::fragments::address(object), m.clone()));
                    movements.insert(object.name.clone(), m);
                }
            }
            hold_back(
                &mut found,
                &movement::held_tables(&planned, observed_objects, &nodes),
                &fragments.coordinator,
            );
            let cleanup = movement::cleanup(&planned, observed_objects, &nodes);
            let cleanup_addresses: Vec<String> =
                cleanup.iter().map(|c| c.address.clone()).collect();
            let fragment_nodes: Vec<String> =
                fragments.placement.fragment_nodes.keys().cloned().collect();
            fragment_changes = plan::fragments::changes(&plan::fragments::Input {
                objects: &fragments.objects,
                state: &state,
                coordinator: &fragments.coordinator,
                host_port: coordinator_port,
                database: &schema.target.database,
                fragment_nodes: &fragment_nodes,
                movements: &movements,
                nodes: &nodes,
                cleanup: &cleanup_addresses,
            })
            .map_err(|reason| miette!("{reason}"))?;
            fragment_changes.extend(cleanup);
        }
        let inputs: Vec<plan::schema::NodeInput<'_>> = found
            .iter()
            .zip(&targets)
            .map(
                |((node, host_port, observed), target)| plan::schema::NodeInput {
                    node,
                    host_port: *host_port,
                    observed,
                    fresh: &target.fresh,
                },
            )
            .collect();
        let (schema_changes, waiting) = plan::schema::changes(&schema.target, &inputs);
        changes.extend(schema_changes);
        changes.extend(fragment_changes);
        deferred = waiting;
        if let Some(fragments) = &schema.fragments {
            for (node, tables) in &fragments.placement.references {
                let object = coordinator::subscription(
                    &desired.state.env,
                    &fragments.coordinator,
                    &schema.target.database,
                    node,
                    tables,
                );
                let port = host_port(&desired.state, node);
                let state = subscriptions_found
                    .remove(node)
                    .unwrap_or(plan::fragments::SubscriptionState::Unknown);
                changes.extend(plan::fragments::subscription_change(
                    &object,
                    &state,
                    node,
                    &fragments.coordinator,
                    port,
                    &schema.target.database,
                ));
            }
        }
    }
    let found = in_doubt_found?;
    let (finish, in_doubt_warnings) = plan::prepared::changes(&found, &mut changes);
    changes.extend(finish);
    let (mongo_changes, mongo_warnings, deferred_mongo) =
        mongo_part(docker, desired, secrets, &changes).await?;
    changes.extend(mongo_changes);
    let mut plan = Plan::new(desired.state.env.clone(), changes);
    plan.warnings = plan::warnings(&desired.state, &observed);
    plan.notices = in_doubt_warnings;
    plan.warnings.extend(mongo_warnings);
    plan.deferred_schema = deferred;
    plan.deferred_mongo = deferred_mongo;
    Ok(plan)
}

/// dbtopo's prepared transactions on the running nodes, each with what the coordinator's
/// decision record says to do, and the node's host port. When the record cannot be read,
/// nothing is resolved (a transaction decided to commit must never be rolled back).
async fn in_doubt(
    desired: &Desired,
    observed: &State,
    secrets: Option<&Secrets>,
    answered: &mut Answered,
) -> Result<Vec<(Prepared, Resolution, u16)>> {
    // dbtopo's transactions run in the schema's database: without one there are none.
    let (Some(secrets), Some(_)) = (secrets, &desired.schema) else {
        return Ok(Vec::new());
    };
    let nodes: Vec<(String, u16)> = desired
        .state
        .servers
        .values()
        .filter(|s| s.role == crate::model::Role::Primary)
        .filter(|s| {
            observed
                .servers
                .get(&s.node)
                .is_some_and(|o| o.live.is_some())
        })
        .map(|s| (s.node.clone(), host_port(observed, &s.node)))
        .collect();
    // pg_prepared_xacts is the whole server's: the sessions listed it on any database. A node
    // the session could not reach is asked where its container runs now.
    let lookups = nodes.iter().map(|(node, port)| {
        let listed = answered.prepared.remove(node);
        async move {
            if let Some(listed) = listed {
                return listed;
            }
            let client = observe::postgres::connect_to(
                *port,
                &secrets.superuser,
                "postgres",
                std::time::Duration::from_secs(3),
            )
            .await?;
            recovery::prepared(&client, node).await
        }
    });
    let lookups: Vec<_> = lookups.collect();
    let mut found = Vec::new();
    for (result, (node, _)) in futures_util::future::join_all(lookups)
        .await
        .into_iter()
        .zip(&nodes)
    {
        found.extend(result.map_err(|e| {
            miette!(
                "cannot list the prepared transactions of node {node}: {}",
                execute::server_message(&e)
            )
        })?);
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let coordinator = desired.schema.as_ref().map(|schema| {
        let node = schema
            .fragments
            .as_ref()
            .map_or_else(|| schema.target.nodes[0].clone(), |f| f.coordinator.clone());
        (
            host_port(observed, &node),
            schema.target.database.clone(),
            node,
        )
    });
    let coordinator_client = coordinator
        .as_ref()
        .and_then(|(_, _, node)| answered.clients.get(node));
    let decisions = match (coordinator, coordinator_client) {
        (_, Some(client)) => recovery::decisions(client, &found).await.ok(),
        (Some((port, database, _)), None) => {
            match observe::postgres::connect_to(
                port,
                &secrets.superuser,
                &database,
                std::time::Duration::from_secs(3),
            )
            .await
            {
                Ok(client) => recovery::decisions(&client, &found).await.ok(),
                Err(_) => None,
            }
        }
        (None, None) => None,
    };
    Ok(found
        .into_iter()
        .map(|prepared| {
            let resolution = match &decisions {
                None => Resolution::Wait,
                Some(decisions) => {
                    let id = crate::txn::parse_gid(&prepared.gid).map(|(id, _)| id);
                    recovery::resolve(
                        id.and_then(|id| decisions.get(id)).map(String::as_str),
                        prepared.age,
                    )
                }
            };
            let port = host_port(&desired.state, &prepared.node);
            (prepared, resolution, port)
        })
        .collect())
}

/// The replica sets' changes, warnings, and the sets compared only during apply. The Mongo
/// image is made sure of after every PostgreSQL change, so when it cannot be had the
/// PostgreSQL part is applied all the same.
async fn mongo_part(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
    postgres_changes: &[plan::Change],
) -> Result<(Vec<plan::Change>, Vec<String>, Vec<String>)> {
    if desired.mongo.is_empty() {
        return Ok(Default::default());
    }
    let env = &desired.state.env;
    let image = &desired.mongo_image;
    let members = observe::mongo::members(docker, env).await?;
    let mut changes = Vec::new();
    let mut prerequisites = vec![format!("network.{}", crate::model::network_name(env))];
    if !crate::images::image_present(docker, image)
        .await
        .map_err(miette::Report::new)?
    {
        let address = format!("image.{image}");
        changes.push(plan::Change {
            address: address.clone(),
            action: plan::Action::Create,
            reason: "image is not present locally: pull it (MongoDB cannot be built from \
                     Debian packages)"
                .into(),
            details: Vec::new(),
            after: postgres_changes.iter().map(|c| c.address.clone()).collect(),
            operation: plan::Operation::EnsureImage {
                reference: image.clone(),
            },
        });
        prerequisites.push(address);
    }
    let none = BTreeMap::new();
    let mut observations = Vec::new();
    let mut deferred = Vec::new();
    for wanted in &desired.mongo {
        let found = members.get(&wanted.set.name).unwrap_or(&none);
        let first = wanted.set.members.first();
        let observation = match first.and_then(|m| found.get(&m.name)) {
            None => plan::mongo::SetObservation::Fresh,
            Some(member) if !member.running => {
                deferred.push(wanted.set.name.clone());
                plan::mongo::SetObservation::Unknown(String::new())
            }
            Some(_) => {
                let password = secrets.map(|s| s.mongo_admin.as_str()).unwrap_or_default();
                let port = first.map_or(0, |m| m.port);
                observe::mongo::set(port, password, &wanted.set.database).await
            }
        };
        observations.push(observation);
    }
    let inputs: Vec<plan::mongo::SetInput<'_>> = desired
        .mongo
        .iter()
        .zip(&observations)
        .map(|(wanted, observed)| plan::mongo::SetInput {
            set: &wanted.set,
            collections: &wanted.collections,
            members: members.get(&wanted.set.name).unwrap_or(&none),
            observed,
        })
        .collect();
    let (set_changes, mut warnings) = plan::mongo::changes(env, image, &inputs, &prerequisites);
    // A stopped first member is started first; its set is compared once it runs.
    warnings.retain(|w| {
        !deferred
            .iter()
            .any(|d| w.starts_with(&format!("replica set {d} ")))
    });
    changes.extend(set_changes);
    Ok((changes, warnings, deferred))
}

/// What each node that receives tables has of its subscription to the reference tables, when
/// it could be asked (the plan looks up the nodes that subscribe).
fn subscription_states(
    found: Option<&[(String, u16, NodeSchema)]>,
    answered: &mut Answered,
) -> Result<BTreeMap<String, plan::fragments::SubscriptionState>> {
    use plan::fragments::SubscriptionState;
    let mut states = BTreeMap::new();
    for (node, _, state) in found.unwrap_or_default() {
        let read = answered.subscriptions.remove(node);
        let state = match (state, read) {
            (NodeSchema::Observed(o), Some(read)) if o.database_exists => {
                SubscriptionState::Observed(read.map_err(|e| {
                    miette!(
                        "cannot read the subscriptions of node {node}: {}",
                        execute::server_message(&e)
                    )
                })?)
            }
            (NodeSchema::Observed(o), None) if o.database_exists => SubscriptionState::Unknown,
            (NodeSchema::Unknown, _) => SubscriptionState::Unknown,
            _ => SubscriptionState::Fresh,
        };
        states.insert(node.clone(), state);
    }
    Ok(states)
}

/// What the coordinator's database holds of the fragment objects, when it could be asked.
fn coordinator_state(
    coordinator: Option<&(String, u16, NodeSchema)>,
    answered: &mut Answered,
) -> Result<plan::fragments::CoordinatorState> {
    Ok(match coordinator {
        Some((node, _, NodeSchema::Observed(o))) if o.database_exists => {
            match answered.coordinator.remove(node) {
                None => plan::fragments::CoordinatorState::Unknown,
                Some(read) => plan::fragments::CoordinatorState::Observed(read.map_err(|e| {
                    miette!(
                        "cannot read the coordinator's fragment objects: {}",
                        execute::server_message(&e)
                    )
                })?),
            }
        }
        Some((_, _, NodeSchema::Unknown)) | None => plan::fragments::CoordinatorState::Unknown,
        Some(_) => plan::fragments::CoordinatorState::Fresh,
    })
}

/// Leave the old copies of moving parts, and the coordinator's kept old parts, out of what
/// the schema diff sees, so it neither drops them nor counts them as changes.
fn hold_back(
    found: &mut [(String, u16, NodeSchema)],
    held: &BTreeMap<String, BTreeSet<String>>,
    coordinator: &str,
) {
    for (node, _, state) in found {
        let NodeSchema::Observed(observed) = state else {
            continue;
        };
        let held = held.get(node.as_str());
        let keep = |table: &str| {
            !(held.is_some_and(|h| h.contains(table))
                || (node == coordinator && table.starts_with(movement::MOVED_PREFIX)))
        };
        observed.current.tables.retain(|name, _| keep(name));
        observed
            .current
            .indexes
            .retain(|_, index| keep(&index.table));
    }
}

type Probe = Option<Result<ObservedSchema, SchemaObserveError>>;

/// What the sessions answered that the plan uses after the observation, by node.
#[derive(Default)]
struct Answered {
    /// Each session's connection, for reads that depend on what was found (the coordinator's
    /// decisions about prepared transactions).
    clients: BTreeMap<String, tokio_postgres::Client>,
    coordinator: BTreeMap<String, Result<Found, tokio_postgres::Error>>,
    subscriptions: BTreeMap<String, Result<Option<Option<String>>, tokio_postgres::Error>>,
    prepared: BTreeMap<String, Result<Vec<Prepared>, tokio_postgres::Error>>,
}

/// The servers' sessions, opened in the background from the start (see [`start_sessions`]).
pub struct EarlySessions(tokio::task::JoinHandle<Sessions>);

type Sessions = BTreeMap<String, observe::session::Session>;

/// Start opening the servers' sessions now, so that they are asked while the Docker Engine
/// connection is still being made.
pub fn start_sessions(desired: &Desired, secrets: &Secrets) -> EarlySessions {
    let targets = session_targets(desired);
    let password = secrets.superuser.clone();
    EarlySessions(tokio::spawn(async move {
        observe::session::open(targets, &password).await
    }))
}

impl EarlySessions {
    async fn join(self) -> Sessions {
        // The task only fails if it panicked: then the plan connects without it.
        self.0.await.unwrap_or_default()
    }
}

/// One connection per desired server, on the port the topology gives it (nothing without
/// passwords). Nodes that receive tables compare their catalog with the manifest over it.
async fn open_sessions(desired: &Desired, secrets: Option<&Secrets>) -> Sessions {
    match secrets {
        Some(secrets) => observe::session::open(session_targets(desired), &secrets.superuser).await,
        None => Sessions::new(),
    }
}

fn session_targets(desired: &Desired) -> Vec<observe::session::Target> {
    let schema = desired.schema.as_ref();
    let targets = schema.map(|s| s.node_targets()).unwrap_or_default();
    let fragments = schema.and_then(|s| s.fragments.as_ref());
    desired
        .state
        .servers
        .values()
        .map(|server| {
            let node = &server.node;
            let target = targets.iter().find(|t| &t.node == node);
            observe::session::Target {
                node: node.clone(),
                host_port: host_port(&desired.state, node),
                schema: schema
                    .zip(target)
                    .map(|(schema, target)| observe::session::SchemaTarget {
                        database: schema.target.database.clone(),
                        sql: target.sql.clone(),
                    }),
                coordinator_tables: fragments
                    .filter(|f| &f.coordinator == node)
                    .map(coordinator_tables),
                subscription: schema.zip(fragments).and_then(|(schema, fragments)| {
                    let tables = fragments.placement.references.get(node)?;
                    Some(
                        coordinator::subscription(
                            &desired.state.env,
                            &fragments.coordinator,
                            &schema.target.database,
                            node,
                            tables,
                        )
                        .name,
                    )
                }),
                // dbtopo's transactions run in the schema's database, on its primaries.
                prepared: schema.is_some() && server.role == crate::model::Role::Primary,
            }
        })
        .collect()
}

/// The tables and views the coordinator's fragment objects are made of.
fn coordinator_tables(fragments: &DesiredFragments) -> Vec<String> {
    fragments
        .objects
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

/// The schema probes of the nodes that receive tables, and what the sessions answered for the
/// plan's later steps.
fn probes(sessions: Sessions) -> (Vec<(String, u16, Probe)>, Answered) {
    let mut probes = Vec::new();
    let mut answered = Answered::default();
    for (node, session) in sessions {
        let host_port = session.host_port;
        let probe = match session.outcome {
            observe::session::Outcome::Connected(answers) => {
                let answers = *answers;
                answered.clients.insert(node.clone(), answers.client);
                if let Some(read) = answers.coordinator {
                    answered.coordinator.insert(node.clone(), read);
                }
                if let Some(read) = answers.subscription {
                    answered.subscriptions.insert(node.clone(), read);
                }
                if let Some(read) = answers.prepared {
                    answered.prepared.insert(node.clone(), read);
                }
                answers.schema
            }
            observe::session::Outcome::Refused(e) => session
                .receives_tables
                .then(|| Err(SchemaObserveError::Unreachable(e))),
        };
        if probe.is_some() {
            probes.push((node, host_port, probe));
        }
    }
    (probes, answered)
}

fn host_port(state: &State, node: &str) -> u16 {
    state
        .servers
        .get(node)
        .and_then(|s| s.container.as_ref())
        .map_or(0, |c| c.host_port)
}

/// What each node's database holds: empty for a server still to be created (whatever
/// answered on its port), unknown for one that cannot be asked, else what its catalog says.
fn schema_states(
    desired: &State,
    observed: &State,
    schema: &DesiredSchema,
    targets: &[NodeTarget],
    probes: Vec<(String, u16, Probe)>,
) -> Result<Vec<(String, u16, NodeSchema)>> {
    let mut probes: BTreeMap<String, (u16, Probe)> = probes
        .into_iter()
        .map(|(node, port, probe)| (node, (port, probe)))
        .collect();
    let mut states = Vec::new();
    for target in targets {
        let node = &target.node;
        let probe = probes.remove(node).and_then(|(_, probe)| probe);
        let port = host_port(desired, node);
        let state = if !observed.volumes.contains(node) {
            NodeSchema::Fresh
        } else {
            match probe {
                Some(Ok(mut found)) => {
                    if target.coordinator {
                        found.current = schema.coordinator_current(&found.current);
                        found.desired = schema.coordinator_current(&found.desired);
                    }
                    NodeSchema::Observed(found)
                }
                None | Some(Err(SchemaObserveError::Unreachable(_))) => NodeSchema::Unknown,
                Some(Err(SchemaObserveError::Rejected(rejected)))
                    if target.sql.starts_with(&schema.sql)
                        && rejected.offset.is_none_or(|o| o < schema.sql.len()) =>
                {
                    return Err(miette::Report::new(RejectedByServer::at_offset(
                        &schema.manifest,
                        node,
                        &execute::server_message(&rejected.error),
                        rejected.offset,
                    )));
                }
                Some(Err(SchemaObserveError::Rejected(rejected))) => {
                    return Err(miette!(
                        help = format!("the fragment tables were:\n{}", target.sql),
                        "node {node} rejects its fragment tables: {}",
                        execute::server_message(&rejected.error)
                    ));
                }
                Some(Err(SchemaObserveError::Query(error))) => {
                    return Err(miette!(
                        "cannot read the catalog of node {node}: {}",
                        execute::server_message(&error)
                    ));
                }
            }
        };
        states.push((node.clone(), port, state));
    }
    Ok(states)
}
