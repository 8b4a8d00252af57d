//! Prepared transactions left on the nodes (a coordinator that stopped between PREPARE and
//! COMMIT PREPARED), and what the decision record says to do with each.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use super::{GID_PREFIX, parse_gid};

/// A prepared transaction without a decision is rolled back once it is this old: the
/// coordinator records its decision right after preparing, so by then it has stopped.
pub const UNDECIDED_TIMEOUT: Duration = Duration::from_secs(60);

/// One of dbtopo's prepared transactions on a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    pub node: String,
    pub gid: String,
    /// The database it must be finished in.
    pub database: String,
    pub age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Resolution {
    Commit,
    Rollback,
    /// Too young to judge: its coordinator may be recording the decision right now.
    Wait,
}

/// What to do with a prepared transaction, given the decision recorded for its global id.
pub fn resolve(decision: Option<&str>, age: Duration) -> Resolution {
    match decision {
        Some("commit") => Resolution::Commit,
        Some(_) => Resolution::Rollback,
        None if age >= UNDECIDED_TIMEOUT => Resolution::Rollback,
        None => Resolution::Wait,
    }
}

/// dbtopo's prepared transactions on the server behind `client` (all its databases).
pub async fn prepared(client: &Client, node: &str) -> Result<Vec<Prepared>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT gid, database::text, extract(epoch FROM now() - prepared)::float8
             FROM pg_prepared_xacts WHERE starts_with(gid, $1) ORDER BY prepared",
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

/// The statement that finishes `prepared` as resolved.
pub fn finish_sql(prepared: &Prepared, resolution: Resolution) -> Option<String> {
    let gid = format!("'{}'", prepared.gid.replace('\'', "''"));
    match resolution {
        Resolution::Commit => Some(format!("COMMIT PREPARED {gid};")),
        Resolution::Rollback => Some(format!("ROLLBACK PREPARED {gid};")),
        Resolution::Wait => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_commit_commits_and_an_old_undecided_one_rolls_back() {
        let young = Duration::from_secs(2);
        let old = UNDECIDED_TIMEOUT + Duration::from_secs(1);
        assert_eq!(resolve(Some("commit"), young), Resolution::Commit);
        assert_eq!(resolve(Some("rollback"), young), Resolution::Rollback);
        assert_eq!(resolve(None, old), Resolution::Rollback);
        assert_eq!(resolve(None, young), Resolution::Wait);
        assert_eq!(
            super::super::parse_gid("dbtopo:18f2-0a:shard-eu"),
            Some(("18f2-0a", "shard-eu"))
        );
        let prepared = Prepared {
            node: "shard-eu".into(),
            gid: "dbtopo:x:shard-eu".into(),
            database: "shop".into(),
            age: young,
        };
        assert_eq!(
            finish_sql(&prepared, Resolution::Commit).as_deref(),
            Some("COMMIT PREPARED 'dbtopo:x:shard-eu';")
        );
        assert_eq!(finish_sql(&prepared, Resolution::Wait), None);
    }
}
