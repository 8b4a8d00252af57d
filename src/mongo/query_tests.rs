//! Named queries: loading (shape, places) and the check against the collections' schemas.

use bson::doc;

use super::*;
use crate::mongo::manifest::load_collections;
use crate::mongo::query::{Operation, QueryError, load_queries, parse_all, parse_queries};
use crate::topology::CollectionsDir;

fn shop() -> Vec<Collection> {
    let root = env!("CARGO_MANIFEST_DIR");
    load_collections(&CollectionsDir {
        dir: "manifests/mongo".into(),
        path: format!("{root}/manifests/mongo").into(),
    })
    .unwrap()
}

fn parse(text: &str) -> QueryFile {
    parse_queries("q.yaml", text).unwrap_or_else(|p| panic!("{p:?}"))
}

/// The problems of parsing `text` (none expected) and checking it against the shop.
fn checked(text: &str) -> Vec<Problem> {
    check_queries(&[parse(text)], &shop())
}

fn only(problems: Vec<Problem>) -> Problem {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().unwrap()
}

fn help(p: &Problem) -> String {
    miette::Diagnostic::help(p)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

#[test]
fn the_shops_named_queries_load_and_match_their_schemas() {
    let root = env!("CARGO_MANIFEST_DIR");
    let files = load_queries(
        std::path::Path::new(&format!("{root}/manifests/mongo/queries")),
        "manifests/mongo/queries",
    )
    .unwrap();
    let problems = check_queries(&files, &shop());
    assert!(problems.is_empty(), "{problems:#?}");
    let names: Vec<&str> = files
        .iter()
        .flat_map(|f| &f.queries)
        .map(|q| q.name.value.as_str())
        .collect();
    for wanted in [
        "phones_by_price",
        "average_rating",
        "top_reviewers",
        "activity_per_day",
        "mark_helpful",
        "delete_unverified_one_star",
    ] {
        assert!(names.contains(&wanted), "{names:?}");
    }
    let kinds: Vec<&str> = files
        .iter()
        .flat_map(|f| &f.queries)
        .map(|q| q.operation.kind())
        .collect();
    for kind in ["find", "aggregate", "updateOne", "deleteMany"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
}

#[test]
fn a_find_becomes_bson_in_file_order() {
    let file = parse(
        "best:\n  description: d\n  collection: reviews\n  find:\n    filter: { rating: { $gte: 4 }, at: { $date: '2026-01-01T00:00:00Z' }, big: 4294967296 }\n    projection: { _id: 0, title: 1 }\n    sort: { rating: -1, created_at: -1 }\n    limit: 10\n    skip: 2\n",
    );
    let query = &file.queries[0];
    assert_eq!(query.description, "d");
    let Operation::Find {
        filter,
        projection,
        sort,
        limit,
        skip,
    } = &query.operation
    else {
        panic!("{:?}", query.operation);
    };
    assert_eq!(
        filter.as_ref().unwrap().value.to_document(),
        doc! {
            "rating": { "$gte": 4 },
            "at": bson::DateTime::from_millis(1_767_225_600_000),
            "big": 4_294_967_296_i64,
        }
    );
    let sort = sort.as_ref().unwrap().value.to_document();
    assert_eq!(sort.keys().collect::<Vec<_>>(), ["rating", "created_at"]);
    assert_eq!(
        projection.as_ref().unwrap().value.to_document(),
        doc! { "_id": 0, "title": 1 }
    );
    assert_eq!((*limit, *skip), (Some(10), Some(2)));
}

#[test]
fn shape_problems_point_into_the_file() {
    let yaml = "a:\n  collection: reviews\n  find: {}\nb:\n  description: x\n  collection: reviews\nc:\n  description: x\n  collection: reviews\n  find: {}\n  delete: { filter: {} }\nd:\n  description: x\n  collection: reviews\n  update: { filter: {}, update: { rating: 5 } }\ne:\n  description: x\n  collection: reviews\n  find: { limit: -1 }\n";
    let problems = parse_queries("q.yaml", yaml).unwrap_err();
    let found: Vec<(String, Option<&str>)> = problems
        .iter()
        .map(|p| (p.to_string(), p.snippet()))
        .collect();
    assert_eq!(
        found,
        [
            ("query `a` has no `description`".into(), Some("a")),
            ("query `b` has no operation".into(), Some("description: x")),
            ("query `c` has more than one operation".into(), Some("{")),
            (
                "`update` of query `d` replaces the document".into(),
                Some("rating")
            ),
            (
                "`limit` of query `e` is not a whole number".into(),
                Some("-1")
            ),
        ]
    );
}

#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    let problems = parse_queries(
        "q.yaml",
        "a:\n  description: x\n  collection: reviews\n  find: { fliter: {} }\n",
    )
    .unwrap_err();
    let p = only(problems);
    assert_eq!(p.to_string(), "unknown key `fliter`");
    assert_eq!(p.snippet(), Some("fliter"));
    assert!(help(&p).contains("did you mean `filter`?"), "{}", help(&p));
}

