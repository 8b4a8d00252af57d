//! Command-line definitions only: no I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod mongo;
pub use mongo::{MongoArgs, MongoCommand, MongoQueryArgs, MongoWriteArgs};

#[derive(Debug, Parser)]
#[command(
    name = "dbtopo",
    version,
    about = "Declarative provisioner for distributed databases: PostgreSQL nodes and streaming replicas on Docker, from one YAML file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Plain text: no colours in plans, progress or diagnostics (as NO_COLOR=1 does). Colours
    /// are off anyway when the output is not a terminal.
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the topology file and report every problem at once.
    Validate(ValidateArgs),
    /// Print the topology file's JSON Schema, for editor completion and checks
    /// (`dbtopo schema > topology.schema.json`).
    Schema,
    /// Show what apply would change, without changing anything.
    Plan(PlanArgs),
    /// Make the environment match the topology.
    Apply(ApplyArgs),
    /// Remove every container, volume and network of the environment.
    Destroy(DestroyArgs),
    /// Draw the schema's entity-relationship diagram: Mermaid text, and optionally SVG.
    Erd(ErdArgs),
    /// Load a deterministic e-commerce dataset through the coordinator.
    Seed(SeedArgs),
    /// Check the running system against the topology: rows per fragment, routing through the
    /// coordinator, replicas streaming; exits 1 on any failure.
    Verify(VerifyArgs),
    /// Run a SQL script that spans several nodes as one transaction (two-phase commit): every
    /// node's part commits, or none does.
    Txn(TxnArgs),
    /// Place orders as the shop does, each in one distributed transaction (stock on the
    /// coordinator, the order on its region's node), from concurrent clients; then check the
    /// invariants. Run `seed` first.
    Workload(WorkloadArgs),
    /// Show each server and MongoDB member: role, container, health, how to connect (never
    /// the password), replication lag, the fragments and copies it holds.
    Status(StatusArgs),
    /// Open psql on a node or replica; the password goes in a passfile, never on a command
    /// line. Uses the host's psql, or the one in the node's container.
    Psql(PsqlArgs),
    /// Print shell exports (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSFILE) for a node.
    Env(EnvArgs),
    /// Open mongosh on a replica set's primary; the password goes in mongosh's environment,
    /// never on a command line. Uses the host's mongosh, or the one in the member's container.
    Mongosh(MongoshArgs),
    /// MongoDB: run named queries; insert, update and delete documents.
    Mongo(MongoArgs),
    /// Run queries of the catalogue (manifests/queries) on the coordinator under EXPLAIN
    /// ANALYZE: time, rows, fragments scanned and pruned, the SQL each node received.
    Explain(ExplainArgs),
    /// A guided demo of the whole system on an environment of its own (the topology renamed,
    /// on free ports): plan and apply, schema, seed, where things live, queries,
    /// transactions, drift repaired, destroy. Exits 1 unless every step worked.
    Tour(TourArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `dbtopo completions bash > ~/.local/share/bash-completion/completions/dbtopo`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `dbtopo man > dbtopo.1 && man ./dbtopo.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct TourArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Also write the tour as an asciicast v2 recording (plays with asciinema).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Seconds to pause at each header and between commands.
    #[arg(long, default_value_t = 1.0)]
    pub pace: f64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PsqlArgs {
    /// The node or replica to connect to.
    pub node: String,
    #[command(flatten)]
    pub file: FileArg,
    /// Arguments for psql, after `--` (`dbtopo psql primary -- -c 'SELECT 1'`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MongoshArgs {
    /// The replica set; the shell opens on its primary (its profile need not be active).
    pub set: String,
    #[command(flatten)]
    pub file: FileArg,
    /// Arguments for mongosh, after `--` (`dbtopo mongosh rs0 -- --eval 'db.stats()'`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The node or replica to connect to.
    pub node: String,
    #[command(flatten)]
    pub file: FileArg,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Queries of the catalogue, by name (without them and without --all: list the catalogue).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Every query of the catalogue.
    #[arg(long)]
    pub all: bool,
    /// Print the summaries as JSON.
    #[arg(long)]
    pub json: bool,
    /// Each query with its indexes and without index scans, side by side.
    #[arg(long)]
    pub compare: bool,
    /// The catalogue's folder (default: manifests/queries beside the topology file).
    #[arg(long, value_name = "DIR")]
    pub queries: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WorkloadArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Concurrent clients, each with its own connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// Orders to place in all.
    #[arg(long, default_value_t = 100)]
    pub orders: u32,
    /// Without two-phase commit: plain postgres_fdw writes from one coordinator transaction
    /// (not atomic across nodes), to compare.
    #[arg(long)]
    pub without_2pc: bool,
}

#[derive(Debug, Args)]
pub struct TxnArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// The script: each node's statements after a `-- node: <name>` line.
    #[arg(long, value_name = "SCRIPT")]
    pub sql: PathBuf,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Size of the dataset: 100 × N users, 50 × N products, 200 × N orders.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub scale: u32,
}

#[derive(Debug, Args)]
pub struct ErdArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Also draw the diagram as SVG into this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print the result as JSON (valid, error count, each diagnostic with its file, line and
    /// column), for editors and scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print the checks as JSON (each with its subject, node, verdict and detail).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FileArg {
    /// Topology file.
    #[arg(default_value = "topology.yaml")]
    pub file: PathBuf,
    /// Include the replica sets of this profile (repeat, or separate with commas).
    #[arg(
        long = "profile",
        value_name = "NAME",
        env = "DBTOPO_PROFILES",
        value_delimiter = ','
    )]
    pub profiles: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Run schema steps that can lose data (dropping a table or column, narrowing a type).
    #[arg(long)]
    pub allow_destructive: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
}
