//! `dbtopo destroy`: list every Docker object that carries the environment's label, confirm,
//! remove them all, and forget the environment's secrets and lock file.

use bollard::Docker;
use miette::{Result, miette};

use super::environment::docker;
use super::ui::{confirm, human_size};
use crate::cli::DestroyArgs;
use crate::execute;
use crate::observe::{self, docker::Inventory};
use crate::secrets;
use crate::topology;

pub async fn destroy(args: &DestroyArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?;
    let env = topology.name.as_str();
    let _lock = crate::lock::lock_env(env)?;
    let docker = docker().await?;
    let inventory = observe::docker::inventory(&docker, env).await?;
    if inventory.is_empty() {
        println!(
            "Nothing to destroy: no Docker object carries the label of environment \"{env}\"."
        );
        secrets::remove(env)?;
        crate::lock::remove_lock_file(env);
        return Ok(());
    }
    print!("{}", render_inventory(env, &inventory));
    if !args.auto_approve {
        confirm("Do you really want to destroy all of these? The data in the volumes is lost.")?;
    }
    remove_all(&docker, &inventory).await?;
    let left = observe::docker::inventory(&docker, env).await?;
    if !left.is_empty() {
        return Err(miette!(
            "destroy left objects behind:\n{}",
            render_inventory(env, &left)
        ));
    }
    secrets::remove(env)?;
    crate::lock::remove_lock_file(env);
    println!(
        "\nDestroy complete! Removed {} container(s), {} volume(s), {} network(s).",
        inventory.containers.len(),
        inventory.volumes.len(),
        inventory.networks.len()
    );
    Ok(())
}

pub fn render_inventory(env: &str, inventory: &Inventory) -> String {
    let mut out = format!("dbtopo will destroy environment \"{env}\":\n");
    for name in &inventory.containers {
        out.push_str(&format!("  - container {name}\n"));
    }
    for (name, size) in &inventory.volumes {
        let size = size
            .map(human_size)
            .unwrap_or_else(|| "size unknown".into());
        out.push_str(&format!("  - volume    {name} ({size})\n"));
    }
    for name in &inventory.networks {
        out.push_str(&format!("  - network   {name}\n"));
    }
    let total = inventory.containers.len() + inventory.volumes.len() + inventory.networks.len();
    out.push_str(&format!(
        "\nPlan: 0 to add, 0 to change, {total} to destroy.\n"
    ));
    out
}

/// Remove containers first (they hold the volumes and the network), then the rest. Objects
/// already gone are fine: destroy works on half-created environments.
pub async fn remove_all(docker: &Docker, inventory: &Inventory) -> Result<()> {
    let results = futures_util::future::join_all(
        inventory
            .containers
            .iter()
            .map(|name| execute::docker::remove_container(docker, name, &inventory.env)),
    )
    .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    for (name, _) in &inventory.volumes {
        execute::docker::remove_volume(docker, name, &inventory.env).await?;
    }
    for name in &inventory.networks {
        execute::docker::remove_network(docker, name, &inventory.env).await?;
    }
    Ok(())
}
