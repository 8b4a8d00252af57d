//! `dbtopo explain`: run the named queries of the catalogue (`manifests/queries/*.sql` beside
//! the topology) on the coordinator with `EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON)`,
//! and print what [`crate::explain`] makes of each: times, rows, fragments scanned and pruned,
//! the remote SQL each node received, the costliest plan node, and index advice (each remote
//! statement that reads a fragment explained again on its node, [`crate::explain::advice`]).
//! With `--compare`, each query again without index scans (on the coordinator and on every
//! node), side by side, without advice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use tokio_postgres::Client;

use super::environment::{connect_node, existing_environment};
use crate::cli::ExplainArgs;
use crate::explain::advice::{self, Indexing, NodeCatalog, NodeIndex};
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
    let indexing = schema
        .fragments
        .as_ref()
        .map(|f| Indexing::new(&schema.manifest.schema, &f.placement, &f.indexes))
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
            let (with_indexes, _) = run(&mut client, query, &layout, &[]).await?;
            let switches = explain::without_indexes(&servers);
            let (without_indexes, _) = run(&mut client, query, &layout, &switches).await?;
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
    let mut advisor = Advisor {
        coordinator: coordinator.clone(),
        indexing,
        catalogs: BTreeMap::new(),
        nodes: BTreeMap::new(),
    };
    for query in &queries {
        let (mut summary, plan) = run(&mut client, query, &layout, &[]).await?;
        if !advisor.indexing.fragments.is_empty() {
            summary.advice = advisor
                .advise(
                    &desired,
                    &secrets,
                    &schema.target.database,
                    &client,
                    &summary,
                    &plan,
                )
                .await?;
        }
        summaries.push(summary);
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

/// Explain `query` inside a transaction that is rolled back, after `setup`: its summary and
/// the plan. A plain EXPLAIN first opens the connections to the nodes, so the measured run
/// does not pay for them.
async fn run(
    client: &mut Client,
    query: &Query,
    layout: &Layout,
    setup: &[String],
) -> Result<(Summary, serde_json::Value)> {
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
    let summary = explain::summarize(query, &plan, layout).map_err(|e| miette!("{e}"))?;
    Ok((summary, plan))
}

/// The index advice of each query: the coordinator's own plan (its local parts), and each
/// remote statement explained again on the node that received it. Each node is connected to
/// once, and its catalog (row estimates, indexes) read once.
struct Advisor {
    coordinator: String,
    indexing: Indexing,
    catalogs: BTreeMap<String, NodeCatalog>,
    nodes: BTreeMap<String, Client>,
}

impl Advisor {
    async fn advise(
        &mut self,
        desired: &crate::app::Desired,
        secrets: &crate::secrets::Secrets,
        database: &str,
        coordinator: &Client,
        summary: &Summary,
        plan: &serde_json::Value,
    ) -> Result<Vec<advice::Advice>> {
        let at_coordinator = |e: tokio_postgres::Error| {
            on_node(
                &self.coordinator,
                desired.host_port(&self.coordinator),
                &summary.name,
                &e,
            )
        };
        if !self.catalogs.contains_key(&self.coordinator) {
            let catalog = node_catalog(coordinator).await.map_err(at_coordinator)?;
            self.catalogs.insert(self.coordinator.clone(), catalog);
        }
        let mut out = advice::advise(
            plan,
            &self.coordinator,
            &self.indexing,
            &self.catalogs[&self.coordinator],
        );
        let mut done = Vec::new();
        for remote in &summary.remote {
            let node = &remote.node;
            let fragment = remote
                .relations
                .iter()
                .any(|r| self.indexing.fragments.contains_key(r));
            let select = remote.sql.trim_start().to_uppercase().starts_with("SELECT");
            if !fragment
                || !select
                || node == &self.coordinator
                || !desired.state.servers.contains_key(node)
                || done.contains(&(node, &remote.sql))
            {
                continue;
            }
            done.push((node, &remote.sql));
            let port = desired.host_port(node);
            let failed = |e: tokio_postgres::Error| on_node(node, port, &summary.name, &e);
            if !self.nodes.contains_key(node) {
                let client = connect_node(port, secrets, database, node).await?;
                let catalog = node_catalog(&client).await.map_err(failed)?;
                self.catalogs.insert(node.clone(), catalog);
                self.nodes.insert(node.clone(), client);
            }
            let client = self.nodes.get_mut(node).expect("connected above");
            let transaction = client.transaction().await.map_err(failed)?;
            let messages = transaction
                .simple_query(&advice::node_explain_sql(&remote.sql))
                .await
                .map_err(failed)?;
            transaction.rollback().await.map_err(failed)?;
            let Some(text) = messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            }) else {
                continue;
            };
            let node_plan: serde_json::Value = serde_json::from_str(&text)
                .into_diagnostic()
                .wrap_err_with(|| format!("node {node}: the EXPLAIN output is not JSON"))?;
            out.extend(advice::advise(
                &node_plan,
                node,
                &self.indexing,
                &self.catalogs[node],
            ));
        }
        Ok(out)
    }
}

/// A statement on a node failed: which node, engine and port, and the server's words.
fn on_node(node: &str, port: u16, query: &str, error: &tokio_postgres::Error) -> miette::Report {
    miette!(
        "query {query}: node {node} (postgres, port {port}): {}",
        crate::pg::server_message(error)
    )
}

/// What a node holds: its tables' estimated rows and their indexes' key columns.
async fn node_catalog(client: &Client) -> Result<NodeCatalog, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.relname::text, c.reltuples::float8 FROM pg_class c \
             WHERE c.relkind IN ('r', 'p') AND pg_table_is_visible(c.oid) \
               AND c.relnamespace <> 'pg_catalog'::regnamespace",
            &[],
        )
        .await?;
    let tables = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let rows = client
        .query(
            "SELECT t.relname::text, c.relname::text, \
                    ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) \
                          FROM generate_series(1, i.indnkeyatts) k ORDER BY k) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_class t ON t.oid = i.indrelid \
             WHERE pg_table_is_visible(t.oid) AND t.relnamespace <> 'pg_catalog'::regnamespace",
            &[],
        )
        .await?;
    let indexes = rows
        .iter()
        .map(|r| NodeIndex {
            table: r.get(0),
            name: r.get(1),
            columns: r.get(2),
        })
        .collect();
    Ok(NodeCatalog {
        rows: tables,
        indexes,
    })
}

/// A statement on the coordinator failed: the server's own words.
fn failed(error: tokio_postgres::Error) -> miette::Report {
    miette!("{}", crate::pg::server_message(&error))
}
