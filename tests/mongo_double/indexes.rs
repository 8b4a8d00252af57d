//! Indexes: `createIndexes`, `listIndexes`, `dropIndexes`, with mongod's rules for when a
//! requested index conflicts with an existing one, and unique indexes enforced on inserts.

use mongodb::bson::{Bson, Document, doc};

use super::collections::{cursor_reply, target};
use super::commands::{CommandError, CommandResult, integer, require_primary, require_readable};
use super::matcher::{lookup, matches, values_equal};
use super::state::{Collection, State};

/// The index specification fields mongod accepts.
const INDEX_OPTIONS: &[&str] = &[
    "key",
    "name",
    "v",
    "unique",
    "partialFilterExpression",
    "expireAfterSeconds",
    "sparse",
    "hidden",
    "collation",
    "background",
    "weights",
    "default_language",
    "language_override",
    "textIndexVersion",
    "2dsphereIndexVersion",
    "bits",
    "min",
    "max",
    "wildcardProjection",
    "storageEngine",
    "ns",
];
/// Options that make two indexes on the same key different indexes rather than one index
/// asked for twice.
const DISTINGUISHING_OPTIONS: &[&str] = &["partialFilterExpression", "collation"];
const KEY_TYPES: &[&str] = &["text", "2d", "2dsphere", "hashed", "columnstore"];

pub fn find_index(collection: &Collection, key: &Bson) -> Option<usize> {
    collection.indexes.iter().position(|index| {
        index
            .get("key")
            .is_some_and(|existing| values_equal(existing, key))
    })
}

fn specification_error(code: i32, spec: &Document, reason: &str) -> CommandError {
    CommandError::new(
        code,
        format!("Error in specification {spec} :: caused by :: {reason}"),
    )
}

/// Checks a requested specification and returns it as `listIndexes` will report it.
fn normalize(spec: &Document) -> Result<Document, CommandError> {
    let key = match spec.get("key") {
        Some(Bson::Document(key)) => key,
        _ => {
            return Err(specification_error(
                9,
                spec,
                "The 'key' field is a required property of an index specification",
            ));
        }
    };
    if key.is_empty() {
        return Err(specification_error(67, spec, "Index keys cannot be empty."));
    }
    for (_, direction) in key {
        let valid = match direction {
            Bson::String(kind) => KEY_TYPES.contains(&kind.as_str()),
            other => {
                integer(other).is_some_and(|number| number != 0)
                    || matches!(other, Bson::Double(d) if *d != 0.0)
            }
        };
        if !valid {
            return Err(specification_error(
                67,
                spec,
                &format!("Values in the index key pattern can't be {direction}"),
            ));
        }
    }
    let Ok(name) = spec.get_str("name") else {
        return Err(specification_error(
            9,
            spec,
            "The 'name' field is a required property of an index specification",
        ));
    };
    if let Some(unknown) = spec
        .keys()
        .find(|field| !INDEX_OPTIONS.contains(&field.as_str()))
    {
        return Err(CommandError::new(
            197,
            format!(
                "The field '{unknown}' is not valid for an index specification. Specification: {spec}"
            ),
        ));
    }
    let mut normalized = doc! { "v": 2, "key": key.clone(), "name": name };
    for (field, value) in spec {
        if !matches!(field.as_str(), "key" | "name" | "v" | "background" | "ns") {
            normalized.insert(field.clone(), value.clone());
        }
    }
    Ok(normalized)
}

