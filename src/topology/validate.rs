//! Raw file → [`Topology`]: applies defaults and collects every problem instead of stopping
//! at the first, so a student fixes the whole file in one round.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::diagnostics::{Problem, Source};
use super::fragments;
use super::raw::{RawAccess, RawImages, RawPostgres, RawSettings, RawTopology, Scalar};
use super::rules;
use super::servers::Seen;
use super::{AccessRule, Images, Node, Postgres, Replica, Topology};

const DEFAULT_POSTGRES_IMAGE: &str = "postgres:17";
const DEFAULT_MONGO_IMAGE: &str = "mongo:7";
const DEFAULT_REPLICATION_USER: &str = "repuser";

/// Collects problems while building the normalized values; results are discarded if any
/// problem was found.
pub(super) struct Validator<'a> {
    src: &'a Source,
    problems: Vec<Problem>,
    /// The topology file's folder, where relative paths start.
    base_dir: &'a Path,
    /// Reads a file the topology names (the SQL manifest): the one place files come in,
    /// given by the caller at the edge.
    read: &'a dyn Fn(&Path) -> Option<String>,
    /// The file's name as given, for warnings (`topology.yaml:71:7: ...`).
    file_name: &'a str,
    /// Every server with its host port, for the checks across sections.
    pub(super) servers: Vec<Seen>,
    /// Problems that do not stop the topology.
    warnings: Vec<String>,
    setting_places: super::SettingPlaces,
}

