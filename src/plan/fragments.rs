//! The coordinator's fragment objects in the plan: made when missing, made again when their
//! hash differs (a server made again takes its partitions along, so their tables follow),
//! servers no fragment uses any more dropped.

use std::collections::{BTreeMap, BTreeSet};

use crate::fragments::coordinator::{CoordinatorObject, ObjectKind, PartLocation};
use crate::schema::ddl::quote;

pub use crate::observed::{CoordinatorState, SubscriptionState};

use super::Address;
use super::movement::{self, Movement, Nodes};
use super::schema::schema_address;
use super::{Action, Change, Detail, Operation};

pub struct Input<'a> {
    pub objects: &'a [CoordinatorObject],
    pub state: &'a CoordinatorState,
    pub coordinator: &'a str,
    pub host_port: u16,
    pub database: &'a str,
    pub fragment_nodes: &'a [String],
    /// The movements of tables whose parts move, by table.
    pub movements: &'a BTreeMap<String, Movement>,
    pub nodes: &'a Nodes<'a>,
    /// Changes that drop old copies: a server is dropped only after them.
    pub cleanup: &'a [Address],
}

pub fn address(object: &CoordinatorObject) -> Address {
    let name = object.name.clone();
    match object.kind {
        ObjectKind::Server => Address::FdwServer(name),
        ObjectKind::PartitionedTable => Address::FragmentedTable(name),
        ObjectKind::Publication => Address::Publication(name),
        ObjectKind::Subscription => Address::Subscription(name),
        ObjectKind::VerticalTable => Address::VerticalTable(name),
        ObjectKind::ReferenceCopy => Address::ReferenceCopy(name),
    }
}

