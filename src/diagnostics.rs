//! The diagnostics kit of every YAML file dbtopo reads (the topology, the Mongo collection
//! manifests): problems that point into their file as miette spans, "did you mean"
//! suggestions, and the order in which a report lists them.
//!
//! serde-saphyr locates values and errors in characters, with byte offsets only for some of
//! them; miette wants byte spans on char boundaries. Everything here clamps instead of
//! panicking, since the input is whatever the user wrote.

use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use serde_saphyr::{Location, MessageFormatter, Span, UserMessageFormatter};
use thiserror::Error;

/// One problem in a file, rendered with the source snippet it points at.
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
    /// The file's name as shown in the report.
    pub fn file(&self) -> &str {
        self.source_code.name()
    }

    /// Byte span of the primary label, if the problem has a place in the file.
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
    pub(crate) fn at(mut self, at: &Location, label: impl Into<String>) -> Self {
        if let Some(span) = span_of(self.source_code.inner(), at) {
            let label = LabeledSpan::new_primary_with_span(Some(label.into()), span);
            self.labels.insert(0, label);
        }
        self
    }

    /// Attach the primary label at a byte span found earlier with [`span_of`].
    pub(crate) fn at_span(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        let label = LabeledSpan::new_primary_with_span(Some(label.into()), span);
        self.labels.insert(0, label);
        self
    }

    /// Attach a secondary label, e.g. the first declaration of a duplicated name.
    pub(crate) fn also(mut self, at: &Location, label: impl Into<String>) -> Self {
        if let Some(span) = span_of(self.source_code.inner(), at) {
            self.labels
                .push(LabeledSpan::new_with_span(Some(label.into()), span));
        }
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// How YAML errors speak of one kind of file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileKind {
    /// The whole file, as in "… is a single YAML document": `a topology`.
    pub document: &'static str,
    /// Opens the message of a value of the wrong type or shape: `unexpected value`.
    pub bad_value: &'static str,
}

/// A file being read: the shared source every one of its problems points into.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    code: Arc<NamedSource<String>>,
    kind: FileKind,
}

impl Source {
    /// `name` titles the snippets; `kind` words the YAML errors.
    pub fn new(name: &str, text: &str, kind: FileKind) -> Self {
        Source {
            code: Arc::new(NamedSource::new(name, text.to_owned()).with_language("yaml")),
            kind,
        }
    }

    pub fn name(&self) -> &str {
        self.code.name()
    }

    /// The byte span of a location in this file, if it has one.
    pub fn span(&self, at: &Location) -> Option<SourceSpan> {
        span_of(self.code.inner(), at)
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
                Some(format!(
                    "{} is a single YAML document; remove the `---` separator",
                    self.kind.document
                )),
            ),
            E::ExternalMessage { .. } | E::UnknownAnchor { .. } => (
                format!("invalid YAML: {text}"),
                "here",
                Some("check the indentation, quotes and brackets around here".into()),
            ),
            _ => (format!("{}: {text}", self.kind.bad_value), "here", None),
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
    format!("{}{allowed}", did_you_mean(field, expected.iter().copied()))
}

/// "did you mean `x`? " when `target` looks like a typo of a candidate, else nothing: the
/// opening of a help that goes on to list the candidates.
pub fn did_you_mean<'a>(target: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(target, candidates)
        .map(|near| format!("did you mean `{near}`? "))
        .unwrap_or_default()
}

/// "1 problem", "3 problems": the count in a report's title.
pub fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{n} problems")
    }
}

/// Orders one file's problems by position so the report reads top to bottom; problems with
/// no place in the file (e.g. about its name) come first, and ties keep their order.
pub fn sort_by_position(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.span().map(|s| s.offset()));
}

