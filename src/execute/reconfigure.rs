//! New settings for a server that already holds data, without leaving it down.
//!
//! The new postgresql.conf is first judged by the server binary inside the container
//! (`postgres -C`, as the server reads its files at start), so a file it would refuse never
//! replaces the one it runs with. Before a restart, the files in place are kept in the
//! container as the last good ones; a restart the server does not come back from puts them
//! back and starts it again. A copy that an interrupted apply saved is kept as it is (the files
//! in place may be the ones that failed), and dropped only once the server answers.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::CreateExecOptions;

use super::{ExecuteError, docker, postgres};
use crate::model::{self, ConfigFiles};
use crate::plan::{FileSpec, ServerSpec, UpstreamServer};
use crate::secrets::Secrets;

/// Below the configuration folder: the files the server last ran with, while a change is
/// tried.
const LAST_GOOD: &str = "last-good";
/// Below the configuration folder: the postgresql.conf being judged.
const CANDIDATE: &str = "candidate.conf";
/// How long `postgres -C` and the other commands run inside the container may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a replica may take to replay its upstream's WAL up to where it is now.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Write new files into a running server, then reload or restart it (`Operation::Reconfigure`).
pub async fn reconfigure(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
    restart: bool,
    reset_altered: bool,
    catch_up_with: Option<&UpstreamServer>,
) -> Result<(), ExecuteError> {
    check(docker, spec).await?;
    if !restart {
        docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
        let client = ready(docker, spec, secrets).await?;
        if reset_altered {
            postgres::reset_altered(&client).await?;
        }
        postgres::reload(&client).await?;
        // The server runs with the files in place: they are the good ones now.
        return forget_last_good(docker, spec).await;
    }
    if let Some(upstream) = catch_up_with {
        catch_up(docker, spec, upstream, secrets).await?;
    }
    let last_good = keep_last_good(docker, &spec.container).await?;
    docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
    if reset_altered {
        let client = ready(docker, spec, secrets).await?;
        postgres::reset_altered(&client).await?;
    }
    restart_or_restore(docker, spec, secrets, last_good).await
}

/// Write the files into a container whose server is not running, and start it
/// (`Operation::StartServer`); a start that fails goes back to the last good files.
pub async fn start(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    check(docker, spec).await?;
    let last_good = keep_last_good(docker, &spec.container).await?;
    docker::upload_files(docker, spec, secrets, docker::Turn::Given).await?;
    restart_or_restore(docker, spec, secrets, last_good).await
}

async fn ready(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
) -> Result<tokio_postgres::Client, ExecuteError> {
    postgres::wait_ready(docker, &spec.container, spec.host_port, secrets).await
}

/// Judge the new postgresql.conf with the server binary of the container, as the server
/// reads its files at start (with the data directory's postgresql.auto.conf), from a candidate
/// copy: the files in place stay untouched when it refuses. Runs only in a running container
/// (a stopped one has nothing to run it in; its start is guarded by the last good files).
async fn check(docker: &Docker, spec: &ServerSpec) -> Result<(), ExecuteError> {
    let Some(conf) = spec
        .files
        .iter()
        .find(|f| f.path.ends_with("/postgresql.conf"))
    else {
        return Ok(());
    };
    let before = docker::status(docker, &spec.container).await?;
    if !matches!(before, Some((true, _))) {
        return Ok(());
    }
    let candidate = FileSpec {
        path: format!("{}/{CANDIDATE}", model::CONFIG_DIR),
        mode: 0o644,
        content: conf.content.clone(),
    };
    docker::upload(docker, &spec.container, &[], [&candidate]).await?;
    // The binaries are found as the bootstrap script finds them. `-C` reads every file the
    // server reads at start and exits; it works while the server runs.
    let script = r#"for dir in "$(command -v pg_ctl 2>/dev/null | xargs -r dirname)" /usr/lib/postgresql/*/bin /usr/local/pgsql/bin; do
  if [ -n "$dir" ] && [ -x "$dir/postgres" ]; then exec "$dir/postgres" -c config_file="$1" -C data_directory; fi
done
echo "no PostgreSQL server binaries found in this image" >&2; exit 64"#;
    let judged = exec(
        docker,
        &spec.container,
        "postgres",
        &["/bin/sh", "-c", script, "sh", &candidate.path],
    )
    .await;
    // A server in a crash loop takes the command down with it: that says nothing of the
    // file, and its start is guarded by the last good files anyway.
    let steady = docker::status(docker, &spec.container).await? == before;
    let output = match judged {
        Ok((0, _)) => return Ok(()),
        Ok((_, output)) if steady && !output.trim().is_empty() => output,
        Err(e) if steady => return Err(e),
        _ => return Ok(()),
    };
    // The server names the file it read; the user knows it by the name it will have.
    let output = output.replace(&candidate.path, &conf.path);
    Err(ExecuteError::ConfigRefused {
        node: spec.node.clone(),
        port: spec.host_port,
        output: output.trim().to_owned(),
    })
}

