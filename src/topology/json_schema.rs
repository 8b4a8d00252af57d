//! The topology file's JSON Schema (`dbtopo schema`), derived from the raw types the loader
//! deserializes (raw.rs): their doc comments are the descriptions, `deny_unknown_fields`
//! becomes `additionalProperties: false`.
//!
//! The parts written by hand here are the types with hand-written `Deserialize`s and the
//! scalars the parse takes loosely and validation checks later (ports, counts, priorities).
//! Each says what validation accepts, never less: a file the loader accepts passes the
//! schema (tests/topology_schema.rs).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};

use super::mongo::{MAX_MEMBERS, MAX_PRIORITY_TENTHS};
use super::raw::{Entries, RawMember, RawMembers, RawTopology, Scalar};

/// The JSON Schema (draft-07, which every YAML language server reads) of the topology file.
pub fn topology_schema() -> serde_json::Value {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawTopology>();
    schema.to_value()
}

/// A mapping keyed by user-chosen names (nodes, replicas, tables, settings).
impl<V: JsonSchema> JsonSchema for Entries<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A single value: a string, number or boolean.",
            "type": ["string", "number", "boolean", "null"],
        })
    }
}

impl JsonSchema for RawMembers {
    fn schema_name() -> Cow<'static, str> {
        "Members".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A member count (host ports from the set's `port` up) or a list of members.",
            "anyOf": [
                generator.subschema_for::<MemberCount>(),
                { "type": "array", "items": generator.subschema_for::<RawMember>() },
            ],
        })
    }
}

/// A postgresql.conf value as written (the loader's `Scalar` without the empty value).
pub(super) struct SettingValue;

impl JsonSchema for SettingValue {
    fn schema_name() -> Cow<'static, str> {
        "SettingValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A postgresql.conf value: a string, number or boolean (written `on`/`off`).",
            "type": ["string", "number", "boolean"],
        })
    }
}

/// A host port (servers.rs checks the range).
pub(super) struct Port;

impl JsonSchema for Port {
    fn schema_name() -> Cow<'static, str> {
        "Port".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A host port, published on 127.0.0.1 only.",
            "type": "integer",
            "minimum": 1024,
            "maximum": 65535,
        })
    }
}

/// A replica set's member count.
pub(super) struct MemberCount;

impl JsonSchema for MemberCount {
    fn schema_name() -> Cow<'static, str> {
        "MemberCount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The number of members.",
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_MEMBERS,
        })
    }
}

/// A member's election priority (mongo.rs also refuses more than one decimal).
pub(super) struct Priority;

impl JsonSchema for Priority {
    fn schema_name() -> Cow<'static, str> {
        "Priority".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Election priority, with at most one decimal: 0 never becomes primary; default 1.",
            "type": "number",
            "minimum": 0,
            "maximum": MAX_PRIORITY_TENTHS / 10,
        })
    }
}

/// A member's votes.
pub(super) struct Votes;

impl JsonSchema for Votes {
    fn schema_name() -> Cow<'static, str> {
        "Votes".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Votes in elections: 0 or 1.",
            "enum": [0, 1],
        })
    }
}

/// A name, path or other text. The parse takes any scalar as its text (`true`, `12`), so the
/// schema does too; validation then checks names.
pub(super) struct Text;

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text (a number or boolean is taken as its text).",
            "type": ["string", "number", "boolean"],
        })
    }
}

/// A boolean: YAML 1.1's spellings are taken too, quoted or not (`yes`, `on`, `"true"`).
pub(super) struct Flag;

impl JsonSchema for Flag {
    fn schema_name() -> Cow<'static, str> {
        "Flag".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A boolean: true or false (also yes/no, on/off, y/n, any case).",
            "anyOf": [
                { "type": "boolean" },
                {
                    "type": "string",
                    "pattern": "^\\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy]([Ee][Ss])?|[Nn][Oo]?|[Oo][Nn]|[Oo][Ff][Ff])\\s*$",
                },
            ],
        })
    }
}

/// How horizontal fragments split the key (fragments.rs takes exactly these).
pub(super) struct PartitionBy;

impl JsonSchema for PartitionBy {
    fn schema_name() -> Cow<'static, str> {
        "PartitionBy".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`list`: parts take listed values; `range`: parts take [from, to); `hash`: parts take hash remainders.",
            "enum": ["list", "range", "hash"],
        })
    }
}
