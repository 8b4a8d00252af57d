//! Collection manifests: one `<collection>.yaml` per collection in a replica set's
//! `collections` folder.

use miette::Result;

use super::model::Collection;
use crate::topology::CollectionsDir;

/// The collections a folder declares, in name order; every problem points into its file.
pub fn load_collections(_dir: &CollectionsDir) -> Result<Vec<Collection>> {
    Ok(Vec::new())
}
