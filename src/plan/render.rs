//! The plan as text for people (Terraform's layout) and as JSON for programs.

use std::fmt::Write;

use serde::Serialize;

use super::{Action, Address, Change, DeferReason, Deferral, Detail, Operation, Plan};
use crate::schema::Step;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Counts {
    /// A replacement counts as one destroy and one add, as in Terraform.
    pub fn of(plan: &Plan) -> Counts {
        let mut counts = Counts::default();
        for change in &plan.changes {
            match change.action {
                Action::Create => counts.add += 1,
                Action::Update | Action::Start | Action::Restart | Action::Promote => {
                    counts.change += 1
                }
                Action::Replace => {
                    counts.add += 1;
                    counts.destroy += 1;
                }
                Action::Delete => counts.destroy += 1,
            }
        }
        counts
    }
}

pub fn render_text(plan: &Plan) -> String {
    let mut text = render_changes(plan);
    for warning in &plan.warnings {
        let _ = writeln!(text, "\nWarning: {warning}");
    }
    for notice in &plan.notices {
        let _ = writeln!(text, "\nNote: {notice}");
    }
    text
}

fn render_changes(plan: &Plan) -> String {
    if plan.is_converged() {
        return format!(
            "No changes. Environment \"{}\" matches the topology.\n",
            plan.env
        );
    }
    if plan.is_empty() {
        return format!(
            "No changes can be planned, but environment \"{}\" does not match the topology yet:\n",
            plan.env
        );
    }
    let mut out = format!(
        "dbtopo will perform the following actions on environment \"{}\":\n",
        plan.env
    );
    for change in &plan.changes {
        render_change(&mut out, change);
    }
    for deferral in &plan.deferred {
        if let Some(line) = deferral_line(deferral) {
            let _ = writeln!(out, "\n  # {line}");
        }
    }
    let counts = Counts::of(plan);
    let _ = writeln!(
        out,
        "\nPlan: {} to add, {} to change, {} to destroy.",
        counts.add, counts.change, counts.destroy
    );
    out
}

/// Why a resource is left for later, in words; `None` where a notice says it already.
fn deferral_line(deferral: &Deferral) -> Option<String> {
    let address = &deferral.address;
    Some(match &deferral.reason {
        DeferReason::NotAnswering { node } => match address {
            Address::Schema(_) => format!(
                "{address} is compared with the manifest once {} answers (during apply)",
                Address::node(node)
            ),
            _ => format!(
                "{address} is compared once {} answers (during apply)",
                Address::node(node)
            ),
        },
        DeferReason::MemberStopped { .. } => format!(
            "{address} and its collections are compared once its first member answers (during apply)"
        ),
        DeferReason::WaitsFor {
            address: prerequisite,
        } => {
            format!("{address} waits for {prerequisite}, compared during apply")
        }
        DeferReason::InDoubt { .. } => return None,
    })
}

fn render_change(out: &mut String, change: &Change) {
    let _ = writeln!(out, "\n  # {} {}", change.address, change.action.phrase());
    let _ = writeln!(out, "  {} {}", change.action.symbol(), change.address);
    for detail in &change.details {
        let _ = writeln!(out, "      {}", detail_line(detail));
    }
    if let Operation::ApplySchema {
        database,
        create_database,
        steps,
        ..
    } = &change.operation
    {
        render_schema_steps(out, database, *create_database, steps);
    }
    if let Operation::RunSql { statements, .. } = &change.operation {
        for line in statements.iter().flat_map(|s| s.lines()) {
            let _ = writeln!(out, "          {line}");
        }
    }
    if let Operation::MongoCommands { steps, local, .. } = &change.operation {
        if *local {
            let _ = writeln!(out, "          (on the member itself, with mongosh)");
        }
        for step in steps {
            let _ = match step {
                crate::mongo::diff::MongoStep::Command {
                    database, command, ..
                } => writeln!(
                    out,
                    "          db.getSiblingDB(\"{database}\").runCommand({command})"
                ),
                crate::mongo::diff::MongoStep::WaitForPrimary => {
                    writeln!(out, "          (wait for a writable primary)")
                }
            };
        }
    }
    let _ = writeln!(out, "      (why: {})", change.reason);
}

