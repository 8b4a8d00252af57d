//! The MongoDB test double, exercised through the real `mongodb` driver: each test checks
//! that the double answers as mongod 7.0 does, so that dbtopo's reconciler can later be
//! tested against it with confidence.

#[path = "mongo_double/mod.rs"]
mod mongo_double;

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongo_double::{MemberState, MongoDouble, Options};
use mongodb::bson::{Document, doc};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ValidationAction, ValidationLevel};
use mongodb::{Client, IndexModel};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn client(uri: &str) -> Client {
    Client::with_uri_str(uri)
        .await
        .expect("a client for the double")
}

async fn admin_command(client: &Client, command: Document) -> Result<Document, Error> {
    client.database("admin").run_command(command).await
}

/// The code, code name and message of a command error; anything else fails the test.
fn command_error(error: &Error) -> (i32, String, String) {
    match error.kind.as_ref() {
        ErrorKind::Command(command) => (
            command.code,
            command.code_name.clone(),
            command.message.clone(),
        ),
        other => panic!("expected a command error, got {other:?}"),
    }
}

fn expect_code(result: Result<Document, Error>, code: i32, code_name: &str) -> String {
    let error = result.expect_err("the command must fail");
    let (found_code, found_name, message) = command_error(&error);
    assert_eq!(
        (found_code, found_name.as_str()),
        (code, code_name),
        "{message}"
    );
    message
}

/// A double initiated as a one-member set and already primary, with a client for it.
async fn primary() -> (MongoDouble, Client) {
    let double = MongoDouble::start(Options::default()).await;
    let client = client(&double.uri()).await;
    admin_command(&client, doc! { "replSetInitiate": {} })
        .await
        .expect("initiate");
    (double, client)
}

fn member(id: i32, host: &str) -> Document {
    doc! { "_id": id, "host": host }
}

#[tokio::test]
async fn the_driver_handshakes_with_an_uninitiated_member() {
    let double = MongoDouble::start(Options::default()).await;
    let client = client(&double.uri()).await;

    let hello = admin_command(&client, doc! { "hello": 1 })
        .await
        .expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(false));
    assert_eq!(hello.get_bool("secondary"), Ok(false));
    assert_eq!(hello.get_bool("isreplicaset"), Ok(true));
    assert_eq!(
        hello.get_str("info"),
        Ok("Does not have a valid replica set config")
    );
    assert_eq!(hello.get_i32("maxWireVersion"), Ok(21));
    assert!(
        hello.get("setName").is_none(),
        "no set name before initiation: {hello}"
    );
    assert!(
        hello.get("compression").is_none(),
        "no compressor is advertised"
    );

    admin_command(&client, doc! { "ping": 1 })
        .await
        .expect("ping");
    let build_info = admin_command(&client, doc! { "buildInfo": 1 })
        .await
        .expect("buildInfo");
    assert!(build_info.get_str("version").unwrap().starts_with("7.0."));

    // The driver's handshake is OP_MSG isMaster with helloOk; its monitor then uses hello.
    let names: Vec<String> = double
        .command_log()
        .into_iter()
        .map(|command| command.name)
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("isMaster"),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_legacy_op_query_handshake_gets_an_op_reply() {
    let double = MongoDouble::start(Options::default()).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", double.port()))
        .await
        .unwrap();

    let mut query = Vec::new();
    doc! { "isMaster": 1 }.to_writer(&mut query).unwrap();
    let mut message = Vec::new();
    message.extend_from_slice(&0i32.to_le_bytes()); // flags
    message.extend_from_slice(b"admin.$cmd\0");
    message.extend_from_slice(&0i32.to_le_bytes()); // numberToSkip
    message.extend_from_slice(&(-1i32).to_le_bytes()); // numberToReturn
    message.extend_from_slice(&query);
    let mut framed = Vec::new();
    framed.extend_from_slice(&(16 + message.len() as i32).to_le_bytes());
    framed.extend_from_slice(&4242i32.to_le_bytes()); // requestID
    framed.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    framed.extend_from_slice(&2004i32.to_le_bytes()); // OP_QUERY
    framed.extend_from_slice(&message);
    stream.write_all(&framed).await.unwrap();

    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await.unwrap();
    let field = |at: usize| i32::from_le_bytes(header[at..at + 4].try_into().unwrap());
    assert_eq!(field(8), 4242, "responseTo is the request's id");
    assert_eq!(field(12), 1, "OP_REPLY");
    let mut rest = vec![0u8; field(0) as usize - 16];
    stream.read_exact(&mut rest).await.unwrap();
    assert_eq!(
        i32::from_le_bytes(rest[16..20].try_into().unwrap()),
        1,
        "numberReturned"
    );
    let reply = Document::from_reader(&rest[20..]).unwrap();
    assert_eq!(reply.get_bool("ismaster"), Ok(false));
    assert_eq!(reply.get_f64("ok"), Ok(1.0));
}

