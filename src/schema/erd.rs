//! Entity-relationship diagrams of a [`Schema`]: its tables, keys and constraints drawn as
//! Mermaid `erDiagram` text (rendered by GitHub, GitLab and most Markdown viewers) or as
//! DOT records (drawn into SVG by [`super::erd_svg`], where edges start and end at the exact
//! column).
//!
//! Both forms are plain text built from the model alone, in the model's order (tables by name,
//! columns and constraints as declared), so the same manifest always gives the same diagram.

use std::fmt::Write;

use super::Schema;
use super::model::{Column, ForeignKey, Identity, Table};

/// The schema as a Mermaid `erDiagram`: one entity per table, one relationship per foreign
/// key drawn from the referenced table to the referencing one and labelled with the
/// constraint's name. Mermaid has no place for table constraints, so each CHECK constraint
/// and composite key is a row of its own at the end of its entity, drawn like a column: the
/// word `check` or `key`, the constraint's name, and its definition as the row's comment.
pub fn mermaid(schema: &Schema) -> String {
    let mut out = String::from("erDiagram\n");
    for table in schema.tables.values() {
        let keys = TableKeys::of(schema, table);
        writeln!(out, "    {} {{", mermaid_entity(&table.name)).unwrap();
        for column in &table.columns {
            write!(
                out,
                "        {} {}",
                mermaid_type(&column.data_type),
                mermaid_word(&column.name)
            )
            .unwrap();
            let markers = keys.markers(&column.name);
            if !markers.is_empty() {
                write!(out, " {}", markers.join(", ")).unwrap();
            }
            let implied_not_null =
                keys.primary.contains(&column.name.as_str()) || column.identity.is_some();
            let details = column_details(column, implied_not_null);
            if !details.is_empty() {
                write!(out, " \"{}\"", mermaid_text(&details)).unwrap();
            }
            out.push('\n');
        }
        for constraint in constraint_rows(table, &keys) {
            writeln!(
                out,
                "        {} {} \"{}\"",
                constraint.kind,
                mermaid_word(&constraint.name),
                mermaid_text(&constraint.definition)
            )
            .unwrap();
        }
        out.push_str("    }\n");
    }
    for relationship in relationships(schema) {
        writeln!(
            out,
            "    {} {}--{} {} : \"{}\"",
            mermaid_entity(&relationship.foreign_key.referenced_table),
            relationship.referenced_side.mermaid_left(),
            relationship.referencing_side.mermaid_right(),
            mermaid_entity(&relationship.referencing_table.name),
            mermaid_text(&relationship.foreign_key.name),
        )
        .unwrap();
    }
    out
}

/// The schema as a DOT digraph of record nodes, in the subset of DOT that `layout-rs` reads
/// (no HTML-like labels, no arrow shapes). Each table is one record of stacked fields: its
/// name, a field per column (name, type, key markers, NOT NULL / DEFAULT / identity), then a
/// field per CHECK constraint or composite key. Each foreign key is one edge from the
/// referencing column's field to the referenced column's (the first pair of a composite
/// key), labelled with the constraint's name and its cardinality, referencing side first.
///
/// A column is one field rather than a row of cells: `layout-rs` sizes the rows of nested
/// cells wrongly, squeezing them together as a table grows.
pub fn dot(schema: &Schema) -> String {
    let mut out = String::from("digraph schema {\n    rankdir=LR;\n    node [shape=record];\n\n");
    for table in schema.tables.values() {
        let keys = TableKeys::of(schema, table);
        let mut fields = vec![record_field("table", &table.name)];
        for (index, column) in table.columns.iter().enumerate() {
            let mut text = format!("{} : {}", column.name, column.data_type);
            let markers = keys.markers(&column.name);
            if !markers.is_empty() {
                write!(text, " [{}]", markers.join(", ")).unwrap();
            }
            let details = column_details(column, false);
            if !details.is_empty() {
                write!(text, "  {details}").unwrap();
            }
            fields.push(record_field(&column_port(index), &text));
        }
        for (index, constraint) in table_constraints(table, &keys).iter().enumerate() {
            fields.push(record_field(&format!("k{index}"), constraint));
        }
        writeln!(
            out,
            "    {} [label={}];",
            dot_string(&table.name),
            dot_string(&fields.join(" | "))
        )
        .unwrap();
    }
    let relationships = relationships(schema);
    if !relationships.is_empty() {
        out.push('\n');
    }
    for relationship in relationships {
        let fk = relationship.foreign_key;
        let table = relationship.referencing_table;
        let tail = dot_endpoint(
            &table.name,
            fk.columns.first().and_then(|c| column_index(table, c)),
        );
        // Only a column that exists has a port; a bare node name keeps the edge valid.
        let referenced_column = schema.tables.get(&fk.referenced_table).and_then(|t| {
            fk.referenced_columns
                .first()
                .and_then(|c| column_index(t, c))
        });
        let head = dot_endpoint(&fk.referenced_table, referenced_column);
        let label = format!(
            "{} ({} : {})",
            one_line(&fk.name),
            relationship.referencing_side.range(),
            relationship.referenced_side.range(),
        );
        writeln!(out, "    {tail} -> {head} [label={}];", dot_string(&label)).unwrap();
    }
    out.push_str("}\n");
    out
}

