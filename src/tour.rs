//! The guided tour's script and its recording, as data: which dbtopo commands run in which
//! order, each under a header saying which part of the system it shows; and the asciicast v2
//! lines a recording is made of. Pure: `app::tour` runs the steps and writes the file.

use serde_json::json;

/// One thing the tour does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `dbtopo ARGS…`, the topology file appended where `FILE` stands.
    Dbtopo(Vec<String>),
    /// Stop a node's container, as a failure would.
    StopContainer(String),
}

/// A part of the tour: a header, what to look at, and what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    pub look_at: String,
    pub actions: Vec<Action>,
}

/// Where the argument list takes the tour's topology file.
pub const FILE: &str = "FILE";

fn dbtopo(args: &[&str]) -> Action {
    Action::Dbtopo(args.iter().map(|a| (*a).to_owned()).collect())
}

/// What the tour's topology holds that decides its steps.
pub struct Facts {
    /// The coordinator of fragmented tables, when there are fragments.
    pub coordinator: Option<String>,
    /// A node whose setting is changed by hand in the drift step (the coordinator, or the
    /// first node).
    pub first_node: String,
    /// A node that is not that one, stopped in the drift step.
    pub other_node: Option<String>,
    /// The first query of the catalogue, when there is one.
    pub first_query: Option<String>,
    pub has_schema: bool,
}

/// The tour, in order. It always ends by destroying its environment.
pub fn steps(facts: &Facts) -> Vec<Step> {
    let mut steps = vec![Step {
        title: "1. Plan and apply".into(),
        look_at: "each server, volume and table with its action and reason; apply observes \
                  again and fails unless everything converged"
            .into(),
        actions: vec![
            dbtopo(&["plan", FILE]),
            dbtopo(&["apply", FILE, "--auto-approve"]),
        ],
    }];
    if facts.has_schema {
        steps.push(Step {
            title: "2. The schema and its ER diagram".into(),
            look_at: "the manifest's tables and foreign keys as a Mermaid diagram".into(),
            actions: vec![dbtopo(&["erd", FILE])],
        });
        steps.push(Step {
            title: "3. Seeding".into(),
            look_at: "rows loaded through the coordinator, each landing in its fragment".into(),
            actions: vec![dbtopo(&["seed", FILE])],
        });
    }
    steps.push(Step {
        title: "4. Where everything lives".into(),
        look_at: "status: each server's role, health, URL and the fragments it holds; verify: \
                  rows per fragment, routing, copies and replicas"
            .into(),
        actions: vec![dbtopo(&["status", FILE]), dbtopo(&["verify", FILE])],
    });
    if let (Some(_), Some(query)) = (&facts.coordinator, &facts.first_query) {
        steps.push(Step {
            title: "5. Queries over the fragments".into(),
            look_at: "fragments pruned, the SQL each node received, the costliest plan node; \
                      then one query with its indexes and without index scans"
                .into(),
            actions: vec![
                dbtopo(&["explain", FILE, "--all"]),
                dbtopo(&["explain", FILE, query, "--compare"]),
            ],
        });
        steps.push(Step {
            title: "6. Distributed transactions".into(),
            look_at: "orders placed by concurrent clients, each one two-phase commit across \
                      nodes; the invariants hold"
                .into(),
            actions: vec![dbtopo(&[
                "workload",
                FILE,
                "--clients",
                "2",
                "--orders",
                "20",
            ])],
        });
    }
    if let Some(node) = &facts.other_node {
        let changed = &facts.first_node;
        steps.push(Step {
            title: "7. Drift, shown and repaired".into(),
            look_at: format!(
                "a setting of {changed} changed and node {node} stopped behind dbtopo's back: \
                 plan shows both, apply repairs them, and the plan after it is empty"
            ),
            actions: vec![
                dbtopo(&[
                    "psql",
                    changed,
                    FILE,
                    "--",
                    "-c",
                    "ALTER SYSTEM SET work_mem = '77MB'",
                    "-c",
                    "SELECT pg_reload_conf()",
                ]),
                Action::StopContainer(node.clone()),
                dbtopo(&["plan", FILE]),
                dbtopo(&["apply", FILE, "--auto-approve"]),
                dbtopo(&["plan", FILE]),
            ],
        });
    }
    steps.push(Step {
        title: "8. Destroy".into(),
        look_at: "exactly the environment's containers, volumes and network go".into(),
        actions: vec![dbtopo(&["destroy", FILE, "--auto-approve"])],
    });
    steps
}

/// The header line of an asciicast v2 recording.
pub fn cast_header(width: u16, height: u16, timestamp: u64) -> String {
    json!({
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": timestamp,
        "env": { "TERM": "xterm-256color", "SHELL": "/bin/sh" },
        "title": "dbtopo tour",
    })
    .to_string()
}

/// One output event of an asciicast v2 recording: `[seconds, "o", text]`, line breaks as a
/// terminal needs them.
pub fn cast_output(seconds: f64, text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    json!([(seconds * 1_000_000.0).round() / 1_000_000.0, "o", text]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            coordinator: Some("hub".into()),
            first_node: "hub".into(),
            other_node: Some("eu".into()),
            first_query: Some("late_shipments".into()),
            has_schema: true,
        }
    }

    #[test]
    fn the_tour_shows_every_part_and_ends_by_destroying() {
        let steps = steps(&facts());
        let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles.len(), 8, "{titles:?}");
        assert!(titles.last().unwrap().contains("Destroy"));
        let drift = steps.iter().find(|s| s.title.contains("Drift")).unwrap();
        assert!(drift.actions.contains(&Action::StopContainer("eu".into())));
        // Without fragments there is nothing to explain or to run a workload on.
        let plain = super::steps(&Facts {
            coordinator: None,
            first_query: None,
            ..facts()
        });
        assert!(plain.iter().all(|s| !s.title.contains("Queries")));
        assert!(plain.last().unwrap().title.contains("Destroy"));
    }

    #[test]
    fn a_recording_is_asciicast_version_2() {
        let header: serde_json::Value = serde_json::from_str(&cast_header(100, 30, 7)).unwrap();
        assert_eq!(header["version"], 2);
        assert_eq!(header["width"], 100);
        let event: serde_json::Value =
            serde_json::from_str(&cast_output(1.5, "a\nb\r\nc")).unwrap();
        assert_eq!(event, json!([1.5, "o", "a\r\nb\r\nc"]));
    }
}
