use std::collections::{BTreeMap, BTreeSet};

use super::coordinator::{self, Found, ObjectKind};
use super::placement::{self, place};
use crate::plan::fragments::{CoordinatorState, Input, changes};
use crate::plan::{Action, Operation};
use crate::schema::{Schema, parse_schema};
use crate::topology::{Bound, Fragmentation, Fragments, HorizontalPart};

const SQL: &str = "
CREATE TABLE users (user_id bigint PRIMARY KEY);
CREATE TABLE orders (
    order_id bigint GENERATED ALWAYS AS IDENTITY,
    user_id bigint NOT NULL REFERENCES users (user_id),
    region text NOT NULL CHECK (region IN ('EU', 'US')),
    PRIMARY KEY (order_id, region)
);
CREATE TABLE order_notes (
    order_id bigint NOT NULL,
    region text NOT NULL,
    note text,
    FOREIGN KEY (order_id, region) REFERENCES orders (order_id, region)
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
";

fn manifest() -> Schema {
    parse_schema("test.sql", SQL).unwrap()
}

fn part(node: &str, bound: Bound) -> HorizontalPart {
    HorizontalPart {
        node: node.into(),
        bound,
    }
}

fn fragments(parts: Vec<HorizontalPart>) -> Fragments {
    Fragments {
        coordinator: "primary".into(),
        tables: BTreeMap::from([(
            "orders".to_owned(),
            Fragmentation::Horizontal {
                key: "region".into(),
                parts,
            },
        )]),
        reference_tables: BTreeMap::new(),
        indexes: Vec::new(),
    }
}

fn by_region() -> Fragments {
    fragments(vec![
        part(
            "shard-eu",
            Bound::List {
                values: vec!["EU".into()],
            },
        ),
        part(
            "shard-us",
            Bound::List {
                values: vec!["US".into()],
            },
        ),
    ])
}

#[test]
fn each_fragment_node_holds_the_table_with_its_predicate_keys_and_indexes_but_no_foreign_keys() {
    let placement = place(&manifest(), &by_region());
    let eu = &placement.fragment_nodes["shard-eu"];
    let orders = &eu.tables["orders"];
    assert!(orders.foreign_keys.is_empty());
    assert_eq!(
        orders.primary_key.as_ref().unwrap().columns,
        ["order_id", "region"]
    );
    assert!(orders.columns.iter().all(|c| c.identity.is_none()));
    let predicate = orders
        .checks
        .iter()
        .find(|c| c.name == "orders_fragment_check")
        .unwrap();
    assert_eq!(predicate.expression, "region IN ('EU')");
    assert_eq!(eu.indexes["orders_user_id_idx"].table, "orders");
    assert_eq!(
        placement.servers,
        BTreeSet::from(["shard-eu".into(), "shard-us".into()])
    );

    let table = &placement.partitioned[0];
    assert_eq!(table.partition_by, "LIST (region)");
    assert!(table.table.primary_key.is_none() && table.table.foreign_keys.is_empty());
    assert!(
        table.table.columns[0].identity.is_some(),
        "ids come from the coordinator"
    );
    let bounds: Vec<(&str, &str)> = table
        .partitions
        .iter()
        .map(|p| (p.name.as_str(), p.bound.as_str()))
        .collect();
    assert_eq!(
        bounds,
        [
            ("orders_shard_eu", "FOR VALUES IN ('EU')"),
            ("orders_shard_us", "FOR VALUES IN ('US')")
        ]
    );
}

#[test]
fn the_coordinator_keeps_the_other_tables_without_foreign_keys_into_fragments() {
    let fragmented = BTreeSet::from(["orders".to_owned()]);
    let coordinator = placement::coordinator_schema(&manifest(), &fragmented, &[], &[]);
    assert!(!coordinator.tables.contains_key("orders"));
    assert!(coordinator.tables["order_notes"].foreign_keys.is_empty());
    assert!(coordinator.indexes.is_empty());
    assert!(coordinator.tables.contains_key("users"));
}

#[test]
fn ranges_and_hash_parts_sharing_a_node_get_their_own_tables() {
    let parts = vec![
        part(
            "shard-eu",
            Bound::Hash {
                modulus: 3,
                remainder: 0,
            },
        ),
        part(
            "shard-us",
            Bound::Hash {
                modulus: 3,
                remainder: 1,
            },
        ),
        part(
            "shard-eu",
            Bound::Hash {
                modulus: 3,
                remainder: 2,
            },
        ),
    ];
    let mut hashed = fragments(parts);
    hashed.indexes.push(crate::topology::DistributedIndex {
        table: "orders".into(),
        columns: vec!["user_id".into()],
        unique: false,
    });
    let placement = place(&manifest(), &hashed);
    let indexes: Vec<&str> = placement.fragment_nodes["shard-eu"]
        .indexes
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(indexes, ["orders_0_user_id_idx", "orders_2_user_id_idx",]);
    let eu: Vec<&str> = placement.fragment_nodes["shard-eu"]
        .tables
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(eu, ["orders_0", "orders_2"]);
    assert_eq!(
        placement.fragment_nodes["shard-eu"].tables["orders_0"]
            .primary_key
            .as_ref()
            .unwrap()
            .name,
        "orders_0_pkey"
    );
    let table = &placement.partitioned[0];
    assert_eq!(table.partition_by, "HASH (region)");
    assert_eq!(
        table.partitions[2].bound,
        "FOR VALUES WITH (MODULUS 3, REMAINDER 2)"
    );
    assert_eq!(table.partitions[2].remote_table, "orders_2");

    let ranges = fragments(vec![
        part(
            "shard-eu",
            Bound::Range {
                from: None,
                to: Some("M".into()),
            },
        ),
        part(
            "shard-us",
            Bound::Range {
                from: Some("M".into()),
                to: None,
            },
        ),
    ]);
    let placement = place(&manifest(), &ranges);
    assert_eq!(
        placement.partitioned[0].partitions[0].bound,
        "FOR VALUES FROM (MINVALUE) TO ('M')"
    );
    let us = &placement.fragment_nodes["shard-us"].tables["orders"];
    assert!(us.checks.iter().any(|c| c.expression == "region >= 'M'"));
}

fn plan_changes(state: &CoordinatorState) -> Result<Vec<(String, Action)>, String> {
    let placement = place(&manifest(), &by_region());
    let objects = coordinator::objects("shop", "shop", &placement);
    let nodes = vec!["shard-eu".to_owned(), "shard-us".to_owned()];
    changes(&Input {
        objects: &objects,
        state,
        coordinator: "primary",
        host_port: 5433,
        database: "shop",
        fragment_nodes: &nodes,
    })
    .map(|changes| changes.into_iter().map(|c| (c.address, c.action)).collect())
}

/// What a converged coordinator holds for `by_region()`.
fn converged() -> Found {
    let placement = place(&manifest(), &by_region());
    let objects = coordinator::objects("shop", "shop", &placement);
    let mut found = Found::default();
    for object in &objects {
        match object.kind {
            ObjectKind::Server => {
                found
                    .servers
                    .insert(object.name.clone(), Some(object.comment()));
            }
            ObjectKind::PartitionedTable => {
                found
                    .tables
                    .insert(object.name.clone(), ('p', Some(object.comment())));
                found
                    .partitions
                    .insert(object.name.clone(), object.partitions.clone());
            }
            ObjectKind::Publication => {
                found
                    .publications
                    .insert(object.name.clone(), Some(object.comment()));
            }
            ObjectKind::VerticalTable => {
                found
                    .tables
                    .insert(object.name.clone(), ('v', Some(object.comment())));
            }
            ObjectKind::Subscription => {}
        }
    }
    found
}

#[test]
fn the_coordinator_objects_are_made_once_and_then_left_alone() {
    let fresh = plan_changes(&CoordinatorState::Fresh).unwrap();
    assert_eq!(
        fresh,
        [
            ("fdw_server.dbtopo_shard_eu".to_owned(), Action::Create),
            ("fdw_server.dbtopo_shard_us".to_owned(), Action::Create),
            ("fragmented_table.orders".to_owned(), Action::Create),
        ]
    );
    assert!(
        plan_changes(&CoordinatorState::Observed(converged()))
            .unwrap()
            .is_empty()
    );
    assert!(plan_changes(&CoordinatorState::Unknown).unwrap().is_empty());
}

#[test]
fn a_changed_server_remakes_its_tables_and_a_stale_server_is_dropped() {
    let mut found = converged();
    found
        .servers
        .insert("dbtopo_shard_eu".into(), Some("dbtopo old".into()));
    found.servers.insert("dbtopo_shard_ap".into(), None);
    assert_eq!(
        plan_changes(&CoordinatorState::Observed(found)).unwrap(),
        [
            ("fdw_server.dbtopo_shard_eu".to_owned(), Action::Replace),
            ("fragmented_table.orders".to_owned(), Action::Replace),
            ("fdw_server.dbtopo_shard_ap".to_owned(), Action::Delete),
        ]
    );

    let mut found = converged();
    found
        .partitions
        .get_mut("orders")
        .unwrap()
        .remove("orders_shard_us");
    assert_eq!(
        plan_changes(&CoordinatorState::Observed(found)).unwrap(),
        [("fragmented_table.orders".to_owned(), Action::Replace)]
    );
}

#[test]
fn an_ordinary_table_in_the_way_is_refused_and_the_password_never_shows() {
    let mut found = converged();
    found.tables.insert("orders".into(), ('r', None));
    let refused = plan_changes(&CoordinatorState::Observed(found)).unwrap_err();
    assert!(refused.contains("ordinary table"), "{refused}");

    let placement = place(&manifest(), &by_region());
    let objects = coordinator::objects("shop", "shop", &placement);
    let server = &objects[0];
    let statements = server.statements(false);
    assert!(
        statements
            .iter()
            .any(|s| s.contains(coordinator::PASSWORD_PLACEHOLDER))
    );
    let plan = crate::plan::Plan::new(
        "shop".into(),
        vec![crate::plan::Change {
            address: "fdw_server.x".into(),
            action: Action::Create,
            reason: "test".into(),
            details: Vec::new(),
            after: Vec::new(),
            operation: Operation::RunSql {
                node: "primary".into(),
                host_port: 5433,
                database: "shop".into(),
                statements,
                transactional: true,
            },
        }],
    );
    assert!(crate::plan::render_text(&plan).contains("password '<superuser password>'"));
}

#[test]
fn reference_copies_have_no_foreign_keys_and_their_subscription_hides_the_password() {
    let mut with_copies = by_region();
    with_copies
        .reference_tables
        .insert("users".into(), vec!["shard-eu".into()]);
    let placement = place(&manifest(), &with_copies);
    assert_eq!(placement.references["shard-eu"], ["users"]);
    assert!(
        placement.fragment_nodes["shard-eu"]
            .tables
            .contains_key("users")
    );
    let objects = coordinator::objects("shop", "shop", &placement);
    let publication = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Publication)
        .unwrap();
    assert_eq!(
        publication.create,
        ["CREATE PUBLICATION dbtopo_ref_shard_eu FOR TABLE users;"]
    );
    let subscription =
        coordinator::subscription("shop", "primary", "shop", "shard-eu", &["users".into()]);
    let sql = subscription.statements(true).join("\n");
    assert!(sql.starts_with("DROP SUBSCRIPTION IF EXISTS dbtopo_ref_shard_eu;\nTRUNCATE users;"));
    assert!(sql.contains("host=shop-primary"));
    assert!(sql.contains(coordinator::CONNINFO_PASSWORD_PLACEHOLDER));
    use crate::plan::fragments::{SubscriptionState, subscription_change};
    let fresh = subscription_change(
        &subscription,
        &SubscriptionState::Fresh,
        "shard-eu",
        "primary",
        5435,
        "shop",
    )
    .unwrap();
    assert_eq!(fresh.action, Action::Create);
    let current = SubscriptionState::Observed(Some(Some(subscription.comment())));
    assert!(
        subscription_change(&subscription, &current, "shard-eu", "primary", 5435, "shop").is_none()
    );
}