pub(super) fn validate(
    raw: Spanned<RawTopology>,
    src: &Source,
    file_name: &str,
    base_dir: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Result<Topology, Vec<Problem>> {
    let mut v = Validator {
        src,
        problems: Vec::new(),
        base_dir,
        read,
        file_name,
        servers: Vec::new(),
        warnings: Vec::new(),
        setting_places: super::SettingPlaces::new(src),
    };
    let top = raw.referenced;
    let raw = raw.value;
    let name = v.env_name(raw.name, &top);
    let images = v.images(raw.images);
    let postgres = v.postgres(raw.postgres, &top);
    let mongo = v.mongo(raw.mongo);
    v.check_ports();
    if v.problems.is_empty() {
        Ok(Topology {
            name,
            images,
            postgres,
            mongo,
            warnings: v.warnings,
            setting_places: v.setting_places,
        })
    } else {
        Err(v.problems)
    }
}

impl Validator<'_> {
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        self.src.problem(message)
    }

    pub fn base_dir(&self) -> &Path {
        self.base_dir
    }

    /// The text of a file the topology names, `None` when it cannot be read.
    pub fn read(&self, path: &Path) -> Option<String> {
        (self.read)(path)
    }

    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// A warning at `at`: `<file>:<line>:<column>: <message>`.
    pub fn warn(&mut self, at: &Location, message: impl std::fmt::Display) {
        self.warnings.push(format!(
            "{}:{}:{}: {message}",
            self.file_name,
            at.line(),
            at.column()
        ));
    }

    fn env_name(&mut self, raw: Option<Spanned<String>>, top: &Location) -> String {
        const HELP: &str = "use lowercase letters, digits and `-`, starting with a letter and \
            not ending with `-`, at most 40 characters: it prefixes every Docker object \
            (`<name>-primary`, `<name>-net`)";
        let Some(name) = raw else {
            self.push(
                self.problem("missing environment `name`")
                    .at(top, "add `name: <environment>` to this mapping")
                    .help(HELP),
            );
            return String::new();
        };
        if let Err(reason) = rules::env_name(&name.value) {
            self.push(
                self.problem(format!("invalid environment name `{}`", name.value))
                    .at(&name.referenced, reason)
                    .help(HELP),
            );
        }
        name.value
    }

    fn images(&mut self, raw: Option<RawImages>) -> Images {
        let (postgres, mongo) = raw.map_or((None, None), |i| (i.postgres, i.mongo));
        Images {
            postgres: self.image(postgres, DEFAULT_POSTGRES_IMAGE),
            mongo: self.image(mongo, DEFAULT_MONGO_IMAGE),
        }
    }

    fn image(&mut self, raw: Option<Spanned<String>>, default: &str) -> String {
        let Some(image) = raw else {
            return default.to_owned();
        };
        if let Err(reason) = rules::image(&image.value) {
            self.push(
                self.problem(format!("invalid image reference `{}`", image.value))
                    .at(&image.referenced, reason)
                    .help(format!(
                        "write a Docker image reference such as `{default}`, or remove the key \
                         to use that default"
                    )),
            );
        }
        image.value
    }

    fn postgres(&mut self, raw: Option<Spanned<RawPostgres>>, top: &Location) -> Postgres {
        let Some(Spanned {
            value: pg,
            referenced: section,
            ..
        }) = raw
        else {
            self.push(
                self.problem("missing `postgres` section")
                    .at(
                        top,
                        "add `postgres:` with at least one node to this mapping",
                    )
                    .help("e.g.\npostgres:\n  nodes:\n    primary: { port: 5433 }"),
            );
            return self.empty_postgres();
        };
        let replication_user = self.replication_user(pg.replication_user);
        let settings = self.settings(pg.settings, "");
        let access = pg
            .access
            .unwrap_or_default()
            .into_iter()
            .filter_map(|rule| self.access_rule(rule))
            .collect();
        let (nodes, replicas) = self.servers(pg.nodes, pg.replicas, &section);
        self.standby_minimums(&settings, &nodes, &replicas);
        let schema = self.schema(pg.schema, &nodes, &replicas);
        // The manifest's tables, for the fragment checks; its own errors are reported when
        // the desired state is built from it.
        let manifest = schema
            .as_ref()
            .and_then(|target| target.manifest.as_ref())
            .and_then(|m| m.parsed.as_ref().ok())
            .map(|m| m.schema.clone());
        let context = fragments::Context {
            nodes: &nodes,
            replicas: &replicas,
            schema: schema.as_ref(),
            manifest: manifest.as_ref(),
            settings: &settings,
        };
        let fragments = self.fragments(pg.fragments, pg.reference_tables, pg.indexes, &context);
        Postgres {
            settings,
            access,
            replication_user,
            nodes,
            replicas,
            schema,
            fragments,
        }
    }

    /// A replica whose value of a standby minimum would be below its node's would not start:
    /// said here, at the replica's value (or the node's, when the replica has no own).
    fn standby_minimums(
        &mut self,
        shared: &BTreeMap<String, String>,
        nodes: &BTreeMap<String, Node>,
        replicas: &BTreeMap<String, Replica>,
    ) {
        for replica in replicas.values() {
            let Some(node) = nodes.get(&replica.of) else {
                continue;
            };
            for (name, default) in rules::STANDBY_MINIMUMS {
                let value = |own: &BTreeMap<String, String>| {
                    own.get(*name)
                        .or_else(|| shared.get(*name))
                        .map_or(Some(*default), |v| v.trim().parse::<i64>().ok())
                };
                let (Some(theirs), Some(mine)) = (value(&node.settings), value(&replica.settings))
                else {
                    continue;
                };
                if mine >= theirs {
                    continue;
                }
                let (scope, label) = match replica.settings.contains_key(*name) {
                    true => (replica.name.as_str(), "the replica's value"),
                    false => (node.name.as_str(), "its node's value"),
                };
                let mut problem = self.problem(format!(
                    "replica `{}` would run with {name} = {mine}, below its node `{}`'s {theirs}: a hot standby does not start below its primary",
                    replica.name, node.name
                ));
                if let Some(span) = self.setting_places.place(scope, name) {
                    problem = problem.at_span(span, label);
                }
                self.push(problem.help(format!(
                    "give replica `{}` its own `{name}: {theirs}` (or more), or set {name} for every server under postgres.settings",
                    replica.name
                )));
            }
        }
    }

    fn empty_postgres(&self) -> Postgres {
        Postgres {
            settings: BTreeMap::new(),
            access: Vec::new(),
            replication_user: DEFAULT_REPLICATION_USER.to_owned(),
            nodes: BTreeMap::new(),
            replicas: BTreeMap::new(),
            schema: None,
            fragments: None,
        }
    }

    fn replication_user(&mut self, raw: Option<Spanned<String>>) -> String {
        let Some(user) = raw else {
            return DEFAULT_REPLICATION_USER.to_owned();
        };
        if let Err(reason) = rules::role_name(&user.value) {
            self.push(
                self.problem(format!("invalid replication_user `{}`", user.value))
                    .at(&user.referenced, reason)
                    .help(
                        "use a dedicated role name of lowercase letters, digits and `_` \
                         (not `postgres`, not starting with `pg_`), e.g. `repuser`",
                    ),
            );
        }
        user.value
    }

    /// Validates and normalizes a `settings:` mapping: the shared one (`scope` empty) or a
    /// server's.
    pub fn settings(&mut self, raw: Option<RawSettings>, scope: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut first_seen: BTreeMap<String, Location> = BTreeMap::new();
        for (key, value) in raw.map(|s| s.0).unwrap_or_default() {
            let name = key.value.to_ascii_lowercase();
            if let Some(first) = first_seen.get(&name) {
                self.push(
                    self.problem(format!("setting `{name}` is set twice"))
                        .at(&key.referenced, "set again here")
                        .also(first, "first set here")
                        .help("setting names are case-insensitive; keep one of them"),
                );
                continue;
            }
            first_seen.insert(name.clone(), key.referenced);
            if !self.setting_name_ok(&name, &key) {
                continue;
            }
            if let Some(span) = self.src.span(&value.referenced) {
                self.setting_places.insert(scope, &name, span);
            }
            if let Some(text) = self.setting_value(&name, value) {
                out.insert(name, text);
            }
        }
        out
    }

    fn setting_name_ok(&mut self, name: &str, key: &Spanned<String>) -> bool {
        if let Err(reason) = rules::setting_name(name) {
            self.push(
                self.problem(format!("invalid setting name `{}`", key.value))
                    .at(&key.referenced, reason)
                    .help(
                        "use a PostgreSQL parameter name: letters, digits, `_` and `.`, \
                         e.g. `work_mem` or `auto_explain.log_min_duration`",
                    ),
            );
            return false;
        }
        if rules::MANAGED_SETTINGS.contains(&name) {
            let help = if name == "port" {
                "remove it: the container always listens on 5432; choose the host port with \
                 the server's `port:` key"
            } else {
                "remove it: dbtopo sets it itself so that networking, authentication and \
                 replication keep working"
            };
            self.push(
                self.problem(format!("setting `{name}` is managed by dbtopo"))
                    .at(&key.referenced, "managed by dbtopo")
                    .help(help),
            );
            return false;
        }
        true
    }

    /// The value as PostgreSQL text: booleans `on`/`off`, numbers their decimal text.
    fn setting_value(&mut self, name: &str, value: Spanned<Scalar>) -> Option<String> {
        let text = match value.value {
            Scalar::Null => {
                self.push(
                    self.problem(format!("setting `{name}` has no value"))
                        .at(&value.referenced, "empty value")
                        .help("give it a value, or remove the line to keep PostgreSQL's default"),
                );
                return None;
            }
            Scalar::Bool(b) => if b { "on" } else { "off" }.to_owned(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(x) => x.to_string(),
            Scalar::Str(s) => s,
        };
        if text.chars().any(char::is_control) {
            self.push(
                self.problem(format!("value of setting `{name}` is not a single line"))
                    .at(
                        &value.referenced,
                        "contains a line break or control character",
                    )
                    .help("postgresql.conf values must be one line of printable text"),
            );
            return None;
        }
        Some(text)
    }

    fn access_rule(&mut self, raw: Spanned<RawAccess>) -> Option<AccessRule> {
        let rule = &raw.referenced;
        let database = self.hba_field("database", raw.value.database, rule);
        let user = self.hba_field("user", raw.value.user, rule);
        let address = self.hba_address(raw.value.address, rule);
        let method_ok = self.hba_method(raw.value.method);
        Some(AccessRule {
            database: database?,
            user: user?,
            address: address?,
        })
        .filter(|_| method_ok)
    }

    fn hba_field(
        &mut self,
        field: &str,
        raw: Option<Spanned<String>>,
        rule: &Location,
    ) -> Option<String> {
        let Some(value) = raw else {
            self.missing_in_rule(field, rule);
            return None;
        };
        if let Err(reason) = rules::hba_token(&value.value) {
            self.push(
                self.problem(format!("invalid access {field} `{}`", value.value))
                    .at(&value.referenced, reason)
                    .help(format!(
                        "use `all`, or a {field} name without spaces, quotes or `#`"
                    )),
            );
            return None;
        }
        Some(value.value)
    }

    fn hba_address(&mut self, raw: Option<Spanned<String>>, rule: &Location) -> Option<String> {
        let Some(address) = raw else {
            self.missing_in_rule("address", rule);
            return None;
        };
        if let Err(reason) = rules::hba_address(&address.value) {
            self.push(
                self.problem(format!("invalid access address `{}`", address.value))
                    .at(&address.referenced, reason)
                    .help(
                        "use `all` or a CIDR network such as `0.0.0.0/0`, `172.16.0.0/12` \
                         or `::1/128`",
                    ),
            );
            return None;
        }
        Some(address.value)
    }

    fn hba_method(&mut self, raw: Option<Spanned<String>>) -> bool {
        let Some(method) = raw.filter(|m| m.value != rules::SCRAM) else {
            return true;
        };
        self.push(
            self.problem(format!(
                "access method `{}` is not allowed for TCP connections",
                method.value
            ))
            .at(&method.referenced, "only scram-sha-256 is accepted")
            .help(
                "`trust` lets anyone who reaches the port in without a password, `password` \
                 sends it in clear text and `md5` is deprecated; remove `method:` (it defaults \
                 to scram-sha-256)",
            ),
        );
        false
    }

    fn missing_in_rule(&mut self, field: &str, rule: &Location) {
        self.push(
            self.problem(format!("access rule has no `{field}`"))
                .at(rule, format!("add `{field}:` to this rule"))
                .help(
                    "each rule needs `database`, `user` and `address`, e.g. \
                     `{ database: all, user: all, address: 10.0.0.0/8 }`",
                ),
        );
    }
}
