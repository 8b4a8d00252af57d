//! The `mongo:` section: replica sets, their members (a count or a list), elections
//! (priority, votes, hidden members, arbiters), host ports and the collections folder.
//!
//! A set's members are containers named `<set>-<id>`, in the same namespace as the PostgreSQL
//! nodes and replicas, and publish host ports checked with theirs (see `check_ports`).

use std::collections::BTreeMap;

use serde_saphyr::{Location, Spanned};

use super::raw::{RawMember, RawMembers, RawMongo, RawReplicaSet, Scalar};
use super::rules;
use super::servers::Seen;
use super::validate::Validator;
use super::{CollectionsDir, Mongo, MongoMember, ReplicaSet};

const DEFAULT_DATABASE: &str = "app";
/// MongoDB's limits: members of a set, and voting members among them.
pub(super) const MAX_MEMBERS: usize = 50;
const MAX_VOTING: usize = 7;
/// MongoDB's highest priority, in tenths.
pub(super) const MAX_PRIORITY_TENTHS: u32 = 10_000;
const DEFAULT_PRIORITY_TENTHS: u32 = 10;
const MEMBER_KIND: &str = "Mongo member";

const SET_NAME_HELP: &str = "use lowercase letters, digits, `-` and `_`, starting with a letter, \
    at most 40 characters: the set's name prefixes its members' containers (`<set>-0`)";
const MEMBERS_HELP: &str = "write a count with the first host port, e.g. `members: 3` and \
    `port: 27017` (ports 27017, 27018, 27019), or a list with a port each, e.g. \
    `members: [ { port: 27017 }, { port: 27018 }, { port: 27019, arbiter: true } ]`";

