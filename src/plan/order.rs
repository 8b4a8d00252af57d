//! Ordering changes into waves: each wave holds the changes whose prerequisites are all in
//! earlier waves, so a wave's changes can run in parallel.

use std::collections::HashMap;

use super::{Address, Change, Operation};

/// For each change, the indexes of the changes in the plan it waits for.
pub fn prerequisites(changes: &[Change]) -> Vec<Vec<usize>> {
    let index = address_index(changes);
    changes.iter().map(|c| indexes(&index, &c.after)).collect()
}

/// The same for the early start of the changes that have one.
pub fn early_prerequisites(changes: &[Change]) -> Vec<Option<Vec<usize>>> {
    let index = address_index(changes);
    changes
        .iter()
        .map(|c| match &c.operation {
            Operation::RunServer {
                start_early_after: Some(after),
                ..
            } => Some(indexes(&index, after)),
            _ => None,
        })
        .collect()
}

fn address_index(changes: &[Change]) -> HashMap<&Address, usize> {
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.address, i))
        .collect()
}

fn indexes(index: &HashMap<&Address, usize>, addresses: &[Address]) -> Vec<usize> {
    addresses
        .iter()
        .filter_map(|a| index.get(a).copied())
        .collect()
}

/// Kahn's algorithm by levels. Prerequisites that are not in the plan are already satisfied.
/// A cycle (a bug in the diff) ends up in one last wave rather than being dropped.
pub fn waves(changes: &[Change]) -> Vec<Vec<usize>> {
    let prerequisites = prerequisites(changes);
    let mut wave_of: Vec<Option<usize>> = vec![None; changes.len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    loop {
        let ready: Vec<usize> = (0..changes.len())
            .filter(|&i| wave_of[i].is_none())
            .filter(|&i| prerequisites[i].iter().all(|&p| wave_of[p].is_some()))
            .collect();
        if ready.is_empty() {
            break;
        }
        for &i in &ready {
            wave_of[i] = Some(waves.len());
        }
        waves.push(ready);
    }
    let stuck: Vec<usize> = (0..changes.len())
        .filter(|&i| wave_of[i].is_none())
        .collect();
    if !stuck.is_empty() {
        waves.push(stuck);
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Operation};

    fn change(address: &str, after: &[&str]) -> Change {
        Change {
            address: address.into(),
            action: Action::Create,
            reason: String::new(),
            details: vec![],
            after: after.iter().map(|&s| s.into()).collect(),
            operation: Operation::RemoveNetwork { name: "n".into() },
        }
    }

    #[test]
    fn independent_changes_share_a_wave_and_dependents_follow() {
        let changes = vec![
            change("node.replica", &["node.primary", "slot.primary.s"]),
            change("slot.primary.s", &["node.primary"]),
            change("node.primary", &["network.net", "volume.primary"]),
            change("network.net", &[]),
            change("volume.primary", &[]),
            change("volume.replica", &[]),
        ];
        assert_eq!(
            waves(&changes),
            vec![vec![3, 4, 5], vec![2], vec![1], vec![0]]
        );
    }

    #[test]
    fn prerequisites_outside_the_plan_are_ignored() {
        let changes = vec![change("node.replica", &["node.primary"])];
        assert_eq!(waves(&changes), vec![vec![0]]);
    }
}
