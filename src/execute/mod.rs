//! Run a plan: wave by wave, the changes of a wave in parallel. The only writer.
//!
//! The executor decides nothing: each change carries its operation. When a change fails, the
//! wave in flight finishes, nothing later starts, and the outcome says what was done and what
//! is left, so the next apply picks up from there.

pub mod docker;
pub mod mongo;
pub mod postgres;
pub mod schema;

use std::time::{Duration, Instant};

use bollard::Docker;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::model::{self, Role};
use crate::plan::{Change, Operation, Plan};
use crate::secrets::Secrets;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExecuteError {
    #[error("Docker Engine request failed: {0}")]
    #[diagnostic(code(dbtopo::execute::docker))]
    Docker(#[from] bollard::errors::Error),
    #[error("PostgreSQL request failed: {0}")]
    #[diagnostic(code(dbtopo::execute::postgres))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot build the archive of configuration files")]
    #[diagnostic(code(dbtopo::execute::archive))]
    Archive(#[source] std::io::Error),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] crate::images::ImageError),
    #[error("server in container {container} did not answer after {waited:.0?}: {last_error}")]
    #[diagnostic(
        code(dbtopo::execute::not_ready),
        help(
            "the container's last lines:\n{logs}\nfix the cause (often a setting value) and run apply again"
        )
    )]
    NotReady {
        container: String,
        waited: Duration,
        last_error: String,
        logs: String,
    },
    #[error("replica {node} answers but does not stream from its upstream")]
    #[diagnostic(
        code(dbtopo::execute::not_streaming),
        help("check the upstream's slot and the replica's log: docker logs {container}")
    )]
    NotStreaming { node: String, container: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Mongo(#[from] crate::mongo::client::MongoError),
    #[error("a command on the replica set member {container} failed: {output}")]
    #[diagnostic(
        code(dbtopo::execute::mongo_shell),
        help("the member ran it with mongosh inside its container; see docker logs {container}")
    )]
    MongoShell { container: String, output: String },
    #[error("{object}: {}", crate::execute::server_message(error))]
    #[diagnostic(
        code(dbtopo::execute::schema),
        help("the statement was:\n{sql}\n{outcome}")
    )]
    SchemaStep {
        object: String,
        /// What became of the node's other steps.
        outcome: &'static str,
        /// The manifest statement the step comes from (`table users`), to point at.
        origin: Option<String>,
        sql: String,
        error: tokio_postgres::Error,
    },
}

/// The server's own words (message, detail, hint) rather than the client's summary.
pub fn server_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => error.to_string(),
    }
}

/// What the executor reports while it works.
pub enum Event<'a> {
    Started(&'a Change),
    Note(&'a Change, &'a str),
    Finished(&'a Change, Duration),
    Failed(&'a Change, &'a ExecuteError),
}

pub trait Progress: Sync {
    fn event(&self, event: Event<'_>);
}

/// What happened to each change of the plan.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<String>,
    pub failed: Vec<(String, ExecuteError)>,
    pub not_started: Vec<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.not_started.is_empty()
    }
}

