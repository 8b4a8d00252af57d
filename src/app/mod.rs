//! One function per command: load → validate → observe → plan → render → confirm → execute →
//! verify. Everything that prints lives here or in main.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::{ApplyArgs, DestroyArgs, ErdArgs, PlanArgs, SeedArgs};
use crate::execute::{self, Event, Progress};
use crate::observe::{self, docker::Inventory};
use crate::plan::{self, Action, Counts, Plan};
use crate::schema::RejectedByServer;
use crate::secrets::{self, Secrets};
use crate::topology::{self, Topology};

mod load;

pub use crate::desired::{Desired, DesiredFragments, DesiredSchema};
pub use load::{desired, manifests};

/// Observe the environment and plan against it.
pub async fn plan_for(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
) -> Result<Plan> {
    let observed = observe::observe_environment(docker, desired, secrets, None).await?;
    Ok(plan::plan(desired, &observed)?)
}

pub fn validate(file: &Path) -> Result<Topology> {
    let topology = topology::load(file)?;
    let desired = desired(&topology)?;
    let schema = match &desired.schema {
        Some(schema) => format!(
            ", schema {} ({} tables, {} indexes) into database \"{}\" on {}",
            schema.target.file,
            schema.manifest.schema.tables.len(),
            schema.manifest.schema.indexes.len(),
            schema.target.database,
            schema.target.nodes.join(", ")
        ),
        None => String::new(),
    };
    let fragments = match &topology.postgres.fragments {
        Some(f) => format!(
            ", {} fragmented table(s) coordinated by {}, {} reference table(s), {} distributed index(es)",
            f.tables.len(),
            f.coordinator,
            f.reference_tables.len(),
            f.indexes.len()
        ),
        None => String::new(),
    };
    let mongo: String = topology
        .mongo
        .replica_sets
        .values()
        .zip(&desired.mongo)
        .map(|(set, wanted)| {
            let profiles = if set.profiles.is_empty() {
                String::new()
            } else {
                format!(", profile {}", set.profiles.join("/"))
            };
            format!(
                ", replica set {} ({} member(s), {} collection(s) in database \"{}\"{profiles})",
                set.name,
                set.members.len(),
                wanted.collections.len(),
                set.database
            )
        })
        .collect();
    println!(
        "{} is valid: environment \"{}\", {} node(s), {} replica(s){schema}{fragments}{mongo}.",
        file.display(),
        topology.name,
        topology.postgres.nodes.len(),
        topology.postgres.replicas.len()
    );
    print_warnings(&topology);
    Ok(topology)
}

/// The topology's warnings (an even number of voting members), on standard error.
fn print_warnings(topology: &Topology) {
    for warning in &topology.warnings {
        eprintln!("warning: {warning}");
    }
}

/// A Docker client speaking the engine's API version.
pub async fn docker() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults()
        .into_diagnostic()
        .wrap_err("cannot reach the Docker Engine")?;
    docker
        .negotiate_version()
        .await
        .into_diagnostic()
        .wrap_err("cannot reach the Docker Engine: is it running?")
}

/// Build the desired state, observe, diff.
async fn compute(
    docker: &Docker,
    topology: &Topology,
    secrets: Option<&Secrets>,
) -> Result<(Desired, Plan)> {
    print_warnings(topology);
    let desired = desired(topology)?;
    let plan = plan_for(docker, &desired, secrets).await?;
    Ok((desired, plan))
}

