//! `dbtopo validate`: load the topology and its manifests without touching Docker, and say
//! what they declare (nodes, replicas, schema, fragments, replica sets) or why they are wrong.

use std::path::Path;

use miette::Result;

use super::desired;
use super::environment::print_warnings;
use crate::topology::{self, Topology};

/// Everything `validate` checks, without printing.
fn check(
    file: &Path,
) -> Result<(
    Topology,
    crate::desired::Desired,
    std::collections::BTreeMap<String, usize>,
)> {
    let topology = topology::load(file)?;
    let desired = desired(&topology)?;
    let queries = super::mongo::named_queries(&topology, &desired)?;
    Ok((topology, desired, queries))
}

/// `validate --json`: whether the files are valid, and each problem with its place, in the
/// shape of Terraform's `validate -json` (`valid`, `error_count`, `diagnostics`). Returns
/// whether they are valid.
pub fn validate_json(file: &Path) -> bool {
    let (valid, diagnostics, warnings) = match check(file) {
        Ok((topology, _, _)) => (true, Vec::new(), topology.warnings.clone()),
        Err(report) => (false, super::diagnostics_json::of(&report), Vec::new()),
    };
    let out = serde_json::json!({
        "format_version": "1.0",
        "valid": valid,
        "error_count": diagnostics.len(),
        "warning_count": warnings.len(),
        "diagnostics": diagnostics,
        "warnings": warnings,
    });
    println!("{out:#}");
    valid
}

pub fn validate(file: &Path) -> Result<Topology> {
    let (topology, desired, queries) = check(file)?;
    let schema = match &desired.schema {
        Some(schema) => format!(
            ", schema {} ({} tables, {} indexes) into database \"{}\" on {}",
            schema.target.file,
            schema.manifest.schema.tables.len(),
            schema.manifest.schema.indexes.len(),
            schema.target.database,
            schema.target.nodes.join(", ")
        ),
        None => String::new(),
    };
    let fragments = match &topology.postgres.fragments {
        Some(f) => format!(
            ", {} fragmented table(s) coordinated by {}, {} reference table(s), {} distributed index(es)",
            f.tables.len(),
            f.coordinator,
            f.reference_tables.len(),
            f.indexes.len()
        ),
        None => String::new(),
    };
    let mongo: String = topology
        .mongo
        .replica_sets
        .values()
        .zip(&desired.mongo)
        .map(|(set, wanted)| {
            let profiles = if set.profiles.is_empty() {
                String::new()
            } else {
                format!(", profile {}", set.profiles.join("/"))
            };
            let queries = match queries.get(&set.name) {
                Some(&n) if n > 0 => format!(", {n} named quer{}", if n == 1 { "y" } else { "ies" }),
                _ => String::new(),
            };
            format!(
                ", replica set {} ({} member(s), {} collection(s){queries} in database \"{}\"{profiles})",
                set.name,
                set.members.len(),
                wanted.collections.len(),
                set.database
            )
        })
        .collect();
    println!(
        "{} is valid: environment \"{}\", {} node(s), {} replica(s){schema}{fragments}{mongo}.",
        file.display(),
        topology.name,
        topology.postgres.nodes.len(),
        topology.postgres.replicas.len()
    );
    print_warnings(&topology);
    Ok(topology)
}
