//! A SQL manifest (CREATE TABLE, CREATE INDEX and ALTER TABLE … ADD CONSTRAINT, as written by
//! hand or by `pg_dump -s`; PostgreSQL dialect) into the normalized [`Schema`].
//!
//! Pure: the caller reads the file. Statements are checked in order, as PostgreSQL would run
//! them, so a foreign key may only reference a table created above it (or its own table).
//!
//! `pg_dump -s` output is a manifest too: names qualified with `public.`, keys and constraints
//! added by `ALTER TABLE [ONLY] … ADD CONSTRAINT` (folded into their table), and the session
//! settings, ownership and `\restrict` lines it writes around them (ignored, see
//! [`ignored_setting`], [`psql_restrict_lines`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use sqlparser::ast::{
    self as sql, AlterSchemaOperation, AlterTable, AlterTableOperation, ColumnOption, CreateIndex,
    CreateTable, Expr, GeneratedAs, GeneratedExpressionMode, Ident, IndexColumn, ObjectName,
    ObjectNamePart, OrderBySort, Spanned, Statement, TableConstraint,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Span, Token};
use thiserror::Error;

use super::model::{
    Check, Column, ForeignKey, Identity, Index, KeyConstraint, ReferentialAction, Schema, Sequence,
    SequenceValues, Table, TableProperties,
};
use super::{ddl, naming, types};

/// What kind of problem a [`SchemaError`] is, for callers and tests that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid SQL for the PostgreSQL dialect.
    Syntax,
    /// Valid SQL that a schema manifest cannot hold (DROP, INSERT, serial, generated columns, …).
    Unsupported,
    /// A table that does not exist (yet) at that point of the file.
    UnknownTable,
    /// A column the table does not have.
    UnknownColumn,
    /// A second table, column, index or constraint with a name already taken.
    Duplicate,
    /// Contradictions within a definition (NULL and NOT NULL, two primary keys, …).
    Invalid,
}

/// One problem in a manifest, pointing at the offending SQL.
#[derive(Debug, Clone, Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(dbtopo::schema::invalid))]
pub struct SchemaError {
    pub kind: ErrorKind,
    message: String,
    #[source_code]
    source_code: Arc<NamedSource<String>>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    help: Option<String>,
}

impl SchemaError {
    /// The byte range the error points at.
    pub fn span(&self) -> SourceSpan {
        self.span
    }

    /// The text the error points at.
    pub fn snippet(&self) -> &str {
        let text = self.source_code.inner();
        let start = self.span.offset().min(text.len());
        let end = start.saturating_add(self.span.len()).min(text.len());
        text.get(start..end).unwrap_or_default()
    }
}

/// A manifest's text as read from its file, and what parsing it gave: read and parsed once,
/// when the topology is loaded.
#[derive(Debug, Clone)]
pub struct SqlManifest {
    pub sql: String,
    pub parsed: Result<Manifest, SchemaError>,
}

impl SqlManifest {
    pub fn parse(file_name: &str, sql: String) -> SqlManifest {
        let parsed = parse_manifest(file_name, &sql);
        SqlManifest { sql, parsed }
    }
}

/// Two manifests are the same when their text is.
impl PartialEq for SqlManifest {
    fn eq(&self, other: &Self) -> bool {
        self.sql == other.sql
    }
}

impl Eq for SqlManifest {}

/// A parsed manifest: the model, and where in the file each table and index is declared,
/// so that a server's complaint about one of them can point at its statement.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub schema: Schema,
    /// `table <name>` or `index <name>` → the span of its CREATE statement.
    pub statements: BTreeMap<String, SourceSpan>,
    pub source: Arc<NamedSource<String>>,
    /// The text the server runs in its scratch schema to normalize the manifest: the
    /// manifest with the ignored statements and the `public.` qualifiers blanked out, so that
    /// every table lands in the scratch schema (a `public.` name or pg_dump's empty
    /// search_path would send it elsewhere). Blanked byte for byte, so a position the server
    /// reports in it is the same position in the file.
    pub server_sql: String,
    /// What the manifest says that dbtopo ignores, for the user to know.
    pub notices: Vec<String>,
}

impl Manifest {
    /// The span of the statement that declares `object` (`table users`, `index x`).
    pub fn statement_of(&self, object: &str) -> Option<SourceSpan> {
        self.statements.get(object).copied()
    }
}

/// Parse `sql` (the contents of `file_name`) into a schema model.
pub fn parse_schema(file_name: &str, sql: &str) -> Result<Schema, SchemaError> {
    parse_manifest(file_name, sql).map(|m| m.schema)
}

/// Parse `sql` (the contents of `file_name`) into a [`Manifest`].
pub fn parse_manifest(file_name: &str, sql: &str) -> Result<Manifest, SchemaError> {
    let source = Source::new(file_name, sql);
    let dialect = PostgreSqlDialect {};
    let meta = psql_restrict_lines(sql);
    let mut sql_only = sql.as_bytes().to_vec();
    blank(&mut sql_only, &meta);
    let sql_only = String::from_utf8(sql_only).unwrap_or_else(|_| sql.to_owned());
    let identity_names = identity_sequence_names(&source, &sql_only)?;
    let mut sql_only = sql_only.into_bytes();
    blank(
        &mut sql_only,
        &identity_names
            .iter()
            .map(|n| n.words.clone())
            .collect::<Vec<_>>(),
    );
    let sql_only = String::from_utf8(sql_only).unwrap_or_else(|_| sql.to_owned());
    let mut blanked = meta;
    blanked.extend(identity_names.iter().filter_map(|n| n.public.clone()));
    let mut parser = Parser::new(&dialect)
        .try_with_sql(&sql_only)
        .map_err(|e| source.parser_error(e, 0))?;
    let mut builder = Builder {
        source: &source,
        schema: Schema::default(),
        relations: BTreeSet::new(),
        chosen_names: BTreeSet::new(),
        statements: BTreeMap::new(),
        blanked: RefCell::new(blanked),
        sequences: BTreeMap::new(),
        identity_names: RefCell::new(
            identity_names
                .into_iter()
                .map(|n| (n.words.start, n.name))
                .collect(),
        ),
        ignored_owners: RefCell::new(Vec::new()),
    };
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token_ref().token == Token::EOF {
            break;
        }
        let start = parser.peek_token_ref().span.start;
        let start_offset = source.offset(start).unwrap_or(0);
        // sqlparser reads no ALTER SEQUENCE; pg_dump writes `OWNED BY` and `OWNER TO`.
        if parser.parse_keywords(&[Keyword::ALTER, Keyword::SEQUENCE]) {
            let parsed =
                alter_sequence(&mut parser).map_err(|e| source.parser_error(e, start_offset))?;
            let end = parser.get_current_token().span.end;
            expect_end(&source, &parser)?;
            let at = source.span(Span::new(start, end));
            builder.alter_sequence(&parsed.0, parsed.1.as_ref(), at)?;
            continue;
        }
        let statement = parser
            .parse_statement()
            .map_err(|e| source.parser_error(e, start_offset))?;
        let end = parser.get_current_token().span.end;
        expect_end(&source, &parser)?;
        builder.statement(statement, source.span(Span::new(start, end)))?;
    }
    builder.finish_sequences()?;
    let notices = owner_notice(&source, &builder.ignored_owners.into_inner())
        .into_iter()
        .collect();
    let mut server_sql = sql.as_bytes().to_vec();
    blank(&mut server_sql, &builder.blanked.into_inner());
    Ok(Manifest {
        schema: builder.schema,
        statements: builder.statements,
        source: Arc::clone(&source.named),
        // Only whole statements and whole `public.` prefixes were blanked: still UTF-8.
        server_sql: String::from_utf8(server_sql).unwrap_or_else(|_| sql.to_owned()),
        notices,
    })
}

/// One notice for every `OWNER TO` the manifest has, with the lines they are on.
fn owner_notice(source: &Source<'_>, owners: &[SourceSpan]) -> Option<String> {
    if owners.is_empty() {
        return None;
    }
    let lines: Vec<String> = owners
        .iter()
        .map(|at| (source.text[..at.offset()].matches('\n').count() + 1).to_string())
        .collect();
    Some(format!(
        "{}: OWNER TO ignored (line{} {}): dbtopo does not manage owners; the objects belong to \
         the user it connects as",
        source.named.name(),
        if lines.len() == 1 { "" } else { "s" },
        lines.join(", ")
    ))
}

/// A statement ends with `;` or the end of the file.
fn expect_end(source: &Source<'_>, parser: &Parser<'_>) -> Result<(), SchemaError> {
    let next = parser.peek_token_ref();
    if matches!(next.token, Token::SemiColon | Token::EOF) {
        return Ok(());
    }
    Err(source.error(
        ErrorKind::Syntax,
        format!("expected `;` after the statement, found `{}`", next.token),
        source.span(next.span),
        "the statement should end before this",
        None,
    ))
}

/// The rest of `ALTER SEQUENCE name { OWNED BY table.column | OWNER TO role }`: the name, and
/// the column for OWNED BY.
fn alter_sequence(
    parser: &mut Parser<'_>,
) -> Result<(ObjectName, Option<ObjectName>), ParserError> {
    let name = parser.parse_object_name(false)?;
    if parser.parse_keywords(&[Keyword::OWNED, Keyword::BY]) {
        let column = parser.parse_object_name(false)?;
        return Ok((name, Some(column)));
    }
    if parser.parse_keywords(&[Keyword::OWNER, Keyword::TO]) {
        parser.parse_identifier()?;
        return Ok((name, None));
    }
    parser.expected(
        "OWNED BY or OWNER TO (the ALTER SEQUENCE pg_dump writes)",
        parser.peek_token(),
    )
}

