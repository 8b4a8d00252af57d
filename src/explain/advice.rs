//! Index advice, pure: a sequential scan of a fragment that reads many rows and keeps few of
//! them names the index that would serve it: the topology's `indexes:` entry (or the
//! manifest's index) that starts with a column of its filter and was not used there, or the
//! entry to add. The app layer runs the remote SQL on each node and reads the node's indexes;
//! this reads the plans.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::fragments::placement::Placement;
use crate::schema::Schema;
use crate::topology::DistributedIndex;

/// A scan reading fewer rows than this gets no advice: an index would not pay for itself.
pub const MIN_ROWS_READ: f64 = 1000.0;

/// A scan gets advice when its filter removes at least this share of the rows it read.
pub const MIN_REMOVED_SHARE: f64 = 0.9;

/// What the advice needs to know about the schema: which logical table each fragment is part
/// of, the logical tables' columns, and the indexes declared on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexing {
    /// A fragment's table, by its name on its node and on the coordinator: its logical table.
    pub fragments: BTreeMap<String, String>,
    /// The columns of each fragmented logical table.
    pub columns: BTreeMap<String, Vec<String>>,
    /// The indexes declared on fragmented tables, the topology's and the manifest's.
    pub declared: Vec<DeclaredIndex>,
    /// Each horizontally fragmented table's key: a list or range fragment holds few of its
    /// values, so an index is not proposed on it while the filter has other columns.
    pub keys: BTreeMap<String, String>,
}

/// An index declared on a logical table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredIndex {
    pub table: String,
    pub columns: Vec<String>,
    /// `indexes: - { table: orders, columns: [status, order_date] }`, or the manifest's
    /// `CREATE INDEX orders_user_id_order_date_idx`.
    pub declared: String,
}

impl Indexing {
    /// From the manifest, its placement and the topology's `indexes:`.
    pub fn new(manifest: &Schema, placement: &Placement, indexes: &[DistributedIndex]) -> Self {
        let mut indexing = Indexing::default();
        for table in &placement.partitioned {
            let name = &table.table.name;
            indexing.keys.insert(name.clone(), table.key.clone());
            for part in &table.partitions {
                indexing.fragments.insert(part.name.clone(), name.clone());
                indexing
                    .fragments
                    .insert(part.remote_table.clone(), name.clone());
            }
        }
        for table in &placement.vertical {
            let name = &table.table.name;
            for part in &table.parts {
                indexing.fragments.insert(part.name.clone(), name.clone());
                indexing
                    .fragments
                    .insert(part.remote_table.clone(), name.clone());
            }
        }
        let logical: BTreeSet<&String> = indexing.fragments.values().collect();
        for name in &logical {
            if let Some(table) = manifest.tables.get(*name) {
                indexing.columns.insert(
                    (*name).clone(),
                    table.columns.iter().map(|c| c.name.clone()).collect(),
                );
            }
        }
        for index in indexes {
            indexing.declared.push(DeclaredIndex {
                table: index.table.clone(),
                columns: index.columns.clone(),
                declared: format!("indexes: {}", entry(&index.table, &index.columns)),
            });
        }
        for index in manifest.indexes.values() {
            if !logical.contains(&index.table) {
                continue;
            }
            indexing.declared.push(DeclaredIndex {
                table: index.table.clone(),
                columns: index.columns.iter().map(|c| bare(c)).collect(),
                declared: format!("the manifest's CREATE INDEX {}", index.name),
            });
        }
        indexing
    }
}

/// What a node holds, read from its catalog: each table's estimated rows (for a plan without
/// ANALYZE) and its indexes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCatalog {
    pub rows: BTreeMap<String, f64>,
    pub indexes: Vec<NodeIndex>,
}

/// An index on a node: its table, its name, its key columns (as `pg_get_indexdef` prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIndex {
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
}

