use super::model::{Check, ForeignKey, Identity, KeyConstraint, ReferentialAction, Table};
use super::*;

const MANIFEST: &str = include_str!("../../manifests/ecommerce.sql");

fn manifest() -> Schema {
    parse_schema("manifests/ecommerce.sql", MANIFEST).expect("the manifest parses")
}

fn parse(sql: &str) -> Schema {
    parse_schema("test.sql", sql).unwrap_or_else(|e| panic!("{}", render(&e)))
}

fn error(sql: &str) -> SchemaError {
    parse_schema("test.sql", sql).expect_err("must be rejected")
}

fn render(err: &SchemaError) -> String {
    crate::test_support::render_report(err)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn key(name: &str, columns: &[&str]) -> KeyConstraint {
    KeyConstraint {
        name: name.into(),
        columns: strings(columns),
        definition: None,
    }
}

fn check(name: &str, expression: &str) -> Check {
    Check {
        name: name.into(),
        expression: expression.into(),
        definition: None,
    }
}

fn fk(name: &str, column: &str, table: &str, on_delete: ReferentialAction) -> ForeignKey {
    ForeignKey {
        name: name.into(),
        columns: strings(&[column]),
        referenced_table: table.into(),
        referenced_columns: strings(&[column]),
        on_delete,
        on_update: ReferentialAction::NoAction,
        definition: None,
    }
}

fn types_of(table: &Table) -> Vec<(&str, &str)> {
    table
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str()))
        .collect()
}

#[test]
fn the_manifest_has_the_nine_tables_and_their_indexes() {
    let schema = manifest();
    let tables: Vec<&str> = schema.tables.keys().map(String::as_str).collect();
    assert_eq!(
        tables,
        [
            "categories",
            "inventory",
            "order_details",
            "orders",
            "products",
            "reviews",
            "shipping",
            "transactions",
            "users"
        ]
    );
    let orders_index = &schema.indexes["orders_user_id_order_date_idx"];
    assert_eq!(orders_index.table, "orders");
    assert_eq!(orders_index.columns, strings(&["user_id", "order_date"]));
    assert_eq!(orders_index.method, "btree");
    assert!(!orders_index.unique);
    assert_eq!(schema.indexes.len(), 6);
    // Every foreign key column is the leading column of some index.
    for table in schema.tables.values() {
        for fk in &table.foreign_keys {
            let leading = &fk.columns[0];
            let indexed = schema
                .indexes
                .values()
                .filter(|i| i.table == table.name)
                .map(|i| &i.columns[0])
                .chain(table.uniques.iter().map(|u| &u.columns[0]))
                .any(|c| c == leading);
            assert!(indexed, "{}: {} has no index", table.name, fk.name);
        }
    }
}

#[test]
fn orders_columns_keys_and_checks() {
    let schema = manifest();
    let orders = &schema.tables["orders"];
    assert_eq!(
        types_of(orders),
        [
            ("order_id", "bigint"),
            ("user_id", "bigint"),
            ("region", "text"),
            ("order_date", "timestamp with time zone"),
            ("status", "text"),
            ("total_amount", "numeric(12,2)"),
        ]
    );
    let id = &orders.columns[0];
    assert_eq!(id.identity, Some(Identity::Always));
    assert!(id.not_null);
    assert_eq!(id.default, None);
    let order_date = orders.column("order_date").unwrap();
    assert_eq!(order_date.default.as_deref(), Some("now()"));
    assert!(order_date.not_null);
    assert_eq!(
        orders.column("status").unwrap().default.as_deref(),
        Some("'pending'")
    );
    assert_eq!(
        orders.primary_key,
        Some(key("orders_pkey", &["order_id", "region"]))
    );
    assert_eq!(
        orders.foreign_keys,
        [fk(
            "orders_user_id_fkey",
            "user_id",
            "users",
            ReferentialAction::Restrict
        )]
    );
    assert_eq!(
        orders.checks,
        [
            check("orders_region_check", "region IN ('EU', 'US')"),
            check(
                "orders_status_check",
                "status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')"
            ),
            check("orders_total_amount_check", "total_amount >= 0"),
        ]
    );
    assert!(orders.uniques.is_empty());
}

