//! The schema diff: what to run so that a database holding `current` holds `desired`.
//!
//! Pure. Both sides must be spelled alike (both read from the catalog, or `current` empty),
//! so comparing is plain equality. The steps come in an order that always works:
//! foreign keys that go away first, then other constraints, then tables; new tables, column
//! changes, new constraints and new foreign keys last (so every table they reference exists);
//! then, outside the transaction, index drops and concurrent index builds.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ddl::{self, quote};
use super::model::{Column, ForeignKey, Identity, Schema, Sequence, Table, TableProperties};

/// What a step does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    Create,
    Alter,
    Drop,
    /// Drop and build again (an index left invalid by a failed concurrent build).
    Rebuild,
}

impl StepAction {
    pub fn symbol(self) -> &'static str {
        match self {
            StepAction::Create => "+",
            StepAction::Alter => "~",
            StepAction::Drop => "-",
            StepAction::Rebuild => "-/+",
        }
    }
}

/// One SQL statement of a schema change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The object changed: `table users`, `column users.email`, `constraint users.users_pkey`,
    /// `index orders_user_id_idx`.
    pub object: String,
    pub action: StepAction,
    pub sql: String,
    /// The table the step touches (its rows are what a destructive step can lose).
    pub table: String,
    /// Runs outside the transaction: CREATE and DROP INDEX CONCURRENTLY cannot run inside one.
    pub concurrent: bool,
    /// Why the step can lose data; `None` when it cannot.
    pub destroys: Option<String>,
    /// The manifest statement the step comes from (`table users`, `index x`), so a server
    /// error can point at it; `None` for what the manifest no longer has.
    pub origin: Option<String>,
}

impl Step {
    fn new(object: String, action: StepAction, table: &str, sql: String) -> Step {
        Step {
            object,
            action,
            sql,
            table: table.to_owned(),
            concurrent: false,
            destroys: None,
            origin: Some(format!("table {table}")),
        }
    }

    fn destroying(mut self, why: String) -> Step {
        self.destroys = Some(why);
        self
    }

    fn without_origin(mut self) -> Step {
        self.origin = None;
        self
    }
}