/// The files to go back to if the restart fails: a copy an interrupted apply saved, else the
/// files in place, saved before anything overwrites them.
async fn keep_last_good(
    docker: &Docker,
    container: &str,
) -> Result<Option<ConfigFiles>, ExecuteError> {
    let Some(mut files) = crate::observe::docker::read_files(docker, container).await? else {
        return Ok(None);
    };
    let mut pair = |dir: &str| {
        let prefix = |name: &str| match dir {
            "" => name.to_owned(),
            dir => format!("{dir}/{name}"),
        };
        match (
            files.remove(&prefix("postgresql.conf")),
            files.remove(&prefix("pg_hba.conf")),
        ) {
            (Some(postgresql_conf), Some(pg_hba_conf)) => Some(ConfigFiles {
                postgresql_conf,
                pg_hba_conf,
            }),
            _ => None,
        }
    };
    if let Some(saved) = pair(LAST_GOOD) {
        return Ok(Some(saved));
    }
    let Some(in_place) = pair("") else {
        return Ok(None);
    };
    // Both files in one archive; one alone (an upload cut short) counts as no copy.
    let dir = format!("{}/{LAST_GOOD}", model::CONFIG_DIR);
    docker::upload(
        docker,
        container,
        &[(&dir, 0o755)],
        &config_files(&dir, &in_place),
    )
    .await?;
    Ok(Some(in_place))
}

fn config_files(dir: &str, files: &ConfigFiles) -> [FileSpec; 2] {
    let file = |name: &str, content: &str| FileSpec {
        path: format!("{dir}/{name}"),
        mode: 0o644,
        content: content.to_owned(),
    };
    [
        file("postgresql.conf", &files.postgresql_conf),
        file("pg_hba.conf", &files.pg_hba_conf),
    ]
}

/// The server answers with the files in place: the saved copy is not needed any more.
async fn forget_last_good(docker: &Docker, spec: &ServerSpec) -> Result<(), ExecuteError> {
    let dir = format!("{}/{LAST_GOOD}", model::CONFIG_DIR);
    exec(docker, &spec.container, "0:0", &["rm", "-rf", &dir]).await?;
    Ok(())
}

/// Restart and wait until the server answers; when it does not (it exits, or stays silent
/// past its deadline), put the last good files back, start it again and fail with why.
async fn restart_or_restore(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
    last_good: Option<ConfigFiles>,
) -> Result<(), ExecuteError> {
    let failure = match restart_and_wait(docker, spec, secrets).await {
        Ok(()) => return forget_last_good(docker, spec).await,
        Err(failure) => failure,
    };
    let (why, logs) = match failure {
        ExecuteError::NotReady {
            waited,
            last_error,
            logs,
            ..
        } => (
            format!("it did not answer within {waited:.0?} ({last_error})"),
            logs,
        ),
        other => (
            other.to_string(),
            docker::log_tail(docker, &spec.container, 20).await,
        ),
    };
    // The server's own reason when it gave one, rather than the client's view of it.
    let why = fatal_line(&logs).unwrap_or(why);
    let failed = |restored| ExecuteError::RestartFailed {
        node: spec.node.clone(),
        port: spec.host_port,
        why: why.clone(),
        logs: logs.clone(),
        restored,
    };
    let Some(last_good) = last_good else {
        return Err(failed(Restored::Nothing));
    };
    let put_back = async {
        docker::upload(
            docker,
            &spec.container,
            &[],
            &config_files(model::CONFIG_DIR, &last_good),
        )
        .await?;
        restart_and_wait(docker, spec, secrets).await?;
        forget_last_good(docker, spec).await
    };
    match put_back.await {
        Ok(()) => Err(failed(Restored::Up)),
        Err(again) => Err(failed(Restored::StillDown(again.to_string()))),
    }
}

