//! The offline check of named queries against their collections' `$jsonSchema`: every field
//! a filter, projection, sort, update operator or pipeline stage names must be one the schema
//! declares, else a problem points at it in the query's file (with "did you mean" when a
//! declared field is close). Pure: the queries and collections come in, problems go out.
//!
//! What the schema declares: `properties`, recursively; through an array, its `items`'
//! properties (MongoDB's dotted paths reach into arrays of documents); an `object` without
//! `properties` is free-form, so any path below it is accepted; `_id` is always there.
//! Numeric path parts (`images.0.url`) and positional ones (`$`, `$[]`) are skipped. A
//! collection without a `$jsonSchema` is not checked.
//!
//! Pipelines: `$match`, `$sort`, `$group`, `$project`, `$addFields`/`$set`, `$unwind`,
//! `$lookup` (its `localField`), `$count`, `$limit`, `$skip` and `$sample` are followed: field
//! references (`"$rating"`) are checked against the documents each stage receives, and
//! `$group` / `$project` / `$count` make new ones (their output fields). After any other stage
//! the shape is unknown and the rest of the pipeline is not checked.

use std::collections::BTreeMap;

use bson::{Bson, Document};
use serde_saphyr::Spanned;

use super::model::Collection;
use super::query::{NamedQuery, Node, Operation, QueryFile};
use crate::diagnostics::{Problem, Source, closest, did_you_mean};

/// The fields a schema declares at one level.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// Declared fields, each with what lies below it.
    Known(BTreeMap<String, Fields>),
    /// Free-form: any path below is accepted.
    Free,
    /// A value without fields (a string, a number, an array of them).
    Leaf,
}

impl Fields {
    /// The fields of a collection's validator, `None` when it has no `$jsonSchema`.
    pub fn of_collection(collection: &Collection) -> Option<Fields> {
        let schema = collection
            .validator
            .as_ref()?
            .get_document("$jsonSchema")
            .ok()?;
        let mut fields = Fields::of_schema(schema);
        if let Fields::Known(map) = &mut fields {
            map.entry("_id".to_owned()).or_insert(Fields::Free);
        }
        Some(fields)
    }

    fn of_schema(schema: &Document) -> Fields {
        if let Ok(properties) = schema.get_document("properties") {
            return Fields::Known(
                properties
                    .iter()
                    .map(|(name, sub)| {
                        let fields = match sub {
                            Bson::Document(sub) => Fields::of_schema(sub),
                            _ => Fields::Free,
                        };
                        (name.clone(), fields)
                    })
                    .collect(),
            );
        }
        if let Ok(items) = schema.get_document("items") {
            return Fields::of_schema(items);
        }
        let object = match schema.get("bsonType").or_else(|| schema.get("type")) {
            Some(Bson::String(t)) => t == "object",
            Some(Bson::Array(types)) => types.iter().any(|t| t.as_str() == Some("object")),
            // No type and no enum: anything, so anything below.
            None => !schema.contains_key("enum"),
            _ => false,
        };
        if object { Fields::Free } else { Fields::Leaf }
    }

    /// Whether `path` is declared; else the part that is not, and the names at that level.
    fn resolve<'a>(&'a self, path: &str) -> Result<(), Unknown<'a>> {
        let mut here = self;
        let mut walked = Vec::new();
        for part in path.split('.') {
            if part.is_empty() {
                break;
            }
            if part.chars().all(|c| c.is_ascii_digit()) || part.starts_with('$') {
                continue;
            }
            match here {
                Fields::Free => return Ok(()),
                Fields::Leaf => {
                    return Err(Unknown {
                        parent: Some(walked.join(".")),
                        candidates: Vec::new(),
                    });
                }
                Fields::Known(map) => match map.get(part) {
                    Some(next) => {
                        walked.push(part);
                        here = next;
                    }
                    None => {
                        return Err(Unknown {
                            parent: None,
                            candidates: map.keys().map(String::as_str).collect(),
                        });
                    }
                },
            }
        }
        Ok(())
    }
}

struct Unknown<'a> {
    /// The field the path goes below although it has no fields.
    parent: Option<String>,
    /// The fields declared where the path left them.
    candidates: Vec<&'a str>,
}

/// What a stage receives, and how messages name it.
#[derive(Debug, Clone)]
enum Shape {
    Known { fields: Fields, origin: String },
    Unknown,
}

const UPDATE_OPERATORS: &[&str] = &[
    "$set",
    "$inc",
    "$unset",
    "$min",
    "$max",
    "$mul",
    "$rename",
    "$setOnInsert",
    "$currentDate",
    "$push",
    "$addToSet",
    "$pull",
    "$pullAll",
    "$pop",
];

/// Every problem of every query of `files` against `collections`, in file order.
pub fn check_queries(files: &[QueryFile], collections: &[Collection]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for file in files {
        for query in &file.queries {
            problems.extend(check_query(file, query, collections));
        }
    }
    problems
}

