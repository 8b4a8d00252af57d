//! The replica set commands, with the checks and messages of mongod's
//! `repl_set_config_checks.cpp` and `replication_coordinator_impl.cpp`. Errors found while
//! validating a config are InvalidReplicaSetConfig (93) for `replSetInitiate` and
//! NewReplicaSetConfigurationIncompatible (103) for `replSetReconfig`, because mongod wraps
//! them so.

use std::collections::BTreeSet;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, DateTime, Document, doc};

use super::commands::{CommandError, CommandResult, integer};
use super::state::{MemberState, State};

const MAX_MEMBERS: usize = 50;
const MAX_VOTING_MEMBERS: usize = 7;

/// The member fields mongod fills in, in the order it reports them.
const MEMBER_FIELDS: &[&str] = &[
    "_id",
    "host",
    "arbiterOnly",
    "buildIndexes",
    "hidden",
    "priority",
    "tags",
    "secondaryDelaySecs",
    "votes",
];

/// Hosts as hello lists them: electable members, priority-0 members and arbiters.
pub struct HostRoles {
    pub hosts: Vec<String>,
    pub passives: Vec<String>,
    pub arbiters: Vec<String>,
}

pub fn host_roles(config: &Document) -> HostRoles {
    let mut roles = HostRoles {
        hosts: Vec::new(),
        passives: Vec::new(),
        arbiters: Vec::new(),
    };
    for member in members(config) {
        let host = member.get_str("host").unwrap_or_default().to_string();
        if member.get_bool("hidden").unwrap_or(false) {
            continue;
        }
        if member.get_bool("arbiterOnly").unwrap_or(false) {
            roles.arbiters.push(host);
        } else if priority(member) == 0.0 {
            roles.passives.push(host);
        } else {
            roles.hosts.push(host);
        }
    }
    roles
}

fn members(config: &Document) -> impl Iterator<Item = &Document> {
    config
        .get_array("members")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
}

fn priority(member: &Document) -> f64 {
    match member.get("priority") {
        Some(Bson::Double(value)) => *value,
        Some(other) => integer(other).unwrap_or(1) as f64,
        None => 1.0,
    }
}

fn is_voter(member: &Document) -> bool {
    member.get("votes").and_then(integer).unwrap_or(1) != 0
}

fn version(config: &Document) -> i64 {
    config.get("version").and_then(integer).unwrap_or(1)
}

fn term(config: &Document) -> i64 {
    config.get("term").and_then(integer).unwrap_or(-1)
}

fn version_and_term(config: &Document) -> String {
    format!("{{version: {}, term: {}}}", version(config), term(config))
}

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(93, message)
}

/// Parses a config as mongod's IDL would: the shape must be right (else 93 whatever the
/// command), and the defaults are filled in.
fn parse_config(config: &Document) -> Result<Document, CommandError> {
    let set_name = match config.get("_id") {
        Some(Bson::String(name)) => name.clone(),
        Some(_) => {
            return Err(invalid(
                "BSON field 'ReplSetConfig._id' is the wrong type, expected type 'string'",
            ));
        }
        None => {
            return Err(invalid(
                "BSON field 'ReplSetConfig._id' is missing but a required field",
            ));
        }
    };
    let Some(Bson::Array(given_members)) = config.get("members") else {
        return Err(invalid(
            "BSON field 'ReplSetConfig.members' is missing but a required field",
        ));
    };
    let mut parsed_members = Vec::with_capacity(given_members.len());
    for given in given_members {
        let Bson::Document(given) = given else {
            return Err(invalid(
                "Expected type object for member of 'members' array",
            ));
        };
        parsed_members.push(Bson::Document(parse_member(given)?));
    }
    let mut parsed = doc! {
        "_id": set_name,
        "version": config.get("version").and_then(integer).map_or(Bson::Int32(1), |v| Bson::Int32(v as i32)),
        "term": config.get("term").and_then(integer).unwrap_or(0),
        "members": parsed_members,
        "protocolVersion": 1i64,
        "writeConcernMajorityJournalDefault": config.get_bool("writeConcernMajorityJournalDefault").unwrap_or(true),
    };
    let mut settings = doc! {
        "chainingAllowed": true,
        "heartbeatIntervalMillis": 2000,
        "heartbeatTimeoutSecs": 10,
        "electionTimeoutMillis": 10000,
        "catchUpTimeoutMillis": -1,
        "catchUpTakeoverDelayMillis": 30000,
        "getLastErrorModes": {},
        "getLastErrorDefaults": { "w": 1, "wtimeout": 0 },
        "replicaSetId": ObjectId::new(),
    };
    if let Ok(given_settings) = config.get_document("settings") {
        for (key, value) in given_settings {
            settings.insert(key.clone(), value.clone());
        }
    }
    parsed.insert("settings", settings);
    Ok(parsed)
}

