//! MongoDB operations of the plan: member containers, and commands to a replica set either on
//! a member itself (`mongosh` in its container) or through its 127.0.0.1 port.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::CreateExecOptions;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::{ExecuteError, docker};
use crate::mongo::client;
use crate::mongo::diff::{ADMIN_PASSWORD_PLACEHOLDER, MEMBER_PORT, MongoStep};
use crate::plan::{FileSpec, MongoMemberSpec};
use crate::secrets::Secrets;

/// Where the keyfile is written (root only), and the copy mongod reads (its own user only).
const KEYFILE_UPLOAD: &str = "/etc/dbtopo/secrets/mongo-keyfile";
const KEYFILE: &str = "/etc/dbtopo/run/mongo-keyfile";

/// Hands the keyfile to the mongodb user with the mode mongod demands (0400, its owner),
/// then starts mongod through the image's entrypoint (which drops root) when there is one.
fn start_script(set: &str) -> String {
    format!(
        "set -e\n\
         install -d -m 0755 /etc/dbtopo/run\n\
         owner=mongodb; id -u mongodb >/dev/null 2>&1 || owner=999\n\
         install -m 0400 -o \"$owner\" -g \"$owner\" {KEYFILE_UPLOAD} {KEYFILE}\n\
         set -- mongod --replSet '{set}' --keyFile {KEYFILE} --bind_ip_all --port {MEMBER_PORT}\n\
         if command -v docker-entrypoint.sh >/dev/null 2>&1; then exec docker-entrypoint.sh \"$@\"; fi\n\
         exec \"$@\"\n"
    )
}

/// Create the member's volume and container, write its keyfile, start it, wait for `hello`.
pub async fn run_member(
    docker: &Docker,
    spec: &MongoMemberSpec,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    docker::create_volume(docker, &spec.volume, &spec.labels).await?;
    docker::remove_container(docker, &spec.container, &spec.env).await?;
    let port = format!("{MEMBER_PORT}/tcp");
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some(spec.node.clone()),
        user: Some("0:0".into()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), start_script(&spec.set)]),
        cmd: Some(vec![]),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: Some(vec![port.clone()]),
        host_config: Some(docker::host_config(
            &port,
            spec.host_port,
            &spec.volume,
            "/data/db",
            &spec.network,
        )),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&spec.container)
        .build();
    docker.create_container(Some(options), body).await?;
    upload_keyfile(docker, &spec.container, &secrets.mongo_keyfile).await?;
    docker::start(docker, &spec.container).await?;
    wait_answers(docker, spec).await
}

/// Start a stopped member and wait until it answers.
pub async fn start_member(docker: &Docker, spec: &MongoMemberSpec) -> Result<(), ExecuteError> {
    docker::restart(docker, &spec.container).await?;
    wait_answers(docker, spec).await
}

async fn upload_keyfile(docker: &Docker, container: &str, key: &str) -> Result<(), ExecuteError> {
    let keyfile = FileSpec {
        path: KEYFILE_UPLOAD.into(),
        mode: 0o400,
        content: key.into(),
    };
    docker::upload(docker, container, &[], [&keyfile]).await
}

