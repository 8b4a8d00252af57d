use std::collections::{BTreeMap, BTreeSet};

use super::coordinator::{self, Found, ObjectKind};
use super::placement::{self, place};
use crate::plan::fragments::CoordinatorState;
use crate::plan::movement;
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
    let orders = &eu.tables["orders_eu"];
    assert!(orders.foreign_keys.is_empty());
    assert_eq!(
        orders.primary_key.as_ref().unwrap().columns,
        ["order_id", "region"]
    );
    assert!(orders.columns.iter().all(|c| c.identity.is_none()));
    let predicate = orders
        .checks
        .iter()
        .find(|c| c.name == "orders_eu_fragment_check")
        .unwrap();
    assert_eq!(predicate.expression, "region IN ('EU')");
    assert_eq!(eu.indexes["orders_eu_user_id_idx"].table, "orders_eu");
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
            ("orders_eu", "FOR VALUES IN ('EU')"),
            ("orders_us", "FOR VALUES IN ('US')")
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
    assert_eq!(
        indexes,
        [
            "orders_hash_0_of_3_user_id_idx",
            "orders_hash_2_of_3_user_id_idx"
        ]
    );
    let eu: Vec<&str> = placement.fragment_nodes["shard-eu"]
        .tables
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(eu, ["orders_hash_0_of_3", "orders_hash_2_of_3"]);
    assert_eq!(
        placement.fragment_nodes["shard-eu"].tables["orders_hash_0_of_3"]
            .primary_key
            .as_ref()
            .unwrap()
            .name,
        "orders_hash_0_of_3_pkey"
    );
    let table = &placement.partitioned[0];
    assert_eq!(table.partition_by, "HASH (region)");
    assert_eq!(
        table.partitions[2].bound,
        "FOR VALUES WITH (MODULUS 3, REMAINDER 2)"
    );
    assert_eq!(table.partitions[2].remote_table, "orders_hash_2_of_3");

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
    let us = &placement.fragment_nodes["shard-us"].tables["orders_m_to_max"];
    assert!(us.checks.iter().any(|c| c.expression == "region >= 'M'"));
}

fn plan_changes(state: &CoordinatorState) -> Result<Vec<(String, Action)>, String> {
    plan_with(state, &by_region()).map(|changes| {
        changes
            .into_iter()
            .map(|c| (c.address.to_string(), c.action))
            .collect()
    })
}

/// The topology of these tests: `primary` coordinating `shard-eu` and `shard-us`, with the
/// manifest above and `fragments`.
fn topology(fragments: &Fragments) -> crate::topology::Topology {
    use crate::topology::{Images, Node, Postgres, SchemaTarget, Topology};
    let node = |name: &str, port: u16| {
        let node = Node {
            name: name.into(),
            port,
            settings: BTreeMap::new(),
        };
        (name.to_owned(), node)
    };
    Topology {
        name: "shop".into(),
        images: Images {
            postgres: "postgres:17".into(),
            mongo: "mongo:7".into(),
        },
        postgres: Postgres {
            settings: BTreeMap::from([("wal_level".to_owned(), "logical".to_owned())]),
            access: Vec::new(),
            replication_user: "repuser".into(),
            nodes: BTreeMap::from([
                node("primary", 5433),
                node("shard-eu", 5435),
                node("shard-us", 5436),
            ]),
            replicas: BTreeMap::new(),
            schema: Some(SchemaTarget {
                file: "test.sql".into(),
                path: "test.sql".into(),
                database: "shop".into(),
                nodes: vec!["primary".into()],
                manifest: Some(crate::schema::SqlManifest::parse(
                    "test.sql",
                    SQL.to_owned(),
                )),
            }),
            fragments: Some(fragments.clone()),
        },
        mongo: Default::default(),
        warnings: Vec::new(),
        setting_places: Default::default(),
    }
}