#[test]
fn a_vertical_table_is_a_view_over_its_column_groups_written_by_a_trigger() {
    let sql = "CREATE TABLE users (
        user_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL CHECK (email LIKE '%@%'),
        secret text NOT NULL CHECK (length(secret) > 3),
        created_at timestamptz NOT NULL DEFAULT now()
    );";
    let manifest = parse_schema("v.sql", sql).unwrap();
    let fragments = Fragments {
        coordinator: "primary".into(),
        tables: BTreeMap::from([(
            "users".to_owned(),
            Fragmentation::Vertical {
                key: "user_id".into(),
                parts: vec![
                    crate::topology::VerticalPart {
                        node: "primary".into(),
                        columns: vec!["email".into(), "created_at".into()],
                    },
                    crate::topology::VerticalPart {
                        node: "shard-eu".into(),
                        columns: vec!["secret".into()],
                    },
                ],
            },
        )]),
        reference_tables: BTreeMap::new(),
        indexes: Vec::new(),
    };
    let placement = place(&manifest, &fragments);
    let remote = &placement.fragment_nodes["shard-eu"].tables["users"];
    let names: Vec<&str> = remote.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["user_id", "secret"]);
    assert_eq!(remote.checks.len(), 1, "only the check on its own columns");
    assert!(remote.columns[0].identity.is_none());

    let fragmented = BTreeSet::from(["users".to_owned()]);
    let coordinator =
        placement::coordinator_schema(&manifest, &fragmented, &placement.vertical, &[]);
    let local = &coordinator.tables["users_primary"];
    let names: Vec<&str> = local.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["user_id", "email", "created_at"]);
    assert_eq!(
        local.primary_key.as_ref().unwrap().name,
        "users_primary_pkey"
    );
    assert!(!coordinator.tables.contains_key("users"));

    let objects = coordinator::objects("shop", "shop", &placement);
    let view = objects
        .iter()
        .find(|o| o.kind == ObjectKind::VerticalTable)
        .unwrap();
    let sql = view.create.join("\n");
    assert!(sql.contains(
        "CREATE VIEW users AS SELECT p0.user_id, p0.email, p1.secret, p0.created_at FROM users_primary p0 JOIN users_shard_eu p1 ON p1.user_id = p0.user_id;"
    ), "{sql}");
    assert!(sql.contains("ALTER VIEW users ALTER COLUMN created_at SET DEFAULT now();"));
    assert!(sql.contains("nextval('users_user_id_seq')"));
    assert!(sql.contains("INSTEAD OF INSERT OR UPDATE OR DELETE ON users"));
    let remake = view.statements(true);
    assert!(remake[0].starts_with("DROP VIEW IF EXISTS users CASCADE;"));
    assert!(
        !remake.iter().any(|s| s.contains("DROP SEQUENCE")),
        "keys are never reused"
    );
}

