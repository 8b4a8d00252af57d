//! dbtopo's Mongo reconciler through the real `mongodb` driver against the mongod TEST DOUBLE
//! in `tests/mongo_double/` (no MongoDB server can be obtained on this project's machines):
//! a new set is initiated and gets its admin user, collections and indexes are made from the
//! manifests, changes are applied with collMod and index drops, members are added one voting
//! member at a time, and a second run sends no write at all. None of this is a real-server
//! result.

#[path = "mongo_double/mod.rs"]
mod mongo_double;

use std::collections::BTreeMap;

use dbtopo::mongo::client;
use dbtopo::mongo::diff::{self, MongoStep, SetState};
use dbtopo::mongo::model::{Collection, MongoIndex};
use dbtopo::plan::Operation;
use dbtopo::plan::mongo::{FoundMember, SetInput, member_specs};
use dbtopo::topology::{MongoMember, ReplicaSet};
use mongo_double::{MongoDouble, Options};
use mongodb::bson::doc;

const PASSWORD: &str = "s3cret-for-the-double";

fn replica_set(voters: u32) -> ReplicaSet {
    ReplicaSet {
        name: "rs0".into(),
        members: (0..voters)
            .map(|id| MongoMember {
                id,
                name: format!("rs0-{id}"),
                port: 27017 + id as u16,
                priority_tenths: 10,
                votes: 1,
                hidden: false,
                arbiter: false,
            })
            .collect(),
        database: "shop".into(),
        collections: None,
        profiles: Vec::new(),
    }
}

fn catalog() -> Collection {
    Collection {
        name: "product_catalog".into(),
        validator: Some(doc! { "$jsonSchema": {
            "bsonType": "object",
            "required": ["sku", "price"],
            "properties": { "price": { "bsonType": ["double", "int"], "minimum": 0 } },
        } }),
        validation_level: "strict".into(),
        validation_action: "error".into(),
        indexes: vec![
            MongoIndex {
                name: "sku_unique".into(),
                key: doc! { "sku": 1 },
                unique: true,
                partial_filter: None,
                expire_after_seconds: None,
            },
            MongoIndex {
                name: "category_price".into(),
                key: doc! { "category": 1, "price": -1 },
                unique: false,
                partial_filter: Some(doc! { "active": { "$eq": true } }),
                expire_after_seconds: None,
            },
        ],
    }
}

fn activity() -> Collection {
    Collection {
        name: "user_activity".into(),
        validator: None,
        validation_level: "strict".into(),
        validation_action: "error".into(),
        indexes: vec![MongoIndex {
            name: "at_ttl".into(),
            key: doc! { "at": 1 },
            unique: false,
            partial_filter: None,
            expire_after_seconds: Some(2_592_000),
        }],
    }
}

