//! What exists of the MongoDB replica sets: member containers (by their labels) and what the
//! first member reports of its set and collections.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::ObserveError;
use crate::model::label;
use crate::mongo::client;
use crate::mongo::diff::SetState;
use crate::observed::{FoundMember, SetObservation};

/// Member containers of `env`, by set, then by node.
pub async fn members(
    docker: &Docker,
    env: &str,
) -> Result<BTreeMap<String, BTreeMap<String, FoundMember>>, ObserveError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={env}", label::ENV), label::MONGO_SET.to_owned()],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let mut out: BTreeMap<String, BTreeMap<String, FoundMember>> = BTreeMap::new();
    for summary in docker.list_containers(Some(options)).await? {
        let labels = summary.labels.unwrap_or_default();
        let (Some(set), Some(node)) = (labels.get(label::MONGO_SET), labels.get(label::NODE))
        else {
            continue;
        };
        out.entry(set.clone()).or_default().insert(
            node.clone(),
            FoundMember {
                running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
                spec_hash: labels.get(label::SPEC_HASH).cloned().unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// What the member of `set` at `host_port` reports: its set and, once dbtopo can log in, the
/// collections of `database`. Anything that keeps it from answering within its deadlines is
/// `Unknown`, with an error that names the set and the port.
pub async fn set(
    set: &str,
    host_port: u16,
    admin_password: &str,
    database: &str,
) -> SetObservation {
    let observed = async {
        let target = client::Target::set(set, host_port);
        let member = match client::connect(target, Some(admin_password)).await {
            Ok(member) => member,
            // dbtopo's user cannot log in: it was never made (the password is dbtopo's own).
            Err(error) if error.is_authentication() => {
                return Ok(SetObservation::Found {
                    state: SetState::NoAdminUser,
                    collections: BTreeMap::new(),
                    member_states: BTreeMap::new(),
                });
            }
            Err(error) => return Err(error),
        };
        let state = client::set_state(&member).await?;
        let (collections, member_states) = match state {
            SetState::Initiated { .. } => (
                client::collections(&member, database).await?,
                client::member_states(&member).await?,
            ),
            _ => (BTreeMap::new(), BTreeMap::new()),
        };
        Ok::<_, client::MongoError>(SetObservation::Found {
            state,
            collections,
            member_states,
        })
    };
    match observed.await {
        Ok(found) => found,
        Err(error) => SetObservation::Unknown(error.to_string()),
    }
}