#[test]
fn reviews_order_details_categories_and_users() {
    let schema = manifest();
    let reviews = &schema.tables["reviews"];
    assert_eq!(reviews.column("rating").unwrap().data_type, "smallint");
    assert_eq!(
        reviews.checks,
        [check("reviews_rating_check", "rating BETWEEN 1 AND 5")]
    );
    assert_eq!(
        reviews.uniques,
        [key(
            "reviews_user_id_product_id_key",
            &["user_id", "product_id"]
        )]
    );
    assert_eq!(
        reviews.foreign_keys,
        [
            fk(
                "reviews_user_id_fkey",
                "user_id",
                "users",
                ReferentialAction::Cascade
            ),
            fk(
                "reviews_product_id_fkey",
                "product_id",
                "products",
                ReferentialAction::Cascade
            ),
        ]
    );

    let details = &schema.tables["order_details"];
    assert_eq!(
        details.foreign_keys[0],
        ForeignKey {
            columns: strings(&["order_id", "region"]),
            referenced_columns: strings(&["order_id", "region"]),
            ..fk(
                "order_details_order_id_fkey",
                "order_id",
                "orders",
                ReferentialAction::Cascade
            )
        }
    );

    let categories = &schema.tables["categories"];
    let parent = &categories.foreign_keys[0];
    assert_eq!(parent.referenced_table, "categories");
    assert_eq!(parent.referenced_columns, strings(&["category_id"]));
    assert_eq!(parent.on_delete, ReferentialAction::SetNull);
    assert!(!categories.column("parent_id").unwrap().not_null);

    let users = &schema.tables["users"];
    assert_eq!(
        users.column("email").unwrap().data_type,
        "character varying(255)"
    );
    assert_eq!(users.uniques, [key("users_email_key", &["email"])]);
    // A column-level named CHECK lands with the table-level ones.
    assert_eq!(
        schema.tables["products"].checks,
        [check("products_price_check", "price >= 0")]
    );
}

#[test]
fn types_are_spelled_as_format_type_prints_them() {
    let cases = [
        ("int", "integer"),
        ("INTEGER", "integer"),
        ("int4", "integer"),
        ("bigint", "bigint"),
        ("int8", "bigint"),
        ("smallint", "smallint"),
        ("int2", "smallint"),
        ("numeric", "numeric"),
        ("numeric(12,2)", "numeric(12,2)"),
        ("decimal(10)", "numeric(10,0)"),
        ("text", "text"),
        ("varchar", "character varying"),
        ("varchar(255)", "character varying(255)"),
        ("character varying(20)", "character varying(20)"),
        ("char", "character(1)"),
        ("character(3)", "character(3)"),
        ("bool", "boolean"),
        ("boolean", "boolean"),
        ("timestamptz", "timestamp with time zone"),
        ("timestamp with time zone", "timestamp with time zone"),
        ("timestamp", "timestamp without time zone"),
        (
            "timestamp(3) without time zone",
            "timestamp(3) without time zone",
        ),
        ("time", "time without time zone"),
        ("timetz", "time with time zone"),
        ("date", "date"),
        ("real", "real"),
        ("float4", "real"),
        ("float8", "double precision"),
        ("double precision", "double precision"),
        ("float(10)", "real"),
        ("float(30)", "double precision"),
        ("interval", "interval"),
        ("uuid", "uuid"),
        ("json", "json"),
        ("jsonb", "jsonb"),
        ("bytea", "bytea"),
        ("inet", "inet"),
        ("integer[]", "integer[]"),
        ("text[]", "text[]"),
    ];
    for (written, canonical) in cases {
        let schema = parse(&format!("CREATE TABLE t (c {written});"));
        assert_eq!(
            schema.tables["t"].columns[0].data_type, canonical,
            "{written}"
        );
    }
}

