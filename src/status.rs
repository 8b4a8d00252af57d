//! What runs, as `dbtopo status` shows it: one line per PostgreSQL server and MongoDB member,
//! made from the desired state and one observation. Pure: the caller observes.
//!
//! A line never holds a password: the URL names the user and the port only; `dbtopo psql`
//! and `dbtopo env` hand the password over in a passfile.

use serde::Serialize;

use crate::desired::Desired;
use crate::model::{Role, SUPERUSER};
use crate::mongo::diff::SetState;
use crate::observed::{Observed, SetObservation, SubscriptionState};

/// One server or member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// `postgres` or `mongo`.
    pub engine: &'static str,
    /// The node, or `set/member`.
    pub name: String,
    /// `primary`, `replica of X`, or `member`.
    pub role: String,
    /// `running`, `stopped` or `missing`.
    pub container: &'static str,
    /// `answers`, `not answering: why`, `streaming`, `not streaming`; for a MongoDB member
    /// `in the set`, `not in the set`, `set not initiated`; `-` when not running.
    pub health: String,
    /// How to connect from the host, without the password.
    pub url: String,
    /// For a replica: the WAL its upstream wrote that it has not replayed, in bytes.
    pub lag_bytes: Option<u64>,
    /// Tables the node holds for the fragments: parts, column groups, reference copies.
    pub holds: Vec<String>,
    /// For a node with reference copies: its subscription's state.
    pub subscription: Option<String>,
}

/// The status of every server and member the topology declares.
pub fn lines(desired: &Desired, observed: &Observed) -> Vec<Line> {
    let database = desired
        .schema
        .as_ref()
        .map_or("postgres", |s| s.target.database.as_str());
    let mut lines = Vec::new();
    for (name, wanted) in &desired.state.servers {
        let found = observed.state.servers.get(name);
        let container = match found.and_then(|s| s.container.as_ref()) {
            Some(c) if c.running => "running",
            Some(_) => "stopped",
            None => "missing",
        };
        let role = match &wanted.role {
            Role::Primary => "primary".to_owned(),
            Role::Replica { upstream } => format!("replica of {upstream}"),
        };
        let live = found.and_then(|s| s.live.as_ref());
        let health = match (container, found.and_then(|s| s.silent.as_deref()), live) {
            ("running", Some(why), _) => format!("not answering: {why}"),
            ("running", None, Some(live)) if matches!(wanted.role, Role::Replica { .. }) => {
                if live.streaming {
                    "streaming".to_owned()
                } else {
                    "not streaming".to_owned()
                }
            }
            ("running", None, Some(_)) => "answers".to_owned(),
            _ => "-".to_owned(),
        };
        let lag_bytes = match &wanted.role {
            Role::Replica { upstream } => {
                let replayed = live.and_then(|l| l.lsn.as_deref()).and_then(parse_lsn);
                let written = observed
                    .state
                    .servers
                    .get(upstream)
                    .and_then(|s| s.live.as_ref())
                    .and_then(|l| l.lsn.as_deref())
                    .and_then(parse_lsn);
                replayed
                    .zip(written)
                    .map(|(replayed, written)| written.saturating_sub(replayed))
            }
            Role::Primary => None,
        };
        let port = wanted.container.as_ref().map_or(0, |c| c.host_port);
        lines.push(Line {
            engine: "postgres",
            name: name.clone(),
            role,
            container,
            health,
            url: format!("postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"),
            lag_bytes,
            holds: holds(desired, name),
            subscription: subscription(desired, observed, name),
        });
    }
    for set in &desired.mongo {
        let found = observed.mongo.members.get(&set.set.name);
        for member in &set.set.members {
            let container = match found.and_then(|m| m.get(&member.name)) {
                Some(m) if m.running => "running",
                Some(_) => "stopped",
                None => "missing",
            };
            let health = if container == "running" {
                member_health(observed.mongo.sets.get(&set.set.name), member.id)
            } else {
                "-".to_owned()
            };
            lines.push(Line {
                engine: "mongo",
                name: format!("{}/{}", set.set.name, member.name),
                role: member_role(observed.mongo.sets.get(&set.set.name), member.id),
                container,
                health,
                url: format!(
                    "mongodb://127.0.0.1:{}/{}?directConnection=true",
                    member.port, set.set.database
                ),
                lag_bytes: None,
                holds: Vec::new(),
                subscription: None,
            });
        }
    }
    lines
}

