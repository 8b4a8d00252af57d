//! Observe an environment: Docker objects by label, then each running server's catalogs.
//! Read-only: nothing here changes anything.

pub mod docker;
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
    #[diagnostic(code(dbtopo::observe::docker), help("is the Docker Engine running and reachable (DOCKER_HOST)?"))]
    Docker(#[from] bollard::errors::Error),
    #[error("cannot read a container's configuration archive")]
    #[diagnostic(code(dbtopo::observe::archive))]
    Archive(#[source] std::io::Error),
}

/// How long to wait for a running server to answer before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The observed state of environment `env`, for the images `desired` uses.
pub async fn observe(docker: &Docker, desired: &State, secrets: Option<&Secrets>) -> Result<State, ObserveError> {
    let env = desired.env.as_str();
    let (containers, network, volumes) = tokio::try_join!(
        docker::containers(docker, env),
        docker::network(docker, env),
        docker::volumes(docker, env),
    )?;
    let mut images = BTreeMap::new();
    for reference in desired.images.keys() {
        images.insert(reference.clone(), docker::image_present(docker, reference).await?);
    }

    let reports = join_all(containers.iter().map(|found| async move {
        let secrets = secrets?;
        if !found.container.running {
            return None;
        }
        let client = postgres::connect(found.container.host_port, &secrets.superuser, CONNECT_TIMEOUT)
            .await
            .ok()?;
        postgres::report(&client).await.ok()
    }))
    .await;

    let servers = containers
        .into_iter()
        .zip(reports)
        .map(|(found, report)| {
            let (live, replication_roles, slots) = match report {
                Some(r) => (Some(r.live), r.replication_roles, r.slots),
                None => (None, BTreeSet::new(), BTreeSet::new()),
            };
            let server = Server {
                node: found.node.clone(),
                role: found.role,
                container: Some(found.container),
                config: found.config,
                settings: BTreeMap::new(),
                live,
                replication_roles,
                slots,
                bootstrap: None,
            };
            (found.node, server)
        })
        .collect();

    Ok(State {
        env: env.to_string(),
        network,
        images,
        volumes: volumes.into_iter().map(|(node, _, _)| node).collect(),
        servers,
    })
}