/// Each SQL step under its object, destructive ones flagged with what they put at risk.
fn render_schema_steps(out: &mut String, database: &str, create_database: bool, steps: &[Step]) {
    if create_database {
        let _ = writeln!(out, "      + database {database}");
        let _ = writeln!(
            out,
            "          {}",
            crate::schema::ddl::create_database(database)
        );
    }
    for step in steps {
        let mut notes = Vec::new();
        if step.concurrent {
            notes.push("outside the transaction".to_owned());
        }
        if let Some(why) = &step.destroys {
            notes.push(format!("DESTRUCTIVE: {why}"));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        let _ = writeln!(out, "      {} {}{notes}", step.action.symbol(), step.object);
        for line in step.sql.lines() {
            let _ = writeln!(out, "          {line}");
        }
    }
}

fn detail_line(detail: &Detail) -> String {
    let note = detail
        .effect
        .map(|e| format!("  ({})", e.note()))
        .unwrap_or_default();
    match (&detail.before, &detail.after) {
        (None, Some(after)) => format!("+ {} = {:?}{note}", detail.field, after),
        (Some(before), None) => format!("- {} = {:?}{note}", detail.field, before),
        (Some(before), Some(after)) => {
            format!("~ {}: {:?} -> {:?}{note}", detail.field, before, after)
        }
        (None, None) => format!("~ {}{note}", detail.field),
    }
}

/// The version of the JSON plan format; raised whenever a field changes meaning or goes.
pub const JSON_FORMAT_VERSION: &str = "2";

/// The JSON plan: a stable format for scripts (documented in docs/plan-format.md), made from
/// the plan, never a dump of its internal types.
#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'static str,
    environment: &'a str,
    changes: Vec<JsonChange<'a>>,
    deferred: &'a [Deferral],
    warnings: &'a [String],
    notices: &'a [String],
    /// The changes by address, in the waves they can run in.
    waves: Vec<Vec<&'a Address>>,
    summary: Counts,
}

#[derive(Serialize)]
struct JsonChange<'a> {
    address: &'a Address,
    action: Action,
    reason: &'a str,
    details: &'a [Detail],
    /// Addresses this change waits for.
    after: &'a [Address],
    /// For a new server that waits for others: what its container start waits for.
    start_early_after: Option<&'a [Address]>,
    /// SQL it runs, statement by statement (schema steps and coordinator work).
    sql: Vec<&'a str>,
    /// Why it can lose data, for each step that can (apply needs --allow-destructive).
    destroys: Vec<&'a str>,
}

pub fn render_json(plan: &Plan) -> String {
    let changes = plan
        .changes
        .iter()
        .map(|change| {
            let (sql, destroys) = match &change.operation {
                Operation::ApplySchema { steps, .. } => (
                    steps.iter().map(|s| s.sql.as_str()).collect(),
                    steps.iter().filter_map(|s| s.destroys.as_deref()).collect(),
                ),
                Operation::RunSql { statements, .. } => {
                    (statements.iter().map(String::as_str).collect(), Vec::new())
                }
                _ => (Vec::new(), Vec::new()),
            };
            let start_early_after = match &change.operation {
                Operation::RunServer {
                    start_early_after, ..
                } => start_early_after.as_deref(),
                _ => None,
            };
            JsonChange {
                address: &change.address,
                action: change.action,
                reason: &change.reason,
                details: &change.details,
                after: &change.after,
                start_early_after,
                sql,
                destroys,
            }
        })
        .collect();
    let waves = plan
        .waves
        .iter()
        .map(|wave| wave.iter().map(|&i| &plan.changes[i].address).collect())
        .collect();
    serde_json::to_string_pretty(&JsonPlan {
        format_version: JSON_FORMAT_VERSION,
        environment: &plan.env,
        changes,
        deferred: &plan.deferred,
        warnings: &plan.warnings,
        notices: &plan.notices,
        waves,
        summary: Counts::of(plan),
    })
    .expect("a plan always serializes")
}