/// What to do about one sequential scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Suggestion {
    /// An index starting with a filter column is declared, and the node did not use it.
    Declared {
        /// How it is declared: `indexes: - { table: orders, columns: [status, order_date] }`.
        declared: String,
        columns: Vec<String>,
        /// Its name on the node, when the node holds it.
        on_node: Option<String>,
    },
    /// Nothing is declared: the entry of the topology's `indexes:` to add.
    Add { entry: String },
}

/// One piece of advice: a sequential scan on `node` of `relation` (a fragment of `table`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub node: String,
    pub relation: String,
    pub table: String,
    pub filter: String,
    /// The table's columns the filter reads.
    pub columns: Vec<String>,
    pub rows_read: f64,
    pub rows_removed: f64,
    /// The counts are the planner's estimates (a plan without ANALYZE).
    pub estimated: bool,
    pub suggestion: Suggestion,
}

impl Advice {
    /// One line for people.
    pub fn line(&self) -> String {
        let share = if self.rows_read > 0.0 {
            self.rows_removed / self.rows_read * 100.0
        } else {
            0.0
        };
        let mut line = format!(
            "Seq Scan on {} ({}) at {} read {} row(s){} and its filter on {} removed {:.1}%: ",
            self.relation,
            self.table,
            self.node,
            self.rows_read,
            if self.estimated { " (estimated)" } else { "" },
            self.columns.join(", "),
            share
        );
        match &self.suggestion {
            Suggestion::Declared {
                declared, on_node, ..
            } => {
                line.push_str(&format!("{declared} is declared but was not used there"));
                match on_node {
                    Some(name) => line.push_str(&format!(" (it exists on {}: {name})", self.node)),
                    None => line.push_str(&format!(" (it does not exist on {})", self.node)),
                }
            }
            Suggestion::Add { entry } => line.push_str(&format!("add indexes: {entry}")),
        }
        line
    }
}

/// `- { table: orders, columns: [status, order_date] }`, as the topology writes an entry.
pub fn entry(table: &str, columns: &[String]) -> String {
    format!("- {{ table: {table}, columns: [{}] }}", columns.join(", "))
}

/// The advice for `plan` (one EXPLAIN's JSON, with or without ANALYZE), run on `node` whose
/// catalog is `catalog`.
pub fn advise(plan: &Value, node: &str, indexing: &Indexing, catalog: &NodeCatalog) -> Vec<Advice> {
    let top = plan.as_array().and_then(|a| a.first()).unwrap_or(plan);
    let mut out = Vec::new();
    if let Some(root) = top.get("Plan") {
        walk(root, node, indexing, catalog, &mut out);
    }
    out
}

fn walk(
    plan: &Value,
    node: &str,
    indexing: &Indexing,
    catalog: &NodeCatalog,
    out: &mut Vec<Advice>,
) {
    if let Some(advice) = scan(plan, node, indexing, catalog) {
        out.push(advice);
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk(child, node, indexing, catalog, out);
    }
}

