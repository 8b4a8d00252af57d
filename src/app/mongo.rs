//! `dbtopo mongo query|insert|update|delete`: named queries from the collections folder's
//! `queries/`, checked against the collections' `$jsonSchema` before anything is sent, and
//! writes from the command line, on a replica set of an existing environment.

use miette::{Result, miette};
use mongodb::bson::{Bson, Document};

use super::environment::existing_environment;
use crate::cli::{FileArg, MongoArgs, MongoCommand, MongoQueryArgs, MongoWriteArgs};
use crate::diagnostics::did_you_mean;
use crate::mongo::client::{self, Member};
use crate::mongo::model::Collection;
use crate::mongo::query::{self, NamedQuery, QueryError, QueryFile};
use crate::mongo::query_check;
use crate::mongo::query_run::{self, Outcome};
use crate::mongo::render;
use crate::topology::{self, ReplicaSet};

pub async fn mongo(args: &MongoArgs) -> Result<()> {
    match &args.command {
        MongoCommand::Query(args) => run_query(args).await,
        MongoCommand::Insert(args) => write(Write::Insert, args).await,
        MongoCommand::Update(args) => write(Write::Update, args).await,
        MongoCommand::Delete(args) => write(Write::Delete, args).await,
    }
}

/// The replica set the command is for, with its collections as the manifests declare them.
fn chosen_set(file: &FileArg, wanted: Option<&str>) -> Result<(ReplicaSet, Vec<Collection>)> {
    let topology = topology::load(&file.file)?.with_profiles(&file.profiles);
    let manifests = super::manifests(&topology)?;
    let sets: Vec<&ReplicaSet> = topology.mongo.replica_sets.values().collect();
    let set = match wanted {
        Some(name) => sets
            .iter()
            .find(|s| s.name == name)
            .copied()
            .ok_or_else(|| {
                let names = sets.iter().map(|s| s.name.as_str());
                miette!(
                    help = format!(
                        "{}replica sets of the active profiles: {}",
                        did_you_mean(name, names.clone()),
                        names.collect::<Vec<_>>().join(", ")
                    ),
                    "{} has no replica set `{name}`",
                    file.file.display()
                )
            })?,
        None => match sets.as_slice() {
            [one] => *one,
            [] => {
                return Err(miette!(
                    help = "a replica set in a profile needs it: `--profile mongo` (or DBTOPO_PROFILES=mongo)",
                    "{} declares no MongoDB replica set in the active profiles",
                    file.file.display()
                ));
            }
            several => {
                return Err(miette!(
                    help = format!(
                        "name one with --set: {}",
                        several
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "{} declares several replica sets",
                    file.file.display()
                ));
            }
        },
    };
    let collections = manifests
        .collections
        .get(&set.name)
        .cloned()
        .unwrap_or_default();
    Ok((set.clone(), collections))
}

/// The set's named queries, checked against its collections: every problem at once.
fn checked_queries(set: &ReplicaSet, collections: &[Collection]) -> Result<Vec<QueryFile>> {
    let Some(dir) = &set.collections else {
        return Ok(Vec::new());
    };
    let shown = format!("{}/queries", dir.dir.trim_end_matches('/'));
    let files = query::load_queries(&query::queries_dir(&dir.path), &shown)?;
    let problems = query_check::check_queries(&files, collections);
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(QueryError::Invalid {
            dir: shown,
            problems,
        }
        .into())
    }
}

/// Connects to the set's first member as dbtopo's admin user.
async fn connect(file: &FileArg, set: &ReplicaSet) -> Result<Member> {
    let (desired, secrets) = existing_environment(&file.file, &file.profiles).await?;
    let wanted = desired
        .mongo
        .iter()
        .find(|w| w.set.name == set.name)
        .ok_or_else(|| miette!("replica set {} is not in the environment", set.name))?;
    let first = wanted
        .set
        .members
        .first()
        .ok_or_else(|| miette!("replica set {} has no members", set.name))?;
    let target = client::Target::set(&set.name, first.port);
    Ok(client::connect(target, Some(&secrets.mongo_admin)).await?)
}