/// An identity's `SEQUENCE NAME name`, which sqlparser does not read.
struct IdentitySequenceName {
    /// The words `SEQUENCE NAME name`, left out of what sqlparser reads.
    words: Range<usize>,
    /// `public.` before the name, left out of what the server runs.
    public: Option<Range<usize>>,
    name: String,
}

/// Every `SEQUENCE NAME name` of the text (only an identity's options have those words).
fn identity_sequence_names(
    source: &Source<'_>,
    text: &str,
) -> Result<Vec<IdentitySequenceName>, SchemaError> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = sqlparser::tokenizer::Tokenizer::new(&dialect, text).tokenize_with_location()
    else {
        // The parser reports the same problem where it is.
        return Ok(Vec::new());
    };
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let is_word = |at: usize, keyword: Keyword| {
        tokens
            .get(at)
            .is_some_and(|t| matches!(&t.token, Token::Word(w) if w.keyword == keyword))
    };
    let mut found = Vec::new();
    for at in 0..tokens.len() {
        if !(is_word(at, Keyword::SEQUENCE) && is_word(at + 1, Keyword::NAME)) {
            continue;
        }
        let mut parts = Vec::new();
        let mut next = at + 2;
        while let Some(Token::Word(word)) = tokens.get(next).map(|t| &t.token) {
            parts.push((ident(&word.to_ident(tokens[next].span)), tokens[next].span));
            if tokens.get(next + 1).map(|t| &t.token) != Some(&Token::Period) {
                break;
            }
            next += 2;
        }
        let Some(last) = parts.last() else {
            continue;
        };
        let Some(words) = source.range(Span::new(tokens[at].span.start, last.1.end)) else {
            continue;
        };
        let public = match parts.as_slice() {
            [_] => None,
            [(schema, schema_span), (_, name_span)] if schema == MANAGED_SCHEMA => {
                source.range(Span::new(schema_span.start, name_span.start))
            }
            _ => {
                return Err(source.error(
                    ErrorKind::Unsupported,
                    "an identity's sequence in another schema than `public`".to_owned(),
                    source.span(Span::new(parts[0].1.start, last.1.end)),
                    "this sequence",
                    None,
                ));
            }
        };
        found.push(IdentitySequenceName {
            words,
            public,
            name: last.0.clone(),
        });
    }
    Ok(found)
}

/// Replace `ranges` of `text` by spaces, byte for byte, keeping line breaks so that offsets
/// and line numbers stay those of the file.
fn blank(text: &mut [u8], ranges: &[Range<usize>]) {
    for range in ranges {
        let end = range.end.min(text.len());
        for byte in &mut text[range.start.min(end)..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
}

/// The `\restrict KEY` and `\unrestrict KEY` lines pg_dump (17.6 and later) writes before its
/// first statement and after its last: psql commands that keep a restored dump from running
/// other backslash commands, not SQL, and without effect on the tables. Only there, among
/// blank and `--` comment lines; a backslash anywhere else stays a syntax error.
fn psql_restrict_lines(text: &str) -> Vec<Range<usize>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        lines.push((start..start + line.len(), line.trim()));
        start += line.len();
    }
    let is_restrict = |line: &str| {
        let mut words = line.split_whitespace();
        matches!(words.next(), Some("\\restrict" | "\\unrestrict"))
            && words
                .next()
                .is_some_and(|key| key.chars().all(|c| c.is_ascii_alphanumeric()))
            && words.next().is_none()
    };
    let filler = |line: &str| line.is_empty() || line.starts_with("--");
    let mut found = Vec::new();
    let leading = lines
        .iter()
        .take_while(|(_, line)| filler(line) || is_restrict(line));
    let trailing = lines
        .iter()
        .rev()
        .take_while(|(_, line)| filler(line) || is_restrict(line));
    for (range, line) in leading.chain(trailing) {
        if is_restrict(line) && !found.contains(range) {
            found.push(range.clone());
        }
    }
    found
}

/// The manifest's text, to turn sqlparser's line/column locations into byte offsets.
struct Source<'a> {
    /// Shared by every error, so an error stays small and the text is copied once.
    named: Arc<NamedSource<String>>,
    text: &'a str,
    /// Byte offset where each line starts.
    lines: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(name: &'a str, text: &'a str) -> Self {
        let lines = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let named = Arc::new(NamedSource::new(name, text.to_owned()).with_language("sql"));
        Source { named, text, lines }
    }

    /// Byte offset of a 1-based line and 1-based column counted in characters, as the
    /// tokenizer counts them. None for sqlparser's "unknown" location (line 0).
    fn offset_of(&self, line: u64, column: u64) -> Option<usize> {
        let line_index = usize::try_from(line.checked_sub(1)?).ok()?;
        let start = *self.lines.get(line_index)?;
        let end = self
            .lines
            .get(line_index + 1)
            .map_or(self.text.len(), |next| next - 1);
        let line_text = self.text.get(start..end)?;
        let column = usize::try_from(column.saturating_sub(1)).ok()?;
        let within = line_text
            .char_indices()
            .nth(column)
            .map_or(line_text.len(), |(i, _)| i);
        Some(start + within)
    }

    fn offset(&self, location: Location) -> Option<usize> {
        self.offset_of(location.line, location.column)
    }

    /// The bytes a span covers.
    fn range(&self, span: Span) -> Option<Range<usize>> {
        Some(self.offset(span.start)?..self.offset(span.end)?)
    }

    /// A span as a miette span; an unknown or empty span becomes one character wide.
    fn span(&self, span: Span) -> SourceSpan {
        let Some(start) = self.offset(span.start) else {
            return SourceSpan::from((0, 0));
        };
        let end = self.offset(span.end).unwrap_or(start).max(start);
        self.at(start, end - start)
    }

    /// `len` bytes at `start`, at least one character where the text has one.
    fn at(&self, start: usize, len: usize) -> SourceSpan {
        let start = start.min(self.text.len());
        let len = if len == 0 {
            self.text[start..].chars().next().map_or(0, char::len_utf8)
        } else {
            len
        };
        SourceSpan::from((start, len))
    }

    fn error(
        &self,
        kind: ErrorKind,
        message: impl Into<String>,
        span: SourceSpan,
        label: impl Into<String>,
        help: Option<String>,
    ) -> SchemaError {
        SchemaError {
            kind,
            message: message.into(),
            source_code: Arc::clone(&self.named),
            span,
            label: label.into(),
            help,
        }
    }

    /// sqlparser reports positions only inside its message (`… at Line: 3, Column: 7`): take
    /// them out of the message and into the label. Without one, point at `fallback`.
    fn parser_error(&self, error: ParserError, fallback: usize) -> SchemaError {
        let text = match error {
            ParserError::TokenizerError(text) | ParserError::ParserError(text) => text,
            ParserError::RecursionLimitExceeded => "the statement is nested too deeply".into(),
        };
        let (message, offset) = match split_location(&text) {
            Some((message, line, column)) => (message, self.offset_of(line, column)),
            None => (text.as_str(), None),
        };
        let message = message.trim_end_matches(|c: char| c == ',' || c.is_whitespace());
        let start = offset.unwrap_or(fallback).min(self.text.len());
        // Cover the whole word sqlparser stopped at, not just its first character.
        let word = self.text[start..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(self.text.len() - start);
        self.error(
            ErrorKind::Syntax,
            format!("invalid SQL: {message}"),
            self.at(start, word),
            "here",
            None,
        )
    }
}

/// `("message", line, column)` from `"message at Line: 3, Column: 7"`.
fn split_location(text: &str) -> Option<(&str, u64, u64)> {
    let at = text.rfind(" at Line: ")?;
    let (line, column) = text[at + " at Line: ".len()..].split_once(", Column: ")?;
    Some((
        &text[..at],
        line.trim().parse().ok()?,
        column.trim().parse().ok()?,
    ))
}

/// The schema unqualified names land in, the only one a manifest describes.
const MANAGED_SCHEMA: &str = "public";