fn parse_member(given: &Document) -> Result<Document, CommandError> {
    let id = given
        .get("_id")
        .and_then(integer)
        .ok_or_else(|| invalid("BSON field 'MemberConfig._id' is missing but a required field"))?;
    let host = given
        .get_str("host")
        .map_err(|_| invalid("BSON field 'MemberConfig.host' is missing but a required field"))?;
    let arbiter = given.get_bool("arbiterOnly").unwrap_or(false);
    let votes = given.get("votes").and_then(integer).unwrap_or(1);
    let mut member = doc! {
        "_id": id as i32,
        "host": host,
        "arbiterOnly": arbiter,
        "buildIndexes": given.get_bool("buildIndexes").unwrap_or(true),
        "hidden": given.get_bool("hidden").unwrap_or(false),
        "priority": given.get("priority").cloned().unwrap_or(Bson::Int32(if arbiter { 0 } else { 1 })),
        "tags": given.get_document("tags").cloned().unwrap_or_default(),
        "secondaryDelaySecs": given.get("secondaryDelaySecs").and_then(integer).unwrap_or(0),
        "votes": votes as i32,
    };
    for (key, value) in given {
        if !MEMBER_FIELDS.contains(&key.as_str()) {
            member.insert(key.clone(), value.clone());
        }
    }
    Ok(member)
}

/// mongod's `ReplSetConfig::validate`: returns the message, which each command wraps in its
/// own error code.
fn validate(config: &Document) -> Result<(), String> {
    let all: Vec<&Document> = members(config).collect();
    if all.is_empty() || all.len() > MAX_MEMBERS {
        return Err(format!(
            "Replica set configuration contains {} members, but must have at least 1 and no more than  {MAX_MEMBERS}",
            all.len()
        ));
    }
    let (mut ids, mut hosts) = (BTreeSet::new(), BTreeSet::new());
    for (index, member) in all.iter().enumerate() {
        let id = member.get("_id").and_then(integer).unwrap_or_default();
        let host = member.get_str("host").unwrap_or_default();
        if !ids.insert(id) {
            return Err(format!(
                "Found two member configurations with same _id field, members.{index}._id == {id}"
            ));
        }
        if !hosts.insert(host) {
            return Err(format!(
                "Found two member configurations with same host field, members.{index}.host == {host}"
            ));
        }
        let votes = member.get("votes").and_then(integer).unwrap_or(1);
        if votes != 0 && votes != 1 {
            return Err(format!("votes field value is {votes} but must be 0 or 1"));
        }
        if votes == 0 && priority(member) != 0.0 {
            return Err("priority must be 0 when non-voting (votes:0)".to_string());
        }
    }
    let voters = all.iter().filter(|member| is_voter(member)).count();
    if voters == 0 || voters > MAX_VOTING_MEMBERS {
        return Err(format!(
            "Replica set configuration contains {voters} voting members, but must be at least 1 and no more than {MAX_VOTING_MEMBERS}"
        ));
    }
    let electable = all
        .iter()
        .any(|member| !member.get_bool("arbiterOnly").unwrap_or(false) && priority(member) > 0.0);
    if !electable {
        return Err("Replica set configuration must contain at least one non-arbiter member with priority > 0".to_string());
    }
    Ok(())
}

/// mongod must find itself in a config it accepts.
fn check_self_in(state: &State, config: &Document) -> Result<(), CommandError> {
    let Some(self_host) = &state.options.self_host else {
        return Ok(());
    };
    if members(config).any(|member| member.get_str("host") == Ok(self_host)) {
        return Ok(());
    }
    Err(CommandError::new(
        74,
        format!(
            "No host described in new configuration with {} for replica set {} maps to this node",
            version_and_term(config),
            state.options.replica_set_name
        ),
    ))
}

pub fn initiate(state: &mut State, body: &Document) -> CommandResult {
    if state.replica_set.is_some() {
        return Err(CommandError::new(23, "already initialized"));
    }
    let given = match body.get("replSetInitiate") {
        Some(Bson::Document(config)) if !config.is_empty() => config.clone(),
        // No config: mongod makes one with itself as the only member.
        _ => doc! {
            "_id": state.options.replica_set_name.clone(),
            "version": 1,
            "members": [{ "_id": 0, "host": state.options.self_host.clone().unwrap_or_else(|| state.address.clone()) }],
        },
    };
    let config = parse_config(&given)?;
    let set_name = config.get_str("_id").unwrap_or_default();
    if set_name != state.options.replica_set_name {
        return Err(invalid(format!(
            "Attempting to initiate a replica set with name {set_name}, but command line reports {}; rejecting",
            state.options.replica_set_name
        )));
    }
    validate(&config).map_err(invalid)?;
    if version(&config) != 1 {
        return Err(CommandError::new(
            103,
            format!(
                "Configuration used to initiate a replica set must  have version 1, but found {}",
                version(&config)
            ),
        ));
    }
    check_self_in(state, &config)?;
    let delay = state.options.election_delay;
    state.initiate(config, delay);
    Ok(Document::new())
}

fn require_config(state: &State) -> Result<&Document, CommandError> {
    state
        .replica_set
        .as_ref()
        .map(|replica_set| &replica_set.config)
        .ok_or_else(|| CommandError::new(94, "no replset config has been received"))
}

pub fn get_config(state: &State) -> CommandResult {
    Ok(doc! { "config": require_config(state)?.clone() })
}

