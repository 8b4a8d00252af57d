//! What a running server says about itself: settings, ALTER SYSTEM overrides, roles, slots,
//! recovery and streaming state. Read-only.

use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Client;

use crate::model::{self, ConfigFiles, Live, LiveSetting};
pub use crate::pg::{connect, connect_to};

/// What the server reports, plus which of `roles` exist with LOGIN REPLICATION and which
/// dbtopo-managed slots it has.
pub struct ServerReport {
    pub live: Live,
    /// The configuration files as the server can read them (cheaper than Docker's archive API).
    pub config: Option<ConfigFiles>,
    pub replication_roles: BTreeSet<String>,
    pub slots: BTreeSet<String>,
}

pub async fn report(client: &Client) -> Result<ServerReport, tokio_postgres::Error> {
    let postgresql_conf = format!("{}/postgresql.conf", model::CONFIG_DIR);
    let pg_hba_conf = format!("{}/pg_hba.conf", model::CONFIG_DIR);
    let slot_prefix: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&model::SLOT_PREFIX];
    let config_paths: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&postgresql_conf, &pg_hba_conf];
    // Sent together: one round trip instead of seven.
    let (settings, altered, recovery, replication_roles, slots, config) = futures_util::join!(
        client.query(
            "SELECT name, setting, unit, context, pending_restart, vartype, min_val, max_val, \
             enumvals FROM pg_settings",
            &[],
        ),
        client.query(
            "SELECT DISTINCT name FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'",
            &[],
        ),
        client.query_one(
            "SELECT pg_is_in_recovery(), \
             EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'), \
             (SELECT system_identifier::text FROM pg_control_system()), \
             (SELECT timeline_id FROM pg_control_checkpoint()), \
             (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                   ELSE pg_current_wal_lsn() END)::text",
            &[],
        ),
        client.query(
            "SELECT rolname::text FROM pg_roles WHERE rolreplication AND rolcanlogin \
             AND has_function_privilege(oid, 'pg_catalog.pg_ls_dir(text,boolean,boolean)', 'EXECUTE') \
             AND has_function_privilege(oid, 'pg_catalog.pg_stat_file(text,boolean)', 'EXECUTE') \
             AND has_function_privilege(oid, 'pg_catalog.pg_read_binary_file(text)', 'EXECUTE') \
             AND has_function_privilege(oid, \
                 'pg_catalog.pg_read_binary_file(text,bigint,bigint,boolean)', 'EXECUTE')",
            &[],
        ),
        client.query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_type = 'physical' AND starts_with(slot_name, $1)",
            &slot_prefix,
        ),
        client.query_opt(
            "SELECT pg_read_file($1), pg_read_file($2)",
            &config_paths,
        ),
    );
    let settings: BTreeMap<String, LiveSetting> = settings?
        .iter()
        .map(|r| {
            (
                // Setting names are case-insensitive; the topology's are lower case.
                r.get::<_, String>(0).to_ascii_lowercase(),
                LiveSetting {
                    value: r.get::<_, Option<String>>(1).unwrap_or_default(),
                    unit: r.get(2),
                    context: r.get(3),
                    pending_restart: r.get(4),
                    accepts: Some(crate::model::Accepts {
                        vartype: r.get(5),
                        min: r.get(6),
                        max: r.get(7),
                        enumvals: r.get::<_, Option<Vec<String>>>(8).unwrap_or_default(),
                    }),
                },
            )
        })
        .collect();
    let altered: BTreeSet<String> = altered?.iter().map(|r| r.get(0)).collect();
    let recovery = recovery?;
    let in_recovery: bool = recovery.get(0);
    let streaming = in_recovery && recovery.get::<_, bool>(1);
    let replication_roles = replication_roles?.iter().map(|r| r.get(0)).collect();
    let slots = slots?.iter().map(|r| r.get(0)).collect();
    // A server whose files dbtopo cannot read is still observed (the files come from Docker).
    let config = config.ok().flatten().map(|row| ConfigFiles {
        postgresql_conf: row.get(0),
        pg_hba_conf: row.get(1),
    });
    Ok(ServerReport {
        config,
        live: Live {
            settings,
            altered,
            in_recovery,
            streaming,
            system_identifier: recovery.get(2),
            timeline: recovery.get(3),
            lsn: recovery.get(4),
        },
        replication_roles,
        slots,
    })
}
