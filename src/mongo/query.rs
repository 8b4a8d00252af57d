//! Named queries: `<collections folder>/queries/*.yaml`, each file a mapping of query names
//! to one operation on one collection, described for people.
//!
//! ```yaml
//! top_rated_reviews:
//!   description: The ten best-rated reviews, newest first
//!   collection: reviews
//!   find:
//!     filter: { rating: { $gte: 4 } }
//!     projection: { product_id: 1, rating: 1, title: 1 }
//!     sort: { rating: -1, created_at: -1 }
//!     limit: 10
//! average_rating:
//!   description: Average rating per product
//!   collection: reviews
//!   aggregate:
//!     - $group: { _id: $product_id, average: { $avg: $rating } }
//! mark_helpful:
//!   description: One more helpful vote for a review
//!   collection: reviews
//!   update: { filter: { product_id: 1, user_id: 3 }, update: { $inc: { helpful_votes: 1 } } }
//! forget_user:
//!   description: Remove a user's reviews
//!   collection: reviews
//!   delete: { filter: { user_id: 42 }, many: true }
//! ```
//!
//! Each query has exactly one of `find`, `aggregate`, `update` (`updateOne`, or `updateMany`
//! with `many: true`) and `delete` (the same). The free-form parts (filters, projections,
//! sorts, stages) keep every key's and value's place in the file, so that the schema check
//! ([`super::query_check`]) can point at a field; they become BSON in file order, integers as
//! Int32 when they fit, and an Extended JSON mapping (`{ $date: "2026-01-01T00:00:00Z" }`,
//! `{ $oid: ... }`, `{ $numberLong: ... }`) becomes its BSON value.
//!
//! Parsing is pure; [`load_queries`] is the edge that reads the folder.

use std::fmt;
use std::path::{Path, PathBuf};

use bson::{Bson, Document};
use miette::Diagnostic;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use thiserror::Error;

use crate::diagnostics::{FileKind, Problem, Source, count, sort_by_position};

const QUERIES: FileKind = FileKind {
    document: "a file of named queries",
    bad_value: "invalid named query",
};

/// Extended JSON keys that make a mapping one BSON value.
const EXTENDED_JSON: &[&str] = &[
    "$date",
    "$oid",
    "$numberLong",
    "$numberInt",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$timestamp",
    "$regularExpression",
    "$minKey",
    "$maxKey",
];

