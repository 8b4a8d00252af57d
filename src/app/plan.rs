//! `dbtopo plan`: observe the environment and print what apply would change, as text or as
//! JSON, with a note when the plan destroys data.

use std::collections::BTreeMap;

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
    plan::plan(desired, &observed).map_err(|error| match error {
        plan::PlanError::BadSettings(refused) => refused_at_their_place(desired, refused),
        other => other.into(),
    })
}

/// Settings the servers refuse, each shown once where the topology writes it, with the
/// nodes that would get it.
fn refused_at_their_place(desired: &Desired, refused: Vec<plan::RefusedSetting>) -> miette::Report {
    let places = &desired.setting_places;
    let mut by_place: BTreeMap<(usize, &str), Vec<&str>> = BTreeMap::new();
    for r in &refused {
        let Some(place) = places.place(&r.node, &r.name) else {
            return plan::PlanError::BadSettings(refused).into();
        };
        by_place
            .entry((place.offset(), r.why.as_str()))
            .or_default()
            .push(r.node.as_str());
    }
    let problems = by_place
        .iter()
        .filter_map(|((_, why), nodes)| {
            let first = refused
                .iter()
                .find(|r| r.node == nodes[0] && r.why == *why)?;
            let place = places.place(&first.node, &first.name)?;
            let who = match nodes.as_slice() {
                [one] => format!("node {one}"),
                many => format!("nodes {}", many.join(", ")),
            };
            places.problem(place, &format!("{who}: {why}"))
        })
        .collect();
    RefusedSettings { problems }.into()
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the servers would refuse {} of the topology's settings; nothing was touched", problems.len())]
#[diagnostic(code(dbtopo::plan::bad_setting))]
struct RefusedSettings {
    #[related]
    problems: Vec<crate::topology::Problem>,
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
