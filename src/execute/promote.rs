//! Promotion of a replica: the switchover when its primary runs, the failover when it does not.
//!
//! The old primary is stopped first with a fast shutdown (Docker's stop signal for dbtopo's
//! containers is SIGINT): PostgreSQL then ends its sessions, writes a shutdown checkpoint and
//! keeps its WAL senders until the standbys have received everything, so no write reaches the
//! old primary after that point. Its `pg_control`, read from the stopped container, says
//! whether it shut down cleanly and where that last checkpoint starts; the replica is promoted
//! only once it has replayed past it. A replica that does not get there is not promoted and
//! the old primary is started again: nothing changed. Only a promotion planned as losing data
//! (the old primary's data is gone, or did not shut down cleanly) goes on without that proof.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::StopContainerOptionsBuilder;

use super::{ExecuteError, docker, postgres};
use crate::model::Ended;
use crate::pg::control;
use crate::plan::{OldPrimary, ServerSpec};
use crate::secrets::Secrets;

/// How long the old primary may take to shut down (its sessions end, its standbys receive
/// the rest of its WAL).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the replica may take to replay what it received.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the replica's new container may take to stream again.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `pg_promote` may take.
const PROMOTE_TIMEOUT_SECONDS: i32 = 60;

/// The variable that makes the process die, as a kill would, at a point inside a promotion:
/// `fenced` (the old primary stopped, nothing promoted) or `restarted` (the replica's new
/// container started, still in recovery). The switchover tests interrupt an apply there.
/// How long the checkpoint before the fence may take to connect, and to run.
const CHECKPOINT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);

pub const CRASH_IN_PROMOTION_ENV: &str = "DBTOPO_TEST_CRASH_IN_PROMOTION";

fn crash_for_tests(point: &str) {
    if std::env::var(CRASH_IN_PROMOTION_ENV).as_deref() == Ok(point) {
        std::process::abort();
    }
}

pub async fn promote(
    docker: &Docker,
    spec: &ServerSpec,
    standby_conf: Option<&str>,
    old: Option<&OldPrimary>,
    unverified: bool,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    // With the replica's own configuration at hand, its new container starts as the standby it
    // was, streaming from the old primary, before writes stop: the pause is then only the old
    // primary's shutdown, the last replay and the promotion.
    let early = match standby_conf {
        Some(conf) => {
            run_container(docker, &with_postgresql_conf(spec, conf), secrets).await?;
            crash_for_tests("restarted");
            // The old primary's shutdown hands its last WAL only to standbys connected then.
            let client =
                postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await?;
            if !postgres::wait_streaming(&client, STREAM_TIMEOUT).await? {
                return Err(ExecuteError::NotStreaming {
                    node: spec.node.clone(),
                    container: spec.container.clone(),
                });
            }
            true
        }
        None => false,
    };
    if let Some(old) = old {
        checkpoint(old, secrets).await;
        fence(docker, old).await?;
        crash_for_tests("fenced");
        match crate::observe::docker::cluster_end(docker, &old.container).await? {
            Some(ended) if ended.clean => {
                if let Err(error) = wait_replayed(docker, spec, old, ended, secrets).await {
                    // Not promoted: the old primary goes on as before.
                    docker::start(docker, &old.container).await?;
                    return Err(error);
                }
            }
            found if !unverified => {
                return Err(ExecuteError::PromotionUnverified {
                    node: spec.node.clone(),
                    old: old.node.clone(),
                    why: match found {
                        Some(_) => "it did not shut down cleanly (it crashed or was killed), so \
                                    where its WAL ends is not known"
                            .to_owned(),
                        None => "its data cannot be read".to_owned(),
                    },
                });
            }
            _ => {}
        }
    } else if !unverified {
        return Err(ExecuteError::PromotionUnverified {
            node: spec.node.clone(),
            old: "its primary".to_owned(),
            why: "no old primary was found".to_owned(),
        });
    }
    if !early {
        // The replica's container is made again as a primary's. Its data still holds
        // standby.signal, so it starts in recovery and replays what it has, until promoted.
        run_container(docker, spec, secrets).await?;
        crash_for_tests("restarted");
    }
    let client = postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await?;
    let in_recovery: bool = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await?
        .get(0);
    if in_recovery {
        let promoted: bool = client
            .query_one("SELECT pg_promote(true, $1)", &[&PROMOTE_TIMEOUT_SECONDS])
            .await?
            .get(0);
        if !promoted {
            return Err(ExecuteError::NotPromoted {
                node: spec.node.clone(),
                port: spec.host_port,
                logs: docker::log_tail(docker, &spec.container, 20).await,
            });
        }
    }
    if early {
        // Now the primary's own files; a setting only a restart takes restarts it.
        docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
        postgres::reload(&client).await?;
        let pending: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart)",
                &[],
            )
            .await?
            .get(0);
        if pending {
            drop(client);
            docker::restart(docker, &spec.container).await?;
            postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await?;
        }
    }
    Ok(())
}

