//! `dbtopo explain`, the pure part: the query catalogue's files as queries, and the summary of
//! an `EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON)` of one of them on the coordinator:
//! execution time, rows, which fragments were scanned and which pruned, which node received
//! which remote SQL, and the costliest plan node. Rendering as tables or JSON is here too. No
//! I/O: the app layer reads the files and runs the statements.

pub mod advice;
mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

pub use render::{render_comparison, render_list, render_summaries};

use crate::fragments::coordinator::reference_copy_name;
use crate::fragments::placement::Placement;
use crate::schema::ddl::literal;

/// The planner switches `--compare` turns off to measure a query without its indexes.
pub const INDEX_SWITCHES: [&str; 3] = [
    "enable_indexscan",
    "enable_indexonlyscan",
    "enable_bitmapscan",
];

/// One query of the catalogue: a file `NAME.sql` whose leading `--` lines say what it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    pub name: String,
    /// The leading comment, joined into one paragraph.
    pub question: String,
    /// The statement, without its final semicolon.
    pub sql: String,
}

impl Query {
    /// The query in `text`, the file `name.sql`; an error when it holds no statement or more
    /// than one.
    pub fn parse(name: &str, text: &str) -> Result<Query, String> {
        let question = text
            .lines()
            .map(str::trim)
            .take_while(|line| line.starts_with("--"))
            .map(|line| line.trim_start_matches('-').trim())
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let sql = text.trim().trim_end_matches(';').trim_end().to_owned();
        let body: String = sql
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            return Err(format!("query {name} holds no statement"));
        }
        if body.contains(';') {
            return Err(format!(
                "query {name} holds more than one statement: one query per file"
            ));
        }
        Ok(Query {
            name: name.to_owned(),
            question,
            sql,
        })
    }

    /// The statement that explains it.
    pub fn explain_sql(&self) -> String {
        format!(
            "EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON)\n{}",
            self.sql
        )
    }
}

/// Where the coordinator's fragments and foreign tables live, from the topology's placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Each fragmented table's parts: (the part's name on the coordinator, its node).
    pub parts: BTreeMap<String, Vec<(String, String)>>,
    /// Every relation of the coordinator that lives on another node: its node.
    pub remote: BTreeMap<String, String>,
}

impl Layout {
    pub fn new(coordinator: &str, placement: &Placement) -> Layout {
        let mut layout = Layout::default();
        for table in &placement.partitioned {
            let parts = table
                .partitions
                .iter()
                .map(|p| {
                    let node = if p.local { coordinator } else { &p.node };
                    (p.name.clone(), node.to_owned())
                })
                .collect();
            layout.parts.insert(table.table.name.clone(), parts);
            for part in table.partitions.iter().filter(|p| !p.local) {
                layout.remote.insert(part.name.clone(), part.node.clone());
            }
        }
        for table in &placement.vertical {
            let parts = table
                .parts
                .iter()
                .map(|p| (p.name.clone(), p.node.clone()))
                .collect();
            layout.parts.insert(table.table.name.clone(), parts);
            for part in table.parts.iter().filter(|p| !p.local) {
                layout.remote.insert(part.name.clone(), part.node.clone());
            }
        }
        for (node, tables) in &placement.references {
            for table in tables {
                layout
                    .remote
                    .insert(reference_copy_name(table, node), node.clone());
            }
        }
        layout
    }
}

/// What happened to one fragment of a table the query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FragmentState {
    /// Read (its scan ran).
    Scanned,
    /// In the plan, never run: pruned while executing.
    NotExecuted,
    /// Not in the plan: pruned by the planner (or while executing, `Subplans Removed`).
    Pruned,
}

impl FragmentState {
    pub fn label(self) -> &'static str {
        match self {
            FragmentState::Scanned => "scanned",
            FragmentState::NotExecuted => "pruned at run time",
            FragmentState::Pruned => "pruned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fragment {
    pub table: String,
    pub part: String,
    pub node: String,
    pub state: FragmentState,
}

/// A Foreign Scan: the node that received `sql`, and the coordinator's relations it stands for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remote {
    pub node: String,
    pub relations: Vec<String>,
    /// What was pushed down: a join or an aggregate when more than a scan.
    pub pushed: String,
    pub sql: String,
    pub rows: f64,
    pub ms: f64,
}