/// The candidate closest to `target`, if it is a plausible typo: at most two edits
/// (a transposition counts as one), case ignored, and no more than half the candidate.
pub fn closest<'a>(target: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let target = target.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&target, &c.to_lowercase()), c))
        .filter(|&(d, c)| d <= 2 && d * 2 <= c.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// A serde-saphyr location as a miette byte span into `text`, `None` if it is unknown.
pub fn span_of(text: &str, at: &Location) -> Option<SourceSpan> {
    let span = at.span();
    if span != Span::UNKNOWN {
        return Some(byte_span(text, span));
    }
    // Some errors carry only a line and a column.
    let line = usize::try_from(at.line()).ok()?;
    let column = usize::try_from(at.column()).ok()?;
    Some(clamped(text, offset_of(text, line, column)?, 0))
}

/// A known span in bytes: its byte offsets when serde-saphyr gives them (scalars parsed from
/// a `&str`), else its character offsets converted.
fn byte_span(text: &str, span: Span) -> SourceSpan {
    if let (Some(offset), Some(len)) = (span.byte_offset(), span.byte_len()) {
        return clamped(text, to_usize(offset), to_usize(len));
    }
    let start = char_to_byte(text, to_usize(span.offset()));
    let end = char_to_byte(text, to_usize(span.offset().saturating_add(span.len())));
    clamped(text, start, end.saturating_sub(start))
}

/// `start..start + len` clamped into `text` on char boundaries. A place with no length (a
/// block mapping) covers the rest of its line, so its label has something to underline.
fn clamped(text: &str, start: usize, len: usize) -> SourceSpan {
    let start = floor_char_boundary(text, start);
    let mut end = floor_char_boundary(text, start.saturating_add(len));
    if end == start {
        end = start + text[start..line_end(text, start)].trim_end().len();
    }
    SourceSpan::new(start.into(), end - start)
}

/// The byte offset of a 1-based `line` and character `column`, as YAML counts them: `\r\n`,
/// `\n` and a lone `\r` each end a line. A column past the line's end stops at its end;
/// `None` for line or column 0 or a line past the end of `text`.
pub fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let column = column.checked_sub(1)?;
    let mut start = 0;
    for _ in 1..line {
        let end = line_end(text, start);
        let break_len = if text[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        start = (end < text.len()).then_some(end + break_len)?;
    }
    Some(start + char_to_byte(&text[start..line_end(text, start)], column))
}

/// Where the line holding byte `start` ends: its line break, or the end of `text`.
fn line_end(text: &str, start: usize) -> usize {
    text[start..]
        .find(['\n', '\r'])
        .map_or(text.len(), |i| start + i)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The byte offset of the `chars`-th character, or the end of `text`.
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

/// Helpers for the tests of every module whose files report [`Problem`]s.
#[cfg(test)]
pub(crate) mod testing {
    use miette::Diagnostic;

    use super::Problem;

    pub fn messages(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    /// The single problem of `all`, checked to carry a primary label.
    pub fn only_one(all: Vec<Problem>) -> Problem {
        assert_eq!(
            all.len(),
            1,
            "expected one problem, got {:?}",
            messages(&all)
        );
        let p = all.into_iter().next().unwrap();
        assert!(p.span().is_some(), "`{p}` has no label");
        p
    }

    pub fn labels(p: &Problem) -> Vec<String> {
        p.labels()
            .into_iter()
            .flatten()
            .map(|l| l.label().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn help(p: &Problem) -> String {
        p.help().map(|h| h.to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_saphyr::Spanned;

    use super::testing::{help, labels};
    use super::*;

    fn span(offset: usize, len: usize) -> Option<SourceSpan> {
        Some(SourceSpan::new(offset.into(), len))
    }

    /// A location with a line and a column but no span, as some errors carry.
    fn line_column(line: u32, column: u32) -> Location {
        serde_saphyr::from_str(&format!("{{ line: {line}, column: {column} }}")).unwrap()
    }

    #[test]
    fn line_and_column_count_characters_and_every_kind_of_line_break() {
        let text = "a: 1\r\nb: é☕🚀x\rc: 2\nd: 3";
        assert_eq!(offset_of(text, 1, 1), Some(0));
        assert_eq!(offset_of(text, 1, 4), Some(3));
        // `\r\n` ends line 1 once, so line 2 starts right after it.
        assert_eq!(offset_of(text, 2, 1), Some(6));
        // é is 2 bytes, ☕ 3 and 🚀 4: column 7 (`x`) is 9 bytes past column 4.
        assert_eq!(offset_of(text, 2, 7), text.find('x'));
        // A lone `\r` ends a line too.
        assert_eq!(offset_of(text, 3, 1), text.find("c:"));
        assert_eq!(offset_of(text, 4, 4), text.find('3'));
        // Past the end of a line: its end, before the break.
        assert_eq!(offset_of(text, 1, 99), Some(4));
        assert_eq!(offset_of(text, 2, 99), text.find("\rc"));
        for (line, column) in [(0, 1), (1, 0), (5, 1)] {
            assert_eq!(offset_of(text, line, column), None, "{line}:{column}");
        }
    }

    #[test]
    fn a_location_with_only_a_line_and_column_becomes_a_span() {
        let text = "name: shop\r\nport: ☕ 5433\r\n";
        assert_eq!(
            span_of(text, &line_column(2, 9)),
            span(text.find("5433").unwrap(), 4)
        );
        assert_eq!(span_of(text, &line_column(9, 1)), None);
        assert_eq!(span_of(text, &Location::UNKNOWN), None);
    }

    #[test]
    fn character_spans_become_byte_spans() {
        let text = "k: é☕\nv: 🚀 x\n";
        let x = text.find('x').unwrap();
        // The characters before `x`: "k: é☕\n" is 6, "v: 🚀 " is 5.
        assert_eq!(Some(byte_span(text, Span::new(11, 1))), span(x, 1));
        // Byte offsets, when given, are taken as they are.
        let with_bytes = Span::new(0, 0).with_byte_info(x as u64, 1);
        assert_eq!(Some(byte_span(text, with_bytes)), span(x, 1));
        // Out of range or inside a character: clamped, never a panic.
        assert_eq!(
            Some(byte_span(text, Span::new(1000, 5))),
            span(text.len(), 0)
        );
        let inside_coffee = text.find('☕').unwrap() + 1;
        let odd = Span::new(0, 0).with_byte_info(inside_coffee as u64, 1);
        assert_eq!(Some(byte_span(text, odd)), span(inside_coffee - 1, 3));
    }

    #[test]
    fn a_place_without_length_covers_the_rest_of_its_line() {
        let text = "items:\r\n  - name: i   \r\n    key: 1\r\n";
        let start = text.find("name").unwrap();
        assert_eq!(
            Some(byte_span(text, Span::new(start as u64, 0))),
            span(start, 7)
        );
        // Real parses agree: a block mapping's span starts at its first key.
        let items: BTreeMap<String, Vec<Spanned<BTreeMap<String, String>>>> =
            serde_saphyr::from_str(text).unwrap();
        let at = items["items"][0].referenced;
        assert_eq!(span_of(text, &at), span(start, 7));
    }

    #[test]
    fn a_scanner_error_after_wide_characters_and_crlf_is_located_by_both_routes() {
        let text = "# café ☕ 🚀\r\nkey: @x\r\nnext: 1\r\n";
        let err = serde_saphyr::from_str::<BTreeMap<String, String>>(text).unwrap_err();
        let at = err.location().unwrap();
        // Scanner errors are located in characters only.
        assert_eq!(at.span().byte_offset(), None);
        let by_span = span_of(text, &at).unwrap();
        let line = usize::try_from(at.line()).unwrap();
        let column = usize::try_from(at.column()).unwrap();
        assert_eq!(Some(by_span.offset()), offset_of(text, line, column));
        assert_eq!(by_span.offset(), text.find('@').unwrap());
        assert!(text.is_char_boundary(by_span.offset() + by_span.len()));
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let nodes = ["primary", "shard-eu", "shard-us", "b"];
        assert_eq!(closest("primay", nodes), Some("primary"));
        assert_eq!(closest("Shard-EU", nodes), Some("shard-eu"));
        assert_eq!(
            closest("shard-uu", nodes),
            Some("shard-eu"),
            "first of a tie"
        );
        // A transposition is one edit: `yb` is one from `by`, two would be too many.
        assert_eq!(closest("yb", ["by", "key"]), Some("by"));
        assert_eq!(closest("a", nodes), None);
        assert_eq!(closest("warehouse", nodes), None);
        assert_eq!(closest("primary", []), None);
        assert_eq!(did_you_mean("primay", nodes), "did you mean `primary`? ");
        assert_eq!(did_you_mean("warehouse", nodes), "");
    }

    #[test]
    fn an_unknown_key_suggests_the_closest_allowed_one() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Doc {
            port: Option<u16>,
            settings: Option<String>,
        }
        let kind = FileKind {
            document: "a test file",
            bad_value: "bad value",
        };
        let src = Source::new("t.yaml", "setting: x\n", kind);
        let err = serde_saphyr::from_str::<Doc>("setting: x\n").unwrap_err();
        let p = src.yaml_error(&err);
        assert_eq!(p.to_string(), "unknown key `setting`");
        assert_eq!(p.file(), "t.yaml");
        assert_eq!(p.snippet(), Some("setting"));
        assert_eq!(labels(&p), ["not allowed here"]);
        assert_eq!(
            help(&p),
            "did you mean `settings`? allowed keys here: port, settings"
        );

        let text = "a: 1\n---\na: 2\n";
        let err = serde_saphyr::from_str::<BTreeMap<String, u8>>(text).unwrap_err();
        let p = Source::new("t.yaml", text, kind).yaml_error(&err);
        assert!(
            help(&p).starts_with("a test file is a single YAML document"),
            "{p:?}"
        );
    }

    /// Both kinds of file put their problems through this module: the same lines before a
    /// mistake put it at the same place, with the same suggestion.
    #[test]
    fn topology_and_manifest_problems_are_located_by_the_same_code() {
        let prefix = "# café ☕ 🚀\r\n";
        let topology = format!("{prefix}nmae: shop\r\n");
        let manifest = format!("{prefix}indxes: []\r\n");
        let topology_err = crate::topology::load_str("t.yaml", &topology).unwrap_err();
        let manifest_problems =
            crate::mongo::manifest::parse_collection("m.yaml", "m", &manifest).unwrap_err();
        let cases: [(&Problem, &str, &str, &str); 2] = [
            (&topology_err.problems()[0], &topology, "nmae", "name"),
            (&manifest_problems[0], &manifest, "indxes", "indexes"),
        ];
        for (p, text, typo, near) in cases {
            assert_eq!(offset_of(text, 2, 1), Some(prefix.len()));
            assert_eq!(p.span(), span(prefix.len(), typo.len()), "{p}");
            assert_eq!(p.snippet(), Some(typo));
            assert!(
                help(p).starts_with(&format!("did you mean `{near}`?")),
                "{}",
                help(p)
            );
            let rendered = crate::test_support::render_report(p);
            assert!(
                rendered.contains(&format!("{}:2:1", p.file())),
                "{rendered}"
            );
        }

        // Problems found after parsing, too.
        let topology = format!(
            "{prefix}name: Shop\r\npostgres:\r\n  nodes:\r\n    primary: {{ port: 5433 }}\r\n"
        );
        let manifest = format!("{prefix}validation_level: lax\r\n");
        let topology_err = crate::topology::load_str("t.yaml", &topology).unwrap_err();
        let manifest_problems =
            crate::mongo::manifest::parse_collection("m.yaml", "m", &manifest).unwrap_err();
        let cases: [(&Problem, &str, &str, usize); 2] = [
            (&topology_err.problems()[0], &topology, "Shop", 7),
            (&manifest_problems[0], &manifest, "lax", 19),
        ];
        for (p, text, value, column) in cases {
            let at = offset_of(text, 2, column).unwrap();
            assert_eq!(p.span(), span(at, value.len()), "{p}");
            assert_eq!(p.snippet(), Some(value));
        }
    }

    #[test]
    fn problems_read_top_to_bottom_with_placeless_ones_first() {
        let text = "a: 1\nb: 2\n";
        let src = Source::new(
            "t.yaml",
            text,
            FileKind {
                document: "a test file",
                bad_value: "bad value",
            },
        );
        let map: BTreeMap<String, Spanned<u8>> = serde_saphyr::from_str(text).unwrap();
        let mut problems = vec![
            src.problem("b").at(&map["b"].referenced, "b"),
            src.problem("a").at(&map["a"].referenced, "a"),
            src.problem("file name"),
            src.problem("a again").at(&map["a"].referenced, "a"),
        ];
        sort_by_position(&mut problems);
        assert_eq!(
            testing::messages(&problems),
            ["file name", "a", "a again", "b"]
        );
        assert_eq!(count(1), "1 problem");
        assert_eq!(count(4), "4 problems");
    }
}
