//! The topology file: parsing (with spans) and validation into [`Topology`].
//!
//! YAML syntax, type and unknown-key errors stop the parse (serde cannot go on past them);
//! everything else is validated on the parsed file and reported all at once.

mod diagnostics;
mod fragments;
mod json_schema;
mod mongo;
mod raw;
mod rules;
mod schema_section;
mod servers;
mod spec;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use diagnostics::{Problem, TopologyError};
pub use json_schema::topology_schema;
pub use spec::*;

// Reading the file and the files it names happens at the edge (src/files.rs); these names
// stay here, where callers look for them.
pub use crate::files::{load, load_str};

/// Validates topology YAML held in memory; `name_for_diagnostics` titles the snippets and
/// `read` gives the files the topology names (its SQL manifest), relative paths resolved
/// from the topology's folder.
pub fn load_with(
    name_for_diagnostics: &str,
    source: &str,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Result<Topology, TopologyError> {
    let src = diagnostics::Source::new(name_for_diagnostics, source, diagnostics::TOPOLOGY);
    let raw =
        raw::parse(source).map_err(|err| diagnostics::invalid(&src, vec![src.yaml_error(&err)]))?;
    let base_dir = schema_section::base_dir_of(name_for_diagnostics);
    validate::validate(raw, &src, name_for_diagnostics, base_dir, read)
        .map_err(|problems| diagnostics::invalid(&src, problems))
}