/// The last FATAL or PANIC line of a server's log, from its level on.
fn fatal_line(logs: &str) -> Option<String> {
    logs.lines().rev().find_map(|line| {
        ["FATAL:", "PANIC:"]
            .iter()
            .find_map(|level| line.find(level))
            .map(|at| line[at..].split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

async fn restart_and_wait(
    docker: &Docker,
    spec: &ServerSpec,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    // A restart starts an exited container and also stops a crash loop first.
    docker::restart(docker, &spec.container).await?;
    ready(docker, spec, secrets).await.map(drop)
}

/// What became of a server whose restart failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The last good files are back and the server answers with them.
    Up,
    /// There were no files to go back to.
    Nothing,
    /// The last good files are back, but the server does not answer with them either.
    StillDown(String),
}

impl std::fmt::Display for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Restored::Up => write!(
                f,
                "the previous settings are back and the server answers with them"
            ),
            Restored::Nothing => write!(
                f,
                "no previous configuration was found to go back to: the server is down"
            ),
            Restored::StillDown(error) => write!(
                f,
                "the previous settings are back, but the server does not answer with them either: {error}"
            ),
        }
    }
}

/// Wait until the replica has replayed its upstream's WAL up to where the upstream is now.
async fn catch_up(
    docker: &Docker,
    spec: &ServerSpec,
    upstream: &UpstreamServer,
    secrets: &Secrets,
) -> Result<(), ExecuteError> {
    let upstream_container = model::container_name(&spec.env, &upstream.node);
    let source =
        postgres::wait_ready(docker, &upstream_container, upstream.host_port, secrets).await?;
    let replica = ready(docker, spec, secrets).await?;
    let started = Instant::now();
    let caught_up = async {
        let target: String = source
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await?
            .get(0);
        loop {
            let replayed: bool = replica
                .query_one(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                    &[&target],
                )
                .await?
                .get(0);
            if replayed {
                return Ok::<_, ExecuteError>(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match tokio::time::timeout(CATCH_UP_TIMEOUT, caught_up).await {
        Ok(result) => result,
        Err(_) => Err(ExecuteError::NotCaughtUp {
            node: spec.node.clone(),
            port: spec.host_port,
            upstream: upstream.node.clone(),
            waited: started.elapsed(),
        }),
    }
}

/// Run `command` inside the container as `user`, within a deadline: its exit code and what
/// it printed.
async fn exec(
    docker: &Docker,
    container: &str,
    user: &str,
    command: &[&str],
) -> Result<(i64, String), ExecuteError> {
    let run = docker::exec_output(
        docker,
        container,
        CreateExecOptions {
            cmd: Some(command.iter().map(|c| c.to_string()).collect()),
            user: Some(user.to_owned()),
            ..Default::default()
        },
    );
    tokio::time::timeout(EXEC_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            Err(ExecuteError::ExecTimedOut {
                container: container.to_owned(),
                command: command.first().copied().unwrap_or_default().to_owned(),
                waited: EXEC_TIMEOUT,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::fatal_line;

    #[test]
    fn the_reason_is_the_servers_last_fatal_line() {
        let logs = "2025-01-01 10:00:00.000 UTC [1] LOG:  starting PostgreSQL 17\n\
                    2025-01-01 10:00:00.001 UTC [1] FATAL:  could not map anonymous shared memory: Cannot allocate memory\n\
                    2025-01-01 10:00:00.002 UTC [1] HINT:  This error usually means ...\n\
                    2025-01-01 10:00:00.003 UTC [1] LOG:  database system is shut down\n";
        assert_eq!(
            fatal_line(logs).as_deref(),
            Some("FATAL: could not map anonymous shared memory: Cannot allocate memory")
        );
        assert_eq!(fatal_line("LOG: ready\n"), None);
    }
}
