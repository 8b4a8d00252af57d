//! The schema diff cases of `tests/schema_cases/*.yaml`, one test each, without a server:
//! both manifests parsed by dbtopo's parser and compared by the pure diff.
//!
//! Against a server, dbtopo compares the catalog with the manifest as that server spells it;
//! here both sides are spelled by the parser. So the steps must be the case's expected SQL,
//! statement for statement, once each expression the server spells its own way (a CHECK, an
//! index predicate, a default) is put as the server spells it; each such respelling is listed
//! with its case and must occur exactly once. The steps destroy data exactly when the case
//! says so, and each schema compared with itself needs no step. A case whose current schema
//! is made by hand (SQL a manifest cannot hold) is checked here for its desired side only.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::diff::{Step, diff};
use super::parse_manifest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    current: String,
    #[serde(default)]
    current_by_hand: bool,
    desired: String,
    expected: String,
    #[serde(default)]
    destructive: bool,
}

fn steps_of(file: &str, text: &str) -> (Case, Vec<Step>) {
    let case: Case =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("case {file} does not parse: {e}"));
    let parse = |sql: &str| {
        parse_manifest(&format!("{file}.sql"), sql)
            .unwrap_or_else(|e| panic!("{file}: {e:?}"))
            .schema
    };
    let desired = parse(&case.desired);
    let current = if case.current_by_hand {
        desired.clone()
    } else {
        parse(&case.current)
    };
    for (side, schema) in [("current", &current), ("desired", &desired)] {
        let itself = diff(schema, schema, &BTreeSet::new());
        assert!(
            itself.is_empty(),
            "{file}: the {side} schema compared with itself needs {itself:#?}"
        );
    }
    let steps = diff(&current, &desired, &BTreeSet::new());
    (case, steps)
}

/// Check a case; `respelled` lists each expression as the parser spells it, and as the
/// server does in the case's expected SQL.
fn check(file: &str, text: &str, respelled: &[(&str, &str)]) {
    let (case, steps) = steps_of(file, text);
    if case.current_by_hand {
        assert!(steps.is_empty() && respelled.is_empty());
        return;
    }
    let mut sql: String = steps.iter().map(|s| format!("{}\n", s.sql)).collect();
    assert_eq!(
        steps.iter().any(|s| s.destroys.is_some()),
        case.destructive,
        "{file}: destructive or not\n{sql}"
    );
    for (parser, server) in respelled {
        assert_eq!(
            sql.matches(parser).count(),
            1,
            "{file}: the steps spell {parser:?} once\n{sql}"
        );
        sql = sql.replace(parser, server);
    }
    assert_eq!(sql, case.expected, "{file}: the steps' SQL");
}

macro_rules! cases {
    ($($test:ident: $file:literal => [$($respelled:expr),*];)*) => {
        $(
            #[test]
            fn $test() {
                check(
                    $file,
                    include_str!(concat!("../../tests/schema_cases/", $file, ".yaml")),
                    &[$($respelled),*],
                );
            }
        )*

        /// Every case file, as the tests above name them.
        const FILES: &[&str] = &[$($file),*];
    };
}

cases! {
    case_01_new_table: "01_new_table" => [(
        "CHECK (total >= 0)",
        "CHECK ((total >= (0)::numeric))"
    )];
    case_02_new_column_with_default: "02_new_column_with_default" => [];
    case_03_not_null_added: "03_not_null_added" => [];
    case_04_foreign_key_added: "04_foreign_key_added" => [];
    case_05_check_changed: "05_check_changed" => [(
        "CHECK (status IN ('pending', 'paid', 'shipped'))",
        "CHECK ((status = ANY (ARRAY['pending'::text, 'paid'::text, 'shipped'::text])))"
    )];
    case_06_index_added: "06_index_added" => [(
        "WHERE placed_at > '2026-01-01';",
        "WHERE placed_at > '2026-01-01 00:00:00+00'::timestamp with time zone;"
    )];
    case_07_index_removed: "07_index_removed" => [];
    case_08_column_dropped: "08_column_dropped" => [];
    case_09_type_widened: "09_type_widened" => [];
    case_10_type_narrowed: "10_type_narrowed" => [];
    case_11_table_dropped: "11_table_dropped" => [];
    case_12_default_and_identity_changed: "12_default_and_identity_changed" => [(
        "SET DEFAULT 'pending';",
        "SET DEFAULT 'pending'::text;"
    )];
    case_13_referenced_key_changed: "13_referenced_key_changed" => [];
    case_14_pg_dump_manifest: "14_pg_dump_manifest" => [];
    case_15_constraints_added_by_alter_table: "15_constraints_added_by_alter_table" => [];
    case_16_index_operator_class: "16_index_operator_class" => [];
    case_17_row_security_enabled_by_hand: "17_row_security_enabled_by_hand" => [];
    case_18_serial_columns_in_a_new_table: "18_serial_columns_in_a_new_table" => [];
    case_19_pg_dump_serial_and_identity_forms: "19_pg_dump_serial_and_identity_forms" => [];
    case_20_identity_options_changed: "20_identity_options_changed" => [];
    case_21_identity_increment_changed_by_hand: "21_identity_increment_changed_by_hand" => [];
    case_22_column_collation: "22_column_collation" => [];
    case_23_comments: "23_comments" => [];
    case_24_generated_column_expression_changed: "24_generated_column_expression_changed" => [(
        "AS (qty * price * 1.2)",
        "AS ((((qty)::numeric * price) * 1.2))"
    )];
    case_25_unlogged_and_storage_parameters_by_hand: "25_unlogged_and_storage_parameters_by_hand" => [];
    case_26_constraints_changed_by_hand: "26_constraints_changed_by_hand" => [];
    case_27_index_include_and_parameters_by_hand: "27_index_include_and_parameters_by_hand" => [];
    case_28_serial_to_identity: "28_serial_to_identity" => [];
    case_29_identity_to_serial: "29_identity_to_serial" => [];
    case_30_row_security_and_table_options_in_the_manifest: "30_row_security_and_table_options_in_the_manifest" => [];
    case_31_column_made_generated: "31_column_made_generated" => [(
        "AS (qty * price)",
        "AS (((qty)::numeric * price))"
    )];
    case_32_serial_sequence_options_by_hand: "32_serial_sequence_options_by_hand" => [];
    case_33_column_becomes_serial: "33_column_becomes_serial" => [];
}

#[test]
fn every_case_file_has_its_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_cases");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("the cases folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, FILES);
}
