//! `dbtopo mongosh SET [FILE] [-- ARGS]`: MongoDB's shell on the set's primary, as dbtopo's
//! admin user.
//!
//! As with `dbtopo psql`: the member's container must carry this environment's label and
//! run, and the member on the port must complete a SCRAM-SHA-256 exchange with dbtopo (the
//! driver checks the server's signature, which only a server that holds the password's
//! verifier can make) before any shell is given the password. The shell gets it in its
//! environment (see [`crate::mongo::shell`]), never on a command line. Without mongosh on the
//! host, the member's own mongosh runs in its container.

use std::io::IsTerminal;
use std::path::Path;

use miette::{IntoDiagnostic, Result, miette};

use super::connect::{checked_container, host_program};
use super::environment::{docker, existing_secrets};
use crate::cli::MongoshArgs;
use crate::diagnostics::did_you_mean;
use crate::mongo::client::{self, Target};
use crate::mongo::diff::MEMBER_PORT;
use crate::mongo::shell;
use crate::{model, topology};

/// `dbtopo mongosh`: mongosh's exit code.
pub async fn mongosh(args: &MongoshArgs) -> Result<u8> {
    // The set is named, so it is found whatever profiles are active.
    let whole = topology::load(&args.file.file)?;
    let Some(set) = whole.mongo.replica_sets.get(&args.set).cloned() else {
        let names = whole.mongo.replica_sets.keys().map(String::as_str);
        return Err(miette!(
            help = format!(
                "{}the topology's replica sets: {}",
                did_you_mean(&args.set, names.clone()),
                names.collect::<Vec<_>>().join(", ")
            ),
            "no replica set named \"{}\" in {}",
            args.set,
            args.file.file.display()
        ));
    };
    let topology = whole.with_profiles(&set.profiles);
    let env = topology.name.clone();
    let docker = docker().await?;
    let Some(secrets) = existing_secrets(&docker, &env).await? else {
        return Err(miette!(
            help = "run `dbtopo apply` first",
            "environment \"{env}\" does not exist yet"
        ));
    };
    let Some(first) = set.members.first() else {
        return Err(miette!("replica set {} has no members", set.name));
    };
    checked_container(
        &docker,
        &model::container_name(&env, &first.name),
        &env,
        &format!("member {} of replica set {}", first.name, set.name),
    )
    .await?;
    // The first member says which member is primary; the shell goes there, so it can write.
    let asked = client::connect(
        Target::set(&set.name, first.port),
        Some(&secrets.mongo_admin),
    )
    .await?;
    let states = client::member_states(&asked).await?;
    let chosen = set
        .members
        .iter()
        .find(|m| states.get(&m.id).is_some_and(|s| s == "PRIMARY"))
        .unwrap_or(first);
    let container = model::container_name(&env, &chosen.name);
    if chosen.id != first.id {
        checked_container(
            &docker,
            &container,
            &env,
            &format!("member {} of replica set {}", chosen.name, set.name),
        )
        .await?;
    }
    let target = Target::member(&set.name, &chosen.name, chosen.port);
    let status = launch(
        &target,
        &secrets.mongo_admin,
        &set.database,
        host_program("mongosh").as_deref(),
        &container,
        &args.args,
    )
    .await?;
    Ok(status)
}

/// Check that the member at `target` proves itself with `password`, then start mongosh on it:
/// `program` on the host, or else the one in `container`. Returns mongosh's exit code.
pub async fn launch(
    target: &Target,
    password: &str,
    database: &str,
    program: Option<&Path>,
    container: &str,
    user_args: &[String],
) -> Result<u8> {
    client::connect(target.clone(), Some(password))
        .await
        .map_err(|e| miette!("{e}; not starting mongosh"))?;
    let status = match program {
        Some(program) => std::process::Command::new(program)
            .args(shell::arguments(user_args))
            .env(
                shell::URI_VARIABLE,
                shell::connection_uri("127.0.0.1", target.port, database, password),
            )
            .status()
            .into_diagnostic()?,
        None => {
            eprintln!("note: no mongosh on this machine: using the one in container {container}");
            let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            let mut command = std::process::Command::new("docker");
            command.args(["exec", "-i"]);
            if interactive {
                command.arg("-t");
            }
            // `-e NAME` without a value: docker takes it from its own environment.
            command
                .args(["-e", shell::URI_VARIABLE, container, "mongosh"])
                .args(shell::arguments(user_args))
                .env(
                    shell::URI_VARIABLE,
                    shell::connection_uri("127.0.0.1", MEMBER_PORT, database, password),
                )
                .status()
                .map_err(|e| {
                    miette!("there is no mongosh on this machine, and `docker exec` failed: {e}")
                })?
        }
    };
    Ok(status.code().map_or(1, |code| code.clamp(0, 255) as u8))
}