/// The coordinator's changes for `fragments` (movements and cleanup included) when the
/// coordinator holds `state` and everything else is in place: the real planner's, with the
/// servers' and tables' changes left out.
fn plan_with(
    state: &CoordinatorState,
    fragments: &Fragments,
) -> Result<Vec<crate::plan::Change>, String> {
    let desired = crate::desired::Desired::build(&topology(fragments), &Default::default())
        .map_err(|e| e.to_string())?;
    let mut observed = crate::plan::fixtures::converged(&desired);
    observed.coordinator = state.clone();
    let plan = crate::plan::plan(&desired, &observed).map_err(|e| e.to_string())?;
    Ok(plan
        .changes
        .into_iter()
        .filter(|c| !matches!(c.address.kind(), "node" | "schema" | "subscription"))
        .collect())
}

/// What a converged coordinator holds for `by_region()`.
fn converged() -> Found {
    converged_with(&by_region())
}

fn converged_with(fragments: &Fragments) -> Found {
    let placement = place(&manifest(), fragments);
    crate::plan::fixtures::found(&coordinator::objects("shop", "shop", &placement))
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
        .remove("orders_us");
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
        "shop-primary",
        5435,
        "shop",
    )
    .unwrap();
    assert_eq!(fresh.action, Action::Create);
    let current = SubscriptionState::Observed(Some(crate::observed::FoundSubscription {
        comment: Some(subscription.comment()),
        enabled: true,
        worker: true,
        publisher_host: None,
    }));
    let change = |state: &SubscriptionState| {
        subscription_change(
            &subscription,
            state,
            "shard-eu",
            "primary",
            "shop-primary",
            5435,
            "shop",
        )
    };
    assert!(change(&current).is_none());
    // The coordinator moved (a promotion): the subscription is detached from its slot on the
    // old one, which is stopped or a replica, before it is dropped and made again.
    let moved = SubscriptionState::Observed(Some(crate::observed::FoundSubscription {
        comment: Some(subscription.comment()),
        enabled: true,
        worker: true,
        publisher_host: Some("shop-old".into()),
    }));
    let replaced = change(&moved).expect("a change");
    assert_eq!(replaced.action, Action::Replace);
    assert!(replaced.reason.contains("shop-old"), "{}", replaced.reason);
    let crate::plan::Operation::RunSql { statements, .. } = &replaced.operation else {
        panic!();
    };
    assert!(
        statements[0].contains("SET (slot_name = NONE); DROP SUBSCRIPTION dbtopo_ref_shard_eu;"),
        "{statements:?}"
    );
    assert!(
        statements
            .iter()
            .all(|s| !s.starts_with("DROP SUBSCRIPTION IF EXISTS"))
    );
}

#[test]
fn a_vertical_table_is_a_view_over_its_column_groups_written_by_a_trigger() {
    let sql = "CREATE TABLE users (
        user_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        email text NOT NULL CHECK (email LIKE '%@%'),
        secret text NOT NULL CHECK (length(secret) > 3),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX users_email_idx ON users (lower(email));
    CREATE INDEX users_email_secret_idx ON users (email, secret);";
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
        indexes: vec![crate::topology::DistributedIndex {
            table: "users".into(),
            columns: vec!["secret".into()],
            unique: false,
        }],
    };
    let placement = place(&manifest, &fragments);
    // Each index on the group holding all its columns; one spanning groups on none.
    let remote_indexes: Vec<&str> = placement.fragment_nodes["shard-eu"]
        .indexes
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(remote_indexes, ["users_secret_idx"]);
    let remote = &placement.fragment_nodes["shard-eu"].tables["users"];
    let names: Vec<&str> = remote.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["user_id", "secret"]);
    assert_eq!(remote.checks.len(), 1, "only the check on its own columns");
    assert!(remote.columns[0].identity.is_none());

    let fragmented = BTreeSet::from(["users".to_owned()]);
    let coordinator =
        placement::coordinator_schema(&manifest, &fragmented, &placement.vertical, &[]);
    let local = &coordinator.tables["users_primary"];
    let local_indexes: Vec<&str> = coordinator.indexes.keys().map(String::as_str).collect();
    assert_eq!(local_indexes, ["users_primary_email_idx"]);
    assert_eq!(
        coordinator.indexes["users_primary_email_idx"].table,
        "users_primary"
    );
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
    assert_eq!(local.name, "orders_us_local");

    let fragmented = BTreeSet::from(["orders".to_owned()]);
    let coordinator =
        placement::coordinator_schema(&manifest(), &fragmented, &[], &placement.local_partitions);
    let table = &coordinator.tables["orders_us_local"];
    let checks: Vec<&str> = table.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        checks,
        ["orders_region_check", "orders_us_local_fragment_check"],
        "the parent's checks keep their names for ATTACH PARTITION"
    );
    assert_eq!(
        table.primary_key.as_ref().unwrap().name,
        "orders_us_local_pkey"
    );
    assert_eq!(
        coordinator.indexes["orders_us_local_user_id_idx"].table,
        "orders_us_local"
    );

    let objects = coordinator::objects("shop", "shop", &placement);
    let table = objects
        .iter()
        .find(|o| o.kind == ObjectKind::PartitionedTable)
        .unwrap();
    assert!(table.create.contains(
        &"ALTER TABLE orders ATTACH PARTITION orders_us_local FOR VALUES IN ('US');".to_owned()
    ));
    let remake = table.statements(true);
    assert!(
        remake[0].contains("DETACH PARTITION orders_us_local"),
        "{remake:?}"
    );
    assert!(
        !remake
            .iter()
            .any(|s| s.contains("DROP TABLE IF EXISTS orders_us_local"))
    );
}

