//! The whole observation a plan needs, in one pass: Docker is listed first, then one
//! connection is opened per server of this environment that Docker shows running (on the
//! port its container publishes, never merely the port the topology names, so that no
//! password goes to a program that only took that port) and asked everything at once; then
//! the facts that depend on what was found (decisions for prepared transactions, the replica
//! sets) are read. Returns one [`Observed`].

use std::collections::BTreeMap;

use bollard::Docker;
use miette::{Result, miette};

use super::catalog::SchemaObserveError;
use super::session::{self, Outcome, Session};
use crate::desired::{Desired, NodeTarget};
use crate::fragments::coordinator::Found;
use crate::model::State;
use crate::observed::{
    CoordinatorState, FoundSubscription, LeftoverSubscription, MongoObserved, Observed, Prepared,
    SetObservation, SubscriptionState,
};
use crate::pg::server_message;
use crate::schema::{NodeSchema, ObservedSchema, RejectedByServer};
use crate::secrets::Secrets;
use crate::txn::recovery;

type Sessions = BTreeMap<String, Session>;

/// Observe everything `desired` needs compared.
pub async fn observe_environment(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
) -> Result<Observed> {
    let names = desired.own_names();
    let (listing, foreign) = tokio::try_join!(
        super::list(docker, &desired.state),
        super::docker::foreign(docker, desired.env(), &names),
    )?;
    let mut sessions = match secrets {
        Some(secrets) => {
            let targets = session_targets(desired, &published(&listing));
            session::open(targets, &secrets.superuser).await
        }
        None => Sessions::new(),
    };
    let ports_taken = ports_taken(
        desired,
        &listing,
        &members_published(docker, desired).await?,
    );
    let state =
        super::observe_listed(docker, &desired.state.env, listing, secrets, &mut sessions).await?;
    let (probes, mut answered) = probes(sessions);
    let targets = desired
        .schema
        .as_ref()
        .map(|s| s.node_targets())
        .unwrap_or_default();
    let schemas = schema_states(desired, &state, &targets, probes)?;
    let (prepared, decisions) = in_doubt(desired, &state, secrets, &mut answered).await?;
    let subscriptions = subscription_states(&schemas, &mut answered)?;
    let leftover_subscriptions = leftover_subscriptions(&schemas, &mut answered)?;
    let coordinator = match desired.schema.as_ref().and_then(|s| s.fragments.as_ref()) {
        Some(fragments) => coordinator_state(
            &fragments.coordinator,
            schemas.get(&fragments.coordinator),
            &mut answered,
        )?,
        None => CoordinatorState::Fresh,
    };
    let mongo = mongo(docker, desired, secrets).await?;
    Ok(Observed {
        foreign,
        ports_taken,
        state,
        schemas,
        coordinator,
        subscriptions,
        leftover_subscriptions,
        prepared,
        decisions,
        mongo,
    })
}

