//! A throwaway environment for one test: its own name and free ports, removed on drop even
//! when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use dbtopo::cli::{ApplyArgs, DestroyArgs, FileArg};
use dbtopo::model::State;
use dbtopo::plan::Plan;
use dbtopo::{app, desired, observe, secrets, topology};
use tokio_postgres::Client;

/// Each test binary keeps its environments' secrets and locks in a folder of its own, not the
/// user's: set before main starts any thread, and inherited by the dbtopo processes the tests
/// run. A binary that sets its own folder (schema_cases) does so after this.
#[ctor::ctor(unsafe)]
fn own_state_dir() {
    let dir = state_dir_of_this_binary();
    std::fs::create_dir_all(&dir).expect("the test state folder");
    // SAFETY: runs before main, when no other thread exists.
    unsafe { std::env::set_var(secrets::STATE_DIR_ENV, &dir) };
}

/// The folder goes when the binary ends (the environments removed their files already), and
/// so does one the binary chose itself.
#[dtor::dtor(unsafe)]
fn remove_state_dir() {
    let _ = std::fs::remove_dir_all(state_dir_of_this_binary());
    if let Some(dir) = std::env::var_os(secrets::STATE_DIR_ENV) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn state_dir_of_this_binary() -> PathBuf {
    std::env::temp_dir().join(format!("dbtopo-test-state-{}", std::process::id()))
}

/// The nine e-commerce tables joined along every foreign key (`o` orders, `u` users, `d`
/// order_details, `p` products, `c` its category, `parent` that category's parent,
/// `t` transactions, `r` reviews, `i` inventory, `s` shipping).
pub const NINE_TABLE_JOIN: &str = "
    FROM orders o
    JOIN users u USING (user_id)
    JOIN order_details d USING (order_id)
    JOIN products p USING (product_id)
    JOIN categories c ON c.category_id = p.category_id
    JOIN categories parent ON parent.category_id = c.parent_id
    JOIN transactions t ON t.order_id = o.order_id
    JOIN reviews r ON r.user_id = u.user_id AND r.product_id = p.product_id
    JOIN inventory i ON i.product_id = p.product_id
    JOIN shipping s ON s.order_id = o.order_id";

pub struct TestEnv {
    pub name: String,
    pub file: PathBuf,
    pub ports: Vec<(String, u16)>,
    pub dir: PathBuf,
    /// Image tags the test made, removed with the environment.
    pub extra_images: std::sync::Mutex<Vec<String>>,
}

/// Host ports nobody listens on right now.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t{prefix}-{}-{:x}", std::process::id(), nanos)
}

