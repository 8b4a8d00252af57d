//! `pg_dump -s` output as a manifest: `public.` names, constraints added by ALTER TABLE, and
//! the preamble pg_dump writes, accepted or refused at their place.

use super::*;

/// The same tables written plainly.
const PLAIN: &str = "
CREATE TABLE users (
    user_id bigint NOT NULL,
    email text NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (user_id),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE TABLE orders (
    order_id bigint NOT NULL,
    user_id bigint NOT NULL,
    total numeric(10,2) DEFAULT 0 NOT NULL,
    CONSTRAINT orders_pkey PRIMARY KEY (order_id),
    CONSTRAINT orders_total_check CHECK (total >= 0),
    CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id) ON DELETE CASCADE
);
CREATE INDEX orders_user_id_idx ON orders USING btree (user_id);
";

/// As pg_dump -s writes them.
const DUMPED: &str = "--
-- PostgreSQL database dump
--

\\restrict 4CRFvh1lIiAUcHiiOUU94rDFAiJtXGVn5WeCvVuNcqD5Q0TAgKqcXnFAXSsJ8nL

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

ALTER SCHEMA public OWNER TO pg_database_owner;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.users (
    user_id bigint NOT NULL,
    email text NOT NULL
);

ALTER TABLE public.users OWNER TO shop;

CREATE TABLE public.orders (
    order_id bigint NOT NULL,
    user_id bigint NOT NULL,
    total numeric(10,2) DEFAULT 0 NOT NULL,
    CONSTRAINT orders_total_check CHECK ((total >= (0)::numeric))
);

