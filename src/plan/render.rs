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
                Action::Update | Action::Start | Action::Restart => counts.change += 1,
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
    if plan.is_empty() {
        return format!(
            "No changes. Environment \"{}\" matches the topology.\n",
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
        .note
        .as_deref()
        .map(|n| format!("  ({n})"))
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

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'static str,
    #[serde(flatten)]
    plan: &'a Plan,
    summary: Counts,
}

pub fn render_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(&JsonPlan {
        format_version: "1",
        plan,
        summary: Counts::of(plan),
    })
    .expect("a plan always serializes")
}
