//! Observed states written as data, for planning tests without Docker: what a converged
//! environment looks like to the observer, from which each test takes away or changes facts.

use std::collections::BTreeMap;

use crate::desired::Desired;
use crate::fragments::coordinator::{CoordinatorObject, Found, ObjectKind};
use crate::model::{Live, LiveSetting, State};
use crate::observed::{CoordinatorState, FoundSubscription, Observed, SubscriptionState};
use crate::schema::{NodeSchema, ObservedSchema};

/// The servers of a converged environment: every container running its desired spec, every
/// server answering with its file's settings (`max_prepared_transactions` as the one needing a
/// restart), replicas streaming.
pub fn converged_state(desired: &State) -> State {
    let mut observed = desired.clone();
    observed.network_subnets = vec![NETWORK_SUBNET.to_owned()];
    for server in observed.servers.values_mut() {
        server.config = server
            .config
            .as_ref()
            .map(|c| c.on_network(&observed.network_subnets));
        let conf =
            crate::templates::parse_conf_settings(&server.config.as_ref().unwrap().postgresql_conf);
        let settings = conf
            .into_iter()
            .map(|(name, value)| {
                let context = if RESTART_SETTINGS.contains(&name.as_str()) {
                    "postmaster"
                } else {
                    "user"
                };
                (
                    name,
                    LiveSetting {
                        value,
                        unit: None,
                        context: context.into(),
                        pending_restart: false,
                        accepts: None,
                    },
                )
            })
            .collect();
        let replica = server.role.upstream().is_some();
        server.live = Some(Live {
            settings,
            in_recovery: replica,
            streaming: replica,
            ..Live::default()
        });
        server.settings.clear();
        server.bootstrap = None;
    }
    observed
}

/// The subnet Docker gave the environment's network in the fixtures.
pub const NETWORK_SUBNET: &str = "172.31.0.0/16";

/// Settings PostgreSQL reads only at start, among those the fixtures use.
const RESTART_SETTINGS: [&str; 3] = [
    "max_prepared_transactions",
    "max_connections",
    "shared_buffers",
];

/// Everything in place: servers, each node's tables, the coordinator's objects, the
/// subscriptions; no prepared transaction.
pub fn converged(desired: &Desired) -> Observed {
    let mut observed = Observed {
        state: converged_state(&desired.state),
        decisions: Some(BTreeMap::new()),
        coordinator: CoordinatorState::Fresh,
        ..Observed::default()
    };
    let Some(schema) = &desired.schema else {
        return observed;
    };
    for target in schema.node_targets() {
        let tables = NodeSchema::Observed(ObservedSchema {
            database_exists: true,
            current: target.fresh.clone(),
            invalid_indexes: Default::default(),
            desired: target.fresh.clone(),
            row_counts: BTreeMap::new(),
        });
        observed.schemas.insert(target.node, tables);
    }
    if let Some(fragments) = &schema.fragments {
        let mut found = found(&fragments.objects);
        found.logical_slots = desired
            .subscriptions()
            .into_iter()
            .map(|(_, s)| s.name)
            .collect();
        observed.coordinator = CoordinatorState::Observed(found);
        for (node, subscription) in desired.subscriptions() {
            observed.subscriptions.insert(
                node,
                SubscriptionState::Observed(Some(FoundSubscription {
                    comment: Some(subscription.comment()),
                    enabled: true,
                    worker: true,
                    publisher_host: Some(crate::model::container_name(
                        desired.env(),
                        &fragments.coordinator,
                    )),
                })),
            );
        }
    }
    observed
}

/// Nothing exists: no Docker object, every database to be made.
pub fn nothing(desired: &Desired) -> Observed {
    let mut observed = Observed {
        state: State {
            env: desired.env().to_owned(),
            ..State::default()
        },
        decisions: Some(BTreeMap::new()),
        coordinator: CoordinatorState::Fresh,
        ..Observed::default()
    };
    if let Some(schema) = &desired.schema {
        for target in schema.node_targets() {
            observed.schemas.insert(target.node, NodeSchema::Fresh);
        }
        for node in schema
            .fragments
            .iter()
            .flat_map(|f| f.placement.references.keys())
        {
            observed
                .subscriptions
                .insert(node.clone(), SubscriptionState::Fresh);
        }
    }
    observed
}

/// What a converged coordinator holds of `objects`.
pub fn found(objects: &[CoordinatorObject]) -> Found {
    let mut found = Found::default();
    for object in objects {
        let comment = Some(object.comment());
        let name = object.name.clone();
        match object.kind {
            ObjectKind::Server => {
                found.user_mappings.insert(name.clone());
                found.servers.insert(name, comment);
            }
            ObjectKind::PartitionedTable => {
                found.tables.insert(name.clone(), ('p', comment));
                found
                    .partitions
                    .insert(name.clone(), object.partitions.clone());
                found
                    .partition_keys
                    .insert(name, object.partition_by.clone().unwrap_or_default());
            }
            ObjectKind::Publication => {
                found.publications.insert(name, comment);
            }
            ObjectKind::VerticalTable => {
                found.tables.insert(name, ('v', comment));
            }
            ObjectKind::ReferenceCopy => {
                found.tables.insert(name, ('f', comment));
            }
            ObjectKind::Subscription => {}
        }
    }
    found
}