pub fn get_status(state: &State) -> CommandResult {
    let config = require_config(state)?;
    let my_state = state.member_state();
    let me = state.my_host().unwrap_or_default();
    let mut status_members = Vec::new();
    for member in members(config) {
        let host = member.get_str("host").unwrap_or_default();
        let (code, name) = if host == me {
            (my_state.code(), my_state.name())
        } else if member.get_bool("arbiterOnly").unwrap_or(false) {
            (7, "ARBITER")
        } else {
            (MemberState::Secondary.code(), MemberState::Secondary.name())
        };
        let mut status = doc! {
            "_id": member.get("_id").cloned().unwrap_or(Bson::Int32(0)),
            "name": host,
            "health": 1.0,
            "state": code,
            "stateStr": name,
            "uptime": 0,
            "configVersion": version(config) as i32,
            "configTerm": term(config),
        };
        if host == me {
            status.insert("self", true);
        }
        status_members.push(status);
    }
    let voters = members(config).filter(|member| is_voter(member)).count() as i32;
    Ok(doc! {
        "set": state.options.replica_set_name.clone(),
        "date": DateTime::now(),
        "myState": my_state.code(),
        "term": term(config).max(0),
        "heartbeatIntervalMillis": 2000i64,
        "majorityVoteCount": voters / 2 + 1,
        "writeMajorityCount": voters / 2 + 1,
        "votingMembersCount": voters,
        "members": status_members,
    })
}

pub fn reconfig(state: &mut State, body: &Document) -> CommandResult {
    let old = require_config(state)
        .map_err(|_| {
            CommandError::new(
                94,
                "Node not yet initialized; use the replSetInitiate command",
            )
        })?
        .clone();
    if state.member_state() != MemberState::Primary {
        return Err(CommandError::new(
            10107,
            format!(
                "replSetReconfig should only be run on a writable PRIMARY. Current state {};",
                state.member_state().name()
            ),
        ));
    }
    let Ok(given) = body.get_document("replSetReconfig") else {
        return Err(CommandError::new(
            14,
            "BSON field 'replSetReconfig' is the wrong type, expected type 'object'",
        ));
    };
    let force = body.get_bool("force").unwrap_or(false);
    let mut config = parse_config(given)?;
    let set_name = config.get_str("_id").unwrap_or_default().to_string();
    if set_name != state.options.replica_set_name {
        return Err(invalid(format!(
            "Attempting to reconfigure a replica set with name {set_name}, but command line reports {}; rejecting",
            state.options.replica_set_name
        )));
    }
    // The term is the current one whatever the client sent; the set's id never changes.
    config.insert("term", term(&old));
    if let (Ok(settings), Ok(old_settings)) = (
        config.get_document_mut("settings"),
        old.get_document("settings"),
    ) && let Some(id) = old_settings.get("replicaSetId")
    {
        settings.insert("replicaSetId", id.clone());
    }
    if force && version(&config) <= version(&old) {
        // A forced reconfig jumps the version so it wins over any concurrent one.
        config.insert("version", (version(&old) + 10_000) as i32);
    }
    let incompatible = |message: String| CommandError::new(103, message);
    validate(&config).map_err(incompatible)?;
    if version(&config) <= version(&old) {
        return Err(incompatible(format!(
            "New replica set configuration version and term must be greater than old, but {} is not greater than {} for replica set {}",
            version_and_term(&config),
            version_and_term(&old),
            set_name
        )));
    }
    for new_member in members(&config) {
        for old_member in members(&old) {
            let same_id =
                new_member.get("_id").and_then(integer) == old_member.get("_id").and_then(integer);
            let same_host = new_member.get_str("host") == old_member.get_str("host");
            if same_host && !same_id {
                return Err(incompatible(format!(
                    "New and old configurations both have members with host of {} but in the new configuration the _id field is {} and in the old configuration it is {} for replica set {set_name}",
                    new_member.get_str("host").unwrap_or_default(),
                    new_member.get("_id").and_then(integer).unwrap_or_default(),
                    old_member.get("_id").and_then(integer).unwrap_or_default(),
                )));
            }
            if same_id
                && same_host
                && new_member.get_bool("arbiterOnly") != old_member.get_bool("arbiterOnly")
            {
                return Err(incompatible(format!(
                    "New and old configurations differ in the setting of the arbiterOnly field for member {}; to make this change, remove then re-add the member",
                    new_member.get_str("host").unwrap_or_default()
                )));
            }
        }
    }
    if !force {
        let voting_ids = |config: &Document| -> BTreeSet<i64> {
            members(config)
                .filter(|member| is_voter(member))
                .filter_map(|member| member.get("_id").and_then(integer))
                .collect()
        };
        let (old_voters, new_voters) = (voting_ids(&old), voting_ids(&config));
        if old_voters.symmetric_difference(&new_voters).count() > 1 {
            return Err(incompatible(
                "Non force replica set reconfig can only add or remove at most 1 voting member."
                    .to_string(),
            ));
        }
    }
    check_self_in(state, &config)?;
    if let Some(replica_set) = &mut state.replica_set {
        replica_set.config = config;
    }
    state.topology_changed();
    Ok(Document::new())
}