/// After executing: nothing may be left to do, and every replica must stream (a replica that
/// was just reconnected gets a little time).
async fn verify(docker: &Docker, desired: &Desired, secrets: &Secrets) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let after = plan_for(docker, desired, Some(secrets)).await?;
        if !after.is_empty() {
            let left: Vec<String> = after
                .changes
                .iter()
                .map(|c| c.address.to_string())
                .chain(after.pending().map(|d| d.address.to_string()))
                .collect();
            return Err(miette!(
                help = "run plan to see the differences",
                "apply finished but the environment did not converge: {} still differ",
                left.join(", ")
            ));
        }
        if after.warnings.is_empty() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(miette!("apply finished but {}", after.warnings.join("; ")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The environment's passwords: from the secrets file, or, when that file was lost while the
/// environment exists, read back from one of its containers and saved again. `None` for an
/// environment that does not exist yet.
async fn existing_secrets(docker: &Docker, env: &str) -> Result<Option<Secrets>> {
    if let Some(secrets) = secrets::load_existing(env)? {
        return Ok(Some(secrets));
    }
    let inventory = observe::docker::inventory(docker, env).await?;
    for container in &inventory.containers {
        if let Some(found) = observe::docker::secrets_in(docker, container).await? {
            secrets::save(env, &found)?;
            eprintln!(
                "The secrets file of environment \"{env}\" was missing: recovered it from container {container} into {}.",
                secrets::secrets_path(env).display()
            );
            return Ok(Some(found));
        }
    }
    if !inventory.containers.is_empty() {
        return Err(miette!(
            help = format!(
                "restore {}, or give the passwords in {} and {}",
                secrets::secrets_path(env).display(),
                secrets::SUPERUSER_ENV,
                secrets::REPLICATION_ENV
            ),
            "environment \"{env}\" exists but its passwords are nowhere to be found"
        ));
    }
    Ok(None)
}

/// Print the plan; returns whether it has changes.
pub async fn plan(args: &PlanArgs) -> Result<bool> {
    let topology = topology::load(&args.file.file)?.with_profiles(&args.file.profiles);
    print_warnings(&topology);
    let desired = desired(&topology)?;
    // With the passwords at hand, the servers are asked while Docker's connection is made.
    let stored = secrets::load_existing(&topology.name)?;
    let early = stored
        .as_ref()
        .map(|secrets| observe::start_sessions(&desired, secrets));
    let docker = docker().await?;
    let secrets = match stored {
        Some(secrets) => Some(secrets),
        None => existing_secrets(&docker, &topology.name).await?,
    };
    let observed = observe::observe_environment(&docker, &desired, secrets.as_ref(), early).await?;
    let plan = plan::plan(&desired, &observed)?;
    if args.json {
        println!("{}", plan::render_json(&plan));
    } else {
        print!("{}", colorize(&plan::render_text(&plan)));
        if !plan.destructive_steps().is_empty() {
            println!(
                "\nNote: this plan destroys data; apply refuses it without --allow-destructive."
            );
        }
    }
    Ok(!plan.is_empty())
}

pub async fn apply(args: &ApplyArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?.with_profiles(&args.file.profiles);
    let _lock = crate::lock::lock_env(&topology.name)?;
    let docker = docker().await?;
    let secrets = match existing_secrets(&docker, &topology.name).await? {
        Some(secrets) => secrets,
        None => secrets::load_or_create(&topology.name)?,
    };
    let (desired, plan) = compute(&docker, &topology, Some(&secrets)).await?;
    print!("{}", colorize(&plan::render_text(&plan)));
    if plan.is_empty() {
        return Ok(());
    }
    refuse_destructive(&plan, args.allow_destructive)?;
    if !args.auto_approve {
        confirm("Do you want to perform these actions?")?;
    }
    println!();
    let mut counts = Counts::of(&plan);
    run(&docker, &plan, &desired, &secrets).await?;
    // What was deferred is compared once what it waits for runs: plan again while a round
    // leaves deferrals behind and finds something to do.
    let mut last = plan;
    for _ in 0..MAX_ROUNDS {
        if last.pending().next().is_none() {
            break;
        }
        let next = plan_for(&docker, &desired, Some(&secrets)).await?;
        if next.changes.is_empty() {
            break;
        }
        println!("\nNow that the servers answer, the comparison finds:");
        print!("{}", colorize(&plan::render_text(&next)));
        refuse_destructive(&next, args.allow_destructive)?;
        println!();
        run(&docker, &next, &desired, &secrets).await?;
        let more = Counts::of(&next);
        counts.add += more.add;
        counts.change += more.change;
        counts.destroy += more.destroy;
        last = next;
    }
    verify(&docker, &desired, &secrets).await?;
    println!(
        "\nApply complete! Resources: {} added, {} changed, {} destroyed.",
        counts.add, counts.change, counts.destroy
    );
    Ok(())
}

/// Rounds of apply for what each round's deferrals wait for (a schema compared once its server
/// answers, then the fragments that wait for that schema).
const MAX_ROUNDS: usize = 4;

/// Steps that can lose data run only when the user said so.
fn refuse_destructive(plan: &Plan, allowed: bool) -> Result<()> {
    let destructive = plan.destructive_steps();
    if destructive.is_empty() || allowed {
        return Ok(());
    }
    let list: Vec<String> = destructive
        .iter()
        .map(|(address, step)| {
            format!(
                "  {address}: {} ({})",
                step.object,
                step.destroys.as_deref().unwrap_or_default()
            )
        })
        .collect();
    Err(miette!(
        help = "apply stopped before running any of this plan; run apply with \
                --allow-destructive to accept the loss, or change the manifest",
        "the plan destroys data:\n{}",
        list.join("\n")
    ))
}

/// Execute `plan`; on failure, say what was done and what is left, and point a schema
/// step's failure at the manifest.
async fn run(docker: &Docker, plan: &Plan, desired: &Desired, secrets: &Secrets) -> Result<()> {
    let outcome = execute::execute(docker, plan, secrets, &Printer).await;
    if outcome.succeeded() {
        return Ok(());
    }
    eprintln!(
        "\nApply failed. Done: {}. Failed: {}. Not started: {}.",
        list(&outcome.done),
        list(
            &outcome
                .failed
                .iter()
                .map(|(a, _)| a.clone())
                .collect::<Vec<_>>()
        ),
        list(&outcome.not_started)
    );
    let Some((address, error)) = outcome.failed.into_iter().next() else {
        return Err(miette!("apply did not complete"));
    };
    let report = match (&error, &desired.schema) {
        (
            execute::ExecuteError::SchemaStep {
                object,
                outcome,
                origin,
                sql,
                error: cause,
            },
            Some(schema),
        ) => miette::Report::new(RejectedByServer::at_statement(
            &schema.manifest,
            &address.to_string(),
            object,
            origin.as_deref(),
            &execute::server_message(cause),
            sql,
            outcome,
        )),
        _ => miette::Report::new(error),
    };
    Err(report.wrap_err("apply did not complete; run apply again once the cause is fixed"))
}

/// Terraform's colours on a terminal (green add, yellow change, red destroy); plain text
/// otherwise or when NO_COLOR is set.
fn colorize(text: &str) -> String {
    if !std::io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            let body = line.trim_start();
            let code = if body.starts_with("-/+") || body.starts_with("- ") {
                "31"
            } else if body.starts_with("+ ") {
                "32"
            } else if body.starts_with("~ ") || body.starts_with("Warning:") {
                "33"
            } else if body.starts_with("Plan:") || body.starts_with("No changes.") {
                "1"
            } else {
                return format!("{line}\n");
            };
            format!("\x1b[{code}m{line}\x1b[0m\n")
        })
        .collect()
}

