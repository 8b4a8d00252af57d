//! Collection manifests: one `<collection>.yaml` per collection in a replica set's
//! `collections` folder.
//!
//! ```yaml
//! validator:                  # optional, any query document, usually { $jsonSchema: ... }
//!   $jsonSchema: { bsonType: object, required: [sku] }
//! validation_level: strict    # strict (default) | moderate | off
//! validation_action: error    # error (default) | warn
//! indexes:
//!   - { name: sku_unique, key: { sku: 1 }, unique: true }
//!   - { name: category_price, key: { category: 1, price: -1 } }
//!   - { name: active_only, key: { updated_at: 1 }, partial: { active: { $eq: true } } }
//!   - { name: views_ttl, key: { viewed_at: 1 }, expire_after_seconds: 2592000 }
//! ```
//!
//! The free-form parts (validator, key, partial) become BSON documents in the file's key
//! order (a compound index's key order matters); integers become Int32 when they fit, as the
//! MongoDB shell writes them, else Int64. Every problem points into its file, and all the
//! problems of all the files are reported at once.

use std::fmt;
use std::path::PathBuf;

use bson::{Bson, Document};
use miette::{Diagnostic, Result};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use thiserror::Error;

use super::model::{Collection, MongoIndex};
use crate::diagnostics::{FileKind, Problem, Source, count, sort_by_position};
use crate::topology::CollectionsDir;

/// One problem in a collection manifest, rendered with the snippet it points at.
pub type ManifestProblem = Problem;

/// How YAML errors speak of a collection manifest.
const MANIFEST: FileKind = FileKind {
    document: "a collection manifest",
    bad_value: "invalid collection manifest",
};

const LEVELS: [&str; 3] = ["strict", "moderate", "off"];
const ACTIONS: [&str; 2] = ["error", "warn"];
const INDEX_TYPES: [&str; 4] = ["text", "2dsphere", "2d", "hashed"];
const KEY_HELP: &str = "each key field is 1 (ascending), -1 (descending) or an index type: \
    \"text\", \"2dsphere\", \"2d\" or \"hashed\", e.g. `key: { category: 1, price: -1 }`";

/// The collections a folder declares, in name order; every problem points into its file.
pub fn load_collections(dir: &CollectionsDir) -> Result<Vec<Collection>> {
    let read_error = |source| ManifestError::Read {
        path: dir.path.clone(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir.path).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|e| e == "yaml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut collections = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let shown = format!("{}/{file_name}", dir.dir.trim_end_matches('/'));
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        match parse_collection(&shown, &name, &text) {
            Ok(collection) => collections.push(collection),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if problems.is_empty() {
        Ok(collections)
    } else {
        Err(ManifestError::Invalid {
            dir: dir.dir.clone(),
            problems,
        }
        .into())
    }
}

/// One manifest: `file` titles the snippets, `name` is the collection (the file's stem).
pub fn parse_collection(
    file: &str,
    name: &str,
    text: &str,
) -> std::result::Result<Collection, Vec<ManifestProblem>> {
    let mut cx = Checker {
        source: Source::new(file, text, MANIFEST),
        problems: Vec::new(),
    };
    cx.collection_name(file, name);
    let raw: RawCollection = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            cx.problems.push(cx.source.yaml_error(&err));
            return Err(cx.problems);
        }
    };
    let validation_level = cx.choice("validation_level", raw.validation_level, &LEVELS);
    let validation_action = cx.choice("validation_action", raw.validation_action, &ACTIONS);
    let mut indexes: Vec<(MongoIndex, Location)> = Vec::new();
    for raw in raw.indexes.unwrap_or_default() {
        let Some(index) = cx.index(raw.value, &raw.referenced) else {
            continue;
        };
        cx.check_unique(&index, &indexes);
        indexes.push(index);
    }
    if !cx.problems.is_empty() {
        sort_by_position(&mut cx.problems);
        return Err(cx.problems);
    }
    let mut indexes: Vec<MongoIndex> = indexes.into_iter().map(|(i, _)| i).collect();
    indexes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Collection {
        name: name.to_owned(),
        // An empty validator validates nothing: the same as none.
        validator: raw.validator.map(|v| v.value.0).filter(|v| !v.is_empty()),
        validation_level,
        validation_action,
        indexes,
    })
}

