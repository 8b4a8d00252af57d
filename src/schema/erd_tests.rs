use std::collections::BTreeMap;

use super::*;
use crate::schema::parse_schema;

const MANIFEST: &str = include_str!("../../manifests/ecommerce.sql");

fn manifest() -> Schema {
    parse_schema("manifests/ecommerce.sql", MANIFEST).expect("the manifest parses")
}

fn parse(sql: &str) -> Schema {
    parse_schema("test.sql", sql).expect("the test schema parses")
}

/// The Mermaid relationship line drawn for the foreign key `name`.
fn relationship_line<'a>(diagram: &'a str, name: &str) -> &'a str {
    let label = format!(": \"{name}\"");
    let lines: Vec<&str> = diagram.lines().filter(|l| l.ends_with(&label)).collect();
    assert_eq!(lines.len(), 1, "{name}: {lines:?}");
    lines[0]
}

#[test]
fn mermaid_of_the_manifest() {
    insta::assert_snapshot!(mermaid(&manifest()));
}

#[test]
fn dot_of_the_manifest() {
    insta::assert_snapshot!(dot(&manifest()));
}

#[test]
fn a_unique_foreign_key_is_one_to_one() {
    let diagram = mermaid(&manifest());
    assert_eq!(
        relationship_line(&diagram, "shipping_order_id_fkey").trim(),
        "orders ||--o| shipping : \"shipping_order_id_fkey\""
    );
    assert!(dot(&manifest()).contains(
        "    \"shipping\":c1 -> \"orders\":c0 [label=\"shipping_order_id_fkey (0..1 : 1)\"];\n"
    ));
}

#[test]
fn a_foreign_key_inside_a_wider_unique_key_is_one_to_many() {
    // UNIQUE (order_id, product_id) lets an order have many lines.
    let diagram = mermaid(&manifest());
    assert_eq!(
        relationship_line(&diagram, "order_details_order_id_fkey").trim(),
        "orders ||--o{ order_details : \"order_details_order_id_fkey\""
    );
}

#[test]
fn a_nullable_self_reference_is_zero_or_one_on_the_referenced_side() {
    let diagram = mermaid(&manifest());
    assert_eq!(
        relationship_line(&diagram, "categories_parent_id_fkey").trim(),
        "categories |o--o{ categories : \"categories_parent_id_fkey\""
    );
    assert!(dot(&manifest()).contains(
        "    \"categories\":c2 -> \"categories\":c0 \
         [label=\"categories_parent_id_fkey (0..* : 0..1)\"];\n"
    ));
}

#[test]
fn a_unique_index_counts_as_a_key_unless_it_is_partial() {
    let sql = "
        CREATE TABLE a (id bigint PRIMARY KEY);
        CREATE TABLE b (id bigint PRIMARY KEY, a_id bigint NOT NULL REFERENCES a);
        CREATE TABLE c (id bigint PRIMARY KEY, a_id bigint NOT NULL REFERENCES a);
        CREATE UNIQUE INDEX b_a_id_idx ON b (a_id DESC);
        CREATE UNIQUE INDEX c_a_id_idx ON c (a_id) WHERE id > 0;
    ";
    let diagram = mermaid(&parse(sql));
    assert_eq!(
        relationship_line(&diagram, "b_a_id_fkey").trim(),
        "a ||--o| b : \"b_a_id_fkey\""
    );
    assert_eq!(
        relationship_line(&diagram, "c_a_id_fkey").trim(),
        "a ||--o{ c : \"c_a_id_fkey\""
    );
    assert!(diagram.contains("        bigint a_id FK, UK \"NOT NULL\"\n"));
}

#[test]
fn every_table_appears_once() {
    let schema = manifest();
    let diagram = mermaid(&schema);
    let graph = dot(&schema);
    for name in schema.tables.keys() {
        let entity = format!("    {name} {{");
        assert_eq!(
            diagram.lines().filter(|l| *l == entity).count(),
            1,
            "{name}"
        );
        let node = format!("    \"{name}\" [label=\"<table> {name} | ");
        assert_eq!(
            graph.lines().filter(|l| l.starts_with(&node)).count(),
            1,
            "{name}"
        );
    }
    assert_eq!(diagram.matches(" {\n").count(), schema.tables.len());
    assert_eq!(
        graph.matches("[label=\"<table> ").count(),
        schema.tables.len()
    );
}