/// Run the plan. A change starts as soon as the changes it waits for are done (the waves are
/// the same order, drawn for people); after a failure nothing new starts, what runs finishes.
pub async fn execute(
    docker: &Docker,
    plan: &Plan,
    secrets: &Secrets,
    progress: &dyn Progress,
) -> Outcome {
    let prerequisites = plan.prerequisites();
    let mut state = vec![Slot::Waiting; plan.changes.len()];
    let mut running = FuturesUnordered::new();
    let mut outcome = Outcome::default();
    loop {
        if outcome.failed.is_empty() {
            for i in 0..plan.changes.len() {
                let ready = state[i] == Slot::Waiting
                    && prerequisites[i].iter().all(|&p| state[p] == Slot::Done);
                if ready {
                    state[i] = Slot::Running;
                    let change = &plan.changes[i];
                    running.push(async move {
                        progress.event(Event::Started(change));
                        let started = Instant::now();
                        let result = run(docker, &plan.env, change, secrets, progress).await;
                        match &result {
                            Ok(()) => progress.event(Event::Finished(change, started.elapsed())),
                            Err(e) => progress.event(Event::Failed(change, e)),
                        }
                        (i, result)
                    });
                }
            }
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        let address = plan.changes[i].address.clone();
        match result {
            Ok(()) => {
                state[i] = Slot::Done;
                outcome.done.push(address);
            }
            Err(e) => {
                state[i] = Slot::Failed;
                outcome.failed.push((address, e));
            }
        }
    }
    outcome.not_started = plan
        .changes
        .iter()
        .zip(&state)
        .filter(|(_, s)| **s == Slot::Waiting)
        .map(|(c, _)| c.address.clone())
        .collect();
    outcome
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running,
    Done,
    Failed,
}

async fn run(
    docker: &Docker,
    env: &str,
    change: &Change,
    secrets: &Secrets,
    progress: &dyn Progress,
) -> Result<(), ExecuteError> {
    let ready = |node: &str, host_port: u16| {
        let container = model::container_name(env, node);
        async move { postgres::wait_ready(docker, &container, host_port, secrets).await }
    };
    match &change.operation {
        Operation::EnsureImage { reference } => {
            let note = |line: &str| progress.event(Event::Note(change, line));
            crate::images::ensure_image(docker, reference, &note).await?;
        }
        Operation::RunMongoMember { spec } => mongo::run_member(docker, spec, secrets).await?,
        Operation::StartMongoMember { spec } => mongo::start_member(docker, spec).await?,
        Operation::MongoCommands {
            host_port,
            container,
            local,
            steps,
            ..
        } => mongo::run_commands(docker, container, *host_port, *local, steps, secrets).await?,
        Operation::CreateNetwork { name, labels } => {
            docker::create_network(docker, name, labels).await?
        }
        Operation::CreateVolume { name, labels } => {
            docker::create_volume(docker, name, labels).await?
        }
        Operation::RunServer { spec } => {
            docker::create_server_container(docker, spec).await?;
            docker::upload_files(docker, spec, secrets).await?;
            docker::start(docker, &spec.container).await?;
            let client = ready(&spec.node, spec.host_port).await?;
            if matches!(spec.role, Role::Replica { .. })
                && !postgres::wait_streaming(&client, Duration::from_secs(60)).await?
            {
                return Err(ExecuteError::NotStreaming {
                    node: spec.node.clone(),
                    container: spec.container.clone(),
                });
            }
        }
        Operation::StartServer { spec } => {
            docker::upload_files(docker, spec, secrets).await?;
            // A restart starts an exited container and also stops a crash loop first.
            docker::restart(docker, &spec.container).await?;
            ready(&spec.node, spec.host_port).await?;
        }
        Operation::Reconfigure {
            spec,
            restart,
            reset_altered,
        } => {
            docker::upload_files(docker, spec, secrets).await?;
            if *restart {
                if *reset_altered {
                    let client = ready(&spec.node, spec.host_port).await?;
                    postgres::reset_altered(&client).await?;
                }
                docker::restart(docker, &spec.container).await?;
                ready(&spec.node, spec.host_port).await?;
            } else {
                let client = ready(&spec.node, spec.host_port).await?;
                if *reset_altered {
                    postgres::reset_altered(&client).await?;
                }
                postgres::reload(&client).await?;
            }
        }
        Operation::EnsureReplicationRole {
            node,
            host_port,
            role,
        } => {
            let client = ready(node, *host_port).await?;
            postgres::ensure_replication_role(&client, role, &secrets.replication).await?;
        }
        Operation::CreateSlot {
            node,
            host_port,
            slot,
        } => {
            let client = ready(node, *host_port).await?;
            postgres::create_slot(&client, slot).await?;
        }
        Operation::DropSlot {
            node,
            host_port,
            slot,
        } => {
            let client = ready(node, *host_port).await?;
            postgres::drop_slot(&client, slot).await?;
        }
        Operation::ApplySchema {
            node,
            host_port,
            database,
            create_database,
            steps,
        } => {
            let client = ready(node, *host_port).await?;
            schema::apply(
                &client,
                *host_port,
                &secrets.superuser,
                database,
                *create_database,
                steps,
            )
            .await?;
        }
        Operation::RunSql {
            node,
            host_port,
            database,
            statements,
            transactional,
        } => {
            ready(node, *host_port).await?;
            schema::run_statements(
                *host_port,
                &secrets.superuser,
                database,
                statements,
                *transactional,
            )
            .await?;
        }
        Operation::RemoveContainer { name } => docker::remove_container(docker, name).await?,
        Operation::RemoveVolume { name } => docker::remove_volume(docker, name).await?,
        Operation::RemoveNetwork { name } => docker::remove_network(docker, name).await?,
    }
    Ok(())
}
