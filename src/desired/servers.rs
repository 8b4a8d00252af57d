//! The validated topology turned into the desired servers: names, rendered files, hashes.

use std::collections::{BTreeMap, BTreeSet};

use crate::hashing::short_hash;
use crate::model::{self, Container, Role, Server, State};
use crate::templates::{self, ServerInput};
use crate::topology::Topology;

/// Build the desired state. Pure; fails only if a template cannot render, which is a bug.
pub fn desired_state(topology: &Topology) -> Result<State, handlebars::RenderError> {
    let env = topology.name.as_str();
    let pg = &topology.postgres;
    let mut servers = BTreeMap::new();

    let members = pg
        .nodes
        .values()
        .map(|n| (n.name.as_str(), Role::Primary, n.port, &n.settings, false))
        .chain(pg.replicas.values().map(|r| {
            let role = Role::Replica {
                upstream: r.of.clone(),
            };
            (r.name.as_str(), role, r.port, &r.settings, r.synchronous)
        }));

    for (node, role, port, own_settings, synchronous) in members {
        let synchronous_standbys: Vec<String> = pg
            .replicas
            .values()
            .filter(|r| r.of == node && r.synchronous)
            .map(|r| r.name.clone())
            .collect();
        let mut settings = pg.settings.clone();
        settings.extend(own_settings.iter().map(|(k, v)| (k.clone(), v.clone())));
        let rendered = templates::render_server(&ServerInput {
            env,
            node,
            role: &role,
            replication_user: &pg.replication_user,
            settings: &settings,
            access: &pg.access,
            synchronous_standbys: &synchronous_standbys,
            synchronous,
        })?;
        // As a standby of one of its replicas: the configuration it streams with when the
        // topology has just made it the node in that replica's place.
        let mut standby_confs = BTreeMap::new();
        if role == Role::Primary {
            for replica in pg.replicas.values().filter(|r| r.of == node) {
                let as_standby = templates::render_server(&ServerInput {
                    env,
                    node,
                    role: &Role::Replica {
                        upstream: replica.name.clone(),
                    },
                    replication_user: &pg.replication_user,
                    settings: &settings,
                    access: &pg.access,
                    synchronous_standbys: &[],
                    synchronous: false,
                })?;
                standby_confs.insert(replica.name.clone(), as_standby.config.postgresql_conf);
            }
        }
        let image = topology.images.postgres.clone();
        let spec_hash = container_spec_hash(&image, port, &role, &rendered.bootstrap);
        let replicas: BTreeSet<String> = pg
            .replicas
            .values()
            .filter(|r| r.of == node)
            .map(|r| model::slot_name(&r.name))
            .collect();
        let replication_roles = if replicas.is_empty() {
            BTreeSet::new()
        } else {
            BTreeSet::from([pg.replication_user.clone()])
        };
        servers.insert(
            node.to_string(),
            Server {
                node: node.to_string(),
                role,
                container: Some(Container {
                    name: model::container_name(env, node),
                    image,
                    host_port: port,
                    spec_hash,
                    running: true,
                }),
                config: Some(rendered.config),
                settings,
                live: None,
                silent: None,
                ended: None,
                replication_roles,
                slots: replicas,
                bootstrap: Some(rendered.bootstrap),
                standby_confs,
            },
        );
    }

    Ok(State {
        cpus: None,
        memory: None,
        env: env.to_string(),
        network: Some(model::network_name(env)),
        network_subnets: Vec::new(),
        images: BTreeMap::from([(topology.images.postgres.clone(), true)]),
        volumes: servers.keys().cloned().collect(),
        servers,
    })
}

/// Everything that, when changed, needs a new container (the data volume is kept).
pub fn container_spec_hash(image: &str, host_port: u16, role: &Role, bootstrap: &str) -> String {
    short_hash(&[
        image,
        &host_port.to_string(),
        role.as_label(),
        role.upstream().unwrap_or(""),
        bootstrap,
    ])
}