/// How many rows one end of a relationship may have for each row at the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cardinality {
    ExactlyOne,
    ZeroOrOne,
    ZeroOrMore,
}

impl Cardinality {
    /// The crow's-foot glyph on the left of a Mermaid relationship (the first entity's end).
    fn mermaid_left(self) -> &'static str {
        match self {
            Cardinality::ExactlyOne => "||",
            Cardinality::ZeroOrOne => "|o",
            Cardinality::ZeroOrMore => "}o",
        }
    }

    /// The crow's-foot glyph on the right of a Mermaid relationship (the second entity's end).
    fn mermaid_right(self) -> &'static str {
        match self {
            Cardinality::ExactlyOne => "||",
            Cardinality::ZeroOrOne => "o|",
            Cardinality::ZeroOrMore => "o{",
        }
    }

    /// The same count as a range, for the edge labels of the DOT form, which has no
    /// crow's-foot arrows.
    fn range(self) -> &'static str {
        match self {
            Cardinality::ExactlyOne => "1",
            Cardinality::ZeroOrOne => "0..1",
            Cardinality::ZeroOrMore => "0..*",
        }
    }
}

/// A foreign key seen as an ER relationship.
struct Relationship<'a> {
    referencing_table: &'a Table,
    foreign_key: &'a ForeignKey,
    /// Rows of the referenced table one referencing row points to: exactly one unless a
    /// column of the key may be NULL (a row with a NULL in its key references nothing).
    referenced_side: Cardinality,
    /// Rows of the referencing table that may point to one referenced row: at most one when
    /// the key's columns include all columns of a primary key, UNIQUE constraint or unique
    /// index (equal key values would repeat those unique values), any number otherwise.
    referencing_side: Cardinality,
}

fn relationships(schema: &Schema) -> Vec<Relationship<'_>> {
    let mut relationships = Vec::new();
    for table in schema.tables.values() {
        let keys = TableKeys::of(schema, table);
        for foreign_key in &table.foreign_keys {
            let nullable = foreign_key
                .columns
                .iter()
                .any(|c| table.column(c).is_none_or(|c| !c.not_null));
            let unique = keys.covers_a_key(&foreign_key.columns);
            relationships.push(Relationship {
                referencing_table: table,
                foreign_key,
                referenced_side: if nullable {
                    Cardinality::ZeroOrOne
                } else {
                    Cardinality::ExactlyOne
                },
                referencing_side: if unique {
                    Cardinality::ZeroOrOne
                } else {
                    Cardinality::ZeroOrMore
                },
            });
        }
    }
    relationships
}

/// The keys of one table, gathered once for its markers, footnotes and relationships.
struct TableKeys<'a> {
    table: &'a Table,
    primary: Vec<&'a str>,
    /// UNIQUE constraints and unique indexes, which enforce uniqueness just the same. Only
    /// indexes over plain columns and without a WHERE condition count: an expression or a
    /// partial index does not make any set of columns unique.
    unique: Vec<UniqueKey<'a>>,
}

struct UniqueKey<'a> {
    name: &'a str,
    columns: Vec<&'a str>,
    kind: &'static str,
}