/// Why a folder of collection manifests could not be loaded.
#[derive(Debug, Error, Diagnostic)]
pub enum ManifestError {
    #[error("cannot read collection manifests at `{}`", path.display())]
    #[diagnostic(code(dbtopo::mongo::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("collection manifests in `{dir}` are not valid: {}", count(problems.len()))]
    #[diagnostic(code(dbtopo::mongo::invalid))]
    Invalid {
        dir: String,
        #[related]
        problems: Vec<ManifestProblem>,
    },
}

impl ManifestError {
    /// The individual problems (empty for [`ManifestError::Read`]).
    pub fn problems(&self) -> &[ManifestProblem] {
        match self {
            ManifestError::Read { .. } => &[],
            ManifestError::Invalid { problems, .. } => problems,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    validator: Option<Spanned<Doc>>,
    validation_level: Option<Spanned<String>>,
    validation_action: Option<Spanned<String>>,
    indexes: Option<Vec<Spanned<RawIndex>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    name: Option<Spanned<String>>,
    key: Option<Spanned<KeyFields>>,
    unique: Option<bool>,
    partial: Option<Spanned<Doc>>,
    expire_after_seconds: Option<Spanned<Value>>,
}

/// An index key as written: fields in order, each with its place.
#[derive(Debug)]
struct KeyFields(Vec<(Spanned<String>, Spanned<Value>)>);

/// A YAML mapping as a BSON document, in file order.
#[derive(Debug)]
struct Doc(Document);

/// Any YAML value as BSON.
#[derive(Debug)]
struct Value(Bson);

/// YAML integers as the MongoDB shell writes them: Int32 when they fit.
fn int(v: i64) -> Bson {
    i32::try_from(v).map_or(Bson::Int64(v), Bson::Int32)
}

fn int_from<E: de::Error>(v: impl TryInto<i64> + fmt::Display + Copy) -> Result<Value, E> {
    v.try_into()
        .map(|v| Value(int(v)))
        .map_err(|_| E::custom(format!("the integer {v} does not fit in 64 bits")))
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value(Bson::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value(Bson::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value(Bson::Boolean(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value(int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                int_from(v)
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                int_from(v)
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                int_from(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value(Bson::Double(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value(Bson::String(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value(Bson::String(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(Value(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Value(Bson::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
                DocVisitor
                    .visit_map(map)
                    .map(|Doc(d)| Value(Bson::Document(d)))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut doc = Document::new();
        while let Some(key) = map.next_key::<String>()? {
            let Value(value) = map.next_value()?;
            doc.insert(key, value);
        }
        Ok(Doc(doc))
    }
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DocVisitor)
    }
}

impl<'de> Deserialize<'de> for KeyFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyFields;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of field names to 1, -1 or an index type")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_key()? {
                    fields.push((field, map.next_value()?));
                }
                Ok(KeyFields(fields))
            }
        }

        deserializer.deserialize_map(KeyVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Checks.

struct Checker {
    source: Source,
    problems: Vec<ManifestProblem>,
}

impl Checker {
    fn problem(&self, message: impl Into<String>) -> ManifestProblem {
        self.source.problem(message)
    }

    /// The file's stem names the collection: it has no place inside the file.
    fn collection_name(&mut self, file: &str, name: &str) {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.contains('$') {
            Some("`$` is not allowed")
        } else if name.contains('\0') {
            Some("the NUL character is not allowed")
        } else if name.starts_with("system.") {
            Some("the `system.` prefix is reserved by MongoDB")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.problems.push(
                self.problem(format!(
                    "invalid collection name `{name}` (from the file name `{file}`): {reason}"
                ))
                .help("rename the file: its name without `.yaml` is the collection's name"),
            );
        }
    }

    /// `validation_level` / `validation_action`: one of `allowed`, the first by default.
    fn choice(&mut self, key: &str, raw: Option<Spanned<String>>, allowed: &[&str]) -> String {
        let Some(value) = raw else {
            return allowed[0].to_owned();
        };
        if !allowed.contains(&value.value.as_str()) {
            self.problems.push(
                self.problem(format!("invalid {key} `{}`", value.value))
                    .at(&value.referenced, format!("not {}", or_list(allowed)))
                    .help(format!(
                        "{key} is {} (the default is `{}`)",
                        or_list(allowed),
                        allowed[0]
                    )),
            );
        }
        value.value
    }

    fn index(&mut self, raw: RawIndex, at: &Location) -> Option<(MongoIndex, Location)> {
        let name = match raw.name {
            None => {
                self.problems.push(
                    self.problem("index has no `name`")
                        .at(at, "add `name:` to this index")
                        .help("every index is named, e.g. `{ name: sku_unique, key: { sku: 1 } }`"),
                );
                None
            }
            Some(name) if name.value.is_empty() || name.value.contains('\0') => {
                self.problems.push(
                    self.problem("invalid index name")
                        .at(&name.referenced, "empty or with a NUL character")
                        .help("name the index, e.g. `sku_unique`"),
                );
                None
            }
            Some(name) if name.value == "_id_" => {
                self.problems.push(
                    self.problem("index name `_id_` is reserved")
                        .at(&name.referenced, "MongoDB's own index on `_id`")
                        .help("every collection has it already; remove this index or rename it"),
                );
                None
            }
            Some(name) => Some(name),
        };
        let shown = name
            .as_ref()
            .map_or_else(|| "index".to_owned(), |n| format!("index `{}`", n.value));
        let key = self.key(&shown, raw.key, at);
        let expire = match raw.expire_after_seconds {
            None => Some(None),
            Some(e) => self.expire(&shown, e, key.as_ref()).map(Some),
        };
        let (name, key, expire_after_seconds) = (name?, key?, expire?);
        let index = MongoIndex {
            name: name.value,
            key: key.value,
            unique: raw.unique.unwrap_or(false),
            partial_filter: raw.partial.map(|p| p.value.0),
            expire_after_seconds,
        };
        Some((index, name.referenced))
    }

    /// The key document: fields in order, each 1, -1 or an index type.
    fn key(
        &mut self,
        index: &str,
        raw: Option<Spanned<KeyFields>>,
        at: &Location,
    ) -> Option<Spanned<Document>> {
        let Some(raw) = raw else {
            self.problems.push(
                self.problem(format!("{index} has no `key`"))
                    .at(at, "add `key:` to this index")
                    .help(KEY_HELP),
            );
            return None;
        };
        if raw.value.0.is_empty() {
            self.problems.push(
                self.problem(format!("{index} has an empty `key`"))
                    .at(&raw.referenced, "no fields")
                    .help(KEY_HELP),
            );
            return None;
        }
        let mut key = Document::new();
        let mut ok = true;
        for (field, value) in raw.value.0 {
            let valid = match &value.value.0 {
                Bson::Int32(1 | -1) => true,
                Bson::String(s) => INDEX_TYPES.contains(&s.as_str()),
                _ => false,
            };
            if field.value.is_empty() {
                ok = false;
                self.problems.push(
                    self.problem(format!("{index} has an empty field name in its key"))
                        .at(&field.referenced, "empty field name")
                        .help(KEY_HELP),
                );
            }
            if !valid {
                ok = false;
                self.problems.push(
                    self.problem(format!(
                        "invalid key value {} for field `{}` of {index}",
                        describe(&value.value.0),
                        field.value
                    ))
                    .at(&value.referenced, "not 1, -1 or an index type")
                    .help(KEY_HELP),
                );
            }
            key.insert(field.value, value.value.0);
        }
        ok.then_some(Spanned::new(key, raw.referenced, raw.defined))
    }

    /// `expire_after_seconds`: a non-negative 32-bit integer on a single-field index.
    fn expire(
        &mut self,
        index: &str,
        raw: Spanned<Value>,
        key: Option<&Spanned<Document>>,
    ) -> Option<i64> {
        let seconds = match raw.value.0 {
            Bson::Int32(n) if n >= 0 => i64::from(n),
            ref other => {
                self.problems.push(
                    self.problem(format!(
                        "expire_after_seconds of {index} must be a whole number of seconds, \
                         found {}",
                        describe(other)
                    ))
                    .at(&raw.referenced, "not in 0..=2147483647")
                    .help(
                        "write the time to live in seconds, e.g. `expire_after_seconds: \
                         2592000` for 30 days",
                    ),
                );
                return None;
            }
        };
        if let Some(key) = key
            && key.value.len() != 1
        {
            self.problems.push(
                self.problem(format!(
                    "{index} has {} key fields: a TTL index has exactly one",
                    key.value.len()
                ))
                .at(
                    &raw.referenced,
                    "expire_after_seconds needs a single-field key",
                )
                .also(&key.referenced, format!("{} fields", key.value.len()))
                .help(
                    "MongoDB expires documents only through a single date field; index that \
                     field alone with `expire_after_seconds`",
                ),
            );
            return None;
        }
        if let Some(key) = key
            && key.value.contains_key("_id")
        {
            self.problems.push(
                self.problem(format!("{index} cannot expire on `_id`"))
                    .at(&raw.referenced, "TTL on `_id`")
                    .also(&key.referenced, "the key is `_id`")
                    .help("MongoDB refuses TTL indexes on `_id`; index a date field"),
            );
            return None;
        }
        Some(seconds)
    }

    /// Index names are unique; two indexes on the same key and filter clash in MongoDB.
    fn check_unique(&mut self, index: &(MongoIndex, Location), earlier: &[(MongoIndex, Location)]) {
        let (index, at) = index;
        if let Some((first, first_at)) = earlier.iter().find(|(e, _)| e.name == index.name) {
            self.problems.push(
                self.problem(format!("index `{}` is declared twice", first.name))
                    .at(at, "declared again here")
                    .also(first_at, "first declared here")
                    .help("index names are unique within a collection; rename one of them"),
            );
            return;
        }
        // `Document`'s `==` ignores key order, which matters in an index key.
        let same_key = earlier.iter().find(|(e, _)| {
            e.key.iter().eq(index.key.iter()) && e.partial_filter == index.partial_filter
        });
        if let Some((first, first_at)) = same_key {
            self.problems.push(
                self.problem(format!(
                    "indexes `{}` and `{}` have the same key",
                    first.name, index.name
                ))
                .at(at, "same key as an earlier index")
                .also(first_at, format!("`{}`", first.name))
                .help("MongoDB keeps one index per key pattern; merge the two"),
            );
        }
    }
}

fn or_list(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

fn describe(value: &Bson) -> String {
    match value {
        Bson::String(s) => format!("\"{s}\""),
        Bson::Null => "an empty value".to_owned(),
        Bson::Double(x) => format!("{x:?}"),
        Bson::Document(_) => "a mapping".to_owned(),
        Bson::Array(_) => "a list".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bson::doc;
    use miette::Diagnostic;

    use super::*;
    use crate::diagnostics::testing::{help, labels, messages, only_one};

    fn dir(relative: &str) -> CollectionsDir {
        CollectionsDir {
            dir: relative.to_owned(),
            path: Path::new(env!("CARGO_MANIFEST_DIR")).join(relative),
        }
    }

    fn parse(text: &str) -> Collection {
        parse_collection("c.yaml", "c", text).unwrap_or_else(|p| panic!("{:?}", messages(&p)))
    }

    fn problems(text: &str) -> Vec<ManifestProblem> {
        match parse_collection("c.yaml", "c", text) {
            Ok(c) => panic!("expected problems, parsed {c:#?}"),
            Err(problems) => problems,
        }
    }

    /// The single problem in `text`, checked to point somewhere.
    fn only(text: &str) -> ManifestProblem {
        only_one(problems(text))
    }

    fn keys(doc: &Document) -> Vec<&str> {
        doc.keys().map(String::as_str).collect()
    }

    #[test]
    fn the_example_manifests_load_in_name_order() {
        let collections = load_collections(&dir("manifests/mongo")).unwrap();
        let names: Vec<&str> = collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["product_catalog", "reviews", "user_activity"]);

        let catalog = &collections[0];
        assert_eq!(catalog.validation_level, "strict");
        assert_eq!(catalog.validation_action, "error");
        let index = |name: &str| {
            catalog
                .indexes
                .iter()
                .find(|i| i.name == name)
                .unwrap_or_else(|| panic!("no index {name}"))
        };
        let compound = index("category_price");
        assert_eq!(keys(&compound.key), ["category", "price"]);
        assert_eq!(compound.key, doc! { "category": 1_i32, "price": -1_i32 });
        assert_eq!(compound.key.get("price"), Some(&Bson::Int32(-1)));
        assert!(index("sku_unique").unique);
        assert_eq!(
            index("active_by_category").partial_filter,
            Some(doc! { "active": { "$eq": true } })
        );
        // Indexes are in name order, the normal form both sides of the diff use.
        let index_names: Vec<&str> = catalog.indexes.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            index_names,
            ["active_by_category", "category_price", "sku_unique", "tags"]
        );

        let schema = catalog
            .validator
            .as_ref()
            .unwrap()
            .get_document("$jsonSchema")
            .unwrap();
        assert_eq!(keys(schema), ["bsonType", "required", "properties"]);
        let properties = schema.get_document("properties").unwrap();
        assert_eq!(
            keys(properties)[..4],
            ["sku", "product_id", "name", "description"]
        );
        assert_eq!(
            properties.get_document("price").unwrap(),
            &doc! { "bsonType": ["double", "int", "long", "decimal"], "minimum": 0_i32 }
        );

        let reviews = &collections[1];
        let rating = reviews
            .validator
            .as_ref()
            .unwrap()
            .get_document("$jsonSchema")
            .unwrap();
        let rating = rating
            .get_document("properties")
            .unwrap()
            .get_document("rating")
            .unwrap();
        assert_eq!(rating.get("minimum"), Some(&Bson::Int32(1)));
        assert_eq!(rating.get("maximum"), Some(&Bson::Int32(5)));
        let recent = reviews
            .indexes
            .iter()
            .find(|i| i.name == "product_recent")
            .unwrap();
        assert_eq!(keys(&recent.key), ["product_id", "created_at"]);

        let activity = &collections[2];
        assert_eq!(
            (
                activity.validation_level.as_str(),
                activity.validation_action.as_str()
            ),
            ("moderate", "warn")
        );
        let ttl = activity
            .indexes
            .iter()
            .find(|i| i.name == "at_ttl")
            .unwrap();
        assert_eq!(ttl.expire_after_seconds, Some(30 * 24 * 3600));
        assert_eq!(ttl.key, doc! { "at": 1_i32 });
        let timeline = activity
            .indexes
            .iter()
            .find(|i| i.name == "user_timeline")
            .unwrap();
        assert_eq!(keys(&timeline.key), ["user_id", "at"]);
    }

    #[test]
    fn a_folder_reads_only_yaml_files_with_defaults_applied() {
        let collections = load_collections(&dir("tests/fixtures/mongo/valid")).unwrap();
        let names: Vec<&str> = collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["carts", "events"]);
        let events = &collections[1];
        assert_eq!(
            events,
            &Collection {
                name: "events".into(),
                validator: None,
                validation_level: "strict".into(),
                validation_action: "error".into(),
                indexes: Vec::new(),
            }
        );
        let carts = &collections[0];
        assert_eq!(carts.validator, None);
        assert_eq!(
            carts.indexes,
            [
                MongoIndex {
                    name: "big_number".into(),
                    key: doc! { "n": "hashed" },
                    unique: false,
                    // Too large for Int32: Int64.
                    partial_filter: Some(doc! { "n": { "$gt": 3_000_000_000_i64 } }),
                    expire_after_seconds: None,
                },
                MongoIndex {
                    name: "expires".into(),
                    key: doc! { "updated_at": 1 },
                    unique: false,
                    partial_filter: None,
                    expire_after_seconds: Some(0),
                },
                MongoIndex {
                    name: "user_open".into(),
                    key: doc! { "user_id": 1, "status": 1, "updated_at": -1 },
                    unique: false,
                    partial_filter: None,
                    expire_after_seconds: None,
                },
            ]
        );
        assert_eq!(
            keys(&carts.indexes[2].key),
            ["user_id", "status", "updated_at"]
        );
    }

    #[test]
    fn every_problem_of_every_file_is_reported_at_once() {
        let report = load_collections(&dir("tests/fixtures/mongo/invalid")).unwrap_err();
        let err = report.downcast_ref::<ManifestError>().unwrap();
        assert_eq!(
            err.to_string(),
            "collection manifests in `tests/fixtures/mongo/invalid` are not valid: 6 problems"
        );
        let found: Vec<(String, &str, Option<&str>)> = err
            .problems()
            .iter()
            .map(|p| (p.to_string(), p.file(), p.snippet()))
            .collect();
        let bad = "tests/fixtures/mongo/invalid/bad_indexes.yaml";
        assert_eq!(
            found,
            [
                (
                    "invalid validation_action `ignore`".into(),
                    bad,
                    Some("ignore")
                ),
                (
                    "index `by_user` is declared twice".into(),
                    bad,
                    Some("by_user")
                ),
                ("index has no `name`".into(), bad, Some("{")),
                (
                    "index `ttl_pair` has 2 key fields: a TTL index has exactly one".into(),
                    bad,
                    Some("60")
                ),
                (
                    "invalid collection name `system.profile` (from the file name \
                     `tests/fixtures/mongo/invalid/system.profile.yaml`): the `system.` prefix \
                     is reserved by MongoDB"
                        .into(),
                    "tests/fixtures/mongo/invalid/system.profile.yaml",
                    None
                ),
                (
                    "unknown key `uniqe`".into(),
                    "tests/fixtures/mongo/invalid/typo.yaml",
                    Some("uniqe")
                ),
            ]
        );
        // The duplicate points at the second name and labels the first.
        let twice = &err.problems()[1];
        let text = std::fs::read_to_string(dir(bad).path).unwrap();
        let spans: Vec<usize> = twice
            .labels()
            .unwrap()
            .map(|l| l.inner().offset())
            .collect();
        assert_eq!(
            spans,
            [
                text.rfind("by_user").unwrap(),
                text.find("by_user").unwrap()
            ]
        );
        assert_eq!(
            labels(twice),
            ["declared again here", "first declared here"]
        );
        let rendered = crate::test_support::render_report(err);
        assert!(rendered.contains("bad_indexes.yaml:2:20"), "{rendered}");
    }

    #[test]
    fn a_missing_folder_is_a_read_error_with_the_path() {
        let report = load_collections(&dir("tests/fixtures/mongo/nowhere")).unwrap_err();
        let err = report.downcast_ref::<ManifestError>().unwrap();
        assert!(matches!(err, ManifestError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("tests/fixtures/mongo/nowhere"));
        assert!(err.problems().is_empty());
    }

    #[test]
    fn yaml_values_become_bson_in_file_order() {
        let c = parse(
            "validator:\n  z: 1\n  a: { big: 4294967296, neg: -2147483648, x: 1.5, s: 'hi', \
             t: true, n: null, list: [1, two, [3]] }\n  $or: [{ m: { $exists: true } }]\n",
        );
        let validator = c.validator.unwrap();
        assert_eq!(keys(&validator), ["z", "a", "$or"]);
        assert_eq!(
            validator,
            doc! {
                "z": 1_i32,
                "a": {
                    "big": 4_294_967_296_i64,
                    "neg": i32::MIN,
                    "x": 1.5,
                    "s": "hi",
                    "t": true,
                    "n": null,
                    "list": [1_i32, "two", [3_i32]],
                },
                "$or": [{ "m": { "$exists": true } }],
            }
        );
        assert_eq!(parse("validator: {}\n").validator, None);
    }

    #[test]
    fn validation_level_and_action_values() {
        let c = parse("validation_level: off\nvalidation_action: warn\n");
        assert_eq!(
            (c.validation_level.as_str(), c.validation_action.as_str()),
            ("off", "warn")
        );

        let p = only("validation_level: lax\n");
        assert_eq!(p.to_string(), "invalid validation_level `lax`");
        assert_eq!(p.snippet(), Some("lax"));
        assert_eq!(labels(&p), ["not `strict`, `moderate` or `off`"]);
        assert!(help(&p).contains("the default is `strict`"));

        let p = only("validation_action: Error\n");
        assert_eq!(p.to_string(), "invalid validation_action `Error`");
        assert_eq!(labels(&p), ["not `error` or `warn`"]);
    }

    #[test]
    fn key_values_are_directions_or_index_types() {
        let c = parse(
            "indexes:\n  - { name: geo, key: { loc: 2dsphere, kind: 1 } }\n  \
             - { name: flat, key: { xy: 2d } }\n  - { name: words, key: { body: text } }\n",
        );
        let names: Vec<&str> = c.indexes.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["flat", "geo", "words"]);
        assert_eq!(c.indexes[0].key, doc! { "xy": "2d" });
        assert_eq!(c.indexes[1].key, doc! { "loc": "2dsphere", "kind": 1 });
        assert_eq!(keys(&c.indexes[1].key), ["loc", "kind"]);
        assert_eq!(c.indexes[2].key, doc! { "body": "text" });
        for (value, shown) in [
            ("2", "2"),
            ("0", "0"),
            ("1.0", "1.0"),
            ("asc", "\"asc\""),
            ("'1'", "\"1\""),
            ("true", "true"),
            ("[1]", "a list"),
        ] {
            let p = only(&format!(
                "indexes:\n  - {{ name: i, key: {{ a: 1, b: {value} }} }}\n"
            ));
            assert_eq!(
                p.to_string(),
                format!("invalid key value {shown} for field `b` of index `i`")
            );
            let expected = if value.starts_with('[') { "[" } else { value };
            assert_eq!(p.snippet(), Some(expected), "for {value}");
            assert!(help(&p).contains("\"hashed\""));
        }
    }

    #[test]
    fn indexes_need_a_name_and_a_key() {
        // A flow mapping's place is its opening brace.
        let yaml = "indexes:\n  - { name: a, key: { a: 1 } }\n  - { key: { b: 1 } }\n";
        let p = only(yaml);
        assert_eq!(p.to_string(), "index has no `name`");
        assert_eq!(p.span().unwrap().offset(), yaml.rfind("- {").unwrap() + 2);
        assert_eq!(labels(&p), ["add `name:` to this index"]);

        let yaml = "indexes:\n  - name: i\n    unique: true\n";
        let p = only(yaml);
        assert_eq!(p.to_string(), "index `i` has no `key`");
        // A block mapping's place is the rest of its first line.
        assert_eq!(p.snippet(), Some("name: i"));

        let p = only("indexes:\n  - { name: i, key: {} }\n");
        assert_eq!(p.to_string(), "index `i` has an empty `key`");
        assert_eq!(p.snippet(), Some("{"));

        let all = problems("indexes:\n  - { unique: true }\n");
        assert_eq!(
            messages(&all),
            ["index has no `name`", "index has no `key`"]
        );

        let p = only("indexes:\n  - { name: '', key: { a: 1 } }\n");
        assert_eq!(p.to_string(), "invalid index name");
        assert_eq!(p.snippet(), Some("''"));
    }

    #[test]
    fn index_names_are_unique_and_not_the_id_index() {
        let p = only("indexes:\n  - { name: _id_, key: { _id: 1 } }\n");
        assert_eq!(p.to_string(), "index name `_id_` is reserved");
        assert_eq!(p.snippet(), Some("_id_"));

        let yaml = "indexes:\n  - { name: a, key: { x: 1 } }\n  - { name: a, key: { y: 1 } }\n";
        let p = only(yaml);
        assert_eq!(p.to_string(), "index `a` is declared twice");
        assert_eq!(p.span().unwrap().offset(), yaml.rfind("a,").unwrap());

        let yaml = "indexes:\n  - { name: a, key: { x: 1, y: -1 } }\n  - { name: b, key: { x: 1, y: -1 } }\n";
        let p = only(yaml);
        assert_eq!(p.to_string(), "indexes `a` and `b` have the same key");
        assert_eq!(p.snippet(), Some("b"));
        // The same fields in another order are another index.
        parse(
            "indexes:\n  - { name: a, key: { x: 1, y: -1 } }\n  - { name: b, key: { y: -1, x: 1 } }\n",
        );
    }

    #[test]
    fn ttl_rules() {
        let ttl = |key: &str, value: &str| {
            format!("indexes:\n  - {{ name: t, key: {key}, expire_after_seconds: {value} }}\n")
        };
        let c = parse(&ttl("{ at: -1 }", "2147483647"));
        assert_eq!(c.indexes[0].expire_after_seconds, Some(i64::from(i32::MAX)));

        for (value, found) in [
            ("-1", "-1"),
            ("1.5", "1.5"),
            ("2147483648", "2147483648"),
            ("'60'", "\"60\""),
        ] {
            let p = only(&ttl("{ at: 1 }", value));
            assert_eq!(
                p.to_string(),
                format!(
                    "expire_after_seconds of index `t` must be a whole number of seconds, found {found}"
                )
            );
            assert_eq!(p.snippet(), Some(value));
        }

        let p = only(&ttl("{ at: 1, user: 1 }", "60"));
        assert_eq!(
            p.to_string(),
            "index `t` has 2 key fields: a TTL index has exactly one"
        );
        assert_eq!(p.snippet(), Some("60"));
        assert_eq!(
            labels(&p),
            ["expire_after_seconds needs a single-field key", "2 fields"]
        );

        let p = only(&ttl("{ _id: 1 }", "60"));
        assert_eq!(p.to_string(), "index `t` cannot expire on `_id`");
    }

    #[test]
    fn collection_names_follow_mongodb_rules() {
        for (name, reason) in [
            ("", "it is empty"),
            ("a$b", "`$` is not allowed"),
            ("a\0b", "the NUL character is not allowed"),
            (
                "system.views",
                "the `system.` prefix is reserved by MongoDB",
            ),
        ] {
            let all = parse_collection("x.yaml", name, "").unwrap_err();
            assert_eq!(all.len(), 1);
            assert!(all[0].to_string().ends_with(reason), "{}", all[0]);
            assert!(all[0].span().is_none());
        }
        assert!(parse_collection("x.yaml", "order-items.v2", "").is_ok());
    }

    #[test]
    fn unknown_keys_and_wrong_types_point_into_the_file() {
        let p = only("validator: {}\nindexs: []\n");
        assert_eq!(p.to_string(), "unknown key `indexs`");
        assert_eq!(p.snippet(), Some("indexs"));
        assert!(help(&p).contains("indexes"), "{}", help(&p));

        let p = only("indexes:\n  - { name: i, key: { a: 1 }, partial_filter: { a: 1 } }\n");
        assert_eq!(p.to_string(), "unknown key `partial_filter`");
        assert!(help(&p).contains("partial"));

        let p = only("validator: [a]\n");
        assert!(
            p.to_string().starts_with("invalid collection manifest"),
            "{p}"
        );
        assert_eq!(p.snippet(), Some("["));

        let p = only("indexes:\n  - { name: i, key: { a: 1 }, unique: yes please }\n");
        assert!(
            p.to_string().starts_with("invalid collection manifest"),
            "{p}"
        );

        let p = only("validator: { a: 1, a: 2 }\n");
        assert!(p.to_string().contains("duplicate"), "{p}");

        let p = only("validator: { a: 1 \n");
        assert!(p.span().is_some(), "{p}");
    }

    #[test]
    fn no_panic_on_damaged_manifests() {
        let text =
            std::fs::read_to_string(dir("manifests/mongo/product_catalog.yaml").path).unwrap();
        let chars: Vec<char> = text.chars().collect();
        for i in (0..chars.len()).step_by(3) {
            for insert in ["", "{", "é", ": ", "- "] {
                let mut damaged: String = chars[..i].iter().collect();
                damaged.push_str(insert);
                damaged.extend(&chars[i + 1..]);
                if let Err(problems) = parse_collection("d.yaml", "d", &damaged) {
                    for p in &problems {
                        assert!(!crate::test_support::render_report(p).is_empty());
                    }
                }
            }
        }
    }
}
