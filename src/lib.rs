//! dbtopo: a declarative provisioner for distributed databases.
//!
//! The data flow is `topology.yaml → Topology → Desired`, `Docker + catalogs → Observed`,
//! `diff(Desired, Observed) → Plan`, `execute(Plan)`, then observe again to confirm convergence.

pub mod images;
pub mod topology;