impl<'a> TableKeys<'a> {
    fn of(schema: &'a Schema, table: &'a Table) -> Self {
        let primary = table
            .primary_key
            .iter()
            .flat_map(|k| &k.columns)
            .map(String::as_str)
            .collect();
        let constraints = table.uniques.iter().map(|k| UniqueKey {
            name: &k.name,
            columns: k.columns.iter().map(String::as_str).collect(),
            kind: "UNIQUE",
        });
        let indexes = schema
            .indexes
            .values()
            .filter(|i| i.table == table.name && i.unique && i.predicate.is_none())
            .filter_map(|i| {
                let columns = i
                    .columns
                    .iter()
                    .map(|key| indexed_column(table, key))
                    .collect::<Option<Vec<_>>>()?;
                Some(UniqueKey {
                    name: &i.name,
                    columns,
                    kind: "UNIQUE INDEX",
                })
            });
        TableKeys {
            table,
            primary,
            unique: constraints.chain(indexes).collect(),
        }
    }

    /// `PK`, `FK`, `UK` as they apply to a column, in that order (Mermaid's key names).
    fn markers(&self, column: &str) -> Vec<&'static str> {
        let mut markers = Vec::new();
        if self.primary.contains(&column) {
            markers.push("PK");
        }
        if self
            .table
            .foreign_keys
            .iter()
            .any(|fk| fk.columns.iter().any(|c| c == column))
        {
            markers.push("FK");
        }
        if self.unique.iter().any(|k| k.columns.contains(&column)) {
            markers.push("UK");
        }
        markers
    }

    fn covers_a_key(&self, columns: &[String]) -> bool {
        let covered =
            |key: &[&str]| !key.is_empty() && key.iter().all(|k| columns.iter().any(|c| c == k));
        covered(&self.primary) || self.unique.iter().any(|k| covered(&k.columns))
    }
}

/// The column an index key names, when the key is a plain column: the model writes a key as
/// the column's name, followed by any ordering (`email DESC NULLS LAST`).
fn indexed_column<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    let mut name = key;
    if table.column(name).is_none() {
        for suffix in [" NULLS FIRST", " NULLS LAST"] {
            name = name.strip_suffix(suffix).unwrap_or(name);
        }
        for suffix in [" ASC", " DESC"] {
            name = name.strip_suffix(suffix).unwrap_or(name);
        }
    }
    table.column(name).map(|c| c.name.as_str())
}

/// A column's NOT NULL, DEFAULT and identity, spelled as in its DDL; `implied_not_null` leaves
/// out a NOT NULL that the reader can already tell from a PK marker or the identity.
fn column_details(column: &Column, implied_not_null: bool) -> String {
    let mut details = Vec::new();
    if column.not_null && !implied_not_null {
        details.push("NOT NULL".to_owned());
    }
    if let Some(default) = &column.default {
        details.push(format!("DEFAULT {default}"));
    }
    match column.identity {
        Some(Identity::Always) => details.push("GENERATED ALWAYS AS IDENTITY".to_owned()),
        Some(Identity::ByDefault) => details.push("GENERATED BY DEFAULT AS IDENTITY".to_owned()),
        None => {}
    }
    details.join(" ")
}

/// A table constraint no column marker shows.
struct ConstraintRow {
    /// `key` or `check`: the row's type word in Mermaid.
    kind: &'static str,
    name: String,
    definition: String,
}

/// The table's constraints that no column marker shows: composite primary and unique keys
/// (a `UK` on each column would read as each column being unique) and CHECK constraints.
fn constraint_rows(table: &Table, keys: &TableKeys<'_>) -> Vec<ConstraintRow> {
    let mut rows = Vec::new();
    if let Some(primary_key) = table.primary_key.as_ref().filter(|k| k.columns.len() > 1) {
        rows.push(ConstraintRow {
            kind: "key",
            name: primary_key.name.clone(),
            definition: format!("PRIMARY KEY ({})", primary_key.columns.join(", ")),
        });
    }
    for key in keys.unique.iter().filter(|k| k.columns.len() > 1) {
        rows.push(ConstraintRow {
            kind: "key",
            name: key.name.to_string(),
            definition: format!("{} ({})", key.kind, key.columns.join(", ")),
        });
    }
    for check in &table.checks {
        rows.push(ConstraintRow {
            kind: "check",
            name: check.name.clone(),
            definition: format!("CHECK ({})", check.expression),
        });
    }
    rows
}

