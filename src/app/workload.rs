//! `dbtopo workload`: place orders from concurrent clients against an existing environment
//! (each in one distributed transaction, or without two-phase commit with `--without-2pc`),
//! print the throughput, the latencies and the invariants, and say whether they all hold.

use std::path::Path;

use miette::{Result, miette};

use super::environment::existing_environment;
use super::ui::seconds;
use crate::workload::Target;

/// Where the workload writes: the coordinator, and the nodes and tables that hold each order
/// table's rows.
pub async fn workload_target(file: &Path, profiles: &[String]) -> Result<Target> {
    let (desired, secrets) = existing_environment(file, profiles).await?;
    if let Some(schema) = &desired.schema {
        crate::seed::require_tables(&schema.manifest.schema)?;
    }
    Target::from_desired(&desired, &secrets)
        .ok_or_else(|| miette!("{} declares no schema", file.display()))
}

/// Place orders from concurrent clients, print the numbers and the invariants; false when an
/// invariant is broken or an order failed.
pub async fn workload(args: &crate::cli::WorkloadArgs) -> Result<bool> {
    let mut target = workload_target(&args.file.file, &args.file.profiles).await?;
    target.plain = args.without_2pc;
    let coordinator = target.connect(&target.coordinator).await?;
    let customers = crate::workload::regions(&coordinator)
        .await
        .map_err(query_failed)?;
    let products = crate::workload::products(&coordinator)
        .await
        .map_err(query_failed)?;
    if customers.is_empty() || products == 0 {
        return Err(miette!(
            help = "run `dbtopo seed` first",
            "the workload needs users and products"
        ));
    }
    let floor = crate::workload::order_floor(&coordinator)
        .await
        .map_err(query_failed)?;
    let report = crate::workload::run(&target, args.clients as usize, args.orders as usize, |i| {
        crate::workload::example_order(i, &customers, products)
    })
    .await?;
    println!(
        "{} order(s) placed by {} client(s) in {}: {:.1} orders/s, latency p50 {:.1} ms, p99 {:.1} ms; {} retried, {} out of stock, {} failed, {} unknown",
        report.placed.len(),
        args.clients,
        seconds(report.elapsed),
        report.per_second(),
        report.percentile(0.5).as_secs_f64() * 1000.0,
        report.percentile(0.99).as_secs_f64() * 1000.0,
        report.retries,
        report.out_of_stock,
        report.failed.len(),
        report.unknown.len()
    );
    for failure in report.failed.iter().take(5) {
        println!("  failed: {failure}");
    }
    for unknown in report.unknown.iter().take(5) {
        println!("  unknown until the next apply: {unknown}");
    }
    let mut ok = report.failed.is_empty();
    // Read where the coordinator is now: its role may have moved during the workload.
    drop(coordinator);
    let coordinator = target.connect(&target.coordinator).await?;
    for (invariant, broken) in crate::workload::invariants(&coordinator, &floor, &report.placed)
        .await
        .map_err(query_failed)?
    {
        let verdict = if broken == 0 { "ok" } else { "BROKEN" };
        println!("  {verdict:<6} {invariant} ({broken} violation(s))");
        ok &= broken == 0;
    }
    Ok(ok)
}

/// A query on the coordinator failed: the server's own words.
fn query_failed(error: tokio_postgres::Error) -> miette::Report {
    miette!("{}", crate::pg::server_message(&error))
}
