//! Named queries and `dbtopo mongo insert|update|delete` through the real `mongodb` driver
//! against the mongod TEST DOUBLE in `tests/mongo_double/` (no MongoDB server can be obtained
//! on this project's machines): finds with filter, projection, sort and limit, inserts,
//! `$set`/`$inc` updates and deletes, and a deadline. None of this is a real-server result;
//! the aggregations run only in `tests/mongo_real.rs` (the double has no `aggregate`).

#[path = "mongo_double/mod.rs"]
mod mongo_double;

use std::path::Path;
use std::time::Duration;

use dbtopo::mongo::client::{self, Deadlines, Member, MongoError, Target};
use dbtopo::mongo::query::{NamedQuery, load_queries};
use dbtopo::mongo::query_run::{self, Outcome};
use mongo_double::{MongoDouble, Options};
use mongodb::bson::{Bson, Document, doc};

const DATABASE: &str = "ecommerce";

async fn primary(options: Options) -> (MongoDouble, Member) {
    let double = MongoDouble::start(options).await;
    let deadlines = Deadlines {
        connect: Duration::from_secs(5),
        command: Duration::from_secs(2),
    };
    let member = client::connect_within(Target::set("rs0", double.port()), None, deadlines)
        .await
        .expect("connect to the double");
    member
        .client()
        .database("admin")
        .run_command(doc! { "replSetInitiate": {} })
        .await
        .expect("initiate");
    (double, member)
}

/// The shop's named query `name`.
fn shop_query(name: &str) -> NamedQuery {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/mongo/queries");
    load_queries(&dir, "manifests/mongo/queries")
        .expect("the shop's queries load")
        .into_iter()
        .flat_map(|f| f.queries)
        .find(|q| q.name.value == name)
        .unwrap_or_else(|| panic!("no query {name}"))
}

async fn insert(member: &Member, collection: &str, documents: Vec<Document>) {
    let count = documents.len() as u64;
    let outcome = query_run::insert_documents(member, DATABASE, collection, documents)
        .await
        .expect("insert");
    let Outcome::Inserted { inserted, ids } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((inserted, ids.len() as u64), (count, count));
}

async fn documents(member: &Member, query: &NamedQuery) -> Vec<Document> {
    match query_run::run_query(member, DATABASE, query).await.unwrap() {
        Outcome::Documents { documents } => documents,
        other => panic!("{other:?}"),
    }
}

