//! dbtopo: a declarative provisioner for distributed databases.
//!
//! The data flow is `topology.yaml → Topology → desired State`, `Docker + catalogs → observed
//! State`, `diff → Plan`, `execute(Plan)`, then observe again to confirm convergence.

pub mod app;
pub mod cli;
pub mod desired;
pub mod execute;
pub mod hashing;
pub mod images;
pub mod lock;
pub mod model;
pub mod observe;
pub mod plan;
pub mod schema;
pub mod secrets;
pub mod templates;
pub mod topology;