/// The steps that turn `current` into `desired`. `invalid_indexes` are indexes of `current`
/// that a failed concurrent build left unusable: they are rebuilt.
pub fn diff(current: &Schema, desired: &Schema, invalid_indexes: &BTreeSet<String>) -> Vec<Step> {
    let dropped: BTreeSet<&str> = current
        .tables
        .keys()
        .filter(|name| !desired.tables.contains_key(*name))
        .map(String::as_str)
        .collect();
    let kept: Vec<(&Table, &Table)> = current
        .tables
        .values()
        .filter_map(|have| desired.tables.get(&have.name).map(|want| (have, want)))
        .collect();
    let rekeyed: BTreeMap<&str, Vec<BTreeSet<&str>>> = kept
        .iter()
        .map(|(have, want)| (have.name.as_str(), keys_going_away(have, want)))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();

    let mut steps = Vec::new();
    let mut readded_fks: Vec<(&str, &ForeignKey)> = Vec::new();
    // Foreign keys that go away, change, reference a key that changes, or tie two dropped
    // tables together.
    for have in current.tables.values() {
        let want = desired.tables.get(&have.name);
        for fk in &have.foreign_keys {
            let kept_as_is = want.is_some_and(|w| w.foreign_keys.contains(fk));
            let between_dropped = dropped.contains(have.name.as_str())
                && dropped.contains(fk.referenced_table.as_str())
                && fk.referenced_table != have.name;
            let to_rekeyed = kept_as_is
                && rekeyed
                    .get(fk.referenced_table.as_str())
                    .is_some_and(|keys| {
                        keys.contains(&fk.referenced_columns.iter().map(String::as_str).collect())
                    });
            if (want.is_some() && !kept_as_is) || between_dropped || to_rekeyed {
                steps.push(drop_constraint(&have.name, &fk.name));
            }
            if to_rekeyed {
                readded_fks.push((&have.name, fk));
            }
        }
    }
    for (have, want) in &kept {
        for (name, _) in constraints_gone(have, want) {
            steps.push(drop_constraint(&have.name, name));
        }
    }
    for name in &dropped {
        let sql = format!("DROP TABLE {};", quote(name));
        steps.push(
            Step::new(format!("table {name}"), StepAction::Drop, name, sql)
                .destroying(format!("drops table {name} with all its rows"))
                .without_origin(),
        );
    }
    for want in desired.tables.values() {
        if !current.tables.contains_key(&want.name) {
            let object = format!("table {}", want.name);
            steps.push(Step::new(
                object,
                StepAction::Create,
                &want.name,
                ddl::create_table(want),
            ));
        }
    }
    for (have, want) in &kept {
        steps.extend(column_steps(have, want));
    }
    for (have, want) in &kept {
        for (name, clause) in constraints_new(have, want) {
            let object = format!("constraint {}.{name}", want.name);
            let sql = ddl::alter_table(&want.name, &format!("ADD {clause}"));
            steps.push(Step::new(object, StepAction::Create, &want.name, sql));
        }
    }
    for want in desired.tables.values() {
        let have = current.tables.get(&want.name);
        for fk in &want.foreign_keys {
            if have.is_some_and(|h| h.foreign_keys.contains(fk)) {
                continue;
            }
            steps.push(add_foreign_key(&want.name, fk));
        }
    }
    for (table, fk) in readded_fks {
        steps.push(add_foreign_key(table, fk));
    }

    for (name, have) in &current.indexes {
        if dropped.contains(have.table.as_str()) {
            continue;
        }
        let invalid = invalid_indexes.contains(name);
        match desired.indexes.get(name) {
            Some(want) if want == have && !invalid => {}
            want => {
                let action = if invalid && want == Some(have) {
                    StepAction::Rebuild
                } else {
                    StepAction::Drop
                };
                let mut step = Step::new(
                    format!("index {name}"),
                    action,
                    &have.table,
                    ddl::drop_index(name),
                );
                step.concurrent = true;
                step.origin = want.map(|_| format!("index {name}"));
                steps.push(step);
            }
        }
    }
    for (name, want) in &desired.indexes {
        let have = current.indexes.get(name);
        if have == Some(want) && !invalid_indexes.contains(name) {
            continue;
        }
        let action = match have {
            None => StepAction::Create,
            Some(have) if have == want => StepAction::Rebuild,
            Some(_) => StepAction::Alter,
        };
        let mut step = Step::new(
            format!("index {name}"),
            action,
            &want.table,
            ddl::create_index(want),
        );
        step.concurrent = true;
        step.origin = Some(format!("index {name}"));
        steps.push(step);
    }
    steps
}

fn drop_constraint(table: &str, name: &str) -> Step {
    let sql = ddl::alter_table(table, &format!("DROP CONSTRAINT {}", quote(name)));
    Step::new(
        format!("constraint {table}.{name}"),
        StepAction::Drop,
        table,
        sql,
    )
    .without_origin()
}

fn add_foreign_key(table: &str, fk: &ForeignKey) -> Step {
    let sql = ddl::alter_table(table, &format!("ADD {}", ddl::foreign_key(fk)));
    Step::new(
        format!("constraint {table}.{}", fk.name),
        StepAction::Create,
        table,
        sql,
    )
}

/// Every constraint but foreign keys, by name: the clause that creates it, and its
/// definition as the server printed it (compared too, so what the clause does not say, such
/// as NO INHERIT or DEFERRABLE, is not missed).
fn key_and_check_clauses(table: &Table) -> BTreeMap<&str, (String, Option<&str>)> {
    let mut clauses = BTreeMap::new();
    if let Some(pk) = &table.primary_key {
        clauses.insert(
            pk.name.as_str(),
            (ddl::primary_key(pk), pk.definition.as_deref()),
        );
    }
    for unique in &table.uniques {
        clauses.insert(
            unique.name.as_str(),
            (ddl::unique(unique), unique.definition.as_deref()),
        );
    }
    for check in &table.checks {
        clauses.insert(
            check.name.as_str(),
            (ddl::check(check), check.definition.as_deref()),
        );
    }
    for other in &table.other_constraints {
        clauses.insert(
            other.name.as_str(),
            (ddl::other_constraint(other), other.definition.as_deref()),
        );
    }
    clauses
}

