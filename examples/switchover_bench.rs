//! Write unavailability during a switchover and a failover declared in the topology, measured
//! as CloudNativePG's tests do: a client writes one row after another to whichever server is
//! the primary, and the benchmark reads the timestamps (monotonic) of the last write
//! acknowledged on the old primary and of the first acknowledged on the new one.
//!
//! Usage: `cargo run --release --example switchover_bench -- DBTOPO_BINARY [ROUNDS] [WORK_DIR]`
//!
//! It writes its own topology (environment `dbtopo-bench-switch`: node `main`, replicas
//! `main-r1` and `main-r2` on ports 27871-27873, one table) into `WORK_DIR` (a new temporary
//! folder when not given, removed at the end), keeps the environment's secrets in
//! `WORK_DIR/state`, and runs `DBTOPO_BINARY apply` as a child process, so two builds can be
//! compared. Each round switches `main` over to `main-r1` and back under writes; then each
//! failover round removes the primary's container and volume and promotes the next server with
//! `apply --allow-destructive` (main -> main-r1 -> main-r2 -> main ...). One CSV line per
//! measurement on stdout, then min / median / max per measure. The environment is destroyed
//! at the end, on error too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

const ENV_NAME: &str = "dbtopo-bench-switch";
const SERVERS: [(&str, u16); 3] = [("main", 27871), ("main-r1", 27872), ("main-r2", 27873)];
const SCHEMA: &str = "-- A write log: one row per write the benchmark's client had acknowledged.
CREATE TABLE ticks (
    id         bigint PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT now()
);
";
/// Deadline of one client request (a connection Docker's proxy accepted for a container that
/// stops answers nothing).
const REQUEST: Duration = Duration::from_secs(2);
/// Deadline of one `dbtopo apply`.
const APPLY: Duration = Duration::from_secs(300);
/// How long the client may go without reaching the new primary before the round fails.
const NEW_PRIMARY: Duration = Duration::from_secs(60);

type Error = Box<dyn std::error::Error>;

/// The topology with `primary` the node and the other two its replicas.
fn topology(primary: &str) -> String {
    let mut text = format!("name: {ENV_NAME}\npostgres:\n  nodes:\n");
    for (name, port) in SERVERS.iter().filter(|(n, _)| *n == primary) {
        text.push_str(&format!("    {name}: {{ port: {port} }}\n"));
    }
    text.push_str("  replicas:\n");
    for (name, port) in SERVERS.iter().filter(|(n, _)| *n != primary) {
        text.push_str(&format!("    {name}: {{ of: {primary}, port: {port} }}\n"));
    }
    text.push_str(&format!(
        "  schema: {{ file: ticks.sql, database: bank, nodes: [{primary}] }}\n"
    ));
    text
}

fn port(node: &str) -> u16 {
    SERVERS
        .iter()
        .find(|(n, _)| *n == node)
        .expect("a server")
        .1
}

