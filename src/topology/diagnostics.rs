//! Errors of [`super::load`]: one report listing every problem, each pointing into the file.

use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use serde_saphyr::{Location, MessageFormatter, Span, UserMessageFormatter};
use thiserror::Error;

use super::rules;

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

fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{n} problems")
    }
}

/// One problem in the file, rendered with the source snippet it points at.
#[derive(Debug, Clone, Error, Diagnostic)]
#[error("{message}")]
pub struct Problem {
    message: String,
    #[source_code]
    source_code: Arc<NamedSource<String>>,
    /// The first label is the primary one (the offending value or key).
    #[label(collection)]
    labels: Vec<LabeledSpan>,
    #[help]
    help: Option<String>,
}

impl Problem {
    /// Byte span of the primary label, if the location is known.
    pub fn span(&self) -> Option<SourceSpan> {
        self.labels.first().map(|l| *l.inner())
    }

    /// The text of the primary label (the byte range it covers).
    pub fn snippet(&self) -> Option<&str> {
        let span = self.span()?;
        let text = self.source_code.inner();
        text.get(span.offset()..span.offset().saturating_add(span.len()))
    }

    /// Attach the primary label at `at` (ignored if the location is unknown).
    pub(super) fn at(mut self, at: &Location, label: impl Into<String>) -> Self {
        if let Some(span) = to_span(self.source_code.inner(), at) {
            let label = LabeledSpan::new_primary_with_span(Some(label.into()), span);
            self.labels.insert(0, label);
        }
        self
    }

    /// Attach a secondary label, e.g. the first use of a duplicated port.
    pub(super) fn also(mut self, at: &Location, label: impl Into<String>) -> Self {
        if let Some(span) = to_span(self.source_code.inner(), at) {
            self.labels
                .push(LabeledSpan::new_with_span(Some(label.into()), span));
        }
        self
    }

    pub(super) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The file being loaded: the shared source every problem points into.
pub(super) struct Source {
    name: String,
    code: Arc<NamedSource<String>>,
}

impl Source {
    pub fn new(name: &str, text: &str) -> Self {
        Source {
            name: name.to_owned(),
            code: Arc::new(NamedSource::new(name, text.to_owned()).with_language("yaml")),
        }
    }

    /// Start a problem with `message`; add labels with [`Problem::at`] / [`Problem::also`].
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            source_code: Arc::clone(&self.code),
            labels: Vec::new(),
            help: None,
        }
    }

    /// The final error, problems sorted by position so the report reads top to bottom.
    pub fn invalid(&self, mut problems: Vec<Problem>) -> TopologyError {
        problems.sort_by_key(|p| p.span().map(|s| s.offset()));
        TopologyError::Invalid {
            file: self.name.clone(),
            problems,
        }
    }

    /// A YAML syntax, type or unknown-key error: serde stops at the first one.
    pub fn yaml_error(&self, err: &serde_saphyr::Error) -> Problem {
        use serde_saphyr::Error as E;
        let err = err.without_snippet();
        let at = err.location().unwrap_or(Location::UNKNOWN);
        let text = UserMessageFormatter.format_message(err);
        let (message, label, help) = match err {
            E::SerdeUnknownField {
                field, expected, ..
            } => (
                format!("unknown key `{field}`"),
                "not allowed here",
                Some(unknown_key_help(field, expected)),
            ),
            E::DuplicateMappingKey { .. } => (
                text.into_owned(),
                "repeated key",
                Some("each key may appear only once in a mapping; merge the two entries".into()),
            ),
            E::MultipleDocuments { .. } => (
                format!("invalid YAML: {text}"),
                "second document starts here",
                Some("a topology is a single YAML document; remove the `---` separator".into()),
            ),
            E::ExternalMessage { .. } | E::UnknownAnchor { .. } => (
                format!("invalid YAML: {text}"),
                "here",
                Some("check the indentation, quotes and brackets around here".into()),
            ),
            _ => (format!("unexpected value: {text}"), "here", None),
        };
        let problem = self.problem(message).at(&at, label);
        match help {
            Some(help) => problem.help(help),
            None => problem,
        }
    }
}

fn unknown_key_help(field: &str, expected: &[&str]) -> String {
    let allowed = if expected.is_empty() {
        "no keys are allowed here".to_owned()
    } else {
        format!("allowed keys here: {}", expected.join(", "))
    };
    match rules::closest(field, expected.iter().copied()) {
        Some(near) => format!("did you mean `{near}`? {allowed}"),
        None => allowed,
    }
}

/// Convert a serde-saphyr location to a miette byte span. serde-saphyr counts characters and
/// adds byte offsets only for scalars parsed from a `&str`, so fall back to converting chars.
fn to_span(text: &str, at: &Location) -> Option<SourceSpan> {
    let span = at.span();
    if span == Span::UNKNOWN {
        return None;
    }
    let (start, len) = match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) => (to_usize(offset), to_usize(len)),
        _ => {
            let start = char_to_byte(text, to_usize(span.offset()));
            let end = char_to_byte(text, to_usize(span.offset().saturating_add(span.len())));
            (start, end.saturating_sub(start))
        }
    };
    let start = floor_char_boundary(text, start);
    let end = floor_char_boundary(text, start.saturating_add(len));
    Some(SourceSpan::new(start.into(), end - start))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(byte, _)| byte)
}

/// Clamp `byte` into `text` and onto a char boundary, so slicing can never panic.
fn floor_char_boundary(text: &str, byte: usize) -> usize {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    byte
}