#[test]
fn serial_and_generated_columns_are_columns_with_what_they_imply() {
    let schema = parse(
        "CREATE TABLE t (id bigserial PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED, \
         c smallserial, name text COLLATE \"C\");",
    );
    let t = &schema.tables["t"];
    let id = t.column("id").unwrap();
    assert_eq!(
        (id.data_type.as_str(), id.not_null, id.default.as_deref()),
        ("bigint", true, Some("nextval('t_id_seq'::regclass)"))
    );
    assert_eq!(id.sequence.as_ref().unwrap().name, "t_id_seq");
    let c = t.column("c").unwrap();
    assert_eq!(c.data_type, "smallint");
    assert_eq!(c.sequence.as_ref().unwrap().name, "t_c_seq");
    assert_eq!(t.column("b").unwrap().generated.as_deref(), Some("a * 2"));
    assert_eq!(
        t.column("name").unwrap().collation.as_deref(),
        Some("\"C\"")
    );
    // serial is no type an array can have; a virtual generated column is not managed.
    let err = error("CREATE TABLE t (id serial[]);");
    assert_eq!(err.kind, ErrorKind::Unsupported);
    let err = error("CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);");
    assert!(
        matches!(err.kind, ErrorKind::Unsupported | ErrorKind::Syntax),
        "{err}"
    );
}

#[test]
fn unnamed_constraints_get_postgresql_default_names() {
    let schema = parse(include_str!("../../tests/fixtures/naming_and_types.sql"));
    let a = &schema.tables["a"];
    assert_eq!(a.primary_key, Some(key("a_pkey", &["id"])));
    assert_eq!(a.uniques, [key("a_code_key", &["code"])]);
    assert!(a.column("id").unwrap().not_null);

    let b = &schema.tables["b"];
    assert_eq!(b.primary_key, Some(key("b_pkey", &["id"])));
    assert_eq!(b.column("id").unwrap().identity, Some(Identity::ByDefault));
    assert_eq!(b.uniques, [key("b_x_y_key", &["x", "y"])]);
    let names: Vec<&str> = b.constraint_names().collect();
    assert_eq!(
        names,
        [
            "b_pkey",
            "b_x_y_key",
            "b_a_id_fkey",
            "b_x_fkey",
            "b_qty_check",
            "b_check",
            "b_y_check",
            "b_qty_check1"
        ]
    );
    // REFERENCES without columns means the referenced table's primary key.
    let to_a = &b.foreign_keys[0];
    assert_eq!(to_a.referenced_columns, strings(&["id"]));
    assert_eq!(to_a.on_delete, ReferentialAction::Cascade);
    assert_eq!(to_a.on_update, ReferentialAction::SetNull);
    let indexes: Vec<&str> = schema.indexes.keys().map(String::as_str).collect();
    assert_eq!(
        indexes,
        ["b_expr_idx", "b_lower_idx", "b_x_y_idx", "b_y_idx"]
    );
}