/// Destroys the environment (and removes the folder it made) when dropped, on error too.
struct Guard {
    bin: PathBuf,
    file: PathBuf,
    remove_dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let destroyed = std::process::Command::new(&self.bin)
            .arg("destroy")
            .arg(&self.file)
            .arg("--auto-approve")
            .stdout(std::process::Stdio::null())
            .status();
        if !destroyed.is_ok_and(|s| s.success()) {
            eprintln!(
                "could not destroy {ENV_NAME}: run {} destroy {} --auto-approve",
                self.bin.display(),
                self.file.display()
            );
            return;
        }
        if let Some(dir) = &self.remove_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `bin apply file --auto-approve [--allow-destructive]`, its output kept for an error.
async fn apply(bin: &Path, file: &Path, allow_destructive: bool) -> Result<Duration, Error> {
    let mut command = tokio::process::Command::new(bin);
    command.arg("apply").arg(file).arg("--auto-approve");
    if allow_destructive {
        command.arg("--allow-destructive");
    }
    command.kill_on_drop(true);
    let start = Instant::now();
    let output = tokio::time::timeout(APPLY, command.output())
        .await
        .map_err(|_| format!("apply did not end within {APPLY:?}"))??;
    let took = start.elapsed();
    if !output.status.success() {
        return Err(format!(
            "apply failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(took)
}

async fn docker(args: &[&str]) -> Result<(), Error> {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("docker")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("docker {args:?} did not end"))??;
    if !output.status.success() {
        return Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

async fn connect(node: &str, password: &str) -> Result<tokio_postgres::Client, Error> {
    Ok(dbtopo::observe::postgres::connect_to(port(node), password, "bank", REQUEST).await?)
}

/// One query with a deadline.
async fn query_one(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, Error> {
    Ok(tokio::time::timeout(REQUEST, client.query_one(sql, params))
        .await
        .map_err(|_| format!("no answer to {sql} within {REQUEST:?}"))??)
}

/// A write the client saw acknowledged: when, and on which port.
struct Acked {
    at: Instant,
    port: u16,
}

/// A connection to whichever server says it is a primary. The three are asked at once, so a
/// server that does not answer (a connection Docker's proxy accepted for a container that is
/// not ready) delays none of the others.
async fn find_primary(password: &str) -> Option<(u16, tokio_postgres::Client)> {
    let mut probes: FuturesUnordered<_> = SERVERS
        .iter()
        .map(|&(_, port)| async move {
            let client = dbtopo::observe::postgres::connect_to(
                port,
                password,
                "bank",
                Duration::from_millis(500),
            )
            .await
            .ok()?;
            let asked = client.query_one("SELECT NOT pg_is_in_recovery()", &[]);
            let primary = tokio::time::timeout(Duration::from_secs(1), asked)
                .await
                .is_ok_and(|row| row.is_ok_and(|row| row.get::<_, bool>(0)));
            primary.then_some((port, client))
        })
        .collect();
    while let Some(probe) = probes.next().await {
        if probe.is_some() {
            return probe;
        }
    }
    None
}

/// Writes one row after another to whichever server is a primary, until `stop`; ids come from
/// `next`, never reused (a write not acknowledged may have committed).
async fn write_until(
    password: String,
    stop: Arc<AtomicBool>,
    last_port: Arc<AtomicU16>,
    next: Arc<AtomicI64>,
) -> Vec<Acked> {
    let mut acked = Vec::new();
    let mut current: Option<(u16, tokio_postgres::Client)> = None;
    while !stop.load(Ordering::Relaxed) {
        if current.is_none() {
            current = find_primary(&password).await;
        }
        let Some((port, client)) = &current else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let id = next.fetch_add(1, Ordering::Relaxed);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        let insert = client.execute("INSERT INTO ticks (id) VALUES ($1)", &params);
        match tokio::time::timeout(REQUEST, insert).await {
            Ok(Ok(1)) => {
                acked.push(Acked {
                    at: Instant::now(),
                    port: *port,
                });
                last_port.store(*port, Ordering::Relaxed);
            }
            _ => current = None,
        }
    }
    acked
}

struct Writer {
    stop: Arc<AtomicBool>,
    /// The port of the last acknowledged write.
    last_port: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<Vec<Acked>>,
}

impl Writer {
    fn start(password: &str, next: &Arc<AtomicI64>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let last_port = Arc::new(AtomicU16::new(0));
        let task = tokio::spawn(write_until(
            password.to_owned(),
            stop.clone(),
            last_port.clone(),
            next.clone(),
        ));
        Writer {
            stop,
            last_port,
            task,
        }
    }

    /// Stops once a write was acknowledged on `node` and a little more time passed.
    async fn stop_after_write_on(self, node: &str) -> Result<Vec<Acked>, Error> {
        let deadline = Instant::now() + NEW_PRIMARY;
        while self.last_port.load(Ordering::Relaxed) != port(node)
            && Instant::now() < deadline
            && !self.task.is_finished()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop.store(true, Ordering::Relaxed);
        let acked = self.task.await?;
        if !acked.iter().any(|a| a.port == port(node)) {
            return Err(format!("no write acknowledged on {node} within {NEW_PRIMARY:?}").into());
        }
        Ok(acked)
    }
}

/// The last write acknowledged on `old` before the first acknowledged on `new`, and that first.
fn handover(acked: &[Acked], old: &str, new: &str) -> Result<(Instant, Instant), Error> {
    let first_new = acked
        .iter()
        .position(|a| a.port == port(new))
        .ok_or_else(|| format!("no write on {new}"))?;
    let last_old = acked[..first_new]
        .iter()
        .rev()
        .find(|a| a.port == port(old))
        .ok_or_else(|| format!("no write on {old} before {new}"))?;
    Ok((last_old.at, acked[first_new].at))
}

/// Inserts 500 rows on `primary` and waits until every replica replayed them.
async fn seed(primary: &str, password: &str, next: &AtomicI64) -> Result<(), Error> {
    let client = connect(primary, password).await?;
    let first = next.fetch_add(500, Ordering::Relaxed);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&first];
    let insert = client.execute(
        "INSERT INTO ticks (id) SELECT g FROM generate_series($1::bigint, $1::bigint + 499) g",
        &params,
    );
    tokio::time::timeout(REQUEST, insert)
        .await
        .map_err(|_| format!("the seed on {primary} did not end within {REQUEST:?}"))??;
    let lsn: String = query_one(&client, "SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    for (replica, _) in SERVERS.iter().filter(|(n, _)| *n != primary) {
        let client = connect(replica, password).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !query_one(
            &client,
            "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
            &[&lsn],
        )
        .await?
        .get::<_, bool>(0)
        {
            if Instant::now() > deadline {
                return Err(format!("{replica} did not replay up to {lsn}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Each timed step starts on a settled machine: the previous step's writes flushed.
async fn settle() {
    let _ = tokio::process::Command::new("sync").status().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
}

fn password() -> Result<String, Error> {
    Ok(dbtopo::secrets::load_existing(ENV_NAME)?
        .ok_or("no secrets for the environment")?
        .superuser)
}

struct Measures(Vec<(&'static str, f64)>);

impl Measures {
    fn record(
        &mut self,
        measure: &'static str,
        round: usize,
        from: &str,
        to: &str,
        took: Duration,
    ) {
        let seconds = took.as_secs_f64();
        println!("{measure},{round},{from},{to},{seconds:.3}");
        self.0.push((measure, seconds));
    }

    fn summary(&self) {
        let mut names: Vec<&str> = Vec::new();
        for (measure, _) in &self.0 {
            if !names.contains(measure) {
                names.push(measure);
            }
        }
        println!("measure,count,min_s,median_s,max_s");
        for name in names {
            let mut values: Vec<f64> = self
                .0
                .iter()
                .filter(|(m, _)| *m == name)
                .map(|(_, v)| *v)
                .collect();
            values.sort_by(f64::total_cmp);
            let n = values.len();
            let median = if n % 2 == 1 {
                values[n / 2]
            } else {
                (values[n / 2 - 1] + values[n / 2]) / 2.0
            };
            println!(
                "{name},{n},{:.3},{median:.3},{:.3}",
                values[0],
                values[n - 1]
            );
        }
    }
}

async fn run(bin: &Path, file: &Path, rounds: usize) -> Result<(), Error> {
    std::fs::write(file, topology("main"))?;
    apply(bin, file, false).await?;
    let password = password()?;
    let next = Arc::new(AtomicI64::new(1));
    let mut measures = Measures(Vec::new());
    println!("measure,round,from,to,seconds");

    // Ids go on from what the table holds (none on a new environment).
    let client = connect("main", &password).await?;
    let max: i64 = query_one(&client, "SELECT coalesce(max(id), 0) FROM ticks", &[])
        .await?
        .get(0);
    next.store(max + 1, Ordering::Relaxed);
    drop(client);

    for round in 1..=rounds {
        for (old, new) in [("main", "main-r1"), ("main-r1", "main")] {
            settle().await;
            let writer = Writer::start(&password, &next);
            tokio::time::sleep(Duration::from_millis(500)).await;
            std::fs::write(file, topology(new))?;
            let took = apply(bin, file, false).await?;
            let acked = writer.stop_after_write_on(new).await?;
            let (last_old, first_new) = handover(&acked, old, new)?;
            measures.record(
                "switchover_unavailable_s",
                round,
                old,
                new,
                first_new - last_old,
            );
            measures.record("switchover_apply_s", round, old, new, took);
        }
    }

    let order = ["main", "main-r1", "main-r2"];
    let mut primary = 0;
    for round in 1..=rounds {
        let (old, new) = (order[primary], order[(primary + 1) % 3]);
        seed(old, &password, &next).await?;
        docker(&["rm", "-f", &dbtopo::model::container_name(ENV_NAME, old)]).await?;
        docker(&["volume", "rm", &dbtopo::model::volume_name(ENV_NAME, old)]).await?;
        std::fs::write(file, topology(new))?;
        settle().await;
        let writer = Writer::start(&password, &next);
        let start = Instant::now();
        let took = apply(bin, file, true).await?;
        let acked = writer.stop_after_write_on(new).await?;
        let first_new = acked
            .iter()
            .find(|a| a.port == port(new))
            .ok_or("no write on the new primary")?
            .at;
        measures.record(
            "failover_to_first_write_s",
            round,
            old,
            new,
            first_new - start,
        );
        measures.record("failover_apply_s", round, old, new, took);
        primary = (primary + 1) % 3;
    }
    measures.summary();
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(bin) = args.next() else {
        eprintln!("usage: switchover_bench DBTOPO_BINARY [ROUNDS] [WORK_DIR]");
        return ExitCode::from(2);
    };
    let bin = match std::fs::canonicalize(&bin) {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("{bin}: {e}");
            return ExitCode::from(2);
        }
    };
    let rounds: usize = match args.next().map(|r| r.parse()) {
        None => 3,
        Some(Ok(r)) if r > 0 => r,
        Some(_) => {
            eprintln!("ROUNDS is a number above 0");
            return ExitCode::from(2);
        }
    };
    let (dir, remove_dir) = match args.next() {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("dbtopo-bench-switch-{}", std::process::id()));
            (dir.clone(), Some(dir))
        }
    };
    let state = dir.join("state");
    if let Err(e) =
        std::fs::create_dir_all(&state).and_then(|()| std::fs::write(dir.join("ticks.sql"), SCHEMA))
    {
        eprintln!("{}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    // SAFETY: before the runtime starts any thread. The dbtopo processes inherit it.
    unsafe { std::env::set_var(dbtopo::secrets::STATE_DIR_ENV, &state) };
    let file = dir.join("topology.yaml");
    let _guard = Guard {
        bin: bin.clone(),
        file: file.clone(),
        remove_dir,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&bin, &file, rounds));
    drop(runtime);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchover_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
