//! Command dispatch, the replies of the hello family, the member-state checks of reads and
//! writes, and mongod's error document.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, DateTime, Document, doc};

use super::auth::{self, Connection};
use super::state::{MemberState, State};
use super::wire::{MAX_MESSAGE_SIZE_BYTES, Request};
use super::{collections, indexes, replset, updates, users};

/// MongoDB 7.0's wire version.
const MAX_WIRE_VERSION: i32 = 21;
const VERSION: &str = "7.0.14";
const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
const MAX_WRITE_BATCH_SIZE: i32 = 100_000;

/// Fields any command may carry, which no handler treats as an option of its own.
pub const GENERIC_ARGUMENTS: &[&str] = &[
    "$db",
    "$readPreference",
    "$clusterTime",
    "lsid",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "writeConcern",
    "readConcern",
    "comment",
    "maxTimeMS",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "$audit",
    "$client",
];

/// mongod's `{ok: 0, errmsg, code, codeName}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    pub code: i32,
    pub code_name: &'static str,
    pub errmsg: String,
}

impl CommandError {
    pub fn new(code: i32, errmsg: impl Into<String>) -> Self {
        Self {
            code,
            code_name: code_name(code),
            errmsg: errmsg.into(),
        }
    }

    fn into_document(self) -> Document {
        doc! { "ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": self.code_name }
    }
}

pub type CommandResult = Result<Document, CommandError>;

/// The code names of the error codes the double returns, as in mongod's error_codes.yml.
fn code_name(code: i32) -> &'static str {
    match code {
        2 => "BadValue",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        17 => "ProtocolError",
        18 => "AuthenticationFailed",
        23 => "AlreadyInitialized",
        26 => "NamespaceNotFound",
        27 => "IndexNotFound",
        28 => "PathNotViable",
        40 => "ConflictingUpdateOperators",
        48 => "NamespaceExists",
        59 => "CommandNotFound",
        66 => "ImmutableField",
        67 => "CannotCreateIndex",
        72 => "InvalidOptions",
        73 => "InvalidNamespace",
        74 => "NodeNotFound",
        85 => "IndexOptionsConflict",
        86 => "IndexKeySpecsConflict",
        93 => "InvalidReplicaSetConfig",
        94 => "NotYetInitialized",
        103 => "NewReplicaSetConfigurationIncompatible",
        197 => "InvalidIndexSpecificationOption",
        334 => "MechanismUnavailable",
        10107 => "NotWritablePrimary",
        11000 => "DuplicateKey",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        40414 => "Location40414",
        40415 => "Location40415",
        51003 => "Location51003",
        _ => "UnknownError",
    }
}

/// The topology version an awaitable hello waits on, and for how long at most.
pub struct AwaitedTopology {
    pub process_id: ObjectId,
    pub counter: i64,
    pub max_await: Duration,
}

/// Whether `body` is an awaitable hello (the driver's streaming monitor).
pub fn awaited_topology_version(body: &Document) -> Option<AwaitedTopology> {
    let name = body.keys().next()?;
    if !matches!(name.as_str(), "hello" | "isMaster" | "ismaster") {
        return None;
    }
    let version = body.get_document("topologyVersion").ok()?;
    let max_await = integer(body.get("maxAwaitTimeMS")?)?;
    Some(AwaitedTopology {
        process_id: version.get_object_id("processId").ok()?,
        counter: integer(version.get("counter")?)?,
        max_await: Duration::from_millis(u64::try_from(max_await).ok()?),
    })
}

/// A number as mongod reads one where it expects an integer: any numeric BSON type.
pub fn integer(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(value) => Some(i64::from(*value)),
        Bson::Int64(value) => Some(*value),
        Bson::Double(value) if value.fract() == 0.0 => Some(*value as i64),
        _ => None,
    }
}

/// BSON's type names, as mongod's TypeMismatch messages give them.
pub fn type_name(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Boolean(_) => "bool",
        Bson::Null => "null",
        Bson::Int32(_) => "int",
        Bson::Int64(_) => "long",
        Bson::ObjectId(_) => "objectId",
        Bson::DateTime(_) => "date",
        Bson::Binary(_) => "binData",
        _ => "other",
    }
}

/// Runs one command and returns its reply document.
pub fn handle(state: &mut State, connection: &mut Connection, request: &Request) -> Document {
    let Some(name) = request.body.keys().next().cloned() else {
        return CommandError::new(59, "no such command: ''").into_document();
    };
    let result = auth::check_access(state, connection, &name)
        .and_then(|()| run(state, connection, &name, &request.database, &request.body));
    match result {
        Ok(mut reply) => {
            if !reply.contains_key("ok") {
                reply.insert("ok", 1.0);
            }
            reply
        }
        Err(error) => error.into_document(),
    }
}

