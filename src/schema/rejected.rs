//! A server's refusal of the schema, pointing at the manifest: at the exact position when the
//! server names one (the manifest itself ran), else at the statement the failing step came
//! from.

use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use super::Manifest;

#[derive(Debug, Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(dbtopo::schema::rejected))]
pub struct RejectedByServer {
    message: String,
    #[source_code]
    source_code: Arc<NamedSource<String>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: Option<String>,
}

impl RejectedByServer {
    /// The manifest failed to run on `node`; `offset` is the byte the server pointed at.
    pub fn at_offset(manifest: &Manifest, node: &str, reason: &str, offset: Option<usize>) -> Self {
        let text = manifest.source.inner();
        let span = offset.map(|start| {
            let len = text[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - start)
                .max(1)
                .min(text.len().saturating_sub(start));
            SourceSpan::from((start, len))
        });
        RejectedByServer {
            message: format!("node {node} rejects the schema manifest: {reason}"),
            source_code: Arc::clone(&manifest.source),
            span,
            label: "here".into(),
            help: Some(
                "the manifest is checked on the server in a scratch schema (rolled back) \
                 before anything changes; fix the statement and run plan again"
                    .into(),
            ),
        }
    }

    /// A step of `change` (`schema.primary`) coming from `origin` (`table users`) failed while
    /// running `sql`.
    pub fn at_statement(
        manifest: &Manifest,
        change: &str,
        object: &str,
        origin: Option<&str>,
        reason: &str,
        sql: &str,
        outcome: &str,
    ) -> Self {
        RejectedByServer {
            message: format!("{change}: {object}: {reason}"),
            source_code: Arc::clone(&manifest.source),
            span: origin.and_then(|o| manifest.statement_of(o)),
            label: format!("{object} comes from here"),
            help: Some(format!("the statement was:\n{sql}\n{outcome}")),
        }
    }

    pub fn span(&self) -> Option<SourceSpan> {
        self.span
    }
}