/// Constraints of `have` that `want` does not have as they are (gone or changed).
fn constraints_gone<'a>(have: &'a Table, want: &Table) -> Vec<(&'a str, String)> {
    let wanted = key_and_check_clauses(want);
    key_and_check_clauses(have)
        .into_iter()
        .filter(|(name, clause)| wanted.get(name) != Some(clause))
        .map(|(name, (clause, _))| (name, clause))
        .collect()
}

/// Constraints of `want` that `have` does not have as they are (new or changed).
fn constraints_new<'a>(have: &Table, want: &'a Table) -> Vec<(&'a str, String)> {
    let existing = key_and_check_clauses(have);
    key_and_check_clauses(want)
        .into_iter()
        .filter(|(name, clause)| existing.get(name) != Some(clause))
        .map(|(name, (clause, _))| (name, clause))
        .collect()
}

/// The columns of each primary key or unique constraint of the table that goes away or
/// changes: a foreign key that references those columns depends on the key's index, so it is
/// dropped first and added again afterwards.
fn keys_going_away<'a>(have: &'a Table, want: &Table) -> Vec<BTreeSet<&'a str>> {
    let wanted: Vec<_> = want.primary_key.iter().chain(&want.uniques).collect();
    have.primary_key
        .iter()
        .chain(&have.uniques)
        .filter(|key| !wanted.contains(key))
        .map(|key| key.columns.iter().map(String::as_str).collect())
        .collect()
}

/// Dropped, added and altered columns of a table present on both sides, and the table's own
/// properties. Column order is not compared: PostgreSQL cannot move a column without
/// rewriting the table.
fn column_steps(have: &Table, want: &Table) -> Vec<Step> {
    let table = want.name.as_str();
    let mut steps = Vec::new();
    for column in &have.columns {
        if want.column(&column.name).is_none() {
            steps.push(drop_column(table, &column.name));
        }
    }
    for column in &want.columns {
        let object = format!("column {table}.{}", column.name);
        let Some(old) = have.column(&column.name) else {
            let mut sql = Vec::new();
            if let Some(sequence) = ddl::serial_sequence(column) {
                sql.push(ddl::create_sequence(column, sequence));
            }
            sql.push(ddl::alter_table(
                table,
                &format!("ADD COLUMN {}", ddl::column_definition(table, column)),
            ));
            if let Some(sequence) = ddl::serial_sequence(column) {
                sql.push(ddl::own_sequence(table, column, sequence));
            }
            if column.comment.is_some() {
                sql.push(ddl::comment(
                    table,
                    Some(&column.name),
                    column.comment.as_deref(),
                ));
            }
            steps.push(Step::new(object, StepAction::Create, table, sql.join("\n")));
            continue;
        };
        if old.generated.is_none() && column.generated.is_some() {
            // A column cannot become generated: it is made again, computed from the others.
            steps.push(drop_column(table, &column.name).destroying(format!(
                "replaces column {table}.{} by one generated from other columns: its values \
                 are lost",
                column.name
            )));
            steps.push(Step::new(
                object,
                StepAction::Create,
                table,
                ddl::alter_table(
                    table,
                    &format!("ADD COLUMN {}", ddl::column_definition(table, column)),
                ),
            ));
            continue;
        }
        for sql in column_statements(table, old, column) {
            let mut step = Step::new(object.clone(), StepAction::Alter, table, sql);
            if old.data_type != column.data_type && step.sql.contains(" TYPE ") {
                step.destroys = narrowing(&old.data_type, &column.data_type).map(|why| {
                    format!(
                        "changes {table}.{} from {} to {}: {why}",
                        column.name, old.data_type, column.data_type
                    )
                });
            }
            steps.push(step);
        }
    }
    for sql in property_statements(table, &have.properties, &want.properties) {
        steps.push(Step::new(
            format!("table {table}"),
            StepAction::Alter,
            table,
            sql,
        ));
    }
    steps
}

fn drop_column(table: &str, column: &str) -> Step {
    let sql = ddl::alter_table(table, &format!("DROP COLUMN {}", quote(column)));
    Step::new(
        format!("column {table}.{column}"),
        StepAction::Drop,
        table,
        sql,
    )
    .destroying(format!(
        "drops column {table}.{column} and every value in it"
    ))
}

