//! SQL text for the schema model: identifiers quoted only where PostgreSQL needs it, types,
//! defaults and expressions as the model holds them (valid SQL on either side of the diff).

use super::model::{
    Check, Column, ForeignKey, Identity, Index, KeyConstraint, ReferentialAction, Sequence, Table,
};

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

/// A column as it appears in CREATE TABLE or ADD COLUMN (of `table`).
pub fn column_definition(table: &str, column: &Column) -> String {
    let mut text = format!("{} {}", quote(&column.name), column.data_type);
    if let Some(collation) = &column.collation {
        text.push_str(&format!(" COLLATE {collation}"));
    }
    if let Some(default) = &column.default {
        text.push_str(&format!(" DEFAULT {default}"));
    }
    if let Some(expression) = &column.generated {
        text.push_str(&format!(" GENERATED ALWAYS AS ({expression}) STORED"));
    }
    if let Some(identity) = column.identity {
        text.push_str(&format!(
            " GENERATED {} AS IDENTITY{}",
            identity_kind(identity),
            identity_options(table, column)
        ));
    }
    if column.not_null {
        text.push_str(" NOT NULL");
    }
    text
}

/// ` (SEQUENCE NAME …, START WITH …)` for an identity whose sequence is not as PostgreSQL
/// makes it by default; nothing otherwise.
pub fn identity_options(table: &str, column: &Column) -> String {
    let Some(sequence) = &column.sequence else {
        return String::new();
    };
    let mut options = Vec::new();
    if sequence.name != default_sequence_name(table, &column.name) {
        options.push(format!("SEQUENCE NAME {}", quote(&sequence.name)));
    }
    options.extend(sequence.options());
    if options.is_empty() {
        String::new()
    } else {
        format!(" ({})", options.join(" "))
    }
}

/// The name PostgreSQL gives a column's sequence when nothing is in its way.
pub fn default_sequence_name(table: &str, column: &str) -> String {
    format!("{table}_{column}_seq")
}

/// Whether `column` is a serial column: its default takes values from a sequence it owns.
pub fn serial_sequence(column: &Column) -> Option<&Sequence> {
    column
        .sequence
        .as_ref()
        .filter(|_| column.identity.is_none())
}

/// CREATE SEQUENCE for a serial column's sequence.
pub fn create_sequence(column: &Column, sequence: &Sequence) -> String {
    let mut text = format!("CREATE SEQUENCE {}", quote(&sequence.name));
    let data_type = sequence.data_type.as_deref().unwrap_or(&column.data_type);
    text.push_str(&format!(" AS {data_type}"));
    for option in sequence.options() {
        text.push_str(&format!(" {option}"));
    }
    text.push(';');
    text
}

/// `ALTER SEQUENCE … OWNED BY table.column`: the sequence goes with its column.
pub fn own_sequence(table: &str, column: &Column, sequence: &Sequence) -> String {
    format!(
        "ALTER SEQUENCE {} OWNED BY {}.{};",
        quote(&sequence.name),
        quote(table),
        quote(&column.name)
    )
}

/// A string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// COMMENT ON TABLE, or on one of its columns.
pub fn comment(table: &str, column: Option<&str>, comment: Option<&str>) -> String {
    let target = match column {
        Some(column) => format!("COLUMN {}.{}", quote(table), quote(column)),
        None => format!("TABLE {}", quote(table)),
    };
    format!(
        "COMMENT ON {target} IS {};",
        comment.map_or("NULL".to_owned(), literal)
    )
}

fn identity_kind(identity: Identity) -> &'static str {
    match identity {
        Identity::Always => "ALWAYS",
        Identity::ByDefault => "BY DEFAULT",
    }
}

/// `CONSTRAINT name clause`, where the clause is the one the model's fields make unless the
/// constraint's whole definition says more than they do (DEFERRABLE, NO INHERIT, MATCH FULL,
/// INCLUDE, …): then the definition, so that nothing it holds is lost.
fn constraint(name: &str, clause: String, definition: Option<&str>) -> String {
    let squashed = |text: &str| text.split_whitespace().collect::<String>();
    let clause = match definition {
        Some(definition) if squashed(definition) != squashed(&clause) => definition.to_owned(),
        _ => clause,
    };
    format!("CONSTRAINT {} {clause}", quote(name))
}

pub fn primary_key(key: &KeyConstraint) -> String {
    constraint(
        &key.name,
        format!("PRIMARY KEY ({})", column_list(&key.columns)),
        key.definition.as_deref(),
    )
}

