//! SQL text for the schema model: identifiers quoted only where PostgreSQL needs it, types,
//! defaults and expressions as the model holds them (valid SQL on either side of the diff).

use super::model::{Check, Column, ForeignKey, Identity, Index, KeyConstraint, ReferentialAction};

/// An identifier as PostgreSQL's `quote_ident` writes it: bare when it is lowercase and not
/// a reserved word, quoted otherwise.
pub fn quote(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name);
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Reserved key words (PostgreSQL's `RESERVED_KEYWORD` list), which cannot be bare names.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column as it appears in CREATE TABLE or ADD COLUMN.
pub fn column_definition(column: &Column) -> String {
    let mut text = format!("{} {}", quote(&column.name), column.data_type);
    if let Some(default) = &column.default {
        text.push_str(&format!(" DEFAULT {default}"));
    }
    if let Some(identity) = column.identity {
        text.push_str(&format!(
            " GENERATED {} AS IDENTITY",
            identity_kind(identity)
        ));
    }
    if column.not_null {
        text.push_str(" NOT NULL");
    }
    text
}

fn identity_kind(identity: Identity) -> &'static str {
    match identity {
        Identity::Always => "ALWAYS",
        Identity::ByDefault => "BY DEFAULT",
    }
}

pub fn primary_key(key: &KeyConstraint) -> String {
    format!(
        "CONSTRAINT {} PRIMARY KEY ({})",
        quote(&key.name),
        column_list(&key.columns)
    )
}

pub fn unique(key: &KeyConstraint) -> String {
    format!(
        "CONSTRAINT {} UNIQUE ({})",
        quote(&key.name),
        column_list(&key.columns)
    )
}

pub fn check(check: &Check) -> String {
    format!(
        "CONSTRAINT {} CHECK ({})",
        quote(&check.name),
        check.expression
    )
}

pub fn foreign_key(fk: &ForeignKey) -> String {
    let mut text = format!(
        "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
        quote(&fk.name),
        column_list(&fk.columns),
        quote(&fk.referenced_table),
        column_list(&fk.referenced_columns)
    );
    if fk.on_update != ReferentialAction::NoAction {
        text.push_str(&format!(" ON UPDATE {}", action(fk.on_update)));
    }
    if fk.on_delete != ReferentialAction::NoAction {
        text.push_str(&format!(" ON DELETE {}", action(fk.on_delete)));
    }
    text
}

fn action(action: ReferentialAction) -> &'static str {
    match action {
        ReferentialAction::NoAction => "NO ACTION",
        ReferentialAction::Restrict => "RESTRICT",
        ReferentialAction::Cascade => "CASCADE",
        ReferentialAction::SetNull => "SET NULL",
        ReferentialAction::SetDefault => "SET DEFAULT",
    }
}

/// CREATE TABLE with columns, primary key, unique and check constraints; foreign keys are
/// added afterwards, once every table they reference exists.
pub fn create_table(table: &super::model::Table) -> String {
    let mut lines: Vec<String> = table.columns.iter().map(column_definition).collect();
    lines.extend(table.primary_key.iter().map(primary_key));
    lines.extend(table.uniques.iter().map(unique));
    lines.extend(table.checks.iter().map(check));
    format!(
        "CREATE TABLE {} (\n    {}\n);",
        quote(&table.name),
        lines.join(",\n    ")
    )
}

pub fn alter_table(table: &str, clause: &str) -> String {
    format!("ALTER TABLE {} {clause};", quote(table))
}

pub fn create_index(index: &Index) -> String {
    index_definition(index, true)
}

/// CREATE INDEX, `CONCURRENTLY` (outside a transaction, without blocking writes) or not.
pub fn index_definition(index: &Index, concurrently: bool) -> String {
    let mut text = format!(
        "CREATE {}INDEX {}{} ON {} USING {} ({})",
        if index.unique { "UNIQUE " } else { "" },
        if concurrently { "CONCURRENTLY " } else { "" },
        quote(&index.name),
        quote(&index.table),
        index.method,
        index.columns.join(", ")
    );
    if let Some(predicate) = &index.predicate {
        text.push_str(&format!(" WHERE {predicate}"));
    }
    text.push(';');
    text
}

pub fn drop_index(name: &str) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {};", quote(name))
}

pub fn create_database(name: &str) -> String {
    format!("CREATE DATABASE {};", quote(name))
}