/// The plan node that took the most time of its own (its time without its children's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Costliest {
    pub node: String,
    pub self_ms: f64,
    /// Of the execution time, in percent.
    pub share: f64,
    pub total_cost: f64,
}

/// One explained query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub name: String,
    pub question: String,
    pub planning_ms: f64,
    pub execution_ms: f64,
    /// Rows the query returned.
    pub rows: f64,
    /// The planner's total cost estimate.
    pub total_cost: f64,
    pub fragments: Vec<Fragment>,
    /// Subplans of Append nodes removed while executing.
    pub removed_at_run_time: u64,
    pub remote: Vec<Remote>,
    pub costliest: Option<Costliest>,
    /// Index advice: selective sequential scans of big fragments, on the coordinator and on
    /// the nodes (the app layer fills it; empty with `--compare`).
    pub advice: Vec<advice::Advice>,
}

impl Summary {
    pub fn pruned(&self) -> impl Iterator<Item = &Fragment> {
        self.fragments
            .iter()
            .filter(|f| f.state != FragmentState::Scanned)
    }

    pub fn scanned(&self) -> impl Iterator<Item = &Fragment> {
        self.fragments
            .iter()
            .filter(|f| f.state == FragmentState::Scanned)
    }
}

/// A query measured with its indexes and without them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub name: String,
    pub with_indexes: Summary,
    pub without_indexes: Summary,
}

/// The summary of `query`'s EXPLAIN output (the JSON of `EXPLAIN (ANALYZE, VERBOSE, BUFFERS,
/// FORMAT JSON)`), placing its relations with `layout`.
pub fn summarize(query: &Query, explain: &Value, layout: &Layout) -> Result<Summary, String> {
    let top = explain
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or(explain);
    let plan = top
        .get("Plan")
        .ok_or_else(|| format!("query {}: the EXPLAIN output has no plan", query.name))?;
    let execution_ms = number(top, "Execution Time");
    let mut walk = Walk {
        layout,
        seen: BTreeMap::new(),
        removed: 0,
        remote: Vec::new(),
        costliest: None,
    };
    walk.node(plan);
    let mentioned = identifiers(&query.sql);
    let mut fragments = Vec::new();
    for (table, parts) in &layout.parts {
        let read = mentioned.contains(table.as_str())
            || parts.iter().any(|(part, _)| walk.seen.contains_key(part));
        if !read {
            continue;
        }
        for (part, node) in parts {
            let state = match walk.seen.get(part) {
                Some(true) => FragmentState::Scanned,
                Some(false) => FragmentState::NotExecuted,
                None => FragmentState::Pruned,
            };
            fragments.push(Fragment {
                table: table.clone(),
                part: part.clone(),
                node: node.clone(),
                state,
            });
        }
    }
    let costliest = walk.costliest.map(|(node, self_ms, total_cost)| Costliest {
        node,
        self_ms,
        share: if execution_ms > 0.0 {
            (self_ms / execution_ms * 100.0).min(100.0)
        } else {
            0.0
        },
        total_cost,
    });
    Ok(Summary {
        name: query.name.clone(),
        question: query.question.clone(),
        planning_ms: number(top, "Planning Time"),
        execution_ms,
        rows: number(plan, "Actual Rows"),
        total_cost: number(plan, "Total Cost"),
        fragments,
        removed_at_run_time: walk.removed,
        remote: walk.remote,
        costliest,
        advice: Vec::new(),
    })
}

/// What the walk over the plan tree gathers.
struct Walk<'a> {
    layout: &'a Layout,
    /// Relations in the plan, and whether their scan ran.
    seen: BTreeMap<String, bool>,
    removed: u64,
    remote: Vec<Remote>,
    /// The node with the most time of its own: its label, that time and its total cost.
    costliest: Option<(String, f64, f64)>,
}

