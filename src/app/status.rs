//! `dbtopo status`: observe the environment and print one line per server and MongoDB
//! member (see [`crate::status`]), as a table or as JSON.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use miette::{IntoDiagnostic, Result};

use super::desired;
use super::environment::{docker, existing_secrets, print_warnings};
use crate::cli::StatusArgs;
use crate::status::{self, Line};
use crate::{observe, topology};

pub async fn status(args: &StatusArgs) -> Result<()> {
    let topology = topology::load(&args.file.file)?.with_profiles(&args.file.profiles);
    print_warnings(&topology);
    let desired = desired(&topology)?;
    let docker = docker().await?;
    let secrets = existing_secrets(&docker, &topology.name).await?;
    let observed = observe::observe_environment(&docker, &desired, secrets.as_ref()).await?;
    let lines = status::lines(&desired, &observed);
    if args.json {
        let json = serde_json::json!({
            "format_version": 1,
            "environment": topology.name,
            "servers": lines,
        });
        println!("{}", serde_json::to_string_pretty(&json).into_diagnostic()?);
    } else {
        println!("Environment \"{}\":", topology.name);
        println!("{}", table(&lines));
        if secrets.is_some() {
            println!("Connect with `dbtopo psql NODE` or `eval \"$(dbtopo env NODE)\"`.");
        }
    }
    Ok(())
}

fn table(lines: &[Line]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "server",
            "role",
            "container",
            "health",
            "connect",
            "lag",
            "holds",
        ]);
    for line in lines {
        let lag = line
            .lag_bytes
            .map_or("-".to_owned(), |bytes| format!("{bytes} B"));
        let mut holds = line.holds.join(", ");
        if let Some(subscription) = &line.subscription {
            if !holds.is_empty() {
                holds.push_str("; ");
            }
            holds.push_str(&format!("copies: {subscription}"));
        }
        table.add_row([
            line.name.clone(),
            line.role.clone(),
            line.container.to_owned(),
            line.health.clone(),
            line.url.clone(),
            lag,
            if holds.is_empty() {
                "-".to_owned()
            } else {
                holds
            },
        ]);
    }
    table
}