#[test]
fn every_foreign_key_appears_once() {
    let schema = manifest();
    let diagram = mermaid(&schema);
    let graph = dot(&schema);
    let foreign_keys: Vec<&str> = schema
        .tables
        .values()
        .flat_map(|t| &t.foreign_keys)
        .map(|fk| fk.name.as_str())
        .collect();
    assert_eq!(foreign_keys.len(), 10);
    for name in &foreign_keys {
        relationship_line(&diagram, name);
        let edge_label = format!("[label=\"{name} (");
        assert_eq!(graph.matches(&edge_label).count(), 1, "{name}");
    }
    assert_eq!(diagram.matches("--").count(), foreign_keys.len());
    assert_eq!(graph.matches(" -> ").count(), foreign_keys.len());
}

#[test]
fn columns_carry_readable_types_key_markers_and_details() {
    let diagram = mermaid(&manifest());
    for line in [
        "        bigint user_id PK \"GENERATED ALWAYS AS IDENTITY\"\n",
        "        varchar_255 email UK \"NOT NULL\"\n",
        "        numeric_12_2 price \"NOT NULL\"\n",
        "        timestamptz created_at \"NOT NULL DEFAULT now()\"\n",
        "        text status \"NOT NULL DEFAULT 'pending'\"\n",
        "        bigint order_id FK, UK \"NOT NULL\"\n",
        "        bigint parent_id FK\n",
        "        text description\n",
    ] {
        assert!(diagram.contains(line), "missing {line:?}");
    }
}

/// Each entity's attributes as a Mermaid parser (a port of Mermaid's own grammar) reads them:
/// (type, name, comment) by entity.
fn mermaid_attributes(diagram: &str) -> BTreeMap<String, Vec<(String, String, String)>> {
    let parsed = merman_core::Engine::new()
        .parse_diagram_sync(diagram, merman_core::ParseOptions::strict())
        .unwrap_or_else(|e| panic!("Mermaid cannot read the diagram: {e}\n{diagram}"))
        .expect("an erDiagram");
    let entities = parsed.model["entities"].as_object().expect("entities");
    entities
        .values()
        .map(|entity| {
            let attributes = entity["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let text = |key: &str| a[key].as_str().unwrap_or_default().to_owned();
                    (text("type"), text("name"), text("comment"))
                })
                .collect();
            (entity["label"].as_str().unwrap().to_owned(), attributes)
        })
        .collect()
}

/// CHECK constraints and composite keys are rows a Mermaid renderer draws (not `%%`
/// comments it drops), read back by a Mermaid parser with their definitions.
#[test]
fn checks_and_composite_keys_are_drawn_with_their_table() {
    let schema = manifest();
    let diagram = mermaid(&schema);
    let graph = dot(&schema);
    let drawn = mermaid_attributes(&diagram);
    assert_eq!(drawn.len(), schema.tables.len());
    for table in schema.tables.values() {
        for check in &table.checks {
            let row = (
                "check".to_owned(),
                check.name.clone(),
                format!("CHECK ({})", check.expression.replace('"', "'")),
            );
            assert!(
                drawn[&table.name].contains(&row),
                "{row:?} in {:?}",
                drawn[&table.name]
            );
            assert!(
                graph.contains(&format!("> {} CHECK ({})", check.name, check.expression)),
                "{}",
                check.name
            );
        }
    }
    assert!(drawn["order_details"].contains(&(
        "key".to_owned(),
        "order_details_order_id_product_id_key".to_owned(),
        "UNIQUE (order_id, region, product_id)".to_owned()
    )));
    assert!(!diagram.contains("%%"), "{diagram}");
}

/// Names and values that need quoting in Mermaid still give a diagram it reads.
#[test]
fn a_diagram_with_awkward_names_and_checks_is_read_by_mermaid() {
    let sql = include_str!("../../tests/fixtures/naming_and_types.sql");
    let schema = parse(sql);
    let drawn = mermaid_attributes(&mermaid(&schema));
    let checks: usize = schema.tables.values().map(|t| t.checks.len()).sum();
    let rows = drawn
        .values()
        .flatten()
        .filter(|(kind, _, _)| kind == "check")
        .count();
    assert!(checks > 0);
    assert_eq!(rows, checks);
}