fn list(items: &[plan::Address]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn destroy(args: &DestroyArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?;
    let env = topology.name.as_str();
    let _lock = crate::lock::lock_env(env)?;
    let docker = docker().await?;
    let inventory = observe::docker::inventory(&docker, env).await?;
    if inventory.is_empty() {
        println!(
            "Nothing to destroy: no Docker object carries the label of environment \"{env}\"."
        );
        secrets::remove(env)?;
        crate::lock::remove_lock_file(env);
        return Ok(());
    }
    print!("{}", render_inventory(env, &inventory));
    if !args.auto_approve {
        confirm("Do you really want to destroy all of these? The data in the volumes is lost.")?;
    }
    remove_all(&docker, &inventory).await?;
    let left = observe::docker::inventory(&docker, env).await?;
    if !left.is_empty() {
        return Err(miette!(
            "destroy left objects behind:\n{}",
            render_inventory(env, &left)
        ));
    }
    secrets::remove(env)?;
    crate::lock::remove_lock_file(env);
    println!(
        "\nDestroy complete! Removed {} container(s), {} volume(s), {} network(s).",
        inventory.containers.len(),
        inventory.volumes.len(),
        inventory.networks.len()
    );
    Ok(())
}

/// The topology at `file` and the passwords of its environment, which must exist.
async fn existing_environment(file: &Path, profiles: &[String]) -> Result<(Desired, Secrets)> {
    let topology = topology::load(file)?.with_profiles(profiles);
    let docker = docker().await?;
    let Some(secrets) = existing_secrets(&docker, &topology.name).await? else {
        return Err(miette!(
            help = "run apply first",
            "environment \"{}\" does not exist",
            topology.name
        ));
    };
    Ok((desired(&topology)?, secrets))
}

/// Load the deterministic dataset into each schema node (the coordinator, with fragments),
/// in one transaction, with progress.
pub async fn seed(args: &SeedArgs) -> Result<()> {
    let (desired, secrets) = existing_environment(&args.file.file, &args.file.profiles).await?;
    let Some(schema) = &desired.schema else {
        return Err(miette!(
            help = "add `postgres.schema` with the e-commerce manifest",
            "{} declares no schema to seed",
            args.file.file.display()
        ));
    };
    let missing: Vec<&str> = crate::seed::TABLES
        .iter()
        .copied()
        .filter(|t| !schema.manifest.schema.tables.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        return Err(miette!(
            help = "seed knows the e-commerce tables of manifests/ecommerce.sql",
            "the schema has no table {}",
            missing.join(", ")
        ));
    }
    for node in &schema.target.nodes {
        let port = desired.state.servers[node]
            .container
            .as_ref()
            .map_or(0, |c| c.host_port);
        let mut client = connect_node(port, &secrets, &schema.target.database, node).await?;
        let rows: i64 = client
            .query_one("SELECT count(*) FROM users", &[])
            .await
            .map_err(|e| miette!("node {node}: {}", execute::server_message(&e)))?
            .get(0);
        if rows > 0 {
            return Err(miette!(
                help = "seed fills empty tables; destroy and apply again for a fresh database",
                "node {node} already holds {rows} user(s)"
            ));
        }
        println!(
            "Seeding node {node} (database {}, scale {}):",
            schema.target.database, args.scale
        );
        let transaction = client.transaction().await.into_diagnostic()?;
        for step in &crate::seed::STEPS {
            let started = std::time::Instant::now();
            let rows = transaction
                .execute(&step.sql(args.scale), &[])
                .await
                .map_err(|e| miette!("seeding {}: {}", step.table, execute::server_message(&e)))?;
            println!(
                "  {:<14} {rows:>7} row(s) in {}",
                step.table,
                seconds(started.elapsed())
            );
        }
        transaction.commit().await.into_diagnostic()?;
    }
    for wanted in &desired.mongo {
        let Some(first) = wanted.set.members.first() else {
            continue;
        };
        println!(
            "Seeding replica set {} (database {}, scale {}):",
            wanted.set.name, wanted.set.database, args.scale
        );
        let member = crate::mongo::client::connect(first.port, Some(&secrets.mongo_admin)).await?;
        let started = std::time::Instant::now();
        for (collection, count) in
            crate::mongo::seed::seed(&member, &wanted.set.database, args.scale).await?
        {
            println!("  {collection:<16} {count:>5} document(s)");
        }
        println!("  in {}", seconds(started.elapsed()));
    }
    println!("\nSeed complete.");
    Ok(())
}

/// Where the workload writes: the coordinator, and each region's node and tables.
pub async fn workload_target(file: &Path, profiles: &[String]) -> Result<crate::workload::Target> {
    use crate::workload::RegionTables;
    let (desired, secrets) = existing_environment(file, profiles).await?;
    let Some(schema) = &desired.schema else {
        return Err(miette!("{} declares no schema", file.display()));
    };
    let coordinator = schema
        .fragments
        .as_ref()
        .map_or_else(|| schema.target.nodes[0].clone(), |f| f.coordinator.clone());
    let ports = desired
        .state
        .servers
        .iter()
        .filter_map(|(node, s)| Some((node.clone(), s.container.as_ref()?.host_port)))
        .collect();
    let mut regions = std::collections::BTreeMap::new();
    let partitioned = |table: &str| {
        schema.fragments.as_ref().and_then(|f| {
            f.placement
                .partitioned
                .iter()
                .find(|p| p.table.name == table)
        })
    };
    for region in ["EU", "US"] {
        let bound = format!("FOR VALUES IN ('{region}')");
        let part = |table: &str| {
            partitioned(table)
                .and_then(|p| p.partitions.iter().find(|part| part.bound == bound))
                .map_or((coordinator.clone(), table.to_owned()), |part| {
                    (part.node.clone(), part.remote_table.clone())
                })
        };
        let (node, orders) = part("orders");
        regions.insert(
            region.to_owned(),
            RegionTables {
                node,
                orders,
                order_details: part("order_details").1,
                transactions: part("transactions").1,
                shipping: part("shipping").1,
            },
        );
    }
    Ok(crate::workload::Target {
        coordinator,
        database: schema.target.database.clone(),
        password: secrets.superuser.clone(),
        ports,
        regions,
        plain: false,
    })
}

/// Place orders from concurrent clients, print the numbers and the invariants; false when an
/// invariant is broken or an order failed.
pub async fn workload(args: &crate::cli::WorkloadArgs) -> Result<bool> {
    let mut target = workload_target(&args.file.file, &args.file.profiles).await?;
    target.plain = args.without_2pc;
    let coordinator = target.connect(&target.coordinator).await?;
    let count = |sql: &'static str| {
        let coordinator = &coordinator;
        async move {
            coordinator
                .query_one(sql, &[])
                .await
                .map(|r| r.get::<_, i64>(0))
                .map_err(|e| miette!("{}", execute::server_message(&e)))
        }
    };
    let customers = crate::workload::regions(&coordinator)
        .await
        .map_err(|e| miette!("{}", execute::server_message(&e)))?;
    let products = count("SELECT count(*) FROM products").await?;
    if customers.is_empty() || products == 0 {
        return Err(miette!(
            help = "run `dbtopo seed` first",
            "the workload needs users and products"
        ));
    }
    let floor = crate::workload::order_floor(&coordinator)
        .await
        .map_err(|e| miette!("{}", execute::server_message(&e)))?;
    let report = crate::workload::run(&target, args.clients as usize, args.orders as usize, |i| {
        crate::workload::example_order(i, &customers, products)
    })
    .await?;
    println!(
        "{} order(s) placed by {} client(s) in {}: {:.1} orders/s, latency p50 {:.1} ms, p99 {:.1} ms; {} retried, {} out of stock, {} failed",
        report.placed.len(),
        args.clients,
        seconds(report.elapsed),
        report.per_second(),
        report.percentile(0.5).as_secs_f64() * 1000.0,
        report.percentile(0.99).as_secs_f64() * 1000.0,
        report.retries,
        report.out_of_stock,
        report.failed.len()
    );
    for failure in report.failed.iter().take(5) {
        println!("  failed: {failure}");
    }
    let mut ok = report.failed.is_empty();
    for (invariant, broken) in crate::workload::invariants(&coordinator, &floor, &report.placed)
        .await
        .map_err(|e| miette!("{}", execute::server_message(&e)))?
    {
        let verdict = if broken == 0 { "ok" } else { "BROKEN" };
        println!("  {verdict:<6} {invariant} ({broken} violation(s))");
        ok &= broken == 0;
    }
    Ok(ok)
}

