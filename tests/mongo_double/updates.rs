//! The `update` command with the operators dbtopo's named queries and `dbtopo mongo update`
//! send: `$set`, `$inc` and `$unset`, on top-level or dotted paths, one document or all
//! (`multi`), as mongod 7.0 answers: `n` matched, `nModified` changed, per-statement failures
//! in `writeErrors` (the command itself succeeds), unique indexes enforced on the result.
//!
//! Not done (refused with BadValue, never answered wrongly): replacement documents,
//! pipeline updates, `upsert: true`, `arrayFilters`, positional paths (`a.$`), the other
//! operators. Paths through arrays (`tags.0`) are refused the same way.

use mongodb::bson::{Bson, Document, doc};

use super::collections::{documents_field, target};
use super::commands::{CommandError, CommandResult, integer, require_primary, type_name};
use super::indexes::unique_violation;
use super::matcher::{matches, values_equal};
use super::state::State;

const OPERATORS: &[&str] = &["$set", "$inc", "$unset"];

fn unsupported(what: &str) -> CommandError {
    CommandError::new(
        2,
        format!("{what} is not supported by the MongoDB test double"),
    )
}

pub fn update(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let (_, namespace) = target("update", database, body)?;
    let statements = documents_field("update", "updates", body)?;
    require_primary(state)?;
    let ordered = body.get_bool("ordered").unwrap_or(true);
    let mut matched = 0;
    let mut modified = 0;
    let mut write_errors = Vec::new();
    for (position, statement) in statements.into_iter().enumerate() {
        match run_statement(state, &namespace, statement) {
            Ok((n, changed)) => {
                matched += n;
                modified += changed;
            }
            Err(error) => {
                // A statement the double does not implement fails the whole command.
                if error.code == 2 && error.errmsg.contains("test double") {
                    return Err(error);
                }
                write_errors.push(doc! {
                    "index": position as i32,
                    "code": error.code,
                    "errmsg": error.errmsg,
                });
                if ordered {
                    break;
                }
            }
        }
    }
    let mut reply = doc! { "n": matched, "nModified": modified };
    if !write_errors.is_empty() {
        reply.insert("writeErrors", write_errors);
    }
    Ok(reply)
}

/// One `{q, u, multi}`: how many documents matched, and how many changed.
fn run_statement(
    state: &mut State,
    namespace: &str,
    statement: &Document,
) -> Result<(i32, i32), CommandError> {
    if statement.get_bool("upsert").unwrap_or(false) {
        return Err(unsupported("upsert"));
    }
    if statement.contains_key("arrayFilters") {
        return Err(unsupported("arrayFilters"));
    }
    let filter = statement.get_document("q").cloned().unwrap_or_default();
    let update = match statement.get("u") {
        Some(Bson::Document(update)) => update.clone(),
        Some(Bson::Array(_)) => return Err(unsupported("a pipeline update")),
        _ => {
            return Err(CommandError::new(
                40414,
                "BSON field 'update.updates.u' is missing but a required field",
            ));
        }
    };
    let changes = parse_update(&update)?;
    let multi = statement.get_bool("multi").unwrap_or(false);
    let Some(collection) = state.collections.get_mut(namespace) else {
        return Ok((0, 0));
    };
    let (mut matched, mut changed) = (0, 0);
    for position in 0..collection.documents.len() {
        if !matches(&collection.documents[position], &filter)? {
            continue;
        }
        matched += 1;
        let before = collection.documents[position].clone();
        let mut after = before.clone();
        for change in &changes {
            apply(&mut after, change)?;
        }
        if !values_equal(
            before.get("_id").unwrap_or(&Bson::Null),
            after.get("_id").unwrap_or(&Bson::Null),
        ) {
            return Err(CommandError::new(
                66,
                "Performing an update on the path '_id' would modify the immutable field '_id'",
            ));
        }
        if after != before {
            // The unique indexes, against every other document.
            let original = collection.documents.remove(position);
            let violation = unique_violation(collection, &after);
            collection.documents.insert(position, original);
            if let Some((index, key_value)) = violation? {
                return Err(CommandError::new(
                    11000,
                    format!(
                        "E11000 duplicate key error collection: {namespace} index: {} dup key: {key_value}",
                        index.get_str("name").unwrap_or_default()
                    ),
                ));
            }
            collection.documents[position] = after;
            changed += 1;
        }
        if !multi {
            break;
        }
    }
    Ok((matched, changed))
}

/// One operator applied to one path.
struct Change {
    operator: String,
    path: String,
    operand: Bson,
}