impl TestEnv {
    /// The repository's default topology under a unique name and free ports.
    pub fn from_default(prefix: &str) -> TestEnv {
        let source =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("topology.yaml"))
                .expect("default topology");
        TestEnv::from_yaml(prefix, &source)
    }

    /// `yaml` with its `name:` replaced and every `port: N` moved to a free port.
    pub fn from_yaml(prefix: &str, yaml: &str) -> TestEnv {
        let name = unique_name(prefix);
        let original = topology::load_str("test", yaml).expect("test topology is valid");
        let mut text = yaml.replace(
            &format!("name: {}", original.name),
            &format!("name: {name}"),
        );
        let mut nodes: Vec<(String, u16)> = original
            .postgres
            .nodes
            .values()
            .map(|n| (n.name.clone(), n.port))
            .chain(
                original
                    .postgres
                    .replicas
                    .values()
                    .map(|r| (r.name.clone(), r.port)),
            )
            .collect();
        nodes.sort();
        let fresh = free_ports(nodes.len());
        let mut ports = Vec::new();
        for ((node, old), new) in nodes.into_iter().zip(fresh) {
            text = text.replace(&format!("port: {old}"), &format!("port: {new}"));
            ports.push((node, new));
        }
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        // The schema manifest moves along, at the same place relative to the topology.
        if let Some(schema) = &original.postgres.schema {
            let copy = dir.join(&schema.file);
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&schema.path, copy).expect("copy the schema manifest");
        }
        // So do the MongoDB collection manifests.
        for set in original.mongo.replica_sets.values() {
            let Some(collections) = &set.collections else {
                continue;
            };
            if Path::new(&collections.dir).is_absolute() {
                continue;
            }
            let copy = dir.join(&collections.dir);
            std::fs::create_dir_all(&copy).unwrap();
            for entry in std::fs::read_dir(&collections.path).expect("the collections folder") {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
                }
            }
        }
        let file = dir.join("topology.yaml");
        std::fs::write(&file, text).unwrap();
        TestEnv {
            name,
            file,
            ports,
            dir,
            extra_images: Default::default(),
        }
    }

    pub fn port(&self, node: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no node {node}"))
    }

    pub fn container(&self, node: &str) -> String {
        dbtopo::model::container_name(&self.name, node)
    }

    /// Another name for the PostgreSQL image, so a test can change `images.postgres`.
    pub async fn tag_image(&self, source: &str) -> String {
        let repo = format!("dbtopo-test/{}", self.name);
        self.extra_images.lock().unwrap().push(format!("{repo}:17"));
        let options = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(&repo)
            .tag("17")
            .build();
        docker()
            .await
            .tag_image(source, Some(options))
            .await
            .expect("tag image");
        format!("{repo}:17")
    }

    /// Write a file next to the topology (a schema manifest, say).
    pub fn write_file(&self, relative: &str, content: &str) {
        let path = self.dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn rewrite(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.file).unwrap();
        std::fs::write(&self.file, edit(text)).unwrap();
    }

    fn file_arg(&self) -> FileArg {
        FileArg {
            file: self.file.clone(),
            profiles: Vec::new(),
        }
    }

    pub async fn apply(&self) -> miette::Result<()> {
        self.apply_with(false).await
    }

    /// Apply, running schema steps that destroy data when `allow_destructive`.
    pub async fn apply_with(&self, allow_destructive: bool) -> miette::Result<()> {
        app::apply(&ApplyArgs {
            file: self.file_arg(),
            auto_approve: true,
            allow_destructive,
        })
        .await
    }

    /// `dbtopo seed --scale N` on this environment.
    pub async fn seed(&self, scale: u32) -> miette::Result<()> {
        app::seed(&dbtopo::cli::SeedArgs {
            file: self.file_arg(),
            scale,
        })
        .await
    }

    pub async fn destroy(&self) -> miette::Result<()> {
        app::destroy(&DestroyArgs {
            file: self.file_arg(),
            auto_approve: true,
        })
        .await
    }

    pub fn desired(&self) -> State {
        desired::desired_state(&topology::load(&self.file).unwrap()).unwrap()
    }

    pub async fn plan(&self) -> Plan {
        let docker = docker().await;
        let secrets = secrets::load_existing(&self.name).unwrap();
        // As the command line does without `--profile`.
        let topology = topology::load(&self.file).unwrap().with_profiles(&[]);
        let desired = app::desired(&topology).unwrap();
        app::plan_for(&docker, &desired, secrets.as_ref())
            .await
            .unwrap()
    }

    pub async fn observe(&self) -> State {
        let docker = docker().await;
        let secrets = secrets::load_existing(&self.name).unwrap();
        observe::observe(&docker, &self.desired(), secrets.as_ref())
            .await
            .unwrap()
    }

    /// Nothing is left to do and `replica` streams from its upstream.
    pub async fn assert_converged_and_streaming(&self, replica: &str) {
        let plan = self.plan().await;
        assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
        let observed = self.observe().await;
        let live = observed.servers[replica].live.as_ref();
        assert!(
            live.is_some_and(|l| l.streaming),
            "{replica} does not stream"
        );
    }

    /// When the node's server last started: unchanged means not restarted.
    pub async fn postmaster_start(&self, node: &str) -> String {
        self.connect(node)
            .await
            .query_one("SELECT pg_postmaster_start_time()::text", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Waits until `replica` has replayed everything `primary` wrote so far (30 s at most).
    pub async fn caught_up(&self, primary: &str, replica: &str) {
        let lsn: String = self
            .connect(primary)
            .await
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .unwrap()
            .get(0);
        let standby = self.connect(replica).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !standby
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{replica} replays {primary}'s WAL"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn connect(&self, node: &str) -> Client {
        self.connect_to(node, "postgres").await
    }

    pub async fn connect_to(&self, node: &str, database: &str) -> Client {
        let secrets = secrets::load_existing(&self.name)
            .unwrap()
            .expect("secrets exist");
        observe::postgres::connect_to(
            self.port(node),
            &secrets.superuser,
            database,
            Duration::from_secs(5),
        )
        .await
        .expect("connect")
    }
}

/// Standard output and error of a dbtopo run, together, for assertions.
pub fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub async fn docker() -> Docker {
    Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let name = self.name.clone();
        let images = std::mem::take(&mut *self.extra_images.lock().unwrap());
        // A fresh runtime on its own thread: drop may run inside the test's runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let docker = docker().await;
                if let Ok(inventory) = observe::docker::inventory(&docker, &name).await {
                    let _ = app::remove_all(&docker, &inventory).await;
                }
                for image in images {
                    let _ = docker
                        .remove_image(
                            &image,
                            None::<bollard::query_parameters::RemoveImageOptions>,
                            None,
                        )
                        .await;
                }
            });
            let _ = secrets::remove(&name);
            dbtopo::lock::remove_lock_file(&name);
        });
        let _ = cleanup.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Addresses and actions of a plan, for compact assertions.
pub fn actions(plan: &Plan) -> Vec<(String, dbtopo::plan::Action)> {
    let mut list: Vec<_> = plan
        .changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect();
    list.sort();
    list
}

/// `pg_dump -s` of `database` in `container`, run there over the local socket: the server's
/// own complete account of a schema, to compare two databases by.
pub async fn pg_dump_schema(container: &str, database: &str) -> String {
    let docker = docker().await;
    let (code, output) = dbtopo::execute::docker::exec_output(
        &docker,
        container,
        bollard::exec::CreateExecOptions {
            cmd: Some(
                ["pg_dump", "-s", "-U", "postgres", "-d", database]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            user: Some("postgres".to_owned()),
            ..Default::default()
        },
    )
    .await
    .expect("run pg_dump");
    assert_eq!(code, 0, "pg_dump of {database} failed:\n{output}");
    output
}

/// A `pg_dump -s` output as two equal schemas print it: without the psql `\restrict` lines
/// (a new key in every dump), and with each CREATE TABLE's columns in name order, since
/// dbtopo adds a column at the end of its table and does not compare column order.
pub fn comparable_dump(dump: &str) -> String {
    let mut out = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut in_table = false;
    for line in dump.lines() {
        if line.starts_with("\\restrict") || line.starts_with("\\unrestrict") {
            continue;
        }
        if in_table {
            if line.starts_with(')') {
                columns.sort();
                out.append(&mut columns);
                in_table = false;
                out.push(line.to_owned());
            } else {
                columns.push(line.trim_end_matches(',').to_owned());
            }
            continue;
        }
        in_table = line.starts_with("CREATE TABLE ") && line.ends_with('(');
        out.push(line.to_owned());
    }
    out.join("\n")
}