#[test]
fn a_name_declared_in_two_files_is_a_problem() {
    let query = "top:\n  description: x\n  collection: reviews\n  find: {}\n".to_owned();
    let err = parse_all(
        "queries",
        &[("a.yaml".into(), query.clone()), ("b.yaml".into(), query)],
    )
    .unwrap_err();
    assert!(matches!(err, QueryError::Invalid { .. }));
    let p = &err.problems()[0];
    assert_eq!(p.to_string(), "query `top` is declared twice");
    assert_eq!(p.file(), "b.yaml");
    assert!(help(p).contains("a.yaml"));
}

#[test]
fn a_misspelt_field_in_a_filter_points_at_it_with_a_suggestion() {
    let yaml = "q:\n  description: x\n  collection: reviews\n  find:\n    filter: { ratng: 5 }\n";
    let p = only(checked(yaml));
    assert_eq!(
        p.to_string(),
        "field `ratng` is not in the `$jsonSchema` of collection `reviews`"
    );
    assert_eq!(p.snippet(), Some("ratng"));
    assert_eq!(p.span().unwrap().offset(), yaml.find("ratng").unwrap());
    assert!(
        help(&p).starts_with("did you mean `rating`?"),
        "{}",
        help(&p)
    );
    let rendered = crate::test_support::render_report(&p);
    assert!(rendered.contains("q.yaml:5:15"), "{rendered}");
}

#[test]
fn every_place_a_field_is_named_is_checked() {
    let yaml = "\
q:
  description: x
  collection: product_catalog
  find:
    filter: { $or: [ { sku: A }, { colour: red } ], images: { $elemMatch: { url: x, alt_text: y } } }
    projection: { name: 1, prise: 1 }
    sort: { updated: -1 }
u:
  description: x
  collection: reviews
  update:
    filter: { user_id: 1 }
    update: { $set: { titel: t }, $inc: { helpfull_votes: 1 }, $sett: { a: 1 } }
";
    let problems = checked(yaml);
    let found: Vec<(String, Option<&str>)> = problems
        .iter()
        .map(|p| (p.to_string(), p.snippet()))
        .collect();
    let schema =
        |c: &str, f: &str| format!("field `{f}` is not in the `$jsonSchema` of collection `{c}`");
    assert_eq!(
        found,
        [
            (schema("product_catalog", "colour"), Some("colour")),
            (
                schema("product_catalog", "images.alt_text"),
                Some("alt_text")
            ),
            (schema("product_catalog", "prise"), Some("prise")),
            (schema("product_catalog", "updated"), Some("updated")),
            (schema("reviews", "titel"), Some("titel")),
            (schema("reviews", "helpfull_votes"), Some("helpfull_votes")),
            ("unknown update operator `$sett`".into(), Some("$sett")),
        ]
    );
}

