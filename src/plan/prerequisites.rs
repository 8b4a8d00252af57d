//! Checking every prerequisite of a plan: each names a change of the plan, a resource known to
//! be in place, or a deferred one (then the change waits too). Anything else is a planner bug,
//! reported, never ignored.

use std::collections::BTreeSet;

use super::{Address, Change, DeferReason, Deferral, PlanError};

/// Move the changes that wait for something deferred into `deferred` (transitively), and fail
/// on a prerequisite that is neither planned, deferred, nor in `known`.
pub fn settle(
    mut changes: Vec<Change>,
    mut deferred: Vec<Deferral>,
    known: &BTreeSet<Address>,
) -> Result<(Vec<Change>, Vec<Deferral>), PlanError> {
    loop {
        let planned: BTreeSet<&Address> = changes.iter().map(|c| &c.address).collect();
        let waiting: BTreeSet<&Address> = deferred.iter().map(|d| &d.address).collect();
        let mut held = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            for prerequisite in all_prerequisites(change) {
                if planned.contains(prerequisite) {
                    continue;
                }
                if waiting.contains(prerequisite) {
                    held.push((i, prerequisite.clone()));
                    break;
                }
                if !known.contains(prerequisite) {
                    return Err(PlanError::UnknownPrerequisite {
                        change: change.address.clone(),
                        prerequisite: prerequisite.clone(),
                    });
                }
            }
        }
        if held.is_empty() {
            return Ok((changes, deferred));
        }
        for (i, address) in held.into_iter().rev() {
            let change = changes.remove(i);
            deferred.push(Deferral {
                address: change.address,
                reason: DeferReason::WaitsFor { address },
            });
        }
    }
}

/// The change's prerequisites and those of its early start.
fn all_prerequisites(change: &Change) -> impl Iterator<Item = &Address> {
    let early = match &change.operation {
        super::Operation::RunServer {
            start_early_after: Some(after),
            ..
        } => after.as_slice(),
        _ => &[],
    };
    change.after.iter().chain(early)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Operation};

    fn change(address: Address, after: Vec<Address>) -> Change {
        Change {
            address,
            action: Action::Create,
            reason: String::new(),
            details: vec![],
            after,
            operation: Operation::RemoveNetwork { name: "n".into() },
        }
    }

    #[test]
    fn a_change_waiting_for_a_deferred_one_is_deferred_too_and_so_on() {
        let schema = Address::schema("shard");
        let table = Address::FragmentedTable("orders".into());
        let copy = Address::ReferenceCopy("products".into());
        let changes = vec![
            change(table.clone(), vec![schema.clone()]),
            change(copy.clone(), vec![table.clone()]),
            change(Address::node("primary"), vec![]),
        ];
        let deferred = vec![Deferral {
            address: schema.clone(),
            reason: DeferReason::NotAnswering {
                node: "shard".into(),
            },
        }];
        let (changes, deferred) = settle(changes, deferred, &BTreeSet::new()).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].address, Address::node("primary"));
        let reasons: Vec<(&Address, &DeferReason)> =
            deferred.iter().map(|d| (&d.address, &d.reason)).collect();
        assert!(reasons.contains(&(
            &table,
            &DeferReason::WaitsFor {
                address: schema.clone()
            }
        )));
        assert!(reasons.contains(&(&copy, &DeferReason::WaitsFor { address: table })));
    }

    #[test]
    fn a_prerequisite_that_names_nothing_is_an_error() {
        let changes = vec![change(
            Address::node("replica"),
            vec![Address::node("primary"), Address::node("nowhere")],
        )];
        let known = BTreeSet::from([Address::node("primary")]);
        let error = settle(changes, Vec::new(), &known).unwrap_err();
        assert!(error.to_string().contains("node.nowhere"), "{error}");
    }
}
