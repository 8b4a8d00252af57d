//! The names PostgreSQL gives unnamed constraints and indexes (`makeObjectName`,
//! `ChooseConstraintName` in its `commands/indexcmds.c`), so that an unnamed constraint in a
//! manifest gets the name the catalog will show.

use std::collections::BTreeSet;

/// NAMEDATALEN - 1: the longest identifier PostgreSQL keeps, in bytes.
const MAX_IDENTIFIER: usize = 63;

/// `name1_name2_label`, with name1 and name2 shortened (the longer first) to fit 63 bytes,
/// as `makeObjectName` does.
fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let name2 = name2.unwrap_or("");
    let overhead = label.len() + 1 + if name2.is_empty() { 0 } else { 1 };
    let available = MAX_IDENTIFIER.saturating_sub(overhead);
    let (mut chars1, mut chars2) = (name1.len(), name2.len());
    while chars1 + chars2 > available {
        if chars1 > chars2 {
            chars1 -= 1;
        } else {
            chars2 -= 1;
        }
    }
    let mut name = clip(name1, chars1).to_owned();
    if !name2.is_empty() {
        name.push('_');
        name.push_str(clip(name2, chars2));
    }
    name.push('_');
    name.push_str(label);
    name
}

/// The longest prefix of `s` of at most `bytes` bytes that ends on a character boundary.
fn clip(s: &str, bytes: usize) -> &str {
    let mut end = bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Column names joined with `_`, as `ChooseIndexNameAddition` and
/// `ChooseForeignKeyConstraintNameAddition` build them (later shortened by the caller).
pub fn columns_addition(columns: &[String]) -> String {
    let mut addition = String::new();
    for column in columns {
        if !addition.is_empty() {
            addition.push('_');
        }
        addition.push_str(column);
        if addition.len() >= MAX_IDENTIFIER {
            break;
        }
    }
    addition
}

/// The first of `name1_name2_label`, `name1_name2_label1`, `…label2`, … not in `used`; it is
/// added to `used`. PostgreSQL checks the whole schema the same way.
pub fn choose(
    used: &mut BTreeSet<String>,
    name1: &str,
    name2: Option<&str>,
    label: &str,
) -> String {
    let mut name = make_object_name(name1, name2, label);
    let mut pass = 0u32;
    while used.contains(&name) {
        pass += 1;
        name = make_object_name(name1, name2, &format!("{label}{pass}"));
    }
    used.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_joined() {
        let mut used = BTreeSet::new();
        assert_eq!(choose(&mut used, "orders", None, "pkey"), "orders_pkey");
        assert_eq!(
            choose(&mut used, "orders", Some("user_id"), "fkey"),
            "orders_user_id_fkey"
        );
        assert_eq!(
            choose(&mut used, "orders", Some("user_id"), "fkey"),
            "orders_user_id_fkey1"
        );
    }

    #[test]
    fn long_names_are_shortened_to_63_bytes_longer_part_first() {
        let table = "t".repeat(40);
        let column = "c".repeat(40);
        let name = make_object_name(&table, Some(&column), "fkey");
        assert_eq!(name.len(), 63);
        assert_eq!(name, format!("{}_{}_fkey", "t".repeat(29), "c".repeat(28)));
        let wide = "é".repeat(40);
        assert!(make_object_name(&wide, None, "pkey").len() <= 63);
    }
}
