//! Nodes and replicas: names, ports and `of:` references, including the checks that span
//! both maps (shared names, slot names and host ports).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde_saphyr::{Location, Spanned};

use super::raw::{Entries, RawNode, RawReplica, Scalar};
use super::rules;
use super::validate::Validator;
use super::{Node, Replica};
use crate::diagnostics::did_you_mean;

const NAME_HELP: &str = "use lowercase letters, digits, `-` and `_`, starting with a letter, \
    at most 40 characters: the name is used for the container and, with `-` turned into `_`, \
    for the replication slot";

/// A server's name and port as written, for the checks across nodes, replicas and Mongo
/// members.
pub(super) struct Seen {
    /// `node`, `replica` or `Mongo member`.
    pub kind: &'static str,
    /// For a Mongo member, its `<set>-<id>` at the place it comes from.
    pub name: Spanned<String>,
    pub port: Option<(u16, Location)>,
    /// How a port counted from a replica set's `port` is reached (`27017 + 2`): the location
    /// is then the set's `port`, shared by its members.
    pub port_note: Option<String>,
}

/// What `of:` may refer to: node names, and each replica's own `of` (for the hint).
struct References {
    nodes: Vec<String>,
    replica_of: BTreeMap<String, Option<String>>,
}

impl Validator<'_> {
    pub(super) fn servers(
        &mut self,
        nodes: Option<Spanned<Entries<Option<RawNode>>>>,
        replicas: Option<Entries<Option<RawReplica>>>,
        section: &Location,
    ) -> (BTreeMap<String, Node>, BTreeMap<String, Replica>) {
        let nodes = self.nonempty_nodes(nodes, section);
        let replicas: Vec<_> = replicas
            .map(|r| r.0)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, raw)| (name, raw.unwrap_or_default()))
            .collect();
        let refs = References {
            nodes: nodes.iter().map(|(k, _)| k.value.clone()).collect(),
            replica_of: replicas
                .iter()
                .map(|(k, r)| (k.value.clone(), r.of.as_ref().map(|o| o.value.clone())))
                .collect(),
        };

        let mut seen = Vec::new();
        let mut replica_out = BTreeMap::new();
        for (name, raw) in replicas {
            let of = self.replica_of(&name, raw.of.as_ref(), &refs);
            let port = self.port("replica", &name, raw.port.as_ref());
            let settings = self.settings(raw.settings, &name.value);
            let replica = Replica {
                name: name.value.clone(),
                of: of.unwrap_or_default(),
                port: port.map_or(0, |p| p.0),
                settings,
                synchronous: raw.synchronous.is_some_and(|s| s.value),
            };
            replica_out.insert(name.value.clone(), replica);
            seen.push(Seen {
                kind: "replica",
                name,
                port,
                port_note: None,
            });
        }
        let mut node_out = BTreeMap::new();
        for (name, raw) in nodes {
            let raw = raw.unwrap_or_default();
            let port = self.port("node", &name, raw.port.as_ref());
            let settings = self.settings(raw.settings, &name.value);
            let node = Node {
                name: name.value.clone(),
                port: port.map_or(0, |p| p.0),
                settings,
            };
            node_out.insert(name.value.clone(), node);
            seen.push(Seen {
                kind: "node",
                name,
                port,
                port_note: None,
            });
        }
        seen.sort_by_key(|s| s.name.referenced.span().offset());
        self.check_names(&seen);
        // Host ports are checked once the Mongo members are known too.
        self.servers.extend(seen);
        (node_out, replica_out)
    }

    fn nonempty_nodes(
        &mut self,
        raw: Option<Spanned<Entries<Option<RawNode>>>>,
        section: &Location,
    ) -> Vec<(Spanned<String>, Option<RawNode>)> {
        let at = raw.as_ref().map_or(*section, |n| n.referenced);
        let nodes = raw.map(|n| n.value.0).unwrap_or_default();
        if nodes.is_empty() {
            self.push(
                self.problem("no PostgreSQL nodes are defined")
                    .at(&at, "`nodes` needs at least one entry")
                    .help("add a node under `postgres.nodes`, e.g. `primary: { port: 5433 }`"),
            );
        }
        nodes
    }

    /// Resolves `of:` to a node name; replicas of replicas are refused.
    fn replica_of(
        &mut self,
        name: &Spanned<String>,
        of: Option<&Spanned<String>>,
        refs: &References,
    ) -> Option<String> {
        let nodes = &refs.nodes;
        let known = if nodes.is_empty() {
            "no nodes are defined yet".to_owned()
        } else {
            format!("known nodes: {}", nodes.join(", "))
        };
        let Some(of) = of else {
            self.push(
                self.problem(format!("replica `{}` has no `of`", name.value))
                    .at(&name.referenced, "add `of: <node>` to this replica")
                    .help(format!("`of` names the node it streams from; {known}")),
            );
            return None;
        };
        if nodes.contains(&of.value) {
            return Some(of.value.clone());
        }
        let problem = if let Some(upstream) = refs.replica_of.get(&of.value) {
            let hint = match upstream.as_ref().filter(|u| nodes.contains(u)) {
                Some(node) => format!(
                    "did you mean `of: {node}`, the node `{}` streams from? ",
                    of.value
                ),
                None => String::new(),
            };
            self.problem("cascading replicas are not supported")
                .at(
                    &of.referenced,
                    format!("`{}` is a replica, not a node", of.value),
                )
                .help(format!("{hint}a replica must stream from a node; {known}"))
        } else {
            let hint = did_you_mean(&of.value, nodes.iter().map(String::as_str));
            self.problem(format!(
                "replica `{}` streams from unknown node `{}`",
                name.value, of.value
            ))
            .at(&of.referenced, "no node has this name")
            .help(format!("{hint}{known}"))
        };
        self.push(problem);
        None
    }

    pub(super) fn port(
        &mut self,
        kind: &str,
        name: &Spanned<String>,
        raw: Option<&Spanned<Scalar>>,
    ) -> Option<(u16, Location)> {
        const RANGE_HELP: &str = "use a host port between 1024 and 65535 (below 1024 needs \
            root); it is published on 127.0.0.1";
        let Some(port) = raw.filter(|p| p.value != Scalar::Null) else {
            self.push(
                self.problem(format!("{kind} `{}` has no `port`", name.value))
                    .at(
                        &name.referenced,
                        format!("add `port: <host port>` to this {kind}"),
                    )
                    .help(RANGE_HELP),
            );
            return None;
        };
        let Scalar::Int(n) = port.value else {
            self.push(
                self.problem(format!(
                    "port of {kind} `{}` must be an integer, found {}",
                    name.value,
                    port.value.describe()
                ))
                .at(&port.referenced, "not an integer")
                .help("write the port as a plain number, e.g. `port: 5433`"),
            );
            return None;
        };
        match u16::try_from(n) {
            Ok(p) if p >= 1024 => Some((p, port.referenced)),
            _ => {
                self.push(
                    self.problem(format!(
                        "port {n} of {kind} `{}` is out of range",
                        name.value
                    ))
                    .at(&port.referenced, "not in 1024..=65535")
                    .help(RANGE_HELP),
                );
                None
            }
        }
    }

    /// Node and replica names share one namespace (containers) and, with `-` → `_`, slot
    /// names; the later definition in the file is the one reported.
    fn check_names(&mut self, seen: &[Seen]) {
        let mut names: BTreeMap<&str, &Seen> = BTreeMap::new();
        let mut slots: BTreeMap<String, &Spanned<String>> = BTreeMap::new();
        for s in seen {
            let name = &s.name;
            if let Err(reason) = rules::server_name(&name.value) {
                self.push(
                    self.problem(format!("invalid server name `{}`", name.value))
                        .at(&name.referenced, reason)
                        .help(NAME_HELP),
                );
            }
            if let Some(first) = names.insert(&name.value, s) {
                self.push(
                    self.problem(format!(
                        "`{}` is both a {} and a {}",
                        name.value, first.kind, s.kind
                    ))
                    .at(&name.referenced, "defined again here")
                    .also(&first.name.referenced, "first defined here")
                    .help("node and replica names share one namespace; rename one of them"),
                );
                continue;
            }
            match slots.entry(name.value.replace('-', "_")) {
                Entry::Vacant(e) => {
                    e.insert(name);
                }
                Entry::Occupied(e) => self.push(
                    self.problem(format!(
                        "`{}` and `{}` would share the replication slot `{}`",
                        e.get().value,
                        name.value,
                        e.key()
                    ))
                    .at(&name.referenced, "clashes with an earlier name")
                    .also(&e.get().referenced, "earlier name")
                    .help("slot names turn `-` into `_`; rename one of them"),
                ),
            }
        }
    }

    /// Every server (node, replica, Mongo member) publishes a host port; two on the same port
    /// cannot both start. Runs once every section has added its servers.
    pub(super) fn check_ports(&mut self) {
        let seen = std::mem::take(&mut self.servers);
        let mut used: BTreeMap<u16, &Seen> = BTreeMap::new();
        let mut ports: Vec<(&Seen, u16, Location)> = seen
            .iter()
            .filter_map(|s| s.port.map(|(p, at)| (s, p, at)))
            .collect();
        // Stable: the members counted from one `port` keep their order.
        ports.sort_by_key(|(_, _, at)| at.span().offset());
        for (s, port, at) in ports {
            match used.entry(port) {
                Entry::Vacant(e) => {
                    e.insert(s);
                }
                Entry::Occupied(e) => {
                    let first = *e.get();
                    let Some((_, first_at)) = first.port else {
                        continue;
                    };
                    let again = match &s.port_note {
                        Some(note) => format!("used again here: `{}` gets {note}", s.name.value),
                        None => "used again here".to_owned(),
                    };
                    let first_label = match &first.port_note {
                        Some(note) => format!("first used by `{}` ({note})", first.name.value),
                        None => format!("first used by `{}`", first.name.value),
                    };
                    let postgres_only = [first.kind, s.kind]
                        .iter()
                        .all(|k| matches!(*k, "node" | "replica"));
                    let help = if postgres_only {
                        "every node and replica needs its own host port"
                    } else {
                        "every PostgreSQL node and replica and every Mongo member needs its own \
                         host port"
                    };
                    self.push(
                        self.problem(format!(
                            "host port {port} is used by both `{}` and `{}`",
                            first.name.value, s.name.value
                        ))
                        .at(&at, again)
                        .also(&first_at, first_label)
                        .help(help),
                    );
                }
            }
        }
        self.servers = seen;
    }
}