#[test]
fn nested_paths_follow_the_schema() {
    // `attributes` is free-form; `images` is an array of documents with `url` and `alt`;
    // `name` is a string, so nothing is below it.
    let ok = "q:\n  description: x\n  collection: product_catalog\n  find:\n    filter: { attributes.color: red, images.url: x, images.0.alt: y, _id: 1 }\n";
    assert!(checked(ok).is_empty());
    let p = only(checked(
        "q:\n  description: x\n  collection: product_catalog\n  find:\n    filter: { name.first: x }\n",
    ));
    assert_eq!(
        p.to_string(),
        "field `name.first` goes below `name`, which has no fields in the `$jsonSchema` of collection `product_catalog`"
    );
}

#[test]
fn pipelines_are_checked_stage_by_stage() {
    let yaml = "\
q:
  description: x
  collection: reviews
  aggregate:
    - $match: { verified_purchase: true, stars: 5 }
    - $group: { _id: $product_id, average: { $avg: $ratin }, n: { $sum: 1 } }
    - $match: { average: { $gte: 4 } }
    - $sort: { avg: -1 }
    - $project: { _id: 0, product: $_id, average: 1 }
    - $sort: { product: 1, n: 1 }
    - $facet: { a: [] }
    - $match: { anything: 1 }
";
    let problems = checked(yaml);
    let found: Vec<(String, Option<&str>)> = problems
        .iter()
        .map(|p| (p.to_string(), p.snippet()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "field `stars` is not in the `$jsonSchema` of collection `reviews`".into(),
                Some("stars")
            ),
            (
                "field `ratin` is not in the `$jsonSchema` of collection `reviews`".into(),
                Some("$ratin")
            ),
            (
                "field `avg` is not in the output of the `$group` stage (line 6)".into(),
                Some("avg")
            ),
            (
                "field `n` is not in the output of the `$project` stage (line 9)".into(),
                Some("n")
            ),
        ]
    );
}

#[test]
fn an_unknown_collection_is_named_with_a_suggestion() {
    let p = only(checked(
        "q:\n  description: x\n  collection: review\n  find: {}\n",
    ));
    assert_eq!(
        p.to_string(),
        "query `q` names collection `review`, which no manifest declares"
    );
    assert_eq!(p.snippet(), Some("review"));
    assert!(
        help(&p).starts_with("did you mean `reviews`?"),
        "{}",
        help(&p)
    );
}

#[test]
fn a_collection_without_a_schema_is_not_checked() {
    let free = Collection {
        name: "events".into(),
        validator: None,
        validation_level: "strict".into(),
        validation_action: "error".into(),
        indexes: Vec::new(),
    };
    let file =
        parse("q:\n  description: x\n  collection: events\n  find: { filter: { whatever: 1 } }\n");
    assert!(check_queries(&[file], &[free]).is_empty());
}

#[test]
fn command_line_documents_are_checked_at_their_place() {
    let reviews = shop().into_iter().find(|c| c.name == "reviews").unwrap();
    let (source, node) =
        crate::mongo::query::parse_node("--doc", r#"{"$set": {"rating": 4, "titel": "x"}}"#)
            .unwrap();
    let p = only(check_document(&source, &node, true, &reviews));
    assert_eq!(p.snippet(), Some("\"titel\""));
    assert!(help(&p).starts_with("did you mean `title`?"));
    assert!(crate::mongo::query::parse_node("--filter", "[1]").is_err());
}

#[test]
fn no_panic_on_damaged_query_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text =
        std::fs::read_to_string(format!("{root}/manifests/mongo/queries/reviews.yaml")).unwrap();
    let chars: Vec<char> = text.chars().collect();
    let collections = shop();
    for i in (0..chars.len()).step_by(7) {
        for insert in ["", "{", "é", ": ", "- ", "$"] {
            let mut damaged: String = chars[..i].iter().collect();
            damaged.push_str(insert);
            damaged.extend(&chars[i + 1..]);
            let problems = match parse_queries("d.yaml", &damaged) {
                Ok(file) => check_queries(&[file], &collections),
                Err(problems) => problems,
            };
            for p in &problems {
                assert!(!crate::test_support::render_report(p).is_empty());
            }
        }
    }
}
