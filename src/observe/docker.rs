//! What Docker holds for an environment, found by its labels.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use bollard::Docker;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder,
};
use futures_util::TryStreamExt;

use super::ObserveError;
use crate::model::{self, ConfigFiles, Container, Role, label};
use crate::secrets::Secrets;

/// One managed container as Docker reports it.
#[derive(Debug, Clone)]
pub struct FoundContainer {
    pub node: String,
    pub role: Role,
    pub container: Container,
    /// Filled in by the caller: read through SQL when the server answers, else from Docker.
    pub config: Option<ConfigFiles>,
}

/// A managed Docker object, for `destroy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The environment whose label they carry.
    pub env: String,
    pub containers: Vec<String>,
    pub volumes: Vec<(String, Option<u64>)>,
    pub networks: Vec<String>,
}

impl Inventory {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.volumes.is_empty() && self.networks.is_empty()
    }
}

/// Objects that bear a name this environment uses but not its label: someone else's, which
/// dbtopo must never change, adopt or remove.
pub async fn foreign(
    docker: &Docker,
    env: &str,
    names: &crate::observed::OwnNames,
) -> Result<Vec<crate::observed::ForeignObject>, ObserveError> {
    use crate::observed::ForeignObject;
    let ours = |labels: Option<&HashMap<String, String>>| {
        labels.and_then(|l| l.get(label::ENV)).map(String::as_str) == Some(env)
    };
    let owner =
        |labels: Option<&HashMap<String, String>>| labels.and_then(|l| l.get(label::ENV)).cloned();
    let containers = async {
        let options = ListContainersOptionsBuilder::default().all(true).build();
        docker.list_containers(Some(options)).await
    };
    let volumes = async {
        docker
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
    };
    let networks = async {
        docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
    };
    let (containers, volumes, networks) = tokio::try_join!(containers, volumes, networks)?;
    let mut found = Vec::new();
    for container in containers {
        let name = container
            .names
            .iter()
            .flatten()
            .map(|n| n.trim_start_matches('/'))
            .find(|n| names.containers.contains(*n));
        if let Some(name) = name
            && !ours(container.labels.as_ref())
        {
            found.push(ForeignObject {
                kind: "container",
                name: name.to_owned(),
                owner: owner(container.labels.as_ref()),
            });
        }
    }
    for volume in volumes.volumes.unwrap_or_default() {
        if names.volumes.contains(&volume.name) && !ours(Some(&volume.labels)) {
            found.push(ForeignObject {
                kind: "volume",
                owner: owner(Some(&volume.labels)),
                name: volume.name,
            });
        }
    }
    for network in networks {
        let Some(name) = network.name.clone() else {
            continue;
        };
        if names.networks.contains(&name) && !ours(network.labels.as_ref()) {
            found.push(ForeignObject {
                kind: "network",
                owner: owner(network.labels.as_ref()),
                name,
            });
        }
    }
    Ok(found)
}

fn env_filter(env: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{}={env}", label::ENV)])])
}