/// Statements that turn column `old` into `new`, in an order PostgreSQL accepts: a serial
/// column's new sequence exists before its default names it, an identity goes before a
/// default takes its place (and the other way round), NOT NULL is set before an identity is
/// added and dropped after one is dropped, and a sequence is owned once its column uses it.
fn column_statements(table: &str, old: &Column, new: &Column) -> Vec<String> {
    let name = quote(&new.name);
    let alter = |clause: String| ddl::alter_table(table, &clause);
    let mut statements = Vec::new();
    let type_changes = old.data_type != new.data_type;
    // A default that changes goes before the type does: the old one may not fit the new type.
    let default_first = type_changes && old.default.is_some() && old.default != new.default;
    if default_first {
        statements.push(alter(format!("ALTER COLUMN {name} DROP DEFAULT")));
    }
    if type_changes || old.collation != new.collation {
        let collation = match &new.collation {
            Some(collation) => format!(" COLLATE {collation}"),
            None if !type_changes => " COLLATE \"default\"".to_owned(),
            None => String::new(),
        };
        let using = if type_changes {
            format!(" USING {name}::{}", new.data_type)
        } else {
            String::new()
        };
        statements.push(alter(format!(
            "ALTER COLUMN {name} TYPE {}{collation}{using}",
            new.data_type
        )));
    }
    match (&old.generated, &new.generated) {
        (Some(a), Some(b)) if a != b => statements.push(alter(format!(
            "ALTER COLUMN {name} SET EXPRESSION AS ({b})"
        ))),
        (Some(_), None) => statements.push(alter(format!("ALTER COLUMN {name} DROP EXPRESSION"))),
        _ => {}
    }
    if old.identity.is_some() && new.identity.is_none() {
        statements.push(alter(format!("ALTER COLUMN {name} DROP IDENTITY")));
    }
    let (old_serial, new_serial) = (ddl::serial_sequence(old), ddl::serial_sequence(new));
    match (old_serial, new_serial) {
        (None, Some(sequence)) => statements.push(ddl::create_sequence(new, sequence)),
        (Some(a), Some(b)) => statements.extend(sequence_changes(a, b, &new.data_type)),
        _ => {}
    }
    match &new.default {
        Some(default) if old.default.as_ref() != Some(default) => {
            statements.push(alter(format!("ALTER COLUMN {name} SET DEFAULT {default}")))
        }
        None if old.default.is_some() && !default_first => {
            statements.push(alter(format!("ALTER COLUMN {name} DROP DEFAULT")))
        }
        _ => {}
    }
    if let (Some(sequence), None) = (old_serial, new_serial) {
        statements.push(format!("DROP SEQUENCE {};", quote(&sequence.name)));
    }
    if new.not_null && !old.not_null {
        statements.push(alter(format!("ALTER COLUMN {name} SET NOT NULL")));
    }
    match (old.identity, new.identity) {
        (None, Some(identity)) => statements.push(alter(format!(
            "ALTER COLUMN {name} ADD GENERATED {} AS IDENTITY{}",
            identity_words(identity),
            ddl::identity_options(table, new)
        ))),
        (Some(a), Some(b)) => {
            if a != b {
                statements.push(alter(format!(
                    "ALTER COLUMN {name} SET GENERATED {}",
                    identity_words(b)
                )));
            }
            if let (Some(have), Some(want)) = (&old.sequence, &new.sequence) {
                if have.name != want.name {
                    statements.push(rename_sequence(have, want));
                }
                let set: Vec<String> = changed_options(have, want)
                    .into_iter()
                    .map(|option| format!("SET {option}"))
                    .collect();
                if !set.is_empty() {
                    statements.push(alter(format!("ALTER COLUMN {name} {}", set.join(" "))));
                }
            }
        }
        _ => {}
    }
    if !new.not_null && old.not_null {
        statements.push(alter(format!("ALTER COLUMN {name} DROP NOT NULL")));
    }
    if let (None, Some(sequence)) = (old_serial, new_serial) {
        statements.push(ddl::own_sequence(table, new, sequence));
    }
    if old.comment != new.comment {
        statements.push(ddl::comment(table, Some(&new.name), new.comment.as_deref()));
    }
    for setting in old.settings.iter().filter(|s| !new.settings.contains(s)) {
        statements.push(alter(format!(
            "ALTER COLUMN {name} {}",
            reset_column_setting(setting)
        )));
    }
    for setting in new.settings.iter().filter(|s| !old.settings.contains(s)) {
        let set = if setting.starts_with("SET (") {
            ""
        } else {
            "SET "
        };
        statements.push(alter(format!("ALTER COLUMN {name} {set}{setting}")));
    }
    statements
}

