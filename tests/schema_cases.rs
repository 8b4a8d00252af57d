//! Schema diff cases in the style of sqldef (`tests/schema_cases/*.yaml`: current schema,
//! desired schema, expected DDL), each its own test, run through dbtopo against a real
//! PostgreSQL 17: the current manifest is applied into a database of the case's own (or, with
//! `current_by_hand: true`, run there directly, as a user would change a database by hand), the
//! desired manifest's plan must show exactly the expected SQL, apply must run it (refusing
//! destructive cases without --allow-destructive), the plan afterwards must be empty, and
//! `pg_dump -s` of the database must be that of a database where the desired manifest was
//! run directly (columns compared in name order): the server's own account, so that an empty
//! plan over a database that differs fails the case. A case with `refused:` instead states a
//! manifest that plan and apply refuse with that diagnostic, leaving the database as it was.
//!
//! The cases share one server, started by the first case that runs and removed when the last
//! is done, whatever their outcome. Each case has its own database, topology file and
//! manifest, so one case's failure leaves the others alone; their applies take turns, as
//! dbtopo lets one writer at a time change an environment. Filter by name as usual:
//! `cargo test --test schema_cases -- 05_check`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::TestEnv;
use dbtopo::plan::{Operation, Plan};
use dbtopo::{app, observe, secrets, topology};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;

const ONE_NODE: &str = "
name: cases
postgres:
  nodes:
    node: { port: 5601 }
";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    current: String,
    /// The current schema is SQL run directly, not a manifest applied by dbtopo.
    #[serde(default)]
    current_by_hand: bool,
    desired: String,
    #[serde(default)]
    expected: String,
    #[serde(default)]
    destructive: bool,
    /// The desired manifest is refused with a diagnostic holding this text, and nothing
    /// changes.
    #[serde(default)]
    refused: Option<String>,
}

fn cases() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the cases folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let case = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("case {name} does not parse: {e}"));
            (name, case)
        })
        .collect()
}

/// The SQL of every schema step of the plan, one statement after the other.
fn schema_sql(plan: &Plan) -> String {
    plan.changes
        .iter()
        .filter_map(|change| match &change.operation {
            Operation::ApplySchema { steps, .. } => Some(steps),
            _ => None,
        })
        .flatten()
        .map(|step| format!("{}\n", step.sql))
        .collect()
}

/// The server the cases share.
struct Server {
    env: TestEnv,
    /// Held by the case whose apply runs: an environment takes one writer at a time.
    applying: Mutex<()>,
}

/// What the cases hold in common: a runtime, and the server once the first case started it.
struct Shared {
    runtime: tokio::runtime::Runtime,
    server: OnceLock<Result<Server, String>>,
}