/// The changes, or why the coordinator cannot be brought there.
pub fn changes(input: &Input<'_>) -> Result<Vec<Change>, String> {
    let found = match input.state {
        CoordinatorState::Unknown => return Ok(Vec::new()),
        CoordinatorState::Fresh => None,
        CoordinatorState::Observed(found) => Some(found),
    };
    let mut changes: Vec<Change> = Vec::new();
    let mut remade_servers = BTreeSet::new();
    for object in input.objects {
        let (exists, current) = match (object.kind, found) {
            (_, None) => (false, None),
            (ObjectKind::Server, Some(f)) => match f.servers.get(&object.name) {
                Some(comment) => (true, comment.clone()),
                None => (false, None),
            },
            (ObjectKind::PartitionedTable, Some(f)) => match f.tables.get(&object.name) {
                Some(('p', comment)) => (true, comment.clone()),
                Some((_, _)) => {
                    return Err(format!(
                        "table {} exists on the coordinator {} as an ordinary table: moving its \
                         rows into fragments is not supported yet; drop or rename it first",
                        object.name, input.coordinator
                    ));
                }
                None => (false, None),
            },
            (ObjectKind::Publication, Some(f)) => match f.publications.get(&object.name) {
                Some(comment) => (true, comment.clone()),
                None => (false, None),
            },
            (ObjectKind::Subscription, Some(_)) => (false, None),
            (ObjectKind::ReferenceCopy, Some(f)) => match f.tables.get(&object.name) {
                Some(('f', comment)) => (true, comment.clone()),
                Some((_, _)) => {
                    return Err(format!(
                        "{} exists on the coordinator {} and is not the foreign table dbtopo \
                         makes for a node's reference copy: drop or rename it first",
                        object.name, input.coordinator
                    ));
                }
                None => (false, None),
            },
            (ObjectKind::VerticalTable, Some(f)) => match f.tables.get(&object.name) {
                Some(('v', comment)) => (true, comment.clone()),
                Some((_, _)) => {
                    return Err(format!(
                        "table {} exists on the coordinator {} as an ordinary table: moving its \
                         columns into fragments is not supported yet; drop or rename it first",
                        object.name, input.coordinator
                    ));
                }
                None => (false, None),
            },
        };
        let server_remade = object.servers.iter().any(|s| remade_servers.contains(s));
        if let Some(movement) = input.movements.get(&object.name) {
            if let Some(part) = movement.leaving.iter().find(|p| {
                matches!(&p.location, PartLocation::Remote { server, .. } if remade_servers.contains(server))
            }) {
                return Err(format!(
                    "part {} of table {} moves while its foreign server is made again: apply \
                     the server change with the parts where they are, then move them",
                    part.name, object.name
                ));
            }
            let (reason, details) = movement::describe(object, movement, input.nodes);
            let mut change = change(input, object, Action::Replace, reason, true);
            change.details = details;
            change.operation = run_sql(input, movement::statements(object, movement));
            changes.push(change);
            continue;
        }
        let found_partitions = found.and_then(|f| f.partitions.get(&object.name));
        let partitions_intact = object.kind != ObjectKind::PartitionedTable
            || found_partitions == Some(&object.partitions);
        // Partitions on a server that streams from the one promoted in its place: the same
        // rows, reached through the promoted server's foreign server.
        let re_pointed = !partitions_intact
            && found_partitions.is_some_and(|found| {
                found.len() == object.partitions.len()
                    && found.iter().all(|(name, location)| {
                        object
                            .partitions
                            .get(name)
                            .is_some_and(|wanted| input.nodes.same_rows(location, wanted))
                    })
            });
        let up_to_date =
            exists && partitions_intact && current.as_deref() == Some(object.comment().as_str());
        if up_to_date && !server_remade {
            if object.kind == ObjectKind::Server
                && let Some(found) = found
                && !found.user_mappings.contains(&object.name)
            {
                changes.push(user_mapping_change(input, object));
            }
            continue;
        }
        if exists && object.kind == ObjectKind::Server {
            remade_servers.insert(object.name.clone());
        }
        let (action, reason) = match (exists, server_remade) {
            (false, _) => (Action::Create, "does not exist".to_owned()),
            (true, true) => (
                Action::Replace,
                "its foreign server is made again, which drops its partitions; the rows stay \
                 in the fragments"
                    .to_owned(),
            ),
            (true, false) if re_pointed => (
                Action::Replace,
                "a node holding its parts was promoted: its partitions are re-pointed to the \
                 promoted server, which holds the same rows"
                    .to_owned(),
            ),
            (true, false) if !partitions_intact => (
                Action::Replace,
                "its partitions differ from the fragments (one was dropped or added by hand); \
                 the rows stay in the fragments"
                    .to_owned(),
            ),
            (true, false) => (
                Action::Replace,
                "its definition changed (the hash in its comment differs); the rows stay in \
                 the fragments"
                    .to_owned(),
            ),
        };
        let mut change = change(input, object, action, reason, exists);
        // One at a time: each makes sure the postgres_fdw extension exists, which two
        // transactions cannot do at once.
        if object.kind == ObjectKind::Server
            && let Some(previous) = changes
                .iter()
                .rev()
                .find(|c| matches!(c.address, Address::FdwServer(_)))
        {
            change.after.push(previous.address.clone());
        }
        changes.push(change);
    }
    if let Some(found) = found {
        let wanted: BTreeSet<&str> = input
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Server)
            .map(|o| o.name.as_str())
            .collect();
        // A server goes once nothing planned still reads through it: its drop cascades to
        // whatever foreign tables are left on it.
        let users_of_servers: Vec<Address> = changes
            .iter()
            .filter(|c| {
                matches!(
                    c.address,
                    Address::FragmentedTable(_)
                        | Address::VerticalTable(_)
                        | Address::ReferenceCopy(_)
                )
            })
            .map(|c| c.address.clone())
            .collect();
        let publications: BTreeSet<&str> = input
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Publication)
            .map(|o| o.name.as_str())
            .collect();
        for name in found
            .publications
            .keys()
            .filter(|p| !publications.contains(p.as_str()))
        {
            changes.push(Change {
                address: Address::Publication(name.clone()),
                action: Action::Delete,
                reason: "no node copies its reference tables any more (a promoted server copies \
                         them under its own name)"
                    .to_owned(),
                details: Vec::new(),
                after: vec![schema_address(input.coordinator)],
                operation: run_sql(
                    input,
                    vec![format!("DROP PUBLICATION IF EXISTS {};", quote(name))],
                ),
            });
        }
        for name in found
            .servers
            .keys()
            .filter(|s| !wanted.contains(s.as_str()))
        {
            changes.push(Change {
                address: Address::FdwServer(name.clone()),
                action: Action::Delete,
                reason: "no fragment lives on its node any more".to_owned(),
                details: Vec::new(),
                after: std::iter::once(schema_address(input.coordinator))
                    .chain(input.cleanup.iter().cloned())
                    .chain(users_of_servers.iter().cloned())
                    .collect(),
                operation: run_sql(
                    input,
                    vec![format!("DROP SERVER IF EXISTS {} CASCADE;", quote(name))],
                ),
            });
        }
    }
    Ok(changes)
}

fn change(
    input: &Input<'_>,
    object: &CoordinatorObject,
    action: Action,
    reason: String,
    replace: bool,
) -> Change {
    let mut after = vec![schema_address(input.coordinator)];
    if matches!(
        object.kind,
        ObjectKind::PartitionedTable | ObjectKind::VerticalTable | ObjectKind::ReferenceCopy
    ) {
        after.extend(object.servers.iter().map(|s| Address::FdwServer(s.clone())));
        after.extend(input.fragment_nodes.iter().map(|n| schema_address(n)));
        // Made again, it reads through its servers (a table's identity is set past the rows
        // its parts hold): their nodes run first, a promoted one included.
        for node in object
            .servers
            .iter()
            .filter_map(|s| input.nodes.by_server.get(s))
        {
            let address = super::diff::node_address(node);
            if !after.contains(&address) {
                after.push(address);
            }
        }
    }
    Change {
        address: address(object),
        action,
        reason,
        details: Vec::new(),
        after,
        operation: run_sql(input, object.statements(replace)),
    }
}