async fn all(member: &Member, collection: &str) -> Vec<Document> {
    use futures_util::TryStreamExt;
    member
        .client()
        .database(DATABASE)
        .collection::<Document>(collection)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_named_find_filters_projects_sorts_and_limits() {
    let (double, member) = primary(Options::default()).await;
    let catalog = dbtopo::mongo::seed::documents("product_catalog", 2);
    insert(&member, "product_catalog", catalog.clone()).await;

    let found = documents(&member, &shop_query("phones_by_price")).await;
    let mut expected: Vec<&Document> = catalog
        .iter()
        .filter(|d| {
            d.get_str("category") == Ok("electronics/phones") && d.get_bool("active") == Ok(true)
        })
        .collect();
    expected.sort_by(|a, b| {
        b.get_f64("price")
            .unwrap()
            .total_cmp(&a.get_f64("price").unwrap())
    });
    assert!(expected.len() > 5, "the limit must cut: {}", expected.len());
    let expected: Vec<Document> = expected[..5]
        .iter()
        .map(|d| {
            doc! {
                "sku": d.get_str("sku").unwrap(),
                "name": d.get_str("name").unwrap(),
                "price": d.get_f64("price").unwrap(),
            }
        })
        .collect();
    assert_eq!(found, expected);

    // What the driver sent: one find, nothing written.
    let log = double.command_log();
    assert!(log.iter().any(|c| c.name == "find"), "{log:?}");
    assert!(!log.iter().any(|c| c.name == "getMore"), "{log:?}");

    let table = dbtopo::mongo::render::table(&found);
    assert!(
        table.contains(expected[0].get_str("sku").unwrap()),
        "{table}"
    );
}

#[tokio::test]
async fn a_named_find_on_reviews_takes_the_newest_of_one_product() {
    let (_double, member) = primary(Options::default()).await;
    let reviews = dbtopo::mongo::seed::documents("reviews", 3);
    insert(&member, "reviews", reviews.clone()).await;
    let found = documents(&member, &shop_query("recent_reviews")).await;
    let mut mine: Vec<&Document> = reviews
        .iter()
        .filter(|d| d.get_i64("product_id").ok() == Some(1))
        .collect();
    mine.sort_by_key(|d| std::cmp::Reverse(*d.get_datetime("created_at").unwrap()));
    assert_eq!(found.len(), mine.len().min(10));
    for (found, wanted) in found.iter().zip(&mine) {
        assert_eq!(
            found.keys().collect::<Vec<_>>(),
            ["user_id", "rating", "title", "created_at"],
            "the projection keeps the document's own order and drops _id"
        );
        assert_eq!(found.get("title"), wanted.get("title"));
    }
}

fn review(product_id: i32, user_id: i32, rating: i32, verified: bool) -> Document {
    doc! {
        "product_id": product_id,
        "user_id": user_id,
        "rating": rating,
        "verified_purchase": verified,
        "helpful_votes": 2,
        "created_at": mongodb::bson::DateTime::from_millis(1_767_225_600_000),
    }
}

#[tokio::test]
async fn named_updates_set_and_increment() {
    let (double, member) = primary(Options::default()).await;
    insert(
        &member,
        "reviews",
        vec![review(1, 3, 4, true), review(1, 4, 5, true)],
    )
    .await;
    double.clear_command_log();
    let mark = shop_query("mark_helpful");
    for votes in [3, 4] {
        let outcome = query_run::run_query(&member, DATABASE, &mark)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Updated {
                matched: 1,
                modified: 1
            }
        );
        let now = all(&member, "reviews").await;
        assert_eq!(now[0].get_i32("helpful_votes"), Ok(votes));
        assert_eq!(now[1].get_i32("helpful_votes"), Ok(2), "only user 3's");
    }
    let writes: Vec<String> = double
        .write_commands()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(writes, ["update", "update"]);

    // From the command line: `--many` sets every match; a second run modifies nothing.
    for modified in [2, 0] {
        let outcome = query_run::update_documents(
            &member,
            DATABASE,
            "reviews",
            doc! { "product_id": 1 },
            doc! { "$set": { "title": "Checked" } },
            true,
        )
        .await
        .unwrap();
        assert_eq!(
            outcome,
            Outcome::Updated {
                matched: 2,
                modified
            }
        );
    }
    let now = all(&member, "reviews").await;
    assert!(now.iter().all(|d| d.get_str("title") == Ok("Checked")));

    // `$inc` on a string is mongod's TypeMismatch, reported with the member's name.
    let refused = query_run::update_documents(
        &member,
        DATABASE,
        "reviews",
        doc! { "user_id": 3 },
        doc! { "$inc": { "title": 1 } },
        false,
    )
    .await
    .unwrap_err();
    let text = refused.to_string();
    assert!(text.contains("on 127.0.0.1:"), "{text}");
    assert!(
        text.contains("Cannot apply $inc to a value of non-numeric type"),
        "{text}"
    );

    // A named update on the catalog.
    insert(
        &member,
        "product_catalog",
        dbtopo::mongo::seed::documents("product_catalog", 1),
    )
    .await;
    let outcome = query_run::run_query(&member, DATABASE, &shop_query("retire_product"))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Updated {
            matched: 1,
            modified: 0
        },
        "product 10 is already inactive in the seed"
    );
}

