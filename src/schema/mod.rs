//! Declarative schema: the desired tables and indexes as a plain PostgreSQL DDL manifest,
//! parsed into a normalized model, compared with the model read from a database's catalog,
//! and turned into ordered DDL steps.

pub mod ddl;
pub mod diff;
pub mod erd;
pub mod erd_svg;
pub mod model;
mod naming;
pub mod parse;
mod rejected;
mod types;

use std::collections::{BTreeMap, BTreeSet};

pub use diff::{Step, StepAction};
pub use model::Schema;
pub use parse::{ErrorKind, Manifest, SchemaError, SqlManifest, parse_manifest, parse_schema};
pub use rejected::RejectedByServer;

/// What one node's target database holds, as far as it could be observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSchema {
    /// The node's server does not exist yet: its database will start empty.
    Fresh,
    /// The server exists but could not be asked (stopped, starting): the comparison waits
    /// until it runs.
    Unknown,
    Observed(ObservedSchema),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSchema {
    pub database_exists: bool,
    pub current: Schema,
    /// Indexes of `current` left invalid by a failed concurrent build.
    pub invalid_indexes: BTreeSet<String>,
    /// The manifest as this server spells it (types, defaults, expressions).
    pub desired: Schema,
    /// Rows of the tables a destructive step would touch.
    pub row_counts: BTreeMap<String, i64>,
}

#[cfg(test)]
mod cases_tests;
#[cfg(test)]
mod pg_dump_tests;
#[cfg(test)]
mod tests;