/// `dbtopo apply FILE --auto-approve [--allow-destructive]`: whether it succeeded, and what
/// it printed.
fn apply(file: &Path, allow_destructive: bool) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .arg("apply")
        .arg(file)
        .arg("--auto-approve")
        .env_remove("DBTOPO_PROFILES")
        .stdin(Stdio::null());
    if allow_destructive {
        command.arg("--allow-destructive");
    }
    let output = command.output().expect("run dbtopo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

impl Server {
    fn start() -> Result<Server, String> {
        let server = Server {
            env: TestEnv::from_yaml("cases", ONE_NODE),
            applying: Mutex::new(()),
        };
        // Dropped on failure, which removes whatever the apply made.
        match apply(&server.env.file, false) {
            (true, _) => Ok(server),
            (false, output) => Err(format!("applying the server failed:\n{output}")),
        }
    }

    fn apply(&self, file: &Path, allow_destructive: bool) -> (bool, String) {
        let _turn = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        apply(file, allow_destructive)
    }

    /// `dbtopo plan FILE`: whether it succeeded, and what it printed.
    fn plan_command(&self, file: &Path) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_dbtopo"))
            .arg("plan")
            .arg(file)
            .env_remove("DBTOPO_PROFILES")
            .stdin(Stdio::null())
            .output()
            .expect("run dbtopo");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    async fn plan(&self, file: &Path) -> Result<Plan, String> {
        let docker = common::docker().await;
        let secrets = secrets::load_existing(&self.env.name).map_err(|e| format!("{e:?}"))?;
        // As the command line does without `--profile`.
        let topology = topology::load(file)
            .map_err(|e| format!("{e:?}"))?
            .with_profiles(&[]);
        let desired = app::desired(&topology).map_err(|e| format!("{e:?}"))?;
        app::plan_for(&docker, &desired, secrets.as_ref())
            .await
            .map_err(|e| format!("{e:?}"))
    }

    async fn connect(&self, database: &str) -> Result<tokio_postgres::Client, String> {
        let secrets = secrets::load_existing(&self.env.name)
            .map_err(|e| format!("{e:?}"))?
            .ok_or("no secrets")?;
        observe::postgres::connect_to(
            self.env.port("node"),
            &secrets.superuser,
            database,
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn drop_database(&self, database: &str) -> Result<(), String> {
        self.connect("postgres")
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .await
            .map_err(|e| e.to_string())
    }

    /// A new database `database` where `sql` ran as it is, in one transaction.
    async fn run_directly(&self, database: &str, sql: &str) -> Result<(), String> {
        self.connect("postgres")
            .await?
            .batch_execute(&format!("CREATE DATABASE \"{database}\""))
            .await
            .map_err(|e| e.to_string())?;
        self.connect(database)
            .await?
            .batch_execute(&format!("BEGIN; {sql}; COMMIT"))
            .await
            .map_err(|e| format!("the SQL does not run directly: {e:?}"))
    }

    async fn schema_dump(&self, database: &str) -> String {
        common::comparable_dump(
            &common::pg_dump_schema(&self.env.container("node"), database).await,
        )
    }
}

/// The folder, topology file and database of one case.
struct CaseFiles {
    dir: PathBuf,
    topology: PathBuf,
    database: String,
    /// Where the desired manifest runs directly, for the comparison.
    direct_database: String,
}

impl CaseFiles {
    fn new(server: &Server, name: &str) -> CaseFiles {
        let database = format!("case_{}", name.replace(|c: char| !c.is_alphanumeric(), "_"));
        let dir = server.env.file.parent().unwrap().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let server_topology = std::fs::read_to_string(&server.env.file).unwrap();
        let topology = dir.join("topology.yaml");
        std::fs::write(
            &topology,
            format!(
                "{}\n  schema:\n    file: manifest.sql\n    database: {database}\n",
                server_topology.trim_end()
            ),
        )
        .unwrap();
        CaseFiles {
            dir,
            topology,
            direct_database: format!("{database}_direct"),
            database,
        }
    }

    fn write_manifest(&self, sql: &str) {
        std::fs::write(self.dir.join("manifest.sql"), sql).unwrap();
    }
}

/// Fail with `message` unless `condition` holds.
fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

async fn run_steps(server: &Server, files: &CaseFiles, case: &Case) -> Result<(), String> {
    if case.current_by_hand {
        server
            .run_directly(&files.database, &case.current)
            .await
            .map_err(|e| format!("the current schema: {e}"))?;
    } else {
        files.write_manifest(&case.current);
        let (applied, output) = server.apply(&files.topology, false);
        check(applied, || {
            format!("applying the current schema failed:\n{output}")
        })?;
    }

    files.write_manifest(&case.desired);
    if let Some(refusal) = &case.refused {
        let before = server.schema_dump(&files.database).await;
        let (planned, output) = server.plan_command(&files.topology);
        check(!planned && output.contains(refusal.as_str()), || {
            format!("the manifest was not refused with {refusal:?}:\n{output}")
        })?;
        let (applied, output) = server.apply(&files.topology, true);
        check(!applied && output.contains(refusal.as_str()), || {
            format!("apply did not refuse the manifest with {refusal:?}:\n{output}")
        })?;
        let after = server.schema_dump(&files.database).await;
        return check(before == after, || {
            "a refused manifest changed the database".to_owned()
        });
    }
    let plan = server.plan(&files.topology).await?;
    let shown = || dbtopo::plan::render_text(&plan);
    check(
        plan.changes
            .iter()
            .all(|c| matches!(c.operation, Operation::ApplySchema { .. })),
        || format!("the plan changes more than the schema:\n{}", shown()),
    )?;
    let planned = schema_sql(&plan);
    check(planned == case.expected, || {
        format!(
            "the planned DDL differs\n--- expected\n{}--- planned\n{planned}--- plan\n{}",
            case.expected,
            shown()
        )
    })?;
    let destroys = !plan.destructive_steps().is_empty();
    check(destroys == case.destructive, || {
        format!(
            "the plan should{} destroy data\n{}",
            if case.destructive { "" } else { " not" },
            shown()
        )
    })?;

    if case.destructive {
        let (applied, output) = server.apply(&files.topology, false);
        check(!applied && output.contains("destroys data"), || {
            format!("a destructive apply without --allow-destructive was not refused:\n{output}")
        })?;
        let again = schema_sql(&server.plan(&files.topology).await?);
        check(again == case.expected, || {
            format!("a refused apply changed something; the plan is now:\n{again}")
        })?;
    }

    let (applied, output) = server.apply(&files.topology, case.destructive);
    check(applied, || {
        format!("applying the desired schema failed:\n{output}")
    })?;
    let after = server.plan(&files.topology).await?;
    check(after.is_empty(), || {
        format!(
            "not converged: the plan after the apply is\n{}",
            dbtopo::plan::render_text(&after)
        )
    })?;

    // The manifest as the server runs it (pg_dump's `public.` and settings left out, as
    // dbtopo does), straight into a database of its own.
    let manifest = dbtopo::schema::parse_manifest("desired.sql", &case.desired)
        .map_err(|e| format!("{e:?}"))?;
    server
        .run_directly(&files.direct_database, &manifest.server_sql)
        .await?;
    let applied = server.schema_dump(&files.database).await;
    let direct = server.schema_dump(&files.direct_database).await;
    check(applied == direct, || {
        let diff = similar::TextDiff::from_lines(&direct, &applied);
        format!(
            "the plan is empty but the database differs from the desired manifest run \
             directly:\n{}",
            diff.unified_diff().context_radius(3).header(
                "pg_dump of the manifest run directly",
                "pg_dump after dbtopo's apply"
            )
        )
    })
}

fn run_case(shared: &Shared, name: &str, case: &Case) -> Result<(), Failed> {
    let server = shared
        .server
        .get_or_init(Server::start)
        .as_ref()
        .map_err(|e| format!("the shared server did not start: {e}"))?;
    let files = CaseFiles::new(server, name);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        shared.runtime.block_on(run_steps(server, &files, case))
    }));
    // Pass or fail, the case's database and files go.
    let dropped = shared.runtime.block_on(async {
        let direct = server.drop_database(&files.direct_database).await;
        server.drop_database(&files.database).await.and(direct)
    });
    let _ = std::fs::remove_dir_all(&files.dir);
    match outcome {
        Ok(Ok(())) => {
            dropped.map_err(|e| format!("dropping database {}: {e}", files.database))?;
            Ok(())
        }
        Ok(Err(message)) => Err(format!("{name}: {message}").into()),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn main() {
    let args = Arguments::from_args();
    let cases = cases();
    assert!(cases.len() >= 13, "the case files are missing");

    // The environment's secrets and lock in a folder of this run's own. Set before any
    // thread starts; the dbtopo processes the cases run inherit it.
    let state = std::env::temp_dir().join(format!("dbtopo-schema-cases-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var(secrets::STATE_DIR_ENV, &state) };

    let shared = Arc::new(Shared {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        server: OnceLock::new(),
    });
    let trials = cases
        .into_iter()
        .map(|(name, case)| {
            let shared = Arc::clone(&shared);
            Trial::test(name.clone(), move || run_case(&shared, &name, &case))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);

    // Every trial is done and dropped its share: the server goes now, passed or failed.
    drop(shared);
    let _ = std::fs::remove_dir_all(&state);
    conclusion.exit();
}