#[tokio::test]
async fn replica_set_commands_before_initiation_are_not_yet_initialized() {
    let double = MongoDouble::start(Options::default()).await;
    let client = client(&double.uri()).await;

    let message = expect_code(
        admin_command(&client, doc! { "replSetGetStatus": 1 }).await,
        94,
        "NotYetInitialized",
    );
    assert_eq!(message, "no replset config has been received");
    expect_code(
        admin_command(&client, doc! { "replSetGetConfig": 1 }).await,
        94,
        "NotYetInitialized",
    );
    let config = doc! { "_id": "rs0", "version": 2, "members": [member(0, "a:27017")] };
    expect_code(
        admin_command(&client, doc! { "replSetReconfig": config }).await,
        94,
        "NotYetInitialized",
    );
    // Reads and writes need a member in a set.
    let insert = client
        .database("app")
        .run_command(doc! { "insert": "t", "documents": [{ "x": 1 }] })
        .await;
    expect_code(insert, 10107, "NotWritablePrimary");
}

#[tokio::test]
async fn initiate_checks_the_config_and_runs_once() {
    let double = MongoDouble::start(Options::default()).await;
    let client = client(&double.uri()).await;

    let wrong_name = doc! { "_id": "other", "members": [member(0, "a:27017")] };
    let message = expect_code(
        admin_command(&client, doc! { "replSetInitiate": wrong_name }).await,
        93,
        "InvalidReplicaSetConfig",
    );
    assert_eq!(
        message,
        "Attempting to initiate a replica set with name other, but command line reports rs0; rejecting"
    );

    let eight_voters: Vec<Document> = (0..8)
        .map(|id| member(id, &format!("m{id}:27017")))
        .collect();
    let config = doc! { "_id": "rs0", "members": eight_voters };
    let message = expect_code(
        admin_command(&client, doc! { "replSetInitiate": config }).await,
        93,
        "InvalidReplicaSetConfig",
    );
    assert_eq!(
        message,
        "Replica set configuration contains 8 voting members, but must be at least 1 and no more than 7"
    );

    let fifty_one: Vec<Document> = (0..51)
        .map(|id| doc! { "_id": id, "host": format!("m{id}:27017"), "votes": i32::from(id < 7), "priority": i32::from(id < 7) })
        .collect();
    let config = doc! { "_id": "rs0", "members": fifty_one };
    let message = expect_code(
        admin_command(&client, doc! { "replSetInitiate": config }).await,
        93,
        "InvalidReplicaSetConfig",
    );
    assert!(
        message.starts_with("Replica set configuration contains 51 members"),
        "{message}"
    );

    let config = doc! { "_id": "rs0", "members": [member(0, "mongo-a:27017")] };
    admin_command(&client, doc! { "replSetInitiate": config.clone() })
        .await
        .expect("first initiate");
    let message = expect_code(
        admin_command(&client, doc! { "replSetInitiate": config }).await,
        23,
        "AlreadyInitialized",
    );
    assert_eq!(message, "already initialized");

    // The stored config has mongod's defaults filled in.
    let reply = admin_command(&client, doc! { "replSetGetConfig": 1 })
        .await
        .expect("config");
    let stored = reply.get_document("config").unwrap();
    let first = stored.get_array("members").unwrap()[0]
        .as_document()
        .unwrap();
    assert_eq!(first.get_i32("votes"), Ok(1));
    assert_eq!(first.get_bool("arbiterOnly"), Ok(false));
    assert_eq!(stored.get_i32("version"), Ok(1));
    assert!(
        stored
            .get_document("settings")
            .unwrap()
            .get_object_id("replicaSetId")
            .is_ok()
    );
}