pub fn unique(key: &KeyConstraint) -> String {
    constraint(
        &key.name,
        format!("UNIQUE ({})", column_list(&key.columns)),
        key.definition.as_deref(),
    )
}

pub fn check(check: &Check) -> String {
    constraint(
        &check.name,
        format!("CHECK ({})", check.expression),
        check.definition.as_deref(),
    )
}

/// A constraint a manifest cannot state, from its definition as the server printed it.
pub fn other_constraint(constraint: &Check) -> String {
    format!(
        "CONSTRAINT {} {}",
        quote(&constraint.name),
        constraint.definition.as_deref().unwrap_or_default()
    )
}

pub fn foreign_key(fk: &ForeignKey) -> String {
    let mut text = format!(
        "FOREIGN KEY ({}) REFERENCES {} ({})",
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
    constraint(&fk.name, text, fk.definition.as_deref())
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

/// CREATE TABLE with columns, primary key, unique and check constraints, with what goes
/// with it: the sequences of its serial columns first, then their ownership, comments and
/// row security. Foreign keys are added afterwards, once every table they reference exists.
pub fn create_table(table: &Table) -> String {
    let mut statements = Vec::new();
    for column in &table.columns {
        if let Some(sequence) = serial_sequence(column) {
            statements.push(create_sequence(column, sequence));
        }
    }
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .map(|column| column_definition(&table.name, column))
        .collect();
    lines.extend(table.primary_key.iter().map(primary_key));
    lines.extend(table.uniques.iter().map(unique));
    lines.extend(table.checks.iter().map(check));
    lines.extend(table.other_constraints.iter().map(other_constraint));
    let properties = &table.properties;
    let with = if properties.options.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", properties.options.join(", "))
    };
    statements.push(format!(
        "CREATE {}TABLE {} (\n    {}\n){with};",
        if properties.unlogged { "UNLOGGED " } else { "" },
        quote(&table.name),
        lines.join(",\n    ")
    ));
    for column in &table.columns {
        if let Some(sequence) = serial_sequence(column) {
            statements.push(own_sequence(&table.name, column, sequence));
        }
    }
    if properties.comment.is_some() {
        statements.push(comment(&table.name, None, properties.comment.as_deref()));
    }
    for column in &table.columns {
        if column.comment.is_some() {
            statements.push(comment(
                &table.name,
                Some(&column.name),
                column.comment.as_deref(),
            ));
        }
    }
    statements.extend(row_security(&table.name, &Default::default(), properties));
    statements.join("\n")
}

/// ALTER TABLE statements that change a table's row security from `have` to `want`.
pub fn row_security(
    table: &str,
    have: &super::model::TableProperties,
    want: &super::model::TableProperties,
) -> Vec<String> {
    let mut statements = Vec::new();
    if have.row_security != want.row_security {
        let verb = if want.row_security {
            "ENABLE"
        } else {
            "DISABLE"
        };
        statements.push(alter_table(table, &format!("{verb} ROW LEVEL SECURITY")));
    }
    if have.force_row_security != want.force_row_security {
        let verb = if want.force_row_security {
            "FORCE"
        } else {
            "NO FORCE"
        };
        statements.push(alter_table(table, &format!("{verb} ROW LEVEL SECURITY")));
    }
    statements
}

pub fn alter_table(table: &str, clause: &str) -> String {
    format!("ALTER TABLE {} {clause};", quote(table))
}

pub fn create_index(index: &Index) -> String {
    index_definition(index, true)
}

/// Words of an index definition that the model's fields do not hold.
const INDEX_EXTRAS: [&str; 4] = [
    " INCLUDE (",
    " NULLS NOT DISTINCT",
    " WITH (",
    " TABLESPACE ",
];

/// CREATE INDEX, `CONCURRENTLY` (outside a transaction, without blocking writes) or not:
/// from the model's fields, or from the whole definition when it says more than they do.
pub fn index_definition(index: &Index, concurrently: bool) -> String {
    let unique = if index.unique { "UNIQUE " } else { "" };
    let concurrently = if concurrently { "CONCURRENTLY " } else { "" };
    if let Some(definition) = index
        .definition
        .as_deref()
        .filter(|d| INDEX_EXTRAS.iter().any(|extra| d.contains(extra)))
    {
        return format!(
            "CREATE {unique}INDEX {concurrently}{} ON {} USING {definition};",
            quote(&index.name),
            quote(&index.table),
        );
    }
    let mut text = format!(
        "CREATE {unique}INDEX {concurrently}{} ON {} USING {} ({})",
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