/// What the set's first member says of a running member: in the set's configuration or not,
/// or why the set could not be asked.
fn member_health(set: Option<&SetObservation>, id: u32) -> String {
    match set {
        None | Some(SetObservation::Fresh) => "-".to_owned(),
        Some(SetObservation::Unknown(why)) => format!("not answering: {why}"),
        Some(SetObservation::Found { state, .. }) => match state {
            SetState::NoAdminUser => "set not bootstrapped".to_owned(),
            SetState::NotInitiated => "set not initiated".to_owned(),
            SetState::Initiated { members, .. } if members.iter().any(|m| m.id == id) => {
                "in the set".to_owned()
            }
            SetState::Initiated { .. } => "not in the set".to_owned(),
        },
    }
}

/// A member's replication state as the set reports it (`primary`, `secondary`, …), or
/// `member` while the set says nothing of it.
fn member_role(set: Option<&SetObservation>, id: u32) -> String {
    match set {
        Some(SetObservation::Found { member_states, .. }) => member_states
            .get(&id)
            .map_or("member".to_owned(), |state| state.to_lowercase()),
        _ => "member".to_owned(),
    }
}

/// The tables a node holds for the fragments (not the manifest's whole tables).
fn holds(desired: &Desired, node: &str) -> Vec<String> {
    desired
        .schema
        .as_ref()
        .and_then(|s| s.fragments.as_ref())
        .and_then(|f| f.placement.fragment_nodes.get(node))
        .map(|schema| schema.tables.keys().cloned().collect())
        .unwrap_or_default()
}

/// The state of the node's subscription to the reference tables, for a node that has one.
fn subscription(desired: &Desired, observed: &Observed, node: &str) -> Option<String> {
    if !desired.subscriptions().iter().any(|(n, _)| n == node) {
        return None;
    }
    Some(match observed.subscriptions.get(node)? {
        SubscriptionState::Fresh => "to be made".to_owned(),
        SubscriptionState::Unknown => "unknown (node not answering)".to_owned(),
        SubscriptionState::Observed(None) => "missing".to_owned(),
        SubscriptionState::Observed(Some(found)) => match (found.enabled, found.worker) {
            (true, true) => "streaming".to_owned(),
            (true, false) => "enabled, no worker".to_owned(),
            (false, _) => "disabled".to_owned(),
        },
    })
}

