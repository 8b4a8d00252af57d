//! `dbtopo seed`: load the deterministic dataset of [`crate::seed`] into each schema node of
//! an existing environment (the coordinator, with fragments), and the collections of each
//! replica set, with progress.

use miette::{Result, miette};

use super::environment::{connect_node, existing_environment};
use super::ui::seconds;
use crate::cli::SeedArgs;

/// ANALYZE every node that holds tables, so that the planner's statistics are current: the
/// fragments and reference copies on each node first (the coordinator plans with the nodes'
/// own estimates), then the coordinator's tables, whose partitioned tables sample their
/// fragments. `each` prints a line per node; otherwise one line in all.
pub(super) async fn analyze_nodes(
    desired: &crate::desired::Desired,
    secrets: &crate::secrets::Secrets,
    each: bool,
) -> Result<()> {
    let Some(schema) = &desired.schema else {
        return Ok(());
    };
    let nodes: Vec<&String> = schema
        .fragments
        .iter()
        .flat_map(|f| f.placement.fragment_nodes.keys())
        .filter(|node| !schema.target.nodes.contains(node))
        .chain(&schema.target.nodes)
        .collect();
    let all = std::time::Instant::now();
    for node in &nodes {
        let started = std::time::Instant::now();
        let client = connect_node(
            desired.host_port(node),
            secrets,
            &schema.target.database,
            node,
        )
        .await?;
        crate::seed::analyze(&client, node).await?;
        if each {
            println!("Analyzed node {node} in {}", seconds(started.elapsed()));
        }
    }
    if !each {
        println!(
            "Statistics updated on {} node(s) in {}.",
            nodes.len(),
            seconds(all.elapsed())
        );
    }
    Ok(())
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
    crate::seed::require_tables(&schema.manifest.schema)?;
    for node in &schema.target.nodes {
        let port = desired.state.servers[node]
            .container
            .as_ref()
            .map_or(0, |c| c.host_port);
        let mut client = connect_node(port, &secrets, &schema.target.database, node).await?;
        crate::seed::require_empty(&client, node).await?;
        println!(
            "Seeding node {node} (database {}, scale {}):",
            schema.target.database, args.scale
        );
        crate::seed::fill(&mut client, args.scale, |table, rows, elapsed| {
            println!("  {table:<14} {rows:>7} row(s) in {}", seconds(elapsed));
        })
        .await?;
    }
    analyze_nodes(&desired, &secrets, true).await?;
    for wanted in &desired.mongo {
        let Some(first) = wanted.set.members.first() else {
            continue;
        };
        println!(
            "Seeding replica set {} (database {}, scale {}):",
            wanted.set.name, wanted.set.database, args.scale
        );
        let target = crate::mongo::client::Target::set(&wanted.set.name, first.port);
        let member = crate::mongo::client::connect(target, Some(&secrets.mongo_admin)).await?;
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