/// A superuser connection to `database` on the node at `port`.
async fn connect_node(
    port: u16,
    secrets: &Secrets,
    database: &str,
    node: &str,
) -> Result<tokio_postgres::Client> {
    observe::postgres::connect_to(port, &secrets.superuser, database, Duration::from_secs(5))
        .await
        .map_err(|e| {
            miette!(
                "cannot connect to node {node}: {}",
                execute::server_message(&e)
            )
        })
}

/// Run a script spanning nodes as one distributed transaction (two-phase commit).
pub async fn txn(args: &crate::cli::TxnArgs) -> Result<()> {
    let (desired, secrets) = existing_environment(&args.file.file, &args.file.profiles).await?;
    let script = std::fs::read_to_string(&args.sql)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", args.sql.display()))?;
    let parts = crate::txn::split_script(&script)
        .map_err(|why| miette!("{}: {why}", args.sql.display()))?;
    let Some(schema) = &desired.schema else {
        return Err(miette!(
            help = "add `postgres.schema` to the topology",
            "{} declares no database to run the script in",
            args.file.file.display()
        ));
    };
    let database = &schema.target.database;
    let coordinator_node = schema
        .fragments
        .as_ref()
        .map_or_else(|| schema.target.nodes[0].clone(), |f| f.coordinator.clone());
    let connect = |node: String| {
        let secrets = &secrets;
        let desired = &desired;
        async move {
            let Some(port) = desired
                .state
                .servers
                .get(&node)
                .and_then(|s| s.container.as_ref())
                .map(|c| c.host_port)
            else {
                return Err(miette!(
                    "the script names node {node}, which the topology does not have"
                ));
            };
            connect_node(port, secrets, database, &node).await
        }
    };
    let coordinator = connect(coordinator_node.clone()).await?;
    crate::txn::ensure_decisions(&coordinator).await?;
    let mut clients: Vec<(String, tokio_postgres::Client)> = Vec::new();
    for (node, _) in &parts {
        if !clients.iter().any(|(n, _)| n == node) {
            clients.push((node.clone(), connect(node.clone()).await?));
        }
    }
    let participants = clients
        .iter()
        .map(|(node, client)| crate::txn::Participant {
            node: node.clone(),
            client,
        })
        .collect();
    let transaction = crate::txn::DistributedTransaction::begin(participants).await?;
    for (node, sql) in &parts {
        let client = transaction
            .client(node)
            .expect("every node of the script takes part");
        if let Err(e) = client.batch_execute(sql).await {
            let message = execute::server_message(&e);
            transaction.rollback().await;
            return Err(miette!(
                help = "nothing was committed on any node",
                "node {node}: {message}"
            ));
        }
    }
    let id = transaction.id().to_owned();
    let nodes = parts
        .iter()
        .map(|(node, _)| node)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    transaction.commit(&coordinator).await?;
    println!("Committed on {nodes} node(s) (transaction {id}).");
    Ok(())
}