#[test]
fn dot_label_text_survives_the_record_syntax() {
    let graph = dot(&manifest());
    assert!(graph.contains(" | <k0> products_price_check CHECK (price >= 0)\"];\n"));
    assert!(
        graph.contains(" | <k0> categories_parent_check CHECK (parent_id <> category_id)\"];\n")
    );

    // Quotes are escaped for the DOT string; braces and bars, which a record cannot escape,
    // become look-alikes; `<` and `>` after a field's port are plain text.
    let sql = r#"CREATE TABLE notes (
        body text NOT NULL DEFAULT '"quoted" & <tagged> {a}',
        CONSTRAINT notes_body_check CHECK (body <> 'a|b')
    );"#;
    let graph = dot(&parse(sql));
    assert!(
        graph.contains(
            "    \"notes\" [label=\"<table> notes | <c0> body : text  NOT NULL DEFAULT \
             '\\\"quoted\\\" & <tagged> ❴a❵' | <k0> notes_body_check CHECK (body <> 'a¦b')\"];\n"
        ),
        "{graph}"
    );
    let diagram = mermaid(&parse(sql));
    assert!(diagram.contains("        text body \"NOT NULL DEFAULT ''quoted' & <tagged> {a}'\"\n"));
}

#[test]
fn a_composite_foreign_key_is_one_edge_from_its_first_column() {
    let sql = "
        CREATE TABLE a (x int, y int, CONSTRAINT a_pkey PRIMARY KEY (x, y));
        CREATE TABLE b (x int, y int, CONSTRAINT b_a_fkey FOREIGN KEY (x, y) REFERENCES a);
    ";
    let schema = parse(sql);
    let graph = dot(&schema);
    assert_eq!(graph.matches(" -> ").count(), 1);
    assert!(graph.contains("    \"b\":c0 -> \"a\":c0 [label=\"b_a_fkey (0..* : 0..1)\"];\n"));
    assert!(graph.contains(" | <k0> a_pkey PRIMARY KEY (x, y)\"];\n"));
    let diagram = mermaid(&schema);
    assert_eq!(
        relationship_line(&diagram, "b_a_fkey").trim(),
        "a |o--o{ b : \"b_a_fkey\""
    );
}

#[test]
fn postgres_types_become_single_mermaid_words() {
    for (data_type, word) in [
        ("bigint", "bigint"),
        ("character varying(255)", "varchar_255"),
        ("character varying", "varchar"),
        ("character(1)", "char_1"),
        ("numeric(12,2)", "numeric_12_2"),
        ("timestamp with time zone", "timestamptz"),
        ("timestamp(3) with time zone", "timestamptz_3"),
        ("timestamp without time zone", "timestamp"),
        ("time with time zone", "timetz"),
        ("double precision", "double_precision"),
        ("integer[]", "integer[]"),
        ("character varying(20)[]", "varchar_20[]"),
    ] {
        assert_eq!(mermaid_type(data_type), word, "{data_type}");
    }
}

#[test]
fn names_mermaid_would_misread_are_quoted() {
    assert_eq!(mermaid_entity("orders"), "orders");
    assert_eq!(mermaid_entity("end"), "\"end\"");
    assert_eq!(mermaid_entity("One"), "\"One\"");
    assert_eq!(mermaid_entity("Order Lines"), "\"Order Lines\"");
    assert_eq!(mermaid_entity("50%"), "\"50_\"");
    assert_eq!(mermaid_word("pk"), "`pk`");
    assert_eq!(mermaid_word("pk_id"), "pk_id");
    assert_eq!(mermaid_word("first name"), "`first name`");
}

#[test]
fn dot_strings_escape_quotes_and_backslashes_only() {
    assert_eq!(dot_string("plain"), "\"plain\"");
    assert_eq!(dot_string("say \"hi\""), r#""say \"hi\"""#);
    assert_eq!(dot_string(r"a\n:b\"), r#""a\\n:b\\""#);
    assert_eq!(record_field("k0", "{x} || y"), "<k0> ❴x❵ ¦¦ y");
}
