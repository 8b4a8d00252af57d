//! The commands, one file each: load → validate → observe → plan → render → confirm →
//! execute → verify. Everything that prints lives here (the terminal UI in `ui`) or in main.

mod apply;
mod connect;
mod destroy;
mod diagnostics_json;
mod environment;
mod erd;
mod explain;
mod load;
mod mongo;
mod mongosh;
mod plan;
mod schema;
mod seed;
mod status;
mod tour;
mod txn;
mod ui;
mod validate;
mod verify;
mod workload;

pub use crate::desired::{Desired, DesiredFragments, DesiredSchema};
pub use apply::apply;
pub use connect::{env_exports, psql};
pub use destroy::{destroy, remove_all, render_inventory};
pub use environment::docker;
pub use erd::erd;
pub use explain::{explain, read_catalogue};
pub use load::{desired, manifests};
pub use mongo::mongo;
pub use mongosh::{launch as launch_mongosh, mongosh};
pub use plan::{plan, plan_for};
pub use schema::schema;
pub use seed::seed;
pub use status::status;
pub use tour::tour;
pub use txn::txn;
pub use ui::disable_color;
pub use validate::{validate, validate_json};
pub use verify::{verify_checks, verify_command, verify_json};
pub use workload::{workload, workload_target};