/// Check the running system; prints the report, returns whether every check passed.
pub async fn verify_command(file: &Path) -> Result<bool> {
    let (desired, secrets) = existing_environment(file, &[]).await?;
    let database = desired
        .schema
        .as_ref()
        .map_or("postgres".to_owned(), |s| s.target.database.clone());
    let endpoints = crate::verify::Endpoints {
        state: &desired.state,
        password: &secrets.superuser,
        database: &database,
    };
    let mut checks = Vec::new();
    if let Some(fragments) = desired.schema.as_ref().and_then(|s| s.fragments.as_ref()) {
        checks.extend(
            crate::verify::fragments(&endpoints, &fragments.coordinator, &fragments.placement)
                .await,
        );
        checks.extend(crate::verify::references(&endpoints, &fragments.placement).await);
    }
    checks.extend(crate::verify::replicas(&endpoints).await);
    print!("{}", crate::verify::render(&checks));
    Ok(checks.iter().all(|c| c.ok))
}

/// Print the schema's diagram as Mermaid text; with `--svg`, also draw it (in process).
pub fn erd(args: &ErdArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?;
    let Some(schema) = desired(&topology)?.schema else {
        return Err(miette!(
            help = "add `postgres.schema.file: <manifest.sql>` to the topology",
            "{} declares no schema to draw",
            args.file.file.display()
        ));
    };
    print!("{}", crate::schema::erd::mermaid(&schema.manifest.schema));
    if let Some(svg) = &args.svg {
        crate::schema::erd_svg::write_svg(&schema.manifest.schema, svg)?;
        eprintln!("Wrote {}.", svg.display());
    }
    Ok(())
}

