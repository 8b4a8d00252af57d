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
    case_200_primary_key_added: "200_primary_key_added" => [];
    case_201_primary_key_dropped_column_kept_not_null: "201_primary_key_dropped_column_kept_not_null" => [];
    case_202_primary_key_dropped_column_nullable: "202_primary_key_dropped_column_nullable" => [];
    case_203_composite_primary_key_added: "203_composite_primary_key_added" => [];
    case_204_primary_key_columns_changed: "204_primary_key_columns_changed" => [];
    case_205_primary_key_constraint_renamed: "205_primary_key_constraint_renamed" => [];
    case_206_primary_key_inline_equals_table_level: "206_primary_key_inline_equals_table_level" => [];
    case_207_primary_key_inline_named_new_table: "207_primary_key_inline_named_new_table" => [];
    case_208_primary_key_added_by_alter_table_only: "208_primary_key_added_by_alter_table_only" => [];
    case_209_primary_key_moved_to_other_column: "209_primary_key_moved_to_other_column" => [];
    case_210_unique_single_unnamed_added: "210_unique_single_unnamed_added" => [];
    case_211_unique_composite_unnamed_added: "211_unique_composite_unnamed_added" => [];
    case_212_unique_named_added: "212_unique_named_added" => [];
    case_213_unique_dropped: "213_unique_dropped" => [];
    case_214_unique_columns_changed: "214_unique_columns_changed" => [];
    case_215_unique_added_by_alter_table_only: "215_unique_added_by_alter_table_only" => [];
    case_217_primary_key_and_unique_added_together: "217_primary_key_and_unique_added_together" => [];
    case_218_unique_on_new_table_with_name_collision: "218_unique_on_new_table_with_name_collision" => [];
    case_220_check_comparison_added: "220_check_comparison_added" => [(
        "CHECK (amount > 0)",
        "CHECK ((amount > (0)::numeric))"
    )];
    case_221_check_in_list_integers: "221_check_in_list_integers" => [(
        "CHECK (priority IN (1, 2, 3))",
        "CHECK ((priority = ANY (ARRAY[1, 2, 3])))"
    )];
    case_222_check_between: "222_check_between" => [(
        "CHECK (rating BETWEEN 1 AND 5)",
        "CHECK (((rating >= 1) AND (rating <= 5)))"
    )];
    case_223_check_like: "223_check_like" => [(
        "CHECK (sku LIKE 'SKU-%')",
        "CHECK ((sku ~~ 'SKU-%'::text))"
    )];
    case_224_check_regex: "224_check_regex" => [(
        "CHECK (email ~ '^[^@]+@[^@]+$')",
        "CHECK ((email ~ '^[^@]+@[^@]+$'::text))"
    )];
    case_225_check_is_not_null_two_columns: "225_check_is_not_null_two_columns" => [(
        "CHECK (card_id IS NOT NULL OR iban IS NOT NULL)",
        "CHECK (((card_id IS NOT NULL) OR (iban IS NOT NULL)))"
    )];
    case_226_check_column_comparison: "226_check_column_comparison" => [(
        "CHECK (starts_at < ends_at)",
        "CHECK ((starts_at < ends_at))"
    )];
    case_227_check_length_function: "227_check_length_function" => [(
        "CHECK (length(name) > 0)",
        "CHECK ((length(name) > 0))"
    )];
    case_228_check_char_length_on_new_column: "228_check_char_length_on_new_column" => [(
        "CHECK (char_length(iso_code) = 2)",
        "CHECK ((char_length(iso_code) = 2))"
    )];
    case_229_check_lower: "229_check_lower" => [(
        "CHECK (lower(email) = email)",
        "CHECK ((lower(email) = email))"
    )];
    case_230_check_date_literal: "230_check_date_literal" => [(
        "CHECK (born_on > '1900-01-01')",
        "CHECK ((born_on > '1900-01-01'::date))"
    )];
    case_231_check_boolean_logic: "231_check_boolean_logic" => [(
        "CHECK (NOT archived OR archived_at IS NOT NULL)",
        "CHECK (((NOT archived) OR (archived_at IS NOT NULL)))"
    )];
    case_232_check_bound_changed: "232_check_bound_changed" => [(
        "CHECK (balance >= -1000)",
        "CHECK ((balance >= '-1000'::integer))"
    )];
    case_233_check_dropped: "233_check_dropped" => [];
    case_234_check_identical_unnamed_twice: "234_check_identical_unnamed_twice" => [(
        "lines_qty_check CHECK (qty > 0)",
        "lines_qty_check CHECK ((qty > 0))"
    ), (
        "lines_qty_check1 CHECK (qty > 0)",
        "lines_qty_check1 CHECK ((qty > 0))"
    )];
    case_235_check_renamed: "235_check_renamed" => [(
        "CHECK (qty >= 0)",
        "CHECK ((qty >= 0))"
    )];
    case_236_check_added_by_alter_table_only: "236_check_added_by_alter_table_only" => [];
    case_239_check_not_in: "239_check_not_in" => [(
        "CHECK (name NOT IN ('admin', 'root'))",
        "CHECK ((name <> ALL (ARRAY['admin'::text, 'root'::text])))"
    )];
    case_240_check_column_level_two_columns: "240_check_column_level_two_columns" => [(
        "CHECK (discount <= price)",
        "CHECK ((discount <= price))"
    )];
    case_241_check_case_insensitive_regex_and_cardinality: "241_check_case_insensitive_regex_and_cardinality" => [(
        "CHECK (slug !~* '[^a-z0-9-]')",
        "CHECK ((slug !~* '[^a-z0-9-]'::text))"
    ), (
        "CHECK (cardinality(tags) <= 10)",
        "CHECK ((cardinality(tags) <= 10))"
    )];
    case_242_fk_on_delete_cascade: "242_fk_on_delete_cascade" => [];
    case_243_fk_on_delete_set_null: "243_fk_on_delete_set_null" => [];
    case_244_fk_on_delete_set_default: "244_fk_on_delete_set_default" => [];
    case_245_fk_restrict_and_on_update_cascade: "245_fk_restrict_and_on_update_cascade" => [];
    case_246_fk_explicit_no_action_is_default: "246_fk_explicit_no_action_is_default" => [];
    case_247_fk_on_delete_changed: "247_fk_on_delete_changed" => [];
    case_248_fk_on_update_changed: "248_fk_on_update_changed" => [];
    case_249_fk_composite: "249_fk_composite" => [];
    case_250_fk_self_referencing_added: "250_fk_self_referencing_added" => [];
    case_251_fk_self_referencing_new_table: "251_fk_self_referencing_new_table" => [];
    case_252_fk_to_unique_non_primary_key: "252_fk_to_unique_non_primary_key" => [];
    case_253_fk_without_columns_to_composite_key: "253_fk_without_columns_to_composite_key" => [];
    case_254_fk_cycle_closed_by_alter_table: "254_fk_cycle_closed_by_alter_table" => [];
    case_255_fk_cycle_on_existing_tables: "255_fk_cycle_on_existing_tables" => [];
    case_256_referenced_unique_renamed_two_referrers: "256_referenced_unique_renamed_two_referrers" => [];
    case_257_referenced_primary_key_columns_changed: "257_referenced_primary_key_columns_changed" => [];
    case_258_referenced_and_referrer_dropped: "258_referenced_and_referrer_dropped" => [];
    case_259_fk_dropped: "259_fk_dropped" => [];
    case_263_index_single_unnamed: "263_index_single_unnamed" => [];
    case_264_index_multi_column_unnamed: "264_index_multi_column_unnamed" => [];
    case_265_unique_index_added: "265_unique_index_added" => [];
    case_266_index_expression_lower: "266_index_expression_lower" => [];
    case_267_index_partial: "267_index_partial" => [(
        "WHERE status = 'active';",
        "WHERE status = 'active'::text;"
    )];
    case_268_index_desc_nulls: "268_index_desc_nulls" => [(
        "(rank DESC NULLS FIRST, id ASC NULLS LAST)",
        "(rank DESC, id)"
    )];
    case_269_index_hash: "269_index_hash" => [];
    case_270_index_gin_jsonb_and_array: "270_index_gin_jsonb_and_array" => [];
    case_272_index_gist_range: "272_index_gist_range" => [];
    case_273_index_brin: "273_index_brin" => [];
    case_281_index_columns_changed: "281_index_columns_changed" => [];
    case_282_index_renamed: "282_index_renamed" => [];
    case_283_index_made_unique_and_method_changed: "283_index_made_unique_and_method_changed" => [];
    case_284_many_indexes_one_table: "284_many_indexes_one_table" => [(
        "WHERE state IN ('open', 'blocked');",
        "WHERE state = ANY (ARRAY['open'::text, 'blocked'::text]);"
    )];
    case_285_index_gin_to_tsvector_expression: "285_index_gin_to_tsvector_expression" => [(
        "to_tsvector('english', body)",
        "to_tsvector('english'::regconfig, body)"
    )];
    case_293_by_hand_fk_action_extra_index_check_dropped_unique: "293_by_hand_fk_action_extra_index_check_dropped_unique" => [];
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
    let mut listed = FILES.to_vec();
    listed.sort();
    assert_eq!(on_disk, listed);
}