/// The clause that puts a column setting (as [`Column::settings`] holds it) back to its
/// default.
fn reset_column_setting(setting: &str) -> String {
    match setting.split_once(' ') {
        Some(("STORAGE", _)) => "SET STORAGE DEFAULT".to_owned(),
        Some(("COMPRESSION", _)) => "SET COMPRESSION DEFAULT".to_owned(),
        Some(("STATISTICS", _)) => "SET STATISTICS -1".to_owned(),
        _ => {
            // `SET (name=value)`: reset the option by its name.
            let option = setting
                .trim_start_matches("SET (")
                .trim_end_matches(')')
                .split('=')
                .next()
                .unwrap_or_default();
            format!("RESET ({option})")
        }
    }
}

fn rename_sequence(have: &Sequence, want: &Sequence) -> String {
    format!(
        "ALTER SEQUENCE {} RENAME TO {};",
        quote(&have.name),
        quote(&want.name)
    )
}

/// A serial column's sequence renamed and its options changed (`column_type`: the column's
/// new type, which a sequence without a type of its own has).
fn sequence_changes(have: &Sequence, want: &Sequence, column_type: &str) -> Vec<String> {
    let mut statements = Vec::new();
    if have.name != want.name {
        statements.push(rename_sequence(have, want));
    }
    let mut options = Vec::new();
    if have.data_type != want.data_type {
        options.push(format!(
            "AS {}",
            want.data_type.as_deref().unwrap_or(column_type)
        ));
    }
    options.extend(changed_options(have, want));
    if !options.is_empty() {
        statements.push(format!(
            "ALTER SEQUENCE {} {};",
            quote(&want.name),
            options.join(" ")
        ));
    }
    statements
}

/// The options of `want` that differ from `have`'s, defaults written out (`NO MINVALUE`).
fn changed_options(have: &Sequence, want: &Sequence) -> Vec<String> {
    let have = all_options(have);
    all_options(want)
        .into_iter()
        .zip(have)
        .filter(|(want, have)| want != have)
        .map(|(want, _)| want)
        .collect()
}

/// Every option of a sequence, in one order, defaults written out (a default START WITH as
/// the number it stands for).
fn all_options(sequence: &Sequence) -> [String; 6] {
    let ascending = sequence.increment > 0;
    let start = sequence.start.unwrap_or(if ascending {
        sequence.min.unwrap_or(1)
    } else {
        sequence.max.unwrap_or(-1)
    });
    [
        format!("START WITH {start}"),
        format!("INCREMENT BY {}", sequence.increment),
        sequence
            .min
            .map_or("NO MINVALUE".to_owned(), |v| format!("MINVALUE {v}")),
        sequence
            .max
            .map_or("NO MAXVALUE".to_owned(), |v| format!("MAXVALUE {v}")),
        format!("CACHE {}", sequence.cache),
        if sequence.cycle { "CYCLE" } else { "NO CYCLE" }.to_owned(),
    ]
}

