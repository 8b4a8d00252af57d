//! Comparing a setting as written in the topology with what `pg_settings` reports.
//!
//! `pg_settings.setting` is in the setting's base unit (`shared_buffers` in 8kB pages,
//! `checkpoint_timeout` in seconds), so `128MB` and `16384` can be the same value.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::model::{Accepts, LiveSetting};

/// PostgreSQL 17's settings as its own `pg_settings` lists them: the plan judges values by
/// them before any server of the environment answers.
static POSTGRES_17: LazyLock<BTreeMap<String, LiveSetting>> =
    LazyLock::new(|| catalogue(include_str!("postgres17_settings.txt")));

/// The settings a server of `image` accepts, where dbtopo carries them (the official
/// `postgres` images of major 17); `None` for any other image.
pub fn builtin_catalogue(image: &str) -> Option<&'static BTreeMap<String, LiveSetting>> {
    (crate::images::postgres_major(image) == Some(17)).then(|| &*POSTGRES_17)
}

/// Reads `name|vartype|unit|min_val|max_val|enumvals|context` lines; `#` lines are comments.
pub fn catalogue(text: &str) -> BTreeMap<String, LiveSetting> {
    let given = |field: &str| (!field.is_empty()).then(|| field.to_owned());
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let [name, vartype, unit, min, max, enumvals, context] = fields[..] else {
                return None;
            };
            let setting = LiveSetting {
                value: String::new(),
                unit: given(unit),
                context: context.to_owned(),
                pending_restart: false,
                accepts: Some(Accepts {
                    vartype: vartype.to_owned(),
                    min: given(min),
                    max: given(max),
                    // An enum may accept the empty string among its values.
                    enumvals: match enumvals {
                        "" => Vec::new(),
                        listed => listed.split(',').map(str::to_owned).collect(),
                    },
                }),
            };
            Some((name.to_ascii_lowercase(), setting))
        })
        .collect()
}

/// `shared_buffers` above the memory of the machine the servers run on: PostgreSQL accepts
/// the value and then cannot start.
pub fn beyond_memory(name: &str, value: &str, memory: u64) -> Option<String> {
    if name != "shared_buffers" {
        return None;
    }
    let bytes = in_unit(value.trim(), "B")?;
    (bytes > memory as f64).then(|| {
        format!(
            "shared_buffers = {value:?} is more than the {} MB of memory of the Docker Engine's machine: the server would not start",
            memory / (1024 * 1024)
        )
    })
}

/// Why the server would refuse `value` for setting `name`, judged by its own `pg_settings`
/// (`known`): an unknown name (with the closest one), a value of the wrong type, out of
/// bounds, or not one of an enum's names. `None` when it accepts it, or cannot tell.
pub fn refusal(name: &str, value: &str, known: &BTreeMap<String, LiveSetting>) -> Option<String> {
    let Some(setting) = known.get(name) else {
        // `prefix.name` settings belong to extensions and are not listed until loaded.
        if name.contains('.') {
            return None;
        }
        let near = crate::diagnostics::did_you_mean(name, known.keys().map(String::as_str));
        return Some(format!("{name} is not a setting of this server; {near}"));
    };
    let accepts = setting.accepts.as_ref()?;
    let value = value.trim();
    let unit = setting.unit.as_deref().filter(|u| !u.is_empty());
    match accepts.vartype.as_str() {
        "bool" => as_bool(value)
            .is_none()
            .then(|| format!("{name} = {value:?}: expected on or off")),
        "enum" => (!accepts
            .enumvals
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value)))
        .then(|| {
            format!(
                "{name} = {value:?}: expected one of {}",
                accepts.enumvals.join(", ")
            )
        }),
        "integer" | "real" => number_refusal(name, value, unit, accepts),
        _ => None,
    }
}

