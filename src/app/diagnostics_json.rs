//! A diagnostic as JSON: its message, code and help, and each label with the file, line and
//! column it points at (1-based, as editors count), for `validate --json`.

use miette::{Diagnostic, SourceCode};
use serde_json::{Value, json};

/// Each problem of `report`: its related diagnostics when it gathers several, else itself.
pub fn of(report: &miette::Report) -> Vec<Value> {
    let top: &dyn Diagnostic = report.as_ref();
    match top.related() {
        Some(related) => related.map(|d| one(d, top.source_code())).collect(),
        None => vec![one(top, None)],
    }
}

fn one(diagnostic: &dyn Diagnostic, inherited: Option<&dyn SourceCode>) -> Value {
    let source = diagnostic.source_code().or(inherited);
    let labels: Vec<Value> = diagnostic
        .labels()
        .into_iter()
        .flatten()
        .map(|label| {
            let at = source.and_then(|s| s.read_span(label.inner(), 0, 0).ok());
            json!({
                "label": label.label(),
                "file": at.as_ref().and_then(|c| c.name().map(str::to_owned)),
                "line": at.as_ref().map(|c| c.line() + 1),
                "column": at.as_ref().map(|c| c.column() + 1),
                "byte": label.offset(),
                "length": label.len(),
            })
        })
        .collect();
    json!({
        "severity": "error",
        "summary": diagnostic.to_string(),
        "code": diagnostic.code().map(|c| c.to_string()),
        "help": diagnostic.help().map(|h| h.to_string()),
        "labels": labels,
    })
}