/// Connecting sends `hello`, which needs no login: it tells that mongod listens.
async fn wait_answers(docker: &Docker, spec: &MongoMemberSpec) -> Result<(), ExecuteError> {
    let limit = Duration::from_secs(60);
    let deadlines = client::Deadlines::from_env()?;
    let target = client::Target::member(&spec.set, &spec.node, spec.host_port);
    let started = Instant::now();
    let mut last_error = String::new();
    while started.elapsed() < limit {
        // No attempt outlasts the wait.
        let deadlines = client::Deadlines {
            connect: deadlines
                .connect
                .min(limit.saturating_sub(started.elapsed())),
            ..deadlines
        };
        match client::connect_within(target.clone(), None, deadlines).await {
            Ok(_) => return Ok(()),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(ExecuteError::NotReady {
        engine: "MongoDB",
        container: spec.container.clone(),
        port: spec.host_port,
        waited: limit,
        last_error,
        logs: docker::log_tail(docker, &spec.container, 20).await,
    })
}

/// How long `mongosh` may take to start in a member's container, on top of its command.
const MONGOSH_START: Duration = Duration::from_secs(30);

/// How long the `mongosh` wait for a primary polls (its script says so too).
const MONGOSH_PRIMARY_WAIT: Duration = Duration::from_secs(60);

/// Run a change's steps on `set`: inside the member's container when `local`, else through
/// its port as dbtopo's admin user. Each step has a deadline; in the container it bounds
/// the whole `mongosh` run, whose process is left to end on its own when it passes.
pub async fn run_commands(
    docker: &Docker,
    set: &str,
    container: &str,
    host_port: u16,
    local: bool,
    steps: &[MongoStep],
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    let target = client::Target::set(set, host_port);
    if !local {
        let member = client::connect(target, Some(&secrets.mongo_admin)).await?;
        client::run(&member, steps, &secrets.mongo_admin).await?;
        return Ok(());
    }
    let deadlines = client::Deadlines::from_env()?;
    for step in steps {
        let (database, command, accepted) = match step {
            MongoStep::Command {
                database,
                command,
                accepted,
            } => (database.as_str(), command.as_str(), accepted.clone()),
            MongoStep::WaitForPrimary => ("admin", "", Vec::new()),
        };
        let command = command.replace(
            &format!("\"{ADMIN_PASSWORD_PLACEHOLDER}\""),
            &serde_json::to_string(&secrets.mongo_admin).unwrap_or_default(),
        );
        // The command goes in through the environment, never on a command line.
        let (script, limit) = match step {
            MongoStep::WaitForPrimary => (format!("const until = Date.now() + {}; \
                 while (!db.hello().isWritablePrimary) {{ if (Date.now() > until) {{ print('no primary after {} s'); quit(1); }} sleep(200); }}",
                 MONGOSH_PRIMARY_WAIT.as_millis(), MONGOSH_PRIMARY_WAIT.as_secs()),
                 MONGOSH_PRIMARY_WAIT + MONGOSH_START),
            MongoStep::Command { .. } => ("const r = db.getSiblingDB(process.env.DBTOPO_DB).runCommand(EJSON.parse(process.env.DBTOPO_COMMAND)); \
                 const accepted = JSON.parse(process.env.DBTOPO_ACCEPTED); \
                 if (!r.ok && !accepted.includes(r.code)) { print(EJSON.stringify(r)); quit(1); }"
                .to_owned(), deadlines.command + MONGOSH_START),
        };
        let accepted = serde_json::to_string(&accepted).unwrap_or_else(|_| "[]".into());
        let shell = docker::exec_output(
            docker,
            container,
            CreateExecOptions {
                cmd: Some(vec![
                    "mongosh".to_owned(),
                    "--quiet".to_owned(),
                    "--norc".to_owned(),
                    "--port".to_owned(),
                    MEMBER_PORT.to_string(),
                    "--eval".to_owned(),
                    script,
                ]),
                env: Some(vec![
                    format!("DBTOPO_DB={database}"),
                    format!("DBTOPO_COMMAND={command}"),
                    format!("DBTOPO_ACCEPTED={accepted}"),
                ]),
                ..Default::default()
            },
        );
        let Ok(ran) = tokio::time::timeout(limit, shell).await else {
            return Err(ExecuteError::MongoShellDeadline {
                target: target.to_string(),
                container: container.to_owned(),
                limit,
            });
        };
        let (code, output) = ran?;
        if code != 0 {
            return Err(ExecuteError::MongoShell {
                container: container.to_owned(),
                output: output.replace(&secrets.mongo_admin, "<mongo admin password>"),
            });
        }
    }
    Ok(())
}
