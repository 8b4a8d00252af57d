//! The terminal UI of the commands: Terraform's colours, the confirmation prompt, the
//! progress lines of an apply, and the formatting of durations, addresses and sizes.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use miette::{IntoDiagnostic, Result, miette};

use crate::execute::{Event, Progress};
use crate::plan::{self, Action};

/// Set by `--no-color`.
static COLOR_OFF: AtomicBool = AtomicBool::new(false);

/// No colours from here on, whatever the terminal (`--no-color`), diagnostics included.
pub fn disable_color() {
    COLOR_OFF.store(true, Ordering::Relaxed);
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().color(false).build())
    }));
}

/// Whether output may be coloured: a terminal, neither NO_COLOR nor `--no-color`.
pub(super) fn color_on() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && !COLOR_OFF.load(Ordering::Relaxed)
}

/// Terraform's colours on a terminal (green add, yellow change, red destroy); plain text
/// otherwise, with NO_COLOR set, or with `--no-color`.
pub(super) fn colorize(text: &str) -> String {
    if !color_on() {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            let body = line.trim_start();
            let code = if body.starts_with("-/+") || body.starts_with("- ") {
                "31"
            } else if body.starts_with("+ ") {
                "32"
            } else if body.starts_with("~ ") || body.starts_with("Warning:") {
                "33"
            } else if body.starts_with("Plan:") || body.starts_with("No changes.") {
                "1"
            } else {
                return format!("{line}\n");
            };
            format!("\x1b[{code}m{line}\x1b[0m\n")
        })
        .collect()
}

/// Ask on the terminal; refuse to go on without one unless --auto-approve was given.
pub(super) fn confirm(question: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --auto-approve to run without a terminal",
            "no terminal to ask for confirmation"
        ));
    }
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(miette!("cancelled: nothing was changed"))
    }
}

/// Progress lines in Terraform's words.
pub(super) struct Printer;

impl Progress for Printer {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Started(change) => println!("{}: {}...", change.address, verb(change.action).0),
            Event::Note(change, text) => println!("{}: {text}", change.address),
            Event::Finished(change, elapsed) => println!(
                "{}: {} complete after {}",
                change.address,
                verb(change.action).1,
                seconds(elapsed)
            ),
            Event::Failed(change, error) => eprintln!("{}: failed: {error}", change.address),
        }
    }
}

fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("Creating", "Creation"),
        Action::Update => ("Updating", "Update"),
        Action::Start => ("Starting", "Start"),
        Action::Restart => ("Restarting", "Restart"),
        Action::Replace => ("Replacing", "Replacement"),
        Action::Promote => ("Promoting", "Promotion"),
        Action::Delete => ("Destroying", "Destruction"),
    }
}

pub(super) fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

pub(super) fn list(items: &[plan::Address]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) fn human_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
