//! `dbtopo explain`: run the named queries of the catalogue (`manifests/queries/*.sql` beside
//! the topology) on the coordinator with `EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON)`,
//! and print what [`crate::explain`] makes of each: times, rows, fragments scanned and pruned,
//! the remote SQL each node received, the costliest plan node. With `--compare`, each query
//! again without index scans (on the coordinator and on every node), side by side.

use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use tokio_postgres::Client;

use super::environment::{connect_node, existing_environment};
use crate::cli::ExplainArgs;
use crate::explain::{self, Comparison, Layout, Query, Summary};

/// The catalogue's folder, relative to the topology file.
pub const CATALOGUE: &str = "manifests/queries";

/// Run `dbtopo explain`: list the catalogue, or explain the named queries (every one with
/// `--all`) and print the summaries, or the comparison with `--compare`.
pub async fn explain(args: &ExplainArgs) -> Result<()> {
    let (file, mut names) = file_and_names(&args.file.file, &args.names);
    let dir = args.queries.clone().unwrap_or_else(|| {
        file.parent()
            .unwrap_or_else(|| Path::new("."))
            .join(CATALOGUE)
    });
    let catalogue = read_catalogue(&dir)?;
    if names.is_empty() && !args.all {
        print!("{}", explain::render_list(&catalogue));
        println!("Name queries to explain them, or give --all.");
        return Ok(());
    }
    if args.all {
        names = catalogue.iter().map(|q| q.name.clone()).collect();
    }
    let mut queries = Vec::new();
    for name in &names {
        let name = name.trim_end_matches(".sql");
        let query = catalogue.iter().find(|q| q.name == name).ok_or_else(|| {
            miette!(
                help = format!(
                    "the catalogue in {} has: {}",
                    dir.display(),
                    catalogue
                        .iter()
                        .map(|q| q.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "no query named {name}"
            )
        })?;
        queries.push(query.clone());
    }
    let (desired, secrets) = existing_environment(&file, &args.file.profiles).await?;
    let Some(schema) = &desired.schema else {
        return Err(miette!("{} declares no schema", file.display()));
    };
    let coordinator = desired
        .coordinator()
        .ok_or_else(|| miette!("{} declares no schema node", file.display()))?
        .to_owned();
    let layout = schema
        .fragments
        .as_ref()
        .map(|f| Layout::new(&f.coordinator, &f.placement))
        .unwrap_or_default();
    let mut client = connect_node(
        desired.host_port(&coordinator),
        &secrets,
        &schema.target.database,
        &coordinator,
    )
    .await?;
    if args.compare {
        let servers = foreign_servers(&client).await?;
        let mut comparisons = Vec::new();
        for query in &queries {
            let with_indexes = run(&mut client, query, &layout, &[]).await?;
            let switches = explain::without_indexes(&servers);
            let without_indexes = run(&mut client, query, &layout, &switches).await?;
            comparisons.push(Comparison {
                name: query.name.clone(),
                with_indexes,
                without_indexes,
            });
        }
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&comparisons).into_diagnostic()?
            );
        } else {
            println!(
                "Each query with its indexes, then without index scans (enable_indexscan, \
                 enable_indexonlyscan, enable_bitmapscan off on {coordinator} and every node), \
                 rolled back:"
            );
            print!("{}", explain::render_comparison(&comparisons));
        }
        return Ok(());
    }
    let mut summaries = Vec::new();
    for query in &queries {
        summaries.push(run(&mut client, query, &layout, &[]).await?);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summaries).into_diagnostic()?
        );
    } else {
        println!("On the coordinator {coordinator}:");
        print!("{}", explain::render_summaries(&summaries));
    }
    Ok(())
}

/// The topology file and the query names: a first argument that is not a YAML file is a
/// query's name, and the topology is `topology.yaml`.
fn file_and_names(file: &Path, names: &[String]) -> (PathBuf, Vec<String>) {
    let yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if yaml || file.is_file() {
        (file.to_owned(), names.to_vec())
    } else {
        let mut all = vec![file.to_string_lossy().into_owned()];
        all.extend(names.iter().cloned());
        (PathBuf::from("topology.yaml"), all)
    }
}

/// Every `*.sql` of the catalogue folder, by name.
pub fn read_catalogue(dir: &Path) -> Result<Vec<Query>> {
    let entries = std::fs::read_dir(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read the query catalogue {}", dir.display()))?;
    let mut queries = Vec::new();
    for entry in entries {
        let path = entry.into_diagnostic()?.path();
        if path.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", path.display()))?;
        queries.push(Query::parse(&name, &text).map_err(|e| miette!("{e}"))?);
    }
    queries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(queries)
}

/// The coordinator's foreign servers and their `options`, if any.
async fn foreign_servers(client: &Client) -> Result<Vec<(String, Option<String>)>> {
    let rows = client
        .query(
            "SELECT s.srvname::text, \
                    (SELECT substr(o, 9) FROM unnest(s.srvoptions) o WHERE o LIKE 'options=%') \
             FROM pg_foreign_server s \
             JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
             WHERE w.fdwname = 'postgres_fdw' ORDER BY 1",
            &[],
        )
        .await
        .map_err(failed)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Explain `query` inside a transaction that is rolled back, after `setup`. A plain EXPLAIN
/// first opens the connections to the nodes, so the measured run does not pay for them.
async fn run(
    client: &mut Client,
    query: &Query,
    layout: &Layout,
    setup: &[String],
) -> Result<Summary> {
    let transaction = client.transaction().await.map_err(failed)?;
    for statement in setup {
        transaction.batch_execute(statement).await.map_err(failed)?;
    }
    let in_query = |e: tokio_postgres::Error| {
        miette!("query {}: {}", query.name, crate::pg::server_message(&e))
    };
    transaction
        .batch_execute(&format!("EXPLAIN {}", query.sql))
        .await
        .map_err(in_query)?;
    // The simple protocol returns the plan as text (the json type needs no client feature).
    let messages = transaction
        .simple_query(&query.explain_sql())
        .await
        .map_err(in_query)?;
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .ok_or_else(|| miette!("query {}: EXPLAIN returned no plan", query.name))?;
    let plan: serde_json::Value = serde_json::from_str(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("query {}: the EXPLAIN output is not JSON", query.name))?;
    transaction.rollback().await.map_err(failed)?;
    explain::summarize(query, &plan, layout).map_err(|e| miette!("{e}"))
}

/// A statement on the coordinator failed: the server's own words.
fn failed(error: tokio_postgres::Error) -> miette::Report {
    miette!("{}", crate::pg::server_message(&error))
}