#[test]
fn identifiers_are_folded_unless_quoted() {
    let schema = parse(r#"CREATE TABLE Things ("Mixed" INT, Plain INT NOT NULL);"#);
    let things = &schema.tables["things"];
    let names: Vec<&str> = things.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Mixed", "plain"]);
}

#[test]
fn a_name_in_another_schema_is_refused_at_the_schema() {
    let err = error("CREATE TABLE other.things (id int);");
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert_eq!(err.snippet(), "other");
}

#[test]
fn a_syntax_error_points_at_its_line_and_column() {
    let sql = "-- two tables\nCREATE TABLE a (id bigint PRIMARY KEY);\n\nCREATE TABLE b (\n    id bigint,\n    name text NOT NUL\n);\n";
    let err = error(sql);
    assert_eq!(err.kind, ErrorKind::Syntax);
    let line_6 = sql.match_indices('\n').nth(4).unwrap().0 + 1;
    assert!(err.span().offset() > line_6, "{}", render(&err));
    insta::assert_snapshot!(render(&err));
}

#[test]
fn a_reference_to_an_unknown_table_is_an_error_at_the_name() {
    let sql = "CREATE TABLE orders (\n    id bigint PRIMARY KEY,\n    user_id bigint REFERENCES usres (id)\n);";
    let err = error(sql);
    assert_eq!(err.kind, ErrorKind::UnknownTable);
    assert_eq!(err.snippet(), "usres");
    insta::assert_snapshot!(render(&err));

    // Tables come in foreign-key order: a reference to a table defined below fails too.
    let err = error(
        "CREATE TABLE b (a_id bigint, CONSTRAINT b_a_fkey FOREIGN KEY (a_id) REFERENCES a (id));
         CREATE TABLE a (id bigint PRIMARY KEY);",
    );
    assert_eq!(err.kind, ErrorKind::UnknownTable);
    assert_eq!(err.snippet(), "a");
}

#[test]
fn unknown_columns_duplicates_and_other_statements_are_errors() {
    let cases = [
        (
            "CREATE TABLE a (id int, PRIMARY KEY (idd));",
            ErrorKind::UnknownColumn,
        ),
        (
            "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (x int REFERENCES a (nope));",
            ErrorKind::UnknownColumn,
        ),
        (
            "CREATE TABLE a (id int); CREATE INDEX a_idx ON a (nope);",
            ErrorKind::UnknownColumn,
        ),
        ("CREATE INDEX i ON nowhere (x);", ErrorKind::UnknownTable),
        (
            "CREATE TABLE a (id int); CREATE TABLE A (id int);",
            ErrorKind::Duplicate,
        ),
        ("CREATE TABLE a (id int, ID int);", ErrorKind::Duplicate),
        (
            "CREATE TABLE a (id int); CREATE INDEX a ON a (id);",
            ErrorKind::Duplicate,
        ),
        (
            "CREATE TABLE a (id int CONSTRAINT k UNIQUE, x int CONSTRAINT k CHECK (x > 0));",
            ErrorKind::Duplicate,
        ),
        ("CREATE TABLE a (id int NULL NOT NULL);", ErrorKind::Invalid),
        (
            "CREATE TABLE a (id int PRIMARY KEY, x int PRIMARY KEY);",
            ErrorKind::Invalid,
        ),
        (
            "CREATE TABLE a (id int); CREATE TABLE b (x int REFERENCES a);",
            ErrorKind::Invalid,
        ),
        ("DROP TABLE users;", ErrorKind::Unsupported),
        ("INSERT INTO t VALUES (1);", ErrorKind::Unsupported),
        (
            "BEGIN; CREATE TABLE a (id int); COMMIT;",
            ErrorKind::Unsupported,
        ),
        ("CREATE TEMPORARY TABLE a (id int);", ErrorKind::Unsupported),
        ("CREATE TABLE other.a (id int);", ErrorKind::Unsupported),
        ("CREATE TABLE a (id int) CREATE", ErrorKind::Syntax),
        ("CREATE TABLE a (id int, 'unterminated);", ErrorKind::Syntax),
    ];
    for (sql, kind) in cases {
        let err = error(sql);
        assert_eq!(err.kind, kind, "{sql}: {}", render(&err));
        assert!(!err.snippet().is_empty(), "{sql}: no span");
    }
}

#[test]
fn an_unsupported_statement_renders_with_its_span() {
    insta::assert_snapshot!(render(&error("CREATE TABLE a (id int);\nDROP TABLE a;\n")));
}

#[test]
fn no_input_panics() {
    // Every prefix of the manifest: cut mid-token, mid-string, mid-comment.
    let mut end = 0;
    while end <= MANIFEST.len() {
        let _ = parse_schema("m.sql", &MANIFEST[..end]);
        end += 3;
        while end < MANIFEST.len() && !MANIFEST.is_char_boundary(end) {
            end += 1;
        }
    }
    let deep = format!(
        "CREATE TABLE t (x int CHECK ({}x{}));",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    for sql in [
        "",
        ";;;",
        "-- only a comment",
        "/* unterminated",
        "\u{0}",
        "CREATE TABLE ü (é int);",
        "CREATE TABLE t (x numeric(99999999999999999999, 2));",
        "CREATE TABLE t ();",
        "CREATE INDEX ON t;",
        "CREATE TABLE t (x int REFERENCES t);",
        deep.as_str(),
    ] {
        let _ = parse_schema("m.sql", sql).map_err(|e| render(&e));
    }
    assert!(parse("").tables.is_empty());
}

#[test]
fn an_unknown_column_in_a_table_constraint_points_at_the_constraint() {
    let err = error(
        "CREATE TABLE a (\n    id bigint,\n    name text,\n    CONSTRAINT a_name_key UNIQUE (nmae)\n);",
    );
    assert_eq!(err.kind, ErrorKind::UnknownColumn);
    assert_eq!(err.snippet(), "a_name_key");
    let err = error("CREATE TABLE a (\n    id bigint,\n    UNIQUE (idd)\n);");
    assert_eq!(err.kind, ErrorKind::UnknownColumn);
    insta::assert_snapshot!(render(&err));
}
