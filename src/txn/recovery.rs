//! Prepared transactions left on the nodes (a coordinator that stopped between PREPARE and
//! COMMIT PREPARED), and what the decision record says to do with each.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::Client;

use super::{GID_PREFIX, parse_gid};
pub use crate::observed::Prepared;
pub use crate::plan::prepared::{Resolution, UNDECIDED_TIMEOUT, finish_sql, resolve};

/// dbtopo's prepared transactions on the server behind `client` (all its databases).
pub async fn prepared(client: &Client, node: &str) -> Result<Vec<Prepared>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT gid, database::text, extract(epoch FROM now() - prepared)::float8
             FROM pg_prepared_xacts WHERE starts_with(gid, $1) AND NOT pg_is_in_recovery()
             ORDER BY prepared",
            &[&GID_PREFIX],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Prepared {
            node: node.to_owned(),
            gid: row.get(0),
            database: row.get(1),
            age: Duration::from_secs_f64(row.get::<_, f64>(2).max(0.0)),
        })
        .collect())
}

/// The decisions recorded for these transactions' global ids (none when the coordinator has
/// no decision table yet).
pub async fn decisions(
    coordinator: &Client,
    prepared: &[Prepared],
) -> Result<BTreeMap<String, String>, tokio_postgres::Error> {
    let ids: Vec<String> = prepared
        .iter()
        .filter_map(|p| parse_gid(&p.gid).map(|(id, _)| id.to_owned()))
        .collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let exists: bool = coordinator
        .query_one(
            "SELECT to_regclass('dbtopo.txn_decisions') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(BTreeMap::new());
    }
    Ok(coordinator
        .query(
            "SELECT gid, outcome FROM dbtopo.txn_decisions WHERE gid = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}
