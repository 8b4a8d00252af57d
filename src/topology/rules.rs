//! Pure format rules for names, identifiers and addresses. Each returns the reason a value is
//! refused (`Err`) so the caller can attach it to the value's span.

use std::net::IpAddr;

/// Names become Docker object names (`<env>-<node>`); 40 keeps them readable and well under
/// the 63-character limit of PostgreSQL identifiers used for replication slots.
pub(super) const MAX_NAME_LEN: usize = 40;

/// PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes.
const MAX_IDENTIFIER_LEN: usize = 63;

/// Settings a hot standby needs at least as high as its upstream's (it refuses to start
/// below them), with PostgreSQL's defaults.
pub(super) const STANDBY_MINIMUMS: &[(&str, i64)] = &[
    ("max_connections", 100),
    ("max_prepared_transactions", 0),
    ("max_locks_per_transaction", 64),
    ("max_wal_senders", 10),
    ("max_worker_processes", 8),
];

/// Settings dbtopo writes itself; a user value would break networking or replication.
pub(super) const MANAGED_SETTINGS: &[&str] = &[
    "port",
    "listen_addresses",
    "data_directory",
    "hba_file",
    "config_file",
    "primary_conninfo",
    "primary_slot_name",
];

/// The only pg_hba method accepted for TCP rules.
pub(super) const SCRAM: &str = "scram-sha-256";

/// `^[a-z][a-z0-9-]*$`, at most 40 chars, not ending in `-`: a Docker name prefix.
pub(super) fn env_name(name: &str) -> Result<(), String> {
    check_chars(name, is_lower, |c| is_lower(c) || is_digit(c) || c == '-')?;
    check_len(name, MAX_NAME_LEN)?;
    if name.ends_with('-') {
        return Err("it ends with `-`".to_owned());
    }
    Ok(())
}

/// `^[a-z][a-z0-9_-]*$`, at most 40 chars: node and replica names.
pub(super) fn server_name(name: &str) -> Result<(), String> {
    check_chars(name, is_lower, |c| {
        is_lower(c) || is_digit(c) || c == '-' || c == '_'
    })?;
    check_len(name, MAX_NAME_LEN)
}

/// `^[a-z_][a-z0-9_.]*$` (checked after lowercasing); dots allow extension settings.
pub(super) fn setting_name(name: &str) -> Result<(), String> {
    check_chars(
        name,
        |c| is_lower(c) || c == '_',
        |c| is_lower(c) || is_digit(c) || c == '_' || c == '.',
    )
}

/// A role name usable unquoted in SQL: `^[a-z_][a-z0-9_]*$`, not reserved.
pub(super) fn role_name(name: &str) -> Result<(), String> {
    check_chars(
        name,
        |c| is_lower(c) || c == '_',
        |c| is_lower(c) || is_digit(c) || c == '_',
    )?;
    check_len(name, MAX_IDENTIFIER_LEN)?;
    if name == "postgres" {
        return Err("`postgres` is the superuser".to_owned());
    }
    if name.starts_with("pg_") {
        return Err("the `pg_` prefix is reserved by PostgreSQL".to_owned());
    }
    Ok(())
}

/// A database name written bare in SQL: lowercase letters, digits and `_`.
pub(super) fn database_name(name: &str) -> Result<(), String> {
    check_chars(
        name,
        |c| is_lower(c) || c == '_',
        |c| is_lower(c) || is_digit(c) || c == '_',
    )?;
    check_len(name, MAX_IDENTIFIER_LEN)?;
    if name == "template0" || name == "template1" {
        return Err("template databases cannot receive a schema".to_owned());
    }
    Ok(())
}

/// A Docker image reference: we only refuse what can never work.
pub(super) fn image(reference: &str) -> Result<(), String> {
    if reference.is_empty() {
        return Err("it is empty".to_owned());
    }
    match reference.chars().find(|c| c.is_whitespace()) {
        Some(c) => Err(format!("it contains whitespace ({})", show(c))),
        None => Ok(()),
    }
}

/// A pg_hba database or user field: one token, so it cannot break the rendered line.
pub(super) fn hba_token(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".to_owned());
    }
    match value
        .chars()
        .find(|&c| c.is_whitespace() || c == '"' || c == '#')
    {
        Some(c) => Err(format!("{} is not allowed in pg_hba.conf fields", show(c))),
        None => Ok(()),
    }
}

/// `all` or an IPv4/IPv6 network in CIDR notation (`10.0.0.0/8`, `::1/128`).
pub(super) fn hba_address(address: &str) -> Result<(), String> {
    if address == "all" {
        return Ok(());
    }
    let Some((ip, prefix)) = address.split_once('/') else {
        return Err("it has no `/prefix` length".to_owned());
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(()),
        _ => Err(format!("the prefix length must be 0..={max}")),
    }
}

fn is_lower(c: char) -> bool {
    c.is_ascii_lowercase()
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// First character must satisfy `first`, the rest `rest`.
fn check_chars(name: &str, first: fn(char) -> bool, rest: fn(char) -> bool) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(c) = chars.next() else {
        return Err("it is empty".to_owned());
    };
    if !first(c) {
        return Err(format!("it starts with {}", show(c)));
    }
    match chars.find(|&c| !rest(c)) {
        Some(c) => Err(format!("{} is not allowed", show(c))),
        None => Ok(()),
    }
}

fn check_len(name: &str, max: usize) -> Result<(), String> {
    let len = name.chars().count();
    if len > max {
        return Err(format!("it is {len} characters long, the limit is {max}"));
    }
    Ok(())
}

/// A character for a message; uppercase gets a hint because it is the common mistake.
fn show(c: char) -> String {
    if c.is_whitespace() {
        return format!("whitespace `{}`", c.escape_debug());
    }
    let hint = if c.is_uppercase() {
        " (use lowercase)"
    } else {
        ""
    };
    format!("`{}`{hint}", c.escape_debug())
}
