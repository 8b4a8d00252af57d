//! `dbtopo tour`: the whole system shown part by part on an environment of its own (the
//! topology under another name, on free ports), then destroyed. Each step runs dbtopo itself
//! as a child, so what is shown and recorded is exactly what a user would see typing it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use miette::{IntoDiagnostic, Result, miette};

use super::environment::docker;
use crate::cli::TourArgs;
use crate::model;
use crate::topology::{self, Topology};
use crate::tour::{self, Action, Facts};

/// Terminal size written into a recording.
const CAST_SIZE: (u16, u16) = (120, 40);

/// Prints, and records when asked.
struct Output {
    cast: Option<(std::fs::File, Instant)>,
}

impl Output {
    fn emit(&mut self, text: &str) -> Result<()> {
        print!("{text}");
        std::io::stdout().flush().into_diagnostic()?;
        if let Some((file, start)) = &mut self.cast {
            let line = tour::cast_output(start.elapsed().as_secs_f64(), text);
            writeln!(file, "{line}").into_diagnostic()?;
        }
        Ok(())
    }
}

/// The tour's own copy of the topology: renamed, on free ports, in a folder of its own with
/// the files it names.
struct TourEnvironment {
    dir: PathBuf,
    file: PathBuf,
    /// The same topology with one horizontal part on another node, when one can move.
    moved: Option<(PathBuf, tour::Move)>,
    name: String,
}