fn without_name(index: &Document) -> Document {
    index
        .iter()
        .filter(|(field, _)| field.as_str() != "name")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn same(left: &Document, right: &Document) -> bool {
    values_equal(
        &Bson::Document(left.clone()),
        &Bson::Document(right.clone()),
    )
}

/// What to do with one requested index, given the existing ones.
enum Request {
    AlreadyExists,
    Build(Document),
}

fn compare_with_existing(
    collection: &Collection,
    requested: Document,
) -> Result<Request, CommandError> {
    let name = requested.get_str("name").unwrap_or_default();
    let key = requested.get("key").cloned().unwrap_or(Bson::Null);
    for existing in &collection.indexes {
        let same_key = existing
            .get("key")
            .is_some_and(|existing_key| values_equal(existing_key, &key));
        if existing.get_str("name") == Ok(name) {
            if !same_key {
                return Err(CommandError::new(
                    86,
                    format!(
                        "An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: {requested}, existing index: {existing}"
                    ),
                ));
            }
            if same(existing, &requested) {
                return Ok(Request::AlreadyExists);
            }
            return Err(CommandError::new(
                85,
                format!(
                    "An equivalent index already exists with the same name but different options. Requested index: {requested}, existing index: {existing}"
                ),
            ));
        }
        let equivalent = same_key
            && DISTINGUISHING_OPTIONS.iter().all(|option| {
                match (existing.get(*option), requested.get(*option)) {
                    (Some(left), Some(right)) => values_equal(left, right),
                    (left, right) => left.is_none() && right.is_none(),
                }
            });
        if equivalent {
            let existing_name = existing.get_str("name").unwrap_or_default();
            if same(&without_name(existing), &without_name(&requested)) {
                return Err(CommandError::new(
                    85,
                    format!("Index already exists with a different name: {existing_name}"),
                ));
            }
            return Err(CommandError::new(
                85,
                format!(
                    "An equivalent index already exists with a different name and options. Requested index: {requested}, existing index: {existing}"
                ),
            ));
        }
    }
    Ok(Request::Build(requested))
}

pub fn create_indexes(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("createIndexes", database, body)?;
    let Some(Bson::Array(specs)) = body.get("indexes") else {
        return Err(CommandError::new(
            40414,
            "BSON field 'createIndexes.indexes' is missing but a required field",
        ));
    };
    require_primary(state)?;
    let mut normalized = Vec::with_capacity(specs.len());
    for spec in specs {
        let Bson::Document(spec) = spec else {
            return Err(CommandError::new(
                14,
                "BSON field 'createIndexes.indexes' entries must be objects",
            ));
        };
        normalized.push(normalize(spec)?);
    }
    let created_automatically = !state.collections.contains_key(&namespace);
    let mut collection = state
        .collections
        .get(&namespace)
        .cloned()
        .unwrap_or_else(Collection::new);
    let before = collection.indexes.len() as i32;
    // All or nothing: the state changes only once every requested index is accepted.
    for requested in normalized {
        if let Request::Build(index) = compare_with_existing(&collection, requested)? {
            if let Some(key_value) = duplicate_key(&index, &collection.documents)? {
                return Err(CommandError::new(
                    11000,
                    format!(
                        "Index build failed: E11000 duplicate key error collection: {namespace} index: {} dup key: {key_value}",
                        index.get_str("name").unwrap_or_default()
                    ),
                ));
            }
            collection.indexes.push(index);
        }
    }
    let after = collection.indexes.len() as i32;
    let reply = if after == before && !created_automatically {
        doc! { "numIndexesBefore": before, "numIndexesAfter": after, "note": "all indexes already exist" }
    } else {
        doc! {
            "numIndexesBefore": before,
            "numIndexesAfter": after,
            "createdCollectionAutomatically": created_automatically,
            "commitQuorum": "votingMembers",
        }
    };
    state.collections.insert(namespace, collection);
    Ok(reply)
}

pub fn list_indexes(state: &State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("listIndexes", database, body)?;
    require_readable(state, body)?;
    let Some(collection) = state.collections.get(&namespace) else {
        return Err(CommandError::new(
            26,
            format!("ns does not exist: {namespace}"),
        ));
    };
    Ok(cursor_reply(namespace, collection.indexes.clone()))
}

pub fn drop_indexes(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("dropIndexes", database, body)?;
    let Some(wanted) = body.get("index").cloned() else {
        return Err(CommandError::new(
            40414,
            "BSON field 'dropIndexes.index' is missing but a required field",
        ));
    };
    require_primary(state)?;
    let Some(collection) = state.collections.get_mut(&namespace) else {
        return Err(CommandError::new(26, format!("ns not found {namespace}")));
    };
    let was = collection.indexes.len() as i32;
    let position_of_name = |collection: &Collection, name: &str| -> Result<usize, CommandError> {
        if name == "_id_" {
            return Err(CommandError::new(72, "cannot drop _id index"));
        }
        collection
            .indexes
            .iter()
            .position(|index| index.get_str("name") == Ok(name))
            .ok_or_else(|| CommandError::new(27, format!("index not found with name [{name}]")))
    };
    let mut reply = doc! { "nIndexesWas": was };
    let doomed: Vec<usize> = match &wanted {
        Bson::String(all) if all == "*" => {
            reply.insert("msg", "non-_id indexes dropped for collection");
            (1..collection.indexes.len()).collect()
        }
        Bson::String(name) => vec![position_of_name(collection, name)?],
        Bson::Array(names) => {
            let mut positions = Vec::new();
            for name in names {
                positions.push(position_of_name(
                    collection,
                    name.as_str().unwrap_or_default(),
                )?);
            }
            positions
        }
        Bson::Document(key) => {
            let position = find_index(collection, &wanted).ok_or_else(|| {
                CommandError::new(27, format!("can't find index with key: {key}"))
            })?;
            if collection.indexes[position].get_str("name") == Ok("_id_") {
                return Err(CommandError::new(72, "cannot drop _id index"));
            }
            vec![position]
        }
        _ => {
            return Err(CommandError::new(
                14,
                "BSON field 'dropIndexes.index' is the wrong type",
            ));
        }
    };
    let mut position = 0;
    collection.indexes.retain(|_| {
        position += 1;
        !doomed.contains(&(position - 1))
    });
    Ok(reply)
}

/// The first unique index (`_id_` included) that `candidate` would duplicate a key of among
/// the collection's documents, and the duplicated key value.
pub fn unique_violation(
    collection: &Collection,
    candidate: &Document,
) -> Result<Option<(Document, Document)>, CommandError> {
    for index in &collection.indexes {
        if !is_unique(index) || !covered(index, candidate)? {
            continue;
        }
        let key_value = index_key(index, candidate);
        for existing in &collection.documents {
            if covered(index, existing)? && same(&index_key(index, existing), &key_value) {
                return Ok(Some((index.clone(), key_value)));
            }
        }
    }
    Ok(None)
}

fn is_unique(index: &Document) -> bool {
    index.get_str("name") == Ok("_id_") || index.get_bool("unique").unwrap_or(false)
}

/// A key value that two of `documents` share in a new unique index, which fails its build.
fn duplicate_key(
    index: &Document,
    documents: &[Document],
) -> Result<Option<Document>, CommandError> {
    if !is_unique(index) {
        return Ok(None);
    }
    let mut keys: Vec<Document> = Vec::new();
    for document in documents {
        if !covered(index, document)? {
            continue;
        }
        let key_value = index_key(index, document);
        if keys.iter().any(|seen| same(seen, &key_value)) {
            return Ok(Some(key_value));
        }
        keys.push(key_value);
    }
    Ok(None)
}

/// Whether a document has an entry in the index: partial indexes hold the documents that
/// match their filter, sparse ones those that have a key field.
fn covered(index: &Document, document: &Document) -> Result<bool, CommandError> {
    if let Ok(filter) = index.get_document("partialFilterExpression")
        && !matches(document, filter)?
    {
        return Ok(false);
    }
    if index.get_bool("sparse").unwrap_or(false) {
        let key = index.get_document("key").cloned().unwrap_or_default();
        return Ok(key.keys().any(|field| lookup(document, field).is_some()));
    }
    Ok(true)
}

fn index_key(index: &Document, document: &Document) -> Document {
    let key = index.get_document("key").cloned().unwrap_or_default();
    key.keys()
        .map(|field| {
            (
                field.clone(),
                lookup(document, field).cloned().unwrap_or(Bson::Null),
            )
        })
        .collect()
}
