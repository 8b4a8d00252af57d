use std::collections::BTreeSet;

use super::*;
use crate::schema::parse_schema;

const MANIFEST: &str = include_str!("../../manifests/ecommerce.sql");

fn schema(sql: &str) -> Schema {
    parse_schema("test.sql", sql).expect("valid test SQL")
}

fn objects(steps: &[Step]) -> Vec<(StepAction, &str)> {
    steps
        .iter()
        .map(|s| (s.action, s.object.as_str()))
        .collect()
}

#[test]
fn a_schema_compared_with_itself_needs_nothing() {
    let manifest = schema(MANIFEST);
    assert!(diff(&manifest, &manifest, &BTreeSet::new()).is_empty());
}

#[test]
fn from_nothing_tables_come_first_then_foreign_keys_then_concurrent_indexes() {
    let manifest = schema(MANIFEST);
    let steps = diff(&Schema::default(), &manifest, &BTreeSet::new());
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| s.object.split(' ').next().unwrap())
        .collect();
    let first_fk = kinds.iter().position(|k| *k == "constraint").unwrap();
    let first_index = kinds.iter().position(|k| *k == "index").unwrap();
    assert!(kinds[..first_fk].iter().all(|k| *k == "table"), "{kinds:?}");
    assert!(
        kinds[first_fk..first_index]
            .iter()
            .all(|k| *k == "constraint")
    );
    assert!(kinds[first_index..].iter().all(|k| *k == "index"));
    assert_eq!(kinds.iter().filter(|k| **k == "table").count(), 9);
    assert_eq!(kinds.iter().filter(|k| **k == "constraint").count(), 10);
    assert_eq!(kinds.iter().filter(|k| **k == "index").count(), 6);
    assert!(
        steps
            .iter()
            .all(|s| s.concurrent == s.object.starts_with("index "))
    );
    assert!(steps.iter().all(|s| s.destroys.is_none()));
}

#[test]
fn an_invalid_index_is_rebuilt_and_an_unwanted_one_dropped() {
    let base = "CREATE TABLE t (a int, b int);\n";
    let current = schema(&format!(
        "{base}CREATE INDEX t_a_idx ON t (a);\nCREATE INDEX t_b_idx ON t (b);"
    ));
    let desired = schema(&format!("{base}CREATE INDEX t_a_idx ON t (a);"));
    let invalid = BTreeSet::from(["t_a_idx".to_owned(), "t_b_idx".to_owned()]);
    let steps = diff(&current, &desired, &invalid);
    assert_eq!(
        objects(&steps),
        [
            (StepAction::Rebuild, "index t_a_idx"),
            (StepAction::Drop, "index t_b_idx"),
            (StepAction::Rebuild, "index t_a_idx"),
        ]
    );
    assert_eq!(steps[0].sql, "DROP INDEX CONCURRENTLY IF EXISTS t_a_idx;");
    assert_eq!(
        steps[2].sql,
        "CREATE INDEX CONCURRENTLY t_a_idx ON t USING btree (a);"
    );
}

#[test]
fn a_dropped_table_takes_its_indexes_along() {
    let current = schema("CREATE TABLE gone (a int);\nCREATE INDEX gone_a_idx ON gone (a);");
    let steps = diff(&current, &Schema::default(), &BTreeSet::new());
    assert_eq!(objects(&steps), [(StepAction::Drop, "table gone")]);
    assert!(steps[0].destroys.is_some());
}

#[test]
fn a_changed_index_is_dropped_then_built_again() {
    let current = schema("CREATE TABLE t (a int, b int);\nCREATE INDEX t_idx ON t (a);");
    let desired = schema("CREATE TABLE t (a int, b int);\nCREATE INDEX t_idx ON t (a, b);");
    let steps = diff(&current, &desired, &BTreeSet::new());
    assert_eq!(
        objects(&steps),
        [
            (StepAction::Drop, "index t_idx"),
            (StepAction::Alter, "index t_idx")
        ]
    );
}

#[test]
fn adding_an_identity_sets_not_null_first_and_dropping_one_drops_not_null_after() {
    let plain = schema("CREATE TABLE t (id bigint);");
    let identity = schema("CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY);");
    let sql = |from: &Schema, to: &Schema| -> Vec<String> {
        diff(from, to, &BTreeSet::new())
            .into_iter()
            .map(|s| s.sql)
            .collect()
    };
    assert_eq!(
        sql(&plain, &identity),
        [
            "ALTER TABLE t ALTER COLUMN id SET NOT NULL;",
            "ALTER TABLE t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;",
        ]
    );
    assert_eq!(
        sql(&identity, &plain),
        [
            "ALTER TABLE t ALTER COLUMN id DROP IDENTITY;",
            "ALTER TABLE t ALTER COLUMN id DROP NOT NULL;",
        ]
    );
}

#[test]
fn widening_is_safe_and_everything_else_may_lose_data() {
    for (from, to) in [
        ("smallint", "integer"),
        ("integer", "bigint"),
        ("bigint", "numeric"),
        ("character varying(20)", "character varying(64)"),
        ("character varying(20)", "text"),
        ("character varying(20)", "character varying"),
        ("text", "character varying"),
        ("numeric(8,2)", "numeric(12,2)"),
        ("numeric(8,2)", "numeric(10,4)"),
        ("numeric(8,2)", "numeric"),
        ("real", "double precision"),
    ] {
        assert_eq!(narrowing(from, to), None, "{from} -> {to}");
    }
    for (from, to) in [
        ("integer", "smallint"),
        ("bigint", "integer"),
        ("text", "character varying(500)"),
        ("character varying(64)", "character varying(20)"),
        ("numeric(12,2)", "numeric(12,1)"),
        ("numeric(12,2)", "numeric(11,2)"),
        ("numeric", "numeric(12,2)"),
        ("bigint", "numeric(10,0)"),
        ("double precision", "real"),
        ("text", "integer"),
        ("timestamp with time zone", "date"),
    ] {
        assert!(narrowing(from, to).is_some(), "{from} -> {to}");
    }
}

#[test]
fn identifiers_that_need_quotes_get_them() {
    assert_eq!(ddl::quote("orders"), "orders");
    assert_eq!(ddl::quote("Mixed"), "\"Mixed\"");
    assert_eq!(ddl::quote("user"), "\"user\"");
    assert_eq!(ddl::quote("a\"b"), "\"a\"\"b\"");
    assert_eq!(ddl::quote("2fa"), "\"2fa\"");
}
