//! Docker operations of the plan: network, volumes, containers and the files inside them.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkCreateRequest, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::TryStreamExt;

use super::ExecuteError;
use crate::model::{self, Role};
use crate::observe::docker::is_not_found;
use crate::plan::{FileSpec, ServerSpec};
use crate::secrets::Secrets;
use crate::templates;

fn ignore_missing(result: Result<(), bollard::errors::Error>) -> Result<(), ExecuteError> {
    match result {
        Err(e) if !is_not_found(&e) => Err(e.into()),
        _ => Ok(()),
    }
}

fn is_conflict(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// The kinds of Docker object dbtopo makes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Container,
    Volume,
    Network,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Volume => "volume",
            Kind::Network => "network",
        }
    }
}

/// Whether object `name` exists, and the environment its label names.
async fn owner(
    docker: &Docker,
    kind: Kind,
    name: &str,
) -> Result<Option<Option<String>>, ExecuteError> {
    let labels = match kind {
        Kind::Container => docker
            .inspect_container(name, None)
            .await
            .map(|c| c.config.and_then(|c| c.labels)),
        Kind::Volume => docker.inspect_volume(name).await.map(|v| Some(v.labels)),
        Kind::Network => docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .map(|n| n.labels),
    };
    match labels {
        Ok(labels) => Ok(Some(labels.and_then(|l| l.get(model::label::ENV).cloned()))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Fails unless object `name` is missing or carries environment `env`'s label: dbtopo never
/// changes, adopts or removes what is not its own, whatever the plan said.
pub async fn ensure_own(
    docker: &Docker,
    kind: Kind,
    name: &str,
    env: &str,
) -> Result<bool, ExecuteError> {
    match owner(docker, kind, name).await? {
        None => Ok(false),
        Some(Some(owner)) if owner == env => Ok(true),
        Some(owner) => Err(ExecuteError::Foreign {
            kind: kind.noun(),
            name: name.to_owned(),
            owner,
        }),
    }
}

fn env_of(labels: &std::collections::BTreeMap<String, String>) -> &str {
    labels.get(model::label::ENV).map_or("", String::as_str)
}

/// The ids of the networks named exactly `name` with environment `env`'s label, oldest first.
async fn own_networks(docker: &Docker, name: &str, env: &str) -> Result<Vec<String>, ExecuteError> {
    let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut found: Vec<(String, String)> = docker
        .list_networks(Some(options))
        .await?
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name))
        .filter(|n| {
            n.labels
                .as_ref()
                .and_then(|l| l.get(model::label::ENV))
                .is_some_and(|e| e == env)
        })
        .filter_map(|n| Some((n.created.map(|c| c.to_string()).unwrap_or_default(), n.id?)))
        .collect();
    found.sort();
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

pub async fn create_network(
    docker: &Docker,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), ExecuteError> {
    let env = env_of(labels);
    let exists = match ensure_own(docker, Kind::Network, name, env).await {
        Ok(exists) => exists,
        // Two of the environment's networks with this name: the duplicates go below.
        Err(ExecuteError::Docker(_)) => true,
        Err(e) => return Err(e),
    };
    if !exists {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Err(e) if !is_conflict(&e) => return Err(e.into()),
            _ => {}
        }
    }
    // A create that an interrupted apply left running can land after this one looked: the
    // engine allows two networks of one name, and then no container can name either. Keep
    // the oldest.
    for duplicate in own_networks(docker, name, env).await?.iter().skip(1) {
        ignore_missing(docker.remove_network(duplicate).await)?;
    }
    Ok(())
}

pub async fn create_volume(
    docker: &Docker,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), ExecuteError> {
    if ensure_own(docker, Kind::Volume, name, env_of(labels)).await? {
        return Ok(());
    }
    let request = VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels.clone().into_iter().collect()),
        ..Default::default()
    };
    docker.create_volume(request).await?;
    Ok(())
}

/// Remove environment `env`'s container `name`, with its anonymous volumes (the official
/// image declares one at /var/lib/postgresql/data that dbtopo does not use); named data
/// volumes are kept. A container of that name that is not `env`'s is an error.
pub async fn remove_container(docker: &Docker, name: &str, env: &str) -> Result<(), ExecuteError> {
    if !ensure_own(docker, Kind::Container, name, env).await? {
        return Ok(());
    }
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    ignore_missing(docker.remove_container(name, Some(options)).await)
}