/// One reconciliation, as apply plans and runs it (the members' containers taken as
/// running): observe the set, plan, run each change's commands. Returns what it ran.
async fn reconcile(
    double: &MongoDouble,
    set: &ReplicaSet,
    collections: &[Collection],
) -> Vec<MongoStep> {
    let observed =
        dbtopo::observe::mongo::set(&set.name, double.port(), PASSWORD, &set.database).await;
    let members: BTreeMap<String, FoundMember> = member_specs("shop", "mongo:7", set)
        .into_iter()
        .map(|spec| {
            let found = FoundMember {
                running: true,
                spec_hash: spec.labels["dbtopo.spec-hash"].clone(),
            };
            (spec.node, found)
        })
        .collect();
    let (changes, warnings) = dbtopo::plan::mongo::changes(
        "shop",
        "mongo:7",
        &[SetInput {
            set,
            collections,
            members: &members,
            observed: &observed,
        }],
        &[],
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut ran = Vec::new();
    for change in changes {
        let Operation::MongoCommands { local, steps, .. } = &change.operation else {
            panic!("{} is not a command", change.address);
        };
        // Before the admin user exists the member admits the bootstrap without a login (the
        // localhost exception; in a container dbtopo runs it there with mongosh).
        let member = client::connect(
            client::Target::set("rs0", double.port()),
            (!*local).then_some(PASSWORD),
        )
        .await
        .unwrap();
        client::run(&member, steps, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", change.address));
        ran.extend(steps.iter().cloned());
    }
    ran
}

fn commands(steps: &[MongoStep]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            MongoStep::Command { command, .. } => {
                Some(command.split('"').nth(1).unwrap_or_default().to_owned())
            }
            MongoStep::WaitForPrimary => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_set_is_initiated_filled_changed_and_grown_then_left_alone() {
    let double = MongoDouble::start(Options {
        replica_set_name: "rs0".into(),
        access_control: true,
        election_delay: std::time::Duration::from_millis(300),
        ..Options::default()
    })
    .await;

    // A new set: initiated, a primary awaited, the admin user made, collections created.
    let three = replica_set(3);
    let ran = reconcile(&double, &three, &[catalog(), activity()]).await;
    assert_eq!(
        commands(&ran),
        [
            "replSetInitiate",
            "createUser",
            "create",
            "createIndexes",
            "create",
            "createIndexes"
        ]
    );
    let snapshot = double.snapshot();
    let authenticated = client::connect(client::Target::set("rs0", double.port()), Some(PASSWORD))
        .await
        .unwrap();
    let SetState::Initiated { version, members } = client::set_state(&authenticated).await.unwrap()
    else {
        panic!("the set is initiated");
    };
    assert_eq!(version, 1);
    assert_eq!(members, diff::desired_members("shop", &three));
    assert!(format!("{snapshot:?}").contains("category_price"));
    // `status` shows each member's replication state, as the member asked reports it.
    let states = client::member_states(&authenticated).await.unwrap();
    assert_eq!(states.get(&0).map(String::as_str), Some("PRIMARY"));
    assert_eq!(states.get(&1).map(String::as_str), Some("SECONDARY"));
    let observed =
        dbtopo::observe::mongo::set(&three.name, double.port(), PASSWORD, &three.database).await;
    let dbtopo::observed::SetObservation::Found { member_states, .. } = observed else {
        panic!("the set answers: {observed:?}");
    };
    assert_eq!(member_states, states);

    // What the server reports matches the manifests: nothing to do, no write sent.
    double.clear_command_log();
    assert!(
        reconcile(&double, &three, &[catalog(), activity()])
            .await
            .is_empty()
    );
    assert!(
        double.write_commands().is_empty(),
        "{:?}",
        double.write_commands()
    );

    // A manifest change: warn instead of error, one index gone, one changed.
    let mut changed = catalog();
    changed.validation_action = "warn".into();
    changed.indexes[1].key = doc! { "category": 1, "price": 1 };
    let mut fewer = activity();
    fewer.indexes.clear();
    let ran = reconcile(&double, &three, &[changed.clone(), fewer.clone()]).await;
    assert_eq!(
        commands(&ran),
        ["collMod", "dropIndexes", "createIndexes", "dropIndexes"]
    );
    let found = client::collections(&authenticated, "shop").await.unwrap();
    assert_eq!(found["product_catalog"].validation_action, "warn");
    assert!(found["user_activity"].indexes.is_empty());
    assert!(
        reconcile(&double, &three, &[changed.clone(), fewer.clone()])
            .await
            .is_empty()
    );

    // Two more voting members: two reconfigurations, each accepted by the member (which
    // refuses two voters at once with code 103), versions 2 and 3.
    let five = replica_set(5);
    let ran = reconcile(&double, &five, &[changed.clone(), fewer.clone()]).await;
    assert_eq!(commands(&ran), ["replSetReconfig", "replSetReconfig"]);
    let SetState::Initiated { version, members } = client::set_state(&authenticated).await.unwrap()
    else {
        panic!("the set is initiated");
    };
    assert_eq!((version, members.len()), (3, 5));
    assert!(
        reconcile(&double, &five, &[changed, fewer])
            .await
            .is_empty()
    );

    // The collections the manifests do not name are left alone.
    let untouched: BTreeMap<String, Collection> = BTreeMap::new();
    assert!(diff::collection_changes("shop", &[], &untouched).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bootstrap_stopped_after_the_initiation_is_finished_by_the_next_run() {
    let double = MongoDouble::start(Options {
        replica_set_name: "rs0".into(),
        access_control: true,
        ..Options::default()
    })
    .await;
    let set = replica_set(3);
    let wanted = diff::desired_members("shop", &set);
    let bootstrap = client::connect(client::Target::set("rs0", double.port()), None)
        .await
        .unwrap();
    // The set was initiated, then the apply stopped before the admin user was made.
    let first = diff::set_changes("rs0", &wanted, &SetState::NotInitiated);
    client::run(&bootstrap, &first[0].steps, PASSWORD)
        .await
        .unwrap();

    let ran = reconcile(&double, &set, &[]).await;
    assert_eq!(
        commands(&ran),
        ["replSetInitiate", "createUser"],
        "initiating again is answered AlreadyInitialized, which counts as done"
    );
    let authenticated = client::connect(client::Target::set("rs0", double.port()), Some(PASSWORD))
        .await
        .unwrap();
    assert!(matches!(
        client::set_state(&authenticated).await.unwrap(),
        SetState::Initiated { version: 1, .. }
    ));
    assert!(reconcile(&double, &set, &[]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_project_manifests_are_applied_and_seeded_once() {
    let double = MongoDouble::start(Options {
        replica_set_name: "rs0".into(),
        access_control: true,
        ..Options::default()
    })
    .await;
    let manifests = dbtopo::mongo::manifest::load_collections(&dbtopo::topology::CollectionsDir {
        dir: "manifests/mongo".into(),
        path: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/mongo"),
    })
    .expect("the project's manifests load");
    let names: Vec<&str> = manifests.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, dbtopo::mongo::seed::COLLECTIONS);
    let set = replica_set(3);
    reconcile(&double, &set, &manifests).await;
    assert!(reconcile(&double, &set, &manifests).await.is_empty());

    let member = client::connect(client::Target::set("rs0", double.port()), Some(PASSWORD))
        .await
        .unwrap();
    let counts = dbtopo::mongo::seed::seed(&member, "shop", 1)
        .await
        .expect("seed");
    assert_eq!(
        counts,
        [
            ("product_catalog", 50),
            ("reviews", 100),
            ("user_activity", 200)
        ]
    );
    // The unique indexes held (the double enforces them): every sku, every (product, user)
    // pair once. A second seed is refused rather than doubling the documents.
    let again = dbtopo::mongo::seed::seed(&member, "shop", 1).await;
    assert!(
        matches!(again, Err(dbtopo::mongo::seed::SeedError::NotEmpty { .. })),
        "{again:?}"
    );
    use futures_util::TryStreamExt;
    let phones: Vec<mongodb::bson::Document> = member
        .client()
        .database("shop")
        .collection::<mongodb::bson::Document>("product_catalog")
        .find(doc! { "category": "electronics/phones" })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(phones.len(), 8, "products 6, 12, ..., 48");
}