ALTER TABLE public.orders OWNER TO shop;

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (order_id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (user_id);

CREATE INDEX orders_user_id_idx ON public.orders USING btree (user_id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(user_id) ON DELETE CASCADE;

--
-- PostgreSQL database dump complete
--

\\unrestrict 4CRFvh1lIiAUcHiiOUU94rDFAiJtXGVn5WeCvVuNcqD5Q0TAgKqcXnFAXSsJ8nL

";

fn manifest(sql: &str) -> Manifest {
    parse_manifest("dump.sql", sql)
        .unwrap_or_else(|e| panic!("{}", crate::test_support::render_report(&e)))
}

fn error(sql: &str) -> SchemaError {
    parse_manifest("dump.sql", sql).expect_err("must be refused")
}

#[test]
fn a_pg_dump_manifest_is_the_plain_one() {
    let mut dumped = manifest(DUMPED).schema;
    let plain = manifest(PLAIN).schema;
    // pg_dump spells the check as the server prints it; the server normalizes both alike.
    dumped.tables.get_mut("orders").unwrap().checks[0].expression =
        plain.tables["orders"].checks[0].expression.clone();
    assert_eq!(dumped, plain);
}

#[test]
fn the_server_runs_a_pg_dump_manifest_without_its_preamble_and_without_public() {
    let server = manifest(DUMPED).server_sql;
    assert_eq!(server.len(), DUMPED.len(), "blanked byte for byte");
    assert_eq!(server.lines().count(), DUMPED.lines().count());
    for gone in ["public", "SET ", "set_config", "OWNER", "restrict"] {
        assert!(!server.contains(gone), "{gone} is still in\n{server}");
    }
    for kept in [
        "CREATE TABLE        users (",
        "ALTER TABLE ONLY        orders\n    ADD CONSTRAINT orders_pkey PRIMARY KEY (order_id);",
        "CREATE INDEX orders_user_id_idx ON        orders USING btree (user_id);",
        "REFERENCES        users(user_id) ON DELETE CASCADE;",
    ] {
        assert!(server.contains(kept), "{kept} is missing from\n{server}");
    }
    // A statement kept keeps its place: the server's positions are the file's.
    let at = DUMPED.find("CREATE INDEX").unwrap();
    assert_eq!(server.find("CREATE INDEX"), Some(at));
    // A plain manifest runs as written.
    assert_eq!(manifest(PLAIN).server_sql, PLAIN);
}

#[test]
fn a_quoted_public_is_public_too() {
    let sql = r#"CREATE TABLE "public"."t" (a int);"#;
    let m = manifest(sql);
    assert!(m.schema.tables.contains_key("t"));
    assert_eq!(m.server_sql, sql.replace(r#""public"."#, &" ".repeat(9)));
}

#[test]
fn each_constraint_added_by_alter_table_is_the_one_written_in_create_table() {
    let cases = [
        (
            "ALTER TABLE ONLY t ADD PRIMARY KEY (a);",
            "a int PRIMARY KEY",
        ),
        ("ALTER TABLE t ADD PRIMARY KEY (a);", "a int PRIMARY KEY"),
        (
            "ALTER TABLE ONLY t ADD UNIQUE (a, b);",
            "a int, UNIQUE (a, b)",
        ),
        (
            "ALTER TABLE ONLY t ADD CONSTRAINT b_pos CHECK (b > 0);",
            "a int, CONSTRAINT b_pos CHECK (b > 0)",
        ),
        ("ALTER TABLE t ADD CHECK (b > 0);", "a int CHECK (b > 0)"),
        (
            "ALTER TABLE ONLY t ADD CONSTRAINT t_u FOREIGN KEY (b) REFERENCES u(id) ON UPDATE SET NULL;",
            "a int, CONSTRAINT t_u FOREIGN KEY (b) REFERENCES u(id) ON UPDATE SET NULL",
        ),
        (
            "ALTER TABLE t ADD FOREIGN KEY (b) REFERENCES public.u;",
            "a int, FOREIGN KEY (b) REFERENCES u",
        ),
        (
            "ALTER TABLE t ADD FOREIGN KEY (b) REFERENCES t (a), ADD PRIMARY KEY (a);",
            "a int, FOREIGN KEY (b) REFERENCES t (a), PRIMARY KEY (a)",
        ),
    ];
    let u = "CREATE TABLE u (id int PRIMARY KEY);\n";
    for (alter, inline) in cases {
        let altered = manifest(&format!("{u}CREATE TABLE t (a int, b int);\n{alter}")).schema;
        let (a, rest) = inline
            .split_once(", ")
            .map_or((inline, ""), |(a, r)| (a, r));
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(", {rest}")
        };
        let written = manifest(&format!("{u}CREATE TABLE t ({a}, b int{rest});")).schema;
        assert_eq!(altered, written, "{alter}");
    }
}

#[test]
fn a_generated_name_in_alter_table_avoids_the_names_taken() {
    let schema = manifest(
        "CREATE TABLE t (a int CHECK (a > 0));
         ALTER TABLE t ADD CHECK (a < 10);",
    )
    .schema;
    let names: Vec<&str> = schema.tables["t"]
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["t_a_check", "t_a_check1"]);
}

#[test]
fn each_refused_pg_dump_form_points_at_its_place() {
    let t = "CREATE TABLE t (a int, b int);\n";
    let cases = [
        // Another schema, wherever the name is.
        (
            "CREATE TABLE other.t (a int);",
            ErrorKind::Unsupported,
            "other",
        ),
        (
            "CREATE TABLE x (a int REFERENCES other.u);",
            ErrorKind::Unsupported,
            "other",
        ),
        (
            "ALTER TABLE ONLY other.t ADD PRIMARY KEY (a);",
            ErrorKind::Unsupported,
            "other",
        ),
        (
            "CREATE INDEX i ON other.t (a);",
            ErrorKind::Unsupported,
            "other",
        ),
        (
            "ALTER SCHEMA other OWNER TO me;",
            ErrorKind::Unsupported,
            "other",
        ),
        // ALTER TABLE of an unknown table or column.
        (
            "ALTER TABLE ONLY public.nope ADD PRIMARY KEY (a);",
            ErrorKind::UnknownTable,
            "nope",
        ),
        (
            "ALTER TABLE nope OWNER TO me;",
            ErrorKind::UnknownTable,
            "nope",
        ),
        (
            "ALTER TABLE ONLY t ADD CONSTRAINT t_pkey PRIMARY KEY (c);",
            ErrorKind::UnknownColumn,
            "t_pkey",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (a) REFERENCES nope;",
            ErrorKind::UnknownTable,
            "nope",
        ),
        // What would contradict the table.
        (
            "ALTER TABLE t ADD PRIMARY KEY (a); ALTER TABLE t ADD CONSTRAINT second PRIMARY KEY (b);",
            ErrorKind::Invalid,
            "second",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_c CHECK (a > 0); ALTER TABLE t ADD CONSTRAINT t_c CHECK (b > 0);",
            ErrorKind::Duplicate,
            "t_c",
        ),
        // ALTER TABLE forms dbtopo does not manage.
        (
            "ALTER TABLE t ADD COLUMN c int;",
            ErrorKind::Unsupported,
            "ALTER TABLE t ADD COLUMN c int",
        ),
        (
            "ALTER TABLE ONLY t ALTER COLUMN a SET NOT NULL;",
            ErrorKind::Unsupported,
            "ALTER TABLE ONLY t ALTER COLUMN a SET NOT NULL",
        ),
        // Sequences that are not a column's own.
        (
            "CREATE SEQUENCE s;",
            ErrorKind::Unsupported,
            "CREATE SEQUENCE s",
        ),
        (
            "CREATE SEQUENCE s; ALTER SEQUENCE s OWNED BY t.a;",
            ErrorKind::Unsupported,
            "CREATE SEQUENCE s",
        ),
        (
            "ALTER TABLE t ALTER COLUMN a SET DEFAULT nextval('other_seq'::regclass);",
            ErrorKind::Unsupported,
            "ALTER TABLE t ALTER COLUMN a SET DEFAULT nextval('other_seq'::regclass)",
        ),
        (
            "CREATE SEQUENCE s; ALTER SEQUENCE s OWNED BY t.nope;",
            ErrorKind::UnknownColumn,
            "ALTER SEQUENCE s OWNED BY t.nope",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_c CHECK (a > 0) NOT VALID;",
            ErrorKind::Unsupported,
            "ALTER TABLE t ADD CONSTRAINT t_c CHECK (a > 0) NOT VALID",
        ),
        (
            "ALTER TABLE t ADD PRIMARY KEY (a), OWNER TO me;",
            ErrorKind::Unsupported,
            "ALTER TABLE t ADD PRIMARY KEY (a), OWNER TO me",
        ),
        // Settings that change what the statements mean, and other queries.
        (
            "SET datestyle = 'DMY';",
            ErrorKind::Unsupported,
            "SET datestyle = 'DMY'",
        ),
        (
            "SET default_tablespace = 'fast';",
            ErrorKind::Unsupported,
            "SET default_tablespace = 'fast'",
        ),
        (
            "SET search_path = other;",
            ErrorKind::Unsupported,
            "SET search_path = other",
        ),
        (
            "SET standard_conforming_strings = off;",
            ErrorKind::Unsupported,
            "SET standard_conforming_strings = off",
        ),
        (
            "SELECT pg_catalog.set_config('search_path', 'other', false);",
            ErrorKind::Unsupported,
            "SELECT pg_catalog.set_config('search_path', 'other', false)",
        ),
    ];
    for (sql, kind, snippet) in cases {
        let text = format!("{t}{sql}\n");
        let err = error(&text);
        let shown = crate::test_support::render_report(&err);
        assert_eq!(err.kind, kind, "{sql}\n{shown}");
        assert_eq!(err.snippet(), snippet, "{sql}\n{shown}");
        assert!(
            err.span().offset() >= t.len(),
            "{sql}: points into the table"
        );
    }
}

#[test]
fn an_alter_table_form_not_managed_says_so() {
    let err = error("CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n");
    insta::assert_snapshot!(crate::test_support::render_report(&err));
}

#[test]
fn a_psql_command_is_accepted_only_as_pg_dump_writes_it_around_the_statements() {
    let t = "CREATE TABLE t (a int);\n";
    for sql in [
        format!("{t}\\restrict abc\n{t}"),
        format!("\\connect shop\n{t}"),
        format!("\\restrict abc def\n{t}"),
    ] {
        let err = error(&sql);
        assert_eq!(err.kind, ErrorKind::Syntax, "{sql}");
        assert_eq!(err.snippet(), "\\", "{sql}");
    }
}

/// pg_dump writes a serial column as a sequence of its own, owned by the column, and a
/// default set afterwards; an identity as ALTER TABLE … ADD GENERATED with the sequence's
/// name and options; comments and row security as statements of their own. Each lands in the
/// model as if written inside CREATE TABLE, and the server runs it in the scratch schema.
#[test]
fn serial_identity_comments_and_row_security_as_pg_dump_writes_them() {
    let sql = "CREATE TABLE public.t (\n    id integer NOT NULL,\n    n bigint NOT NULL,\n    note text\n);\n\
               ALTER TABLE public.t OWNER TO postgres;\n\
               COMMENT ON TABLE public.t IS 'the t''s';\n\
               COMMENT ON COLUMN public.t.note IS 'free text';\n\
               CREATE SEQUENCE public.t_id_seq\n    AS integer\n    START WITH 1\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1;\n\
               ALTER SEQUENCE public.t_id_seq OWNER TO postgres;\n\
               ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;\n\
               ALTER TABLE public.t ALTER COLUMN n ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.t_n_seq\n    START WITH 10\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1\n);\n\
               ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.t_id_seq'::regclass);\n\
               ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;\n";
    let manifest = parse_manifest("dump.sql", sql).unwrap_or_else(|e| panic!("{e:?}"));
    let t = &manifest.schema.tables["t"];
    let id = t.column("id").unwrap();
    assert_eq!(id.default.as_deref(), Some("nextval('t_id_seq'::regclass)"));
    let id_sequence = id.sequence.as_ref().expect("the serial's sequence");
    assert_eq!(
        (id_sequence.name.as_str(), id_sequence.data_type.as_deref()),
        ("t_id_seq", None)
    );
    assert_eq!(id_sequence.options(), Vec::<String>::new());
    let n = t.column("n").unwrap();
    assert_eq!(n.identity, Some(super::model::Identity::Always));
    let n_sequence = n.sequence.as_ref().expect("the identity's sequence");
    assert_eq!(n_sequence.name, "t_n_seq");
    assert_eq!(n_sequence.options(), ["START WITH 10"]);
    assert_eq!(t.properties.comment.as_deref(), Some("the t's"));
    assert_eq!(
        t.column("note").unwrap().comment.as_deref(),
        Some("free text")
    );
    assert!(t.properties.row_security && !t.properties.force_row_security);
    // The owners are ignored, and the user is told where.
    assert_eq!(manifest.notices.len(), 1, "{:?}", manifest.notices);
    assert!(
        manifest.notices[0].starts_with("dump.sql: OWNER TO ignored (lines 6, 16): "),
        "{:?}",
        manifest.notices
    );
    // The server runs every statement but the owners, names unqualified, the sequence name
    // kept for the identity, and the literal nextval reads resolving in the scratch schema.
    let server = &manifest.server_sql;
    assert!(!server.contains("public"), "{server}");
    assert!(!server.contains("OWNER TO"), "{server}");
    for kept in [
        "SEQUENCE NAME        t_n_seq",
        "ALTER SEQUENCE        t_id_seq OWNED BY        t.id;",
        "nextval('       t_id_seq'::regclass)",
        "COMMENT ON COLUMN        t.note",
    ] {
        assert!(server.contains(kept), "{kept:?} in\n{server}");
    }
    assert_eq!(server.len(), sql.len());
}

/// The fuzzer's seed of pg_dump's forms is a manifest, and each form lands in the model.
#[test]
fn the_pg_dump_forms_fixture_is_a_manifest_of_what_it_writes() {
    let sql = include_str!("../../tests/fixtures/pg_dump_forms.sql");
    let manifest = parse_manifest("pg_dump_forms.sql", sql).unwrap_or_else(|e| panic!("{e:?}"));
    let tickets = &manifest.schema.tables["tickets"];
    assert_eq!(
        tickets.column("title").unwrap().collation.as_deref(),
        Some("\"C\"")
    );
    assert_eq!(
        tickets.column("total").unwrap().generated.as_deref(),
        Some("(n * 2)")
    );
    assert_eq!(tickets.other_constraints[0].name, "tickets_during_excl");
    assert!(tickets.properties.row_security);
    let index = &manifest.schema.indexes["tickets_title_idx"];
    assert_eq!(index.columns, ["title text_pattern_ops"]);
    assert_eq!(
        index.definition.as_deref(),
        Some("btree (title text_pattern_ops) INCLUDE (n) WITH (fillfactor = '70')")
    );
}
