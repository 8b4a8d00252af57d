//! The topology file: parsing (with spans) and validation into [`Topology`].
//!
//! YAML syntax, type and unknown-key errors stop the parse (serde cannot go on past them);
//! everything else is validated on the parsed file and reported all at once.

mod diagnostics;
mod fragments;
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
pub use spec::*;

/// Reads and validates the topology file at `path`.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let source = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&path.display().to_string(), &source)
}

/// Validates topology YAML held in memory; `name_for_diagnostics` titles the snippets.
pub fn load_str(name_for_diagnostics: &str, source: &str) -> Result<Topology, TopologyError> {
    let src = diagnostics::Source::new(name_for_diagnostics, source, diagnostics::TOPOLOGY);
    let raw =
        raw::parse(source).map_err(|err| diagnostics::invalid(&src, vec![src.yaml_error(&err)]))?;
    let base_dir = schema_section::base_dir_of(name_for_diagnostics);
    // The topology's files (its SQL manifest) are read here, at the edge, once.
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    validate::validate(raw, &src, name_for_diagnostics, base_dir, &read)
        .map_err(|problems| diagnostics::invalid(&src, problems))
}