async fn run_query(args: &MongoQueryArgs) -> Result<()> {
    let (set, collections) = chosen_set(&args.file, args.set.as_deref())?;
    let files = checked_queries(&set, &collections)?;
    let queries: Vec<&NamedQuery> = files.iter().flat_map(|f| &f.queries).collect();
    let Some(name) = &args.name else {
        print!("{}", list(&queries));
        return Ok(());
    };
    let Some(query) = queries.iter().find(|q| &q.name.value == name) else {
        let names = queries.iter().map(|q| q.name.value.as_str());
        return Err(miette!(
            help = format!(
                "{}named queries: {}",
                did_you_mean(name, names.clone()),
                names.collect::<Vec<_>>().join(", ")
            ),
            "replica set {} has no named query `{name}`",
            set.name
        ));
    };
    let member = connect(&args.file, &set).await?;
    let outcome = query_run::run_query(&member, &set.database, query).await?;
    if !args.json {
        eprintln!(
            "{} on {}.{}: {}",
            query.operation.kind(),
            set.database,
            query.collection.value,
            query.description
        );
    }
    print_outcome(&outcome, args.json);
    Ok(())
}

/// The named queries as a table: name, operation, collection, description.
fn list(queries: &[&NamedQuery]) -> String {
    let documents: Vec<Document> = queries
        .iter()
        .map(|q| {
            mongodb::bson::doc! {
                "query": q.name.value.clone(),
                "operation": q.operation.kind(),
                "collection": q.collection.value.clone(),
                "description": q.description.clone(),
            }
        })
        .collect();
    format!("{}\n", render::table(&documents))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Write {
    Insert,
    Update,
    Delete,
}

async fn write(kind: Write, args: &MongoWriteArgs) -> Result<()> {
    let (set, collections) = chosen_set(&args.file, args.set.as_deref())?;
    let manifest = collections.iter().find(|c| c.name == args.collection);
    let filter = match (kind, &args.filter) {
        (Write::Insert, Some(_)) => {
            return Err(miette!("insert takes --doc only, not --filter"));
        }
        (Write::Insert, None) => None,
        (_, Some(text)) => Some(parsed("--filter", text, false, manifest, args.unchecked)?),
        (_, None) => {
            return Err(miette!(
                help = "`--filter '{}'` means every document",
                "{} needs --filter",
                if kind == Write::Update {
                    "update"
                } else {
                    "delete"
                }
            ));
        }
    };
    let doc = match (kind, &args.doc) {
        (Write::Delete, Some(_)) => return Err(miette!("delete takes --filter only, not --doc")),
        (Write::Delete, None) => None,
        (Write::Insert, Some(text)) => Some(documents_to_insert(text, manifest, args.unchecked)?),
        (Write::Update, Some(text)) => {
            Some(vec![parsed("--doc", text, true, manifest, args.unchecked)?])
        }
        (_, None) => return Err(miette!("--doc is required")),
    };
    let member = connect(&args.file, &set).await?;
    let (database, collection) = (&set.database, &args.collection);
    let outcome = match kind {
        Write::Insert => {
            query_run::insert_documents(&member, database, collection, doc.unwrap_or_default())
                .await?
        }
        Write::Update => {
            let update = doc
                .unwrap_or_default()
                .into_iter()
                .next()
                .unwrap_or_default();
            query_run::update_documents(
                &member,
                database,
                collection,
                filter.unwrap_or_default(),
                update,
                args.many,
            )
            .await?
        }
        Write::Delete => {
            query_run::delete_documents(
                &member,
                database,
                collection,
                filter.unwrap_or_default(),
                args.many,
            )
            .await?
        }
    };
    print_outcome(&outcome, args.json);
    Ok(())
}

/// A JSON object from the command line, its fields checked against the collection's schema
/// unless `unchecked`; `update` for update operators.
fn parsed(
    shown: &str,
    text: &str,
    update: bool,
    manifest: Option<&Collection>,
    unchecked: bool,
) -> Result<Document> {
    let (source, node) = query::parse_node(shown, text)?;
    if update {
        let replaced = node
            .value
            .entries()
            .unwrap_or_default()
            .iter()
            .find(|(k, _)| !k.value.starts_with('$'));
        if let Some((key, _)) = replaced {
            return Err(source
                .problem(format!("{shown} is not made of update operators"))
                .at(&key.referenced, "a field, not an operator")
                .help(r#"e.g. --doc '{"$set": {"active": false}, "$inc": {"helpful_votes": 1}}'"#)
                .into());
        }
    }
    if !unchecked && let Some(collection) = manifest {
        let problems = query_check::check_document(&source, &node, update, collection);
        if let Some(first) = problems.into_iter().next() {
            return Err(miette::Report::new(first)
                .wrap_err("nothing was sent: add --unchecked to send it anyway"));
        }
    }
    Ok(node.value.to_document())
}

/// `--doc` of an insert: an object, or an array of objects.
fn documents_to_insert(
    text: &str,
    manifest: Option<&Collection>,
    unchecked: bool,
) -> Result<Vec<Document>> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| miette!("--doc is not JSON: {e}"))?;
    let items = match json {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    let mut documents = Vec::new();
    for item in items {
        let text = item.to_string();
        // The same check as a filter's: every field must be declared.
        documents.push(parsed("--doc", &text, false, manifest, unchecked)?);
    }
    Ok(documents)
}

fn print_outcome(outcome: &Outcome, json: bool) {
    let relaxed = |ids: &[Bson]| {
        serde_json::Value::Array(
            ids.iter()
                .map(|i| i.clone().into_relaxed_extjson())
                .collect(),
        )
    };
    match (outcome, json) {
        (Outcome::Documents { documents }, true) => println!("{}", render::json(documents)),
        (Outcome::Documents { documents }, false) => {
            if !documents.is_empty() {
                println!("{}", render::table(documents));
            }
            println!("{} document(s)", documents.len());
        }
        (Outcome::Inserted { inserted, ids }, true) => println!(
            "{}",
            serde_json::json!({ "inserted": inserted, "ids": relaxed(ids) })
        ),
        (Outcome::Inserted { inserted, ids }, false) => {
            let ids: Vec<String> = ids.iter().map(render::cell).collect();
            println!("Inserted {inserted} document(s): _id {}", ids.join(", "));
        }
        (Outcome::Updated { matched, modified }, true) => println!(
            "{}",
            serde_json::json!({ "matched": matched, "modified": modified })
        ),
        (Outcome::Updated { matched, modified }, false) => {
            println!("Matched {matched} document(s), modified {modified}.")
        }
        (Outcome::Deleted { deleted }, true) => {
            println!("{}", serde_json::json!({ "deleted": deleted }))
        }
        (Outcome::Deleted { deleted }, false) => println!("Deleted {deleted} document(s)."),
    }
}

/// For `validate`: each set's number of named queries, after checking them all against the
/// set's collections; every problem of every set at once.
pub(super) fn named_queries(
    topology: &topology::Topology,
    desired: &crate::desired::Desired,
) -> Result<std::collections::BTreeMap<String, usize>> {
    let mut counts = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    let mut dirs = Vec::new();
    for wanted in &desired.mongo {
        let Some(set) = topology.mongo.replica_sets.get(&wanted.set.name) else {
            continue;
        };
        match checked_queries(set, &wanted.collections) {
            Ok(files) => {
                counts.insert(
                    set.name.clone(),
                    files.iter().map(|f| f.queries.len()).sum(),
                );
            }
            Err(report) => match report.downcast::<QueryError>() {
                Ok(QueryError::Invalid {
                    dir,
                    problems: found,
                }) => {
                    dirs.push(dir);
                    problems.extend(found);
                }
                Ok(other) => return Err(other.into()),
                Err(report) => return Err(report),
            },
        }
    }
    if problems.is_empty() {
        Ok(counts)
    } else {
        Err(QueryError::Invalid {
            dir: dirs.join("`, `"),
            problems,
        }
        .into())
    }
}
