//! Collections and their documents: `create`, `collMod`, `listCollections`, `drop`,
//! `insert`, `find`, `delete`. Options are kept as given and reported by
//! `listCollections`; validators are not enforced on writes.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document, doc};

use super::commands::{
    CommandError, CommandResult, GENERIC_ARGUMENTS, integer, require_primary, require_readable,
    type_name,
};
use super::indexes::{find_index, unique_violation};
use super::matcher::{lookup, matches};
use super::state::{Collection, State};

/// The options of `create` mongod knows; the double interprets the validation ones and keeps
/// the others as given.
const CREATE_OPTIONS: &[&str] = &[
    "validator",
    "validationLevel",
    "validationAction",
    "capped",
    "size",
    "max",
    "collation",
    "timeseries",
    "expireAfterSeconds",
    "clusteredIndex",
    "changeStreamPreAndPostImages",
    "storageEngine",
    "indexOptionDefaults",
    "viewOn",
    "pipeline",
    "encryptedFields",
    "idIndex",
];
const COLL_MOD_OPTIONS: &[&str] = &["validator", "validationLevel", "validationAction", "index"];
const VALIDATION_LEVELS: &[&str] = &["off", "strict", "moderate"];
const VALIDATION_ACTIONS: &[&str] = &["error", "warn"];

/// The collection a command names, and its namespace `db.collection`.
pub fn target(
    command: &str,
    database: &str,
    body: &Document,
) -> Result<(String, String), CommandError> {
    match body.get(command) {
        Some(Bson::String(name))
            if !name.is_empty() && !name.contains('$') && !name.contains('\0') =>
        {
            Ok((name.clone(), format!("{database}.{name}")))
        }
        Some(Bson::String(name)) => Err(CommandError::new(
            73,
            format!("Invalid namespace specified '{database}.{name}'"),
        )),
        Some(other) => Err(CommandError::new(
            73,
            format!("collection name has invalid type {}", type_name(other)),
        )),
        None => Err(CommandError::new(
            73,
            format!("Invalid namespace specified '{database}.'"),
        )),
    }
}

/// mongod's IDL parsers refuse fields they do not know.
pub fn reject_unknown_fields(
    command: &str,
    body: &Document,
    known: &[&str],
) -> Result<(), CommandError> {
    for key in body.keys().skip(1) {
        if !known.contains(&key.as_str()) && !GENERIC_ARGUMENTS.contains(&key.as_str()) {
            return Err(CommandError::new(
                40415,
                format!("BSON field '{command}.{key}' is an unknown field."),
            ));
        }
    }
    Ok(())
}

