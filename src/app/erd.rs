//! `dbtopo erd`: the schema's entity-relationship diagram as Mermaid text, and with `--svg`
//! drawn into an SVG file.

use miette::{Result, miette};

use super::desired;
use crate::cli::ErdArgs;
use crate::topology;

/// Print the schema's diagram as Mermaid text; with `--svg`, also draw it (in process).
pub fn erd(args: &ErdArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?;
    let Some(schema) = desired(&topology)?.schema else {
        return Err(miette!(
            help = "add `postgres.schema.file: <manifest.sql>` to the topology",
            "{} declares no schema to draw",
            args.file.file.display()
        ));
    };
    print!("{}", crate::schema::erd::mermaid(&schema.manifest.schema));
    if let Some(svg) = &args.svg {
        crate::schema::erd_svg::write_svg(&schema.manifest.schema, svg)?;
        eprintln!("Wrote {}.", svg.display());
    }
    Ok(())
}