/// Long enough for the checks made while the member is secondary on a loaded machine.
const ELECTION_DELAY: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn the_member_is_secondary_until_its_election_then_a_writable_primary() {
    let double = MongoDouble::start(Options {
        election_delay: ELECTION_DELAY,
        ..Options::default()
    })
    .await;
    // No retry: a write refused by a secondary must surface, not be retried after the election.
    let client = client(&format!("{}&retryWrites=false", double.uri())).await;
    let started = Instant::now();
    admin_command(&client, doc! { "replSetInitiate": {} })
        .await
        .expect("initiate");

    let hello = admin_command(&client, doc! { "hello": 1 })
        .await
        .expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(false));
    assert_eq!(hello.get_bool("secondary"), Ok(true));
    assert_eq!(hello.get_str("setName"), Ok("rs0"));
    assert!(hello.get("primary").is_none());
    let status = admin_command(&client, doc! { "replSetGetStatus": 1 })
        .await
        .expect("status");
    assert_eq!(status.get_i32("myState"), Ok(2));
    // Reads are served: in a direct connection the driver allows reading from a secondary.
    let names = client.database("app").list_collection_names().await;
    assert_eq!(
        names.expect("a read on the secondary"),
        Vec::<String>::new()
    );
    // Last before the election: after a refused write the driver waits for its monitor to
    // check the member again.
    let insert = client
        .database("app")
        .run_command(doc! { "insert": "t", "documents": [{ "x": 1 }] })
        .await;
    let message = expect_code(insert, 10107, "NotWritablePrimary");
    assert_eq!(message, "not primary");

    // What a reconciler does: poll hello until the member is a writable primary.
    let hello = loop {
        let hello = admin_command(&client, doc! { "hello": 1 })
            .await
            .expect("hello");
        if hello.get_bool("isWritablePrimary") == Ok(true) {
            break hello;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no primary after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(started.elapsed() >= ELECTION_DELAY);
    let me = hello.get_str("me").unwrap();
    assert_eq!(hello.get_str("primary"), Ok(me));
    assert_eq!(hello.get_array("hosts").unwrap().len(), 1);
    assert!(hello.get_object_id("electionId").is_ok());
    assert!(hello.get_document("topologyVersion").is_ok());
    assert_eq!(double.snapshot().member_state, MemberState::Primary);

    let status = admin_command(&client, doc! { "replSetGetStatus": 1 })
        .await
        .expect("status");
    assert_eq!(status.get_str("set"), Ok("rs0"));
    assert_eq!(status.get_i32("myState"), Ok(1));
    let members = status.get_array("members").unwrap();
    let me = members[0].as_document().unwrap();
    assert_eq!(
        (me.get_i32("state"), me.get_str("stateStr")),
        (Ok(1), Ok("PRIMARY"))
    );
    assert_eq!(me.get_f64("health"), Ok(1.0));
    let typed = client.database("app").collection::<Document>("t");
    typed
        .insert_one(doc! { "x": 1 })
        .await
        .expect("a write on the primary");
}

#[tokio::test]
async fn reconfig_adds_one_voting_member_at_a_time() {
    let double = MongoDouble::start(Options {
        self_host: Some("mongo-a:27017".into()),
        ..Options::default()
    })
    .await;
    let client = client(&double.uri()).await;
    let config = doc! { "_id": "rs0", "members": [member(0, "mongo-a:27017")] };
    admin_command(&client, doc! { "replSetInitiate": config })
        .await
        .expect("initiate");

    let two_more = doc! {
        "_id": "rs0", "version": 2,
        "members": [member(0, "mongo-a:27017"), member(1, "mongo-b:27017"), member(2, "mongo-c:27017")],
    };
    let message = expect_code(
        admin_command(&client, doc! { "replSetReconfig": two_more }).await,
        103,
        "NewReplicaSetConfigurationIncompatible",
    );
    assert_eq!(
        message,
        "Non force replica set reconfig can only add or remove at most 1 voting member."
    );

    let one_more = doc! { "_id": "rs0", "version": 2, "members": [member(0, "mongo-a:27017"), member(1, "mongo-b:27017")] };
    admin_command(&client, doc! { "replSetReconfig": one_more.clone() })
        .await
        .expect("one voter more");
    let message = expect_code(
        admin_command(&client, doc! { "replSetReconfig": one_more }).await,
        103,
        "NewReplicaSetConfigurationIncompatible",
    );
    assert!(
        message.contains("{version: 2, term: 1} is not greater than {version: 2, term: 1}"),
        "{message}"
    );

    // A non-voting member does not count against the one-voter rule.
    let voter_and_passive = doc! {
        "_id": "rs0", "version": 3,
        "members": [
            member(0, "mongo-a:27017"), member(1, "mongo-b:27017"), member(2, "mongo-c:27017"),
            { "_id": 3, "host": "mongo-d:27017", "votes": 0, "priority": 0 },
        ],
    };
    admin_command(&client, doc! { "replSetReconfig": voter_and_passive })
        .await
        .expect("one voter and one passive");

    let reply = admin_command(&client, doc! { "replSetGetConfig": 1 })
        .await
        .expect("config");
    let stored = reply.get_document("config").unwrap();
    assert_eq!(stored.get_i32("version"), Ok(3));
    assert_eq!(stored.get_array("members").unwrap().len(), 4);
    let hello = admin_command(&client, doc! { "hello": 1 })
        .await
        .expect("hello");
    assert_eq!(hello.get_array("hosts").unwrap().len(), 3);
    assert_eq!(hello.get_array("passives").unwrap().len(), 1);
    assert_eq!(hello.get_i32("setVersion"), Ok(3));
    assert_eq!(hello.get_str("me"), Ok("mongo-a:27017"));
    let status = admin_command(&client, doc! { "replSetGetStatus": 1 })
        .await
        .expect("status");
    let states: Vec<&str> = status
        .get_array("members")
        .unwrap()
        .iter()
        .map(|member| member.as_document().unwrap().get_str("stateStr").unwrap())
        .collect();
    assert_eq!(states, ["PRIMARY", "SECONDARY", "SECONDARY", "SECONDARY"]);

    // The member must find itself in the new config.
    let without_me = doc! { "_id": "rs0", "version": 4, "members": [member(1, "mongo-b:27017"), member(2, "mongo-c:27017"), { "_id": 3, "host": "mongo-d:27017", "votes": 0, "priority": 0 }] };
    expect_code(
        admin_command(&client, doc! { "replSetReconfig": without_me }).await,
        74,
        "NodeNotFound",
    );
}

#[tokio::test]
async fn collection_validators_round_trip() {
    let (double, client) = primary().await;
    let database = client.database("shop");
    let validator = doc! { "$jsonSchema": { "bsonType": "object", "required": ["sku"] } };
    database
        .create_collection("products")
        .validator(validator.clone())
        .validation_level(ValidationLevel::Strict)
        .validation_action(ValidationAction::Error)
        .await
        .expect("create");

    let specifications: Vec<_> = database
        .list_collections()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(specifications.len(), 1);
    let products = &specifications[0];
    assert_eq!(products.name, "products");
    assert_eq!(products.options.validator.as_ref(), Some(&validator));
    assert_eq!(
        products.options.validation_level,
        Some(ValidationLevel::Strict)
    );
    assert!(products.info.uuid.is_some());

    // The same create again is accepted; a different one is not.
    database
        .create_collection("products")
        .validator(validator.clone())
        .validation_level(ValidationLevel::Strict)
        .validation_action(ValidationAction::Error)
        .await
        .expect("an identical create");
    let different = database
        .create_collection("products")
        .validation_level(ValidationLevel::Moderate)
        .await;
    let (code, code_name, _) = command_error(&different.unwrap_err());
    assert_eq!((code, code_name.as_str()), (48, "NamespaceExists"));

    let looser = doc! { "$jsonSchema": { "bsonType": "object" } };
    database
        .run_command(
            doc! { "collMod": "products", "validator": looser.clone(), "validationAction": "warn" },
        )
        .await
        .expect("collMod");
    let raw: Vec<Document> = database
        .run_command(doc! { "listCollections": 1, "filter": { "name": "products" } })
        .await
        .unwrap()
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .iter()
        .map(|entry| entry.as_document().unwrap().clone())
        .collect();
    let options = raw[0].get_document("options").unwrap();
    assert_eq!(options.get_document("validator"), Ok(&looser));
    assert_eq!(options.get_str("validationLevel"), Ok("strict"));
    assert_eq!(options.get_str("validationAction"), Ok("warn"));
    assert_eq!(raw[0].get_str("type"), Ok("collection"));

    let missing = database
        .run_command(doc! { "collMod": "nothing", "validationLevel": "off" })
        .await;
    expect_code(missing, 26, "NamespaceNotFound");
    let typo = database
        .run_command(doc! { "collMod": "products", "validationLevle": "off" })
        .await;
    expect_code(typo, 40415, "Location40415");
    assert_eq!(
        double.snapshot().collections["shop.products"]
            .options
            .get_str("validationAction"),
        Ok("warn")
    );
}

#[tokio::test]
async fn indexes_round_trip_with_their_options_and_conflicts() {
    let (double, client) = primary().await;
    let users = client.database("shop").collection::<Document>("users");
    let unique_email = IndexOptions::builder()
        .name("email_unique".to_string())
        .unique(true)
        .partial_filter_expression(doc! { "email": { "$exists": true } })
        .build();
    users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(unique_email)
                .build(),
        )
        .await
        .expect("unique partial");
    let ttl = IndexOptions::builder()
        .expire_after(Duration::from_secs(3600))
        .build();
    users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "createdAt": 1 })
                .options(ttl)
                .build(),
        )
        .await
        .expect("ttl");
    users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "region": 1, "joined": -1 })
                .build(),
        )
        .await
        .expect("compound");
    // Asking again for an existing index changes nothing.
    users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "region": 1, "joined": -1 })
                .build(),
        )
        .await
        .expect("again");

    let indexes: Vec<IndexModel> = users
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let names: Vec<String> = indexes
        .iter()
        .map(|index| index.options.as_ref().unwrap().name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        ["_id_", "email_unique", "createdAt_1", "region_1_joined_-1"]
    );
    let email = indexes[1].options.as_ref().unwrap();
    assert_eq!(email.unique, Some(true));
    assert_eq!(
        email.partial_filter_expression,
        Some(doc! { "email": { "$exists": true } })
    );
    assert_eq!(
        indexes[2].options.as_ref().unwrap().expire_after,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(indexes[3].keys, doc! { "region": 1, "joined": -1 });

    let database = client.database("shop");
    let other_key = doc! { "createIndexes": "users", "indexes": [{ "key": { "name": 1 }, "name": "email_unique" }] };
    expect_code(
        database.run_command(other_key).await,
        86,
        "IndexKeySpecsConflict",
    );
    let other_options = doc! { "createIndexes": "users", "indexes": [{ "key": { "createdAt": 1 }, "name": "createdAt_1", "expireAfterSeconds": 60 }] };
    expect_code(
        database.run_command(other_options).await,
        85,
        "IndexOptionsConflict",
    );
    let other_name = doc! { "createIndexes": "users", "indexes": [{ "key": { "region": 1, "joined": -1 }, "name": "by_region" }] };
    let message = expect_code(
        database.run_command(other_name).await,
        85,
        "IndexOptionsConflict",
    );
    assert_eq!(
        message,
        "Index already exists with a different name: region_1_joined_-1"
    );

    // The unique partial index holds for documents with an email, and only for those.
    users
        .insert_one(doc! { "email": "a@example.com" })
        .await
        .expect("first");
    users
        .insert_one(doc! { "name": "no email" })
        .await
        .expect("no email");
    users
        .insert_one(doc! { "name": "no email either" })
        .await
        .expect("no email either");
    let duplicate = users
        .insert_one(doc! { "email": "a@example.com" })
        .await
        .unwrap_err();
    match duplicate.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(error)) => {
            assert_eq!(error.code, 11000);
            assert!(
                error.message.contains("index: email_unique dup key"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a duplicate key write error, got {other:?}"),
    }

    users.drop_index("createdAt_1").await.expect("drop");
    let missing = users.drop_index("createdAt_1").await.unwrap_err();
    let (code, code_name, message) = command_error(&missing);
    assert_eq!((code, code_name.as_str()), (27, "IndexNotFound"));
    assert_eq!(message, "index not found with name [createdAt_1]");
    let id_index = users.drop_index("_id_").await.unwrap_err();
    assert_eq!(command_error(&id_index).0, 72);
    let missing_collection = client
        .database("shop")
        .collection::<Document>("nothing")
        .list_indexes()
        .await;
    assert_eq!(command_error(&missing_collection.unwrap_err()).0, 26);
    assert_eq!(double.snapshot().collections["shop.users"].indexes.len(), 3);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    #[serde(rename = "_id")]
    id: i32,
    region: String,
    total: f64,
}

#[tokio::test]
async fn inserted_documents_are_found_by_filter() {
    let (_double, client) = primary().await;
    let orders = client.database("shop").collection::<Order>("orders");
    let all = [
        Order {
            id: 1,
            region: "eu".into(),
            total: 10.0,
        },
        Order {
            id: 2,
            region: "us".into(),
            total: 25.5,
        },
        Order {
            id: 3,
            region: "eu".into(),
            total: 40.0,
        },
    ];
    orders.insert_many(all.clone()).await.expect("insert");

    let european: Vec<Order> = orders
        .find(doc! { "region": "eu" })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(european, [all[0].clone(), all[2].clone()]);
    let everything: Vec<Order> = orders
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(everything.len(), 3);
    let big = orders
        .find_one(doc! { "total": { "$gt": 20 }, "region": "us" })
        .await
        .unwrap();
    assert_eq!(big, Some(all[1].clone()));
    assert_eq!(
        orders.find_one(doc! { "region": "asia" }).await.unwrap(),
        None
    );

    let duplicate = orders.insert_one(all[0].clone()).await.unwrap_err();
    assert!(
        matches!(duplicate.kind.as_ref(), ErrorKind::Write(WriteFailure::WriteError(error)) if error.code == 11000)
    );
    let deleted = orders.delete_many(doc! { "region": "eu" }).await.unwrap();
    assert_eq!(deleted.deleted_count, 2);
}

#[tokio::test]
async fn an_unknown_command_is_command_not_found() {
    let (double, client) = primary().await;
    let message = expect_code(
        admin_command(&client, doc! { "frobnicate": 1 }).await,
        59,
        "CommandNotFound",
    );
    assert_eq!(message, "no such command: 'frobnicate'");
    assert!(
        double
            .command_log()
            .iter()
            .any(|command| command.name == "frobnicate")
    );
}

#[tokio::test]
async fn with_access_control_only_authenticated_clients_run_commands_once_a_user_exists() {
    let double = MongoDouble::start(Options {
        access_control: true,
        ..Options::default()
    })
    .await;
    let anonymous = client(&double.uri()).await;
    // The localhost exception: initiate, then create the first user.
    admin_command(&anonymous, doc! { "replSetInitiate": {} })
        .await
        .expect("initiate");
    let early_read = anonymous
        .database("shop")
        .run_command(doc! { "listCollections": 1 })
        .await;
    expect_code(early_read, 13, "Unauthorized");
    admin_command(
        &anonymous,
        doc! { "createUser": "admin", "pwd": "s3cret", "roles": ["root"] },
    )
    .await
    .expect("first user");

    let message = expect_code(
        anonymous
            .database("shop")
            .run_command(doc! { "listCollections": 1 })
            .await,
        13,
        "Unauthorized",
    );
    assert_eq!(message, "command listCollections requires authentication");
    let second_user = admin_command(
        &anonymous,
        doc! { "createUser": "other", "pwd": "x", "roles": [] },
    )
    .await;
    expect_code(second_user, 13, "Unauthorized");
    admin_command(&anonymous, doc! { "ping": 1 })
        .await
        .expect("ping needs no authentication");

    let port = double.port();
    let authenticated = client(&format!(
        "mongodb://admin:s3cret@127.0.0.1:{port}/?directConnection=true"
    ))
    .await;
    authenticated
        .database("shop")
        .create_collection("orders")
        .await
        .expect("an authenticated write");
    let names = authenticated
        .database("shop")
        .list_collection_names()
        .await
        .expect("an authenticated read");
    assert_eq!(names, ["orders"]);
    let users = admin_command(&authenticated, doc! { "usersInfo": "admin" })
        .await
        .expect("usersInfo");
    let user = users.get_array("users").unwrap()[0].as_document().unwrap();
    assert_eq!(user.get_str("_id"), Ok("admin.admin"));
    assert_eq!(
        user.get_array("roles").unwrap()[0].as_document().unwrap(),
        &doc! { "role": "root", "db": "admin" }
    );

    let wrong = client(&format!(
        "mongodb://admin:wrong@127.0.0.1:{port}/?directConnection=true"
    ))
    .await;
    let refused = admin_command(&wrong, doc! { "ping": 1 }).await.unwrap_err();
    assert!(
        matches!(refused.kind.as_ref(), ErrorKind::Authentication { .. }),
        "a wrong password fails authentication: {refused:?}"
    );
    let log = double.command_log();
    assert!(
        log.iter().any(|command| command.name == "saslContinue"),
        "the driver proved its password"
    );

    // For an unknown user the speculative first step is left out of hello, so the driver
    // authenticates with saslStart, which fails as mongod's does.
    let unknown = client(&format!(
        "mongodb://nobody:x@127.0.0.1:{port}/?directConnection=true"
    ))
    .await;
    let refused = admin_command(&unknown, doc! { "ping": 1 })
        .await
        .unwrap_err();
    assert!(
        matches!(refused.kind.as_ref(), ErrorKind::Authentication { .. }),
        "{refused:?}"
    );
    assert!(
        double
            .command_log()
            .iter()
            .any(|command| command.name == "saslStart")
    );
}

#[tokio::test]
async fn the_driver_monitor_waits_for_topology_changes_instead_of_polling() {
    let double = MongoDouble::start(Options::default()).await;
    let client = client(&double.uri()).await;
    admin_command(&client, doc! { "ping": 1 }).await.unwrap();
    let hellos = || {
        double
            .command_log()
            .iter()
            .filter(|command| command.name == "hello" || command.name == "isMaster")
            .count()
    };
    // Idle: the monitor's awaitable hello is held, not answered in a loop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = hellos();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        hellos() <= idle + 1,
        "the monitor polled: {idle} then {} hellos",
        hellos()
    );

    // A topology change answers the held hello at once, and the monitor sends the next.
    admin_command(&client, doc! { "replSetInitiate": {} })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        hellos() > idle,
        "the held hello was not answered on initiation: {idle} then {:?}",
        double.command_log()
    );
}