/// The problems of one query.
pub fn check_query(
    file: &QueryFile,
    query: &NamedQuery,
    collections: &[Collection],
) -> Vec<Problem> {
    let mut cx = Checker {
        source: &file.source,
        problems: Vec::new(),
    };
    let name = &query.collection.value;
    let Some(collection) = collections.iter().find(|c| &c.name == name) else {
        let names: Vec<&str> = collections.iter().map(|c| c.name.as_str()).collect();
        cx.problems.push(
            file.problem(format!(
                "query `{}` names collection `{name}`, which no manifest declares",
                query.name.value
            ))
            .at(&query.collection.referenced, "no such collection")
            .help(format!(
                "{}collections: {}",
                did_you_mean(name, names.iter().copied()),
                names.join(", ")
            )),
        );
        return cx.problems;
    };
    let Some(fields) = Fields::of_collection(collection) else {
        return cx.problems;
    };
    let shape = Shape::Known {
        fields,
        origin: format!("the `$jsonSchema` of collection `{name}`"),
    };
    match &query.operation {
        Operation::Find {
            filter,
            projection,
            sort,
            ..
        } => {
            if let Some(filter) = filter {
                cx.filter(&shape, filter);
            }
            if let Some(projection) = projection {
                cx.projection(&shape, projection);
            }
            if let Some(sort) = sort {
                cx.keys(&shape, sort);
            }
        }
        Operation::Aggregate(stages) => cx.pipeline(shape, stages),
        Operation::Update { filter, update, .. } => {
            cx.filter(&shape, filter);
            cx.update(&shape, update);
        }
        Operation::Delete { filter, .. } => cx.filter(&shape, filter),
    }
    cx.problems
}

/// The problems of a filter (`what` = "filter") or an update (`what` = "update") given on the
/// command line, parsed from `source` with [`super::query::parse_node`].
pub(crate) fn check_document(
    source: &Source,
    node: &Spanned<Node>,
    update: bool,
    collection: &Collection,
) -> Vec<Problem> {
    let mut cx = Checker {
        source,
        problems: Vec::new(),
    };
    if let Some(fields) = Fields::of_collection(collection) {
        let shape = Shape::Known {
            fields,
            origin: format!("the `$jsonSchema` of collection `{}`", collection.name),
        };
        if update {
            cx.update(&shape, node);
        } else {
            cx.filter(&shape, node);
        }
    }
    cx.problems
}

