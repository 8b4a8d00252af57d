//! The summaries of real EXPLAIN output, captured on the default topology (coordinator
//! `primary`, orders and their lines, payments and shipments listed by region on `shard-eu`
//! and `shard-us`, users split by columns, products and categories copied to both shards)
//! after `dbtopo seed --scale 5`.

use serde_json::Value;

use super::*;

fn layout() -> Layout {
    let mut layout = Layout::default();
    for table in ["orders", "order_details", "transactions", "shipping"] {
        let parts = vec![
            (format!("{table}_eu"), "shard-eu".to_owned()),
            (format!("{table}_us"), "shard-us".to_owned()),
        ];
        for (part, node) in &parts {
            layout.remote.insert(part.clone(), node.clone());
        }
        layout.parts.insert(table.to_owned(), parts);
    }
    layout.parts.insert(
        "users".to_owned(),
        vec![
            ("users_primary".to_owned(), "primary".to_owned()),
            ("users_shard_eu".to_owned(), "shard-eu".to_owned()),
        ],
    );
    layout
        .remote
        .insert("users_shard_eu".to_owned(), "shard-eu".to_owned());
    layout
}

fn sample(name: &str) -> (Query, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sql = std::fs::read_to_string(dir.join(format!("manifests/queries/{name}.sql"))).unwrap();
    let json =
        std::fs::read_to_string(dir.join(format!("src/explain/samples/{name}.json"))).unwrap();
    (
        Query::parse(name, &sql).unwrap(),
        serde_json::from_str(&json).unwrap(),
    )
}

fn summary(name: &str) -> Summary {
    let (query, json) = sample(name);
    summarize(&query, &json, &layout()).unwrap()
}

fn states(summary: &Summary) -> Vec<(&str, &str, FragmentState)> {
    summary
        .fragments
        .iter()
        .map(|f| (f.part.as_str(), f.node.as_str(), f.state))
        .collect()
}

#[test]
fn a_query_file_is_its_leading_comment_and_one_statement() {
    let query = Query::parse(
        "q",
        "-- What it answers,\n--   on two lines.\nSELECT 1\nFROM t;\n",
    )
    .unwrap();
    assert_eq!(query.question, "What it answers, on two lines.");
    assert!(query.sql.ends_with("FROM t"), "{}", query.sql);
    assert!(
        query
            .explain_sql()
            .starts_with("EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON)\n")
    );
    assert!(Query::parse("q", "-- nothing\n").is_err());
    let two = Query::parse("q", "SELECT 1; SELECT 2;").unwrap_err();
    assert!(two.contains("more than one statement"), "{two}");
}

#[test]
fn every_catalogue_query_parses_and_says_what_it_answers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/queries");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let query = Query::parse(&name, &std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(query.question.len() > 20, "{name}: {}", query.question);
        names.push(name);
    }
    assert!((6..=8).contains(&names.len()), "{names:?}");
}

#[test]
fn a_filter_on_the_fragment_key_prunes_the_other_regions_fragment() {
    let s = summary("eu_recent_pending_orders");
    assert_eq!(
        states(&s),
        [
            ("orders_eu", "shard-eu", FragmentState::Scanned),
            ("orders_us", "shard-us", FragmentState::Pruned),
        ]
    );
    assert_eq!(s.rows, 87.0);
    assert_eq!(s.execution_ms, 0.612);
    assert_eq!(s.remote.len(), 1);
    assert_eq!(s.remote[0].node, "shard-eu");
    assert_eq!(s.remote[0].pushed, "");
    assert!(
        s.remote[0]
            .sql
            .contains("FROM public.orders_eu WHERE ((order_date >= '2026-01-10 00:00:00+00'))"),
        "{}",
        s.remote[0].sql
    );
    let costliest = s.costliest.unwrap();
    assert_eq!(costliest.node, "Foreign Scan on orders_eu at shard-eu");
    assert!(costliest.share > 50.0, "{costliest:?}");
}