impl Walk<'_> {
    fn node(&mut self, plan: &Value) {
        let kind = text(plan, "Node Type");
        let loops = number(plan, "Actual Loops");
        let ran = loops > 0.0;
        self.removed += plan
            .get("Subplans Removed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mut relations: Vec<String> = Vec::new();
        if let Some(name) = plan.get("Relation Name").and_then(Value::as_str) {
            relations.push(name.to_owned());
        }
        if let Some(joined) = plan.get("Relations").and_then(Value::as_str) {
            relations.extend(relations_in(joined));
        }
        for relation in &relations {
            let ran_before = self.seen.get(relation).copied().unwrap_or(false);
            self.seen.insert(relation.clone(), ran_before || ran);
        }
        let node = relations
            .iter()
            .find_map(|r| self.layout.remote.get(r))
            .cloned();
        if let Some(sql) = plan.get("Remote SQL").and_then(Value::as_str) {
            let joined = plan.get("Relations").and_then(Value::as_str);
            self.remote.push(Remote {
                node: node.clone().unwrap_or_else(|| "?".to_owned()),
                relations: relations.clone(),
                pushed: joined.map(pushed_down).unwrap_or_default(),
                sql: sql.to_owned(),
                rows: number(plan, "Actual Rows") * loops.max(1.0),
                ms: number(plan, "Actual Total Time") * loops,
            });
        }
        let children: Vec<&Value> = plan
            .get("Plans")
            .and_then(Value::as_array)
            .map(|plans| plans.iter().collect())
            .unwrap_or_default();
        // Time of its own: its total time over every loop, less its children's. A Gather's or
        // an InitPlan's children can overlap; never below zero.
        let own = number(plan, "Actual Total Time") * loops
            - children
                .iter()
                .map(|c| number(c, "Actual Total Time") * number(c, "Actual Loops"))
                .sum::<f64>();
        let own = own.max(0.0);
        if self
            .costliest
            .as_ref()
            .is_none_or(|(_, best, _)| own > *best)
        {
            self.costliest = Some((
                label(&kind, &relations, node.as_deref()),
                own,
                number(plan, "Total Cost"),
            ));
        }
        for child in children {
            self.node(child);
        }
    }
}

/// `Foreign Scan on orders_eu at shard-eu`, `Hash Join`, `Seq Scan on products`.
fn label(kind: &str, relations: &[String], node: Option<&str>) -> String {
    let mut label = kind.to_owned();
    if !relations.is_empty() {
        label.push_str(" on ");
        label.push_str(&relations.join(", "));
    }
    if let Some(node) = node {
        label.push_str(&format!(" at {node}"));
    }
    label
}

/// The relations a pushed-down join or aggregate names: `Aggregate on ((public.orders_eu o)
/// INNER JOIN (public.order_details_eu d))` → orders_eu, order_details_eu.
fn relations_in(joined: &str) -> Vec<String> {
    joined
        .split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .filter_map(|word| word.split_once('.').map(|(_, name)| name))
        .filter(|name| !name.is_empty())
        .map(|name| name.trim_matches('"').to_owned())
        .collect()
}

/// What postgres_fdw pushed down beyond a scan: `aggregate, inner join`.
fn pushed_down(joined: &str) -> String {
    let mut what = Vec::new();
    if joined.starts_with("Aggregate on") {
        what.push("aggregate".to_owned());
    }
    for join in [
        "INNER JOIN",
        "LEFT JOIN",
        "RIGHT JOIN",
        "FULL JOIN",
        "SEMI JOIN",
        "ANTI JOIN",
    ] {
        if joined.contains(join) {
            what.push(join.to_lowercase());
        }
    }
    what.join(", ")
}

/// The lower-case words of `sql` that could name a table.
fn identifiers(sql: &str) -> BTreeSet<String> {
    sql.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn number(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned()
}

/// The statements, run inside a transaction that is rolled back, that plan and run a query
/// without index scans: the planner switches for the coordinator's own session, and for each
/// foreign server (name, its `options` if it has some) the same switches as its connections'
/// startup options, so the nodes plan without their indexes too. The rollback restores the
/// servers; postgres_fdw opens new connections when a server's options change.
pub fn without_indexes(servers: &[(String, Option<String>)]) -> Vec<String> {
    let switches: Vec<String> = INDEX_SWITCHES
        .iter()
        .map(|s| format!("-c {s}=off"))
        .collect();
    let mut sql: Vec<String> = INDEX_SWITCHES
        .iter()
        .map(|s| format!("SET LOCAL {s} = off"))
        .collect();
    for (server, options) in servers {
        let server = crate::schema::ddl::quote(server);
        sql.push(match options {
            None => format!(
                "ALTER SERVER {server} OPTIONS (ADD options {})",
                literal(&switches.join(" "))
            ),
            Some(existing) => format!(
                "ALTER SERVER {server} OPTIONS (SET options {})",
                literal(&format!("{existing} {}", switches.join(" ")))
            ),
        });
    }
    sql
}