fn parse_update(update: &Document) -> Result<Vec<Change>, CommandError> {
    if update
        .keys()
        .next()
        .is_some_and(|key| !key.starts_with('$'))
    {
        return Err(unsupported("a replacement document"));
    }
    let mut changes: Vec<Change> = Vec::new();
    for (operator, fields) in update {
        if !operator.starts_with('$') {
            return Err(CommandError::new(
                9,
                format!(
                    "Unknown modifier: {operator}. Expected a valid update modifier or pipeline-style update specified as an array"
                ),
            ));
        }
        if !OPERATORS.contains(&operator.as_str()) {
            return Err(unsupported(&format!("the update operator {operator}")));
        }
        let Bson::Document(fields) = fields else {
            return Err(CommandError::new(
                9,
                format!(
                    "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{operator}: {fields}}}",
                    type_name(fields)
                ),
            ));
        };
        for (path, operand) in fields {
            if path.split('.').any(|part| {
                part.is_empty() || part.starts_with('$') || part.chars().all(|c| c.is_ascii_digit())
            }) {
                return Err(unsupported(&format!("the path '{path}'")));
            }
            if operator == "$inc"
                && integer(operand).is_none()
                && !matches!(operand, Bson::Double(_))
            {
                return Err(CommandError::new(
                    14,
                    format!("Cannot increment with non-numeric argument: {{{path}: {operand}}}"),
                ));
            }
            // Two operators on one path, or on a path and one below it.
            if let Some(other) = changes.iter().find(|c| {
                c.path == *path
                    || path.starts_with(&format!("{}.", c.path))
                    || c.path.starts_with(&format!("{path}."))
            }) {
                return Err(CommandError::new(
                    40,
                    format!(
                        "Updating the path '{path}' would create a conflict at '{}'",
                        if other.path.len() < path.len() {
                            &other.path
                        } else {
                            path
                        }
                    ),
                ));
            }
            changes.push(Change {
                operator: operator.clone(),
                path: path.clone(),
                operand: operand.clone(),
            });
        }
    }
    Ok(changes)
}

fn apply(document: &mut Document, change: &Change) -> Result<(), CommandError> {
    let parts: Vec<&str> = change.path.split('.').collect();
    let (last, parents) = parts.split_last().expect("a path has a part");
    let id = document.get("_id").cloned().unwrap_or(Bson::Null);
    // Walk to the parent, creating missing documents for $set and $inc.
    let mut here = document;
    for (depth, part) in parents.iter().enumerate() {
        if !here.contains_key(*part) {
            if change.operator == "$unset" {
                return Ok(());
            }
            here.insert(*part, Document::new());
        }
        let shown = here.get(*part).cloned().unwrap_or(Bson::Null);
        match here.get_mut(*part) {
            Some(Bson::Document(next)) => here = next,
            _ if change.operator == "$unset" => return Ok(()),
            _ => {
                return Err(CommandError::new(
                    28,
                    format!(
                        "Cannot create field '{}' in element {{{part}: {shown}}}",
                        parts[depth + 1]
                    ),
                ));
            }
        }
    }
    match change.operator.as_str() {
        "$set" => {
            here.insert(*last, change.operand.clone());
        }
        "$unset" => {
            here.remove(*last);
        }
        "$inc" => {
            let sum = match here.get(*last) {
                None => change.operand.clone(),
                Some(current) => add(current, &change.operand).ok_or_else(|| {
                    CommandError::new(
                        14,
                        format!(
                            "Cannot apply $inc to a value of non-numeric type. {{_id: {id}}} has the field '{last}' of non-numeric type {}",
                            type_name(current)
                        ),
                    )
                })?,
            };
            here.insert(*last, sum);
        }
        _ => unreachable!("parse_update admits only OPERATORS"),
    }
    Ok(())
}

/// mongod's arithmetic: int + int stays int unless it overflows (then long), long + int or
/// long stays long (overflow fails as a double would not), anything with a double is double.
fn add(current: &Bson, operand: &Bson) -> Option<Bson> {
    Some(match (current, operand) {
        (Bson::Int32(a), Bson::Int32(b)) => a
            .checked_add(*b)
            .map_or(Bson::Int64(i64::from(*a) + i64::from(*b)), Bson::Int32),
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            Bson::Int64(integer(current)?.checked_add(integer(operand)?)?)
        }
        (Bson::Double(a), _) => Bson::Double(a + number(operand)?),
        (_, Bson::Double(b)) => Bson::Double(number(current)? + b),
        _ => return None,
    })
}

fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(v) => Some(f64::from(*v)),
        Bson::Int64(v) => Some(*v as f64),
        Bson::Double(v) => Some(*v),
        _ => None,
    }
}