pub async fn remove_volume(docker: &Docker, name: &str, env: &str) -> Result<(), ExecuteError> {
    if !ensure_own(docker, Kind::Volume, name, env).await? {
        return Ok(());
    }
    ignore_missing(
        docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await,
    )
}

/// Remove environment `env`'s networks named `name` (by id: an interrupted apply can have
/// left two); one of that name that is not `env`'s is an error.
pub async fn remove_network(docker: &Docker, name: &str, env: &str) -> Result<(), ExecuteError> {
    match ensure_own(docker, Kind::Network, name, env).await {
        Ok(false) => return Ok(()),
        Ok(true) | Err(ExecuteError::Docker(_)) => {}
        Err(e) => return Err(e),
    }
    for id in own_networks(docker, name, env).await? {
        ignore_missing(docker.remove_network(&id).await)?;
    }
    Ok(())
}

/// Create the server's container: published on 127.0.0.1 only, data on its named volume,
/// started as root so the bootstrap script can prepare the volume before dropping to postgres.
pub async fn create_server_container(
    docker: &Docker,
    spec: &ServerSpec,
) -> Result<(), ExecuteError> {
    remove_container(docker, &spec.container, &spec.env).await?;
    let port = format!("{}/tcp", model::SERVER_PORT);
    let mut host_config = host_config(
        &port,
        spec.host_port,
        &spec.volume,
        model::VOLUME_MOUNT,
        &spec.network,
    );
    if spec.role == Role::Primary {
        ensure_initdb_cache(docker).await?;
        host_config.mounts.get_or_insert_default().push(Mount {
            target: Some(model::INITDB_CACHE_MOUNT.into()),
            source: Some(model::INITDB_CACHE_VOLUME.into()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        });
    }
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some(spec.node.clone()),
        user: Some("0:0".into()),
        entrypoint: Some(vec![
            "/bin/sh".into(),
            format!("{}/bootstrap.sh", model::CONFIG_DIR),
        ]),
        cmd: Some(vec![]),
        env: Some(vec!["LANG=C.UTF-8".into()]),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(vec![port.clone()]),
        stop_signal: Some("SIGINT".into()),
        stop_timeout: Some(60),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&spec.container)
        .build();
    docker.create_container(Some(options), body).await?;
    Ok(())
}

/// The volume of fresh clusters new primaries copy (see the bootstrap script); creating an
/// existing volume changes nothing.
async fn ensure_initdb_cache(docker: &Docker) -> Result<(), ExecuteError> {
    let request = VolumeCreateRequest {
        name: Some(model::INITDB_CACHE_VOLUME.into()),
        labels: Some(HashMap::from([(
            model::label::CACHE.to_string(),
            "initdb".to_string(),
        )])),
        ..Default::default()
    };
    docker.create_volume(request).await?;
    Ok(())
}

/// How a dbtopo container runs: `port` published on 127.0.0.1 only, its named volume at
/// `mount`, on the environment's network, Docker's init as PID 1 (it forwards the stop
/// signal: a PID 1 server ignores signals it has no handler for yet, so a stop landing while
/// it starts would otherwise wait out the whole stop timeout), restarted unless stopped.
pub fn host_config(
    port: &str,
    host_port: u16,
    volume: &str,
    mount: &str,
    network: &str,
) -> HostConfig {
    HostConfig {
        port_bindings: Some(HashMap::from([(
            port.to_owned(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host_port.to_string()),
            }]),
        )])),
        mounts: Some(vec![Mount {
            target: Some(mount.into()),
            source: Some(volume.to_owned()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }]),
        network_mode: Some(network.to_owned()),
        init: Some(true),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    }
}

/// Whether a container's bootstrap may go on to initialize its data (see `give_turn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Given,
    Held,
}

/// Write the rendered files and the secrets into the container (running or not). Secrets go
/// to a root-only folder; the bootstrap script hands them to the postgres user as needed.
/// A container started early gets its files with its turn held.
pub async fn upload_files(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
    turn: Turn,
) -> Result<(), ExecuteError> {
    let secret_dir = format!("{}/secrets", model::CONFIG_DIR);
    let secret_files = [
        FileSpec {
            path: format!("{secret_dir}/superuser"),
            mode: 0o600,
            content: secrets.superuser.clone(),
        },
        FileSpec {
            path: format!("{secret_dir}/superuser.scram"),
            mode: 0o600,
            content: postgres_protocol::password::scram_sha_256(secrets.superuser.as_bytes()),
        },
        FileSpec {
            path: format!("{secret_dir}/replication"),
            mode: 0o600,
            content: secrets.replication.clone(),
        },
    ];
    let turn_file = (turn == Turn::Given).then(turn_marker);
    let own_files = on_network(docker, spec).await?;
    let files = own_files.iter().chain(&secret_files).chain(&turn_file);
    upload(
        docker,
        &spec.container,
        &[(model::CONFIG_DIR, 0o755), (&secret_dir, 0o700)],
        files,
    )
    .await
}

