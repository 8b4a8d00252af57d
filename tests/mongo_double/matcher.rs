//! The part of MongoDB's query language the double evaluates, for `find`, `delete`,
//! `listCollections` filters and partial indexes: equality (an array field matches if any
//! element does, a missing field equals null), the comparison operators, `$exists`, and
//! `$and`/`$or`. Anything else is refused with BadValue rather than answered wrongly.

use std::cmp::Ordering;

use mongodb::bson::{Bson, Document};

use super::commands::CommandError;

/// The value at a dotted path of embedded documents, if any.
pub fn lookup<'a>(document: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut value = document.get(parts.next()?)?;
    for part in parts {
        value = value.as_document()?.get(part)?;
    }
    Some(value)
}

fn unsupported(what: &str) -> CommandError {
    CommandError::new(
        2,
        format!("{what} is not supported by the MongoDB test double"),
    )
}

pub fn matches(document: &Document, filter: &Document) -> Result<bool, CommandError> {
    for (key, condition) in filter {
        let matched = match key.as_str() {
            "$and" | "$or" => {
                let Bson::Array(clauses) = condition else {
                    return Err(CommandError::new(2, format!("{key} must be an array")));
                };
                let mut results = Vec::with_capacity(clauses.len());
                for clause in clauses {
                    let Bson::Document(clause) = clause else {
                        return Err(CommandError::new(
                            2,
                            format!("{key}/$or/$nor entries need to be full objects"),
                        ));
                    };
                    results.push(matches(document, clause)?);
                }
                if key == "$and" {
                    results.iter().all(|&r| r)
                } else {
                    results.iter().any(|&r| r)
                }
            }
            operator if operator.starts_with('$') => {
                return Err(unsupported(&format!("top level operator {operator}")));
            }
            path => field_matches(lookup(document, path), condition)?,
        };
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

fn field_matches(value: Option<&Bson>, condition: &Bson) -> Result<bool, CommandError> {
    let operators = match condition {
        Bson::Document(operators)
            if operators
                .keys()
                .next()
                .is_some_and(|key| key.starts_with('$')) =>
        {
            operators
        }
        _ => return Ok(equals_or_contains(value, condition)),
    };
    for (operator, operand) in operators {
        let matched = match operator.as_str() {
            "$eq" => equals_or_contains(value, operand),
            "$ne" => !equals_or_contains(value, operand),
            "$gt" => compares(value, operand, |ordering| ordering == Ordering::Greater),
            "$gte" => compares(value, operand, |ordering| ordering != Ordering::Less),
            "$lt" => compares(value, operand, |ordering| ordering == Ordering::Less),
            "$lte" => compares(value, operand, |ordering| ordering != Ordering::Greater),
            "$in" | "$nin" => {
                let Bson::Array(candidates) = operand else {
                    return Err(CommandError::new(2, format!("{operator} needs an array")));
                };
                let found = candidates
                    .iter()
                    .any(|candidate| equals_or_contains(value, candidate));
                found == (operator == "$in")
            }
            "$exists" => value.is_some() == truthy(operand),
            other => return Err(unsupported(&format!("operator {other}"))),
        };
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(flag) => *flag,
        Bson::Null => false,
        other => super::commands::integer(other).is_none_or(|number| number != 0),
    }
}

fn equals_or_contains(value: Option<&Bson>, wanted: &Bson) -> bool {
    match value {
        None => matches!(wanted, Bson::Null),
        Some(Bson::Array(elements)) if !matches!(wanted, Bson::Array(_)) => {
            elements.iter().any(|element| values_equal(element, wanted))
        }
        Some(value) => values_equal(value, wanted),
    }
}

fn compares(value: Option<&Bson>, operand: &Bson, accept: impl Fn(Ordering) -> bool) -> bool {
    let check = |value: &Bson| compare(value, operand).is_some_and(&accept);
    match value {
        None => false,
        Some(Bson::Array(elements)) => elements.iter().any(check),
        Some(value) => check(value),
    }
}

fn number(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(value) => Some(f64::from(*value)),
        Bson::Int64(value) => Some(*value as f64),
        Bson::Double(value) => Some(*value),
        _ => None,
    }
}

/// BSON equality as the server compares values: numbers by value whatever their type,
/// documents field by field in order.
pub fn values_equal(left: &Bson, right: &Bson) -> bool {
    match (left, right) {
        (Bson::Document(left), Bson::Document(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right.iter())
                    .all(|((left_key, left), (right_key, right))| {
                        left_key == right_key && values_equal(left, right)
                    })
        }
        (Bson::Array(left), Bson::Array(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right)
                    .all(|(left, right)| values_equal(left, right))
        }
        _ => match (number(left), number(right)) {
            (Some(left), Some(right)) => left == right,
            _ => left == right,
        },
    }
}

/// Order between values of one kind (numbers, strings, dates, object ids); other pairs are
/// not ordered and so match no comparison operator, as across BSON types in MongoDB.
pub fn compare(left: &Bson, right: &Bson) -> Option<Ordering> {
    match (left, right) {
        (Bson::String(left), Bson::String(right)) => Some(left.cmp(right)),
        (Bson::DateTime(left), Bson::DateTime(right)) => Some(left.cmp(right)),
        (Bson::ObjectId(left), Bson::ObjectId(right)) => Some(left.bytes().cmp(&right.bytes())),
        _ => number(left)?.partial_cmp(&number(right)?),
    }
}