/// The advice for one plan node, if it is a selective sequential scan of a big fragment.
fn scan(plan: &Value, node: &str, indexing: &Indexing, catalog: &NodeCatalog) -> Option<Advice> {
    let kind = plan.get("Node Type").and_then(Value::as_str)?;
    if kind != "Seq Scan" && kind != "Parallel Seq Scan" {
        return None;
    }
    let relation = plan.get("Relation Name").and_then(Value::as_str)?;
    let filter = plan.get("Filter").and_then(Value::as_str)?;
    let table = indexing.fragments.get(relation)?;
    let number = |key: &str| plan.get(key).and_then(Value::as_f64);
    let (read, removed, estimated) = match number("Actual Loops") {
        // Actual Rows and Rows Removed by Filter are averages over the loops.
        Some(loops) => {
            let kept = number("Actual Rows").unwrap_or(0.0) * loops;
            let removed = number("Rows Removed by Filter").unwrap_or(0.0) * loops;
            (kept + removed, removed, false)
        }
        None => {
            let read = *catalog.rows.get(relation)?;
            let kept = number("Plan Rows").unwrap_or(0.0);
            (read, (read - kept).max(0.0), true)
        }
    };
    if read < MIN_ROWS_READ || removed < MIN_REMOVED_SHARE * read {
        return None;
    }
    let columns = indexing.columns.get(table)?;
    let mut uses = filter_columns(filter, columns);
    if uses.is_empty() {
        return None;
    }
    // The fragment key picked the fragment; an index serves the other columns.
    if let Some(key) = indexing.keys.get(table)
        && uses.iter().any(|(c, _)| c != key)
    {
        uses.retain(|(c, _)| c != key);
    }
    let names: Vec<String> = uses.iter().map(|(c, _)| c.clone()).collect();
    let mut candidates: Vec<&String> = uses
        .iter()
        .filter(|(_, u)| *u == Use::Equality)
        .map(|(c, _)| c)
        .collect();
    candidates.extend(
        uses.iter()
            .filter(|(_, u)| *u != Use::Equality)
            .map(|(c, _)| c),
    );
    let declared = candidates.iter().find_map(|column| {
        indexing
            .declared
            .iter()
            .find(|d| &d.table == table && d.columns.first() == Some(*column))
    });
    let suggestion = match declared {
        Some(declared) => Suggestion::Declared {
            declared: declared.declared.clone(),
            columns: declared.columns.clone(),
            on_node: catalog
                .indexes
                .iter()
                .find(|i| {
                    i.table == relation
                        && i.columns.iter().map(|c| bare(c)).collect::<Vec<_>>() == declared.columns
                })
                .map(|i| i.name.clone()),
        },
        None => Suggestion::Add {
            entry: entry(table, &proposed(&uses)),
        },
    };
    Some(Advice {
        node: node.to_owned(),
        relation: relation.to_owned(),
        table: table.clone(),
        filter: filter.to_owned(),
        columns: names,
        rows_read: read,
        rows_removed: removed,
        estimated,
        suggestion,
    })
}

/// The columns of a new index: the equality columns first, then one range column (a btree
/// reads a range of its first range column only); when the filter has neither, every column.
fn proposed(uses: &[(String, Use)]) -> Vec<String> {
    let mut columns: Vec<String> = uses
        .iter()
        .filter(|(_, u)| *u == Use::Equality)
        .map(|(c, _)| c.clone())
        .collect();
    if let Some((range, _)) = uses.iter().find(|(_, u)| *u == Use::Range) {
        columns.push(range.clone());
    }
    if columns.is_empty() {
        columns = uses.iter().map(|(c, _)| c.clone()).collect();
    }
    columns
}

/// How a filter compares a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// `=`, `= ANY (...)`, `IS NULL`, a boolean column alone.
    Equality,
    /// `<`, `<=`, `>`, `>=`, `~~` (LIKE).
    Range,
    /// Inside a function, `<>`, anything an index on the column does not serve.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    /// A quoted identifier.
    Quoted(String),
    Literal,
    Op(String),
    Open,
    Close,
    Comma,
    Dot,
    Cast,
}

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut word = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        word.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                word.push(chars[i]);
                i += 1;
            }
            out.push(if c == '"' {
                Token::Quoted(word)
            } else {
                Token::Literal
            });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(if c.is_ascii_digit() || c == '$' {
                Token::Literal
            } else {
                Token::Word(word)
            });
        } else if c == '(' {
            out.push(Token::Open);
            i += 1;
        } else if c == ')' {
            out.push(Token::Close);
            i += 1;
        } else if c == ',' {
            out.push(Token::Comma);
            i += 1;
        } else if c == '.' {
            out.push(Token::Dot);
            i += 1;
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token::Cast);
            i += 2;
        } else {
            let start = i;
            while i < chars.len() && "<>=!~*+-/%&|#@^?".contains(chars[i]) {
                i += 1;
            }
            if i == start {
                i += 1;
            }
            out.push(Token::Op(chars[start..i].iter().collect()));
        }
    }
    out
}

