//! The edge where files are read: the topology's manifests, once, into [`Manifests`].

use miette::{IntoDiagnostic, Result, WrapErr};

use crate::desired::{Desired, Manifests};
use crate::topology::Topology;

/// The replica sets' collection manifests the topology names (its SQL manifest was read
/// with it); a SQL manifest that could not be read is reported with the reason.
pub fn manifests(topology: &Topology) -> Result<Manifests> {
    if let Some(target) = &topology.postgres.schema
        && target.manifest.is_none()
    {
        std::fs::read_to_string(&target.path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read schema file {}", target.path.display()))?;
    }
    let mut collections = std::collections::BTreeMap::new();
    for set in topology.mongo.replica_sets.values() {
        if let Some(dir) = &set.collections {
            collections.insert(
                set.name.clone(),
                crate::mongo::manifest::load_collections(dir)?,
            );
        }
    }
    Ok(Manifests { collections })
}

/// The desired state of `topology`, its manifests read from disk.
pub fn desired(topology: &Topology) -> Result<Desired> {
    Desired::build(topology, &manifests(topology)?)
}
