//! The `postgres.schema` section: the manifest file, the target database and the nodes that
//! receive the schema.

use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::raw::RawSchema;
use super::rules;
use super::validate::Validator;
use super::{Node, Replica, SchemaTarget};
use crate::diagnostics::did_you_mean;

const DEFAULT_DATABASE: &str = "postgres";

impl Validator<'_> {
    pub(super) fn schema(
        &mut self,
        raw: Option<Spanned<RawSchema>>,
        nodes: &std::collections::BTreeMap<String, Node>,
        replicas: &std::collections::BTreeMap<String, Replica>,
    ) -> Option<SchemaTarget> {
        let Spanned {
            value: raw,
            referenced: section,
            ..
        } = raw?;
        let file = self.schema_file(raw.file, &section);
        let database = match raw.database {
            None => DEFAULT_DATABASE.to_owned(),
            Some(database) => {
                if let Err(reason) = rules::database_name(&database.value) {
                    self.push(
                        self.problem(format!("invalid database name `{}`", database.value))
                            .at(&database.referenced, reason)
                            .help("use lowercase letters, digits and `_`, e.g. `ecommerce`"),
                    );
                }
                database.value
            }
        };
        let targets = match raw.nodes {
            None => nodes.keys().cloned().collect(),
            Some(listed) => self.schema_nodes(listed, nodes, replicas, &section),
        };
        let (file, path, sql) = file?;
        let manifest = Some(crate::schema::SqlManifest::parse(&file, sql));
        Some(SchemaTarget {
            file,
            path,
            database,
            nodes: targets,
            manifest,
        })
    }

    /// The manifest path, resolved against the topology's folder; it must exist.
    fn schema_file(
        &mut self,
        raw: Option<Spanned<String>>,
        section: &Location,
    ) -> Option<(String, std::path::PathBuf, String)> {
        let Some(file) = raw else {
            self.push(
                self.problem("`schema` has no `file`")
                    .at(section, "add `file: <manifest.sql>` to this mapping")
                    .help("the file holds the desired tables: CREATE TABLE, CREATE INDEX and ALTER TABLE … ADD CONSTRAINT, as written by hand or by pg_dump -s"),
            );
            return None;
        };
        let path = self.base_dir().join(&file.value);
        let Some(sql) = self.read(&path) else {
            self.push(
                self.problem(format!("schema file `{}` not found", file.value))
                    .at(&file.referenced, format!("no file at {}", path.display()))
                    .help("the path is relative to the topology file's folder"),
            );
            return None;
        };
        Some((file.value, path, sql))
    }

    fn schema_nodes(
        &mut self,
        listed: Vec<Spanned<String>>,
        nodes: &std::collections::BTreeMap<String, Node>,
        replicas: &std::collections::BTreeMap<String, Replica>,
        section: &Location,
    ) -> Vec<String> {
        if listed.is_empty() {
            self.push(self.problem("`schema.nodes` is empty").at(
                section,
                "name at least one node, or remove `nodes` for all of them",
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for node in listed {
            if let Some(replica) = replicas.get(&node.value) {
                self.push(
                    self.problem(format!("`{}` is a replica", node.value))
                        .at(&node.referenced, "replicas cannot receive DDL")
                        .help(format!(
                            "a replica receives the schema from `{}` by replication; list nodes only",
                            replica.of
                        )),
                );
            } else if !nodes.contains_key(&node.value) {
                let near = did_you_mean(&node.value, nodes.keys().map(String::as_str));
                let known: Vec<&str> = nodes.keys().map(String::as_str).collect();
                self.push(
                    self.problem(format!("unknown node `{}`", node.value))
                        .at(&node.referenced, "no node of this name")
                        .help(format!("{near}known nodes: {}", known.join(", "))),
                );
            } else if out.contains(&node.value) {
                self.push(
                    self.problem(format!("node `{}` is listed twice", node.value))
                        .at(&node.referenced, "already listed"),
                );
            } else {
                out.push(node.value);
            }
        }
        out
    }
}

/// Where relative paths in the topology start: the topology file's folder.
pub(super) fn base_dir_of(file_name: &str) -> &Path {
    match Path::new(file_name).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}
