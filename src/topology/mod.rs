//! The topology file: parsing (with spans) and validation into [`Topology`].

mod spec;

pub use spec::*;