fn check_validation_options(command: &str, body: &Document) -> Result<(), CommandError> {
    if let Some(validator) = body.get("validator")
        && !matches!(validator, Bson::Document(_))
    {
        return Err(CommandError::new(
            14,
            format!(
                "BSON field '{command}.validator' is the wrong type '{}', expected type 'object'",
                type_name(validator)
            ),
        ));
    }
    for (field, allowed) in [
        ("validationLevel", VALIDATION_LEVELS),
        ("validationAction", VALIDATION_ACTIONS),
    ] {
        if let Some(value) = body.get(field)
            && !value.as_str().is_some_and(|value| allowed.contains(&value))
        {
            return Err(CommandError::new(
                2,
                format!(
                    "Enumeration value '{}' for field '{command}.{field}' is not a valid value.",
                    value.as_str().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// The options a command gives, in its order, without the command key and generic fields.
fn given_options(body: &Document) -> Document {
    body.iter()
        .skip(1)
        .filter(|(key, _)| !GENERIC_ARGUMENTS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

pub fn create(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("create", database, body)?;
    reject_unknown_fields("create", body, CREATE_OPTIONS)?;
    check_validation_options("create", body)?;
    require_primary(state)?;
    let options = given_options(body);
    if let Some(existing) = state.collections.get(&namespace) {
        // Since 7.0 mongod accepts a create that repeats the existing options.
        if super::matcher::values_equal(
            &Bson::Document(existing.options.clone()),
            &Bson::Document(options),
        ) {
            return Ok(Document::new());
        }
        return Err(CommandError::new(
            48,
            format!(
                "namespace {namespace} already exists, but with different options: {}",
                existing.options
            ),
        ));
    }
    let mut collection = Collection::new();
    collection.options = options;
    state.collections.insert(namespace, collection);
    Ok(Document::new())
}

pub fn coll_mod(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("collMod", database, body)?;
    reject_unknown_fields("collMod", body, COLL_MOD_OPTIONS)?;
    check_validation_options("collMod", body)?;
    require_primary(state)?;
    let Some(collection) = state.collections.get_mut(&namespace) else {
        return Err(CommandError::new(26, "ns does not exist"));
    };
    let mut reply = Document::new();
    if let Ok(index_change) = body.get_document("index") {
        reply = modify_index(collection, &namespace, index_change)?;
    }
    for field in ["validator", "validationLevel", "validationAction"] {
        if let Some(value) = body.get(field) {
            collection.options.insert(field, value.clone());
        }
    }
    Ok(reply)
}

/// collMod's `index: {name | keyPattern, expireAfterSeconds?, hidden?}`.
fn modify_index(collection: &mut Collection, namespace: &str, change: &Document) -> CommandResult {
    let position = match (change.get_str("name"), change.get_document("keyPattern")) {
        (Ok(name), _) => collection
            .indexes
            .iter()
            .position(|index| index.get_str("name") == Ok(name)),
        (_, Ok(key)) => find_index(collection, &Bson::Document(key.clone())),
        _ => {
            return Err(CommandError::new(
                2,
                "must specify either index name or key pattern",
            ));
        }
    };
    let Some(position) = position else {
        return Err(CommandError::new(
            27,
            format!("cannot find index {change} for ns {namespace}"),
        ));
    };
    let index = &mut collection.indexes[position];
    let mut reply = Document::new();
    for field in ["expireAfterSeconds", "hidden"] {
        if let Some(new_value) = change.get(field) {
            if let Some(old_value) = index.get(field) {
                reply.insert(format!("{field}_old"), old_value.clone());
            }
            reply.insert(format!("{field}_new"), new_value.clone());
            index.insert(field, new_value.clone());
        }
    }
    Ok(reply)
}

pub fn list_collections(state: &State, database: &str, body: &Document) -> CommandResult {
    require_readable(state, body)?;
    let filter = body.get_document("filter").cloned().unwrap_or_default();
    let name_only = body.get_bool("nameOnly").unwrap_or(false);
    let prefix = format!("{database}.");
    let mut batch = Vec::new();
    for (namespace, collection) in &state.collections {
        let Some(name) = namespace.strip_prefix(&prefix) else {
            continue;
        };
        let entry = doc! {
            "name": name,
            "type": "collection",
            "options": collection.options.clone(),
            "info": { "readOnly": false, "uuid": collection.uuid.clone() },
            "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
        };
        if matches(&entry, &filter)? {
            batch.push(if name_only {
                doc! { "name": name, "type": "collection" }
            } else {
                entry
            });
        }
    }
    Ok(cursor_reply(
        format!("{database}.$cmd.listCollections"),
        batch,
    ))
}

pub fn cursor_reply(namespace: String, batch: Vec<Document>) -> Document {
    doc! { "cursor": { "firstBatch": batch, "id": 0i64, "ns": namespace } }
}

pub fn drop(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("drop", database, body)?;
    require_primary(state)?;
    // Since 7.0 dropping a collection that does not exist succeeds.
    Ok(match state.collections.remove(&namespace) {
        Some(collection) => {
            doc! { "nIndexesWas": collection.indexes.len() as i32, "ns": namespace }
        }
        None => Document::new(),
    })
}

pub fn documents_field<'a>(
    command: &str,
    field: &str,
    body: &'a Document,
) -> Result<Vec<&'a Document>, CommandError> {
    let Some(Bson::Array(entries)) = body.get(field) else {
        return Err(CommandError::new(
            40414,
            format!("BSON field '{command}.{field}' is missing but a required field"),
        ));
    };
    entries
        .iter()
        .map(|entry| {
            entry.as_document().ok_or_else(|| {
                CommandError::new(
                    14,
                    format!("BSON field '{command}.{field}' entries must be objects"),
                )
            })
        })
        .collect()
}

pub fn insert(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("insert", database, body)?;
    let documents = documents_field("insert", "documents", body)?;
    require_primary(state)?;
    let ordered = body.get_bool("ordered").unwrap_or(true);
    let collection = state
        .collections
        .entry(namespace.clone())
        .or_insert_with(Collection::new);
    let mut inserted = 0;
    let mut write_errors = Vec::new();
    for (position, document) in documents.into_iter().enumerate() {
        let mut document = document.clone();
        if !document.contains_key("_id") {
            // mongod puts a generated _id first.
            let mut with_id = doc! { "_id": ObjectId::new() };
            with_id.extend(document);
            document = with_id;
        }
        if let Some((index, key_value)) = unique_violation(collection, &document)? {
            write_errors.push(doc! {
                "index": position as i32,
                "code": 11000,
                "keyPattern": index.get_document("key").cloned().unwrap_or_default(),
                "keyValue": key_value.clone(),
                "errmsg": format!(
                    "E11000 duplicate key error collection: {namespace} index: {} dup key: {key_value}",
                    index.get_str("name").unwrap_or_default()
                ),
            });
            if ordered {
                break;
            }
            continue;
        }
        collection.documents.push(document);
        inserted += 1;
    }
    let mut reply = doc! { "n": inserted };
    if !write_errors.is_empty() {
        reply.insert("writeErrors", write_errors);
    }
    Ok(reply)
}

pub fn find(state: &State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("find", database, body)?;
    require_readable(state, body)?;
    let filter = body.get_document("filter").cloned().unwrap_or_default();
    let mut found = Vec::new();
    for document in state
        .collections
        .get(&namespace)
        .map(|c| c.documents.as_slice())
        .unwrap_or_default()
    {
        if matches(document, &filter)? {
            found.push(document.clone());
        }
    }
    if let Ok(sort) = body.get_document("sort") {
        sort_documents(&mut found, sort);
    }
    let skip = body.get("skip").and_then(integer).unwrap_or(0).max(0) as usize;
    let limit = body
        .get("limit")
        .and_then(integer)
        .map(i64::unsigned_abs)
        .filter(|&limit| limit > 0);
    let projection = body.get_document("projection").ok();
    let batch = found
        .into_iter()
        .skip(skip)
        .take(limit.map_or(usize::MAX, |limit| limit as usize))
        .map(|document| {
            projection.map_or(document.clone(), |projection| {
                project(&document, projection)
            })
        })
        .collect();
    Ok(cursor_reply(namespace, batch))
}

/// Sorts by each field of `sort` in turn (1 ascending, -1 descending); values that do not
/// compare (missing, or of different kinds) keep their order.
fn sort_documents(documents: &mut [Document], sort: &Document) {
    documents.sort_by(|left, right| {
        for (field, direction) in sort {
            let ordering = match (lookup(left, field), lookup(right, field)) {
                (Some(left), Some(right)) => {
                    super::matcher::compare(left, right).unwrap_or(std::cmp::Ordering::Equal)
                }
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            let ordering = if integer(direction).unwrap_or(1) < 0 {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering.is_ne() {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    });
}

/// Top-level inclusion (`{a: 1}`, `_id` kept unless excluded) or exclusion (`{a: 0}`).
fn project(document: &Document, projection: &Document) -> Document {
    let included =
        |value: &Bson| !matches!(value, Bson::Boolean(false)) && integer(value) != Some(0);
    let inclusion = projection
        .iter()
        .any(|(field, value)| field != "_id" && included(value));
    document
        .iter()
        .filter(|(field, _)| match projection.get(field.as_str()) {
            Some(value) => included(value),
            None => !inclusion || field.as_str() == "_id",
        })
        .map(|(field, value)| (field.clone(), value.clone()))
        .collect()
}

pub fn delete(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("delete", database, body)?;
    let deletes = documents_field("delete", "deletes", body)?;
    require_primary(state)?;
    let mut removed = 0;
    if let Some(collection) = state.collections.get_mut(&namespace) {
        for statement in deletes {
            let filter = statement.get_document("q").cloned().unwrap_or_default();
            let just_one = statement.get("limit").and_then(integer) == Some(1);
            let mut position = 0;
            while position < collection.documents.len() {
                if matches(&collection.documents[position], &filter)? {
                    collection.documents.remove(position);
                    removed += 1;
                    if just_one {
                        break;
                    }
                } else {
                    position += 1;
                }
            }
        }
    }
    Ok(doc! { "n": removed })
}
