//! Observe an environment: Docker objects by label, then each running server's catalogs.
//! Read-only: nothing here changes anything.

pub mod catalog;
pub mod docker;
pub mod environment;
pub mod mongo;
pub mod postgres;
pub mod session;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::Docker;
use futures_util::future::join_all;

use crate::model::{Server, State};
use crate::secrets::Secrets;
pub use environment::observe_environment;
use session::{CONNECT_TIMEOUT, Outcome, Session};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ObserveError {
    #[error("Docker Engine request failed")]
    #[diagnostic(
        code(dbtopo::observe::docker),
        help("is the Docker Engine running and reachable (DOCKER_HOST)?")
    )]
    Docker(#[from] bollard::errors::Error),
    #[error("cannot read a container's configuration archive")]
    #[diagnostic(code(dbtopo::observe::archive))]
    Archive(#[source] std::io::Error),
}

/// A server that is starting refuses connections for a moment: ask a few times.
async fn connect_and_report(
    host_port: u16,
    password: &str,
) -> Result<postgres::ServerReport, String> {
    let mut attempt = 0;
    loop {
        match postgres::connect(host_port, password, CONNECT_TIMEOUT).await {
            Ok(client) => return postgres::report(&client).await.map_err(|e| silence(&e)),
            Err(e) if attempt < 4 && is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => return Err(silence(&e)),
        }
        attempt += 1;
    }
}

fn silence(error: &tokio_postgres::Error) -> String {
    crate::pg::server_message(error)
}

/// Connection refused or "the database system is starting up" (57P03).
fn is_transient(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW)
        || error.to_string().contains("connection refused")
        || std::error::Error::source(error).is_some_and(|s| s.to_string().contains("refused"))
}

/// The report `sessions` already holds for a container running on `host_port`; else a new
/// connection's (a server still starting is asked again).
async fn report_for(
    session: Option<&mut Session>,
    host_port: u16,
    password: &str,
) -> Result<postgres::ServerReport, String> {
    match session {
        Some(session) if session.host_port == host_port => match &mut session.outcome {
            Outcome::Connected(answers) => answers
                .report
                .take()
                .ok_or_else(|| "it did not answer the observation's queries".to_owned()),
            Outcome::Refused(e) if is_transient(e) => connect_and_report(host_port, password).await,
            Outcome::Refused(e) => Err(silence(e)),
        },
        _ => connect_and_report(host_port, password).await,
    }
}

/// What Docker holds of an environment, asked all at once.
pub struct Listing {
    containers: Vec<docker::FoundContainer>,
    network: Option<(String, Vec<String>)>,
    volumes: Vec<(String, String, String)>,
    images: BTreeMap<String, bool>,
    cpus: Option<usize>,
    memory: Option<u64>,
}

/// The Docker objects of environment `desired.env` and the images `desired` uses.
pub async fn list(docker: &Docker, desired: &State) -> Result<Listing, ObserveError> {
    let env = desired.env.as_str();
    let images = async {
        let mut images = BTreeMap::new();
        for reference in desired.images.keys() {
            images.insert(
                reference.clone(),
                docker::image_present(docker, reference).await?,
            );
        }
        Ok(images)
    };
    let (containers, network, volumes, images, info) = tokio::try_join!(
        docker::containers(docker, env),
        docker::network(docker, env),
        docker::volumes(docker, env),
        images,
        async { docker.info().await.map_err(ObserveError::from) },
    )?;
    let memory = info.mem_total.and_then(|m| u64::try_from(m).ok());
    let cpus = info
        .ncpu
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0);
    Ok(Listing {
        containers,
        network,
        volumes,
        images,
        cpus,
        memory,
    })
}

/// The observed state of environment `desired.env`, for the images `desired` uses, each
/// running server asked over a connection of its own.
pub async fn observe(
    docker: &Docker,
    desired: &State,
    secrets: Option<&Secrets>,
) -> Result<State, ObserveError> {
    let listing = list(docker, desired).await?;
    observe_listed(docker, &desired.env, listing, secrets, &mut BTreeMap::new()).await
}

/// The observed state of environment `env` from its Docker `listing` and its servers'
/// reports, taken from `sessions` where one was opened on the container's port.
pub async fn observe_listed(
    docker: &Docker,
    env: &str,
    listing: Listing,
    secrets: Option<&Secrets>,
    sessions: &mut BTreeMap<String, Session>,
) -> Result<State, ObserveError> {
    let Listing {
        containers,
        network,
        volumes,
        images,
        cpus,
        memory,
    } = listing;
    let mut sessions_of: BTreeMap<&str, &mut Session> = sessions
        .iter_mut()
        .map(|(node, session)| (node.as_str(), session))
        .collect();
    let reports = join_all(containers.iter().map(|found| {
        let session = sessions_of.remove(found.node.as_str());
        async move {
            let report = match (secrets, found.container.running) {
                (Some(secrets), true) => {
                    Some(report_for(session, found.container.host_port, &secrets.superuser).await)
                }
                _ => None,
            };
            let ended = match found.container.running {
                false => docker::cluster_end(docker, &found.container.name).await?,
                true => None,
            };
            let config = match report
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .and_then(|r| r.config.clone())
            {
                Some(config) => Some(config),
                None => docker::config_files(docker, &found.container.name).await?,
            };
            Ok::<_, ObserveError>((report, config, ended))
        }
    }))
    .await;

    let mut servers = BTreeMap::new();
    for (found, result) in containers.into_iter().zip(reports) {
        let (report, config, ended) = result?;
        let (live, silent, replication_roles, slots) = match report {
            Some(Ok(r)) => (Some(r.live), None, r.replication_roles, r.slots),
            Some(Err(why)) => (None, Some(why), BTreeSet::new(), BTreeSet::new()),
            None => (None, None, BTreeSet::new(), BTreeSet::new()),
        };
        let server = Server {
            node: found.node.clone(),
            role: found.role,
            container: Some(found.container),
            config,
            settings: BTreeMap::new(),
            live,
            silent,
            ended,
            replication_roles,
            slots,
            bootstrap: None,
            standby_confs: BTreeMap::new(),
        };
        servers.insert(found.node, server);
    }

    let (network, network_subnets) = match network {
        Some((name, subnets)) => (Some(name), subnets),
        None => (None, Vec::new()),
    };
    Ok(State {
        cpus,
        memory,
        env: env.to_string(),
        network,
        network_subnets,
        images,
        volumes: volumes.into_iter().map(|(node, _, _)| node).collect(),
        servers,
    })
}
