//! The normalized schema model: what a SQL manifest declares and, later, what the catalog holds.
//!
//! Both sides normalize into these types before any diff (DESIGN rule 3): identifiers folded as
//! PostgreSQL folds them, types spelled as `format_type()` prints them, implied facts made
//! explicit (a primary key or identity column is NOT NULL), unnamed constraints given the names
//! PostgreSQL would choose. Maps are ordered so that output and snapshots are stable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tables and indexes of one database (the `public` schema).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
    /// Indexes made with CREATE INDEX, by name. Indexes behind PRIMARY KEY and UNIQUE
    /// constraints belong to their constraint, as in `pg_constraint.conindid`.
    pub indexes: BTreeMap<String, Index>,
}

/// A table with its columns (in declaration order: the order is part of the table) and
/// constraints (in declaration order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Option<KeyConstraint>,
    pub foreign_keys: Vec<ForeignKey>,
    pub checks: Vec<Check>,
    pub uniques: Vec<KeyConstraint>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The values a CHECK of the table limits `column` to, from `column IN (...)` or
    /// `column = v` (as the manifest writes them).
    pub fn allowed_values(&self, column: &str) -> Option<std::collections::BTreeSet<String>> {
        use sqlparser::ast::{BinaryOperator, Expr, InTarget};
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        self.checks.iter().find_map(|check| {
            let expr = sqlparser::parser::Parser::new(&dialect)
                .try_with_sql(&check.expression)
                .ok()?
                .parse_expr()
                .ok()?;
            let is_column =
                |e: &Expr| matches!(e, Expr::Identifier(i) if i.value.to_lowercase() == column);
            match expr {
                Expr::In {
                    expr,
                    target: InTarget::List(list),
                    negated: false,
                    ..
                } if is_column(&expr) => list.iter().map(literal).collect(),
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } if is_column(&left) => {
                    literal(&right).map(|v| std::collections::BTreeSet::from([v]))
                }
                _ => None,
            }
        })
    }

    /// Names of every constraint of the table, primary key first.
    pub fn constraint_names(&self) -> impl Iterator<Item = &str> {
        let keys = self
            .primary_key
            .iter()
            .chain(&self.uniques)
            .map(|k| &k.name);
        let fks = self.foreign_keys.iter().map(|f| &f.name);
        let checks = self.checks.iter().map(|c| &c.name);
        keys.chain(fks).chain(checks).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// As `format_type(atttypid, atttypmod)` prints it: `bigint`, `numeric(12,2)`,
    /// `timestamp with time zone`, `character varying(255)`, `integer[]`.
    pub data_type: String,
    /// `pg_attribute.attnotnull`: declared NOT NULL, part of the primary key, or identity.
    pub not_null: bool,
    /// The default expression as written in the manifest (SQL text). The catalog prints
    /// defaults with casts (`'pending'::text`); comparing them is the diff's business.
    pub default: Option<String>,
    pub identity: Option<Identity>,
}

/// `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY` (`pg_attribute.attidentity` `a` / `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    #[serde(rename = "always")]
    Always,
    #[serde(rename = "by default")]
    ByDefault,
}

/// A PRIMARY KEY or UNIQUE constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyConstraint {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub referenced_table: String,
    /// Always explicit: `REFERENCES t` without columns is resolved to t's primary key.
    pub referenced_columns: Vec<String>,
    pub on_delete: ReferentialAction,
    pub on_update: ReferentialAction,
}

/// `pg_constraint.confdeltype` / `confupdtype`; NO ACTION when not written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferentialAction {
    #[default]
    #[serde(rename = "no action")]
    NoAction,
    #[serde(rename = "restrict")]
    Restrict,
    #[serde(rename = "cascade")]
    Cascade,
    #[serde(rename = "set null")]
    SetNull,
    #[serde(rename = "set default")]
    SetDefault,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The condition as SQL text, without the surrounding `CHECK (...)`.
    pub expression: String,
}

/// An index made with CREATE INDEX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub table: String,
    /// Key columns or expressions as SQL text, with ASC/DESC/NULLS when written.
    pub columns: Vec<String>,
    pub unique: bool,
    /// Access method, `btree` when not written.
    pub method: String,
    /// The WHERE condition of a partial index.
    pub predicate: Option<String>,
}

/// Whether a type (as `format_type` spells it) holds numbers, so values of it are written as
/// bare literals and compared as numbers.
pub fn is_numeric_type(data_type: &str) -> bool {
    [
        "smallint",
        "integer",
        "bigint",
        "numeric",
        "real",
        "double precision",
    ]
    .iter()
    .any(|t| data_type == *t || data_type.starts_with(&format!("{t}(")))
}

fn literal(expr: &sqlparser::ast::Expr) -> Option<String> {
    use sqlparser::ast::{Expr, Value};
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        _ => None,
    }
}
