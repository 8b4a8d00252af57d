//! Index advice on hand-written node plans (as `EXPLAIN (ANALYZE, FORMAT JSON)` prints them on
//! a node) and on the captured coordinator plans, with the default topology's schema:
//! orders listed by region on `shard-eu` and `shard-us`, the declared `(status, order_date)`
//! index, the manifest's `(user_id, order_date)` index.

use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn indexing() -> Indexing {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let topology = crate::topology::load(&dir.join("topology.yaml")).unwrap();
    let target = topology.postgres.schema.as_ref().unwrap();
    let manifest = target.manifest.as_ref().unwrap().parsed.clone().unwrap();
    let fragments = topology.postgres.fragments.as_ref().unwrap();
    let placement = crate::fragments::placement::place(&manifest.schema, fragments);
    Indexing::new(&manifest.schema, &placement, &fragments.indexes)
}

/// A node's plan: a sort over a sequential scan of `relation` that kept `kept` rows and
/// removed `removed` with `filter`.
fn node_plan(relation: &str, filter: &str, kept: f64, removed: f64) -> Value {
    json!([{
        "Plan": {
            "Node Type": "Sort",
            "Actual Rows": kept,
            "Actual Loops": 1,
            "Plans": [{
                "Node Type": "Seq Scan",
                "Parent Relationship": "Outer",
                "Relation Name": relation,
                "Schema": "public",
                "Alias": relation,
                "Plan Rows": kept,
                "Actual Rows": kept,
                "Actual Loops": 1,
                "Filter": filter,
                "Rows Removed by Filter": removed,
            }]
        },
        "Planning Time": 0.1,
        "Execution Time": 2.5,
    }])
}

/// The remote SQL's filter as the node prints it: the fragment key is in it too.
const CANCELLED_RECENT: &str = "((order_date >= '2026-01-10 00:00:00+00'::timestamp with time zone) AND (total_amount = '0'::numeric) AND (region = 'EU'::text))";

#[test]
fn a_selective_seq_scan_of_a_big_fragment_proposes_an_indexes_entry() {
    let plan = node_plan("orders_eu", CANCELLED_RECENT, 40.0, 19_960.0);
    let advice = advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default());
    assert_eq!(advice.len(), 1, "{advice:?}");
    let a = &advice[0];
    assert_eq!(
        (a.node.as_str(), a.relation.as_str(), a.table.as_str()),
        ("shard-eu", "orders_eu", "orders")
    );
    // Not the fragment key: every row of the fragment has the same region.
    assert_eq!(a.columns, ["order_date", "total_amount"]);
    assert_eq!(
        (a.rows_read, a.rows_removed, a.estimated),
        (20_000.0, 19_960.0, false)
    );
    // The equality column first, then the range column.
    assert_eq!(
        a.suggestion,
        Suggestion::Add {
            entry: "- { table: orders, columns: [total_amount, order_date] }".to_owned()
        }
    );
    let line = a.line();
    assert!(
        line.contains("Seq Scan on orders_eu (orders) at shard-eu read 20000 row(s)")
            && line.contains("removed 99.8%")
            && line
                .ends_with("add indexes: - { table: orders, columns: [total_amount, order_date] }"),
        "{line}"
    );
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["suggestion"]["kind"], "add", "{json}");
}

#[test]
fn a_small_fragment_gets_no_advice() {
    let plan = node_plan("orders_eu", CANCELLED_RECENT, 4.0, MIN_ROWS_READ - 5.0);
    assert!(advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default()).is_empty());
    let plan = node_plan("orders_eu", CANCELLED_RECENT, 4.0, MIN_ROWS_READ - 4.0);
    assert_eq!(
        advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default()).len(),
        1,
        "exactly the threshold"
    );
}

#[test]
fn an_unselective_filter_gets_no_advice() {
    // 85% removed: reading the table is about as good as an index.
    let plan = node_plan("orders_eu", CANCELLED_RECENT, 3_000.0, 17_000.0);
    assert!(advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default()).is_empty());
    // Exactly 90%.
    let plan = node_plan("orders_eu", CANCELLED_RECENT, 2_000.0, 18_000.0);
    assert_eq!(
        advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default()).len(),
        1
    );
}

