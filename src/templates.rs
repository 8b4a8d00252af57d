//! postgresql.conf, pg_hba.conf and the bootstrap script, rendered from `templates/`.
//!
//! Pure: the same input always gives the same bytes, so a hash of the output tells whether a
//! server's configuration has to change.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use handlebars::Handlebars;
use serde::Serialize;

use crate::model::{self, ConfigFiles, Role};
use crate::topology::AccessRule;

const POSTGRESQL_CONF: &str = include_str!("../templates/postgresql.conf.hbs");
const PG_HBA_CONF: &str = include_str!("../templates/pg_hba.conf.hbs");
const BOOTSTRAP_SH: &str = include_str!("../templates/bootstrap.sh.hbs");

/// Data directory inside the container (a child of the volume so initdb gets an empty folder).
pub fn data_directory() -> String {
    format!("{}/data", model::VOLUME_MOUNT)
}

/// Stands for the environment's network in a rendered pg_hba.conf. Docker gives a network its
/// subnet when it creates it, so the topology alone cannot say it: [`admit_network`] puts the
/// subnets in once they are known (the plan, from the observed network; the executor, for a
/// network created by the same apply).
pub const NETWORK_ADDRESS: &str = "@environment-network@";

/// `pg_hba` with every line that names [`NETWORK_ADDRESS`] written once per subnet of the
/// environment's network. A network without a subnet in its IPAM configuration (not one
/// dbtopo's bridge networks have) falls back to `samenet`, the server's own subnets.
pub fn admit_network(pg_hba: &str, subnets: &[String]) -> String {
    let fallback = ["samenet".to_string()];
    let subnets = if subnets.is_empty() {
        &fallback[..]
    } else {
        subnets
    };
    let mut out = String::with_capacity(pg_hba.len());
    for line in pg_hba.split_inclusive('\n') {
        if line.contains(NETWORK_ADDRESS) {
            for subnet in subnets {
                out.push_str(&line.replace(NETWORK_ADDRESS, subnet));
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Everything a server's files depend on.
#[derive(Debug, Clone)]
pub struct ServerInput<'a> {
    pub env: &'a str,
    pub node: &'a str,
    pub role: &'a Role,
    pub replication_user: &'a str,
    pub settings: &'a BTreeMap<String, String>,
    pub access: &'a [AccessRule],
    /// For a node: its replicas declared `synchronous`, by node name.
    pub synchronous_standbys: &'a [String],
    /// For a replica: whether it is declared `synchronous`.
    pub synchronous: bool,
}

/// The line a synchronous replica's postgresql.conf carries: its own record that its node
/// waited for it, which a promotion reads once that node is gone.
pub const SYNCHRONOUS_MARK: &str = "# dbtopo: synchronous standby";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedServer {
    pub config: ConfigFiles,
    pub bootstrap: String,
}

#[derive(Serialize)]
struct Context<'a> {
    env: &'a str,
    node: &'a str,
    role: &'static str,
    port: u16,
    data_directory: String,
    hba_file: String,
    config_dir: &'static str,
    volume: &'static str,
    initdb_cache: &'static str,
    superuser: &'static str,
    replication_user: &'a str,
    network: &'static str,
    upstream: Option<Upstream>,
    /// `FIRST n ("a", "b")`: every synchronous replica confirms each commit.
    synchronous_standby_names: Option<String>,
    synchronous_mark: Option<String>,
    settings: Vec<Setting>,
    access: &'a [AccessRule],
}

#[derive(Serialize)]
struct Upstream {
    node: String,
    host: String,
    user: String,
    slot: String,
    passfile: String,
    application_name: String,
}

#[derive(Serialize)]
struct Setting {
    name: String,
    value: String,
}

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        for (name, text) in [
            ("postgresql.conf", POSTGRESQL_CONF),
            ("pg_hba.conf", PG_HBA_CONF),
            ("bootstrap.sh", BOOTSTRAP_SH),
        ] {
            hb.register_template_string(name, text)
                .expect("templates compiled into the binary are valid");
        }
        hb
    })
}

/// Quote a value for postgresql.conf: inside single quotes, `'` doubles and backslash escapes.
fn quote_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\'', "''")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

pub fn render_server(input: &ServerInput<'_>) -> Result<RenderedServer, handlebars::RenderError> {
    let upstream = input.role.upstream().map(|up| Upstream {
        node: up.to_string(),
        host: model::container_name(input.env, up),
        user: input.replication_user.to_string(),
        slot: model::slot_name(input.node),
        passfile: format!("{}/pgpass", model::VOLUME_MOUNT),
        application_name: input.node.replace('-', "_"),
    });
    let context = Context {
        env: input.env,
        node: input.node,
        role: input.role.as_label(),
        port: model::SERVER_PORT,
        data_directory: data_directory(),
        hba_file: format!("{}/pg_hba.conf", model::CONFIG_DIR),
        config_dir: model::CONFIG_DIR,
        volume: model::VOLUME_MOUNT,
        initdb_cache: model::INITDB_CACHE_MOUNT,
        superuser: model::SUPERUSER,
        replication_user: input.replication_user,
        network: NETWORK_ADDRESS,
        upstream,
        synchronous_standby_names: (!input.synchronous_standbys.is_empty()).then(|| {
            let names: Vec<String> = input
                .synchronous_standbys
                .iter()
                .map(|node| format!("\"{}\"", node.replace('-', "_")))
                .collect();
            format!("FIRST {} ({})", names.len(), names.join(", "))
        }),
        synchronous_mark: (input.synchronous && input.role.upstream().is_some()).then(|| {
            format!(
                "{SYNCHRONOUS_MARK} of {}",
                input.role.upstream().unwrap_or_default()
            )
        }),
        settings: input
            .settings
            .iter()
            .map(|(name, value)| Setting {
                name: name.clone(),
                value: quote_value(value),
            })
            .collect(),
        access: input.access,
    };
    let hb = registry();
    Ok(RenderedServer {
        config: ConfigFiles {
            postgresql_conf: hb.render("postgresql.conf", &context)?,
            pg_hba_conf: hb.render("pg_hba.conf", &context)?,
        },
        bootstrap: hb.render("bootstrap.sh", &context)?,
    })
}

