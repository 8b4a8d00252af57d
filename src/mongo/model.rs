//! Collections and indexes, as a manifest declares them and as a replica set reports them
//! (the same types, so the diff compares like with like).

use bson::Document;
use serde::Serialize;

/// A collection and its validation rules and indexes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    pub name: String,
    /// The `validator` option (`{ $jsonSchema: ... }`), when there is one.
    pub validator: Option<Document>,
    /// `strict` (MongoDB's default), `moderate` or `off`.
    pub validation_level: String,
    /// `error` (MongoDB's default) or `warn`.
    pub validation_action: String,
    /// The indexes, without the implicit `_id_`.
    pub indexes: Vec<MongoIndex>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MongoIndex {
    pub name: String,
    /// Field → 1, -1 or an index type (`"text"`, `"2dsphere"`, `"hashed"`), in order.
    pub key: Document,
    pub unique: bool,
    /// `partialFilterExpression`.
    pub partial_filter: Option<Document>,
    /// `expireAfterSeconds` of a TTL index.
    pub expire_after_seconds: Option<i64>,
}