#[test]
fn a_part_kept_on_the_coordinator_is_a_local_table_attached_and_only_ever_detached() {
    let kept = fragments(vec![
        part(
            "shard-eu",
            Bound::List {
                values: vec!["EU".into()],
            },
        ),
        part(
            "primary",
            Bound::List {
                values: vec!["US".into()],
            },
        ),
    ]);
    let placement = place(&manifest(), &kept);
    assert!(!placement.fragment_nodes.contains_key("primary"));
    assert_eq!(placement.servers, BTreeSet::from(["shard-eu".to_owned()]));
    let local = &placement.local_partitions[0];
    assert_eq!(local.name, "orders_primary");

    let fragmented = BTreeSet::from(["orders".to_owned()]);
    let coordinator =
        placement::coordinator_schema(&manifest(), &fragmented, &[], &placement.local_partitions);
    let table = &coordinator.tables["orders_primary"];
    let checks: Vec<&str> = table.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        checks,
        ["orders_region_check", "orders_primary_fragment_check"],
        "the parent's checks keep their names for ATTACH PARTITION"
    );
    assert_eq!(
        table.primary_key.as_ref().unwrap().name,
        "orders_primary_pkey"
    );
    assert_eq!(
        coordinator.indexes["orders_primary_user_id_idx"].table,
        "orders_primary"
    );

    let objects = coordinator::objects("shop", "shop", &placement);
    let table = objects
        .iter()
        .find(|o| o.kind == ObjectKind::PartitionedTable)
        .unwrap();
    assert!(table.create.contains(
        &"ALTER TABLE orders ATTACH PARTITION orders_primary FOR VALUES IN ('US');".to_owned()
    ));
    let remake = table.statements(true);
    assert!(
        remake[0].contains("DETACH PARTITION orders_primary"),
        "{remake:?}"
    );
    assert!(
        !remake
            .iter()
            .any(|s| s.contains("DROP TABLE IF EXISTS orders_primary"))
    );
}