/// The first `count` words of a statement, to name it in a message.
fn first_words(statement: &impl std::fmt::Display, count: usize) -> String {
    statement
        .to_string()
        .split_whitespace()
        .take(count)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `SET name = value` (pg_dump's preamble) leaves the manifest's tables as they would
/// be without it, so that it can be ignored. The timeouts, messages, row security and
/// function-body checks only change how the session runs. The others change what the
/// statements mean unless they hold the value dbtopo assumes anyway: the manifest is read as
/// UTF-8 with standard strings, XML values are content, tables go to the database's default
/// tablespace as heap tables, and names resolve in `public` (an empty search_path, as pg_dump
/// sets it, is fine because every name it writes is qualified).
fn ignored_setting(name: &str, value: &str) -> bool {
    match name {
        "statement_timeout"
        | "lock_timeout"
        | "idle_in_transaction_session_timeout"
        | "transaction_timeout"
        | "client_min_messages"
        | "row_security"
        | "check_function_bodies" => true,
        "client_encoding" => matches!(value, "utf8" | "utf-8" | "unicode"),
        "standard_conforming_strings" => matches!(value, "on" | "true"),
        "xmloption" => value == "content",
        "default_tablespace" => value.is_empty(),
        "default_table_access_method" => value == "heap",
        "default_with_oids" => matches!(value, "off" | "false"),
        "search_path" => matches!(value, "" | "public"),
        _ => false,
    }
}

/// A SET's single value, lowercased, quotes removed; None for a list or an expression.
fn setting_value(values: &[Expr]) -> Option<String> {
    let [value] = values else { return None };
    let text = match value {
        Expr::Value(value) => match &value.value {
            sql::Value::SingleQuotedString(text) => text.clone(),
            sql::Value::Number(number, _) => number.to_string(),
            sql::Value::Boolean(on) => on.to_string(),
            _ => return None,
        },
        Expr::Identifier(name) => name.value.clone(),
        _ => return None,
    };
    Some(text.to_ascii_lowercase())
}

/// `SELECT [pg_catalog.]set_config('search_path', '', false)`, pg_dump's way of emptying the
/// search path for its session. Compared in sqlparser's own spelling of the parsed query.
fn is_set_config(query: &sql::Query) -> bool {
    matches!(
        query.to_string().as_str(),
        "SELECT pg_catalog.set_config('search_path', '', false)"
            | "SELECT set_config('search_path', '', false)"
    )
}

/// PostgreSQL's identifier folding: unquoted names are lowercased, quoted ones kept.
fn ident(ident: &Ident) -> String {
    let mut name = match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    };
    // PostgreSQL keeps the first 63 bytes of a longer name, whole characters only.
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// A serial column's default, as the server prints it.
fn nextval(sequence: &str) -> String {
    format!("nextval({}::regclass)", ddl::literal(&ddl::quote(sequence)))
}

/// The sequence `nextval('[public.]name'[::regclass])` names, and where its `public.` is
/// written (the literal's start and the prefix's length), or `None` for any other expression.
fn nextval_argument(expr: &Expr) -> Option<(String, Option<Span>)> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let names: Vec<String> = function
        .name
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(name) => Some(ident(name)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if !matches!(names.as_slice(), [f] | [_, f] if f == "nextval")
        || (names.len() == 2 && names[0] != "pg_catalog")
    {
        return None;
    }
    let sql::FunctionArguments::List(list) = &function.args else {
        return None;
    };
    let [sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(argument))] = list.args.as_slice()
    else {
        return None;
    };
    let literal = match argument {
        Expr::Cast {
            expr, data_type, ..
        } if matches!(data_type, sql::DataType::Regclass)
            || data_type.to_string().eq_ignore_ascii_case("regclass") =>
        {
            expr.as_ref()
        }
        other => other,
    };
    let Expr::Value(value) = literal else {
        return None;
    };
    let sql::Value::SingleQuotedString(text) = &value.value else {
        return None;
    };
    let parts = split_qualified(text)?;
    match parts.as_slice() {
        [name] => Some((name.clone(), None)),
        [schema, name] if schema == MANAGED_SCHEMA => {
            let start = value.span.start;
            // After the opening quote, `public.` as written (unquoted, 7 characters).
            let prefix_start = Location::new(start.line, start.column + 1);
            let prefix_end = Location::new(start.line, start.column + 1 + 7);
            let public = text
                .starts_with("public.")
                .then(|| Span::new(prefix_start, prefix_end));
            Some((name.clone(), public))
        }
        _ => None,
    }
}

/// `a.b` or `"A"."b"` as PostgreSQL reads a qualified name in a string, names folded.
fn split_qualified(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    loop {
        let (part, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted[..end].to_owned(), &quoted[end + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (rest[..end].trim().to_ascii_lowercase(), &rest[end..])
        };
        parts.push(part);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.trim().is_empty() => return Some(parts),
            None => return None,
        }
    }
}

/// What a PRIMARY KEY or UNIQUE may say besides its columns.
struct KeyExtras<'a> {
    index_name: bool,
    index_type: bool,
    index_options: bool,
    include: &'a [Ident],
    nulls_not_distinct: bool,
    characteristics: Option<&'a sql::ConstraintCharacteristics>,
}

impl<'a> KeyExtras<'a> {
    fn primary_key(key: &'a sql::PrimaryKeyConstraint) -> Self {
        KeyExtras {
            index_name: key.index_name.is_some(),
            index_type: key.index_type.is_some(),
            index_options: !key.index_options.is_empty(),
            include: &key.include,
            nulls_not_distinct: false,
            characteristics: key.characteristics.as_ref(),
        }
    }

    fn unique(key: &'a sql::UniqueConstraint) -> Self {
        KeyExtras {
            index_name: key.index_name.is_some(),
            index_type: key.index_type.is_some(),
            index_options: !key.index_options.is_empty(),
            include: &key.include,
            nulls_not_distinct: matches!(key.nulls_distinct, sql::NullsDistinctOption::NotDistinct),
            characteristics: key.characteristics.as_ref(),
        }
    }
}

/// A sequence written with CREATE SEQUENCE, until the column that owns it is known.
struct WrittenSequence {
    values: SequenceValues,
    data_type: String,
    at: SourceSpan,
    /// `ALTER SEQUENCE … OWNED BY table.column`.
    owner: Option<(String, String)>,
    /// The columns whose default takes values from it, and where.
    used_by: Vec<(String, String, SourceSpan)>,
}

/// A constraint as written, before it gets its final name.
struct Pending<T> {
    name: Option<String>,
    at: SourceSpan,
    constraint: T,
}

/// A constraint's definition without its name.
enum Definition {
    /// The key's columns, and its definition when it says more than they do (INCLUDE,
    /// NULLS NOT DISTINCT, DEFERRABLE).
    PrimaryKey(Vec<String>, Option<String>),
    /// Also the INCLUDE columns, which PostgreSQL names an unnamed key after too.
    Unique(Vec<String>, Option<String>, Vec<String>),
    ForeignKey(Box<ForeignKey>),
    /// The condition's text, the identifiers in it (which decide the default name), and
    /// whether it is NO INHERIT.
    Check(String, Vec<String>, bool),
    /// EXCLUDE as written after its name, and the names of its columns (which decide the
    /// default name).
    Exclusion(String, Vec<String>),
}

struct Builder<'a> {
    source: &'a Source<'a>,
    schema: Schema,
    /// Names of tables and indexes (including those of keys): PostgreSQL keeps them in one
    /// namespace, pg_class.
    relations: BTreeSet<String>,
    /// Every name taken by a relation or constraint, where PostgreSQL's generated names must
    /// not collide.
    chosen_names: BTreeSet<String>,
    statements: BTreeMap<String, SourceSpan>,
    /// Byte ranges left out of [`Manifest::server_sql`].
    blanked: RefCell<Vec<Range<usize>>>,
    /// Sequences made by CREATE SEQUENCE, by name.
    sequences: BTreeMap<String, WrittenSequence>,
    /// `SEQUENCE NAME` of identities (which sqlparser does not read), by the offset of the
    /// words: taken by the identity whose statement holds them.
    identity_names: RefCell<Vec<(usize, String)>>,
    /// `OWNER TO` statements, ignored.
    ignored_owners: RefCell<Vec<SourceSpan>>,
}

