//! `dbtopo apply`: plan, confirm, execute, and plan again for what the first round deferred,
//! then check that the environment converged. Steps that destroy data need
//! `--allow-destructive`.

use std::collections::BTreeSet;
use std::time::Duration;

use bollard::Docker;
use miette::{Result, miette};

use super::desired;
use super::environment::{docker, existing_secrets, print_warnings};
use super::plan_for;
use super::ui::{Printer, colorize, confirm, list};
use crate::cli::ApplyArgs;
use crate::desired::Desired;
use crate::execute;
use crate::plan::{self, Address, Counts, Plan};
use crate::schema::RejectedByServer;
use crate::secrets::{self, Secrets};
use crate::topology::{self, Topology};

pub async fn apply(args: &ApplyArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?.with_profiles(&args.file.profiles);
    let _lock = crate::lock::lock_env(&topology.name)?;
    let docker = docker().await?;
    let secrets = match existing_secrets(&docker, &topology.name).await? {
        Some(secrets) => secrets,
        None => secrets::load_or_create(&topology.name)?,
    };
    let (desired, plan) = compute(&docker, &topology, Some(&secrets)).await?;
    print!("{}", colorize(&plan::render_text(&plan)));
    if plan.is_empty() {
        // Nothing to run; what no change repairs (a replica catching up) gets its time.
        return match plan.warnings.is_empty() {
            true => Ok(()),
            false => check_convergence(&docker, &desired, &secrets, &BTreeSet::new()).await,
        };
    }
    refuse_destructive(&plan, args.allow_destructive)?;
    if !args.auto_approve {
        confirm("Do you want to perform these actions?")?;
    }
    println!();
    let mut counts = Counts::of(&plan);
    let mut applied: BTreeSet<Address> = plan.changes.iter().map(|c| c.address.clone()).collect();
    run(&docker, &plan, &desired, &secrets).await?;
    // What was deferred is compared once what it waits for runs: plan again while a round
    // leaves deferrals behind and finds something to do.
    let mut last = plan;
    for _ in 0..MAX_ROUNDS {
        if last.pending().next().is_none() {
            break;
        }
        let next = plan_for(&docker, &desired, Some(&secrets)).await?;
        if next.changes.is_empty() {
            break;
        }
        println!("\nNow that the servers answer, the comparison finds:");
        print!("{}", colorize(&plan::render_text(&next)));
        refuse_destructive(&next, args.allow_destructive)?;
        println!();
        applied.extend(next.changes.iter().map(|c| c.address.clone()));
        run(&docker, &next, &desired, &secrets).await?;
        let more = Counts::of(&next);
        counts.add += more.add;
        counts.change += more.change;
        counts.destroy += more.destroy;
        last = next;
    }
    check_convergence(&docker, &desired, &secrets, &applied).await?;
    // Tables made or rows moved: the planner's statistics follow.
    super::seed::analyze_nodes(&desired, &secrets, false).await?;
    println!(
        "\nApply complete! Resources: {} added, {} changed, {} destroyed.",
        counts.add, counts.change, counts.destroy
    );
    Ok(())
}

/// Rounds of apply for what each round's deferrals wait for (a schema compared once its server
/// answers, then the fragments that wait for that schema).
const MAX_ROUNDS: usize = 4;

/// A transaction prepared while the apply ran is its client's to finish (a workload running
/// meanwhile), not a change that did not converge; the next plan lists it if that client stopped.
fn in_flight(address: &Address, applied: &BTreeSet<Address>) -> bool {
    matches!(
        address,
        Address::PreparedXact { .. } | Address::TxnDecision(_)
    ) && !applied.contains(address)
}

/// Steps that can lose data run only when the user said so.
fn refuse_destructive(plan: &Plan, allowed: bool) -> Result<()> {
    let destructive = plan.data_losses();
    if destructive.is_empty() || allowed {
        return Ok(());
    }
    let list: Vec<String> = destructive
        .iter()
        .map(|(address, why)| format!("  {address}: {why}"))
        .collect();
    Err(miette!(
        help = "apply stopped before running any of this plan; run apply with \
                --allow-destructive to accept the loss, or change the topology or manifest",
        "the plan destroys data:\n{}",
        list.join("\n")
    ))
}

/// Execute `plan`; on failure, say what was done and what is left, and point a schema
/// step's failure at the manifest.
async fn run(docker: &Docker, plan: &Plan, desired: &Desired, secrets: &Secrets) -> Result<()> {
    let outcome = execute::execute(docker, plan, secrets, &Printer).await;
    if outcome.succeeded() {
        return Ok(());
    }
    eprintln!(
        "\nApply failed. Done: {}. Failed: {}. Not started: {}.",
        list(&outcome.done),
        list(
            &outcome
                .failed
                .iter()
                .map(|(a, _)| a.clone())
                .collect::<Vec<_>>()
        ),
        list(&outcome.not_started)
    );
    let Some((address, error)) = outcome.failed.into_iter().next() else {
        return Err(miette!("apply did not complete"));
    };
    let report = match (&error, &desired.schema) {
        (
            execute::ExecuteError::SchemaStep {
                object,
                outcome,
                origin,
                sql,
                error: cause,
            },
            Some(schema),
        ) => miette::Report::new(RejectedByServer::at_statement(
            &schema.manifest,
            &address.to_string(),
            object,
            origin.as_deref(),
            &crate::pg::server_message(cause),
            sql,
            outcome,
        )),
        _ => miette::Report::new(error),
    };
    Err(report.wrap_err("apply did not complete; run apply again once the cause is fixed"))
}

/// Build the desired state, observe, diff.
async fn compute(
    docker: &Docker,
    topology: &Topology,
    secrets: Option<&Secrets>,
) -> Result<(Desired, Plan)> {
    print_warnings(topology);
    let desired = desired(topology)?;
    let plan = plan_for(docker, &desired, secrets).await?;
    Ok((desired, plan))
}

/// After executing: nothing may be left to do, and every replica must stream (a replica that
/// was just reconnected gets a little time). `applied` holds what the apply's plans changed.
async fn check_convergence(
    docker: &Docker,
    desired: &Desired,
    secrets: &Secrets,
    applied: &BTreeSet<Address>,
) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let mut after = plan_for(docker, desired, Some(secrets)).await?;
        after.changes.retain(|c| !in_flight(&c.address, applied));
        if !after.is_empty() {
            let left: Vec<String> = after
                .changes
                .iter()
                .map(|c| c.address.to_string())
                .chain(after.pending().map(|d| d.address.to_string()))
                .collect();
            return Err(miette!(
                help = "run plan to see the differences",
                "apply finished but the environment did not converge: {} still differ",
                left.join(", ")
            ));
        }
        if after.warnings.is_empty() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(miette!("apply finished but {}", after.warnings.join("; ")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_prepared_while_the_apply_ran_is_left_to_its_client() {
        let prepared = |gid: &str| Address::PreparedXact {
            node: "east".into(),
            gid: format!("dbtopo:{gid}:east"),
        };
        let applied = BTreeSet::from([prepared("seen"), Address::TxnDecision("seen".into())]);
        assert!(in_flight(&prepared("new"), &applied));
        assert!(in_flight(&Address::TxnDecision("new".into()), &applied));
        // What the apply itself changed must have converged, and so must any other change.
        assert!(!in_flight(&prepared("seen"), &applied));
        assert!(!in_flight(&Address::TxnDecision("seen".into()), &applied));
        assert!(!in_flight(&Address::Node("east".into()), &applied));
    }
}
