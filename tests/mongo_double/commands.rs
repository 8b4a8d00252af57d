//! Command dispatch: the per-connection state, the access checks mongod makes before running
//! a command, the replies of the hello family, and mongod's error document.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc, spec::BinarySubtype};

use super::scram::{Conversation, ScramFailure, user_of_client_first};
use super::state::{LoggedCommand, MemberState, State};
use super::wire::{MAX_MESSAGE_SIZE_BYTES, Request};
use super::{collections, indexes, replset, users};

/// MongoDB 7.0's wire version.
const MAX_WIRE_VERSION: i32 = 21;
const VERSION: &str = "7.0.14";
const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Commands mongod runs for anyone, authenticated or not.
const COMMANDS_WITHOUT_AUTH: &[&str] = &[
    "hello",
    "isMaster",
    "ismaster",
    "ping",
    "buildInfo",
    "buildinfo",
    "saslStart",
    "saslContinue",
    "endSessions",
];

/// What the localhost exception allows until the first user exists: the steps of mongod's
/// documented keyFile deployment (initiate the set, then create the first user).
const LOCALHOST_EXCEPTION_COMMANDS: &[&str] = &["createUser", "replSetInitiate"];

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
        48 => "NamespaceExists",
        59 => "CommandNotFound",
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

/// A connection's own state: who authenticated on it and its SCRAM conversation.
pub struct Connection {
    pub id: i64,
    pub authenticated_user: Option<String>,
    conversation: Option<Conversation>,
    skip_empty_exchange: bool,
}

impl Connection {
    pub fn new(id: i64) -> Self {
        Self {
            id,
            authenticated_user: None,
            conversation: None,
            skip_empty_exchange: false,
        }
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
    state.command_log.push(LoggedCommand {
        database: request.database.clone(),
        name: name.clone(),
    });
    let result = check_access(state, connection, &name)
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

fn check_access(state: &State, connection: &Connection, name: &str) -> Result<(), CommandError> {
    if !state.options.access_control
        || connection.authenticated_user.is_some()
        || COMMANDS_WITHOUT_AUTH.contains(&name)
        || (state.users.is_empty() && LOCALHOST_EXCEPTION_COMMANDS.contains(&name))
    {
        return Ok(());
    }
    Err(CommandError::new(
        13,
        format!("command {name} requires authentication"),
    ))
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
        "saslStart" => sasl_start(state, connection, database, body),
        "saslContinue" => sasl_continue(connection, body),
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
        if let Ok(first_step) = sasl_start(state, connection, &source, speculative) {
            reply.insert("speculativeAuthenticate", first_step);
        }
    }
    Ok(reply)
}

fn payload_bytes(body: &Document) -> Result<Vec<u8>, CommandError> {
    match body.get("payload") {
        Some(Bson::Binary(binary)) => Ok(binary.bytes.clone()),
        Some(Bson::String(text)) => Ok(text.clone().into_bytes()),
        _ => Err(CommandError::new(
            40414,
            "BSON field 'payload' is missing but a required field",
        )),
    }
}

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

fn authentication_failed(_why: ScramFailure) -> CommandError {
    CommandError::new(18, "Authentication failed.")
}

fn sasl_start(
    state: &State,
    connection: &mut Connection,
    database: &str,
    body: &Document,
) -> CommandResult {
    let mechanism = body.get_str("mechanism").unwrap_or_default();
    if mechanism != SCRAM_SHA_256 {
        return Err(CommandError::new(
            334,
            format!("Received authentication for mechanism {mechanism} which is not enabled"),
        ));
    }
    let payload = payload_bytes(body)?;
    let user_name = user_of_client_first(&payload).map_err(authentication_failed)?;
    let qualified = format!("{database}.{user_name}");
    let credentials = state
        .users
        .get(&qualified)
        .and_then(|user| user.credentials.clone())
        .ok_or_else(|| CommandError::new(18, "Authentication failed."))?;
    let (conversation, server_first) =
        Conversation::start(&payload, qualified, credentials).map_err(authentication_failed)?;
    connection.conversation = Some(conversation);
    connection.skip_empty_exchange = body
        .get_document("options")
        .and_then(|options| options.get_bool("skipEmptyExchange"))
        .unwrap_or(false);
    Ok(doc! { "conversationId": 1, "done": false, "payload": binary(server_first) })
}

fn sasl_continue(connection: &mut Connection, body: &Document) -> CommandResult {
    let payload = payload_bytes(body)?;
    let conversation = connection
        .conversation
        .as_mut()
        .ok_or_else(|| CommandError::new(17, "No SASL session state found"))?;
    let step = conversation.step(&payload);
    let (reply, finished) = match step {
        Ok(step) => step,
        Err(why) => {
            connection.conversation = None;
            return Err(authentication_failed(why));
        }
    };
    // The proof is checked on the first continue; the conversation is done then, or after
    // the empty exchange the client did not ask to skip.
    let done = finished || connection.skip_empty_exchange;
    if done {
        let conversation = connection.conversation.take();
        connection.authenticated_user = conversation.map(|conversation| conversation.user);
    }
    Ok(doc! { "conversationId": 1, "done": done, "payload": binary(reply) })
}