#[tokio::test]
async fn malformed_messages_close_the_connection_and_the_double_serves_on() {
    let double = MongoDouble::start(Options::default()).await;
    let header = |length: u8, op_code: [u8; 2]| {
        vec![
            length, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, op_code[0], op_code[1], 0, 0,
        ]
    };
    let op_msg = 2013u16.to_le_bytes();
    let mut without_section = header(20, op_msg);
    without_section.extend([0, 0, 0, 0]);
    let mut unknown_section = header(21, op_msg);
    unknown_section.extend([0, 0, 0, 0, 9]);
    let compressed = header(16, 2012u16.to_le_bytes());
    let too_short = header(5, op_msg);
    for garbage in [too_short, without_section, unknown_section, compressed] {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", double.port()))
            .await
            .unwrap();
        stream.write_all(&garbage).await.unwrap();
        let mut buffer = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection must be closed after {garbage:?}"
        );
    }
    let client = client(&double.uri()).await;
    admin_command(&client, doc! { "ping": 1 })
        .await
        .expect("still serving");
}

#[tokio::test]
async fn the_command_log_tells_whether_a_client_wrote() {
    let (double, client) = primary().await;
    let database = client.database("shop");
    database.create_collection("orders").await.unwrap();
    let writes: Vec<String> = double
        .write_commands()
        .into_iter()
        .map(|command| command.name)
        .collect();
    assert_eq!(writes, ["replSetInitiate", "create"]);

    double.clear_command_log();
    database.list_collection_names().await.unwrap();
    admin_command(&client, doc! { "replSetGetConfig": 1 })
        .await
        .unwrap();
    assert!(double.write_commands().is_empty());
    assert!(
        double
            .command_log()
            .iter()
            .any(|command| command.name == "listCollections" && command.database == "shop")
    );
}