#[tokio::test]
async fn named_and_command_line_deletes() {
    let (_double, member) = primary(Options::default()).await;
    insert(
        &member,
        "reviews",
        vec![
            review(1, 1, 1, false),
            review(2, 1, 1, true),
            review(3, 1, 1, false),
            review(4, 1, 5, false),
        ],
    )
    .await;
    let outcome =
        query_run::run_query(&member, DATABASE, &shop_query("delete_unverified_one_star"))
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Deleted { deleted: 2 });
    let left: Vec<Bson> = all(&member, "reviews")
        .await
        .iter()
        .map(|d| d.get("product_id").unwrap().clone())
        .collect();
    assert_eq!(left, [Bson::Int32(2), Bson::Int32(4)]);

    // Without --many, one document at most.
    let outcome = query_run::delete_documents(&member, DATABASE, "reviews", doc! {}, false)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Deleted { deleted: 1 });
    assert_eq!(all(&member, "reviews").await.len(), 1);
}

#[tokio::test]
async fn an_unanswered_update_stops_at_the_deadline() {
    let options = Options {
        silent_on: vec!["update".into()],
        ..Options::default()
    };
    let (_double, member) = primary(options).await;
    let started = std::time::Instant::now();
    let error = query_run::run_query(&member, DATABASE, &shop_query("mark_helpful"))
        .await
        .unwrap_err();
    assert!(matches!(error, MongoError::Deadline { .. }), "{error:?}");
    assert!(
        error.to_string().contains("did not answer update"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A MongoDB set of the double whose admin user has `password`.
async fn set_with_admin(password: &str) -> MongoDouble {
    let (double, member) = primary(Options {
        access_control: true,
        ..Options::default()
    })
    .await;
    member
        .client()
        .database("admin")
        .run_command(doc! {
            "createUser": dbtopo::mongo::diff::ADMIN_USER,
            "pwd": password,
            "roles": [{ "role": "root", "db": "admin" }],
        })
        .await
        .expect("create the admin user");
    double
}

/// A TEST DOUBLE of the `mongosh` program (no MongoDB shell exists on this machine): a
/// script that writes its arguments and the connection string it was given, then exits 7.
fn fake_mongosh(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("mongosh");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}/args'\nprintf '%s' \"${1}\" > '{0}/uri'\nexit 7\n",
            dir.display(),
            dbtopo::mongo::shell::URI_VARIABLE
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

#[tokio::test(flavor = "multi_thread")]
async fn mongosh_gets_the_password_in_its_environment_only_from_a_member_that_proves_itself() {
    let dir = std::env::temp_dir().join(format!("dbtopo-mongosh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _remove = Remove(dir.clone());
    let program = fake_mongosh(&dir);
    let password = "s3cret/with:signs@";

    let double = set_with_admin(password).await;
    let target = Target::member("rs0", "rs0-0", double.port());
    let user_args = vec!["--eval".to_owned(), "db.stats()".to_owned()];
    let code = dbtopo::app::launch_mongosh(
        &target,
        password,
        DATABASE,
        Some(&program),
        "unused",
        &user_args,
    )
    .await
    .expect("mongosh starts");
    assert_eq!(code, 7, "mongosh's exit code is dbtopo's");
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    let uri = std::fs::read_to_string(dir.join("uri")).unwrap();
    assert!(
        !args.contains("s3cret"),
        "password on the command line: {args}"
    );
    assert!(
        args.contains("--nodb") && args.ends_with("--eval\ndb.stats()\n"),
        "{args}"
    );
    assert_eq!(
        uri,
        format!(
            "mongodb://{}:s3cret%2Fwith%3Asigns%40@127.0.0.1:{}/{DATABASE}?authSource=admin&authMechanism=SCRAM-SHA-256&directConnection=true",
            dbtopo::mongo::diff::ADMIN_USER,
            double.port()
        )
    );

    // A member that does not hold the password's verifier cannot finish the exchange:
    // mongosh is never started, so it never sees the password.
    std::fs::remove_file(dir.join("uri")).unwrap();
    let impostor = set_with_admin("another password").await;
    let error = dbtopo::app::launch_mongosh(
        &Target::member("rs0", "rs0-0", impostor.port()),
        password,
        DATABASE,
        Some(&program),
        "unused",
        &[],
    )
    .await
    .expect_err("a member that does not prove itself gets nothing");
    assert!(
        format!("{error:?}").contains("not starting mongosh"),
        "{error:?}"
    );
    assert!(!dir.join("uri").exists(), "mongosh ran");
}