/// Create the container from `spec` (removing the one of the same name), write its files,
/// start it and wait until it answers.
async fn run_container(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    docker::create_server_container(docker, spec).await?;
    docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
    docker::start(docker, &spec.container).await?;
    postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await?;
    Ok(())
}

/// `spec` with another postgresql.conf.
fn with_postgresql_conf(spec: &ServerSpec, conf: &str) -> ServerSpec {
    let mut spec = spec.clone();
    for file in &mut spec.files {
        if file.path.ends_with("/postgresql.conf") {
            file.content = conf.to_owned();
        }
    }
    spec
}

/// A checkpoint on the old primary while it still takes writes: its shutdown checkpoint, inside
/// the write pause, then has little left to flush. Only a head start: the shutdown writes its
/// own checkpoint all the same, so a failure here changes nothing.
async fn checkpoint(old: &OldPrimary, secrets: &Secrets) {
    if !old.running || old.host_port == 0 {
        return;
    }
    if let Ok(client) = crate::pg::connect(
        old.host_port,
        &secrets.superuser,
        CHECKPOINT_CONNECT_TIMEOUT,
    )
    .await
    {
        let _ = tokio::time::timeout(CHECKPOINT_TIMEOUT, client.batch_execute("CHECKPOINT")).await;
    }
}

/// Stop the old primary with a fast shutdown, if it runs.
async fn fence(docker: &Docker, old: &OldPrimary) -> Result<(), ExecuteError> {
    if docker::status(docker, &old.container)
        .await?
        .is_some_and(|(running, _)| running)
    {
        let options = StopContainerOptionsBuilder::default()
            .t(SHUTDOWN_TIMEOUT.as_secs() as i32)
            .build();
        docker.stop_container(&old.container, Some(options)).await?;
    }
    Ok(())
}

/// Wait until the replica has replayed past the old primary's shutdown checkpoint.
async fn wait_replayed(
    docker: &Docker,
    spec: &ServerSpec,
    old: &OldPrimary,
    ended: Ended,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    let client = postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await?;
    let target = control::format_lsn(ended.checkpoint);
    let started = Instant::now();
    let replayed = async {
        loop {
            let (past, at): (bool, Option<String>) = {
                let row = client
                    .query_one(
                        "SELECT coalesce(pg_last_wal_replay_lsn() > $1::text::pg_lsn, false), \
                                pg_last_wal_replay_lsn()::text",
                        &[&target],
                    )
                    .await?;
                (row.get(0), row.get(1))
            };
            if past {
                return Ok::<_, ExecuteError>(at);
            }
            if started.elapsed() > REPLAY_TIMEOUT {
                return Err(ExecuteError::PromotionBehind {
                    node: spec.node.clone(),
                    port: spec.host_port,
                    old: old.node.clone(),
                    replayed: at.unwrap_or_else(|| "nothing".to_owned()),
                    target: target.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    replayed.await?;
    Ok(())
}