/// The spec's files with the subnets of its network where a plan made before the network
/// existed left the placeholder (see [`templates::admit_network`]).
async fn on_network(docker: &Docker, spec: &ServerSpec) -> Result<Vec<FileSpec>, ExecuteError> {
    if !spec
        .files
        .iter()
        .any(|f| f.content.contains(templates::NETWORK_ADDRESS))
    {
        return Ok(spec.files.clone());
    }
    let network = docker
        .inspect_network(
            &spec.network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await?;
    let subnets = crate::observe::docker::subnets(network.ipam.as_ref());
    Ok(spec
        .files
        .iter()
        .map(|file| FileSpec {
            content: templates::admit_network(&file.content, &subnets),
            ..file.clone()
        })
        .collect())
}

/// Let a container started early go on: its bootstrap waits for this marker before it
/// initializes the data.
pub async fn give_turn(docker: &Docker, container: &str) -> Result<(), ExecuteError> {
    upload(docker, container, &[], [&turn_marker()]).await
}

fn turn_marker() -> FileSpec {
    FileSpec {
        path: format!("{}/turn", model::CONFIG_DIR),
        mode: 0o644,
        content: String::new(),
    }
}

/// One archive with the directories (path, mode) and files, unpacked at the container's root.
pub async fn upload<'a>(
    docker: &Docker,
    container: &str,
    dirs: &[(&str, u32)],
    files: impl IntoIterator<Item = &'a FileSpec>,
) -> Result<(), ExecuteError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, kind, mode, content: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder
            .append_data(&mut header, path.trim_start_matches('/'), content)
            .map_err(ExecuteError::Archive)
    };
    for (path, mode) in dirs {
        append(path, tar::EntryType::Directory, *mode, &[])?;
    }
    for file in files {
        append(
            &file.path,
            tar::EntryType::Regular,
            file.mode,
            file.content.as_bytes(),
        )?;
    }
    let archive = builder.into_inner().map_err(ExecuteError::Archive)?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    docker
        .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
        .await?;
    Ok(())
}

pub async fn start(docker: &Docker, container: &str) -> Result<(), ExecuteError> {
    docker.start_container(container, None).await?;
    Ok(())
}

pub async fn restart(docker: &Docker, container: &str) -> Result<(), ExecuteError> {
    let options = RestartContainerOptionsBuilder::default().t(60).build();
    docker.restart_container(container, Some(options)).await?;
    Ok(())
}

/// Whether the container runs, and how often its restart policy restarted it: a server that
/// crashes at start looks running most of the time, so a growing count means it failed.
/// `None` when the container is gone.
pub async fn status(docker: &Docker, container: &str) -> Result<Option<(bool, i64)>, ExecuteError> {
    match docker.inspect_container(container, None).await {
        Ok(inspect) => {
            let state = inspect.state.unwrap_or_default();
            let running = state.running == Some(true) && state.restarting != Some(true);
            Ok(Some((running, inspect.restart_count.unwrap_or(0))))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The last lines the container printed, to explain why a server did not start.
pub async fn log_tail(docker: &Docker, container: &str, lines: usize) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    match docker
        .logs(container, Some(options))
        .try_collect::<Vec<_>>()
        .await
    {
        Ok(chunks) => chunks.iter().map(|c| c.to_string()).collect(),
        Err(e) => format!("(logs unavailable: {e})"),
    }
}

/// Run a command inside a container (`options` says which, as whom, with what
/// environment): its exit code and what it printed. Callers put their own deadline on it.
pub async fn exec_output(
    docker: &Docker,
    container: &str,
    options: bollard::exec::CreateExecOptions<String>,
) -> Result<(i64, String), ExecuteError> {
    use bollard::exec::StartExecResults;
    use futures_util::StreamExt;
    let options = bollard::exec::CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..options
    };
    let exec = docker.create_exec(container, options).await?;
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker.start_exec(&exec.id, None).await?
    {
        while let Some(chunk) = stream.next().await {
            output.push_str(&chunk?.to_string());
        }
    }
    let code = docker.inspect_exec(&exec.id).await?.exit_code.unwrap_or(-1);
    Ok((code, output))
}
