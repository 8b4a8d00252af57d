//! The edge where files come in: the topology file and the files it names are read here, and
//! handed to the pure validation (`topology::load_with`).

use std::path::Path;

use crate::topology::{Topology, TopologyError, load_with};

/// Reads and validates the topology file at `path`.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let source = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&path.display().to_string(), &source)
}

/// Validates topology YAML held in memory, reading the files it names from disk.
pub fn load_str(name_for_diagnostics: &str, source: &str) -> Result<Topology, TopologyError> {
    load_with(name_for_diagnostics, source, &read_text)
}

/// A file's text, or `None` when it cannot be read (the validation says where it was named).
pub fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}
