//! Errors of [`super::load`]: one report listing every problem, each pointing into the file.
//! The problems themselves come from the shared kit in [`crate::diagnostics`].

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

pub use crate::diagnostics::Problem;
pub(super) use crate::diagnostics::Source;
use crate::diagnostics::{FileKind, count, sort_by_position};

/// How YAML errors speak of the topology file.
pub(super) const TOPOLOGY: FileKind = FileKind {
    document: "a topology",
    bad_value: "unexpected value",
};

/// Why a topology could not be loaded.
#[derive(Debug, Error, Diagnostic)]
pub enum TopologyError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read topology file `{}`", path.display())]
    #[diagnostic(code(dbtopo::topology::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid topology; `problems` lists all of them.
    #[error("`{file}` is not a valid topology: {}", count(problems.len()))]
    #[diagnostic(code(dbtopo::topology::invalid))]
    Invalid {
        file: String,
        #[related]
        problems: Vec<Problem>,
    },
}

impl TopologyError {
    /// The individual problems (empty for [`TopologyError::Read`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            TopologyError::Read { .. } => &[],
            TopologyError::Invalid { problems, .. } => problems,
        }
    }
}

/// The final error, problems in file order so the report reads top to bottom.
pub(super) fn invalid(src: &Source, mut problems: Vec<Problem>) -> TopologyError {
    sort_by_position(&mut problems);
    TopologyError::Invalid {
        file: src.name().to_owned(),
        problems,
    }
}
