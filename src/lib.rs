//! dbtopo: a declarative provisioner for distributed databases.
//!
//! The data flow is `topology.yaml → Topology → desired State`, `Docker + catalogs → observed
//! State`, `diff → Plan`, `execute(Plan)`, then observe again to confirm convergence.

pub mod app;
pub mod cache;
pub mod cli;
pub mod desired;
pub mod diagnostics;
pub mod execute;
pub mod explain;
pub mod files;
pub mod fragments;
pub mod hashing;
pub mod images;
pub mod lock;
pub mod model;
pub mod mongo;
pub mod observe;
pub mod observed;
pub mod pg;
pub mod plan;
pub mod schema;
pub mod secrets;
pub mod seed;
pub mod status;
pub mod templates;
pub mod topology;
pub mod txn;
pub mod verify;
pub mod workload;

/// Helpers shared by the unit tests.
#[cfg(test)]
mod test_support {
    use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

    /// A diagnostic as the terminal would show it, without colours, for snapshots.
    pub fn render_report(diagnostic: &dyn Diagnostic) -> String {
        let mut out = String::new();
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .render_report(&mut out, diagnostic)
            .expect("rendering into a String cannot fail");
        out
    }
}