/// The same constraints as one line each: `name DEFINITION`.
fn table_constraints(table: &Table, keys: &TableKeys<'_>) -> Vec<String> {
    constraint_rows(table, keys)
        .into_iter()
        .map(|row| format!("{} {}", row.name, row.definition))
        .collect()
}

/// Words Mermaid's erDiagram lexer takes as keywords (case-insensitively) wherever an entity
/// name may stand.
const MERMAID_KEYWORDS: &[&str] = &[
    "erdiagram",
    "style",
    "classdef",
    "class",
    "subgraph",
    "end",
    "one",
    "many",
    "to",
];

/// An entity name as Mermaid reads it: bare when it is a plain identifier, else quoted (a
/// quoted name cannot hold `"`, `%` or `\`, which become `_`).
fn mermaid_entity(name: &str) -> String {
    if is_plain_identifier(name) && !MERMAID_KEYWORDS.contains(&name.to_lowercase().as_str()) {
        return name.to_owned();
    }
    let quoted: String = name
        .chars()
        .map(|c| match c {
            '"' | '%' | '\\' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("\"{quoted}\"")
}

/// An attribute's type or name as one Mermaid word: bare when it is a plain identifier (array
/// brackets allowed) that Mermaid would not read as a key marker, else in backquotes.
fn mermaid_word(word: &str) -> String {
    let plain = is_plain_identifier(word.trim_end_matches("[]"));
    let key_marker = ["pk", "fk", "uk"].contains(&word.to_lowercase().as_str());
    if plain && !key_marker {
        word.to_owned()
    } else {
        format!("`{}`", one_line(word).replace('`', "'"))
    }
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A PostgreSQL type as one Mermaid word, which cannot hold spaces or parentheses:
/// `character varying(255)` → `varchar_255`, `numeric(12,2)` → `numeric_12_2`,
/// `timestamp(3) with time zone` → `timestamptz_3`, `integer[]` stays.
fn mermaid_type(data_type: &str) -> String {
    let element = data_type.trim_end_matches("[]");
    let array = &data_type[element.len()..];
    let (words, modifier) = match (element.find('('), element.find(')')) {
        (Some(open), Some(close)) if open < close => (
            format!("{}{}", &element[..open], &element[close + 1..]),
            Some(&element[open + 1..close]),
        ),
        _ => (element.to_owned(), None),
    };
    let base = match words.trim() {
        "character varying" => "varchar",
        "character" => "char",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        "time with time zone" => "timetz",
        "time without time zone" => "time",
        "bit varying" => "varbit",
        other => other,
    };
    let mut token = base.replace(' ', "_");
    if let Some(modifier) = modifier {
        token.push('_');
        token.extend(
            modifier
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| if c == ',' { '_' } else { c }),
        );
    }
    token.push_str(array);
    mermaid_word(&token)
}

/// Text for a Mermaid quoted string, which ends at the first `"` and at the end of the line.
fn mermaid_text(text: &str) -> String {
    one_line(text).replace('"', "'")
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// A column's port, named by its position: a record port cannot hold `>`, `|` or braces,
/// which a column name may.
fn column_port(column_index: usize) -> String {
    format!("c{column_index}")
}

fn column_index(table: &Table, column: &str) -> Option<usize> {
    table.columns.iter().position(|c| c.name == column)
}

fn dot_endpoint(table: &str, column_index: Option<usize>) -> String {
    match column_index {
        Some(index) => format!("{}:{}", dot_string(table), column_port(index)),
        None => dot_string(table),
    }
}

/// A DOT quoted string, read back unchanged by `layout-rs`, whose only escapes are `\\` and
/// `\"` (`\n` and `\l` would become line breaks).
fn dot_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One record field: `<port> text`. Every field has a port, because the record reader drops
/// a field with empty text and takes a field's leading `<` as the start of a port; after
/// the port the text may hold anything but the record's own separators, `{`, `}` and `|`,
/// which have no escape and are drawn as look-alikes.
fn record_field(port: &str, text: &str) -> String {
    let text: String = one_line(text)
        .chars()
        .map(|c| match c {
            '{' => '❴',
            '}' => '❵',
            '|' => '¦',
            c => c,
        })
        .collect();
    format!("<{port}> {text}")
}

#[cfg(test)]
#[path = "erd_tests.rs"]
mod tests;