/// Words that are SQL, not a column, in a filter the server printed.
const KEYWORDS: [&str; 8] = ["AND", "OR", "NOT", "IS", "NULL", "ANY", "ALL", "ARRAY"];

/// The columns of `columns` that `filter` reads, in the order it names them, each with how
/// it compares them (the most useful way when it names one several times).
pub fn filter_columns(filter: &str, columns: &[String]) -> Vec<(String, Use)> {
    let tokens = tokens(filter);
    // For each open parenthesis: whether a function's name opened it.
    let mut calls: Vec<bool> = Vec::new();
    let mut found: Vec<(String, Use)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => {
                let call = i > 0
                    && matches!(
                        &tokens[i - 1],
                        Token::Word(w) if !KEYWORDS.contains(&w.to_uppercase().as_str())
                    );
                calls.push(call);
                continue;
            }
            Token::Close => {
                calls.pop();
                continue;
            }
            _ => {}
        }
        let name = match token {
            Token::Word(w) => w.clone(),
            Token::Quoted(w) => w.clone(),
            _ => continue,
        };
        // A qualifier (`o.`), a type after `::`, or not a column of the table.
        if tokens.get(i + 1) == Some(&Token::Dot)
            || (i > 0 && tokens[i - 1] == Token::Cast)
            || !columns.contains(&name)
            || tokens.get(i + 1) == Some(&Token::Open)
        {
            continue;
        }
        let used = if calls.iter().any(|call| *call) {
            Use::Other
        } else {
            comparison(&tokens, i)
        };
        match found.iter_mut().find(|(c, _)| *c == name) {
            Some((_, u)) => {
                if rank(used) < rank(*u) {
                    *u = used;
                }
            }
            None => found.push((name, used)),
        }
    }
    found
}

fn rank(used: Use) -> u8 {
    match used {
        Use::Equality => 0,
        Use::Range => 1,
        Use::Other => 2,
    }
}

/// How the column at `at` is compared: by the operator after it (past a cast), else the one
/// before it; a column alone is a boolean tested for truth.
fn comparison(tokens: &[Token], at: usize) -> Use {
    let mut next = at + 1;
    // `status::text` or `(status)::text`.
    while matches!(tokens.get(next), Some(Token::Close))
        && matches!(tokens.get(next + 1), Some(Token::Cast))
    {
        next += 1;
    }
    while tokens.get(next) == Some(&Token::Cast) {
        next += 1;
        while matches!(tokens.get(next), Some(Token::Word(w)) if !KEYWORDS.contains(&w.to_uppercase().as_str()))
        {
            next += 1;
        }
    }
    let after = tokens.get(next);
    let before = at.checked_sub(1).and_then(|i| tokens.get(i));
    let of = |op: &str| match op {
        "=" => Use::Equality,
        "<" | "<=" | ">" | ">=" | "~~" => Use::Range,
        _ => Use::Other,
    };
    match after {
        Some(Token::Op(op)) => of(op),
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("IS") => Use::Equality,
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("BETWEEN") => Use::Range,
        _ => match before {
            Some(Token::Op(op)) => of(op),
            _ => Use::Equality,
        },
    }
}

/// A column as an index lists it, without quotes or ordering: `"order_date" DESC` → order_date.
fn bare(column: &str) -> String {
    column
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches('"')
        .to_owned()
}

/// Whether a remote statement has parameters (`$1`), so it is explained as a generic plan.
pub fn has_parameters(sql: &str) -> bool {
    let mut quoted = false;
    let chars: Vec<char> = sql.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '\'' {
            quoted = !quoted;
        } else if !quoted && *c == '$' && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            return true;
        }
    }
    false
}

/// The statement that explains a remote statement on its node.
pub fn node_explain_sql(sql: &str) -> String {
    if has_parameters(sql) {
        format!("EXPLAIN (GENERIC_PLAN, FORMAT JSON) {sql}")
    } else {
        format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
    }
}

#[cfg(test)]
#[path = "advice_tests.rs"]
mod tests;
