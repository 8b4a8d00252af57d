//! When the MongoDB image cannot be had (no registry answers, and Debian does not package
//! MongoDB), the PostgreSQL part of the topology is applied all the same, and the Mongo part
//! fails with a diagnostic that says why and what to do. Real Docker Engine, real
//! PostgreSQL; the image reference points at a registry on 127.0.0.1 where nothing listens,
//! so the pull fails at once without leaving this machine.

mod common;

use common::TestEnv;

const TOPOLOGY: &str = "
name: mongoless
images: { mongo: '127.0.0.1:9/dbtopo-absent/mongo:7' }
postgres:
  nodes:
    primary: { port: 5901 }
mongo:
  replica_sets:
    rs0: { members: 1, port: 27917 }
";

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_part_applies_and_the_mongo_part_fails_with_what_to_do() {
    let env = TestEnv::from_yaml("mongoless", TOPOLOGY);
    let planned = env.plan().await;
    let text = dbtopo::plan::render_text(&planned);
    for address in [
        "node.primary",
        "image.127.0.0.1:9/dbtopo-absent/mongo:7",
        "mongo_member.rs0-0",
        "replica_set.rs0",
    ] {
        assert!(text.contains(address), "{address} is not planned:\n{text}");
    }

    let error = env
        .apply()
        .await
        .expect_err("the Mongo image cannot be had");
    let rendered = format!("{error:?}");
    assert!(rendered.contains("cannot get image"), "{rendered}");
    assert!(rendered.contains("images.mongo"), "{rendered}");

    // PostgreSQL runs; what is left is the Mongo part only.
    let primary = env.connect("primary").await;
    let one: i32 = primary.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let left = env.plan().await;
    assert!(
        left.changes.iter().all(|c| c.address.kind() == "image"
            || c.address.kind().starts_with("mongo_")
            || c.address.kind() == "replica_set"),
        "{}",
        dbtopo::plan::render_text(&left)
    );
    assert!(!left.changes.is_empty());
}
