//! `dbtopo verify`: check the running system (servers answer, fragments, reference copies, streaming
//! replicas), print the report, and say whether every check passed.

use std::path::Path;

use miette::Result;

use super::environment::existing_environment;

/// Check the running system; prints the report, returns whether every check passed.
pub async fn verify_command(file: &Path) -> Result<bool> {
    let checks = verify_checks(file).await?;
    print!("{}", crate::verify::render(&checks));
    Ok(checks.iter().all(|c| c.ok))
}

/// `verify --json`: the checks, and whether all passed.
pub async fn verify_json(file: &Path) -> Result<bool> {
    let checks = verify_checks(file).await?;
    let ok = checks.iter().all(|c| c.ok);
    let out = serde_json::json!({
        "format_version": "1.0",
        "ok": ok,
        "failed": checks.iter().filter(|c| !c.ok).count(),
        "checks": checks,
    });
    println!("{out:#}");
    Ok(ok)
}

/// Every check of the running system, in report order.
pub async fn verify_checks(file: &Path) -> Result<Vec<crate::verify::Check>> {
    let (desired, secrets) = existing_environment(file, &[]).await?;
    let database = desired
        .schema
        .as_ref()
        .map_or("postgres".to_owned(), |s| s.target.database.clone());
    let endpoints = crate::verify::Endpoints {
        state: &desired.state,
        password: &secrets.superuser,
        database: &database,
    };
    let mut checks = crate::verify::servers(&endpoints).await;
    if let Some(fragments) = desired.schema.as_ref().and_then(|s| s.fragments.as_ref()) {
        checks.extend(
            crate::verify::fragments(&endpoints, &fragments.coordinator, &fragments.placement)
                .await,
        );
        checks.extend(crate::verify::references(&endpoints, &fragments.placement).await);
    }
    checks.extend(crate::verify::replicas(&endpoints).await);
    Ok(checks)
}
