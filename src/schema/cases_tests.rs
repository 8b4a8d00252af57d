//! The schema diff cases of `tests/schema_cases/*.yaml`, one test each, without a server:
//! both manifests parsed by dbtopo's parser and compared by the pure diff.
//!
//! Against a server, dbtopo compares the catalog with the manifest as that server spells it;
//! here both sides are spelled by the parser. So the steps must be the case's expected SQL,
//! statement for statement, once each expression the server spells its own way (a CHECK, an
//! index predicate, a default) is put as the server spells it; each such respelling is listed
//! with its case and must occur exactly once. The steps destroy data exactly when the case
//! says so, and each schema compared with itself needs no step. A case whose current schema
//! is made by hand (SQL a manifest cannot hold) is checked here for its desired side only; a
//! refused manifest must be refused by the parser with the case's diagnostic.

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
    #[serde(default)]
    expected: String,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    refused: Option<String>,
}

fn steps_of(file: &str, text: &str) -> (Case, Vec<Step>) {
    let case: Case =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("case {file} does not parse: {e}"));
    if let Some(refusal) = &case.refused {
        let error = parse_manifest(&format!("{file}.sql"), &case.desired)
            .expect_err("the desired manifest is refused");
        let report = crate::test_support::render_report(&error);
        assert!(report.contains(refusal.as_str()), "{file}: {report}");
        return (case, Vec::new());
    }
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
    if case.refused.is_some() {
        assert!(respelled.is_empty());
        return;
    }
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
    case_34_keys_with_options: "34_keys_with_options" => [];
    case_35_keys_changed_by_hand: "35_keys_changed_by_hand" => [];
    case_36_unnamed_index_with_include: "36_unnamed_index_with_include" => [];
    case_37_column_settings_changed_by_hand: "37_column_settings_changed_by_hand" => [];
    case_38_replica_identity_and_cluster_by_hand: "38_replica_identity_and_cluster_by_hand" => [];
    case_40_refused_view: "40_refused_view" => [];
    case_41_refused_function: "41_refused_function" => [];
    case_42_refused_trigger: "42_refused_trigger" => [];
    case_43_refused_policy: "43_refused_policy" => [];
    case_44_refused_enum_type: "44_refused_enum_type" => [];
    case_45_refused_extension: "45_refused_extension" => [];
    case_46_refused_sequence_of_its_own: "46_refused_sequence_of_its_own" => [];
    case_47_refused_other_schema: "47_refused_other_schema" => [];
    case_48_refused_data_statement: "48_refused_data_statement" => [];
    case_49_refused_partitioned_table: "49_refused_partitioned_table" => [];
    case_50_refused_inheritance: "50_refused_inheritance" => [];
    case_51_refused_temporary_table: "51_refused_temporary_table" => [];
    case_52_refused_grant: "52_refused_grant" => [];
    case_53_refused_alter_column_type: "53_refused_alter_column_type" => [];
    case_54_refused_virtual_generated_column: "54_refused_virtual_generated_column" => [];
    case_55_refused_serial_array: "55_refused_serial_array" => [];
    case_100_tables_created_with_foreign_keys: "100_tables_created_with_foreign_keys" => [];
    case_101_tables_created_in_empty_database: "101_tables_created_in_empty_database" => [];
    case_102_tables_dropped_with_foreign_keys: "102_tables_dropped_with_foreign_keys" => [];
    case_103_self_referencing_table_created: "103_self_referencing_table_created" => [];
    case_104_numeric_and_float_types: "104_numeric_and_float_types" => [];
    case_105_character_types: "105_character_types" => [];
    case_106_date_and_time_types: "106_date_and_time_types" => [];
    case_107_other_base_types: "107_other_base_types" => [];
    case_108_bit_string_types: "108_bit_string_types" => [];
    case_109_array_types: "109_array_types" => [];
    case_110_multidimensional_arrays: "110_multidimensional_arrays" => [];
    case_111_type_spellings_are_equal: "111_type_spellings_are_equal" => [];
    case_112_integer_types_widened: "112_integer_types_widened" => [];
    case_113_bigint_narrowed_to_integer: "113_bigint_narrowed_to_integer" => [];
    case_114_varchar_and_char_lengthened: "114_varchar_and_char_lengthened" => [];
    case_115_varchar_shortened: "115_varchar_shortened" => [];
    case_116_numeric_precision_widened: "116_numeric_precision_widened" => [];
    case_117_numeric_scale_reduced: "117_numeric_scale_reduced" => [];
    case_118_unbounded_numeric_narrowed: "118_unbounded_numeric_narrowed" => [];
    case_119_text_to_varchar_n: "119_text_to_varchar_n" => [];
    case_120_text_to_integer: "120_text_to_integer" => [];
    case_121_integer_to_text: "121_integer_to_text" => [];
    case_122_bigint_to_wide_numeric: "122_bigint_to_wide_numeric" => [];
    case_123_timestamp_precision_widened: "123_timestamp_precision_widened" => [];
    case_124_timestamp_precision_reduced: "124_timestamp_precision_reduced" => [];
    case_125_array_element_type_widened: "125_array_element_type_widened" => [];
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
    case_140_not_null_added_to_several: "140_not_null_added_to_several" => [];
    case_141_type_and_default_changed_together: "141_type_and_default_changed_together" => [(
        "DEFAULT -1",
        "DEFAULT '-1'::integer"
    )];
    case_142_text_to_integer_with_default: "142_text_to_integer_with_default" => [];
    case_143_new_column_nullable_and_null_keyword: "143_new_column_nullable_and_null_keyword" => [(
        "DEFAULT NULL",
        "DEFAULT NULL::character varying"
    )];
    case_144_identity_always_added: "144_identity_always_added" => [];
    case_145_identity_by_default_added_to_key: "145_identity_by_default_added_to_key" => [];
    case_146_identity_dropped_and_nullable: "146_identity_dropped_and_nullable" => [];
    case_147_identity_switched_to_by_default: "147_identity_switched_to_by_default" => [];
    case_148_identity_on_each_integer_type: "148_identity_on_each_integer_type" => [];
    case_149_identity_with_start_and_increment: "149_identity_with_start_and_increment" => [];
    case_150_identity_with_min_max_cache_cycle: "150_identity_with_min_max_cache_cycle" => [];
    case_151_identity_options_changed: "151_identity_options_changed" => [];
    case_152_identity_replaced_by_default: "152_identity_replaced_by_default" => [];
    case_153_default_replaced_by_identity: "153_default_replaced_by_identity" => [];
    case_154_identity_column_widened: "154_identity_column_widened" => [];
    case_155_identity_new_column_on_existing_table: "155_identity_new_column_on_existing_table" => [];
    case_156_identity_spelled_with_equal_options: "156_identity_spelled_with_equal_options" => [];
    case_157_referenced_key_widened: "157_referenced_key_widened" => [];
    case_158_quoted_mixed_case_names: "158_quoted_mixed_case_names" => [];
    case_159_unquoted_names_fold_to_lowercase: "159_unquoted_names_fold_to_lowercase" => [];
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
    case_164_long_names_truncated: "164_long_names_truncated" => [];
    case_165_long_name_equals_truncated_name: "165_long_name_equals_truncated_name" => [];
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
    case_173_text_search_and_geometric_types: "173_text_search_and_geometric_types" => [];
    case_174_serial_column: "174_serial_column" => [];
    case_175_bigserial_column_added: "175_bigserial_column_added" => [];
    case_176_smallserial_and_serial_spellings: "176_smallserial_and_serial_spellings" => [];
    case_177_column_collate_c: "177_column_collate_c" => [];
    case_178_column_collation_added: "178_column_collation_added" => [];
    case_179_generated_column_stored: "179_generated_column_stored" => [(
        "AS (qty * price)",
        "AS (((qty)::numeric * price))"
    )];
    case_180_comment_on_table_and_column: "180_comment_on_table_and_column" => [];
    case_181_pg_dump_sequence_owned_by: "181_pg_dump_sequence_owned_by" => [];
    case_182_pg_dump_identity_with_sequence_name: "182_pg_dump_identity_with_sequence_name" => [];
    case_183_by_hand_column_collation: "183_by_hand_column_collation" => [];
    case_184_by_hand_identity_increment_changed: "184_by_hand_identity_increment_changed" => [];
    case_185_by_hand_identity_sequence_altered: "185_by_hand_identity_sequence_altered" => [];
    case_186_by_hand_comment_added: "186_by_hand_comment_added" => [];
    case_187_by_hand_table_unlogged: "187_by_hand_table_unlogged" => [];
    case_188_by_hand_storage_parameters: "188_by_hand_storage_parameters" => [];
    case_189_by_hand_default_changed: "189_by_hand_default_changed" => [];
    case_190_by_hand_not_null_dropped_and_column_added: "190_by_hand_not_null_dropped_and_column_added" => [];
    case_191_by_hand_identity_dropped_and_switched: "191_by_hand_identity_dropped_and_switched" => [];
    case_192_by_hand_table_created: "192_by_hand_table_created" => [];
    case_193_by_hand_type_widened: "193_by_hand_type_widened" => [];
    case_194_by_hand_column_renamed: "194_by_hand_column_renamed" => [];
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
    case_216_unique_written_twice_is_one: "216_unique_written_twice_is_one" => [];
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
    case_237_check_no_inherit: "237_check_no_inherit" => [(
        "CHECK (value >= 0)",
        "CHECK ((value >= (0)::double precision))"
    )];
    case_238_check_not_valid: "238_check_not_valid" => [];
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
    case_260_fk_match_full: "260_fk_match_full" => [];
    case_261_fk_deferrable_initially_deferred: "261_fk_deferrable_initially_deferred" => [];
    case_262_fk_on_delete_set_null_column_list: "262_fk_on_delete_set_null_column_list" => [];
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
    case_271_index_gin_tsvector: "271_index_gin_tsvector" => [(
        "to_tsvector('english', body)",
        "to_tsvector('english'::regconfig, body)"
    )];
    case_272_index_gist_range: "272_index_gist_range" => [];
    case_273_index_brin: "273_index_brin" => [];
    case_274_index_text_pattern_ops: "274_index_text_pattern_ops" => [];
    case_275_index_varchar_pattern_ops: "275_index_varchar_pattern_ops" => [];
    case_276_index_gin_jsonb_path_ops: "276_index_gin_jsonb_path_ops" => [];
    case_277_index_collate: "277_index_collate" => [];
    case_278_index_include: "278_index_include" => [];
    case_279_index_nulls_not_distinct: "279_index_nulls_not_distinct" => [];
    case_280_index_with_fillfactor: "280_index_with_fillfactor" => [(
        "WITH (fillfactor = 70)",
        "WITH (fillfactor='70')"
    )];
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
    case_286_exclusion_constraint: "286_exclusion_constraint" => [];
    case_287_row_level_security_enabled: "287_row_level_security_enabled" => [];
    case_288_by_hand_index_operator_class: "288_by_hand_index_operator_class" => [];
    case_289_by_hand_index_include_and_collation: "289_by_hand_index_include_and_collation" => [];
    case_290_by_hand_check_no_inherit: "290_by_hand_check_no_inherit" => [];
    case_291_by_hand_check_not_valid: "291_by_hand_check_not_valid" => [];
    case_292_by_hand_fk_deferrable: "292_by_hand_fk_deferrable" => [];
    case_293_by_hand_fk_action_extra_index_check_dropped_unique: "293_by_hand_fk_action_extra_index_check_dropped_unique" => [];
    case_294_by_hand_extra_exclusion_constraint: "294_by_hand_extra_exclusion_constraint" => [];
    case_295_by_hand_row_level_security: "295_by_hand_row_level_security" => [];
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
