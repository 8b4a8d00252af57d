//! Comparing a setting as written in the topology with what `pg_settings` reports.
//!
//! `pg_settings.setting` is in the setting's base unit (`shared_buffers` in 8kB pages,
//! `checkpoint_timeout` in seconds), so `128MB` and `16384` can be the same value.

use crate::model::LiveSetting;

/// Does the server's live value equal the desired text?
pub fn same_value(desired: &str, live: &LiveSetting) -> bool {
    let desired = desired.trim();
    if desired == live.value {
        return true;
    }
    if let (Some(a), Some(b)) = (as_bool(desired), as_bool(&live.value)) {
        return a == b;
    }
    if let Some(unit) = live.unit.as_deref().filter(|u| !u.is_empty())
        && let (Some(a), Some(b)) = (in_unit(desired, unit), live.value.parse::<f64>().ok())
    {
        return (a - b).abs() < 1e-9 * b.abs().max(1.0);
    }
    if let (Ok(a), Ok(b)) = (desired.parse::<f64>(), live.value.parse::<f64>()) {
        return (a - b).abs() < 1e-9 * b.abs().max(1.0);
    }
    desired.eq_ignore_ascii_case(&live.value)
}

fn as_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Bytes or milliseconds per unit, with the family it belongs to.
fn unit_scale(unit: &str) -> Option<(char, f64)> {
    let memory = |n: f64| Some(('m', n));
    let time = |n: f64| Some(('t', n));
    match unit {
        "B" => memory(1.0),
        "kB" => memory(1024.0),
        "8kB" => memory(8192.0),
        "16kB" => memory(16384.0),
        "MB" => memory(1024.0 * 1024.0),
        "16MB" => memory(16.0 * 1024.0 * 1024.0),
        "GB" => memory(1024.0 * 1024.0 * 1024.0),
        "TB" => memory(1024.0 * 1024.0 * 1024.0 * 1024.0),
        "us" => time(0.001),
        "ms" => time(1.0),
        "s" => time(1000.0),
        "min" => time(60_000.0),
        "h" => time(3_600_000.0),
        "d" => time(86_400_000.0),
        _ => None,
    }
}

/// `128MB` expressed in `unit` (e.g. `8kB` → 16384). A bare number is already in `unit`.
fn in_unit(text: &str, unit: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let suffix = suffix.trim();
    if suffix.is_empty() {
        return Some(number);
    }
    let (family, from) = unit_scale(suffix)?;
    let (target_family, to) = unit_scale(unit)?;
    (family == target_family).then(|| number * from / to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(value: &str, unit: Option<&str>) -> LiveSetting {
        LiveSetting {
            value: value.into(),
            unit: unit.map(String::from),
            context: "sighup".into(),
            pending_restart: false,
        }
    }

    #[test]
    fn memory_and_time_units_convert_to_the_base_unit() {
        assert!(same_value("128MB", &live("16384", Some("8kB"))));
        assert!(same_value("256MB", &live("256", Some("MB"))));
        assert!(same_value("8MB", &live("8192", Some("kB"))));
        assert!(same_value("5min", &live("300", Some("s"))));
        assert!(!same_value("64MB", &live("16384", Some("8kB"))));
    }

    #[test]
    fn booleans_numbers_and_enums_compare_by_meaning() {
        assert!(same_value("true", &live("on", None)));
        assert!(same_value("16", &live("16", None)));
        assert!(same_value("0.9", &live("0.9", None)));
        assert!(same_value("Replica", &live("replica", None)));
        assert!(!same_value("logical", &live("replica", None)));
    }
}
