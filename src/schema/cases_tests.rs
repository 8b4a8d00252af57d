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
    case_100_tables_created_with_foreign_keys: "100_tables_created_with_foreign_keys" => [];
    case_101_tables_created_in_empty_database: "101_tables_created_in_empty_database" => [];
    case_102_tables_dropped_with_foreign_keys: "102_tables_dropped_with_foreign_keys" => [];
    case_103_self_referencing_table_created: "103_self_referencing_table_created" => [];
    case_104_numeric_and_float_types: "104_numeric_and_float_types" => [];
    case_105_character_types: "105_character_types" => [];
    case_106_date_and_time_types: "106_date_and_time_types" => [];
    case_107_other_base_types: "107_other_base_types" => [];
    case_109_array_types: "109_array_types" => [];
    case_10_type_narrowed: "10_type_narrowed" => [];
    case_111_type_spellings_are_equal: "111_type_spellings_are_equal" => [];
    case_112_integer_types_widened: "112_integer_types_widened" => [];
    case_113_bigint_narrowed_to_integer: "113_bigint_narrowed_to_integer" => [];
    case_114_varchar_and_char_lengthened: "114_varchar_and_char_lengthened" => [];
    case_115_varchar_shortened: "115_varchar_shortened" => [];
    case_116_numeric_precision_widened: "116_numeric_precision_widened" => [];
    case_117_numeric_scale_reduced: "117_numeric_scale_reduced" => [];
    case_118_unbounded_numeric_narrowed: "118_unbounded_numeric_narrowed" => [];
    case_119_text_to_varchar_n: "119_text_to_varchar_n" => [];
    case_11_table_dropped: "11_table_dropped" => [];
    case_120_text_to_integer: "120_text_to_integer" => [];
    case_124_timestamp_precision_reduced: "124_timestamp_precision_reduced" => [];
    case_126_json_to_jsonb: "126_json_to_jsonb" => [];
    case_127_default_literals: "127_default_literals" => [(
        "DEFAULT -1",
        "DEFAULT '-1'::integer"
    ), (
        "DEFAULT -2.5",
        "DEFAULT '-2.5'::numeric"
    ), (
        "DEFAULT 'it''s here'",
        "DEFAULT 'it''s here'::text"
    ), (
        "text DEFAULT NULL",
        "text"
    )];
    case_128_default_current_time_functions: "128_default_current_time_functions" => [];
    case_129_default_gen_random_uuid: "129_default_gen_random_uuid" => [];
    case_12_default_and_identity_changed: "12_default_and_identity_changed" => [(
        "SET DEFAULT 'pending';",
        "SET DEFAULT 'pending'::text;"
    )];
    case_130_default_expressions: "130_default_expressions" => [(
        "DEFAULT (1 + 2) * 3",
        "DEFAULT ((1 + 2) * 3)"
    ), (
        "DEFAULT lower('ABC')",
        "DEFAULT lower('ABC'::text)"
    ), (
        "DEFAULT now() + INTERVAL '7 days'",
        "DEFAULT (now() + '7 days'::interval)"
    ), (
        "DEFAULT 'job-' || 1",
        "DEFAULT ('job-'::text || 1)"
    )];
    case_131_default_casts: "131_default_casts" => [(
        "DEFAULT '2026-01-01'::DATE",
        "DEFAULT '2026-01-01'::date"
    ), (
        "DEFAULT CAST('1 hour' AS INTERVAL)",
        "DEFAULT '01:00:00'::interval"
    ), (
        "DEFAULT '42'::BIGINT",
        "DEFAULT '42'::bigint"
    ), (
        "DEFAULT 'none'::CHARACTER VARYING",
        "DEFAULT 'none'::character varying"
    )];
    case_132_default_arrays: "132_default_arrays" => [(
        "DEFAULT '{}'",
        "DEFAULT '{}'::text[]"
    ), (
        "DEFAULT ARRAY[]::TEXT[]",
        "DEFAULT ARRAY[]::text[]"
    )];
    case_133_default_json: "133_default_json" => [(
        "DEFAULT '{}'::JSONB",
        "DEFAULT '{}'::jsonb"
    ), (
        "DEFAULT '[]'",
        "DEFAULT '[]'::json"
    ), (
        "DEFAULT '{\"v\": 1}'",
        "DEFAULT '{\"v\": 1}'::jsonb"
    )];
    case_134_default_added: "134_default_added" => [(
        "DEFAULT 'new'",
        "DEFAULT 'new'::text"
    )];
    case_135_default_changed: "135_default_changed" => [(
        "DEFAULT 'draft'",
        "DEFAULT 'draft'::text"
    )];
    case_136_default_dropped: "136_default_dropped" => [];
    case_137_default_equal_spellings: "137_default_equal_spellings" => [];
    case_138_default_string_with_quotes_changed: "138_default_string_with_quotes_changed" => [(
        "DEFAULT 'O''Reilly'",
        "DEFAULT 'O''Reilly'::text"
    ), (
        "DEFAULT 'C:\\temp'",
        "DEFAULT 'C:\\temp'::text"
    ), (
        "DEFAULT '\"hi\"'",
        "DEFAULT '\"hi\"'::character varying"
    )];
    case_139_not_null_dropped: "139_not_null_dropped" => [];
    case_13_referenced_key_changed: "13_referenced_key_changed" => [];
    case_140_not_null_added_to_several: "140_not_null_added_to_several" => [];
    case_141_type_and_default_changed_together: "141_type_and_default_changed_together" => [(
        "DEFAULT -1",
        "DEFAULT '-1'::integer"
    )];
    case_143_new_column_nullable_and_null_keyword: "143_new_column_nullable_and_null_keyword" => [(
        "DEFAULT NULL",
        "DEFAULT NULL::character varying"
    )];
    case_144_identity_always_added: "144_identity_always_added" => [];
    case_145_identity_by_default_added_to_key: "145_identity_by_default_added_to_key" => [];
    case_146_identity_dropped_and_nullable: "146_identity_dropped_and_nullable" => [];
    case_147_identity_switched_to_by_default: "147_identity_switched_to_by_default" => [];
    case_148_identity_on_each_integer_type: "148_identity_on_each_integer_type" => [];
    case_14_pg_dump_manifest: "14_pg_dump_manifest" => [];
    case_153_default_replaced_by_identity: "153_default_replaced_by_identity" => [];
    case_154_identity_column_widened: "154_identity_column_widened" => [];
    case_155_identity_new_column_on_existing_table: "155_identity_new_column_on_existing_table" => [];
    case_156_identity_spelled_with_equal_options: "156_identity_spelled_with_equal_options" => [];
    case_157_referenced_key_widened: "157_referenced_key_widened" => [];
    case_158_quoted_mixed_case_names: "158_quoted_mixed_case_names" => [];
    case_159_unquoted_names_fold_to_lowercase: "159_unquoted_names_fold_to_lowercase" => [];
    case_15_constraints_added_by_alter_table: "15_constraints_added_by_alter_table" => [];
    case_160_quoted_column_altered: "160_quoted_column_altered" => [(
        "DEFAULT 'Open'",
        "DEFAULT 'Open'::text"
    )];
    case_161_reserved_words_as_names: "161_reserved_words_as_names" => [];
    case_162_reserved_word_columns_added_and_dropped: "162_reserved_word_columns_added_and_dropped" => [(
        "DEFAULT ''",
        "DEFAULT ''::text"
    )];
    case_163_names_with_spaces_and_quotes: "163_names_with_spaces_and_quotes" => [];
    case_166_unicode_names: "166_unicode_names" => [];
    case_167_column_added_in_the_middle: "167_column_added_in_the_middle" => [];
    case_168_table_with_many_columns: "168_table_with_many_columns" => [(
        "DEFAULT 'x'",
        "DEFAULT 'x'::bpchar"
    )];
    case_169_public_qualified_names: "169_public_qualified_names" => [];
    case_170_column_renamed_is_drop_and_add: "170_column_renamed_is_drop_and_add" => [];
    case_171_table_renamed_is_drop_and_create: "171_table_renamed_is_drop_and_create" => [];
    case_172_several_columns_dropped: "172_several_columns_dropped" => [];
    case_189_by_hand_default_changed: "189_by_hand_default_changed" => [];
    case_190_by_hand_not_null_dropped_and_column_added: "190_by_hand_not_null_dropped_and_column_added" => [];
    case_191_by_hand_identity_dropped_and_switched: "191_by_hand_identity_dropped_and_switched" => [];
    case_192_by_hand_table_created: "192_by_hand_table_created" => [];
    case_193_by_hand_type_widened: "193_by_hand_type_widened" => [];
    case_194_by_hand_column_renamed: "194_by_hand_column_renamed" => [];
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
