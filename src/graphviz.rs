//! Drawing DOT text as SVG with Graphviz's `dot`, when it is installed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GraphvizError {
    #[error("Graphviz is not installed: `dot` was not found")]
    #[diagnostic(
        code(dbtopo::erd::no_graphviz),
        help(
            "install it (Debian: apt-get install graphviz), or paste the Mermaid text into any \
             Mermaid renderer"
        )
    )]
    Missing,
    #[error("Graphviz failed: {0}")]
    #[diagnostic(code(dbtopo::erd::graphviz))]
    Failed(String),
}

/// Render `dot_text` into an SVG file at `output`.
pub fn write_svg(dot_text: &str, output: &Path) -> Result<(), GraphvizError> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .arg("-o")
        .arg(output)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GraphvizError::Missing,
            _ => GraphvizError::Failed(e.to_string()),
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(dot_text.as_bytes())
        .map_err(|e| GraphvizError::Failed(e.to_string()))?;
    let output = child
        .wait_with_output()
        .map_err(|e| GraphvizError::Failed(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(GraphvizError::Failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}
