//! What several commands share: the Docker client, the topology's warnings, the passwords of
//! an existing environment, and a superuser connection to one of its nodes.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use miette::{Result, miette};

use super::desired;
use crate::desired::Desired;
use crate::observe;
use crate::secrets::{self, Secrets};
use crate::topology::{self, Topology};

/// How long the Docker Engine gets to answer the first request.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do when the engine cannot be used; nothing was changed by then.
const ENGINE_HELP: &str = "nothing was changed; is the Docker Engine running, and is DOCKER_HOST \
                           right? Unset it to use the local socket, or point it at the engine \
                           (unix:///var/run/docker.sock, tcp://HOST:2375)";

/// A Docker client speaking the engine's API version, on the engine `DOCKER_HOST` names
/// (`unix://`, `tcp://`, `http://`) as the docker CLI does, else the local socket.
pub async fn docker() -> Result<Docker> {
    let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let shown = host
        .as_deref()
        .unwrap_or("unix:///var/run/docker.sock")
        .to_owned();
    if std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0") {
        return Err(miette!(
            help =
                "use the engine through its unix socket or plain tcp, or unset DOCKER_TLS_VERIFY",
            "DOCKER_TLS_VERIFY is set, but dbtopo does not speak TLS to the Docker Engine ({shown})"
        ));
    }
    // A missing socket fails here, before any request: it gets the same advice.
    let docker = match &host {
        Some(host) => Docker::connect_with_host(host),
        None => Docker::connect_with_local_defaults(),
    }
    .map_err(|e| {
        miette!(
            help = ENGINE_HELP,
            "cannot use the Docker Engine at {shown}: {e}"
        )
    })?;
    match tokio::time::timeout(DOCKER_TIMEOUT, docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(miette!(
            help = ENGINE_HELP,
            "cannot reach the Docker Engine at {shown}: {e}"
        )),
        Err(_) => Err(miette!(
            help = ENGINE_HELP,
            "the Docker Engine at {shown} did not answer within {DOCKER_TIMEOUT:?}"
        )),
    }
}

/// The topology's warnings (an even number of voting members), on standard error.
pub(super) fn print_warnings(topology: &Topology) {
    for warning in &topology.warnings {
        eprintln!("warning: {warning}");
    }
    let manifest = topology
        .postgres
        .schema
        .as_ref()
        .and_then(|schema| schema.manifest.as_ref())
        .and_then(|manifest| manifest.parsed.as_ref().ok());
    for notice in manifest.iter().flat_map(|m| &m.notices) {
        eprintln!("note: {notice}");
    }
}

/// The environment's passwords: from the secrets file, or, when that file was lost while the
/// environment exists, read back from one of its containers and saved again. `None` for an
/// environment that does not exist yet.
pub(super) async fn existing_secrets(docker: &Docker, env: &str) -> Result<Option<Secrets>> {
    if let Some(secrets) = secrets::load_existing(env)? {
        return Ok(Some(secrets));
    }
    let inventory = observe::docker::inventory(docker, env).await?;
    for container in &inventory.containers {
        if let Some(found) = observe::docker::secrets_in(docker, container).await? {
            secrets::save(env, &found)?;
            eprintln!(
                "The secrets file of environment \"{env}\" was missing: recovered it from container {container} into {}.",
                secrets::secrets_path(env).display()
            );
            return Ok(Some(found));
        }
    }
    if !inventory.containers.is_empty() {
        return Err(miette!(
            help = format!(
                "restore {}, or give the passwords in {} and {}",
                secrets::secrets_path(env).display(),
                secrets::SUPERUSER_ENV,
                secrets::REPLICATION_ENV
            ),
            "environment \"{env}\" exists but its passwords are nowhere to be found"
        ));
    }
    Ok(None)
}

/// The topology at `file` and the passwords of its environment, which must exist.
pub(super) async fn existing_environment(
    file: &Path,
    profiles: &[String],
) -> Result<(Desired, Secrets)> {
    let topology = topology::load(file)?.with_profiles(profiles);
    let docker = docker().await?;
    let Some(secrets) = existing_secrets(&docker, &topology.name).await? else {
        return Err(miette!(
            help = "run apply first",
            "environment \"{}\" does not exist",
            topology.name
        ));
    };
    let mut desired = desired(&topology)?;
    // Passwords go only to servers Docker shows running in this environment, on the port
    // their container publishes: any other node gets port 0, where no connection succeeds.
    let running: std::collections::BTreeMap<String, u16> =
        observe::docker::containers(&docker, &topology.name)
            .await?
            .into_iter()
            .filter(|found| found.container.running)
            .map(|found| (found.node, found.container.host_port))
            .collect();
    for (node, server) in desired.state.servers.iter_mut() {
        if let Some(container) = server.container.as_mut()
            && running.get(node) != Some(&container.host_port)
        {
            container.host_port = 0;
        }
    }
    Ok((desired, secrets))
}

/// A superuser connection to `database` on the node at `port`.
pub(super) async fn connect_node(
    port: u16,
    secrets: &Secrets,
    database: &str,
    node: &str,
) -> Result<tokio_postgres::Client> {
    crate::pg::connect_to(port, &secrets.superuser, database, Duration::from_secs(5))
        .await
        .map_err(|e| {
            miette!(
                "cannot connect to node {node}: {}",
                crate::pg::server_message(&e)
            )
        })
}