struct Checker<'a> {
    source: &'a Source,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// `path`, written at `at`, must be declared in `shape`.
    fn path(&mut self, shape: &Shape, path: &str, at: &serde_saphyr::Location) {
        let Shape::Known { fields, origin } = shape else {
            return;
        };
        let Err(unknown) = fields.resolve(path) else {
            return;
        };
        let problem = match unknown.parent {
            Some(parent) => self
                .source
                .problem(format!(
                    "field `{path}` goes below `{parent}`, which has no fields in {origin}"
                ))
                .at(at, "not in the schema"),
            None => {
                let last = path.rsplit('.').next().unwrap_or(path);
                let mut problem = self
                    .source
                    .problem(format!("field `{path}` is not in {origin}"))
                    .at(at, "not in the schema");
                let near = closest(last, unknown.candidates.iter().copied());
                let listed = unknown.candidates.join(", ");
                problem = match near {
                    Some(near) => {
                        problem.help(format!("did you mean `{near}`? fields here: {listed}"))
                    }
                    None => problem.help(format!("fields here: {listed}")),
                };
                problem
            }
        };
        self.problems.push(problem);
    }

    fn filter(&mut self, shape: &Shape, filter: &Spanned<Node>) {
        for (key, value) in filter.value.entries().unwrap_or_default() {
            match key.value.as_str() {
                "$and" | "$or" | "$nor" => {
                    if let Node::Seq(clauses) = &value.value {
                        for clause in clauses {
                            self.filter(shape, clause);
                        }
                    }
                }
                "$expr" => self.references(shape, value),
                k if k.starts_with('$') => {}
                path => {
                    self.path(shape, path, &key.referenced);
                    // `{ images: { $elemMatch: { url: ... } } }`: paths below this one.
                    for (operator, operand) in value.value.entries().unwrap_or_default() {
                        if operator.value == "$elemMatch" {
                            for (sub, _) in operand.value.entries().unwrap_or_default() {
                                if !sub.value.starts_with('$') {
                                    let full = format!("{path}.{}", sub.value);
                                    self.path(shape, &full, &sub.referenced);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The keys of a sort (or any mapping of paths).
    fn keys(&mut self, shape: &Shape, mapping: &Spanned<Node>) {
        for (key, _) in mapping.value.entries().unwrap_or_default() {
            if !key.value.starts_with('$') {
                self.path(shape, &key.value, &key.referenced);
            }
        }
    }

    fn projection(&mut self, shape: &Shape, projection: &Spanned<Node>) {
        for (key, value) in projection.value.entries().unwrap_or_default() {
            if !key.value.starts_with('$') {
                self.path(shape, &key.value, &key.referenced);
            }
            self.references(shape, value);
        }
    }

    fn update(&mut self, shape: &Shape, update: &Spanned<Node>) {
        for (operator, fields) in update.value.entries().unwrap_or_default() {
            if !UPDATE_OPERATORS.contains(&operator.value.as_str()) {
                self.problems.push(
                    self.source
                        .problem(format!("unknown update operator `{}`", operator.value))
                        .at(&operator.referenced, "not an update operator")
                        .help(format!(
                            "{}update operators: {}",
                            did_you_mean(&operator.value, UPDATE_OPERATORS.iter().copied()),
                            UPDATE_OPERATORS.join(", ")
                        )),
                );
                continue;
            }
            self.keys(shape, fields);
            if operator.value == "$rename" {
                for (_, to) in fields.value.entries().unwrap_or_default() {
                    if let Node::Str(to_path) = &to.value {
                        self.path(shape, to_path, &to.referenced);
                    }
                }
            }
        }
    }

    /// Field references (`"$rating"`, not `"$$ROOT"`) anywhere in an expression.
    fn references(&mut self, shape: &Shape, node: &Spanned<Node>) {
        match &node.value {
            Node::Str(s) if s.starts_with('$') && !s.starts_with("$$") => {
                self.path(shape, &s[1..], &node.referenced);
            }
            Node::Seq(items) => {
                for item in items {
                    self.references(shape, item);
                }
            }
            Node::Map(entries) => {
                for (key, value) in entries {
                    if key.value != "$literal" {
                        self.references(shape, value);
                    }
                }
            }
            _ => {}
        }
    }

    fn pipeline(&mut self, mut shape: Shape, stages: &[Spanned<Node>]) {
        for stage in stages {
            let Some([(name, body)]) = stage.value.entries() else {
                return;
            };
            shape = match name.value.as_str() {
                "$match" => {
                    self.filter(&shape, body);
                    shape
                }
                "$sort" => {
                    self.keys(&shape, body);
                    shape
                }
                "$limit" | "$skip" | "$sample" => shape,
                "$unwind" => {
                    match body.value.entries() {
                        Some(entries) => {
                            for (key, value) in entries {
                                if key.value == "path" {
                                    self.references(&shape, value);
                                }
                            }
                        }
                        None => self.references(&shape, body),
                    }
                    shape
                }
                "$lookup" => {
                    let mut shape = shape;
                    for (key, value) in body.value.entries().unwrap_or_default() {
                        match (key.value.as_str(), &value.value) {
                            ("localField", Node::Str(path)) => {
                                self.path(&shape, path, &value.referenced)
                            }
                            ("as", Node::Str(field)) => add_field(&mut shape, field),
                            _ => {}
                        }
                    }
                    shape
                }
                "$addFields" | "$set" => {
                    let mut shape = shape;
                    for (key, value) in body.value.entries().unwrap_or_default() {
                        self.references(&shape, value);
                        add_field(&mut shape, &key.value);
                    }
                    shape
                }
                "$group" => {
                    let mut made = BTreeMap::new();
                    for (key, value) in body.value.entries().unwrap_or_default() {
                        self.references(&shape, value);
                        made.insert(key.value.clone(), Fields::Free);
                    }
                    Shape::Known {
                        fields: Fields::Known(made),
                        origin: format!(
                            "the output of the `$group` stage (line {})",
                            name.referenced.line()
                        ),
                    }
                }
                "$project" => self.project(&shape, name, body),
                "$count" => match &body.value {
                    Node::Str(field) => Shape::Known {
                        fields: Fields::Known(BTreeMap::from([(field.clone(), Fields::Leaf)])),
                        origin: "the output of the `$count` stage".to_owned(),
                    },
                    _ => Shape::Unknown,
                },
                _ => Shape::Unknown,
            };
        }
    }

    fn project(&mut self, shape: &Shape, name: &Spanned<String>, body: &Spanned<Node>) -> Shape {
        let excluded = |value: &Node| matches!(value, Node::Bool(false) | Node::Int(0));
        let mut made = BTreeMap::from([("_id".to_owned(), Fields::Free)]);
        let mut exclusion = false;
        for (key, value) in body.value.entries().unwrap_or_default() {
            if excluded(&value.value) {
                if key.value == "_id" {
                    made.remove("_id");
                } else {
                    exclusion = true;
                }
                self.path(shape, &key.value, &key.referenced);
                continue;
            }
            match &value.value {
                Node::Bool(true) | Node::Int(_) => self.path(shape, &key.value, &key.referenced),
                _ => self.references(shape, value),
            }
            let top = key.value.split('.').next().unwrap_or_default().to_owned();
            made.insert(top, Fields::Free);
        }
        if exclusion {
            return Shape::Unknown;
        }
        Shape::Known {
            fields: Fields::Known(made),
            origin: format!(
                "the output of the `$project` stage (line {})",
                name.referenced.line()
            ),
        }
    }
}

fn add_field(shape: &mut Shape, field: &str) {
    if let Shape::Known {
        fields: Fields::Known(map),
        ..
    } = shape
    {
        let top = field.split('.').next().unwrap_or_default().to_owned();
        map.entry(top).or_insert(Fields::Free);
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