impl Drop for TourEnvironment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tour_environment(source: &Path, topology: &Topology) -> Result<TourEnvironment> {
    let name = format!("{}-tour", topology.name);
    let dir = std::env::temp_dir().join(format!("dbtopo-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).into_diagnostic()?;
    let mut text = std::fs::read_to_string(source).into_diagnostic()?;
    text = text.replacen(
        &format!("name: {}", topology.name),
        &format!("name: {name}"),
        1,
    );
    let ports: Vec<u16> = topology
        .postgres
        .nodes
        .values()
        .map(|n| n.port)
        .chain(topology.postgres.replicas.values().map(|r| r.port))
        .collect();
    // Held until all are chosen, so no two are the same.
    let listeners: Vec<std::net::TcpListener> = ports
        .iter()
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .into_diagnostic()?;
    for (old, listener) in ports.iter().zip(&listeners) {
        let new = listener.local_addr().into_diagnostic()?.port();
        text = text.replace(&format!("port: {old} "), &format!("port: {new} "));
        text = text.replace(&format!("port: {old}}}"), &format!("port: {new}}}"));
        text = text.replace(&format!("port: {old}\n"), &format!("port: {new}\n"));
    }
    drop(listeners);
    let folder = source.parent().unwrap_or(Path::new("."));
    let mut copies: Vec<String> = Vec::new();
    if let Some(schema) = &topology.postgres.schema {
        copies.push(schema.file.clone());
    }
    copies.extend(
        topology
            .mongo
            .replica_sets
            .values()
            .filter_map(|set| set.collections.as_ref().map(|c| c.dir.clone())),
    );
    copies.push("manifests/queries".to_owned());
    for relative in copies {
        let from = folder.join(&relative);
        let to = dir.join(&relative);
        copy(&from, &to)?;
    }
    let file = dir.join("topology.yaml");
    std::fs::write(&file, &text).into_diagnostic()?;
    let moved = match &topology.postgres.fragments {
        Some(fragments) => moved_topology(&text, &fragments.coordinator, &dir)?,
        None => None,
    };
    Ok(TourEnvironment {
        dir,
        file,
        moved,
        name,
    })
}

/// The tour's topology with one part moved ([`tour::choose_move`]), written beside it. The
/// file's data is written as JSON, which YAML reads as it is.
fn moved_topology(
    text: &str,
    coordinator: &str,
    dir: &Path,
) -> Result<Option<(PathBuf, tour::Move)>> {
    let mut raw: serde_json::Value = serde_saphyr::from_str(text).into_diagnostic()?;
    let Some(moved) = tour::choose_move(&raw, coordinator) else {
        return Ok(None);
    };
    tour::apply_move(&mut raw, &moved);
    let file = dir.join("topology-moved.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(&raw).into_diagnostic()?)
        .into_diagnostic()?;
    Ok(Some((file, moved)))
}

/// What the tour shows of MongoDB, and the profiles its commands run with: the active sets'
/// profiles when their image is on the engine, none otherwise.
async fn mongo_part(
    whole: &Topology,
    active: &Topology,
    profiles: &[String],
) -> Result<(tour::MongoPart, Vec<String>)> {
    if whole.mongo.replica_sets.is_empty() {
        return Ok((tour::MongoPart::Absent, Vec::new()));
    }
    let Some(set) = active.mongo.replica_sets.values().next() else {
        let mut wanted: Vec<String> = whole
            .mongo
            .replica_sets
            .values()
            .flat_map(|s| s.profiles.iter().cloned())
            .collect();
        wanted.sort();
        wanted.dedup();
        return Ok((
            tour::MongoPart::Skipped(format!(
                "the replica sets ({}) are in profile {}, which is not active: `dbtopo tour \
                 --profile {}` shows them where a MongoDB image ({}) is on the Docker Engine",
                whole
                    .mongo
                    .replica_sets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                wanted.join(", "),
                wanted.first().map_or("NAME", String::as_str),
                whole.images.mongo
            )),
            Vec::new(),
        ));
    };
    let image = &active.images.mongo;
    if !crate::images::image_present(&docker().await?, image)
        .await
        .unwrap_or(false)
    {
        return Ok((
            tour::MongoPart::Skipped(format!(
                "the MongoDB image {image} is not on this Docker Engine (`docker pull {image}`): \
                 the replica sets are left out of the tour"
            )),
            Vec::new(),
        ));
    }
    let queries = match &set.collections {
        Some(dir) => crate::mongo::query::load_queries(
            &crate::mongo::query::queries_dir(&dir.path),
            &dir.dir,
        )?
        .into_iter()
        .flat_map(|f| f.queries)
        .map(|q| q.name.value)
        .take(2)
        .collect(),
        None => Vec::new(),
    };
    Ok((
        tour::MongoPart::Shown {
            set: set.name.clone(),
            queries,
        },
        profiles.to_vec(),
    ))
}

/// A file, or a folder's files, to the same place under another folder (nothing when absent).
fn copy(from: &Path, to: &Path) -> Result<()> {
    if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap_or(Path::new("."))).into_diagnostic()?;
        std::fs::copy(from, to).into_diagnostic()?;
    } else if from.is_dir() {
        std::fs::create_dir_all(to).into_diagnostic()?;
        for entry in std::fs::read_dir(from).into_diagnostic()? {
            let entry = entry.into_diagnostic()?;
            copy(&entry.path(), &to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn facts(
    topology: &Topology,
    queries: &Path,
    moved: Option<tour::Move>,
    mongo: tour::MongoPart,
) -> Facts {
    let coordinator = topology
        .postgres
        .fragments
        .as_ref()
        .map(|f| f.coordinator.clone());
    let first_node = coordinator
        .clone()
        .or_else(|| topology.postgres.nodes.keys().next().cloned())
        .unwrap_or_default();
    let other_node = topology
        .postgres
        .nodes
        .keys()
        .find(|node| **node != first_node)
        .cloned();
    let mut names: Vec<String> = std::fs::read_dir(queries)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    Facts {
        coordinator,
        first_node,
        other_node,
        first_query: names.into_iter().next(),
        has_schema: topology.postgres.schema.is_some(),
        moved,
        mongo,
    }
}

/// A word as a shell would need it typed.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Runs `dbtopo WORDS…` as a child, showing the command and what it printed: whether it
/// worked, and its standard output.
async fn run_dbtopo(output: &mut Output, exe: &Path, words: &[String]) -> Result<(bool, String)> {
    let shown: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
    output.emit(&format!("$ dbtopo {}\n", shown.join(" ")))?;
    let child = tokio::process::Command::new(exe)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .await
        .into_diagnostic()?;
    let stdout = String::from_utf8_lossy(&child.stdout).into_owned();
    output.emit(&stdout)?;
    output.emit(&String::from_utf8_lossy(&child.stderr))?;
    Ok((child.status.success(), stdout))
}

/// Run the tour; whether every step worked.
pub async fn tour(args: &TourArgs) -> Result<bool> {
    // Every file the topology names is copied, also those of profiles not shown.
    let whole = topology::load(&args.file.file)?;
    let environment = tour_environment(&args.file.file, &whole)?;
    let topology = whole.clone().with_profiles(&args.file.profiles);
    let (mongo, profiles) = mongo_part(&whole, &topology, &args.file.profiles).await?;
    let facts = facts(
        &topology,
        &environment.dir.join("manifests/queries"),
        environment.moved.as_ref().map(|(_, m)| m.clone()),
        mongo,
    );
    let cast = match &args.record {
        Some(path) => {
            let mut file = std::fs::File::create(path).into_diagnostic()?;
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            writeln!(
                file,
                "{}",
                tour::cast_header(CAST_SIZE.0, CAST_SIZE.1, started)
            )
            .into_diagnostic()?;
            Some((file, Instant::now()))
        }
        None => None,
    };
    let mut output = Output { cast };
    let pace = Duration::from_secs_f64(args.pace.max(0.0));
    let exe = std::env::current_exe().into_diagnostic()?;
    let file = environment.file.to_string_lossy().into_owned();
    let moved_file = environment
        .moved
        .as_ref()
        .map(|(path, _)| path.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.clone());
    let mut counted: Option<String> = None;
    output.emit(&format!(
        "The dbtopo tour, on environment \"{}\" (a copy of {} on free ports), removed at the \
         end.\n",
        environment.name,
        args.file.file.display()
    ))?;
    let steps = tour::steps(&facts);
    let mut all_worked = true;
    let mut destroyed = true;
    for step in &steps {
        let last = step.title.contains("Destroy");
        if !all_worked && !last {
            continue;
        }
        let title = format!("=== {} ===", step.title);
        let title = match super::ui::color_on() {
            true => format!("\x1b[1m{title}\x1b[0m"),
            false => title,
        };
        output.emit(&format!("\n{title}\n    look at: {}\n\n", step.look_at))?;
        tokio::time::sleep(pace).await;
        for action in &step.actions {
            let worked = match action {
                Action::Dbtopo(words) => {
                    let mut words: Vec<String> = words
                        .iter()
                        .map(|w| match w.as_str() {
                            tour::FILE => file.clone(),
                            tour::MOVED_FILE => moved_file.clone(),
                            _ => w.clone(),
                        })
                        .collect();
                    for profile in &profiles {
                        words.extend(["--profile".to_owned(), profile.clone()]);
                    }
                    let (worked, _) = run_dbtopo(&mut output, &exe, &words).await?;
                    worked
                }
                Action::CountRows { node, tables } => {
                    let sql = tour::count_sql(tables);
                    let words = ["psql", node, &file, "--", "-X", "-A", "-t", "-c", &sql]
                        .map(str::to_owned);
                    let (worked, counts) = run_dbtopo(&mut output, &exe, &words).await?;
                    match &counted {
                        _ if !worked => false,
                        None => {
                            counted = Some(counts);
                            true
                        }
                        Some(before) if *before == counts => {
                            output.emit("(the same row counts as before)\n")?;
                            true
                        }
                        Some(before) => {
                            output.emit(&format!(
                                "(row counts changed: before\n{before}after\n{counts})\n"
                            ))?;
                            false
                        }
                    }
                }
                Action::StopContainer(node) => {
                    let container = model::container_name(&environment.name, node);
                    output.emit(&format!("$ docker stop {container}\n"))?;
                    let docker = docker().await?;
                    docker
                        .stop_container(
                            &container,
                            None::<bollard::query_parameters::StopContainerOptions>,
                        )
                        .await
                        .map_err(|e| miette!("stopping {container}: {e}"))
                        .is_ok()
                }
            };
            if !worked {
                all_worked = false;
                if last {
                    destroyed = false;
                    output.emit(&format!(
                        "(destroy failed: run `dbtopo destroy {file}` before its folder goes)\n"
                    ))?;
                } else {
                    output.emit("(this step failed: the tour skips to destroy)\n")?;
                }
                break;
            }
            tokio::time::sleep(pace).await;
        }
    }
    let verdict = match (all_worked, destroyed) {
        (true, _) => "\nEvery step of the tour worked.\n",
        (false, true) => {
            "\nThe tour stopped at a step that failed; its environment was destroyed.\n"
        }
        (false, false) => "\nThe tour failed, and so did destroying its environment.\n",
    };
    output.emit(verdict)?;
    Ok(all_worked)
}