/// A YAML value with the place of every key and value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// The entries of a mapping, `None` for any other value.
    pub fn entries(&self) -> Option<&[(Spanned<String>, Spanned<Node>)]> {
        match self {
            Node::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value as BSON, in file order.
    pub fn to_bson(&self) -> Bson {
        match self {
            Node::Null => Bson::Null,
            Node::Bool(b) => Bson::Boolean(*b),
            Node::Int(i) => i32::try_from(*i).map_or(Bson::Int64(*i), Bson::Int32),
            Node::Float(f) => Bson::Double(*f),
            Node::Str(s) => Bson::String(s.clone()),
            Node::Seq(items) => Bson::Array(items.iter().map(|i| i.value.to_bson()).collect()),
            Node::Map(entries) => {
                if !entries.is_empty()
                    && entries
                        .iter()
                        .all(|(k, _)| EXTENDED_JSON.contains(&k.value.as_str()))
                    && let Ok(value) = Bson::try_from(self.to_json())
                {
                    return value;
                }
                Bson::Document(
                    entries
                        .iter()
                        .map(|(k, v)| (k.value.clone(), v.value.to_bson()))
                        .collect(),
                )
            }
        }
    }

    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => Value::from(*f),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A mapping as a BSON document (an empty one for anything else: parsing refused that).
    pub fn to_document(&self) -> Document {
        match self.to_bson() {
            Bson::Document(d) => d,
            _ => Document::new(),
        }
    }
}

fn int_node<E: de::Error>(v: impl TryInto<i64> + fmt::Display + Copy) -> Result<Node, E> {
    v.try_into()
        .map(Node::Int)
        .map_err(|_| E::custom(format!("the integer {v} does not fit in 64 bits")))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                int_node(v)
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
                int_node(v)
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
                int_node(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Node::Map(entries))
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// The file as written.

/// The queries of a file, in file order.
#[derive(Debug)]
struct RawFile(Vec<(Spanned<String>, Spanned<RawQuery>)>);

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor;

        impl<'de> Visitor<'de> for FileVisitor {
            type Value = RawFile;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of query names to queries")
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawFile, E> {
                Ok(RawFile(Vec::new()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
                let mut queries = Vec::new();
                while let Some(name) = map.next_key()? {
                    queries.push((name, map.next_value()?));
                }
                Ok(RawFile(queries))
            }
        }

        deserializer.deserialize_any(FileVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    description: Option<Spanned<String>>,
    collection: Option<Spanned<String>>,
    find: Option<Spanned<RawFind>>,
    aggregate: Option<Spanned<Vec<Spanned<Node>>>>,
    update: Option<Spanned<RawUpdate>>,
    delete: Option<Spanned<RawDelete>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFind {
    filter: Option<Spanned<Node>>,
    projection: Option<Spanned<Node>>,
    sort: Option<Spanned<Node>>,
    limit: Option<Spanned<Node>>,
    skip: Option<Spanned<Node>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdate {
    filter: Option<Spanned<Node>>,
    update: Option<Spanned<Node>>,
    many: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelete {
    filter: Option<Spanned<Node>>,
    many: Option<bool>,
}

// ---------------------------------------------------------------------------------------
// The queries, checked for shape.

/// One named query, its free-form parts with their places.
#[derive(Debug, Clone)]
pub struct NamedQuery {
    pub name: Spanned<String>,
    pub description: String,
    pub collection: Spanned<String>,
    pub operation: Operation,
}

#[derive(Debug, Clone)]
pub enum Operation {
    Find {
        /// A mapping, possibly empty.
        filter: Option<Spanned<Node>>,
        projection: Option<Spanned<Node>>,
        sort: Option<Spanned<Node>>,
        limit: Option<i64>,
        skip: Option<u64>,
    },
    /// The stages, each a mapping of one `$stage`.
    Aggregate(Vec<Spanned<Node>>),
    Update {
        filter: Spanned<Node>,
        /// A mapping of update operators (`$set`, `$inc`, ...).
        update: Spanned<Node>,
        many: bool,
    },
    Delete {
        filter: Spanned<Node>,
        many: bool,
    },
}

impl Operation {
    /// `find`, `aggregate`, `updateOne`, `updateMany`, `deleteOne`, `deleteMany`.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Find { .. } => "find",
            Operation::Aggregate(_) => "aggregate",
            Operation::Update { many: false, .. } => "updateOne",
            Operation::Update { many: true, .. } => "updateMany",
            Operation::Delete { many: false, .. } => "deleteOne",
            Operation::Delete { many: true, .. } => "deleteMany",
        }
    }
}

/// A mapping's document, an empty one for none.
pub fn document(node: Option<&Spanned<Node>>) -> Document {
    node.map(|n| n.value.to_document()).unwrap_or_default()
}

/// The named queries of one file, with the source their problems point into.
#[derive(Debug, Clone)]
pub struct QueryFile {
    pub(crate) source: Source,
    pub queries: Vec<NamedQuery>,
}

impl QueryFile {
    /// The file's name as snippets show it.
    pub fn name(&self) -> &str {
        self.source.name()
    }

    pub(crate) fn problem(&self, message: impl Into<String>) -> Problem {
        self.source.problem(message)
    }
}

/// Parse one file of named queries: `file` titles the snippets. Every shape problem at once.
pub fn parse_queries(file: &str, text: &str) -> Result<QueryFile, Vec<Problem>> {
    let source = Source::new(file, text, QUERIES);
    let raw: RawFile = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(err) => return Err(vec![source.yaml_error(&err)]),
    };
    let mut problems = Vec::new();
    let mut queries = Vec::new();
    for (name, raw) in raw.0 {
        if let Some(query) = shape(&source, &mut problems, name, raw) {
            queries.push(query);
        }
    }
    if problems.is_empty() {
        Ok(QueryFile { source, queries })
    } else {
        sort_by_position(&mut problems);
        Err(problems)
    }
}

fn shape(
    source: &Source,
    problems: &mut Vec<Problem>,
    name: Spanned<String>,
    raw: Spanned<RawQuery>,
) -> Option<NamedQuery> {
    let at = raw.referenced;
    let raw = raw.value;
    let before = problems.len();
    if name.value.is_empty() || name.value.chars().any(char::is_whitespace) {
        problems.push(
            source
                .problem(format!("invalid query name `{}`", name.value))
                .at(&name.referenced, "empty or with spaces")
                .help("name a query with letters, digits and `_`, e.g. `top_reviewers`"),
        );
    }
    let description = match raw.description {
        Some(d) if !d.value.trim().is_empty() => d.value,
        Some(d) => {
            problems.push(
                source
                    .problem(format!("query `{}` has an empty `description`", name.value))
                    .at(&d.referenced, "say what the query answers"),
            );
            String::new()
        }
        None => {
            problems.push(
                source
                    .problem(format!("query `{}` has no `description`", name.value))
                    .at(&name.referenced, "add `description:` to this query")
                    .help("every named query says what it answers, for `dbtopo mongo query`"),
            );
            String::new()
        }
    };
    let collection = match raw.collection {
        Some(c) => Some(c),
        None => {
            problems.push(
                source
                    .problem(format!("query `{}` has no `collection`", name.value))
                    .at(&name.referenced, "add `collection:` to this query"),
            );
            None
        }
    };
    let given = [
        raw.find.as_ref().map(|f| ("find", f.referenced)),
        raw.aggregate.as_ref().map(|a| ("aggregate", a.referenced)),
        raw.update.as_ref().map(|u| ("update", u.referenced)),
        raw.delete.as_ref().map(|d| ("delete", d.referenced)),
    ];
    let given: Vec<(&str, Location)> = given.into_iter().flatten().collect();
    const HELP: &str = "a query has exactly one of `find`, `aggregate`, `update` or `delete`";
    match given.as_slice() {
        [] => problems.push(
            source
                .problem(format!("query `{}` has no operation", name.value))
                .at(&at, "add `find`, `aggregate`, `update` or `delete`")
                .help(HELP),
        ),
        [_] => {}
        [(_, first), (second, at), ..] => problems.push(
            source
                .problem(format!(
                    "query `{}` has more than one operation",
                    name.value
                ))
                .at(at, format!("`{second}` as well"))
                .also(first, "first operation")
                .help(HELP),
        ),
    }
    let query = name.value.clone();
    let mapping = |problems: &mut Vec<Problem>, node: Option<Spanned<Node>>, what: &str| {
        let node = node?;
        if node.value.entries().is_none() {
            problems.push(
                source
                    .problem(format!("`{what}` of query `{query}` is not a mapping"))
                    .at(&node.referenced, "expected a mapping, e.g. `{ rating: 5 }`"),
            );
        }
        Some(node)
    };
    let operation = if let Some(find) = raw.find {
        let find = find.value;
        let filter = mapping(problems, find.filter, "filter");
        let projection = mapping(problems, find.projection, "projection");
        let sort = mapping(problems, find.sort, "sort");
        let limit = count_of(source, problems, find.limit, "limit", &name.value);
        let skip = count_of(source, problems, find.skip, "skip", &name.value);
        Some(Operation::Find {
            filter,
            projection,
            sort,
            limit,
            skip: skip.map(|s| s as u64),
        })
    } else if let Some(stages) = raw.aggregate {
        if stages.value.is_empty() {
            problems.push(
                source
                    .problem(format!("query `{}` has no aggregation stages", name.value))
                    .at(&stages.referenced, "an empty pipeline")
                    .help("e.g. `aggregate: [ { $group: { _id: $product_id, n: { $sum: 1 } } } ]`"),
            );
        }
        for stage in &stages.value {
            match stage.value.entries() {
                Some([(key, _)]) if key.value.starts_with('$') => {}
                _ => problems.push(
                    source
                        .problem(format!(
                            "a stage of query `{}` is not one `$stage` mapping",
                            name.value
                        ))
                        .at(&stage.referenced, "expected e.g. `{ $match: { ... } }`"),
                ),
            }
        }
        Some(Operation::Aggregate(stages.value))
    } else if let Some(update) = raw.update {
        let (at, update) = (update.referenced, update.value);
        let filter = required(source, problems, update.filter, "filter", &name.value, &at);
        let filter = filter.and_then(|f| mapping(problems, Some(f), "filter"));
        let changes = required(source, problems, update.update, "update", &name.value, &at);
        let changes = changes.and_then(|c| mapping(problems, Some(c), "update"));
        if let Some(changes) = &changes {
            for (key, _) in changes.value.entries().unwrap_or_default() {
                if !key.value.starts_with('$') {
                    problems.push(
                        source
                            .problem(format!(
                                "`update` of query `{}` replaces the document",
                                name.value
                            ))
                            .at(&key.referenced, "a field, not an update operator")
                            .help("write the change with operators, e.g. `update: { $set: { title: ... }, $inc: { helpful_votes: 1 } }`"),
                    );
                    break;
                }
            }
        }
        match (filter, changes) {
            (Some(filter), Some(changes)) => Some(Operation::Update {
                filter,
                update: changes,
                many: update.many.unwrap_or(false),
            }),
            _ => None,
        }
    } else if let Some(delete) = raw.delete {
        let (at, delete) = (delete.referenced, delete.value);
        let filter = required(source, problems, delete.filter, "filter", &name.value, &at);
        filter
            .and_then(|f| mapping(problems, Some(f), "filter"))
            .map(|filter| Operation::Delete {
                filter,
                many: delete.many.unwrap_or(false),
            })
    } else {
        None
    };
    if problems.len() > before {
        return None;
    }
    Some(NamedQuery {
        name,
        description,
        collection: collection?,
        operation: operation?,
    })
}

fn required(
    source: &Source,
    problems: &mut Vec<Problem>,
    node: Option<Spanned<Node>>,
    key: &str,
    query: &str,
    at: &Location,
) -> Option<Spanned<Node>> {
    if node.is_none() {
        let help = if key == "filter" {
            "write `filter: {}` to mean every document"
        } else {
            "e.g. `update: { $set: { active: false } }`"
        };
        problems.push(
            source
                .problem(format!("query `{query}` has no `{key}`"))
                .at(at, format!("add `{key}:` here"))
                .help(help),
        );
    }
    node
}

/// `limit` / `skip`: a whole number, 0 or more.
fn count_of(
    source: &Source,
    problems: &mut Vec<Problem>,
    node: Option<Spanned<Node>>,
    key: &str,
    query: &str,
) -> Option<i64> {
    let node = node?;
    match node.value {
        Node::Int(n) if n >= 0 => Some(n),
        _ => {
            problems.push(
                source
                    .problem(format!("`{key}` of query `{query}` is not a whole number"))
                    .at(&node.referenced, "expected 0 or more, e.g. `10`"),
            );
            None
        }
    }
}

/// Why a folder of named queries could not be loaded.
#[derive(Debug, Error, Diagnostic)]
pub enum QueryError {
    #[error("cannot read named queries at `{}`", path.display())]
    #[diagnostic(code(dbtopo::mongo::queries_read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("named queries in `{dir}` are not valid: {}", count(problems.len()))]
    #[diagnostic(code(dbtopo::mongo::queries_invalid))]
    Invalid {
        dir: String,
        #[related]
        problems: Vec<Problem>,
    },
}

impl QueryError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            QueryError::Read { .. } => &[],
            QueryError::Invalid { problems, .. } => problems,
        }
    }
}

/// The folder of named queries of a collections folder: its `queries` subfolder.
pub fn queries_dir(collections: &Path) -> PathBuf {
    collections.join("queries")
}

/// Every `*.yaml` file of `path` (none when the folder does not exist), in name order; `shown`
/// names the folder in snippets. A name given twice, in one file or two, is a problem.
pub fn load_queries(path: &Path, shown: &str) -> Result<Vec<QueryFile>, QueryError> {
    if !path.is_dir() {
        return Ok(Vec::new());
    }
    let read_error = |source| QueryError::Read {
        path: path.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut texts = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| QueryError::Read {
            path: path.clone(),
            source,
        })?;
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        texts.push((format!("{}/{file_name}", shown.trim_end_matches('/')), text));
    }
    parse_all(shown, &texts)
}

