//! Observe an environment: Docker objects by label, then each running server's catalogs.
//! Read-only: nothing here changes anything.

pub mod catalog;
pub mod docker;
pub mod mongo;
pub mod postgres;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::Docker;
use futures_util::future::join_all;

use crate::model::{Server, State};
use crate::secrets::Secrets;

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
async fn connect_and_report(host_port: u16, password: &str) -> Option<postgres::ServerReport> {
    for attempt in 0..5 {
        match postgres::connect(host_port, password, CONNECT_TIMEOUT).await {
            Ok(client) => return postgres::report(&client).await.ok(),
            Err(e) if attempt < 4 && is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(_) => return None,
        }
    }
    None
}

/// Connection refused or "the database system is starting up" (57P03).
fn is_transient(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW)
        || error.to_string().contains("connection refused")
        || std::error::Error::source(error).is_some_and(|s| s.to_string().contains("refused"))
}

/// How long to wait for a running server to answer before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The observed state of environment `env`, for the images `desired` uses.
pub async fn observe(
    docker: &Docker,
    desired: &State,
    secrets: Option<&Secrets>,
) -> Result<State, ObserveError> {
    let env = desired.env.as_str();
    let (containers, network, volumes) = tokio::try_join!(
        docker::containers(docker, env),
        docker::network(docker, env),
        docker::volumes(docker, env),
    )?;
    let mut images = BTreeMap::new();
    for reference in desired.images.keys() {
        images.insert(
            reference.clone(),
            docker::image_present(docker, reference).await?,
        );
    }

    let reports = join_all(containers.iter().map(|found| async move {
        let report = match (secrets, found.container.running) {
            (Some(secrets), true) => {
                connect_and_report(found.container.host_port, &secrets.superuser).await
            }
            _ => None,
        };
        let config = match report.as_ref().and_then(|r| r.config.clone()) {
            Some(config) => Some(config),
            None => docker::config_files(docker, &found.container.name).await?,
        };
        Ok::<_, ObserveError>((report, config))
    }))
    .await;

    let mut servers = BTreeMap::new();
    for (found, result) in containers.into_iter().zip(reports) {
        let (report, config) = result?;
        let (live, replication_roles, slots) = match report {
            Some(r) => (Some(r.live), r.replication_roles, r.slots),
            None => (None, BTreeSet::new(), BTreeSet::new()),
        };
        let server = Server {
            node: found.node.clone(),
            role: found.role,
            container: Some(found.container),
            config,
            settings: BTreeMap::new(),
            live,
            replication_roles,
            slots,
            bootstrap: None,
        };
        servers.insert(found.node, server);
    }

    let cpus = docker
        .info()
        .await?
        .ncpu
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0);
    Ok(State {
        cpus,
        env: env.to_string(),
        network,
        images,
        volumes: volumes.into_iter().map(|(node, _, _)| node).collect(),
        servers,
    })
}
