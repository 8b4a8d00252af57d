//! `dbtopo psql` and `dbtopo env`: connect to a node of the environment as its superuser.
//!
//! The password never goes on a command line or into a variable: it is written to the
//! environment's passfile (mode 0600, in the state folder), which libpq reads through
//! `PGPASSFILE`. Before the host's psql is started, dbtopo checks that the node's container
//! is this environment's and runs, and completes a SCRAM exchange with the server on that
//! port itself (which a program that took the port cannot); `PGREQUIREAUTH=scram-sha-256`
//! makes libpq 16 and later refuse anything but SCRAM too. Without a psql on the host, the
//! container's own psql runs over its local socket, where no password is needed at all.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{IntoDiagnostic, Result, miette};

use super::desired;
use super::environment::{docker, existing_secrets, print_warnings};
use crate::cli::{EnvArgs, FileArg, PsqlArgs};
use crate::model::{self, SUPERUSER};
use crate::secrets::{self, Secrets};
use crate::{observe, topology};

/// How long the check that the server is ours may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A node to connect to, found running and checked to be this environment's.
struct Node {
    env: String,
    name: String,
    container: String,
    port: u16,
    database: String,
    /// Every server's port, for the passfile.
    ports: Vec<u16>,
    secrets: Secrets,
}

async fn node(file: &FileArg, name: &str) -> Result<Node> {
    let topology = topology::load(&file.file)?.with_profiles(&file.profiles);
    print_warnings(&topology);
    let desired = desired(&topology)?;
    let env = topology.name.clone();
    let Some(server) = desired.state.servers.get(name) else {
        let known: Vec<&str> = desired.state.servers.keys().map(String::as_str).collect();
        return Err(miette!(
            help = format!("the topology's servers: {}", known.join(", ")),
            "no node or replica named \"{name}\" in {}",
            file.file.display()
        ));
    };
    let port = server.container.as_ref().map_or(0, |c| c.host_port);
    let docker = docker().await?;
    let Some(secrets) = existing_secrets(&docker, &env).await? else {
        return Err(miette!(
            help = "run `dbtopo apply` first",
            "environment \"{env}\" does not exist yet"
        ));
    };
    let container = model::container_name(&env, name);
    checked_container(&docker, &container, &env, &format!("node {name}")).await?;
    let database = desired
        .schema
        .as_ref()
        .map_or("postgres".to_owned(), |s| s.target.database.clone());
    let ports = desired
        .state
        .servers
        .values()
        .filter_map(|s| s.container.as_ref().map(|c| c.host_port))
        .collect();
    Ok(Node {
        env,
        name: name.to_owned(),
        container,
        port,
        database,
        ports,
        secrets,
    })
}

/// The container exists, carries this environment's label and runs: anything else is an
/// error that connects to nothing.
pub(super) async fn checked_container(
    docker: &bollard::Docker,
    container: &str,
    env: &str,
    what: &str,
) -> Result<()> {
    let inspected = docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(|_| {
            miette!(
                help = "run `dbtopo apply`",
                "container {container} does not exist"
            )
        })?;
    let ours = inspected
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|labels| labels.get(model::label::ENV))
        .is_some_and(|label| label == env);
    if !ours {
        return Err(miette!(
            "container {container} does not carry environment \"{env}\"'s label: not connecting"
        ));
    }
    let running = inspected
        .state
        .as_ref()
        .and_then(|s| s.running)
        .unwrap_or(false);
    if !running {
        return Err(miette!(
            help = "run `dbtopo apply` to start it",
            "{what} ({container}) is not running"
        ));
    }
    Ok(())
}

impl Node {
    /// The environment's passfile, written afresh.
    fn passfile(&self) -> Result<PathBuf> {
        Ok(secrets::write_passfile(
            &self.env,
            &self.secrets,
            &self.ports,
        )?)
    }

    /// Complete a SCRAM exchange with the server on the node's port: it is ours.
    async fn check_server(&self) -> Result<()> {
        observe::postgres::connect_to(
            self.port,
            &self.secrets.superuser,
            "postgres",
            CHECK_TIMEOUT,
        )
        .await
        .map(drop)
        .map_err(|e| {
            miette!(
                "PostgreSQL of node {} on 127.0.0.1:{} did not prove itself: {e}; not \
                 connecting",
                self.name,
                self.port
            )
        })
    }
}

/// `dbtopo psql NODE [FILE] [-- ARGS]`: psql's exit code.
pub async fn psql(args: &PsqlArgs) -> Result<u8> {
    let node = node(&args.file, &args.node).await?;
    let status = match host_program("psql") {
        Some(psql) => {
            node.check_server().await?;
            let passfile = node.passfile()?;
            std::process::Command::new(psql)
                .args(["-h", "127.0.0.1", "-p", &node.port.to_string()])
                .args(["-U", SUPERUSER, "-d", &node.database])
                .args(&args.args)
                .env("PGPASSFILE", passfile)
                .env("PGREQUIREAUTH", "scram-sha-256")
                .env_remove("PGPASSWORD")
                .status()
                .into_diagnostic()?
        }
        None => {
            eprintln!(
                "note: no psql on this machine: using the one in container {}",
                node.container
            );
            let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            let mut command = std::process::Command::new("docker");
            command.args(["exec", "-i"]);
            if interactive {
                command.arg("-t");
            }
            command
                .args(["-u", "postgres", &node.container])
                .args(["psql", "-U", SUPERUSER, "-d", &node.database])
                .args(&args.args)
                .status()
                .map_err(|e| {
                    miette!("there is no psql on this machine, and `docker exec` failed: {e}")
                })?
        }
    };
    Ok(status.code().map_or(1, |code| code.clamp(0, 255) as u8))
}

/// `dbtopo env NODE [FILE]`: exports for a shell (`eval "$(dbtopo env primary)"`).
pub async fn env_exports(args: &EnvArgs) -> Result<()> {
    let node = node(&args.file, &args.node).await?;
    node.check_server().await?;
    let passfile = node.passfile()?;
    println!(
        "# PostgreSQL node {} of environment \"{}\"",
        node.name, node.env
    );
    for (name, value) in [
        ("PGHOST", "127.0.0.1".to_owned()),
        ("PGPORT", node.port.to_string()),
        ("PGUSER", SUPERUSER.to_owned()),
        ("PGDATABASE", node.database.clone()),
        ("PGPASSFILE", shell_quote(&passfile)),
        ("PGREQUIREAUTH", "scram-sha-256".to_owned()),
    ] {
        println!("export {name}={value}");
    }
    Ok(())
}

/// A path as one shell word.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// The program `name` on PATH, if there is one.
pub(super) fn host_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}
