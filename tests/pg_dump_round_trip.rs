//! `pg_dump -s` output is a manifest, end to end against real servers: the dump of a database
//! dbtopo made, used as the manifest, plans nothing against that database; used for a new
//! environment (whose server does not exist yet, so the tables are made from the parsed
//! dump), it converges with an empty plan, and the new database dumps exactly as the first.
//! Done for the e-commerce schema, and for the schemas dbtopo made on the nodes that hold
//! fragments (hash and list parts, a column group of a vertically fragmented table).

mod common;

use common::TestEnv;

/// One node holding the e-commerce schema.
const SHOP: &str = "
name: rtshop
postgres:
  nodes:
    store: { port: 5931 }
  schema: { file: manifests/ecommerce.sql, database: shop }
";

/// Orders and their lines hashed over two nodes, shipments listed by status, users split by
/// columns: the nodes' own databases hold the parts.
const FRAGMENTED: &str = "
name: rtfrag
postgres:
  settings: { max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5932 }
    left: { port: 5933 }
    right: { port: 5934 }
  schema: { file: tests/fixtures/every_fragmentation_a.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_order { key: order_id, by: hash, parts: [{ node: left }, { node: right }] }
    order_details: { horizontal: *by_order }
    shipping:
      horizontal:
        key: status
        by: list
        parts:
          - { node: left, values: [pending] }
          - { node: right, default: true }
    users:
      vertical:
        key: user_id
        parts:
          - { node: hub, columns: [email, name, region, created_at] }
          - { node: right, columns: [password_hash] }
";

/// A one-node environment; its manifest becomes `schema.sql` in its folder.
const ONE_NODE: &str = "
name: rtdump
postgres:
  nodes:
    node: { port: 5935 }
  schema: { file: manifests/ecommerce.sql, database: copy }
";

/// A dump without the psql `\restrict` lines, which hold a new key in every dump.
fn without_restrict_keys(dump: &str) -> String {
    dump.lines()
        .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `dump` as the manifest of a new environment: applied, it converges with nothing left to
/// plan, and its database dumps as `dump` does. Against an environment that already holds it,
/// the same manifest plans nothing either.
async fn round_trip(label: &str, dump: &str) {
    let env = TestEnv::from_yaml("rtdump", ONE_NODE);
    env.rewrite(|topology| topology.replace("manifests/ecommerce.sql", "schema.sql"));
    env.write_file("schema.sql", dump);
    env.apply()
        .await
        .unwrap_or_else(|e| panic!("{label}: applying the dump on a new server: {e:?}"));
    let plan = env.plan().await;
    assert!(
        plan.is_empty(),
        "{label}: not converged:\n{}",
        dbtopo::plan::render_text(&plan)
    );
    let again = common::pg_dump_schema(&env.container("node"), "copy").await;
    assert_eq!(
        without_restrict_keys(&again),
        without_restrict_keys(dump),
        "{label}: the new database dumps otherwise"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_of_the_ecommerce_schema_is_a_manifest_that_round_trips() {
    let env = TestEnv::from_yaml("rtshop", SHOP);
    env.apply().await.expect("apply the e-commerce schema");
    let dump = common::pg_dump_schema(&env.container("store"), "shop").await;
    for written in [
        "CREATE TABLE public.orders",
        "ALTER TABLE ONLY public.orders",
        "ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.orders_order_id_seq",
        "FOREIGN KEY (user_id) REFERENCES public.users(user_id)",
    ] {
        assert!(
            dump.contains(written),
            "pg_dump wrote no {written:?}:\n{dump}"
        );
    }
    // The dump as the manifest of the database it came from: nothing to do.
    env.rewrite(|topology| topology.replace("manifests/ecommerce.sql", "dump.sql"));
    env.write_file("dump.sql", &dump);
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));

    round_trip("e-commerce", &dump).await;
}

/// pg_dump's forms (serial and identity columns, comments, row security, collations, a
/// generated column, exclusion and deferrable constraints, index options) make a new
/// database from the parsed manifest alone that needs nothing more, and its dump round trips.
#[tokio::test(flavor = "multi_thread")]
async fn the_pg_dump_forms_make_a_new_database_whose_dump_round_trips() {
    let env = TestEnv::from_yaml("rtforms", ONE_NODE);
    env.rewrite(|topology| {
        topology.replace(
            "manifests/ecommerce.sql",
            "tests/fixtures/pg_dump_forms.sql",
        )
    });
    std::fs::create_dir_all(env.dir.join("tests/fixtures")).unwrap();
    env.write_file(
        "tests/fixtures/pg_dump_forms.sql",
        include_str!("fixtures/pg_dump_forms.sql"),
    );
    env.apply()
        .await
        .expect("apply the pg_dump forms on a new server");
    let plan = env.plan().await;
    assert!(plan.is_empty(), "{}", dbtopo::plan::render_text(&plan));
    let dump = common::pg_dump_schema(&env.container("node"), "copy").await;
    for made in [
        "ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.tickets_n_seq\n    START WITH 10",
        "nextval('public.tickets_id_seq'::regclass)",
        "COLLATE pg_catalog.\"C\"",
        "COMMENT ON COLUMN public.tickets.title IS 'what it is about';",
        "ENABLE ROW LEVEL SECURITY",
        "UNIQUE NULLS NOT DISTINCT (title) INCLUDE (n) DEFERRABLE INITIALLY DEFERRED",
        "MATCH FULL ON DELETE CASCADE DEFERRABLE",
        "NO INHERIT",
        "INCLUDE (n) WITH (fillfactor='70')",
    ] {
        assert!(dump.contains(made), "{made:?} was not made:\n{dump}");
    }
    round_trip("pg_dump forms", &dump).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dumps_of_the_nodes_holding_fragments_are_manifests_that_round_trip() {
    let env = TestEnv::from_yaml("rtfrag", FRAGMENTED);
    env.apply().await.expect("apply the fragmented topology");
    for node in ["left", "right"] {
        let dump = common::pg_dump_schema(&env.container(node), "shop").await;
        assert!(
            dump.contains("CREATE TABLE public.orders_"),
            "{node} holds no part of orders:\n{dump}"
        );
        round_trip(node, &dump).await;
    }
}
