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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Option<KeyConstraint>,
    pub foreign_keys: Vec<ForeignKey>,
    pub checks: Vec<Check>,
    pub uniques: Vec<KeyConstraint>,
    /// Constraints a manifest cannot state (EXCLUDE), as a database made by hand may hold
    /// them: each goes, by name, with its definition.
    #[serde(default)]
    pub other_constraints: Vec<Check>,
    #[serde(default)]
    pub properties: TableProperties,
}

/// What a table is besides its columns and constraints. Read from the catalog whole, so a
/// table changed by hand (row security turned on, made UNLOGGED, storage parameters set)
/// differs from the manifest's and is planned back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProperties {
    /// `ALTER TABLE … ENABLE ROW LEVEL SECURITY` (`relrowsecurity`).
    pub row_security: bool,
    /// `ALTER TABLE … FORCE ROW LEVEL SECURITY` (`relforcerowsecurity`).
    pub force_row_security: bool,
    /// `CREATE UNLOGGED TABLE` (`relpersistence = 'u'`).
    pub unlogged: bool,
    /// Storage parameters (`reloptions`), `name=value` as the server prints them.
    pub options: Vec<String>,
    /// `COMMENT ON TABLE`.
    pub comment: Option<String>,
    /// `REPLICA IDENTITY` when not the default: `FULL`, `NOTHING`, `USING INDEX name`.
    #[serde(default)]
    pub replica_identity: Option<String>,
    /// The index `CLUSTER` last used (`ALTER TABLE … CLUSTER ON`).
    #[serde(default)]
    pub clustered_on: Option<String>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The sequence the column owns: its identity's, or a `serial` column's (whose default
    /// is `nextval` of it).
    #[serde(default)]
    pub sequence: Option<Sequence>,
    /// `COLLATE` when it is not the type's default collation, as `quote_ident` writes it.
    #[serde(default)]
    pub collation: Option<String>,
    /// `GENERATED ALWAYS AS (expression) STORED`: the expression.
    #[serde(default)]
    pub generated: Option<String>,
    /// `COMMENT ON COLUMN`.
    #[serde(default)]
    pub comment: Option<String>,
    /// Column settings that are not the defaults, as `ALTER COLUMN … SET` writes them:
    /// `STORAGE EXTERNAL`, `COMPRESSION lz4`, `STATISTICS 500`, `SET (n_distinct=100)`. A
    /// manifest cannot state them; a database that has them was changed by hand.
    #[serde(default)]
    pub settings: Vec<String>,
}

/// A sequence a column owns. Options that are the defaults for its type and direction are
/// `None`, so that a column whose type changes (and its sequence's with it) keeps equal
/// options, as PostgreSQL keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: String,
    /// `AS type` when it is not the column's type.
    pub data_type: Option<String>,
    pub start: Option<i64>,
    pub increment: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub cache: i64,
    pub cycle: bool,
}

/// Sequence options as written or read, before the defaults are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceValues {
    pub start: Option<i64>,
    pub increment: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub cache: i64,
    pub cycle: bool,
}

impl Default for SequenceValues {
    fn default() -> Self {
        SequenceValues {
            start: None,
            increment: 1,
            min: None,
            max: None,
            cache: 1,
            cycle: false,
        }
    }
}

impl Sequence {
    /// A sequence of `data_type` (`smallint`, `integer` or `bigint`) with `values`, each
    /// left out when it is PostgreSQL's default.
    pub fn new(name: String, column_type: &str, data_type: &str, values: SequenceValues) -> Self {
        let (type_min, type_max) = match data_type {
            "smallint" => (i16::MIN as i64, i16::MAX as i64),
            "integer" => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        };
        let ascending = values.increment > 0;
        let min_default = if ascending { 1 } else { type_min };
        let max_default = if ascending { type_max } else { -1 };
        let min = values.min.filter(|v| *v != min_default);
        let max = values.max.filter(|v| *v != max_default);
        let start_default = if ascending {
            min.unwrap_or(min_default)
        } else {
            max.unwrap_or(max_default)
        };
        Sequence {
            name,
            data_type: (data_type != column_type).then(|| data_type.to_owned()),
            start: values.start.filter(|v| *v != start_default),
            increment: values.increment,
            min,
            max,
            cache: values.cache,
            cycle: values.cycle,
        }
    }

    /// The options that are not defaults, as CREATE SEQUENCE or an identity writes them.
    pub fn options(&self) -> Vec<String> {
        let mut options = Vec::new();
        if let Some(start) = self.start {
            options.push(format!("START WITH {start}"));
        }
        if self.increment != 1 {
            options.push(format!("INCREMENT BY {}", self.increment));
        }
        if let Some(min) = self.min {
            options.push(format!("MINVALUE {min}"));
        }
        if let Some(max) = self.max {
            options.push(format!("MAXVALUE {max}"));
        }
        if self.cache != 1 {
            options.push(format!("CACHE {}", self.cache));
        }
        if self.cycle {
            options.push("CYCLE".into());
        }
        options
    }
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyConstraint {
    pub name: String,
    pub columns: Vec<String>,
    /// As `pg_get_constraintdef` prints it, when read from a server: compared whole, so
    /// what the other fields do not hold (DEFERRABLE, INCLUDE, NULLS NOT DISTINCT, storage
    /// parameters) is compared too. `None` when parsed from a manifest.
    #[serde(default)]
    pub definition: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub referenced_table: String,
    /// Always explicit: `REFERENCES t` without columns is resolved to t's primary key.
    pub referenced_columns: Vec<String>,
    pub on_delete: ReferentialAction,
    pub on_update: ReferentialAction,
    /// As `pg_get_constraintdef` prints it (MATCH, DEFERRABLE, NOT VALID, SET NULL columns
    /// included); see [`KeyConstraint::definition`].
    #[serde(default)]
    pub definition: Option<String>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The condition as SQL text, without the surrounding `CHECK (...)`.
    pub expression: String,
    /// As `pg_get_constraintdef` prints it (NO INHERIT, NOT VALID included); see
    /// [`KeyConstraint::definition`].
    #[serde(default)]
    pub definition: Option<String>,
}

/// An index made with CREATE INDEX.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What `pg_get_indexdef` prints after `USING`, when read from a server: compared
    /// whole, so INCLUDE, NULLS NOT DISTINCT, storage parameters and tablespace are compared
    /// too. `None` when parsed from a manifest.
    #[serde(default)]
    pub definition: Option<String>,
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