impl Builder<'_> {
    fn error(
        &self,
        kind: ErrorKind,
        message: impl Into<String>,
        at: SourceSpan,
        label: impl Into<String>,
    ) -> SchemaError {
        self.source.error(kind, message, at, label, None)
    }

    fn span(&self, span: Span) -> SourceSpan {
        self.source.span(span)
    }

    fn statement(&mut self, statement: Statement, at: SourceSpan) -> Result<(), SchemaError> {
        match statement {
            Statement::CreateTable(create) => {
                let name = self.create_table(create, at)?;
                self.statements.insert(format!("table {name}"), at);
                Ok(())
            }
            Statement::CreateIndex(create) => {
                let name = self.create_index(create, at)?;
                self.statements.insert(format!("index {name}"), at);
                Ok(())
            }
            Statement::AlterTable(alter) => self.alter_table(alter, at),
            Statement::CreateSequence {
                temporary: false,
                if_not_exists: false,
                name,
                sequence_options,
            } => self.create_sequence(&name, &sequence_options, at),
            Statement::Comment {
                object_type,
                object_name,
                comment,
                if_exists: false,
            } => self.comment(object_type, &object_name, comment, at),
            Statement::AlterSchema(alter)
                if alter
                    .operations
                    .iter()
                    .all(|op| matches!(op, AlterSchemaOperation::OwnerTo { .. })) =>
            {
                match alter.name.0.as_slice() {
                    [ObjectNamePart::Identifier(name)] if ident(name) == MANAGED_SCHEMA => {
                        self.ignore_owner(at);
                        Ok(())
                    }
                    _ => Err(self.other_schema(&alter.name, self.span(alter.name.span()))),
                }
            }
            Statement::Set(set) => {
                let (name, value) = match &set {
                    sql::Set::SingleAssignment {
                        variable, values, ..
                    } => (
                        variable.to_string().to_ascii_lowercase(),
                        setting_value(values),
                    ),
                    _ => (String::new(), None),
                };
                self.setting(&name, value.as_deref(), at)
            }
            Statement::Query(query) if is_set_config(&query) => {
                // pg_dump's `SELECT pg_catalog.set_config('search_path', '', false)`.
                self.ignore(at);
                Ok(())
            }
            other => {
                let first_words = first_words(&other, 2);
                Err(self.source.error(
                    ErrorKind::Unsupported,
                    format!("`{first_words}` cannot be used in a schema manifest"),
                    at,
                    "not a table, an index or a constraint",
                    Some(
                        "a manifest declares the desired tables with CREATE TABLE, CREATE INDEX \
                         and ALTER TABLE … ADD CONSTRAINT (pg_dump's SET, set_config and OWNER \
                         TO lines are ignored); dbtopo works out the changes. Other objects \
                         (views, functions, triggers, sequences, types) are not managed: see \
                         docs/schema.md"
                            .into(),
                    ),
                ))
            }
        }
    }

    /// `WITH (name = value, …)` of CREATE TABLE as the catalog's `reloptions` print it
    /// (`fillfactor=70`); any other table option is refused.
    fn storage_parameters(
        &self,
        options: &sql::CreateTableOptions,
        at: SourceSpan,
    ) -> Result<Vec<String>, SchemaError> {
        let refused = |what: String| {
            self.error(
                ErrorKind::Unsupported,
                format!("`{what}` is not supported on a table in a schema manifest"),
                at,
                "this table",
            )
        };
        match options {
            sql::CreateTableOptions::None => Ok(Vec::new()),
            sql::CreateTableOptions::With(options) => options
                .iter()
                .map(|option| match option {
                    sql::SqlOption::KeyValue { key, value } => {
                        let value = match value {
                            Expr::Value(v) => match &v.value {
                                sql::Value::SingleQuotedString(text) => text.clone(),
                                other => other.to_string(),
                            },
                            Expr::Identifier(word) => word.value.clone(),
                            other => other.to_string(),
                        };
                        Ok(format!(
                            "{}={}",
                            key.to_string().to_ascii_lowercase(),
                            value.to_ascii_lowercase()
                        ))
                    }
                    other => Err(refused(format!("WITH ({other})"))),
                })
                .collect(),
            other => Err(refused(other.to_string())),
        }
    }

    /// `COLLATE name`, as `quote_ident` writes the name; a collation of another schema
    /// than `pg_catalog` is refused.
    fn collation(&self, name: &ObjectName, at: SourceSpan) -> Result<String, SchemaError> {
        let parts: Vec<&Ident> = name
            .0
            .iter()
            .filter_map(|part| match part {
                ObjectNamePart::Identifier(ident) => Some(ident),
                _ => None,
            })
            .collect();
        match parts.as_slice() {
            [collation] => Ok(ddl::quote(&ident(collation))),
            [schema, collation] if ident(schema) == "pg_catalog" => {
                Ok(ddl::quote(&ident(collation)))
            }
            _ => Err(self.error(
                ErrorKind::Unsupported,
                format!("collation `{name}` is not one of PostgreSQL's own"),
                at,
                "this collation",
            )),
        }
    }

    /// A column default. `nextval('sequence')` must name a sequence the manifest creates for
    /// the column (a serial column as pg_dump writes it): it is spelled as the server prints
    /// it, and the column is recorded as using that sequence.
    fn default_expression(
        &mut self,
        table: &str,
        column: &str,
        expr: &Expr,
        at: SourceSpan,
    ) -> Result<String, SchemaError> {
        let Some((sequence, public)) = nextval_argument(expr) else {
            return Ok(expr.to_string());
        };
        if let Some(range) = public.and_then(|span| self.source.range(span)) {
            self.blanked.borrow_mut().push(range);
        }
        let Some(found) = self.sequences.get_mut(&sequence) else {
            return Err(self.source.error(
                ErrorKind::Unsupported,
                format!("`{expr}`: sequence `{sequence}` is not created above"),
                at,
                "this default",
                Some(
                    "a column may take its values from a sequence the manifest creates for it \
                     (serial, or CREATE SEQUENCE … OWNED BY the column); other sequences are \
                     not managed"
                        .into(),
                ),
            ));
        };
        found
            .used_by
            .push((table.to_owned(), column.to_owned(), at));
        Ok(nextval(&sequence))
    }

    /// The sequence of an identity column, with the options written for it.
    fn identity_sequence(
        &mut self,
        table: &str,
        column: &Column,
        options: &[sql::SequenceOptions],
        at: SourceSpan,
    ) -> Result<Sequence, SchemaError> {
        let (values, data_type) = self.sequence_values(options, at)?;
        if data_type.is_some() {
            return Err(self.error(
                ErrorKind::Unsupported,
                "an identity's sequence has its column's type",
                at,
                "AS type",
            ));
        }
        let at_end = at.offset() + at.len();
        let written = {
            let mut names = self.identity_names.borrow_mut();
            let found = names
                .iter()
                .position(|(offset, _)| (at.offset()..at_end).contains(offset));
            found.map(|index| names.remove(index).1)
        };
        let name = match written {
            Some(name) => {
                self.chosen_names.insert(name.clone());
                name
            }
            None => naming::choose(&mut self.chosen_names, table, Some(&column.name), "seq"),
        };
        self.relations.insert(name.clone());
        Ok(Sequence::new(
            name,
            &column.data_type,
            &column.data_type,
            values,
        ))
    }

    /// CREATE SEQUENCE or identity options, and the `AS type` when written.
    fn sequence_values(
        &self,
        options: &[sql::SequenceOptions],
        at: SourceSpan,
    ) -> Result<(SequenceValues, Option<String>), SchemaError> {
        use sql::SequenceOptions as O;
        let number = |expr: &Expr| -> Result<i64, SchemaError> {
            let text = expr.to_string().replace(' ', "");
            text.parse().map_err(|_| {
                self.error(
                    ErrorKind::Unsupported,
                    format!("`{expr}` is not a whole number"),
                    at,
                    "in these sequence options",
                )
            })
        };
        let mut values = SequenceValues::default();
        let mut data_type = None;
        for option in options {
            match option {
                O::IncrementBy(by, _) => values.increment = number(by)?,
                O::MinValue(min) => values.min = min.as_ref().map(number).transpose()?,
                O::MaxValue(max) => values.max = max.as_ref().map(number).transpose()?,
                O::StartWith(start, _) => values.start = Some(number(start)?),
                O::Cache(cache) => values.cache = number(cache)?,
                O::Cycle(no) => values.cycle = !no,
                O::DataType(written) => {
                    data_type = Some(types::canonical(written).map_err(|types::TypeError(t)| {
                        self.error(ErrorKind::Unsupported, t, at, "this sequence's type")
                    })?)
                }
                other => {
                    return Err(self.error(
                        ErrorKind::Unsupported,
                        format!(
                            "sequence option `{}` is not supported",
                            other.to_string().trim()
                        ),
                        at,
                        "in these sequence options",
                    ));
                }
            }
        }
        Ok((values, data_type))
    }

    /// No table, index or sequence is named `name` yet (they share one namespace).
    fn name_free(&self, name: &str, span: Span) -> Result<(), SchemaError> {
        if self.relations.contains(name) {
            return Err(self.error(
                ErrorKind::Duplicate,
                format!("relation `{name}` is already defined"),
                self.span(span),
                "name already taken",
            ));
        }
        Ok(())
    }

    /// `CREATE SEQUENCE`: kept until a column owns it and takes its values from it.
    fn create_sequence(
        &mut self,
        name: &ObjectName,
        options: &[sql::SequenceOptions],
        at: SourceSpan,
    ) -> Result<(), SchemaError> {
        let (sequence, span) = self.object_name(name, at)?;
        self.name_free(&sequence, span)?;
        let (values, data_type) = self.sequence_values(options, at)?;
        self.relations.insert(sequence.clone());
        self.chosen_names.insert(sequence.clone());
        self.sequences.insert(
            sequence,
            WrittenSequence {
                values,
                // CREATE SEQUENCE makes a bigint sequence unless told otherwise.
                data_type: data_type.unwrap_or_else(|| "bigint".to_owned()),
                at,
                owner: None,
                used_by: Vec::new(),
            },
        );
        Ok(())
    }

    /// Attach each sequence the manifest created to the column that owns it and takes its
    /// values from it; a sequence that is not both is refused.
    fn finish_sequences(&mut self) -> Result<(), SchemaError> {
        for (name, sequence) in std::mem::take(&mut self.sequences) {
            let refused = |why: String| {
                self.source.error(
                    ErrorKind::Unsupported,
                    format!("sequence `{name}` {why}"),
                    sequence.at,
                    "this sequence",
                    Some(
                        "dbtopo manages a sequence as part of the column that owns it (ALTER \
                         SEQUENCE … OWNED BY table.column) and takes its values from it \
                         (DEFAULT nextval(…)), as serial columns and pg_dump have it; other \
                         sequences are not managed"
                            .into(),
                    ),
                )
            };
            let Some((table, column)) = sequence.owner.clone() else {
                return Err(refused("is not owned by a column".into()));
            };
            if !sequence
                .used_by
                .iter()
                .any(|(t, c, _)| (t, c) == (&table, &column))
            {
                return Err(refused(format!(
                    "is owned by {table}.{column}, whose default does not take values from it"
                )));
            }
            if let Some((t, c, at)) = sequence
                .used_by
                .iter()
                .find(|(t, c, _)| (t, c) != (&table, &column))
            {
                return Err(self.error(
                    ErrorKind::Unsupported,
                    format!("{t}.{c} takes values from `{name}`, which {table}.{column} owns"),
                    *at,
                    "this default",
                ));
            }
            let column = self
                .schema
                .tables
                .get_mut(&table)
                .and_then(|t| t.columns.iter_mut().find(|c| c.name == column))
                .expect("owner checked when written");
            column.sequence = Some(Sequence::new(
                name,
                &column.data_type,
                &sequence.data_type,
                sequence.values,
            ));
        }
        Ok(())
    }

    /// `COMMENT ON TABLE t` or `COMMENT ON COLUMN t.c`, on a table created above.
    fn comment(
        &mut self,
        object_type: sql::CommentObject,
        name: &ObjectName,
        comment: Option<String>,
        at: SourceSpan,
    ) -> Result<(), SchemaError> {
        let (table_name, column) = match object_type {
            sql::CommentObject::Table => (self.object_name(name, at)?.0, None),
            sql::CommentObject::Column => {
                let mut parts = name.0.clone();
                let Some(ObjectNamePart::Identifier(column)) = parts.pop() else {
                    return Err(self.error(ErrorKind::Syntax, "expected table.column", at, "here"));
                };
                (
                    self.object_name(&ObjectName(parts), at)?.0,
                    Some(ident(&column)),
                )
            }
            other => {
                return Err(self.error(
                    ErrorKind::Unsupported,
                    format!("comments on a {other} are not managed"),
                    at,
                    "not a table or column comment",
                ));
            }
        };
        let Some(table) = self.schema.tables.get_mut(&table_name) else {
            return Err(self.error(
                ErrorKind::UnknownTable,
                format!("COMMENT ON unknown table `{table_name}`"),
                at,
                "no table of this name is created above",
            ));
        };
        // An empty comment is no comment, as PostgreSQL has it.
        let comment = comment.filter(|text| !text.is_empty());
        match column {
            None => table.properties.comment = comment,
            Some(column) => match table.columns.iter_mut().find(|c| c.name == column) {
                Some(found) => found.comment = comment,
                None => {
                    return Err(self.error(
                        ErrorKind::UnknownColumn,
                        format!("table `{table_name}` has no column `{column}`"),
                        at,
                        "in this comment",
                    ));
                }
            },
        }
        Ok(())
    }

    /// `ALTER SEQUENCE name OWNED BY table.column` (the column the sequence belongs to) or
    /// `OWNER TO role` (ignored, as for tables).
    fn alter_sequence(
        &mut self,
        name: &ObjectName,
        owned_by: Option<&ObjectName>,
        at: SourceSpan,
    ) -> Result<(), SchemaError> {
        let (sequence, span) = self.object_name(name, at)?;
        let Some(owned_by) = owned_by else {
            self.ignore_owner(at);
            return Ok(());
        };
        if !self.sequences.contains_key(&sequence) {
            return Err(self.error(
                ErrorKind::UnknownTable,
                format!("ALTER SEQUENCE of unknown sequence `{sequence}`"),
                self.span(span),
                "no sequence of this name is created above",
            ));
        }
        let mut parts = owned_by.0.clone();
        let Some(ObjectNamePart::Identifier(column)) = parts.pop() else {
            return Err(self.error(ErrorKind::Syntax, "expected table.column", at, "here"));
        };
        let column = ident(&column);
        let (table, _) = self.object_name(&ObjectName(parts), at)?;
        if self
            .schema
            .tables
            .get(&table)
            .and_then(|t| t.column(&column))
            .is_none()
        {
            return Err(self.error(
                ErrorKind::UnknownColumn,
                format!("no column `{table}.{column}` is created above"),
                at,
                "OWNED BY",
            ));
        }
        if let Some(found) = self.sequences.get_mut(&sequence) {
            found.owner = Some((table, column));
        }
        Ok(())
    }

    /// Leave an `OWNER TO` statement out of what the server runs, and say so.
    fn ignore_owner(&self, at: SourceSpan) {
        self.ignore(at);
        self.ignored_owners.borrow_mut().push(at);
    }

    /// Leave the statement at `at` out of what the server runs.
    fn ignore(&self, at: SourceSpan) {
        self.blanked
            .borrow_mut()
            .push(at.offset()..at.offset() + at.len());
    }

    /// A session setting pg_dump writes: accepted when it cannot change the tables (see
    /// [`ignored_setting`]), refused otherwise.
    fn setting(&self, name: &str, value: Option<&str>, at: SourceSpan) -> Result<(), SchemaError> {
        if value.is_some_and(|value| ignored_setting(name, value)) {
            self.ignore(at);
            return Ok(());
        }
        Err(self.source.error(
            ErrorKind::Unsupported,
            "this setting can change the schema the manifest makes",
            at,
            "not a setting dbtopo can ignore",
            Some(
                "a manifest may set only what pg_dump writes before its tables \
                 (statement_timeout, client_encoding = 'UTF8', standard_conforming_strings = on, \
                 default_tablespace = '', default_table_access_method = heap, …); remove it"
                    .into(),
            ),
        ))
    }

    fn other_schema(&self, name: &ObjectName, at: SourceSpan) -> SchemaError {
        self.source.error(
            ErrorKind::Unsupported,
            format!("`{name}`: dbtopo manages only the `public` schema"),
            at,
            "schema",
            Some(
                "the manifest describes the `public` schema of the target database; write \
                 the name unqualified or qualified with `public.`"
                    .into(),
            ),
        )
    }

    /// `ALTER TABLE [ONLY] t ADD CONSTRAINT …` is folded into `t` as if written in its CREATE
    /// TABLE; `OWNER TO` is ignored (dbtopo does not manage owners). Anything else would
    /// change a table after its definition, which a manifest states whole.
    fn alter_table(&mut self, alter: AlterTable, at: SourceSpan) -> Result<(), SchemaError> {
        let (table_name, name_span) = self.object_name(&alter.name, at)?;
        if alter.table_type.is_some() || alter.if_exists || alter.on_cluster.is_some() {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!(
                    "`{}` is not supported in a schema manifest",
                    first_words(&alter, 4)
                ),
                at,
                "this statement",
            ));
        }
        if !self.schema.tables.contains_key(&table_name) {
            return Err(self.error(
                ErrorKind::UnknownTable,
                format!("ALTER TABLE of unknown table `{table_name}`"),
                self.span(name_span),
                "no table of this name is created above",
            ));
        }
        let mut pending = Vec::new();
        let mut owner_only = true;
        let mut others = 0;
        for operation in &alter.operations {
            match operation {
                AlterTableOperation::OwnerTo { .. } => {}
                AlterTableOperation::AddConstraint {
                    constraint,
                    not_valid: false,
                } => {
                    owner_only = false;
                    pending.push(self.table_constraint(&table_name, constraint, at)?);
                }
                AlterTableOperation::EnableRowLevelSecurity
                | AlterTableOperation::DisableRowLevelSecurity
                | AlterTableOperation::ForceRowLevelSecurity
                | AlterTableOperation::NoForceRowLevelSecurity => {
                    owner_only = false;
                    others += 1;
                    let properties = &mut self
                        .schema
                        .tables
                        .get_mut(&table_name)
                        .expect("checked above")
                        .properties;
                    match operation {
                        AlterTableOperation::EnableRowLevelSecurity => {
                            properties.row_security = true
                        }
                        AlterTableOperation::DisableRowLevelSecurity => {
                            properties.row_security = false
                        }
                        AlterTableOperation::ForceRowLevelSecurity => {
                            properties.force_row_security = true
                        }
                        _ => properties.force_row_security = false,
                    }
                }
                AlterTableOperation::AlterColumn { column_name, op }
                    if matches!(
                        op,
                        sql::AlterColumnOperation::SetDefault { .. }
                            | sql::AlterColumnOperation::AddGenerated { .. }
                    ) =>
                {
                    owner_only = false;
                    others += 1;
                    self.alter_column(&table_name, &ident(column_name), op, at)?;
                }
                other => {
                    return Err(self.source.error(
                        ErrorKind::Unsupported,
                        format!("dbtopo does not manage `ALTER TABLE … {other}`"),
                        at,
                        "not ADD CONSTRAINT or OWNER TO",
                        Some(
                            "a manifest states each table whole: write this in the table's \
                             CREATE TABLE; ALTER TABLE may only add constraints (and name an \
                             owner, which is ignored)"
                                .into(),
                        ),
                    ));
                }
            }
        }
        let owners = alter.operations.len() - pending.len() - others;
        if owner_only {
            self.ignore_owner(at);
        } else if owners > 0 {
            return Err(self.error(
                ErrorKind::Unsupported,
                "OWNER TO goes in an ALTER TABLE of its own, as pg_dump writes it",
                at,
                "this statement",
            ));
        }
        let mut table = self
            .schema
            .tables
            .remove(&table_name)
            .expect("checked above");
        let result = self.constrain(&mut table, pending, false);
        self.schema.tables.insert(table_name, table);
        result
    }

    /// `ALTER COLUMN … SET DEFAULT` and `… ADD GENERATED … AS IDENTITY`, as pg_dump writes
    /// serial and identity columns after their table.
    fn alter_column(
        &mut self,
        table_name: &str,
        column_name: &str,
        op: &sql::AlterColumnOperation,
        at: SourceSpan,
    ) -> Result<(), SchemaError> {
        let Some(column) = self.schema.tables[table_name].column(column_name).cloned() else {
            return Err(self.error(
                ErrorKind::UnknownColumn,
                format!("table `{table_name}` has no column `{column_name}`"),
                at,
                "in this statement",
            ));
        };
        if column.default.is_some() || column.identity.is_some() || column.generated.is_some() {
            return Err(self.error(
                ErrorKind::Invalid,
                format!("column `{column_name}` has more than one default"),
                at,
                "this column",
            ));
        }
        let mut column = column;
        match op {
            sql::AlterColumnOperation::SetDefault { value } => {
                column.default =
                    Some(self.default_expression(table_name, column_name, value, at)?);
            }
            sql::AlterColumnOperation::AddGenerated {
                generated_as,
                sequence_options,
            } => {
                if !matches!(column.data_type.as_str(), "smallint" | "integer" | "bigint") {
                    return Err(self.error(
                        ErrorKind::Invalid,
                        format!(
                            "identity column `{column_name}` must be smallint, integer or bigint"
                        ),
                        at,
                        "this column",
                    ));
                }
                column.identity = Some(match generated_as {
                    Some(GeneratedAs::ByDefault) => Identity::ByDefault,
                    _ => Identity::Always,
                });
                column.not_null = true;
                column.sequence = Some(self.identity_sequence(
                    table_name,
                    &column,
                    sequence_options.as_deref().unwrap_or_default(),
                    at,
                )?);
            }
            _ => unreachable!("only SET DEFAULT and ADD GENERATED come here"),
        }
        let table = self
            .schema
            .tables
            .get_mut(table_name)
            .expect("checked above");
        if let Some(found) = table.columns.iter_mut().find(|c| c.name == column_name) {
            *found = column;
        }
        Ok(())
    }

    /// The table or index name without the optional `public.` schema.
    fn object_name(
        &self,
        name: &ObjectName,
        at: SourceSpan,
    ) -> Result<(String, Span), SchemaError> {
        let parts: Vec<&Ident> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => Some(ident),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| {
                self.error(
                    ErrorKind::Unsupported,
                    "unsupported object name",
                    at,
                    "here",
                )
            })?;
        match parts.as_slice() {
            [name] => Ok((ident(name), name.span)),
            [schema, table] if ident(schema) == MANAGED_SCHEMA => {
                // `public.` is left out of the scratch run, where it would bypass the scratch
                // schema; the name is the same table as unqualified.
                let (Some(start), Some(end)) = (
                    self.source.offset(schema.span.start),
                    self.source.offset(table.span.start),
                ) else {
                    return Err(self.error(ErrorKind::Unsupported, "unsupported name", at, "here"));
                };
                self.blanked.borrow_mut().push(start..end);
                Ok((ident(table), table.span))
            }
            _ => Err(self.other_schema(
                name,
                self.span(parts.first().map_or(Span::empty(), |p| p.span)),
            )),
        }
    }

    fn create_table(&mut self, create: CreateTable, at: SourceSpan) -> Result<String, SchemaError> {
        let (table_name, name_span) = self.object_name(&create.name, at)?;
        let name_at = self.span(name_span);
        let unsupported = [
            (create.or_replace, "OR REPLACE"),
            (create.temporary, "TEMPORARY"),
            (create.external, "EXTERNAL"),
            (create.query.is_some(), "AS SELECT"),
            (create.like.is_some(), "LIKE"),
            (create.clone.is_some(), "CLONE"),
            (create.inherits.is_some(), "INHERITS"),
            (create.partition_by.is_some(), "PARTITION BY"),
            (create.partition_of.is_some(), "PARTITION OF"),
            (create.on_commit.is_some(), "ON COMMIT"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(used, _)| *used) {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!("CREATE TABLE … {what} is not supported in a schema manifest"),
                at,
                "this table",
            ));
        }
        if self.schema.tables.contains_key(&table_name) || self.relations.contains(&table_name) {
            return Err(self.error(
                ErrorKind::Duplicate,
                format!("relation `{table_name}` is already defined"),
                name_at,
                "defined twice",
            ));
        }
        let properties = TableProperties {
            unlogged: create.unlogged,
            options: self.storage_parameters(&create.table_options, at)?,
            ..TableProperties::default()
        };
        if create.columns.is_empty() {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!("table `{table_name}` has no columns"),
                at,
                "this table",
            ));
        }

        let mut columns: Vec<Column> = Vec::new();
        let mut pending: Vec<Pending<Definition>> = Vec::new();
        for def in &create.columns {
            let name = ident(&def.name);
            let column_at = self.span(def.name.span);
            if columns.iter().any(|c| c.name == name) {
                return Err(self.error(
                    ErrorKind::Duplicate,
                    format!("column `{name}` is defined twice in table `{table_name}`"),
                    column_at,
                    "second definition",
                ));
            }
            let serial = types::serial(&def.data_type);
            let data_type = match serial {
                Some(integer) => integer.to_owned(),
                None => types::canonical(&def.data_type).map_err(|types::TypeError(text)| {
                    self.error(
                        ErrorKind::Unsupported,
                        text,
                        column_at,
                        "this column's type",
                    )
                })?,
            };
            let mut column = Column {
                name: name.clone(),
                data_type,
                ..Column::default()
            };
            if serial.is_some() {
                // `serial`: NOT NULL, and a default taking values from a sequence of its own.
                let sequence =
                    naming::choose(&mut self.chosen_names, &table_name, Some(&name), "seq");
                self.relations.insert(sequence.clone());
                column.not_null = true;
                column.default = Some(nextval(&sequence));
                column.sequence = Some(Sequence::new(
                    sequence,
                    &column.data_type,
                    &column.data_type,
                    SequenceValues::default(),
                ));
            }
            let mut nullable = false;
            for option in &def.options {
                let constraint_name = option.name.as_ref().map(ident);
                let pending_at = |definition| Pending {
                    name: constraint_name.clone(),
                    at: column_at,
                    constraint: definition,
                };
                match &option.option {
                    ColumnOption::Null => nullable = true,
                    ColumnOption::NotNull => column.not_null = true,
                    ColumnOption::Default(expr) => {
                        if column.default.is_some() || column.identity.is_some() {
                            return Err(self.error(
                                ErrorKind::Invalid,
                                format!("column `{name}` has more than one default"),
                                column_at,
                                "this column",
                            ));
                        }
                        column.default =
                            Some(self.default_expression(&table_name, &name, expr, column_at)?);
                    }
                    ColumnOption::Collation(collation) => {
                        column.collation = Some(self.collation(collation, column_at)?);
                    }
                    ColumnOption::Generated {
                        generation_expr: Some(expr),
                        generation_expr_mode,
                        ..
                    } => {
                        if !matches!(generation_expr_mode, Some(GeneratedExpressionMode::Stored)) {
                            return Err(self.error(
                                ErrorKind::Unsupported,
                                format!("generated column `{name}` must be STORED"),
                                column_at,
                                "this column",
                            ));
                        }
                        if column.default.is_some() || column.identity.is_some() {
                            return Err(self.error(
                                ErrorKind::Invalid,
                                format!("column `{name}` has more than one default"),
                                column_at,
                                "this column",
                            ));
                        }
                        column.generated = Some(expr.to_string());
                    }
                    ColumnOption::PrimaryKey(key) => {
                        let columns = vec![name.clone()];
                        let extra = self.key_definition(
                            "PRIMARY KEY",
                            &columns,
                            KeyExtras::primary_key(key),
                            column_at,
                        )?;
                        let mut p = pending_at(Definition::PrimaryKey(columns, extra));
                        p.name = p.name.or(key.name.as_ref().map(ident));
                        pending.push(p);
                    }
                    ColumnOption::Unique(key) => {
                        let columns = vec![name.clone()];
                        let extra = self.key_definition(
                            "UNIQUE",
                            &columns,
                            KeyExtras::unique(key),
                            column_at,
                        )?;
                        let include = key.include.iter().map(ident).collect();
                        let mut p = pending_at(Definition::Unique(columns, extra, include));
                        p.name = p.name.or(key.name.as_ref().map(ident));
                        pending.push(p);
                    }
                    ColumnOption::ForeignKey(fk) => {
                        let mut fk = fk.clone();
                        fk.columns = vec![def.name.clone()];
                        let mut p = self.foreign_key(&table_name, &fk, column_at)?;
                        p.name = constraint_name.clone().or(p.name);
                        pending.push(p);
                    }
                    ColumnOption::Check(check) => {
                        let mut p = self.check(check, column_at);
                        p.name = constraint_name.clone().or(p.name);
                        pending.push(p);
                    }
                    ColumnOption::Generated {
                        generated_as,
                        generation_expr: None,
                        sequence_options,
                        ..
                    } if matches!(generated_as, GeneratedAs::Always | GeneratedAs::ByDefault) => {
                        if column.identity.is_some() || column.default.is_some() {
                            return Err(self.error(
                                ErrorKind::Invalid,
                                format!("column `{name}` has more than one default"),
                                column_at,
                                "this column",
                            ));
                        }
                        column.identity = Some(match generated_as {
                            GeneratedAs::Always => Identity::Always,
                            _ => Identity::ByDefault,
                        });
                        column.sequence = Some(self.identity_sequence(
                            &table_name,
                            &column,
                            sequence_options.as_deref().unwrap_or_default(),
                            at,
                        )?);
                    }
                    other => {
                        return Err(self.error(
                            ErrorKind::Unsupported,
                            format!("column option `{other}` is not supported"),
                            column_at,
                            "this column",
                        ));
                    }
                }
            }
            if nullable && column.not_null {
                return Err(self.error(
                    ErrorKind::Invalid,
                    format!("column `{name}` is declared both NULL and NOT NULL"),
                    column_at,
                    "conflicting NULL/NOT NULL",
                ));
            }
            if column.identity.is_some() {
                if nullable {
                    return Err(self.error(
                        ErrorKind::Invalid,
                        format!("identity column `{name}` cannot be NULL"),
                        column_at,
                        "this column",
                    ));
                }
                if !matches!(column.data_type.as_str(), "smallint" | "integer" | "bigint") {
                    return Err(self.error(
                        ErrorKind::Invalid,
                        format!("identity column `{name}` must be smallint, integer or bigint"),
                        column_at,
                        "this column",
                    ));
                }
                column.not_null = true;
            }
            columns.push(column);
        }

        for constraint in &create.constraints {
            pending.push(self.table_constraint(&table_name, constraint, at)?);
        }

        self.finish_table(table_name, columns, properties, pending)
    }

    fn table_constraint(
        &self,
        table: &str,
        constraint: &TableConstraint,
        at: SourceSpan,
    ) -> Result<Pending<Definition>, SchemaError> {
        // Point at the constraint's name when it has one, else at the constraint.
        let whole = match constraint.span() {
            span if span.start.line == 0 => at,
            span => self.span(span),
        };
        let constraint_at =
            |name: &Option<Ident>| name.as_ref().map_or(whole, |n| self.span(n.span));
        match constraint {
            TableConstraint::PrimaryKey(key) => {
                let at = constraint_at(&key.name);
                let columns = self.key_columns(&key.columns, at)?;
                let extra =
                    self.key_definition("PRIMARY KEY", &columns, KeyExtras::primary_key(key), at)?;
                Ok(Pending {
                    name: key.name.as_ref().map(ident),
                    at,
                    constraint: Definition::PrimaryKey(columns, extra),
                })
            }
            TableConstraint::Unique(key) => {
                let at = constraint_at(&key.name);
                let columns = self.key_columns(&key.columns, at)?;
                let extra = self.key_definition("UNIQUE", &columns, KeyExtras::unique(key), at)?;
                Ok(Pending {
                    name: key.name.as_ref().map(ident),
                    at,
                    constraint: Definition::Unique(
                        columns,
                        extra,
                        key.include.iter().map(ident).collect(),
                    ),
                })
            }
            TableConstraint::ForeignKey(fk) => self.foreign_key(table, fk, constraint_at(&fk.name)),
            TableConstraint::Check(check) => Ok(self.check(check, constraint_at(&check.name))),
            TableConstraint::Exclude(exclude) => {
                let mut written = exclude.clone();
                written.name = None;
                let columns = exclude
                    .elements
                    .iter()
                    .map(|element| {
                        expression_column_name(&element.column.column.expr)
                            .unwrap_or_else(|| "expr".into())
                    })
                    .collect();
                Ok(Pending {
                    name: exclude.name.as_ref().map(ident),
                    at: constraint_at(&exclude.name),
                    constraint: Definition::Exclusion(written.to_string(), columns),
                })
            }
            other => Err(self.error(
                ErrorKind::Unsupported,
                format!("table constraint `{other}` is not supported"),
                at,
                "in this table",
            )),
        }
    }

    /// A PRIMARY KEY's or UNIQUE's definition when it says more than its columns (as
    /// PostgreSQL writes it), `None` when it does not; index names, types and options of
    /// other databases' dialects are refused.
    fn key_definition(
        &self,
        kind: &str,
        columns: &[String],
        extras: KeyExtras<'_>,
        at: SourceSpan,
    ) -> Result<Option<String>, SchemaError> {
        if extras.index_name || extras.index_type || extras.index_options {
            return Err(self.error(
                ErrorKind::Unsupported,
                format!("index names, types and options on a {kind} are not PostgreSQL's"),
                at,
                "this key",
            ));
        }
        let mut more = String::new();
        if extras.nulls_not_distinct {
            more.push_str(" NULLS NOT DISTINCT");
        }
        let quoted: Vec<String> = columns.iter().map(|c| ddl::quote(c)).collect();
        let mut tail = String::new();
        if !extras.include.is_empty() {
            let include: Vec<String> = extras
                .include
                .iter()
                .map(|c| ddl::quote(&ident(c)))
                .collect();
            tail.push_str(&format!(" INCLUDE ({})", include.join(", ")));
        }
        if let Some(characteristics) = extras.characteristics {
            tail.push_str(&format!(" {characteristics}"));
        }
        Ok((!more.is_empty() || !tail.is_empty())
            .then(|| format!("{kind}{more} ({}){tail}", quoted.join(", "))))
    }

    /// Columns of a PRIMARY KEY or UNIQUE: plain column names only.
    fn key_columns(
        &self,
        columns: &[IndexColumn],
        at: SourceSpan,
    ) -> Result<Vec<String>, SchemaError> {
        columns
            .iter()
            .map(|c| match (&c.column.expr, &c.operator_class) {
                (Expr::Identifier(name), None) => Ok(ident(name)),
                _ => Err(self.error(
                    ErrorKind::Unsupported,
                    format!("`{c}`: a key lists plain column names"),
                    at,
                    "this constraint",
                )),
            })
            .collect()
    }

    fn foreign_key(
        &self,
        table: &str,
        fk: &sql::ForeignKeyConstraint,
        at: SourceSpan,
    ) -> Result<Pending<Definition>, SchemaError> {
        let (referenced_table, referenced_span) = self.object_name(&fk.foreign_table, at)?;
        let referenced_at = self.span(referenced_span);
        if referenced_table != table && !self.schema.tables.contains_key(&referenced_table) {
            let known: Vec<&str> = self.schema.tables.keys().map(String::as_str).collect();
            return Err(self.source.error(
                ErrorKind::UnknownTable,
                format!("foreign key of `{table}` references unknown table `{referenced_table}`"),
                referenced_at,
                "no table of this name is created above",
                Some(if known.is_empty() {
                    "create the referenced table before the tables that reference it".into()
                } else {
                    format!(
                        "create the referenced table before the tables that reference it; \
                         tables so far: {}",
                        known.join(", ")
                    )
                }),
            ));
        }
        // MATCH and DEFERRABLE are not fields of the model: the foreign key as written (its
        // name left out) is its definition.
        let definition = (fk.match_kind.is_some() || fk.characteristics.is_some()).then(|| {
            let mut written = fk.clone();
            written.name = None;
            written
                .to_string()
                .trim_start_matches("CONSTRAINT ")
                .to_owned()
        });
        let action = |action: &Option<sql::ReferentialAction>| match action {
            None | Some(sql::ReferentialAction::NoAction) => ReferentialAction::NoAction,
            Some(sql::ReferentialAction::Restrict) => ReferentialAction::Restrict,
            Some(sql::ReferentialAction::Cascade) => ReferentialAction::Cascade,
            Some(sql::ReferentialAction::SetNull) => ReferentialAction::SetNull,
            Some(sql::ReferentialAction::SetDefault) => ReferentialAction::SetDefault,
        };
        Ok(Pending {
            name: fk.name.as_ref().map(ident),
            at,
            constraint: Definition::ForeignKey(Box::new(ForeignKey {
                name: String::new(),
                columns: fk.columns.iter().map(ident).collect(),
                referenced_table,
                referenced_columns: fk.referred_columns.iter().map(ident).collect(),
                on_delete: action(&fk.on_delete),
                on_update: action(&fk.on_update),
                definition,
            })),
        })
    }

    fn check(&self, check: &sql::CheckConstraint, at: SourceSpan) -> Pending<Definition> {
        // Identifiers in the condition: PostgreSQL names the constraint after the column when
        // exactly one column appears (resolved against the table's columns later).
        let mut names = Vec::new();
        let _ = sql::visit_expressions(&check.expr, |expr| {
            match expr {
                Expr::Identifier(name) => names.push(ident(name)),
                Expr::CompoundIdentifier(parts) => names.extend(parts.last().map(ident)),
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        Pending {
            name: check.name.as_ref().map(ident),
            at,
            constraint: Definition::Check(check.expr.to_string(), names, check.no_inherit),
        }
    }

    /// Add the table with its constraints.
    fn finish_table(
        &mut self,
        name: String,
        columns: Vec<Column>,
        properties: TableProperties,
        pending: Vec<Pending<Definition>>,
    ) -> Result<String, SchemaError> {
        self.relations.insert(name.clone());
        self.chosen_names.insert(name.clone());
        let mut table = Table {
            name: name.clone(),
            columns,
            properties,
            ..Table::default()
        };
        self.constrain(&mut table, pending, true)?;
        self.schema.tables.insert(name.clone(), table);
        Ok(name)
    }

    /// Check constraints against the table's columns, name the unnamed ones as PostgreSQL
    /// would, and add them to the table: the same whether written in CREATE TABLE or added by
    /// ALTER TABLE.
    fn constrain(
        &mut self,
        table: &mut Table,
        pending: Vec<Pending<Definition>>,
        in_create: bool,
    ) -> Result<(), SchemaError> {
        let name = table.name.clone();
        let has = |columns: &[Column], column: &str| columns.iter().any(|c| c.name == column);
        // Explicit names first, so a generated name never takes one written further down.
        let mut table_names: BTreeSet<String> = table
            .primary_key
            .iter()
            .chain(&table.uniques)
            .map(|k| k.name.clone())
            .chain(table.foreign_keys.iter().map(|f| f.name.clone()))
            .chain(table.checks.iter().map(|c| c.name.clone()))
            .collect();
        for p in &pending {
            if let Some(constraint_name) = &p.name {
                let is_index = matches!(
                    p.constraint,
                    Definition::PrimaryKey(..) | Definition::Unique(..)
                );
                if !table_names.insert(constraint_name.clone())
                    || (is_index && self.relations.contains(constraint_name))
                {
                    return Err(self.error(
                        ErrorKind::Duplicate,
                        format!("constraint name `{constraint_name}` is already used"),
                        p.at,
                        "this constraint",
                    ));
                }
                self.chosen_names.insert(constraint_name.clone());
            }
        }

        for p in pending {
            let unknown_column = |column: &str| {
                self.error(
                    ErrorKind::UnknownColumn,
                    format!("table `{name}` has no column `{column}`"),
                    p.at,
                    "in this constraint",
                )
            };
            match p.constraint {
                Definition::PrimaryKey(key_columns, definition) => {
                    if table.primary_key.is_some() {
                        return Err(self.error(
                            ErrorKind::Invalid,
                            format!("table `{name}` has more than one primary key"),
                            p.at,
                            "second primary key",
                        ));
                    }
                    for column in &key_columns {
                        let found = table.columns.iter_mut().find(|c| &c.name == column);
                        found.ok_or_else(|| unknown_column(column))?.not_null = true;
                    }
                    let constraint_name = p.name.unwrap_or_else(|| {
                        naming::choose(&mut self.chosen_names, &name, None, "pkey")
                    });
                    self.relations.insert(constraint_name.clone());
                    table.primary_key = Some(KeyConstraint {
                        name: constraint_name,
                        columns: key_columns,
                        definition,
                    });
                }
                Definition::Unique(key_columns, definition, include) => {
                    if let Some(column) = key_columns.iter().find(|c| !has(&table.columns, c)) {
                        return Err(unknown_column(column));
                    }
                    // PostgreSQL makes one index of keys a CREATE TABLE states twice over the
                    // same columns: an unnamed repeat is no constraint of its own.
                    let repeated = table
                        .primary_key
                        .iter()
                        .chain(&table.uniques)
                        .any(|key| key.columns == key_columns);
                    if in_create && p.name.is_none() && repeated {
                        continue;
                    }
                    let constraint_name = p.name.unwrap_or_else(|| {
                        let named_after: Vec<String> =
                            key_columns.iter().chain(&include).cloned().collect();
                        let addition = naming::columns_addition(&named_after);
                        naming::choose(&mut self.chosen_names, &name, Some(&addition), "key")
                    });
                    self.relations.insert(constraint_name.clone());
                    table.uniques.push(KeyConstraint {
                        name: constraint_name,
                        columns: key_columns,
                        definition,
                    });
                }
                Definition::ForeignKey(mut fk) => {
                    if let Some(column) = fk.columns.iter().find(|c| !has(&table.columns, c)) {
                        return Err(unknown_column(column));
                    }
                    self.resolve_reference(&name, &table.columns, table, &mut fk, p.at)?;
                    fk.name = p.name.unwrap_or_else(|| {
                        let addition = naming::columns_addition(&fk.columns);
                        naming::choose(&mut self.chosen_names, &name, Some(&addition), "fkey")
                    });
                    table.foreign_keys.push(*fk);
                }
                Definition::Exclusion(definition, columns) => {
                    let constraint_name = p.name.unwrap_or_else(|| {
                        let addition = naming::columns_addition(&columns);
                        naming::choose(&mut self.chosen_names, &name, Some(&addition), "excl")
                    });
                    self.relations.insert(constraint_name.clone());
                    table.other_constraints.push(Check {
                        name: constraint_name,
                        expression: String::new(),
                        definition: Some(definition),
                    });
                }
                Definition::Check(expression, mut names, no_inherit) => {
                    names.retain(|n| has(&table.columns, n));
                    names.sort();
                    names.dedup();
                    let constraint_name = p.name.unwrap_or_else(|| match names.as_slice() {
                        [column] => {
                            naming::choose(&mut self.chosen_names, &name, Some(column), "check")
                        }
                        _ => naming::choose(&mut self.chosen_names, &name, None, "check"),
                    });
                    table.checks.push(Check {
                        name: constraint_name,
                        definition: no_inherit.then(|| format!("CHECK ({expression}) NO INHERIT")),
                        expression,
                    });
                }
            }
        }
        Ok(())
    }

    /// Fill in the referenced columns (the referenced primary key when not written) and check
    /// that they exist and match in number.
    fn resolve_reference(
        &self,
        name: &str,
        columns: &[Column],
        this: &Table,
        fk: &mut ForeignKey,
        at: SourceSpan,
    ) -> Result<(), SchemaError> {
        let (referenced_columns, referenced_key): (Vec<&str>, Option<&KeyConstraint>) =
            if fk.referenced_table == name {
                (
                    columns.iter().map(|c| c.name.as_str()).collect(),
                    this.primary_key.as_ref(),
                )
            } else {
                let table = &self.schema.tables[&fk.referenced_table];
                (
                    table.columns.iter().map(|c| c.name.as_str()).collect(),
                    table.primary_key.as_ref(),
                )
            };
        if fk.referenced_columns.is_empty() {
            let key = referenced_key.ok_or_else(|| {
                self.error(
                    ErrorKind::Invalid,
                    format!(
                        "table `{}` has no primary key to reference; name the referenced columns",
                        fk.referenced_table
                    ),
                    at,
                    "this foreign key",
                )
            })?;
            fk.referenced_columns = key.columns.clone();
        }
        if let Some(column) = fk
            .referenced_columns
            .iter()
            .find(|c| !referenced_columns.contains(&c.as_str()))
        {
            return Err(self.error(
                ErrorKind::UnknownColumn,
                format!(
                    "referenced table `{}` has no column `{column}`",
                    fk.referenced_table
                ),
                at,
                "this foreign key",
            ));
        }
        if fk.referenced_columns.len() != fk.columns.len() {
            return Err(self.error(
                ErrorKind::Invalid,
                "a foreign key references as many columns as it has",
                at,
                "this foreign key",
            ));
        }
        Ok(())
    }

    fn create_index(&mut self, create: CreateIndex, at: SourceSpan) -> Result<String, SchemaError> {
        let (table_name, table_span) = self.object_name(&create.table_name, at)?;
        let Some(table) = self.schema.tables.get(&table_name) else {
            return Err(self.error(
                ErrorKind::UnknownTable,
                format!("index on unknown table `{table_name}`"),
                self.span(table_span),
                "no table of this name is created above",
            ));
        };
        if !create.index_options.is_empty() || !create.alter_options.is_empty() {
            return Err(self.error(
                ErrorKind::Unsupported,
                "index options other than INCLUDE, NULLS NOT DISTINCT, WITH and WHERE are not \
                 supported",
                at,
                "this index",
            ));
        }
        // INCLUDE, NULLS NOT DISTINCT and WITH are not fields of the model: with them, the
        // index as written after USING is its definition.
        let mut extras = String::new();
        if !create.include.is_empty() {
            let include: Vec<String> = create.include.iter().map(ident).collect();
            extras.push_str(&format!(" INCLUDE ({})", include.join(", ")));
        }
        if create.nulls_distinct == Some(false) {
            extras.push_str(" NULLS NOT DISTINCT");
        }
        if !create.with.is_empty() {
            let with: Vec<String> = create.with.iter().map(Expr::to_string).collect();
            extras.push_str(&format!(" WITH ({})", with.join(", ")));
        }
        let mut columns = Vec::new();
        let mut plain = Vec::new();
        for column in &create.columns {
            let mut text = match &column.column.expr {
                Expr::Identifier(name) => {
                    let name = ident(name);
                    if table.column(&name).is_none() {
                        return Err(self.error(
                            ErrorKind::UnknownColumn,
                            format!("table `{table_name}` has no column `{name}`"),
                            self.span(column_ident_span(column)),
                            "no such column",
                        ));
                    }
                    plain.push(name.clone());
                    name
                }
                expr => {
                    plain.push(expression_column_name(expr).unwrap_or_else(|| "expr".into()));
                    expr.to_string()
                }
            };
            if let Some(class) = &column.operator_class {
                text.push_str(&format!(" {class}"));
            }
            match &column.column.options.sort {
                Some(OrderBySort::Asc) => text.push_str(" ASC"),
                Some(OrderBySort::Desc) => text.push_str(" DESC"),
                Some(OrderBySort::Using(op)) => text.push_str(&format!(" USING {op}")),
                None => {}
            }
            match column.column.options.nulls_first {
                Some(true) => text.push_str(" NULLS FIRST"),
                Some(false) => text.push_str(" NULLS LAST"),
                None => {}
            }
            columns.push(text);
        }
        plain.extend(create.include.iter().map(ident));
        let index_name = match &create.name {
            Some(name) => {
                let (index_name, span) = self.object_name(name, at)?;
                self.name_free(&index_name, span)?;
                self.chosen_names.insert(index_name.clone());
                index_name
            }
            None => {
                let addition = naming::columns_addition(&plain);
                naming::choose(&mut self.chosen_names, &table_name, Some(&addition), "idx")
            }
        };
        self.relations.insert(index_name.clone());
        let method = create
            .using
            .as_ref()
            .map_or("btree".to_owned(), |m| m.to_string().to_ascii_lowercase());
        self.schema.indexes.insert(
            index_name.clone(),
            Index {
                name: index_name.clone(),
                table: table_name,
                unique: create.unique,
                predicate: create.predicate.as_ref().map(Expr::to_string),
                definition: (!extras.is_empty()).then(|| {
                    let predicate = create
                        .predicate
                        .as_ref()
                        .map(|p| format!(" WHERE {p}"))
                        .unwrap_or_default();
                    format!("{method} ({}){extras}{predicate}", columns.join(", "))
                }),
                columns,
                method,
            },
        );
        Ok(index_name)
    }
}

fn column_ident_span(column: &IndexColumn) -> Span {
    match &column.column.expr {
        Expr::Identifier(name) => name.span,
        _ => Span::empty(),
    }
}

/// The name PostgreSQL derives from an index expression for the index's name (its
/// `FigureColname`, for the common cases): a function's name, a column's, or none.
fn expression_column_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(name) => Some(ident(name)),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident),
        Expr::Function(function) => match function.name.0.last()? {
            ObjectNamePart::Identifier(name) => Some(ident(name)),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => expression_column_name(expr),
        _ => None,
    }
}
