//! `dbtopo mongo ...`: named queries and writes on a replica set's collections.

use clap::{Args, Subcommand};

use super::FileArg;

#[derive(Debug, Args)]
pub struct MongoArgs {
    #[command(subcommand)]
    pub command: MongoCommand,
}

#[derive(Debug, Subcommand)]
pub enum MongoCommand {
    /// Run a named query of `<collections>/queries/*.yaml` and print the documents it returns
    /// (or what it changed); without NAME, list the named queries.
    Query(MongoQueryArgs),
    /// Insert documents: `--doc` is a JSON object, or an array of them.
    Insert(MongoWriteArgs),
    /// Update the documents `--filter` matches with the update operators of `--doc`
    /// (`{"$set": {...}, "$inc": {...}}`): the first one, or every one with `--many`.
    Update(MongoWriteArgs),
    /// Delete the documents `--filter` matches: the first one, or every one with `--many`.
    Delete(MongoWriteArgs),
}

#[derive(Debug, Args)]
pub struct MongoQueryArgs {
    /// The query's name; none lists them.
    pub name: Option<String>,
    #[command(flatten)]
    pub file: FileArg,
    /// Print JSON (relaxed Extended JSON) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The replica set, when the topology has several.
    #[arg(long, value_name = "SET")]
    pub set: Option<String>,
}

#[derive(Debug, Args)]
pub struct MongoWriteArgs {
    /// The collection.
    pub collection: String,
    #[command(flatten)]
    pub file: FileArg,
    /// Which documents, as a JSON object (Extended JSON: `{"at": {"$date": "..."}}`).
    #[arg(long, value_name = "JSON")]
    pub filter: Option<String>,
    /// The document(s) to insert, or the update operators to apply, as JSON.
    #[arg(long, value_name = "JSON")]
    pub doc: Option<String>,
    /// Update or delete every matching document, not only the first.
    #[arg(long)]
    pub many: bool,
    /// Send fields the collection's `$jsonSchema` does not declare (checked before sending
    /// otherwise; the server's validator decides anyway).
    #[arg(long)]
    pub unchecked: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The replica set, when the topology has several.
    #[arg(long, value_name = "SET")]
    pub set: Option<String>,
}
