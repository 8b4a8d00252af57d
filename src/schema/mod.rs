//! Declarative schema: the desired tables and indexes as a plain PostgreSQL DDL manifest,
//! parsed into a normalized model that a later diff compares with one read from the catalog.

pub mod model;
mod naming;
pub mod parse;
mod types;

pub use model::Schema;
pub use parse::{ErrorKind, SchemaError, parse_schema};

#[cfg(test)]
mod tests;
