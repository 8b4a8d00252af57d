//! Against a REAL mongod, when an image of it is present (none can be obtained on this
//! project's machines, so this test is ignored there, and `cargo test` reports it as
//! ignored, never as passed). To run it:
//!
//! ```sh
//! docker load -i mongo-7.tar     # or any way to have the image locally
//! DBTOPO_TEST_MONGO_IMAGE=mongo:7 cargo test --test mongo_real -- --ignored
//! ```
//!
//! It applies a topology with a three-member replica set and the project's collection
//! manifests, checks the set, the collections and a second empty plan, seeds documents,
//! runs the named aggregations of `manifests/mongo/queries/`, grows the set to five members
//! (two reconfigurations), and destroys everything.

mod common;

use common::TestEnv;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real MongoDB image: set DBTOPO_TEST_MONGO_IMAGE and run with --ignored"]
async fn a_real_replica_set_is_initiated_filled_and_grown() {
    let image = std::env::var("DBTOPO_TEST_MONGO_IMAGE")
        .expect("DBTOPO_TEST_MONGO_IMAGE names a MongoDB image present locally");
    let ports = free_ports(5);
    let manifests = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/mongo");
    let members = |n: usize| {
        ports[..n]
            .iter()
            .map(|p| format!("        - {{ port: {p} }}\n"))
            .collect::<String>()
    };
    let topology = |n: usize| {
        format!(
            "name: mongoreal\nimages: {{ mongo: '{image}' }}\npostgres:\n  nodes:\n    primary: {{ port: 5902 }}\nmongo:\n  replica_sets:\n    rs0:\n      database: shop\n      collections: {manifests}\n      members:\n{}",
            members(n)
        )
    };
    let env = TestEnv::from_yaml("mongoreal", &topology(3));
    env.apply().await.expect("apply with a real replica set");
    let again = env.plan().await;
    assert!(again.is_empty(), "{}", dbtopo::plan::render_text(&again));

    let secrets = dbtopo::secrets::load_existing(&env.name)
        .unwrap()
        .expect("secrets");
    let member = dbtopo::mongo::client::connect(
        dbtopo::mongo::client::Target::set("rs0", ports[0]),
        Some(&secrets.mongo_admin),
    )
    .await
    .unwrap();
    let names = member
        .client()
        .database("shop")
        .list_collection_names()
        .await
        .unwrap();
    for collection in dbtopo::mongo::seed::COLLECTIONS {
        assert!(names.iter().any(|n| n == collection), "{names:?}");
    }
    let counts = dbtopo::mongo::seed::seed(&member, "shop", 1)
        .await
        .expect("the documents satisfy the validators and the unique indexes");
    assert_eq!(counts[0], ("product_catalog", 50));
    let refused = member
        .client()
        .database("shop")
        .collection::<Document>("reviews")
        .insert_one(doc! { "product_id": 1, "user_id": 1, "rating": 9 })
        .await;
    assert!(refused.is_err(), "the validator refuses a rating of 9");
    let phones: Vec<Document> = member
        .client()
        .database("shop")
        .collection::<Document>("product_catalog")
        .find(doc! { "category": "electronics/phones" })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(phones.len(), 8);

    // The named aggregations (the test double has no `aggregate`: they run only here).
    let queries_dir = std::path::Path::new(manifests).join("queries");
    let queries: Vec<_> = dbtopo::mongo::query::load_queries(&queries_dir, "queries")
        .expect("the named queries load")
        .into_iter()
        .flat_map(|f| f.queries)
        .collect();
    let run = |name: &'static str| {
        let query = queries
            .iter()
            .find(|q| q.name.value == name)
            .unwrap_or_else(|| panic!("no query {name}"))
            .clone();
        let member = &member;
        async move {
            match dbtopo::mongo::query_run::run_query(member, "shop", &query)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
            {
                dbtopo::mongo::query_run::Outcome::Documents { documents } => documents,
                other => panic!("{name}: {other:?}"),
            }
        }
    };
    let averages = run("average_rating").await;
    assert_eq!(averages.len(), 10);
    let first = averages[0].get("average_rating").and_then(|a| a.as_f64());
    assert!(
        first.is_some_and(|a| (1.0..=5.0).contains(&a)),
        "{averages:?}"
    );
    let reviewers = run("top_reviewers").await;
    assert_eq!(reviewers.len(), 5);
    assert!(reviewers[0].contains_key("helpful_votes"), "{reviewers:?}");
    let per_day = run("activity_per_day").await;
    assert!(!per_day.is_empty());
    assert!(per_day[0].get_str("day").is_ok(), "{per_day:?}");
    let total: i64 = per_day
        .iter()
        .map(|d| d.get_i32("events").map(i64::from).unwrap_or_default())
        .sum();
    assert_eq!(total, 200, "every seeded event is counted once");
    let categories = run("products_per_category").await;
    assert_eq!(categories.len(), 6);

    // Five members: two reconfigurations, one voter each.
    env.rewrite(|yaml| yaml.replace(&members(3), &members(5)));
    env.apply().await.expect("grow the set");
    let grown = env.plan().await;
    assert!(grown.is_empty(), "{}", dbtopo::plan::render_text(&grown));
    let config = member
        .client()
        .database("admin")
        .run_command(doc! { "replSetGetConfig": 1 })
        .await
        .unwrap();
    let members = config
        .get_document("config")
        .unwrap()
        .get_array("members")
        .unwrap()
        .len();
    assert_eq!(members, 5);
}