/// Statements that turn a table's properties from `have` into `want`.
fn property_statements(table: &str, have: &TableProperties, want: &TableProperties) -> Vec<String> {
    let mut statements = Vec::new();
    if have.unlogged != want.unlogged {
        let to = if want.unlogged { "UNLOGGED" } else { "LOGGED" };
        statements.push(ddl::alter_table(table, &format!("SET {to}")));
    }
    let key = |option: &String| option.split('=').next().unwrap_or_default().to_owned();
    let wanted: BTreeSet<String> = want.options.iter().map(key).collect();
    let reset: Vec<String> = have
        .options
        .iter()
        .map(key)
        .filter(|name| !wanted.contains(name))
        .collect();
    if !reset.is_empty() {
        statements.push(ddl::alter_table(
            table,
            &format!("RESET ({})", reset.join(", ")),
        ));
    }
    let set: Vec<&String> = want
        .options
        .iter()
        .filter(|option| !have.options.contains(option))
        .collect();
    if !set.is_empty() {
        let set: Vec<&str> = set.iter().map(|s| s.as_str()).collect();
        statements.push(ddl::alter_table(
            table,
            &format!("SET ({})", set.join(", ")),
        ));
    }
    statements.extend(ddl::row_security(table, have, want));
    if have.comment != want.comment {
        statements.push(ddl::comment(table, None, want.comment.as_deref()));
    }
    if have.replica_identity != want.replica_identity {
        let identity = want.replica_identity.as_deref().unwrap_or("DEFAULT");
        statements.push(ddl::alter_table(
            table,
            &format!("REPLICA IDENTITY {identity}"),
        ));
    }
    if have.clustered_on != want.clustered_on {
        statements.push(ddl::alter_table(
            table,
            &match &want.clustered_on {
                Some(index) => format!("CLUSTER ON {}", quote(index)),
                None => "SET WITHOUT CLUSTER".to_owned(),
            },
        ));
    }
    statements
}

fn identity_words(identity: Identity) -> &'static str {
    match identity {
        Identity::Always => "ALWAYS",
        Identity::ByDefault => "BY DEFAULT",
    }
}

/// Why changing a column from type `from` to `to` can lose data, or `None` when every value
/// of `from` fits `to` unchanged (a widening).
pub fn narrowing(from: &str, to: &str) -> Option<String> {
    (!widens(from, to)).then(|| {
        "values that do not fit the new type make the change fail or are cut or rounded".into()
    })
}

/// Whether every value of type `from` is kept unchanged by type `to`.
fn widens(from: &str, to: &str) -> bool {
    if let (Some(from), Some(to)) = (from.strip_suffix("[]"), to.strip_suffix("[]")) {
        return widens(from, to);
    }
    let (from_base, from_mods) = split_type(from);
    let (to_base, to_mods) = split_type(to);
    // Digits of the largest value of each integer type.
    let digits = |integer: &str| match integer {
        "smallint" => 5,
        "integer" => 10,
        _ => 19,
    };
    match (from_base.as_str(), to_base.as_str()) {
        // Every value has a text form, which text keeps whole.
        (_, "text") => true,
        (a, b) if a == b => match (a, from_mods.as_slice(), to_mods.as_slice()) {
            (_, _, []) => true,
            ("numeric", [p, s], [p2, s2]) => s2 >= s && p2 - s2 >= p - s,
            ("numeric", [p], [p2, s2]) => p2 - s2 >= *p,
            ("numeric", [p, s], [p2]) => *s == 0 && p2 >= p,
            // A length or a precision (character, bit, time, interval) that grows.
            (_, [n], [m]) => m >= n,
            _ => false,
        },
        ("smallint", "integer" | "bigint") | ("integer", "bigint") => true,
        ("smallint" | "integer" | "bigint", "numeric") => match to_mods.as_slice() {
            [] => true,
            [p] => *p >= digits(&from_base),
            [p, s] => p - s >= digits(&from_base),
            _ => false,
        },
        ("real", "double precision") => true,
        ("text", "character varying") => to_mods.is_empty(),
        ("character", "character varying") => match (from_mods.as_slice(), to_mods.as_slice()) {
            (_, []) => true,
            ([n], [m]) => m >= n,
            _ => false,
        },
        _ => false,
    }
}

/// `numeric(12,2)` → (`numeric`, [12, 2]); `timestamp(3) with time zone` → (`timestamp with
/// time zone`, [3]); `text` → (`text`, []).
fn split_type(data_type: &str) -> (String, Vec<i64>) {
    let Some((before, rest)) = data_type.split_once('(') else {
        return (data_type.to_owned(), Vec::new());
    };
    let Some((inside, after)) = rest.split_once(')') else {
        return (data_type.to_owned(), Vec::new());
    };
    let mods = inside
        .split(',')
        .filter_map(|m| m.trim().parse().ok())
        .collect();
    (format!("{}{after}", before.trim_end()), mods)
}

/// Tables whose rows a destructive step of `steps` can lose.
pub fn tables_at_risk(steps: &[Step]) -> BTreeSet<String> {
    steps
        .iter()
        .filter(|s| s.destroys.is_some())
        .map(|s| s.table.clone())
        .collect()
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