#[test]
fn co_located_joins_and_aggregates_are_pushed_down_to_each_node() {
    let s = summary("revenue_by_region_month");
    assert!(s.pruned().next().is_none(), "{:?}", s.fragments);
    let scanned: Vec<&str> = s.scanned().map(|f| f.part.as_str()).collect();
    assert_eq!(
        scanned,
        [
            "order_details_eu",
            "order_details_us",
            "orders_eu",
            "orders_us"
        ]
    );
    let remote: Vec<(&str, &str, Vec<String>)> = s
        .remote
        .iter()
        .map(|r| (r.node.as_str(), r.pushed.as_str(), r.relations.clone()))
        .collect();
    assert_eq!(
        remote,
        [
            (
                "shard-eu",
                "inner join",
                vec!["orders_eu".to_owned(), "order_details_eu".to_owned()]
            ),
            (
                "shard-us",
                "inner join",
                vec!["orders_us".to_owned(), "order_details_us".to_owned()]
            ),
        ]
    );
    assert!(
        s.remote[0]
            .sql
            .contains("INNER JOIN public.order_details_eu")
    );
}

#[test]
fn a_vertically_split_table_reads_every_column_group_and_pruning_applies_per_table() {
    let s = summary("us_payments_by_method");
    let states = states(&s);
    for expected in [
        ("orders_us", "shard-us", FragmentState::Scanned),
        ("orders_eu", "shard-eu", FragmentState::Pruned),
        ("transactions_us", "shard-us", FragmentState::Scanned),
        ("transactions_eu", "shard-eu", FragmentState::Pruned),
        ("users_primary", "primary", FragmentState::Scanned),
        ("users_shard_eu", "shard-eu", FragmentState::Scanned),
    ] {
        assert!(states.contains(&expected), "{expected:?} in {states:?}");
    }
    let nodes: Vec<&str> = s.remote.iter().map(|r| r.node.as_str()).collect();
    assert_eq!(nodes, ["shard-eu", "shard-us", "shard-us"]);
}

#[test]
fn a_query_on_coordinator_tables_only_has_no_fragments_and_no_remote_sql() {
    let s = summary("low_stock_per_location");
    assert!(s.fragments.is_empty(), "{:?}", s.fragments);
    assert!(s.remote.is_empty());
    assert!(s.rows > 0.0);
    assert!(s.costliest.is_some());
}

#[test]
fn every_captured_sample_summarizes_and_renders() {
    let names = [
        "eu_recent_pending_orders",
        "eu_sales_by_category",
        "late_shipments",
        "low_stock_per_location",
        "revenue_by_region_month",
        "top_products_by_category",
        "us_payments_by_method",
        "user_order_history",
    ];
    let summaries: Vec<Summary> = names.iter().map(|n| summary(n)).collect();
    for s in &summaries {
        assert!(s.execution_ms > 0.0, "{}", s.name);
        let c = s.costliest.as_ref().unwrap();
        assert!(c.self_ms >= 0.0 && c.share <= 100.0, "{c:?}");
    }
    let text = render_summaries(&summaries);
    for name in names {
        assert!(text.contains(name), "{name} in\n{text}");
    }
    assert!(
        text.contains("REMOTE SQL") && text.contains("pruned"),
        "{text}"
    );
    let json = serde_json::to_value(&summaries).unwrap();
    assert_eq!(json[0]["fragments"][1]["state"], "pruned");
    let comparison = render_comparison(&[Comparison {
        name: summaries[0].name.clone(),
        with_indexes: summaries[0].clone(),
        without_indexes: summaries[0].clone(),
    }]);
    assert!(
        comparison.contains("WITH INDEXES") && comparison.contains("WITHOUT INDEXES"),
        "{comparison}"
    );
}

#[test]
fn without_indexes_turns_the_switches_off_here_and_on_every_server() {
    let sql = without_indexes(&[
        ("dbtopo_shard_eu".to_owned(), None),
        (
            "dbtopo_shard_us".to_owned(),
            Some("-c work_mem=64MB".to_owned()),
        ),
    ]);
    assert_eq!(sql[0], "SET LOCAL enable_indexscan = off");
    assert_eq!(sql.len(), 5);
    assert_eq!(
        sql[3],
        "ALTER SERVER dbtopo_shard_eu OPTIONS (ADD options '-c enable_indexscan=off -c enable_indexonlyscan=off -c enable_bitmapscan=off')"
    );
    assert!(
        sql[4].starts_with("ALTER SERVER dbtopo_shard_us OPTIONS (SET options '-c work_mem=64MB -c enable_indexscan=off"),
        "{}",
        sql[4]
    );
}
