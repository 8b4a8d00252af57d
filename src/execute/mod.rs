//! Run a plan: wave by wave, the changes of a wave in parallel. The only writer.
//!
//! The executor decides nothing: each change carries its operation. When a change fails, the
//! wave in flight finishes, nothing later starts, and the outcome says what was done and what
//! is left, so the next apply picks up from there.

pub mod docker;
pub mod mongo;
pub mod postgres;
pub mod promote;
pub mod reconfigure;
pub mod schema;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use bollard::Docker;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::model::{self, Role};
use crate::plan::{Address, Change, Operation, Plan};
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
    #[error(
        "{engine} in container {container} (port {port}) did not answer after {waited:.0?}: {last_error}"
    )]
    #[diagnostic(
        code(dbtopo::execute::not_ready),
        help(
            "the container's last lines:\n{logs}\nfix the cause (often a setting value) and run apply again"
        )
    )]
    NotReady {
        engine: &'static str,
        container: String,
        port: u16,
        waited: Duration,
        last_error: String,
        logs: String,
    },
    #[error("{kind} {name} is not this environment's ({}): dbtopo leaves it alone", owner.as_deref().map_or("no dbtopo label".to_owned(), |o| format!("it belongs to environment \"{o}\"")))]
    #[diagnostic(
        code(dbtopo::execute::foreign),
        help("remove or rename that {kind}, or give the environment another name")
    )]
    Foreign {
        kind: &'static str,
        name: String,
        owner: Option<String>,
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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Observe(#[from] crate::observe::ObserveError),
    #[error("{node} (PostgreSQL, port {port}) refuses its new configuration: {output}")]
    #[diagnostic(
        code(dbtopo::execute::config_refused),
        help(
            "the server binary judged the new postgresql.conf (postgres -C) before anything \
             restarted: nothing restarted and the previous files stay in place; fix the setting \
             in the topology and run apply again"
        )
    )]
    ConfigRefused {
        node: String,
        port: u16,
        /// The server binary's own words.
        output: String,
    },
    #[error(
        "{node} (PostgreSQL, port {port}) did not come back from its restart with the new settings: {why}; {restored}"
    )]
    #[diagnostic(
        code(dbtopo::execute::restart_failed),
        help(
            "the server's last lines:\n{logs}\nfix the setting in the topology and run apply \
             again: plan shows the change as still wanted"
        )
    )]
    RestartFailed {
        node: String,
        port: u16,
        why: String,
        logs: String,
        restored: reconfigure::Restored,
    },
    #[error(
        "replica {node} (PostgreSQL, port {port}) did not replay the WAL of {upstream} within {waited:.0?}"
    )]
    #[diagnostic(
        code(dbtopo::execute::not_caught_up),
        help(
            "it lowers a setting a hot standby needs at least as high as {upstream}'s, and must \
             replay {upstream}'s new value before it restarts; nothing was changed on it. Check \
             that it streams (docker logs), then run apply again"
        )
    )]
    NotCaughtUp {
        node: String,
        port: u16,
        upstream: String,
        waited: Duration,
    },
    #[error(
        "{node} (PostgreSQL, port {port}) replayed the WAL of {old} up to {replayed} only, not past \
         its last checkpoint {target}: not promoted, and {old} was started again"
    )]
    #[diagnostic(
        code(dbtopo::execute::promotion_behind),
        help(
            "check that {node} streams from {old} (dbtopo status, docker logs), then run apply \
             again"
        )
    )]
    PromotionBehind {
        node: String,
        port: u16,
        old: String,
        replayed: String,
        target: String,
    },
    #[error("{node} is not promoted: it cannot be shown to hold everything {old} wrote: {why}")]
    #[diagnostic(
        code(dbtopo::execute::promotion_unverified),
        help(
            "start {old} again so it can hand over (apply stops it cleanly), or accept losing \
             what only it held with --allow-destructive"
        )
    )]
    PromotionUnverified {
        node: String,
        old: String,
        why: String,
    },
    #[error("{node} (PostgreSQL, port {port}) did not finish its promotion: {logs}")]
    #[diagnostic(code(dbtopo::execute::not_promoted))]
    NotPromoted {
        node: String,
        port: u16,
        logs: String,
    },
    #[error("{command} in container {container} did not finish within {waited:.0?}")]
    #[diagnostic(code(dbtopo::execute::exec_timeout))]
    ExecTimedOut {
        container: String,
        command: String,
        waited: Duration,
    },
    #[error("a command on the replica set member {container} failed: {output}")]
    #[diagnostic(
        code(dbtopo::execute::mongo_shell),
        help("the member ran it with mongosh inside its container; see docker logs {container}")
    )]
    MongoShell { container: String, output: String },
    #[error("{target}: mongosh in {container} did not finish within {limit:?}")]
    #[diagnostic(
        code(dbtopo::execute::mongo_shell_deadline),
        help(
            "the member does not answer: check that {container} runs and is not paused \
             (docker ps, docker logs {container}), then run apply again"
        )
    )]
    MongoShellDeadline {
        target: String,
        container: String,
        limit: Duration,
    },
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

