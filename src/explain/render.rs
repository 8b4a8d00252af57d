//! The summaries as tables for people (comfy-table); `--json` serializes them as they are.

use comfy_table::{ContentArrangement, Table, presets};

use super::{Comparison, Query, Summary};

/// Wide enough for a remote statement to stay readable, narrow enough for a terminal.
const WIDTH: u16 = 140;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH)
        .set_header(header.iter().copied());
    table
}

fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

/// The catalogue: each query's name and what it answers.
pub fn render_list(queries: &[Query]) -> String {
    let mut out = table(&["QUERY", "ANSWERS"]);
    for query in queries {
        out.add_row(vec![query.name.clone(), query.question.clone()]);
    }
    format!("{out}\n")
}

/// An overview of every query, then each query's fragments and remote statements.
pub fn render_summaries(summaries: &[Summary]) -> String {
    let mut overview = table(&[
        "QUERY",
        "EXECUTION",
        "ROWS",
        "SCANNED",
        "PRUNED",
        "REMOTE SQL",
        "COSTLIEST NODE",
    ]);
    for s in summaries {
        overview.add_row(vec![
            s.name.clone(),
            ms(s.execution_ms),
            format!("{}", s.rows),
            s.scanned().count().to_string(),
            s.pruned().count().to_string(),
            s.remote.len().to_string(),
            s.costliest
                .as_ref()
                .map(|c| format!("{} ({}, {:.0}%)", c.node, ms(c.self_ms), c.share))
                .unwrap_or_default(),
        ]);
    }
    let mut out = format!("{overview}\n");
    for s in summaries {
        out.push_str(&format!(
            "\n{}: {}\n  execution {}, planning {}, {} row(s), estimated cost {:.2}\n",
            s.name,
            s.question,
            ms(s.execution_ms),
            ms(s.planning_ms),
            s.rows,
            s.total_cost
        ));
        if let Some(c) = &s.costliest {
            out.push_str(&format!(
                "  costliest node: {} ({} of its own, {:.0}% of the execution)\n",
                c.node,
                ms(c.self_ms),
                c.share
            ));
        }
        for advice in &s.advice {
            out.push_str(&format!("  advice: {}\n", advice.line()));
        }
        if s.removed_at_run_time > 0 {
            out.push_str(&format!(
                "  {} subplan(s) pruned while executing\n",
                s.removed_at_run_time
            ));
        }
        if !s.fragments.is_empty() {
            let mut fragments = table(&["TABLE", "FRAGMENT", "NODE", "STATE"]);
            for f in &s.fragments {
                fragments.add_row(vec![
                    f.table.clone(),
                    f.part.clone(),
                    f.node.clone(),
                    f.state.label().to_owned(),
                ]);
            }
            out.push_str(&format!("{fragments}\n"));
        }
        if !s.remote.is_empty() {
            let mut remote = table(&["NODE", "RELATIONS", "PUSHED DOWN", "ROWS", "REMOTE SQL"]);
            for r in &s.remote {
                remote.add_row(vec![
                    r.node.clone(),
                    r.relations.join(", "),
                    if r.pushed.is_empty() {
                        "scan".to_owned()
                    } else {
                        r.pushed.clone()
                    },
                    format!("{}", r.rows),
                    r.sql.clone(),
                ]);
            }
            out.push_str(&format!("{remote}\n"));
        }
    }
    out
}

/// Each query with its indexes and without them: times, estimated costs, the change.
pub fn render_comparison(comparisons: &[Comparison]) -> String {
    let mut out = table(&[
        "QUERY",
        "WITH INDEXES",
        "WITHOUT INDEXES",
        "COST WITH",
        "COST WITHOUT",
        "TIME WITHOUT / WITH",
    ]);
    for c in comparisons {
        let (with, without) = (&c.with_indexes, &c.without_indexes);
        out.add_row(vec![
            c.name.clone(),
            ms(with.execution_ms),
            ms(without.execution_ms),
            format!("{:.2}", with.total_cost),
            format!("{:.2}", without.total_cost),
            if with.execution_ms > 0.0 {
                format!("{:.2}x", without.execution_ms / with.execution_ms)
            } else {
                "-".to_owned()
            },
        ]);
    }
    format!("{out}\n")
}
