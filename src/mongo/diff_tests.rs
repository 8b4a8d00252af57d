use std::collections::BTreeMap;

use bson::{Bson, doc};

use super::*;

fn member(id: u32, votes: u8) -> MemberConfig {
    MemberConfig {
        id,
        host: format!("shop-rs0-{id}:27017"),
        priority_tenths: if votes > 0 { 10 } else { 0 },
        votes,
        hidden: false,
        arbiter: false,
    }
}

fn command(step: &MongoStep) -> Document {
    let MongoStep::Command { command, .. } = step else {
        panic!("not a command: {step:?}");
    };
    let json: serde_json::Value = serde_json::from_str(command).unwrap();
    match Bson::try_from(json).unwrap() {
        Bson::Document(d) => d,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_set_is_initiated_with_every_member_then_waits_for_a_primary() {
    let wanted = vec![member(0, 1), member(1, 1), member(2, 1)];
    let changes = set_changes("rs0", &wanted, &SetState::NotInitiated);
    assert_eq!(changes.len(), 1);
    let initiate = command(&changes[0].steps[0]);
    let config = initiate.get_document("replSetInitiate").unwrap();
    assert_eq!(config.get_str("_id").unwrap(), "rs0");
    let members = config.get_array("members").unwrap();
    assert_eq!(members.len(), 3);
    let first = members[0].as_document().unwrap();
    assert_eq!(first.get_str("host").unwrap(), "shop-rs0-0:27017");
    assert_eq!(changes[0].steps[1], MongoStep::WaitForPrimary);
}

#[test]
fn a_matching_set_needs_nothing() {
    let wanted = vec![member(0, 1), member(1, 1), member(2, 1)];
    let state = SetState::Initiated {
        version: 4,
        members: wanted.clone(),
    };
    assert!(set_changes("rs0", &wanted, &state).is_empty());
}

#[test]
fn voting_members_are_added_one_per_reconfiguration_with_rising_versions() {
    let state = SetState::Initiated {
        version: 1,
        members: vec![member(0, 1)],
    };
    let wanted = vec![member(0, 1), member(1, 1), member(2, 1), member(3, 0)];
    let changes = set_changes("rs0", &wanted, &state);
    // The non-voting member first (it changes no majority), then one voter at a time.
    let counts: Vec<(i32, usize, usize)> = changes
        .iter()
        .map(|c| {
            let config = command(&c.steps[0]);
            let config = config.get_document("replSetReconfig").unwrap().clone();
            let members = config.get_array("members").unwrap();
            let voters = members
                .iter()
                .filter(|m| m.as_document().unwrap().get_i32("votes").unwrap() > 0)
                .count();
            let version = match config.get("version") {
                Some(Bson::Int32(v)) => *v,
                Some(Bson::Int64(v)) => *v as i32,
                other => panic!("{other:?}"),
            };
            (version, members.len(), voters)
        })
        .collect();
    assert_eq!(counts, [(2, 2, 1), (3, 3, 2), (4, 4, 3)]);
}

#[test]
fn voters_removed_before_voters_added() {
    let state = SetState::Initiated {
        version: 7,
        members: vec![member(0, 1), member(1, 1), member(2, 1)],
    };
    let wanted = vec![member(0, 1), member(1, 1), member(3, 1)];
    let changes = set_changes("rs0", &wanted, &state);
    assert_eq!(changes.len(), 2);
    assert!(changes[0].reason.starts_with("remove member 2"));
    assert!(changes[1].reason.starts_with("add member 3"));
}

fn index(name: &str, key: Document) -> MongoIndex {
    MongoIndex {
        name: name.into(),
        key,
        unique: false,
        partial_filter: None,
        expire_after_seconds: None,
    }
}

fn catalog() -> Collection {
    Collection {
        name: "catalog".into(),
        validator: Some(doc! { "$jsonSchema": { "bsonType": "object", "required": ["sku"] } }),
        validation_level: "strict".into(),
        validation_action: "error".into(),
        indexes: vec![
            MongoIndex {
                unique: true,
                ..index("sku_unique", doc! { "sku": 1 })
            },
            index("category_price", doc! { "category": 1, "price": -1 }),
        ],
    }
}

#[test]
fn a_missing_collection_is_created_with_its_validator_and_indexes() {
    let changes = collection_changes("shop", &[catalog()], &BTreeMap::new());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, CollectionChangeKind::Create);
    let create = command(&changes[0].steps[0]);
    assert_eq!(create.get_str("create").unwrap(), "catalog");
    assert!(create.get_document("validator").is_ok());
    let indexes = command(&changes[0].steps[1]);
    let specs = indexes.get_array("indexes").unwrap();
    let keys: Vec<String> = specs[1]
        .as_document()
        .unwrap()
        .get_document("key")
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["category", "price"], "compound key order is kept");
}

#[test]
fn the_same_collection_as_the_server_spells_it_needs_nothing() {
    let mut observed = catalog();
    // The server reports numbers in its own types.
    observed.indexes[0].key = doc! { "sku": 1.0 };
    observed.indexes[1].key = doc! { "category": 1_i64, "price": -1_i64 };
    let found = BTreeMap::from([("catalog".to_owned(), observed)]);
    assert!(collection_changes("shop", &[catalog()], &found).is_empty());
}

#[test]
fn changed_rules_use_collmod_and_changed_or_extra_indexes_are_dropped() {
    let mut observed = catalog();
    observed.validation_action = "warn".into();
    observed.indexes[1].key = doc! { "price": -1, "category": 1 };
    observed
        .indexes
        .push(index("old_idx", doc! { "legacy": 1 }));
    let found = BTreeMap::from([("catalog".to_owned(), observed)]);
    let changes = collection_changes("shop", &[catalog()], &found);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, CollectionChangeKind::Modify);
    let commands: Vec<Document> = changes[0].steps.iter().map(command).collect();
    assert_eq!(commands[0].get_str("collMod").unwrap(), "catalog");
    assert_eq!(commands[0].get_str("validationAction").unwrap(), "error");
    let dropped: Vec<&str> = commands
        .iter()
        .filter_map(|c| c.get_str("index").ok())
        .collect();
    assert_eq!(dropped, ["old_idx", "category_price"]);
    let created = commands.last().unwrap().get_array("indexes").unwrap();
    assert_eq!(created.len(), 1);
}
