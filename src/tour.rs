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
    /// Count the rows of `tables` through `node` (with `dbtopo psql`); a later count must
    /// find the same numbers.
    CountRows { node: String, tables: Vec<String> },
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
/// Where it takes the topology with one part moved to another node.
pub const MOVED_FILE: &str = "MOVED_FILE";

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
    /// The part moved in the fragment step, when a horizontal part can move.
    pub moved: Option<Move>,
    pub mongo: MongoPart,
}

/// A horizontal part moved from one node to another, in every table that has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub tables: Vec<String>,
    pub from: String,
    pub to: String,
    /// The part's rows as the topology writes them, without its node (`{"values":["EU"]}`).
    pub rows: serde_json::Value,
}

/// What the tour shows of MongoDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MongoPart {
    /// The topology has no replica set.
    Absent,
    /// Said and skipped, with the reason and what would show it.
    Skipped(String),
    /// The set's members in `status`, then its named queries.
    Shown { set: String, queries: Vec<String> },
}

/// The SQL that counts each table's rows, a line per table.
pub fn count_sql(tables: &[String]) -> String {
    tables
        .iter()
        .map(|t| format!("SELECT '{t}' AS table_name, count(*) FROM {t}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The part the fragment step moves, found in the topology file as data (`raw`, the file's
/// YAML read as JSON): the first part (tables by name) on a node other than the coordinator,
/// to another node that holds parts, else to the coordinator. Co-located tables move with it:
/// every part with the same rows on the same node.
pub fn choose_move(raw: &serde_json::Value, coordinator: &str) -> Option<Move> {
    let fragments = raw.pointer("/postgres/fragments")?.as_object()?;
    let parts_of = |table: &serde_json::Value| {
        table
            .pointer("/horizontal/parts")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let node_of =
        |part: &serde_json::Value| part.get("node").and_then(|n| n.as_str()).map(str::to_owned);
    let mut names: Vec<&String> = fragments.keys().collect();
    names.sort();
    let holders: Vec<String> = names
        .iter()
        .flat_map(|name| parts_of(&fragments[*name]))
        .filter_map(|part| node_of(&part))
        .collect();
    for name in &names {
        for part in parts_of(&fragments[*name]) {
            let Some(from) = node_of(&part).filter(|n| n != coordinator) else {
                continue;
            };
            let to = holders
                .iter()
                .find(|n| **n != from && *n != coordinator)
                .cloned()
                .unwrap_or_else(|| coordinator.to_owned());
            let mut rows = part.clone();
            rows.as_object_mut()?.remove("node");
            let tables = names
                .iter()
                .filter(|other| {
                    parts_of(&fragments[**other]).iter().any(|p| {
                        let mut p = p.clone();
                        let node = p.as_object_mut().and_then(|o| o.remove("node"));
                        node.as_ref().and_then(|n| n.as_str()) == Some(&from) && p == rows
                    })
                })
                .map(|t| (*t).clone())
                .collect();
            return Some(Move {
                tables,
                from,
                to,
                rows,
            });
        }
    }
    None
}

/// The topology file's data with `moved` done.
pub fn apply_move(raw: &mut serde_json::Value, moved: &Move) {
    let Some(fragments) = raw
        .pointer_mut("/postgres/fragments")
        .and_then(|f| f.as_object_mut())
    else {
        return;
    };
    for table in &moved.tables {
        let Some(parts) = fragments
            .get_mut(table)
            .and_then(|t| t.pointer_mut("/horizontal/parts"))
            .and_then(|p| p.as_array_mut())
        else {
            continue;
        };
        for part in parts {
            let mut rows = part.clone();
            let node = rows.as_object_mut().and_then(|o| o.remove("node"));
            if node.as_ref().and_then(|n| n.as_str()) == Some(&moved.from) && rows == moved.rows {
                part["node"] = serde_json::Value::String(moved.to.clone());
            }
        }
    }
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
    if let (Some(moved), Some(coordinator)) = (&facts.moved, &facts.coordinator) {
        let count = Action::CountRows {
            node: coordinator.clone(),
            tables: moved.tables.clone(),
        };
        steps.push(Step {
            title: "8. A fragment moved to another node".into(),
            look_at: format!(
                "the part {} of {} goes from {} to {}: the plan names the rows that move, \
                 apply copies and counts them in one transaction, and the row counts are the \
                 same after",
                moved.rows,
                moved.tables.join(", "),
                moved.from,
                moved.to
            ),
            actions: vec![
                count.clone(),
                dbtopo(&["plan", MOVED_FILE]),
                dbtopo(&["apply", MOVED_FILE, "--auto-approve"]),
                count,
                dbtopo(&["plan", MOVED_FILE]),
            ],
        });
    }
    match &facts.mongo {
        MongoPart::Absent => {}
        MongoPart::Skipped(why) => steps.push(Step {
            title: "9. MongoDB (skipped)".into(),
            look_at: why.clone(),
            actions: Vec::new(),
        }),
        MongoPart::Shown { set, queries } => {
            let mut actions = vec![dbtopo(&["status", FILE])];
            for query in queries {
                actions.push(dbtopo(&["mongo", "query", query, FILE, "--set", set]));
            }
            steps.push(Step {
                title: "9. MongoDB".into(),
                look_at: format!(
                    "replica set {set}: each member's state in status, then the shop's named \
                     queries on its collections"
                ),
                actions,
            });
        }
    }
    steps.push(Step {
        title: "10. Destroy".into(),
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
            moved: Some(Move {
                tables: vec!["orders".into()],
                from: "eu".into(),
                to: "hub".into(),
                rows: json!({ "values": ["EU"] }),
            }),
            mongo: MongoPart::Skipped("no image".into()),
        }
    }

    #[test]
    fn the_tour_shows_every_part_and_ends_by_destroying() {
        let steps = steps(&facts());
        let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles.len(), 10, "{titles:?}");
        let moved = steps.iter().find(|s| s.title.contains("moved")).unwrap();
        let counts: Vec<&Action> = moved
            .actions
            .iter()
            .filter(|a| matches!(a, Action::CountRows { .. }))
            .collect();
        assert_eq!(counts.len(), 2, "rows counted before and after the move");
        assert!(
            moved
                .actions
                .contains(&dbtopo(&["apply", MOVED_FILE, "--auto-approve"]))
        );
        let mongo = steps.iter().find(|s| s.title.contains("MongoDB")).unwrap();
        assert!(mongo.title.contains("skipped") && mongo.actions.is_empty());
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

    const FRAGMENTED: &str = "
postgres:
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: us, values: [US] }
          - { node: hub, values: [ASIA] }
    shipping: { horizontal: *by_region }
    reviews:
      horizontal:
        key: region
        by: list
        parts:
          - { node: eu, values: [LATAM] }
          - { node: hub, values: [EU] }
";

    #[test]
    fn a_part_moves_with_the_parts_that_share_its_rows_and_node() {
        let mut raw: serde_json::Value = serde_saphyr::from_str(FRAGMENTED).unwrap();
        let moved = choose_move(&raw, "hub").unwrap();
        // `orders` and `shipping` share their parts (an anchor): the EU part moves in both;
        // `reviews` has no such part on eu.
        assert_eq!(moved.tables, ["orders", "shipping"]);
        assert_eq!((moved.from.as_str(), moved.to.as_str()), ("eu", "us"));
        assert_eq!(moved.rows, json!({ "values": ["EU"] }));
        apply_move(&mut raw, &moved);
        for table in ["orders", "shipping"] {
            let parts = raw.pointer(&format!("/postgres/fragments/{table}/horizontal/parts"));
            assert_eq!(parts.unwrap()[0], json!({ "node": "us", "values": ["EU"] }));
        }
        let reviews = raw
            .pointer("/postgres/fragments/reviews/horizontal/parts")
            .unwrap();
        assert_eq!(reviews[0]["node"], "eu", "{reviews}");
        // Only the coordinator holds parts: nothing can move.
        let local: serde_json::Value = serde_saphyr::from_str(
            "postgres: { fragments: { orders: { horizontal: { parts: [ { node: hub } ] } } } }",
        )
        .unwrap();
        assert_eq!(choose_move(&local, "hub"), None);
        assert_eq!(
            count_sql(&["orders".into(), "shipping".into()]),
            "SELECT 'orders' AS table_name, count(*) FROM orders UNION ALL \
             SELECT 'shipping' AS table_name, count(*) FROM shipping"
        );
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