fn eu_on_shard_us() -> Fragments {
    let mut moved = by_region();
    let Fragmentation::Horizontal { parts, .. } = moved.tables.get_mut("orders").unwrap() else {
        unreachable!()
    };
    parts[0].node = "shard-us".into();
    moved
}

#[test]
fn a_part_that_moves_is_copied_counted_and_switched_then_its_old_copy_dropped() {
    let changes = plan_with(&CoordinatorState::Observed(converged()), &eu_on_shard_us()).unwrap();
    let texts: Vec<(String, Action, Vec<String>)> = changes
        .iter()
        .map(|c| {
            (
                c.address.to_string(),
                c.action,
                c.after.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let order: Vec<(&str, Action, Vec<&str>)> = texts
        .iter()
        .map(|(a, action, after)| {
            (
                a.as_str(),
                *action,
                after.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let marker = movement::marker_name(
        "orders",
        "orders_eu",
        &coordinator::PartLocation::Remote {
            server: "dbtopo_shard_eu".into(),
            table: "orders_eu".into(),
        },
    );
    let moved = format!("moved_part.{marker}");
    assert_eq!(order[0].0, "fragmented_table.orders");
    assert_eq!(order[0].1, Action::Replace);
    assert_eq!(
        order[1],
        (
            "fdw_server.dbtopo_shard_eu",
            Action::Delete,
            vec![
                "schema.primary",
                "old_fragment.shard-eu.orders_eu",
                &moved,
                "fragmented_table.orders"
            ]
        ),
        "the server goes only after the old copy, and after its table no longer uses it"
    );
    assert_eq!(
        order[2],
        (
            "old_fragment.shard-eu.orders_eu",
            Action::Delete,
            vec!["fragmented_table.orders"]
        )
    );
    assert_eq!(
        order[3],
        (
            moved.as_str(),
            Action::Delete,
            vec!["fragmented_table.orders", "old_fragment.shard-eu.orders_eu"]
        )
    );
    let Operation::RunSql { statements, .. } = &changes[0].operation else {
        panic!("the movement runs SQL on the coordinator");
    };
    let position = |needle: &str| {
        statements
            .iter()
            .position(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {statements:#?}"))
    };
    let detach = position("DETACH PARTITION orders_eu;");
    let rename = position(&format!(
        "ALTER FOREIGN TABLE orders_eu RENAME TO {marker};"
    ));
    let drop = position("DROP TABLE IF EXISTS orders CASCADE;");
    let create = position(
        "CREATE FOREIGN TABLE orders_eu PARTITION OF orders FOR VALUES IN ('EU') SERVER dbtopo_shard_us",
    );
    let empty = position("TRUNCATE orders_eu;");
    let copy = position(&format!(
        "INSERT INTO orders OVERRIDING SYSTEM VALUE SELECT * FROM {marker};"
    ));
    let count = position("rows before, % after");
    let identity = position("setval(pg_get_serial_sequence('orders', 'order_id')");
    assert!(detach < rename && rename < drop && drop < create && create < empty);
    assert!(empty < copy && copy < count && count < identity);
    assert!(
        !statements.iter().any(|s| s.contains("orders_us;")),
        "the part that stays is not copied: {statements:#?}"
    );
    assert!(statements[0].starts_with("LOCK TABLE ONLY orders"));
}

#[test]
fn old_copies_left_by_an_interrupted_movement_are_dropped_by_the_next_plan() {
    let mut found = converged();
    let location = coordinator::PartLocation::Remote {
        server: "dbtopo_shard_eu".into(),
        table: "orders_old".into(),
    };
    found
        .moved
        .insert("dbtopo_moved_0123456789ab".into(), location);
    found.moved.insert(
        "dbtopo_moved_local".into(),
        coordinator::PartLocation::Local,
    );
    let changes = plan_changes(&CoordinatorState::Observed(found)).unwrap();
    assert_eq!(
        changes,
        [
            (
                "old_fragment.shard-eu.orders_old".to_owned(),
                Action::Delete
            ),
            (
                "moved_part.dbtopo_moved_0123456789ab".to_owned(),
                Action::Delete
            ),
            ("moved_part.dbtopo_moved_local".to_owned(), Action::Delete),
        ]
    );
}

#[test]
fn a_movement_that_could_lose_rows_is_refused_with_the_reason() {
    // The partition key changes but a part keeps its name and node: its table would be
    // emptied to receive rows it holds now.
    let mut found = converged();
    found
        .partition_keys
        .insert("orders".into(), "LIST (status)".into());
    let refused = plan_changes(&CoordinatorState::Observed(found)).unwrap_err();
    assert!(refused.contains("two applies"), "{refused}");

    // A part on a node the topology no longer has.
    let mut found = converged();
    found.partitions.get_mut("orders").unwrap().insert(
        "orders_ap".into(),
        coordinator::PartLocation::Remote {
            server: "dbtopo_shard_ap".into(),
            table: "orders_ap".into(),
        },
    );
    let refused = plan_changes(&CoordinatorState::Observed(found)).unwrap_err();
    assert!(refused.contains("no longer has"), "{refused}");
}

#[test]
fn routing_states_each_part_by_its_bound_and_sends_the_rest_to_the_default_part() {
    let list = fragments(vec![
        part(
            "shard-eu",
            Bound::List {
                values: vec!["EU".into()],
            },
        ),
        part("primary", Bound::Default),
        part(
            "shard-us",
            Bound::List {
                values: vec!["US".into(), "CA".into()],
            },
        ),
    ]);
    let table = &place(&manifest(), &list).partitioned[0];
    assert_eq!(table.key, "region");
    let value = super::routing::key_value(table, "it's");
    assert_eq!(value, "CAST('it''s' AS text)");
    assert_eq!(
        super::routing::part_of(table, &value),
        "(CASE WHEN CAST('it''s' AS text) IN ('EU') THEN 0 \
         WHEN CAST('it''s' AS text) IN ('US', 'CA') THEN 2 ELSE 1 END)"
    );

    let hashed = fragments(vec![
        part(
            "shard-eu",
            Bound::Hash {
                modulus: 2,
                remainder: 0,
            },
        ),
        part(
            "shard-us",
            Bound::Hash {
                modulus: 2,
                remainder: 1,
            },
        ),
    ]);
    let table = &place(&manifest(), &hashed).partitioned[0];
    assert_eq!(
        super::routing::part_of(table, "k"),
        "(CASE WHEN satisfies_hash_partition('orders'::regclass, 2, 0, k) THEN 0 \
         WHEN satisfies_hash_partition('orders'::regclass, 2, 1, k) THEN 1 ELSE NULL END)"
    );

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
    let table = &place(&manifest(), &ranges).partitioned[0];
    assert_eq!(
        super::routing::part_of(table, "k"),
        "(CASE WHEN k < 'M' THEN 0 WHEN k >= 'M' THEN 1 ELSE NULL END)"
    );
}