/// The subscription of `node`: made when missing, made again (its copies refilled) when its
/// hash differs. It runs on the node, outside a transaction (it creates a replication slot on
/// the coordinator), after the coordinator runs with its publication.
pub fn subscription_change(
    object: &CoordinatorObject,
    state: &SubscriptionState,
    node: &str,
    coordinator: &str,
    publisher_host: &str,
    host_port: u16,
    database: &str,
) -> Option<Change> {
    let moved_from = match state {
        SubscriptionState::Observed(Some(found)) => found
            .publisher_host
            .as_deref()
            .filter(|host| *host != publisher_host),
        _ => None,
    };
    let (exists, up_to_date) = match state {
        SubscriptionState::Unknown => return None,
        SubscriptionState::Fresh | SubscriptionState::Observed(None) => (false, false),
        SubscriptionState::Observed(Some(found)) => (
            true,
            found.comment.as_deref() == Some(object.comment().as_str()),
        ),
    };
    if up_to_date && moved_from.is_none() {
        let SubscriptionState::Observed(Some(found)) = state else {
            return None;
        };
        if found.enabled {
            return None;
        }
        return Some(Change {
            address: address(object),
            action: Action::Update,
            reason: "it is disabled: the reference copies no longer follow the coordinator"
                .to_owned(),
            details: vec![Detail::new(
                "enabled",
                Some("false".into()),
                Some("true".into()),
            )],
            after: vec![super::diff::node_address(node)],
            operation: Operation::RunSql {
                node: node.to_owned(),
                host_port,
                database: database.to_owned(),
                statements: vec![format!(
                    "ALTER SUBSCRIPTION {} ENABLE;",
                    quote(&object.name)
                )],
                transactional: false,
            },
        });
    }
    let mut statements = object.statements(true);
    let (action, reason) = if let Some(old) = moved_from {
        // The old coordinator is stopped or a replica now: its slot is left to it.
        let plain_drop = format!("DROP SUBSCRIPTION IF EXISTS {};", quote(&object.name));
        for statement in &mut statements {
            *statement = statement.replace(&plain_drop, &detach_and_drop(&object.name));
        }
        (
            Action::Replace,
            format!(
                "the coordinator moved: it subscribes to {old}, not {publisher_host}; detached \
                 from its slot there, then the copies are emptied and copied again"
            ),
        )
    } else if exists {
        (
            Action::Replace,
            "its definition changed; the copies are emptied and copied again".to_owned(),
        )
    } else {
        (
            Action::Create,
            "does not exist: the reference copies would not follow the coordinator".to_owned(),
        )
    };
    Some(Change {
        address: address(object),
        action,
        reason,
        details: Vec::new(),
        after: vec![
            super::diff::node_address(coordinator),
            schema_address(node),
            Address::Publication(object.name.clone()),
        ],
        operation: Operation::RunSql {
            node: node.to_owned(),
            host_port,
            database: database.to_owned(),
            // Dropped first even when it was not seen: an apply killed while its CREATE
            // SUBSCRIPTION ran leaves one the server finishes after the observation.
            statements,
            transactional: false,
        },
    })
}

/// Drops a subscription without reaching its publisher: disabled and detached from its slot
/// first, which lets DROP SUBSCRIPTION run without a connection.
pub(super) fn detach_and_drop(name: &str) -> String {
    let quoted = quote(name);
    format!(
        "DO $dbtopo$ BEGIN IF EXISTS (SELECT 1 FROM pg_subscription WHERE subname = {literal}) \
         THEN ALTER SUBSCRIPTION {quoted} DISABLE; ALTER SUBSCRIPTION {quoted} SET (slot_name = \
         NONE); DROP SUBSCRIPTION {quoted}; END IF; END $dbtopo$;",
        literal = crate::schema::ddl::literal(name),
    )
}

/// A foreign server in place whose user mapping was dropped: the coordinator cannot read the
/// parts on that node until it is made again.
fn user_mapping_change(input: &Input<'_>, object: &CoordinatorObject) -> Change {
    let statements = object
        .create
        .iter()
        .filter(|s| s.starts_with("CREATE USER MAPPING"))
        .cloned()
        .collect();
    Change {
        address: address(object),
        action: Action::Update,
        reason: "its user mapping is missing: the coordinator cannot read the parts on that node"
            .to_owned(),
        details: vec![Detail::new(
            "user mapping",
            None,
            Some(crate::model::SUPERUSER.to_owned()),
        )],
        after: vec![schema_address(input.coordinator)],
        operation: run_sql(input, statements),
    }
}

fn run_sql(input: &Input<'_>, statements: Vec<String>) -> Operation {
    Operation::RunSql {
        node: input.coordinator.to_owned(),
        host_port: input.host_port,
        database: input.database.to_owned(),
        statements,
        transactional: true,
    }
}
