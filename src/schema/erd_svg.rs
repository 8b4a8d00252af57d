//! Drawing a schema's ER diagram as SVG in process, with `layout-rs`, so that `dbtopo erd
//! --svg` needs no Graphviz installed.

use std::path::{Path, PathBuf};

use layout::backends::svg::SVGWriter;
use layout::gv::{DotParser, GraphBuilder};

use super::Schema;
use super::erd::dot;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ErdSvgError {
    /// The DOT text is dbtopo's own, so this is a bug in [`dot`], not in the manifest.
    #[error("the ER diagram's DOT text could not be read back: {0}")]
    #[diagnostic(
        code(dbtopo::erd::dot),
        help("this is a bug in dbtopo; the Mermaid text printed above holds the same diagram")
    )]
    Dot(String),
    #[error("the ER diagram could not be laid out: {0}")]
    #[diagnostic(
        code(dbtopo::erd::layout),
        help("the Mermaid text printed above holds the same diagram")
    )]
    Layout(String),
    #[error("could not write {}: {source}", path.display())]
    #[diagnostic(code(dbtopo::erd::write))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The schema's diagram ([`dot`]) laid out and drawn as an SVG document.
pub fn svg(schema: &Schema) -> Result<String, ErdSvgError> {
    // layout-rs cannot lay out a graph without nodes.
    if schema.tables.is_empty() {
        return Ok(SVGWriter::new().finalize());
    }
    let text = dot(schema);
    let graph = DotParser::new(&text).process().map_err(ErdSvgError::Dot)?;
    // layout-rs checks its invariants with assertions; one that fails is reported as an
    // error of this command instead of ending the process.
    std::panic::catch_unwind(|| {
        let mut builder = GraphBuilder::new();
        builder.visit_graph(&graph);
        let mut visual = builder.get();
        let mut writer = SVGWriter::new();
        visual.do_it(false, false, false, &mut writer);
        writer.finalize()
    })
    .map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the layout engine failed".to_owned());
        ErdSvgError::Layout(message)
    })
}

/// Draw the schema's diagram into an SVG file at `output`.
pub fn write_svg(schema: &Schema, output: &Path) -> Result<(), ErdSvgError> {
    let drawing = svg(schema)?;
    std::fs::write(output, drawing).map_err(|source| ErdSvgError::Write {
        path: output.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_schema;

    #[test]
    fn a_small_schema_is_drawn_with_its_tables_columns_checks_and_foreign_keys() {
        let schema = parse_schema(
            "test.sql",
            "CREATE TABLE authors (
                 author_id bigint PRIMARY KEY,
                 name text NOT NULL DEFAULT '{}',
                 CONSTRAINT authors_name_check CHECK (name <> '' AND name <> 'a|b')
             );
             CREATE TABLE books (
                 book_id bigint PRIMARY KEY,
                 author_id bigint NOT NULL REFERENCES authors,
                 title text NOT NULL
             );",
        )
        .expect("the test schema parses");
        let drawing = svg(&schema).expect("the diagram is drawn");
        assert!(drawing.starts_with("<?xml"), "{drawing}");
        assert!(drawing.trim_end().ends_with("</svg>"), "{drawing}");
        for text in [
            ">authors<",
            ">books<",
            ">author_id : bigint [PK]  NOT NULL<",
            ">author_id : bigint [FK]  NOT NULL<",
            ">title : text  NOT NULL<",
            // The record separators in the text are drawn as look-alikes, not split on.
            ">name : text  NOT NULL DEFAULT &apos;❴❵&apos;<",
            ">authors_name_check CHECK (name &lt;&gt; &apos;&apos; AND name &lt;&gt; &apos;a¦b&apos;)<",
            ">books_author_id_fkey (0..* : 1)<",
        ] {
            assert!(drawing.contains(text), "{text} is not drawn:\n{drawing}");
        }
        assert!(drawing.contains("<path "), "no edge drawn:\n{drawing}");
    }

    #[test]
    fn a_schema_without_tables_is_an_empty_drawing() {
        let schema = parse_schema("empty.sql", "").expect("an empty manifest parses");
        let drawing = svg(&schema).expect("the diagram is drawn");
        assert!(drawing.starts_with("<?xml"), "{drawing}");
        assert!(drawing.ends_with("</svg>"), "{drawing}");
        assert!(!drawing.contains("<rect"), "{drawing}");
    }
}