#[test]
fn a_declared_index_that_was_not_used_is_named_with_whether_the_node_has_it() {
    let filter = "((status = 'cancelled'::text) AND (total_amount > '100'::numeric))";
    let plan = node_plan("orders_eu", filter, 10.0, 9_990.0);
    let missing = advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default());
    assert_eq!(
        missing[0].suggestion,
        Suggestion::Declared {
            declared: "indexes: - { table: orders, columns: [status, order_date] }".to_owned(),
            columns: vec!["status".to_owned(), "order_date".to_owned()],
            on_node: None,
        }
    );
    assert!(
        missing[0].line().contains(
            "indexes: - { table: orders, columns: [status, order_date] } is declared but was \
             not used there (it does not exist on shard-eu)"
        ),
        "{}",
        missing[0].line()
    );
    let catalog = NodeCatalog {
        rows: Default::default(),
        indexes: vec![NodeIndex {
            table: "orders_eu".to_owned(),
            name: "orders_eu_status_order_date_idx".to_owned(),
            columns: vec!["status".to_owned(), "order_date".to_owned()],
        }],
    };
    let present = advise(&plan, "shard-eu", &indexing(), &catalog);
    assert!(
        present[0]
            .line()
            .ends_with("(it exists on shard-eu: orders_eu_status_order_date_idx)"),
        "{}",
        present[0].line()
    );
    // The manifest's index counts too; a qualified column (VERBOSE) is the same column.
    let filter = "(orders_us.user_id = 42)";
    let plan = node_plan("orders_us", filter, 3.0, 5_000.0);
    let manifest = advise(&plan, "shard-us", &indexing(), &NodeCatalog::default());
    assert_eq!(manifest[0].table, "orders");
    assert!(
        matches!(&manifest[0].suggestion, Suggestion::Declared { declared, .. }
            if declared == "the manifest's CREATE INDEX orders_user_id_order_date_idx"),
        "{:?}",
        manifest[0].suggestion
    );
}

#[test]
fn tables_that_are_not_fragments_get_no_advice() {
    // inventory stays whole on the coordinator; products is a reference copy on the node.
    for relation in ["inventory", "products"] {
        let plan = node_plan(relation, "(quantity < 10)", 1.0, 50_000.0);
        assert!(advise(&plan, "shard-eu", &indexing(), &NodeCatalog::default()).is_empty());
    }
}

#[test]
fn the_captured_coordinator_plans_get_no_advice() {
    // A seeded scale-5 shop: no scan reads enough rows.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/explain/samples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let plan: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let advice = advise(&plan, "primary", &indexing(), &NodeCatalog::default());
        assert!(advice.is_empty(), "{}: {advice:?}", path.display());
    }
}

#[test]
fn a_generic_plan_is_judged_by_the_estimates() {
    let plan = json!([{ "Plan": {
        "Node Type": "Seq Scan",
        "Relation Name": "order_details_eu",
        "Plan Rows": 12,
        "Filter": "((quantity > $1) AND (unit_price = $2))",
    }}]);
    let mut catalog = NodeCatalog::default();
    assert!(
        advise(&plan, "shard-eu", &indexing(), &catalog).is_empty(),
        "no estimate"
    );
    catalog.rows.insert("order_details_eu".to_owned(), 8_000.0);
    let advice = advise(&plan, "shard-eu", &indexing(), &catalog);
    assert_eq!(advice.len(), 1);
    assert!(advice[0].estimated);
    assert_eq!(
        advice[0].suggestion,
        Suggestion::Add {
            entry: "- { table: order_details, columns: [unit_price, quantity] }".to_owned()
        }
    );
}

#[test]
fn filter_columns_tell_equality_from_ranges_and_skip_literals_and_functions() {
    let columns: Vec<String> = [
        "status",
        "order_date",
        "region",
        "user_id",
        "active",
        "text",
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(
        filter_columns(
            "((o.status = ANY ('{paid,\"region\"}'::text[])) AND (lower(o.region) = 'eu'::text) \
             AND (o.order_date < now()) AND o.active AND (user_id IS NOT NULL))",
            &columns
        ),
        [
            ("status".to_owned(), Use::Equality),
            ("region".to_owned(), Use::Other),
            ("order_date".to_owned(), Use::Range),
            ("active".to_owned(), Use::Equality),
            ("user_id".to_owned(), Use::Equality),
        ]
    );
    assert_eq!(
        filter_columns("((status)::text <> 'user_id'::text)", &columns),
        [("status".to_owned(), Use::Other)]
    );
}

#[test]
fn remote_statements_with_parameters_are_explained_as_generic_plans() {
    assert_eq!(
        node_explain_sql("SELECT a FROM public.orders_eu WHERE ((order_id = $1::bigint))"),
        "EXPLAIN (GENERIC_PLAN, FORMAT JSON) SELECT a FROM public.orders_eu WHERE ((order_id = $1::bigint))"
    );
    assert_eq!(
        node_explain_sql("SELECT a FROM public.orders_eu WHERE ((status = 'costs $1'))"),
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT a FROM public.orders_eu WHERE ((status = 'costs $1'))"
    );
}