fn number_refusal(
    name: &str,
    value: &str,
    unit: Option<&str>,
    accepts: &Accepts,
) -> Option<String> {
    let unit_text = unit.unwrap_or("");
    let number = match unit {
        Some(unit) => in_unit(value, unit),
        None => value.parse::<f64>().ok(),
    };
    let Some(number) = number else {
        let expected = match unit {
            Some(unit) => format!("a number, with a unit like the server's {unit}"),
            None => "a number".to_owned(),
        };
        return Some(format!("{name} = {value:?}: expected {expected}"));
    };
    let bound = |b: &Option<String>| b.as_deref().and_then(|b| b.parse::<f64>().ok());
    let (min, max) = (bound(&accepts.min), bound(&accepts.max));
    let below = min.is_some_and(|min| number < min);
    let above = max.is_some_and(|max| number > max);
    (below || above).then(|| {
        format!(
            "{name} = {value:?} is outside what the server accepts: {} to {} (in {})",
            accepts.min.as_deref().unwrap_or("?"),
            accepts.max.as_deref().unwrap_or("?"),
            if unit_text.is_empty() {
                "units of one"
            } else {
                unit_text
            }
        )
    })
}

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
            accepts: None,
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

    fn known() -> BTreeMap<String, LiveSetting> {
        let setting = |name: &str,
                       unit: Option<&str>,
                       vartype: &str,
                       min: Option<&str>,
                       max: Option<&str>,
                       enumvals: &[&str]| {
            let mut live = live("0", unit);
            live.accepts = Some(Accepts {
                vartype: vartype.into(),
                min: min.map(str::to_owned),
                max: max.map(str::to_owned),
                enumvals: enumvals.iter().map(|v| v.to_string()).collect(),
            });
            (name.to_owned(), live)
        };
        BTreeMap::from([
            setting(
                "shared_buffers",
                Some("8kB"),
                "integer",
                Some("16"),
                Some("1073741823"),
                &[],
            ),
            setting(
                "max_connections",
                None,
                "integer",
                Some("1"),
                Some("262143"),
                &[],
            ),
            setting(
                "wal_level",
                None,
                "enum",
                None,
                None,
                &["minimal", "replica", "logical"],
            ),
            setting("hot_standby", None, "bool", None, None, &[]),
            setting(
                "work_mem",
                Some("kB"),
                "integer",
                Some("64"),
                Some("2147483647"),
                &[],
            ),
        ])
    }

    #[test]
    fn values_the_server_would_refuse_are_named_with_what_it_accepts() {
        let known = known();
        let refused = |name: &str, value: &str| refusal(name, value, &known);
        assert_eq!(refused("shared_buffers", "128MB"), None);
        assert_eq!(refused("max_connections", "100"), None);
        assert_eq!(refused("wal_level", "Logical"), None);
        assert_eq!(refused("hot_standby", "on"), None);
        assert_eq!(refused("app.tenant", "7"), None);
        assert!(
            refused("shared_buffers", "lots")
                .unwrap()
                .contains("expected a number")
        );
        assert!(
            refused("shared_buffers", "16TB")
                .unwrap()
                .contains("outside")
        );
        assert!(
            refused("max_connections", "-5")
                .unwrap()
                .contains("1 to 262143")
        );
        assert!(
            refused("wal_level", "everything")
                .unwrap()
                .contains("minimal, replica, logical")
        );
        assert!(
            refused("hot_standby", "maybe")
                .unwrap()
                .contains("on or off")
        );
        assert!(
            refused("work_mme", "4MB")
                .unwrap()
                .contains("did you mean `work_mem`")
        );
        let gib = 1024 * 1024 * 1024;
        assert!(beyond_memory("shared_buffers", "1TB", 24 * gib).is_some());
        assert_eq!(beyond_memory("shared_buffers", "128MB", 24 * gib), None);
        assert_eq!(beyond_memory("work_mem", "1TB", 24 * gib), None);
    }

    #[test]
    fn the_carried_catalogue_judges_before_any_server_answers() {
        let carried = builtin_catalogue("docker.io/library/postgres:17.4").expect("carried");
        assert!(builtin_catalogue("postgres:16").is_none());
        assert!(builtin_catalogue("example/pg:17").is_none());
        let max_connections = &carried["max_connections"];
        assert!(max_connections.needs_restart());
        assert_eq!(
            max_connections.accepts.as_ref().map(|a| a.vartype.as_str()),
            Some("integer")
        );
        // Mixed-case names are found by the topology's lower-case ones.
        assert!(carried.contains_key("timezone"));
        assert!(refusal("shared_buffers", "lots", carried).is_some());
        assert!(refusal("max_connections", "-5", carried).is_some());
        assert!(refusal("work_mme", "4MB", carried).is_some_and(|why| why.contains("`work_mem`")));
        assert!(refusal("ssl_max_protocol_version", "", carried).is_none());
        assert_eq!(refusal("shared_buffers", "256MB", carried), None);
        assert_eq!(refusal("timezone", "UTC", carried), None);
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