/// dbtopo's prepared transactions on the running primaries, and the coordinator's decisions
/// for them (`None` when the record cannot be read).
async fn in_doubt(
    desired: &Desired,
    observed: &State,
    secrets: Option<&Secrets>,
    answered: &mut Answered,
) -> Result<(Vec<Prepared>, Option<BTreeMap<String, String>>)> {
    // dbtopo's transactions run in the schema's database: without one there are none.
    let (Some(secrets), Some(schema)) = (secrets, &desired.schema) else {
        return Ok((Vec::new(), Some(BTreeMap::new())));
    };
    let nodes: Vec<(String, u16)> = desired
        .state
        .servers
        .values()
        // As the servers run now: a primary about to be switched over still holds its own.
        .filter(|s| {
            observed
                .servers
                .get(&s.node)
                .and_then(|o| o.live.as_ref())
                .is_some_and(|live| !live.in_recovery)
        })
        .map(|s| (s.node.clone(), observed_port(observed, &s.node)))
        .collect();
    // pg_prepared_xacts is the whole server's: the sessions listed it on any database. A node
    // the session could not reach is asked where its container runs now.
    let lookups = nodes.iter().map(|(node, port)| {
        let listed = answered.prepared.remove(node);
        async move {
            if let Some(listed) = listed {
                return listed;
            }
            let client =
                crate::pg::connect(*port, &secrets.superuser, session::CONNECT_TIMEOUT).await?;
            recovery::prepared(&client, node).await
        }
    });
    let mut found = Vec::new();
    for (result, (node, _)) in futures_util::future::join_all(lookups)
        .await
        .into_iter()
        .zip(&nodes)
    {
        found.extend(result.map_err(|e| {
            miette!(
                "cannot list the prepared transactions of node {node}: {}",
                server_message(&e)
            )
        })?);
    }
    if found.is_empty() {
        return Ok((found, Some(BTreeMap::new())));
    }
    let Some(coordinator) = desired.coordinator() else {
        return Ok((found, None));
    };
    // The record is read where it is written now: on the coordinator's cluster's primary,
    // which is the server before a switchover to the coordinator's replica.
    let node = desired
        .state
        .servers
        .values()
        .filter(|s| s.node == coordinator || s.role.upstream() == Some(coordinator))
        .find(|s| {
            observed
                .servers
                .get(&s.node)
                .and_then(|o| o.live.as_ref())
                .is_some_and(|live| !live.in_recovery)
        })
        .map_or(coordinator, |s| s.node.as_str());
    // The session of a server that is not the coordinator by the file is in another database.
    let session = answered.clients.get(node).filter(|_| node == coordinator);
    let decisions = match session {
        Some(client) => recovery::decisions(client, &found).await.ok(),
        None => match crate::pg::connect_to(
            observed_port(observed, node),
            &secrets.superuser,
            &schema.target.database,
            session::CONNECT_TIMEOUT,
        )
        .await
        {
            Ok(client) => recovery::decisions(&client, &found).await.ok(),
            Err(_) => None,
        },
    };
    Ok((found, decisions))
}

/// The replica sets: member containers, the image, and what each running first member says.
async fn mongo(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
) -> Result<MongoObserved> {
    if desired.mongo.is_empty() {
        return Ok(MongoObserved::default());
    }
    let members = super::mongo::members(docker, desired.env()).await?;
    let image_present = crate::images::image_present(docker, &desired.mongo_image)
        .await
        .map_err(miette::Report::new)?;
    let mut sets = BTreeMap::new();
    for wanted in &desired.mongo {
        let Some(first) = wanted.set.members.first() else {
            continue;
        };
        let found = members
            .get(&wanted.set.name)
            .and_then(|m| m.get(&first.name));
        let observation = match found {
            None => SetObservation::Fresh,
            Some(member) if !member.running => continue,
            Some(_) => {
                let password = secrets.map(|s| s.mongo_admin.as_str()).unwrap_or_default();
                super::mongo::set(&wanted.set.name, first.port, password, &wanted.set.database)
                    .await
            }
        };
        sets.insert(wanted.set.name.clone(), observation);
    }
    Ok(MongoObserved {
        image_present,
        members,
        sets,
    })
}

