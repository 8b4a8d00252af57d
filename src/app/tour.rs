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
    std::fs::write(&file, text).into_diagnostic()?;
    Ok(TourEnvironment { dir, file, name })
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

fn facts(topology: &Topology, queries: &Path) -> Facts {
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

/// Run the tour; whether every step worked.
pub async fn tour(args: &TourArgs) -> Result<bool> {
    // Every file the topology names is copied, also those of profiles not shown.
    let whole = topology::load(&args.file.file)?;
    let environment = tour_environment(&args.file.file, &whole)?;
    let topology = whole.with_profiles(&args.file.profiles);
    let facts = facts(&topology, &environment.dir.join("manifests/queries"));
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
        output.emit(&format!(
            "\n\x1b[1m=== {} ===\x1b[0m\n    look at: {}\n\n",
            step.title, step.look_at
        ))?;
        tokio::time::sleep(pace).await;
        for action in &step.actions {
            let worked = match action {
                Action::Dbtopo(words) => {
                    let words: Vec<String> = words
                        .iter()
                        .map(|w| {
                            if w == tour::FILE {
                                file.clone()
                            } else {
                                w.clone()
                            }
                        })
                        .collect();
                    let shown: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
                    output.emit(&format!("$ dbtopo {}\n", shown.join(" ")))?;
                    let child = tokio::process::Command::new(&exe)
                        .args(&words)
                        .stdin(Stdio::null())
                        .output()
                        .await
                        .into_diagnostic()?;
                    output.emit(&String::from_utf8_lossy(&child.stdout))?;
                    output.emit(&String::from_utf8_lossy(&child.stderr))?;
                    child.status.success()
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