pub async fn containers(docker: &Docker, env: &str) -> Result<Vec<FoundContainer>, ObserveError> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&env_filter(env))
        .build();
    let summaries = docker.list_containers(Some(options)).await?;
    let found = futures_util::future::join_all(
        summaries
            .into_iter()
            .filter_map(|s| s.id)
            .map(|id| async move { container(docker, &id).await }),
    )
    .await;
    Ok(found
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// One container by id; `None` when it vanished meanwhile or is not a dbtopo server.
async fn container(docker: &Docker, id: &str) -> Result<Option<FoundContainer>, ObserveError> {
    let inspect = match docker.inspect_container(id, None).await {
        Ok(i) => i,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let labels = inspect
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let Some(node) = labels.get(label::NODE).cloned() else {
        return Ok(None);
    };
    if labels.contains_key(label::MONGO_SET) {
        return Ok(None);
    }
    let role = match labels.get(label::UPSTREAM) {
        Some(up) => Role::Replica {
            upstream: up.clone(),
        },
        None => Role::Primary,
    };
    let name = inspect
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let image = inspect
        .config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let host_port = inspect
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .and_then(|p| {
            p.get(&format!("{}/tcp", model::SERVER_PORT))
                .cloned()
                .flatten()
        })
        .and_then(|b| b.first().and_then(|b| b.host_port.clone()))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let running = inspect
        .state
        .as_ref()
        .is_some_and(|s| s.running == Some(true) && s.restarting != Some(true));
    Ok(Some(FoundContainer {
        node,
        role,
        container: Container {
            name,
            image,
            host_port,
            spec_hash: labels.get(label::SPEC_HASH).cloned().unwrap_or_default(),
            running,
        },
        config: None,
    }))
}

/// The configuration files inside a container, read through Docker's archive API so a stopped
/// container can be read too.
pub async fn config_files(
    docker: &Docker,
    container: &str,
) -> Result<Option<ConfigFiles>, ObserveError> {
    let Some(mut files) = read_files(docker, container).await? else {
        return Ok(None);
    };
    Ok(
        match (files.remove("postgresql.conf"), files.remove("pg_hba.conf")) {
            (Some(postgresql_conf), Some(pg_hba_conf)) => Some(ConfigFiles {
                postgresql_conf,
                pg_hba_conf,
            }),
            _ => None,
        },
    )
}

/// The passwords a container was given, for when the local secrets file was lost.
pub async fn secrets_in(docker: &Docker, container: &str) -> Result<Option<Secrets>, ObserveError> {
    let Some(mut files) = read_files(docker, container).await? else {
        return Ok(None);
    };
    Ok(
        match (
            files.remove("secrets/superuser"),
            files.remove("secrets/replication"),
        ) {
            (Some(superuser), Some(replication)) => Some(Secrets {
                superuser,
                replication,
                ..Default::default()
            }),
            _ => None,
        },
    )
}

/// A tar archive of `path` in the container, running or not; `None` when either is gone.
async fn download(
    docker: &Docker,
    container: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, ObserveError> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    match docker
        .download_from_container(container, Some(options))
        .try_collect::<Vec<_>>()
        .await
    {
        Ok(chunks) => Ok(Some(chunks.into_iter().flat_map(|c| c.to_vec()).collect())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How the cluster in a stopped container ended, from its `pg_control` (read through Docker's
/// archive API); `None` when the container or its data is gone or unreadable.
pub async fn cluster_end(
    docker: &Docker,
    container: &str,
) -> Result<Option<model::Ended>, ObserveError> {
    let path = format!("{}/data/global/pg_control", model::VOLUME_MOUNT);
    let Some(bytes) = download(docker, container, &path).await? else {
        return Ok(None);
    };
    let mut archive = tar::Archive::new(bytes.as_slice());
    let Some(entry) = archive.entries().map_err(ObserveError::Archive)?.next() else {
        return Ok(None);
    };
    let mut content = Vec::new();
    entry
        .map_err(ObserveError::Archive)?
        .read_to_end(&mut content)
        .map_err(ObserveError::Archive)?;
    Ok(crate::pg::control::parse(&content).map(|c| model::Ended {
        clean: c.clean,
        checkpoint: c.checkpoint,
        in_recovery: c.in_recovery,
    }))
}

/// Every file under the container's configuration folder, by path below it. Read through
/// Docker's archive API, so stopped containers can be read too.
pub async fn read_files(
    docker: &Docker,
    container: &str,
) -> Result<Option<BTreeMap<String, String>>, ObserveError> {
    let Some(bytes) = download(docker, container, model::CONFIG_DIR).await? else {
        return Ok(None);
    };
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().map_err(ObserveError::Archive)? {
        let mut entry = entry.map_err(ObserveError::Archive)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry
            .path()
            .map_err(ObserveError::Archive)?
            .to_string_lossy()
            .into_owned();
        // The archive's paths start with the folder's own name.
        let Some((_, relative)) = path.split_once('/') else {
            continue;
        };
        let relative = relative.to_string();
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(ObserveError::Archive)?;
        files.insert(relative, text);
    }
    Ok(Some(files))
}

/// The environment's network, with the subnets Docker gave it. Of two (an interrupted create
/// can leave a second), the oldest: the one the next apply keeps.
pub async fn network(
    docker: &Docker,
    env: &str,
) -> Result<Option<(String, Vec<String>)>, ObserveError> {
    let options = ListNetworksOptionsBuilder::default()
        .filters(&env_filter(env))
        .build();
    let mut networks = docker.list_networks(Some(options)).await?;
    networks.sort_by_key(|n| {
        n.created
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default()
    });
    Ok(networks.into_iter().find_map(|n| {
        let subnets = subnets(n.ipam.as_ref());
        Some((n.name?, subnets))
    }))
}

/// The subnets of a network's IPAM configuration, sorted.
pub fn subnets(ipam: Option<&bollard::models::Ipam>) -> Vec<String> {
    let mut subnets: Vec<String> = ipam
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|config| config.subnet.clone())
        .collect();
    subnets.sort();
    subnets
}

/// Volumes by node label, with their mount points on this host.
pub async fn volumes(
    docker: &Docker,
    env: &str,
) -> Result<Vec<(String, String, String)>, ObserveError> {
    let options = ListVolumesOptionsBuilder::default()
        .filters(&env_filter(env))
        .build();
    let response = docker.list_volumes(Some(options)).await?;
    Ok(response
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| {
            let node = v.labels.get(label::NODE)?.clone();
            Some((node, v.name, v.mountpoint))
        })
        .collect())
}

pub async fn image_present(docker: &Docker, reference: &str) -> Result<bool, ObserveError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Everything carrying the environment's label, with volume sizes where this host can read
/// the volume's folder (a local engine run by the same user).
pub async fn inventory(docker: &Docker, env: &str) -> Result<Inventory, ObserveError> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&env_filter(env))
        .build();
    let mut containers: Vec<String> = docker
        .list_containers(Some(options))
        .await?
        .into_iter()
        .filter_map(|c| c.names.and_then(|n| n.first().cloned()))
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    containers.sort();
    let mut volumes: Vec<(String, Option<u64>)> = volumes(docker, env)
        .await?
        .into_iter()
        .map(|(_, name, mountpoint)| (name, folder_size(std::path::Path::new(&mountpoint))))
        .collect();
    volumes.sort();
    let options = ListNetworksOptionsBuilder::default()
        .filters(&env_filter(env))
        .build();
    let mut networks: Vec<String> = docker
        .list_networks(Some(options))
        .await?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    networks.sort();
    Ok(Inventory {
        env: env.to_owned(),
        containers,
        volumes,
        networks,
    })
}

fn folder_size(path: &std::path::Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_dir() {
        return Some(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).ok()? {
        let entry = entry.ok()?;
        let meta = entry.metadata().ok()?;
        total += if meta.is_dir() {
            folder_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Some(total)
}

pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