fn run(
    state: &mut State,
    connection: &mut Connection,
    name: &str,
    database: &str,
    body: &Document,
) -> CommandResult {
    match name {
        "hello" | "isMaster" | "ismaster" => hello(state, connection, name, database, body),
        "ping" | "endSessions" => Ok(Document::new()),
        "buildInfo" | "buildinfo" => Ok(doc! {
            "version": VERSION,
            "versionArray": [7, 0, 14, 0],
            "gitVersion": "0000000000000000000000000000000000000000",
            "bits": 64,
            "debug": false,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "modules": [],
            "storageEngines": ["devnull", "wiredTiger"],
        }),
        "saslStart" => auth::sasl_start(state, connection, database, body),
        "saslContinue" => auth::sasl_continue(connection, body),
        "replSetInitiate" => replset::initiate(state, body),
        "replSetGetStatus" => replset::get_status(state),
        "replSetGetConfig" => replset::get_config(state),
        "replSetReconfig" => replset::reconfig(state, body),
        "createUser" => users::create(state, database, body),
        "updateUser" => users::update(state, database, body),
        "dropUser" => users::drop(state, database, body),
        "usersInfo" => users::info(state, database, body),
        "create" => collections::create(state, database, body),
        "collMod" => collections::coll_mod(state, database, body),
        "listCollections" => collections::list_collections(state, database, body),
        "drop" => collections::drop(state, database, body),
        "createIndexes" => indexes::create_indexes(state, database, body),
        "listIndexes" => indexes::list_indexes(state, database, body),
        "dropIndexes" => indexes::drop_indexes(state, database, body),
        "insert" => collections::insert(state, database, body),
        "find" => collections::find(state, database, body),
        "delete" => collections::delete(state, database, body),
        "update" => updates::update(state, database, body),
        _ => Err(CommandError::new(59, format!("no such command: '{name}'"))),
    }
}

/// Writes need a primary, as on mongod.
pub fn require_primary(state: &State) -> Result<(), CommandError> {
    if state.member_state() == MemberState::Primary {
        Ok(())
    } else {
        Err(CommandError::new(10107, "not primary"))
    }
}

/// Reads need a primary, or a secondary when the client allows reading from one (in OP_MSG,
/// a `$readPreference` other than `primary`).
pub fn require_readable(state: &State, body: &Document) -> Result<(), CommandError> {
    match state.member_state() {
        MemberState::Primary => Ok(()),
        MemberState::Uninitiated => Err(CommandError::new(
            13436,
            "node is not in primary or recovering state",
        )),
        MemberState::Secondary => {
            let mode = body
                .get_document("$readPreference")
                .ok()
                .and_then(|preference| preference.get_str("mode").ok())
                .unwrap_or("primary");
            if mode == "primary" {
                Err(CommandError::new(
                    13435,
                    "not primary and secondaryOk=false",
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn hello(
    state: &mut State,
    connection: &mut Connection,
    name: &str,
    database: &str,
    body: &Document,
) -> CommandResult {
    let member_state = state.member_state();
    let writable = member_state == MemberState::Primary;
    let mut reply = doc! {
        "topologyVersion": { "processId": state.process_id, "counter": state.topology_counter },
    };
    // The legacy command answers with the legacy field name.
    if name == "hello" {
        reply.insert("isWritablePrimary", writable);
    } else {
        reply.insert("ismaster", writable);
    }
    match &state.replica_set {
        None => {
            reply.insert("secondary", false);
            reply.insert("info", "Does not have a valid replica set config");
            reply.insert("isreplicaset", true);
        }
        Some(replica_set) => {
            let config = &replica_set.config;
            let roles = replset::host_roles(config);
            reply.insert("hosts", roles.hosts);
            if !roles.passives.is_empty() {
                reply.insert("passives", roles.passives);
            }
            if !roles.arbiters.is_empty() {
                reply.insert("arbiters", roles.arbiters);
            }
            reply.insert("setName", state.options.replica_set_name.clone());
            reply.insert(
                "setVersion",
                config.get("version").cloned().unwrap_or(Bson::Int32(1)),
            );
            reply.insert("secondary", !writable);
            let me = state.my_host().unwrap_or_default();
            if writable {
                reply.insert("primary", me.clone());
            }
            reply.insert("me", me);
            if writable {
                reply.insert(
                    "electionId",
                    ObjectId::parse_str("7fffffff0000000000000001").unwrap_or_default(),
                );
            }
        }
    }
    reply.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
    reply.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE_BYTES);
    reply.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    reply.insert("localTime", DateTime::now());
    reply.insert("logicalSessionTimeoutMinutes", 30);
    reply.insert("connectionId", connection.id);
    reply.insert("minWireVersion", 0);
    reply.insert("maxWireVersion", MAX_WIRE_VERSION);
    reply.insert("readOnly", false);
    if body.get_bool("helloOk").unwrap_or(false) {
        reply.insert("helloOk", true);
    }
    if let Ok(qualified_user) = body.get_str("saslSupportedMechs")
        && let Some(user) = state.users.get(qualified_user)
    {
        reply.insert("saslSupportedMechs", user.mechanisms.clone());
    }
    // Speculative authentication: the first SCRAM step rides on the handshake. If it fails,
    // mongod leaves it out of the reply and the driver authenticates the ordinary way.
    if let Ok(speculative) = body.get_document("speculativeAuthenticate") {
        let source = speculative.get_str("db").unwrap_or(database).to_string();
        if let Ok(first_step) = auth::sasl_start(state, connection, &source, speculative) {
            reply.insert("speculativeAuthenticate", first_step);
        }
    }
    Ok(reply)
}