pub fn render_inventory(env: &str, inventory: &Inventory) -> String {
    let mut out = format!("dbtopo will destroy environment \"{env}\":\n");
    for name in &inventory.containers {
        out.push_str(&format!("  - container {name}\n"));
    }
    for (name, size) in &inventory.volumes {
        let size = size
            .map(human_size)
            .unwrap_or_else(|| "size unknown".into());
        out.push_str(&format!("  - volume    {name} ({size})\n"));
    }
    for name in &inventory.networks {
        out.push_str(&format!("  - network   {name}\n"));
    }
    let total = inventory.containers.len() + inventory.volumes.len() + inventory.networks.len();
    out.push_str(&format!(
        "\nPlan: 0 to add, 0 to change, {total} to destroy.\n"
    ));
    out
}

/// Remove containers first (they hold the volumes and the network), then the rest. Objects
/// already gone are fine: destroy works on half-created environments.
pub async fn remove_all(docker: &Docker, inventory: &Inventory) -> Result<()> {
    let results = futures_util::future::join_all(
        inventory
            .containers
            .iter()
            .map(|name| execute::docker::remove_container(docker, name)),
    )
    .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    for (name, _) in &inventory.volumes {
        execute::docker::remove_volume(docker, name).await?;
    }
    for name in &inventory.networks {
        execute::docker::remove_network(docker, name).await?;
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Ask on the terminal; refuse to go on without one unless --auto-approve was given.
fn confirm(question: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --auto-approve to run without a terminal",
            "no terminal to ask for confirmation"
        ));
    }
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(miette!("cancelled: nothing was changed"))
    }
}

/// Progress lines in Terraform's words.
struct Printer;

impl Progress for Printer {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Started(change) => println!("{}: {}...", change.address, verb(change.action).0),
            Event::Note(change, text) => println!("{}: {text}", change.address),
            Event::Finished(change, elapsed) => println!(
                "{}: {} complete after {}",
                change.address,
                verb(change.action).1,
                seconds(elapsed)
            ),
            Event::Failed(change, error) => eprintln!("{}: failed: {error}", change.address),
        }
    }
}

fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating", "Creation"),
        Action::Update => ("Updating", "Update"),
        Action::Start => ("Starting", "Start"),
        Action::Restart => ("Restarting", "Restart"),
        Action::Replace => ("Replacing", "Replacement"),
        Action::Delete => ("Destroying", "Destruction"),
    }
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}
