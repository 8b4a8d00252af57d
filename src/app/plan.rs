//! `dbtopo plan`: observe the environment and print what apply would change, as text or as
//! JSON, with a note when the plan destroys data.

use bollard::Docker;
use miette::Result;

use super::desired;
use super::environment::{docker, existing_secrets, print_warnings};
use super::ui::colorize;
use crate::cli::PlanArgs;
use crate::desired::Desired;
use crate::observe;
use crate::plan::{self, Plan};
use crate::secrets::{self, Secrets};
use crate::topology;

/// Observe the environment and plan against it.
pub async fn plan_for(
    docker: &Docker,
    desired: &Desired,
    secrets: Option<&Secrets>,
) -> Result<Plan> {
    let observed = observe::observe_environment(docker, desired, secrets).await?;
    Ok(plan::plan(desired, &observed)?)
}

/// Print the plan; returns whether it has changes.
pub async fn plan(args: &PlanArgs) -> Result<bool> {
    let topology = topology::load(&args.file.file)?.with_profiles(&args.file.profiles);
    print_warnings(&topology);
    let desired = desired(&topology)?;
    let docker = docker().await?;
    let secrets = match secrets::load_existing(&topology.name)? {
        Some(secrets) => Some(secrets),
        None => existing_secrets(&docker, &topology.name).await?,
    };
    let plan = plan_for(&docker, &desired, secrets.as_ref()).await?;
    if args.json {
        println!("{}", plan::render_json(&plan));
    } else {
        print!("{}", colorize(&plan::render_text(&plan)));
        if !plan.data_losses().is_empty() {
            println!(
                "\nNote: this plan destroys data; apply refuses it without --allow-destructive."
            );
        }
    }
    Ok(!plan.is_converged())
}