pub use crate::pg::server_message;

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
    pub done: Vec<Address>,
    pub failed: Vec<(Address, ExecuteError)>,
    pub not_started: Vec<Address>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.not_started.is_empty()
    }
}

/// Run the plan. A change starts as soon as the changes it waits for are done (the waves are
/// the same order, drawn for people); a change with an early start (a new node's container)
/// has that part started as soon as its own few prerequisites are done. After a failure
/// nothing new starts, what runs finishes.
pub async fn execute(
    docker: &Docker,
    plan: &Plan,
    secrets: &Secrets,
    progress: &dyn Progress,
) -> Outcome {
    let prerequisites = plan.prerequisites();
    let early_prerequisites = plan.early_prerequisites();
    let mut state = vec![Slot::Waiting; plan.changes.len()];
    let mut early: Vec<Option<Slot>> = early_prerequisites
        .iter()
        .map(|p| p.as_ref().map(|_| Slot::Waiting))
        .collect();
    let container_starts = ContainerStarts::default();
    let container_starts = &container_starts;
    let task = |i: usize, part: Part, ticket: Option<usize>| async move {
        let change = &plan.changes[i];
        let result = match part {
            Part::Early => {
                if let Some(ticket) = ticket {
                    container_starts.wait_turn(ticket).await;
                }
                let started = start_early(docker, change, secrets, progress).await;
                if ticket.is_some() {
                    container_starts.done();
                }
                started
            }
            Part::Whole => {
                progress.event(Event::Started(change));
                let started = Instant::now();
                let start_turn = ticket.map(|ticket| (container_starts, ticket));
                let result = run(docker, &plan.env, change, secrets, progress, start_turn).await;
                if result.is_ok() {
                    progress.event(Event::Finished(change, started.elapsed()));
                }
                result
            }
        };
        if let Err(e) = &result {
            progress.event(Event::Failed(change, e));
        }
        (i, part, result)
    };
    let mut running = FuturesUnordered::new();
    let mut outcome = Outcome::default();
    loop {
        if outcome.failed.is_empty() {
            for i in 0..plan.changes.len() {
                let change = &plan.changes[i];
                let done = |p: &Vec<usize>| p.iter().all(|&p| state[p] == Slot::Done);
                if early[i] == Some(Slot::Waiting)
                    && early_prerequisites[i].as_ref().is_some_and(done)
                {
                    early[i] = Some(Slot::Running);
                    let ticket = container_starts.ticket();
                    running.push(task(i, Part::Early, Some(ticket)));
                }
                let ready = state[i] == Slot::Waiting
                    && matches!(early[i], None | Some(Slot::Done))
                    && done(&prerequisites[i]);
                if ready {
                    state[i] = Slot::Running;
                    let ticket = starts_container(change).then(|| container_starts.ticket());
                    running.push(task(i, Part::Whole, ticket));
                }
            }
        }
        let Some((i, part, result)) = running.next().await else {
            break;
        };
        let address = plan.changes[i].address.clone();
        let slot = match (part, result) {
            (Part::Early, Ok(())) => {
                early[i] = Some(Slot::Done);
                continue;
            }
            (Part::Whole, Ok(())) => {
                outcome.done.push(address);
                crash_for_tests(outcome.done.len());
                Slot::Done
            }
            (_, Err(e)) => {
                outcome.failed.push((address, e));
                Slot::Failed
            }
        };
        state[i] = slot;
        if part == Part::Early {
            early[i] = Some(slot);
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

/// The variable that makes the process die, as a kill would, once that many changes are
/// done: the fault-matrix tests interrupt an apply after each of its steps in turn.
pub const CRASH_AFTER_ENV: &str = "DBTOPO_TEST_CRASH_AFTER_STEPS";

fn crash_for_tests(done: usize) {
    let crash = std::env::var(CRASH_AFTER_ENV)
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    if crash == Some(done) {
        // No cleanup, no unwinding: whatever else runs is cut off mid-way.
        std::process::abort();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A new node's container, created and started ahead of the change's turn.
    Early,
    Whole,
}

/// A server change that creates its container in its own turn (not started early).
fn starts_container(change: &Change) -> bool {
    matches!(
        change.operation,
        Operation::RunServer {
            start_early_after: None,
            ..
        }
    )
}

/// Container starts one at a time, in the order their changes (or early starts) were launched,
/// which is plan order: the nodes others wait for, and early starts of the nodes waiting for
/// them, come before the rest. Container starts slow each other down; this way the first node
/// is not kept waiting by the ones that have time.
#[derive(Default)]
struct ContainerStarts {
    issued: AtomicUsize,
    served: AtomicUsize,
    changed: Notify,
}

impl ContainerStarts {
    /// A place in the queue, taken when the change is launched.
    fn ticket(&self) -> usize {
        self.issued.fetch_add(1, Ordering::SeqCst)
    }

    async fn wait_turn(&self, ticket: usize) {
        loop {
            let changed = self.changed.notified();
            if self.served.load(Ordering::SeqCst) >= ticket {
                return;
            }
            changed.await;
        }
    }

    fn done(&self) {
        self.served.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// Create and start the container of a change that starts early, its turn held.
async fn start_early(
    docker: &Docker,
    change: &Change,
    secrets: &Secrets,
    progress: &dyn Progress,
) -> Result<(), ExecuteError> {
    let Operation::RunServer { spec, .. } = &change.operation else {
        return Ok(());
    };
    docker::create_server_container(docker, spec).await?;
    docker::upload_files(docker, spec, secrets, docker::Turn::Held).await?;
    docker::start(docker, &spec.container).await?;
    progress.event(Event::Note(
        change,
        "container started ahead, waiting for its turn",
    ));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running,
    Done,
    Failed,
}

/// Wait until a new server answers, and a replica also streams.
async fn ready_and_streaming(
    docker: &Docker,
    spec: &crate::plan::ServerSpec,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    let client = postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await?;
    if matches!(spec.role, Role::Replica { .. })
        && !postgres::wait_streaming(&client, Duration::from_secs(60)).await?
    {
        return Err(ExecuteError::NotStreaming {
            node: spec.node.clone(),
            container: spec.container.clone(),
        });
    }
    Ok(())
}

async fn run(
    docker: &Docker,
    env: &str,
    change: &Change,
    secrets: &Secrets,
    progress: &dyn Progress,
    start_turn: Option<(&ContainerStarts, usize)>,
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
            set,
            host_port,
            container,
            local,
            steps,
        } => {
            mongo::run_commands(docker, set, container, *host_port, *local, steps, secrets).await?
        }
        Operation::CreateNetwork { name, labels } => {
            docker::create_network(docker, name, labels).await?
        }
        Operation::CreateVolume { name, labels } => {
            docker::create_volume(docker, name, labels).await?
        }
        Operation::RunServer {
            spec,
            start_early_after,
        } => {
            if start_early_after.is_some() {
                docker::give_turn(docker, &spec.container).await?;
            } else {
                if let Some((starts, ticket)) = start_turn {
                    starts.wait_turn(ticket).await;
                }
                let started = async {
                    docker::create_server_container(docker, spec).await?;
                    docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
                    docker::start(docker, &spec.container).await
                }
                .await;
                if let Some((starts, _)) = start_turn {
                    starts.done();
                }
                started?;
            }
            ready_and_streaming(docker, spec, secrets).await?;
        }
        Operation::PromoteServer {
            spec,
            standby_conf,
            old_primary,
            unverified,
        } => {
            promote::promote(
                docker,
                spec,
                standby_conf.as_deref(),
                old_primary.as_ref(),
                *unverified,
                secrets,
            )
            .await?;
        }
        Operation::RebuildServer { spec } => {
            docker::remove_container(docker, &spec.container, env).await?;
            docker::remove_volume(docker, &spec.volume, env).await?;
            let labels = [
                (model::label::ENV.to_owned(), env.to_owned()),
                (model::label::NODE.to_owned(), spec.node.clone()),
            ]
            .into();
            docker::create_volume(docker, &spec.volume, &labels).await?;
            docker::create_server_container(docker, spec).await?;
            docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
            docker::start(docker, &spec.container).await?;
            ready_and_streaming(docker, spec, secrets).await?;
        }
        Operation::StartServer { spec } => reconfigure::start(docker, spec, secrets).await?,
        Operation::Reconfigure {
            spec,
            restart,
            reset_altered,
            catch_up_with,
        } => {
            reconfigure::reconfigure(
                docker,
                spec,
                secrets,
                *restart,
                *reset_altered,
                catch_up_with.as_ref(),
            )
            .await?
        }
        Operation::EnsureReplicationRole {
            node,
            host_port,
            role,
        } => {
            let client = ready(node, *host_port).await?;
            postgres::ensure_replication_role(
                &client,
                *host_port,
                &secrets.superuser,
                role,
                &secrets.replication,
            )
            .await?;
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
            let ran = schema::run_statements(
                *host_port,
                &secrets.superuser,
                database,
                statements,
                *transactional,
            )
            .await;
            match ran {
                // Its own coordinator (a workload running meanwhile) finished it after the
                // plan saw it, as the same decision record says.
                Err(ExecuteError::SchemaStep { error, .. })
                    if matches!(change.address, Address::PreparedXact { .. })
                        && error.code()
                            == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) => {}
                other => other?,
            }
        }
        Operation::RemoveContainer { name } => docker::remove_container(docker, name, env).await?,
        Operation::RemoveVolume { name } => docker::remove_volume(docker, name, env).await?,
        Operation::RemoveNetwork { name } => docker::remove_network(docker, name, env).await?,
    }
    Ok(())
}
