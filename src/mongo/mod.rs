//! MongoDB replica sets and their collections: the desired collections from the manifests,
//! what a set reports, the difference between the two, and the commands that close it.

pub mod client;
pub mod diff;
pub mod manifest;
pub mod model;
pub mod query;
pub mod query_check;
pub mod query_run;
pub mod render;
pub mod seed;
pub mod shell;