/// The `name = 'value'` lines of a postgresql.conf dbtopo rendered, for telling which settings
/// a new file changes.
pub fn parse_conf_settings(conf: &str) -> BTreeMap<String, String> {
    conf.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (name, value) = line.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map(|v| v.replace("''", "'"))
                .unwrap_or_else(|| value.to_string());
            Some((name.trim().to_lowercase(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("max_prepared_transactions".to_string(), "16".to_string()),
            ("search_path".to_string(), "\"$user\", it's".to_string()),
        ])
    }

    #[test]
    fn primary_files_render() {
        let settings = settings();
        let access = [AccessRule {
            database: "shop".into(),
            user: "app".into(),
            address: "10.0.0.0/8".into(),
        }];
        let out = render_server(&ServerInput {
            env: "shop",
            node: "primary",
            role: &Role::Primary,
            replication_user: "repuser",
            settings: &settings,
            access: &access,
            synchronous_standbys: &["primary-replica".to_owned(), "dr".to_owned()],
            synchronous: false,
        })
        .unwrap();
        insta::assert_snapshot!("primary_postgresql_conf", out.config.postgresql_conf);
        // As written into the container, once the network's subnet is known.
        let on_network = out.config.on_network(&["172.20.0.0/16".to_string()]);
        insta::assert_snapshot!("primary_pg_hba_conf", on_network.pg_hba_conf);
        assert!(out.bootstrap.contains("initdb"));
        assert!(!out.bootstrap.contains("pg_basebackup"));
        // A new cluster comes from the shared cache when it can, and gets the password as a
        // verifier only: the plain password never reaches the primary's bootstrap.
        assert!(out.bootstrap.contains("CACHE='/var/lib/dbtopo-initdb'"));
        assert!(out.bootstrap.contains("superuser.scram"));
        assert!(!out.bootstrap.contains("$SECRETS/superuser\""));
        assert!(!out.bootstrap.contains("--pwfile"));
        let parsed = parse_conf_settings(&out.config.postgresql_conf);
        assert_eq!(parsed["search_path"], "\"$user\", it's");
        assert_eq!(parsed["port"], "5432");
        // Every synchronous replica confirms each commit, by its application_name.
        assert_eq!(
            parsed["synchronous_standby_names"],
            "FIRST 2 (\"primary_replica\", \"dr\")"
        );
    }

    #[test]
    fn the_network_line_is_written_once_per_subnet_and_nothing_else_changes() {
        let hba = "local all all trust\nhost all all @environment-network@ scram-sha-256\nhost shop app 10.0.0.0/8 scram-sha-256\n";
        let subnets = ["172.20.0.0/16".to_string(), "fd00:20::/64".to_string()];
        assert_eq!(
            admit_network(hba, &subnets),
            "local all all trust\n\
             host all all 172.20.0.0/16 scram-sha-256\n\
             host all all fd00:20::/64 scram-sha-256\n\
             host shop app 10.0.0.0/8 scram-sha-256\n"
        );
        assert!(admit_network(hba, &[]).contains("host all all samenet scram-sha-256\n"));
        assert_eq!(
            admit_network("local all all trust", &subnets),
            "local all all trust"
        );
    }

    #[test]
    fn replica_streams_from_its_upstream_through_the_slot() {
        let settings = settings();
        let out = render_server(&ServerInput {
            env: "shop",
            node: "primary-replica",
            role: &Role::Replica {
                upstream: "primary".into(),
            },
            replication_user: "repuser",
            settings: &settings,
            access: &[],
            synchronous_standbys: &[],
            synchronous: true,
        })
        .unwrap();
        let parsed = parse_conf_settings(&out.config.postgresql_conf);
        assert!(
            out.config
                .postgresql_conf
                .contains(&format!("{SYNCHRONOUS_MARK} of primary"))
        );
        assert!(!parsed.contains_key("synchronous_standby_names"));
        assert_eq!(parsed["primary_slot_name"], "dbtopo_primary_replica");
        assert!(parsed["primary_conninfo"].contains("host=shop-primary"));
        assert!(out.bootstrap.contains("--slot='dbtopo_primary_replica'"));
        assert!(!out.bootstrap.contains("initdb"));
        insta::assert_snapshot!("replica_bootstrap_sh", out.bootstrap);
    }
}