/// One `update` statement, sent as the driver sends `updateOne`/`updateMany`.
async fn update_command(client: &Client, q: Document, u: Document, multi: bool) -> Document {
    client
        .database("shop")
        .run_command(doc! { "update": "things", "updates": [ { "q": q, "u": u, "multi": multi } ] })
        .await
        .expect("update answers ok: 1, failures are write errors")
}

fn write_error(reply: &Document) -> (i32, String) {
    let errors = reply.get_array("writeErrors").expect("a write error");
    let error = errors[0].as_document().unwrap();
    (
        error.get_i32("code").unwrap(),
        error.get_str("errmsg").unwrap().to_owned(),
    )
}

#[tokio::test]
async fn update_sets_increments_and_unsets_as_mongod_does() {
    let (_double, client) = primary().await;
    let things = client.database("shop").collection::<Document>("things");
    things
        .insert_many([
            doc! { "_id": 1, "n": i32::MAX, "tag": "a" },
            doc! { "_id": 2, "n": 1_i64, "tag": "a" },
            doc! { "_id": 3, "n": 1.5, "tag": "b" },
        ])
        .await
        .unwrap();

    // Int32 overflowing becomes Int64; long stays long; a double stays double.
    let reply = update_command(&client, doc! {}, doc! { "$inc": { "n": 1 } }, true).await;
    assert_eq!(
        (reply.get_i32("n"), reply.get_i32("nModified")),
        (Ok(3), Ok(3))
    );
    let all: Vec<Document> = things
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        all[0].get("n"),
        Some(&mongodb::bson::Bson::Int64(i64::from(i32::MAX) + 1))
    );
    assert_eq!(all[1].get("n"), Some(&mongodb::bson::Bson::Int64(2)));
    assert_eq!(all[2].get("n"), Some(&mongodb::bson::Bson::Double(2.5)));

    // multi: false changes the first match only; setting the same value modifies nothing.
    let reply = update_command(
        &client,
        doc! { "tag": "a" },
        doc! { "$set": { "tag": "c" } },
        false,
    )
    .await;
    assert_eq!(
        (reply.get_i32("n"), reply.get_i32("nModified")),
        (Ok(1), Ok(1))
    );
    let reply = update_command(
        &client,
        doc! { "_id": 3 },
        doc! { "$set": { "tag": "b" } },
        false,
    )
    .await;
    assert_eq!(
        (reply.get_i32("n"), reply.get_i32("nModified")),
        (Ok(1), Ok(0))
    );

    // Dotted paths create embedded documents; $unset removes; a missing field is $inc's operand.
    update_command(
        &client,
        doc! { "_id": 3 },
        doc! { "$set": { "a.b.c": 1 }, "$unset": { "tag": "" }, "$inc": { "m": 5 } },
        false,
    )
    .await;
    let three = things.find_one(doc! { "_id": 3 }).await.unwrap().unwrap();
    assert_eq!(
        three,
        doc! { "_id": 3, "n": 2.5, "a": { "b": { "c": 1 } }, "m": 5 }
    );

    // Failures are write errors with mongod's codes; the command itself is ok.
    for (update, code, message) in [
        (
            doc! { "$inc": { "tag": 1 } },
            14,
            "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'tag' of non-numeric type string",
        ),
        (
            doc! { "$inc": { "n": "x" } },
            14,
            "Cannot increment with non-numeric argument: {n: \"x\"}",
        ),
        (
            doc! { "$set": { "tag.x": 1 } },
            28,
            "Cannot create field 'x' in element {tag: \"c\"}",
        ),
        (
            doc! { "$set": { "a": 1 }, "$inc": { "a.b": 1 } },
            40,
            "Updating the path 'a.b' would create a conflict at 'a'",
        ),
        (
            doc! { "$set": { "_id": 9 } },
            66,
            "Performing an update on the path '_id' would modify the immutable field '_id'",
        ),
    ] {
        let reply = update_command(&client, doc! { "_id": 1 }, update.clone(), false).await;
        assert_eq!(write_error(&reply), (code, message.to_owned()), "{update}");
        assert_eq!(reply.get_i32("nModified"), Ok(0));
    }

    // Unique indexes hold for the updated document.
    things
        .create_index(
            IndexModel::builder()
                .keys(doc! { "tag": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .unwrap();
    let reply = update_command(
        &client,
        doc! { "_id": 2 },
        doc! { "$set": { "tag": "c" } },
        false,
    )
    .await;
    assert_eq!(write_error(&reply).0, 11000);

    // What the double does not do is refused, never answered wrongly.
    let refused = client
        .database("shop")
        .run_command(doc! { "update": "things", "updates": [ { "q": {}, "u": { "$set": { "x": 1 } }, "upsert": true } ] })
        .await;
    let message = expect_code(refused, 2, "BadValue");
    assert!(message.contains("test double"), "{message}");
    let refused = client
        .database("shop")
        .run_command(doc! { "update": "things", "updates": [ { "q": {}, "u": { "tag": "z" } } ] })
        .await;
    expect_code(refused, 2, "BadValue");
}