/// A WAL position (`16/B374D848`) as a number of bytes.
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (high, low) = lsn.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    Some((high << 32) | low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::desired::Manifests;
    use crate::plan::fixtures::{converged, nothing};

    fn shop() -> Desired {
        let topology = crate::topology::load(std::path::Path::new("topology.yaml"))
            .expect("the default topology loads")
            .with_profiles(&[]);
        Desired::build(&topology, &Manifests::default()).expect("the desired state")
    }

    fn line<'a>(lines: &'a [Line], name: &str) -> &'a Line {
        lines.iter().find(|l| l.name == name).expect(name)
    }

    #[test]
    fn a_converged_shop_shows_every_server_running_with_its_url_parts_and_lag() {
        let desired = shop();
        let mut observed = converged(&desired);
        let primary = observed.state.servers.get_mut("primary").unwrap();
        primary.live.as_mut().unwrap().lsn = Some("0/3000100".into());
        let replica = observed.state.servers.get_mut("primary-replica").unwrap();
        replica.live.as_mut().unwrap().lsn = Some("0/3000000".into());
        let lines = lines(&desired, &observed);
        assert_eq!(lines.len(), desired.state.servers.len());
        let primary = line(&lines, "primary");
        assert_eq!(
            (
                primary.role.as_str(),
                primary.container,
                primary.health.as_str()
            ),
            ("primary", "running", "answers")
        );
        assert_eq!(
            primary.url,
            "postgresql://postgres@127.0.0.1:5433/ecommerce"
        );
        let replica = line(&lines, "primary-replica");
        assert_eq!(
            (
                replica.role.as_str(),
                replica.health.as_str(),
                replica.lag_bytes
            ),
            ("replica of primary", "streaming", Some(0x100))
        );
        // The shards hold parts of the fragmented tables, and subscribe to the copies.
        let holding: Vec<&Line> = lines.iter().filter(|l| !l.holds.is_empty()).collect();
        assert!(!holding.is_empty(), "{lines:#?}");
        assert!(
            holding
                .iter()
                .all(|l| l.subscription.as_deref() == Some("streaming")),
            "{lines:#?}"
        );
        // The coordinator publishes the copies: it has no subscription of its own.
        assert_eq!(line(&lines, "primary").subscription, None);
    }

    #[test]
    fn mongo_members_say_whether_the_set_holds_them() {
        let topology = crate::topology::load(std::path::Path::new("topology.yaml"))
            .unwrap()
            .with_profiles(&["mongo".to_owned()]);
        let desired = Desired::build(&topology, &Manifests::default()).unwrap();
        let set = &desired.mongo[0].set;
        let mut observed = converged(&desired);
        let running = set
            .members
            .iter()
            .map(|m| {
                let found = crate::observed::FoundMember {
                    running: true,
                    spec_hash: String::new(),
                };
                (m.name.clone(), found)
            })
            .collect();
        observed.mongo.members.insert(set.name.clone(), running);
        let first = crate::mongo::diff::MemberConfig {
            id: set.members[0].id,
            host: String::new(),
            priority_tenths: 10,
            votes: 1,
            hidden: false,
            arbiter: false,
        };
        observed.mongo.sets.insert(
            set.name.clone(),
            SetObservation::Found {
                state: SetState::Initiated {
                    version: 1,
                    members: vec![first],
                },
                collections: Default::default(),
                member_states: BTreeMap::from([(set.members[0].id, "PRIMARY".to_owned())]),
            },
        );
        let lines = lines(&desired, &observed);
        let mongo: Vec<&Line> = lines.iter().filter(|l| l.engine == "mongo").collect();
        assert_eq!(mongo.len(), set.members.len());
        assert_eq!(mongo[0].health, "in the set");
        assert_eq!(mongo[0].role, "primary");
        assert_eq!(mongo[1].role, "member");
        assert_eq!(mongo[1].health, "not in the set");
        assert!(
            mongo[0].url.starts_with("mongodb://127.0.0.1:"),
            "{}",
            mongo[0].url
        );
    }

    #[test]
    fn stopped_silent_and_missing_servers_say_so() {
        let desired = shop();
        let mut observed = converged(&desired);
        let replica = observed.state.servers.get_mut("primary-replica").unwrap();
        replica.container.as_mut().unwrap().running = false;
        let primary = observed.state.servers.get_mut("primary").unwrap();
        primary.silent = Some("no answer within 5s".into());
        let lines = lines(&desired, &observed);
        assert_eq!(line(&lines, "primary-replica").container, "stopped");
        assert_eq!(line(&lines, "primary-replica").health, "-");
        assert_eq!(
            line(&lines, "primary").health,
            "not answering: no answer within 5s"
        );
        let nothing = super::lines(&desired, &nothing(&desired));
        assert!(
            nothing.iter().all(|l| l.container == "missing"),
            "{nothing:#?}"
        );
    }

    #[test]
    fn a_wal_position_is_its_byte_offset() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("1/xyz"), None);
    }
}
