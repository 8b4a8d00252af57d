//! `dbtopo schema`: the topology file's JSON Schema, for editors (the `yaml-language-server`
//! modeline) and for checking files in CI.

use miette::{IntoDiagnostic, Result};

use crate::topology;

/// Print the topology's JSON Schema, pretty, on stdout.
pub fn schema() -> Result<()> {
    let text = serde_json::to_string_pretty(&topology::topology_schema()).into_diagnostic()?;
    println!("{text}");
    Ok(())
}