/// The files `(shown name, text)` of one folder, parsed; every problem of every file at once.
pub fn parse_all(dir: &str, texts: &[(String, String)]) -> Result<Vec<QueryFile>, QueryError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for (shown, text) in texts {
        match parse_queries(shown, text) {
            Ok(file) => files.push(file),
            Err(mut found) => problems.append(&mut found),
        }
    }
    let mut seen: Vec<(&QueryFile, &NamedQuery)> = Vec::new();
    for file in &files {
        for query in &file.queries {
            if let Some((first_file, first)) =
                seen.iter().find(|(_, q)| q.name.value == query.name.value)
            {
                let mut problem = file
                    .problem(format!("query `{}` is declared twice", query.name.value))
                    .at(&query.name.referenced, "declared again here");
                problem = if std::ptr::eq(*first_file, file) {
                    problem.also(&first.name.referenced, "first declared here")
                } else {
                    problem.help(format!(
                        "it is first declared in {}",
                        first_file.source.name()
                    ))
                };
                problems.push(problem);
            } else {
                seen.push((file, query));
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(QueryError::Invalid {
            dir: dir.to_owned(),
            problems,
        })
    }
}

/// A document given on the command line (JSON, which is YAML), with places for the check:
/// `shown` names it in snippets (`--filter`). It must be a mapping.
pub(crate) fn parse_node(shown: &str, text: &str) -> Result<(Source, Spanned<Node>), Problem> {
    let source = Source::new(shown, text, QUERIES);
    match serde_saphyr::from_str::<Spanned<Node>>(text) {
        Ok(node) if node.value.entries().is_some() => Ok((source, node)),
        Ok(node) => Err(source
            .problem(format!("{shown} is not a JSON object"))
            .at(&node.referenced, "expected an object, e.g. {\"rating\": 5}")),
        Err(err) => Err(source.yaml_error(&err)),
    }
}