impl Validator<'_> {
    pub(super) fn mongo(&mut self, raw: Option<Spanned<RawMongo>>) -> Mongo {
        let Some(Spanned {
            value: raw,
            referenced: section,
            ..
        }) = raw
        else {
            return Mongo::default();
        };
        let Some(sets) = raw.replica_sets else {
            self.push(
                self.problem("`mongo` has no `replica_sets`")
                    .at(&section, "add `replica_sets:` to this mapping")
                    .help(
                        "e.g.\nmongo:\n  replica_sets:\n    rs0: { members: 3, port: 27017 }\n\
                         or remove the `mongo` section",
                    ),
            );
            return Mongo::default();
        };
        if sets.value.0.is_empty() {
            self.push(
                self.problem("no Mongo replica sets are defined")
                    .at(&sets.referenced, "`replica_sets` needs at least one entry")
                    .help("e.g. `rs0: { members: 3, port: 27017 }`, or remove the `mongo` section"),
            );
        }
        let mut replica_sets = BTreeMap::new();
        for (name, raw) in sets.value.0 {
            let set = self.replica_set(&name, raw.unwrap_or_default());
            replica_sets.insert(name.value, set);
        }
        Mongo { replica_sets }
    }

    fn replica_set(&mut self, name: &Spanned<String>, raw: RawReplicaSet) -> ReplicaSet {
        if let Err(reason) = rules::server_name(&name.value) {
            self.push(
                self.problem(format!("invalid replica set name `{}`", name.value))
                    .at(&name.referenced, reason)
                    .help(SET_NAME_HELP),
            );
        }
        let database = self.mongo_database(raw.database);
        let collections = raw.collections.and_then(|c| self.collections_dir(c));
        let members = self.members(name, raw.members, raw.port);
        let mut profiles = Vec::new();
        for profile in raw.profiles.unwrap_or_default() {
            if let Err(reason) = rules::server_name(&profile.value) {
                self.push(
                    self.problem(format!("invalid profile name `{}`", profile.value))
                        .at(&profile.referenced, reason),
                );
            } else {
                profiles.push(profile.value);
            }
        }
        ReplicaSet {
            name: name.value.clone(),
            members: members.unwrap_or_default(),
            database,
            collections,
            profiles,
        }
    }

    fn mongo_database(&mut self, raw: Option<Spanned<String>>) -> String {
        let Some(database) = raw else {
            return DEFAULT_DATABASE.to_owned();
        };
        if let Err(reason) = mongo_database_name(&database.value) {
            self.push(
                self.problem(format!("invalid Mongo database name `{}`", database.value))
                    .at(&database.referenced, reason)
                    .help(
                        "use letters, digits, `_` and `-`, e.g. `ecommerce`; `admin`, `local` \
                         and `config` belong to MongoDB",
                    ),
            );
        }
        database.value
    }

    /// The manifests folder, resolved against the topology's folder; it must exist.
    fn collections_dir(&mut self, raw: Spanned<String>) -> Option<CollectionsDir> {
        const HELP: &str = "the path is relative to the topology file's folder; the folder \
            holds one `<collection>.yaml` per collection";
        if raw.value.trim().is_empty() {
            self.push(
                self.problem("`collections` is empty")
                    .at(&raw.referenced, "no folder named")
                    .help(HELP),
            );
            return None;
        }
        let path = self.base_dir().join(&raw.value);
        if path.is_dir() {
            return Some(CollectionsDir {
                dir: raw.value,
                path,
            });
        }
        let label = if path.exists() {
            format!("{} is not a folder", path.display())
        } else {
            format!("no folder at {}", path.display())
        };
        self.push(
            self.problem(format!("collections folder `{}` not found", raw.value))
                .at(&raw.referenced, label)
                .help(HELP),
        );
        None
    }

    /// The members in `_id` order; `None` when one of them is invalid (already reported), so
    /// the checks over the whole set do not pile up on it.
    fn members(
        &mut self,
        set: &Spanned<String>,
        raw: Option<Spanned<RawMembers>>,
        port: Option<Spanned<Scalar>>,
    ) -> Option<Vec<MongoMember>> {
        let Some(Spanned {
            value: members,
            referenced: at,
            ..
        }) = raw
        else {
            self.push(
                self.problem(format!("replica set `{}` has no `members`", set.value))
                    .at(&set.referenced, "add `members:` to this replica set")
                    .help(MEMBERS_HELP),
            );
            return None;
        };
        let members = match members {
            RawMembers::Count(count) => self.counted_members(set, count, &at, port),
            RawMembers::List(list) => {
                if let Some(port) = port {
                    self.push(
                        self.problem(format!(
                            "`port` of replica set `{}` is not allowed with a list of members",
                            set.value
                        ))
                        .at(&port.referenced, "not allowed with a list")
                        .help(
                            "each listed member has its own `port`; remove this one (the set's \
                             `port` goes with a count, e.g. `members: 3`)",
                        ),
                    );
                }
                self.listed_members(set, list, &at)
            }
        }?;
        self.elections(set, &members, &at);
        Some(members)
    }

    /// `members: 3` with `port: 27017`: default members on 27017, 27018, 27019.
    fn counted_members(
        &mut self,
        set: &Spanned<String>,
        count: Scalar,
        at: &Location,
        port: Option<Spanned<Scalar>>,
    ) -> Option<Vec<MongoMember>> {
        let count = match count {
            Scalar::Int(n) if (1..=MAX_MEMBERS as i128).contains(&n) => u16::try_from(n).ok(),
            Scalar::Int(n) => {
                self.push(
                    self.problem(format!(
                        "replica set `{}` cannot have {n} members",
                        set.value
                    ))
                    .at(at, format!("not in 1..={MAX_MEMBERS}"))
                    .help(format!(
                        "MongoDB allows 1 to {MAX_MEMBERS} members in a replica set (3 is the \
                         usual choice)"
                    )),
                );
                None
            }
            other => {
                self.push(
                    self.problem(format!(
                        "`members` of replica set `{}` must be a count or a list, found {}",
                        set.value,
                        other.describe()
                    ))
                    .at(at, "not a count or a list")
                    .help(MEMBERS_HELP),
                );
                None
            }
        };
        let port = port.filter(|p| p.value != Scalar::Null);
        if port.is_none() {
            self.push(
                self.problem(format!("replica set `{}` has no `port`", set.value))
                    .at(at, "a count of members needs the set's `port`")
                    .help(
                        "add `port: <first host port>` to the set: with `port: 27017` its \
                         members get 27017, 27018, ...; or list the members with a port each",
                    ),
            );
        }
        let mut first = port
            .as_ref()
            .and_then(|p| self.port("replica set", set, Some(p)))
            .map(|p| p.0);
        let count = count?;
        if let (Some(start), Some(port)) = (first, &port) {
            let last = u32::from(start) + u32::from(count) - 1;
            if last > u32::from(u16::MAX) {
                self.push(
                    self.problem(format!(
                        "host ports {start}..={last} of replica set `{}` run past 65535",
                        set.value
                    ))
                    .at(
                        &port.referenced,
                        format!("member {} would get port {last}", count - 1),
                    )
                    .help(format!(
                        "choose a first port of at most {} for {count} members",
                        u32::from(u16::MAX) + 1 - u32::from(count)
                    )),
                );
                first = None;
            }
        }
        // The members exist (for the name checks) even when their ports are refused.
        let mut members = Vec::new();
        for id in 0..count {
            let member = MongoMember {
                id: u32::from(id),
                name: format!("{}-{id}", set.value),
                port: first.map_or(0, |p| p + id),
                priority_tenths: DEFAULT_PRIORITY_TENTHS,
                votes: 1,
                hidden: false,
                arbiter: false,
            };
            self.add_member(Seen {
                kind: MEMBER_KIND,
                name: Spanned::new(member.name.clone(), set.referenced, set.referenced),
                port: first
                    .zip(port.as_ref())
                    .map(|(_, p)| (member.port, p.referenced)),
                port_note: (id > 0).then(|| format!("{} + {id}", first.unwrap_or_default())),
            });
            members.push(member);
        }
        first.map(|_| members)
    }

    fn listed_members(
        &mut self,
        set: &Spanned<String>,
        list: Vec<Spanned<RawMember>>,
        at: &Location,
    ) -> Option<Vec<MongoMember>> {
        if list.is_empty() {
            self.push(
                self.problem(format!("replica set `{}` has no members", set.value))
                    .at(at, "the list is empty")
                    .help(MEMBERS_HELP),
            );
            return None;
        }
        let mut ok = true;
        if list.len() > MAX_MEMBERS {
            self.push(
                self.problem(format!(
                    "replica set `{}` has {} members, MongoDB allows at most {MAX_MEMBERS}",
                    set.value,
                    list.len()
                ))
                .at(at, format!("{} members", list.len()))
                .help("split the members over several replica sets"),
            );
            ok = false;
        }
        let mut members = Vec::new();
        for (id, entry) in (0u32..).zip(list) {
            let name = Spanned::new(
                format!("{}-{id}", set.value),
                entry.referenced,
                entry.referenced,
            );
            let port = self.port(MEMBER_KIND, &name, entry.value.port.as_ref());
            let member = self.member(id, &name, entry.value);
            self.add_member(Seen {
                kind: MEMBER_KIND,
                name,
                port,
                port_note: None,
            });
            match (member, port) {
                (Some(member), Some((port, _))) => members.push(MongoMember { port, ..member }),
                _ => ok = false,
            }
        }
        ok.then_some(members)
    }

    /// One listed member's election settings (its port is checked by the caller).
    fn member(&mut self, id: u32, name: &Spanned<String>, raw: RawMember) -> Option<MongoMember> {
        let priority = raw
            .priority
            .as_ref()
            .map(|p| (self.priority(name, p), p.referenced));
        let votes = raw
            .votes
            .as_ref()
            .map(|v| (self.votes(name, v), v.referenced));
        let hidden = raw.hidden.filter(|h| h.value).map(|h| h.referenced);
        let arbiter = raw.arbiter.is_some_and(|a| a.value);
        if priority.is_some_and(|(p, _)| p.is_none()) || votes.is_some_and(|(v, _)| v.is_none()) {
            return None;
        }
        let priority = priority.map(|(p, at)| (p.unwrap_or_default(), at));
        let votes = votes.map(|(v, at)| (v.unwrap_or_default(), at));
        let mut ok = true;
        let member = if arbiter {
            if let Some((p, at)) = priority.filter(|(p, _)| *p > 0) {
                ok = false;
                self.push(
                    self.problem(format!("arbiter `{}` cannot have a priority", name.value))
                        .at(&at, format!("priority {}", show_priority(p)))
                        .help("an arbiter holds no data and is never elected; remove `priority`"),
                );
            }
            if let Some(at) = hidden {
                ok = false;
                self.push(
                    self.problem(format!("arbiter `{}` cannot be hidden", name.value))
                        .at(&at, "hidden")
                        .help("an arbiter holds no data for clients to read; remove `hidden`"),
                );
            }
            if let Some((_, at)) = votes.filter(|(v, _)| *v == 0) {
                ok = false;
                self.push(
                    self.problem(format!("arbiter `{}` must vote", name.value))
                        .at(&at, "an arbiter only votes")
                        .help(
                            "remove `votes: 0`; for a member that neither votes nor can be \
                             elected, drop `arbiter` and write `votes: 0, priority: 0`",
                        ),
                );
            }
            MongoMember {
                id,
                name: name.value.clone(),
                port: 0,
                priority_tenths: 0,
                votes: 1,
                hidden: false,
                arbiter: true,
            }
        } else {
            let priority_tenths = priority.map_or(DEFAULT_PRIORITY_TENTHS, |(p, _)| p);
            let shown = show_priority(priority_tenths);
            let priority_label = |p: &Option<(u32, Location)>| match p {
                Some(_) => format!("priority {shown}"),
                None => format!("priority {shown} by default"),
            };
            if let Some((_, at)) = votes.filter(|(v, _)| *v == 0)
                && priority_tenths > 0
            {
                ok = false;
                let mut problem = self
                    .problem(format!(
                        "non-voting member `{}` must have priority 0",
                        name.value
                    ))
                    .at(&at, "votes: 0");
                problem = match priority {
                    Some((_, p_at)) => problem.also(&p_at, priority_label(&priority)),
                    None => problem.also(&name.referenced, priority_label(&priority)),
                };
                self.push(problem.help(
                    "add `priority: 0`: MongoDB refuses a member that could be elected \
                     primary without a vote",
                ));
            }
            if let Some(at) = hidden
                && priority_tenths > 0
            {
                ok = false;
                let mut problem = self
                    .problem(format!(
                        "hidden member `{}` must have priority 0",
                        name.value
                    ))
                    .at(&at, "hidden");
                if let Some((_, p_at)) = priority {
                    problem = problem.also(&p_at, priority_label(&priority));
                }
                self.push(problem.help(
                    "add `priority: 0`: a hidden member is invisible to clients, so it can \
                     never become primary",
                ));
            }
            MongoMember {
                id,
                name: name.value.clone(),
                port: 0,
                priority_tenths,
                votes: votes.map_or(1, |(v, _)| v),
                hidden: hidden.is_some(),
                arbiter: false,
            }
        };
        ok.then_some(member)
    }

    /// `priority:` in tenths: a number in 0..=1000 with at most one decimal.
    fn priority(&mut self, name: &Spanned<String>, raw: &Spanned<Scalar>) -> Option<u32> {
        const HELP: &str = "a member's election priority is a number from 0 (never primary) \
            to 1000, with at most one decimal, e.g. `priority: 2` or `priority: 0.5`; the \
            default is 1";
        let tenths = match raw.value {
            Scalar::Int(n) => n.checked_mul(10).and_then(|t| u32::try_from(t).ok()),
            Scalar::Float(x) if x.is_finite() && x >= 0.0 => {
                let tenths = x * 10.0;
                if (tenths - tenths.round()).abs() > 1e-6 {
                    self.push(
                        self.problem(format!(
                            "priority {x} of {MEMBER_KIND} `{}` is finer than tenths",
                            name.value
                        ))
                        .at(&raw.referenced, "at most one decimal")
                        .help(HELP),
                    );
                    return None;
                }
                // In range for u32: larger values are refused just below.
                Some(tenths.round().min(f64::from(u32::MAX)) as u32)
            }
            _ => None,
        };
        match tenths {
            Some(t) if t <= MAX_PRIORITY_TENTHS => Some(t),
            Some(_) => {
                self.push(
                    self.problem(format!(
                        "priority {} of {MEMBER_KIND} `{}` is out of range",
                        scalar_text(&raw.value),
                        name.value
                    ))
                    .at(&raw.referenced, "not in 0..=1000")
                    .help(HELP),
                );
                None
            }
            None if matches!(raw.value, Scalar::Int(_) | Scalar::Float(_)) => {
                self.push(
                    self.problem(format!(
                        "priority {} of {MEMBER_KIND} `{}` is out of range",
                        scalar_text(&raw.value),
                        name.value
                    ))
                    .at(&raw.referenced, "not in 0..=1000")
                    .help(HELP),
                );
                None
            }
            None => {
                self.push(
                    self.problem(format!(
                        "priority of {MEMBER_KIND} `{}` must be a number, found {}",
                        name.value,
                        raw.value.describe()
                    ))
                    .at(&raw.referenced, "not a number")
                    .help(HELP),
                );
                None
            }
        }
    }

    /// `votes:` 0 or 1.
    fn votes(&mut self, name: &Spanned<String>, raw: &Spanned<Scalar>) -> Option<u8> {
        match raw.value {
            Scalar::Int(0) => Some(0),
            Scalar::Int(1) => Some(1),
            _ => {
                self.push(
                    self.problem(format!(
                        "votes of {MEMBER_KIND} `{}` must be 0 or 1, found {}",
                        name.value,
                        raw.value.describe()
                    ))
                    .at(&raw.referenced, "not 0 or 1")
                    .help(
                        "a member has one vote (the default) or none (`votes: 0`, which also \
                         needs `priority: 0`)",
                    ),
                );
                None
            }
        }
    }

    /// Someone must be electable; at most 7 voters; an even number of voters is a warning.
    fn elections(&mut self, set: &Spanned<String>, members: &[MongoMember], at: &Location) {
        if members.iter().all(|m| m.priority_tenths == 0) {
            self.push(
                self.problem(format!(
                    "replica set `{}` has no member that can become primary",
                    set.value
                ))
                .at(at, "every member has priority 0")
                .help(
                    "give at least one data-bearing member a priority above 0 (the default \
                     is 1)",
                ),
            );
        }
        let voting = members.iter().filter(|m| m.votes == 1).count();
        if voting > MAX_VOTING {
            self.push(
                self.problem(format!(
                    "replica set `{}` has {voting} voting members, MongoDB allows at most \
                     {MAX_VOTING}",
                    set.value
                ))
                .at(at, format!("{voting} voting members"))
                .help(
                    "list the members and make the extra ones non-voting with \
                     `votes: 0, priority: 0`",
                ),
            );
        } else if voting > 0 && voting.is_multiple_of(2) {
            self.warn(
                at,
                format!(
                    "replica set {} has {voting} voting members: an even number can leave no \
                     majority after a split; add or remove one, or make one non-voting",
                    set.value
                ),
            );
        }
    }

    /// A member's container name must not be a PostgreSQL server's; then its port joins the
    /// host port check.
    fn add_member(&mut self, member: Seen) {
        let clash = self
            .servers
            .iter()
            .find(|s| s.kind != MEMBER_KIND && s.name.value == member.name.value);
        if let Some(pg) = clash {
            let problem = self
                .problem(format!(
                    "`{}` is both a PostgreSQL {} and a Mongo member",
                    member.name.value, pg.kind
                ))
                .at(
                    &member.name.referenced,
                    format!("this member is `{}`", member.name.value),
                )
                .also(&pg.name.referenced, format!("PostgreSQL {}", pg.kind))
                .help(
                    "Mongo members are named `<set>-<id>` and share the container namespace \
                     with nodes and replicas; rename the replica set or the PostgreSQL server",
                );
            self.push(problem);
        }
        self.servers.push(member);
    }
}

/// MongoDB's database name rules (Unix): non-empty, under 64 bytes, none of `/\. "$*<>:|?`,
/// and not one of MongoDB's own databases.
fn mongo_database_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| "/\\. \"$*<>:|?\0".contains(*c) || c.is_control())
    {
        return Err(format!("`{}` is not allowed", c.escape_debug()));
    }
    if name.len() >= 64 {
        return Err(format!("it is {} bytes long, the limit is 63", name.len()));
    }
    if ["admin", "local", "config"].contains(&name) {
        return Err(format!("`{name}` is one of MongoDB's own databases"));
    }
    Ok(())
}

/// Tenths as MongoDB writes the priority: `1`, `0.5`, `2.5`.
fn show_priority(tenths: u32) -> String {
    if tenths.is_multiple_of(10) {
        (tenths / 10).to_string()
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(x) => x.to_string(),
        other => other.describe(),
    }
}
