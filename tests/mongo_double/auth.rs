//! Who may run what: each connection's authentication, mongod's access checks (with the
//! localhost exception), and the `saslStart`/`saslContinue` commands that drive SCRAM.

use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};

use super::commands::{CommandError, CommandResult};
use super::scram::{Conversation, ScramFailure, user_of_client_first};
use super::state::State;

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

/// Refuses a command from an unauthenticated connection, as mongod does under access control.
pub fn check_access(
    state: &State,
    connection: &Connection,
    name: &str,
) -> Result<(), CommandError> {
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

pub fn sasl_start(
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

pub fn sasl_continue(connection: &mut Connection, body: &Document) -> CommandResult {
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