/// What each node that receives tables has of its subscription to the reference tables, when
/// it could be asked.
fn subscription_states(
    schemas: &BTreeMap<String, NodeSchema>,
    answered: &mut Answered,
) -> Result<BTreeMap<String, SubscriptionState>> {
    let mut states = BTreeMap::new();
    for (node, state) in schemas {
        let read = answered.subscriptions.remove(node);
        let state = match (state, read) {
            (NodeSchema::Observed(o), Some(read)) if o.database_exists => {
                SubscriptionState::Observed(read.map_err(|e| {
                    miette!(
                        "cannot read the subscriptions of node {node}: {}",
                        server_message(&e)
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

/// The reference-copy subscriptions each node that answered with its tables holds besides
/// its own (a standby's are read once it is promoted, with its tables).
fn leftover_subscriptions(
    schemas: &BTreeMap<String, NodeSchema>,
    answered: &mut Answered,
) -> Result<BTreeMap<String, Vec<LeftoverSubscription>>> {
    let mut leftovers = BTreeMap::new();
    for (node, state) in schemas {
        let (NodeSchema::Observed(o), Some(read)) =
            (state, answered.leftover_subscriptions.remove(node))
        else {
            continue;
        };
        if !o.database_exists {
            continue;
        }
        let found = read.map_err(|e| {
            miette!(
                "cannot read the subscriptions of node {node}: {}",
                server_message(&e)
            )
        })?;
        if !found.is_empty() {
            leftovers.insert(node.clone(), found);
        }
    }
    Ok(leftovers)
}

/// What the coordinator's database holds of the fragment objects, when it could be asked.
fn coordinator_state(
    node: &str,
    schema: Option<&NodeSchema>,
    answered: &mut Answered,
) -> Result<CoordinatorState> {
    Ok(match schema {
        Some(NodeSchema::Observed(o)) if o.database_exists => {
            match answered.coordinator.remove(node) {
                None => CoordinatorState::Unknown,
                Some(read) => CoordinatorState::Observed(read.map_err(|e| {
                    miette!(
                        "cannot read the coordinator's fragment objects: {}",
                        server_message(&e)
                    )
                })?),
            }
        }
        Some(NodeSchema::Unknown) | None => CoordinatorState::Unknown,
        Some(_) => CoordinatorState::Fresh,
    })
}

type Probe = Option<Result<ObservedSchema, SchemaObserveError>>;

/// What the sessions answered that the observation uses after Docker's listing, by node.
#[derive(Default)]
struct Answered {
    /// Each session's connection, for reads that depend on what was found (the coordinator's
    /// decisions about prepared transactions).
    clients: BTreeMap<String, tokio_postgres::Client>,
    coordinator: BTreeMap<String, Result<Found, tokio_postgres::Error>>,
    subscriptions: BTreeMap<String, Result<Option<FoundSubscription>, tokio_postgres::Error>>,
    leftover_subscriptions:
        BTreeMap<String, Result<Vec<LeftoverSubscription>, tokio_postgres::Error>>,
    prepared: BTreeMap<String, Result<Vec<Prepared>, tokio_postgres::Error>>,
}

/// The host ports the environment's MongoDB member containers publish, by member.
async fn members_published(docker: &Docker, desired: &Desired) -> Result<BTreeMap<String, u16>> {
    if desired.mongo.is_empty() {
        return Ok(BTreeMap::new());
    }
    let found = super::mongo::members(docker, desired.env()).await?;
    let ports: BTreeMap<&str, u16> = desired
        .mongo
        .iter()
        .flat_map(|s| s.set.members.iter().map(|m| (m.name.as_str(), m.port)))
        .collect();
    // A member container publishes the port it was made with; its spec hash covers the port.
    Ok(found
        .values()
        .flat_map(|members| members.keys())
        .filter_map(|name| Some((name.clone(), *ports.get(name.as_str())?)))
        .collect())
}

/// The host ports this environment still has to publish (a server or member without its
/// container, or moving to another port) that another program holds now: publishing them
/// would fail half-way through an apply.
fn ports_taken(
    desired: &Desired,
    listing: &super::Listing,
    members: &BTreeMap<String, u16>,
) -> BTreeMap<String, u16> {
    let published: BTreeMap<&str, u16> = listing
        .containers
        .iter()
        .map(|found| (found.node.as_str(), found.container.host_port))
        .chain(members.iter().map(|(m, p)| (m.as_str(), *p)))
        .collect();
    let wanted = desired
        .state
        .servers
        .keys()
        .map(|node| (node.clone(), desired.host_port(node)))
        .chain(
            desired
                .mongo
                .iter()
                .flat_map(|s| s.set.members.iter().map(|m| (m.name.clone(), m.port))),
        );
    wanted
        .filter(|(node, port)| published.get(node.as_str()) != Some(port))
        .filter(|(_, port)| {
            std::net::TcpListener::bind(("127.0.0.1", *port))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
        })
        .collect()
}

/// The host port of each running server container of this environment, by node.
fn published(listing: &super::Listing) -> BTreeMap<String, u16> {
    listing
        .containers
        .iter()
        .filter(|found| found.container.running)
        .map(|found| (found.node.clone(), found.container.host_port))
        .collect()
}

/// One session for each desired server that runs in a container of this environment, on the
/// port that container publishes.
fn session_targets(desired: &Desired, published: &BTreeMap<String, u16>) -> Vec<session::Target> {
    let schema = desired.schema.as_ref();
    let targets = schema.map(|s| s.node_targets()).unwrap_or_default();
    let fragments = schema.and_then(|s| s.fragments.as_ref());
    let subscriptions = desired.subscriptions();
    desired
        .state
        .servers
        .values()
        .filter_map(|server| {
            let node = &server.node;
            let host_port = *published.get(node)?;
            let target = targets.iter().find(|t| &t.node == node);
            Some(session::Target {
                node: node.clone(),
                host_port,
                schema: schema
                    .zip(target)
                    .map(|(schema, target)| session::SchemaTarget {
                        database: schema.target.database.clone(),
                        sql: target.sql.clone(),
                    }),
                coordinator_tables: fragments
                    .filter(|f| &f.coordinator == node)
                    .map(|f| f.coordinator_tables()),
                subscription: subscriptions
                    .iter()
                    .find(|(n, _)| n == node)
                    .map(|(_, object)| object.name.clone()),
                // dbtopo's transactions run in the schema's database, on its primaries (a
                // replica lists none: the query asks servers not in recovery).
                prepared: schema.is_some(),
            })
        })
        .collect()
}

/// The schema probes of the nodes that receive tables, and what the sessions answered for the
/// observation's later steps.
fn probes(sessions: Sessions) -> (BTreeMap<String, Probe>, Answered) {
    let mut probes = BTreeMap::new();
    let mut answered = Answered::default();
    for (node, session) in sessions {
        let probe = match session.outcome {
            Outcome::Connected(answers) => {
                let answers = *answers;
                answered.clients.insert(node.clone(), answers.client);
                if let Some(read) = answers.coordinator {
                    answered.coordinator.insert(node.clone(), read);
                }
                if let Some(read) = answers.subscription {
                    answered.subscriptions.insert(node.clone(), read);
                }
                if let Some(read) = answers.leftover_subscriptions {
                    answered.leftover_subscriptions.insert(node.clone(), read);
                }
                if let Some(read) = answers.prepared {
                    answered.prepared.insert(node.clone(), read);
                }
                answers.schema
            }
            Outcome::Refused(e) => session
                .receives_tables
                .then(|| Err(SchemaObserveError::Unreachable(e))),
        };
        if probe.is_some() {
            probes.insert(node, probe);
        }
    }
    (probes, answered)
}

/// The port a node's container is published on now (0 without one).
fn observed_port(state: &State, node: &str) -> u16 {
    state
        .servers
        .get(node)
        .and_then(|s| s.container.as_ref())
        .map_or(0, |c| c.host_port)
}

/// What each node's database holds: empty for a server still to be created (whatever
/// answered on its port), unknown for one that cannot be asked, else what its catalog says.
/// A manifest the server rejects is an error pointing into the manifest.
fn schema_states(
    desired: &Desired,
    observed: &State,
    targets: &[NodeTarget],
    mut probes: BTreeMap<String, Probe>,
) -> Result<BTreeMap<String, NodeSchema>> {
    let mut states = BTreeMap::new();
    let Some(schema) = &desired.schema else {
        return Ok(states);
    };
    for target in targets {
        let node = &target.node;
        let probe = probes.remove(node).and_then(|probe| probe);
        let state = if !observed.volumes.contains(node) {
            NodeSchema::Fresh
        } else {
            match probe {
                Some(Ok(found)) => NodeSchema::Observed(found),
                None | Some(Err(SchemaObserveError::Unreachable(_))) => NodeSchema::Unknown,
                Some(Err(SchemaObserveError::Rejected(rejected)))
                    if target.sql.starts_with(&schema.sql)
                        && rejected.offset.is_none_or(|o| o < schema.sql.len()) =>
                {
                    return Err(miette::Report::new(RejectedByServer::at_offset(
                        &schema.manifest,
                        node,
                        &server_message(&rejected.error),
                        rejected.offset,
                    )));
                }
                Some(Err(SchemaObserveError::Rejected(rejected))) => {
                    return Err(miette!(
                        help = format!("the fragment tables were:\n{}", target.sql),
                        "node {node} rejects its fragment tables: {}",
                        server_message(&rejected.error)
                    ));
                }
                Some(Err(SchemaObserveError::Query(error))) => {
                    return Err(miette!(
                        "cannot read the catalog of node {node}: {}",
                        server_message(&error)
                    ));
                }
            }
        };
        states.insert(node.clone(), state);
    }
    Ok(states)
}
