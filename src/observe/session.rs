//! One connection per server for a whole plan, opened at once on the port the topology gives,
//! while Docker is still being asked what exists. A connection (a new backend and a SCRAM
//! exchange) costs more than all the queries a plan sends, so every read of the plan goes over
//! it: the server report, the schema comparison, the coordinator's fragment objects, the
//! subscription and the prepared transactions, sent together.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::catalog::{self, SchemaObserveError};
use super::postgres::{self, ServerReport};
use crate::fragments::coordinator::Found;
use crate::schema::ObservedSchema;
use crate::txn::recovery::{self, Prepared};

/// How long to wait for a server to answer before calling it unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What to open for one server, and what to read over its connection.
pub struct Target {
    pub node: String,
    pub host_port: u16,
    /// For a node that receives tables: its database and the SQL its tables are described by.
    pub schema: Option<SchemaTarget>,
    /// For the coordinator of fragments: the tables its fragment objects are made of.
    pub coordinator_tables: Option<Vec<String>>,
    /// For a node that copies reference tables: its subscription's name.
    pub subscription: Option<String>,
    /// For a node that takes part in dbtopo's transactions: list its prepared ones.
    pub prepared: bool,
}

pub struct SchemaTarget {
    pub database: String,
    pub sql: String,
}

/// One server's connection and what it answered.
pub struct Session {
    /// The port the connection went to: its answers describe a container only when that
    /// container runs and is published there.
    pub host_port: u16,
    /// Whether the node receives tables (its schema was to be compared).
    pub receives_tables: bool,
    pub outcome: Outcome,
}

type Read<T> = Option<Result<T, tokio_postgres::Error>>;

pub enum Outcome {
    Connected(Box<Answers>),
    Refused(tokio_postgres::Error),
}

/// What a connected server answered. The reads in the schema's database are made only when
/// that database exists.
pub struct Answers {
    pub client: Client,
    /// `None` when a query failed: the server is treated as not answering.
    pub report: Option<ServerReport>,
    pub schema: Option<Result<ObservedSchema, SchemaObserveError>>,
    pub coordinator: Read<Found>,
    /// The subscription: `None` when it does not exist.
    pub subscription: Read<Option<crate::observed::FoundSubscription>>,
    /// Reference-copy subscriptions other than its own (a promoted replica's old primary's).
    pub leftover_subscriptions: Read<Vec<crate::observed::LeftoverSubscription>>,
    pub prepared: Read<Vec<Prepared>>,
}

/// Open every target's connection in parallel, then send each server all its reads at once.
pub async fn open(targets: Vec<Target>, password: &str) -> BTreeMap<String, Session> {
    join_all(targets.into_iter().map(|target| async move {
        let session = open_one(&target, password).await;
        (target.node, session)
    }))
    .await
    .into_iter()
    .collect()
}

async fn open_one(target: &Target, password: &str) -> Session {
    let database = target
        .schema
        .as_ref()
        .map_or("postgres", |s| s.database.as_str());
    let connected =
        match postgres::connect_to(target.host_port, password, database, CONNECT_TIMEOUT).await {
            Ok(client) => Ok((client, true)),
            // The schema's database does not exist yet: the maintenance one answers the rest.
            Err(e)
                if database != "postgres" && e.code() == Some(&SqlState::INVALID_CATALOG_NAME) =>
            {
                postgres::connect(target.host_port, password, CONNECT_TIMEOUT)
                    .await
                    .map(|client| (client, false))
            }
            Err(e) => Err(e),
        };
    let outcome = match connected {
        Err(error) => Outcome::Refused(error),
        Ok((client, database_exists)) => {
            Outcome::Connected(Box::new(ask(target, client, database_exists).await))
        }
    };
    Session {
        host_port: target.host_port,
        receives_tables: target.schema.is_some(),
        outcome,
    }
}

/// Every read goes out together; only the manifest's normalization, which may need a
/// transaction of its own, follows.
async fn ask(target: &Target, mut client: Client, database_exists: bool) -> Answers {
    let in_database = target.schema.is_some() && database_exists;
    let (report, schema_reads, coordinator, subscription, leftover_subscriptions, prepared) = tokio::join!(
        postgres::report(&client),
        async {
            match &target.schema {
                Some(_) => Some(catalog::schema_reads(&client, database_exists).await),
                None => None,
            }
        },
        async {
            match &target.coordinator_tables {
                Some(tables) if in_database => {
                    Some(catalog::coordinator_objects(&client, tables).await)
                }
                _ => None,
            }
        },
        async {
            match &target.subscription {
                Some(name) if in_database => Some(catalog::subscription(&client, name).await),
                _ => None,
            }
        },
        async {
            match in_database {
                true => Some(
                    catalog::leftover_subscriptions(&client, target.subscription.as_deref()).await,
                ),
                false => None,
            }
        },
        async {
            match target.prepared {
                true => Some(recovery::prepared(&client, &target.node).await),
                false => None,
            }
        },
    );
    let schema = match (&target.schema, schema_reads) {
        (Some(schema), Some(reads)) => {
            Some(catalog::observe_schema(&mut client, database_exists, reads, &schema.sql).await)
        }
        _ => None,
    };
    Answers {
        client,
        report: report.ok(),
        schema,
        coordinator,
        subscription,
        leftover_subscriptions,
        prepared,
    }
}
