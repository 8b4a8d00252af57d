//! Talking to a replica set through one member's 127.0.0.1 port: read what it holds, and run
//! a change's steps. The only code here that reaches MongoDB.
//!
//! Every call has a deadline: the driver bounds server selection and the TCP connection, but
//! not the handshake, the login or a command once sent (it has no socket timeout), so a
//! member that accepts a connection and then never answers (a paused mongod) would hang
//! plan, apply and seed. Each of them runs under a tokio timeout here instead.

use std::collections::BTreeMap;
use std::fmt;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{
    AuthMechanism, ClientOptions, Credential, ValidationAction, ValidationLevel,
};
use mongodb::{Client, IndexModel};

use super::diff::{ADMIN_PASSWORD_PLACEHOLDER, ADMIN_USER, MemberConfig, MongoStep, SetState};
use super::model::{Collection, MongoIndex};

/// mongod's code for a set that was never initiated.
const NOT_YET_INITIALIZED: i32 = 94;

/// Server selection, the TCP connection, the handshake and the login, together.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// How long a new primary may take to be elected.
const PRIMARY_DEADLINE: Duration = Duration::from_secs(60);

/// The member a client talks to, as its errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `replica set rs0`, or `member rs0-1 of replica set rs0`.
    pub name: String,
    /// The member's port on 127.0.0.1.
    pub port: u16,
}

impl Target {
    /// The set reached through one of its members.
    pub fn set(set: &str, port: u16) -> Target {
        Target {
            name: format!("replica set {set}"),
            port,
        }
    }

    /// One member for itself (waiting for it to answer).
    pub fn member(set: &str, node: &str, port: u16) -> Target {
        Target {
            name: format!("member {node} of replica set {set}"),
            port,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MongoDB {} on 127.0.0.1:{}", self.name, self.port)
    }
}

/// How long dbtopo waits on a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Server selection, the TCP connection, the handshake and the login, together.
    pub connect: Duration,
    /// Each command or operation once connected (a cursor's batches included).
    pub command: Duration,
}

impl Deadlines {
    /// [`CONNECT_DEADLINE`], and for each command the same time a PostgreSQL statement may
    /// run (`DBTOPO_STATEMENT_TIMEOUT`, see [`crate::pg::statement_timeout`]): one setting
    /// for how long dbtopo waits on any request.
    pub fn from_env() -> Result<Deadlines, MongoError> {
        Ok(Deadlines {
            connect: CONNECT_DEADLINE,
            command: crate::pg::statement_timeout().map_err(MongoError::Setting)?,
        })
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum MongoError {
    /// The driver's words without its debugging fields (labels, source).
    #[error("{target}: {}", source.kind)]
    #[diagnostic(code(dbtopo::mongo::request))]
    Request {
        target: Target,
        source: mongodb::error::Error,
    },
    #[error("{target} did not answer {what} within {limit:?}")]
    #[diagnostic(
        code(dbtopo::mongo::deadline),
        help(
            "the member accepts connections but does not answer: check that its container \
             runs and is not paused (docker ps, docker logs <env>-<set>-<id>), then run again"
        )
    )]
    Deadline {
        target: Target,
        what: String,
        limit: Duration,
    },
    #[error("the replica set reported something dbtopo cannot read: {0}")]
    #[diagnostic(code(dbtopo::mongo::unexpected))]
    Unexpected(String),
    #[error("{target}: no writable primary after {limit:?}")]
    #[diagnostic(
        code(dbtopo::mongo::no_primary),
        help("check the members' logs (docker logs <env>-<set>-<id>) and run apply again")
    )]
    NoPrimary { target: Target, limit: Duration },
    #[error("{0}")]
    #[diagnostic(code(dbtopo::mongo::setting))]
    Setting(String),
}

impl MongoError {
    /// dbtopo's user could not log in.
    pub fn is_authentication(&self) -> bool {
        matches!(self, MongoError::Request { source, .. }
            if matches!(source.kind.as_ref(), ErrorKind::Authentication { .. }))
    }
}

/// A connected client for one member, with the deadlines of its calls.
pub struct Member {
    client: Client,
    target: Target,
    deadlines: Deadlines,
}

impl Member {
    /// The driver's client, for reads beyond dbtopo's own (tests); its calls have no deadline.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs `operation` within the command deadline; its error names the member.
    pub async fn within<T>(
        &self,
        what: &str,
        operation: impl IntoFuture<Output = Result<T, mongodb::error::Error>>,
    ) -> Result<T, MongoError> {
        self.within_limit(what, self.deadlines.command, operation)
            .await
    }

    async fn within_limit<T>(
        &self,
        what: &str,
        limit: Duration,
        operation: impl IntoFuture<Output = Result<T, mongodb::error::Error>>,
    ) -> Result<T, MongoError> {
        match tokio::time::timeout(limit, operation.into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(MongoError::Request {
                target: self.target.clone(),
                source,
            }),
            Err(_) => Err(MongoError::Deadline {
                target: self.target.clone(),
                what: what.to_owned(),
                limit,
            }),
        }
    }

    /// A command on `database`, within the command deadline.
    async fn command(&self, database: &str, command: Document) -> Result<Document, MongoError> {
        let name = command.keys().next().cloned().unwrap_or_default();
        self.within(&name, self.client.database(database).run_command(command))
            .await
    }
}

/// A client for `target`, alone (no discovery of the other members, whose names resolve
/// only on the environment's network); as `ADMIN_USER` when a password is given. It has
/// connected, shaken hands and logged in when this returns.
pub async fn connect(target: Target, admin_password: Option<&str>) -> Result<Member, MongoError> {
    connect_within(target, admin_password, Deadlines::from_env()?).await
}

/// [`connect`] with the given deadlines.
pub async fn connect_within(
    target: Target,
    admin_password: Option<&str>,
    deadlines: Deadlines,
) -> Result<Member, MongoError> {
    let request = |source| MongoError::Request {
        target: target.clone(),
        source,
    };
    let mut options = ClientOptions::parse(format!(
        "mongodb://127.0.0.1:{}/?directConnection=true&retryWrites=false",
        target.port
    ))
    .await
    .map_err(request)?;
    options.app_name = Some("dbtopo".to_owned());
    options.connect_timeout = Some(deadlines.connect);
    options.server_selection_timeout = Some(deadlines.connect);
    if let Some(password) = admin_password {
        options.credential = Some(
            Credential::builder()
                .username(ADMIN_USER.to_owned())
                .password(password.to_owned())
                .source("admin".to_owned())
                // Named, not negotiated: before the user exists the server offers no
                // mechanism and the driver would fall back to SCRAM-SHA-1.
                .mechanism(AuthMechanism::ScramSha256)
                .build(),
        );
    }
    let client = Client::with_options(options).map_err(request)?;
    let member = Member {
        client,
        target,
        deadlines,
    };
    // The driver connects lazily: the first command opens the connection, with its handshake
    // and login. `hello` needs no login of its own, and is answered before access control.
    member
        .within_limit(
            "the connection, handshake and login",
            deadlines.connect,
            member
                .client
                .database("admin")
                .run_command(doc! { "hello": 1 }),
        )
        .await?;
    Ok(member)
}

/// The set's configuration as the member holds it.
pub async fn set_state(member: &Member) -> Result<SetState, MongoError> {
    let reply = match member
        .command("admin", doc! { "replSetGetConfig": 1 })
        .await
    {
        Ok(reply) => reply,
        Err(error) if command_code(&error) == Some(NOT_YET_INITIALIZED) => {
            return Ok(SetState::NotInitiated);
        }
        // dbtopo's user cannot log in: it was never made (the password is dbtopo's own).
        Err(error) if error.is_authentication() => return Ok(SetState::NoAdminUser),
        Err(error) => return Err(error),
    };
    let config = reply
        .get_document("config")
        .map_err(|e| MongoError::Unexpected(format!("replSetGetConfig: {e}")))?;
    let version = integer(config.get("version"))
        .ok_or_else(|| MongoError::Unexpected("replSetGetConfig: no version".into()))?;
    let mut members = Vec::new();
    for member in config.get_array("members").into_iter().flatten() {
        let Some(member) = member.as_document() else {
            continue;
        };
        let priority = match member.get("priority") {
            Some(Bson::Double(p)) => *p,
            other => integer(other).unwrap_or(1) as f64,
        };
        members.push(MemberConfig {
            id: integer(member.get("_id")).unwrap_or_default() as u32,
            host: member.get_str("host").unwrap_or_default().to_owned(),
            priority_tenths: (priority * 10.0).round() as u32,
            votes: integer(member.get("votes")).unwrap_or(1) as u8,
            hidden: member.get_bool("hidden").unwrap_or(false),
            arbiter: member.get_bool("arbiterOnly").unwrap_or(false),
        });
    }
    members.sort_by_key(|m| m.id);
    Ok(SetState::Initiated { version, members })
}

/// Each member's replication state (`PRIMARY`, `SECONDARY`, `RECOVERING`, …) by member id,
/// as the member asked reports it in `replSetGetStatus`.
pub async fn member_states(member: &Member) -> Result<BTreeMap<u32, String>, MongoError> {
    let reply = member
        .command("admin", doc! { "replSetGetStatus": 1 })
        .await?;
    let mut states = BTreeMap::new();
    for status in reply.get_array("members").into_iter().flatten() {
        let Some(status) = status.as_document() else {
            continue;
        };
        let (Some(id), Ok(state)) = (integer(status.get("_id")), status.get_str("stateStr")) else {
            continue;
        };
        states.insert(id as u32, state.to_owned());
    }
    Ok(states)
}

/// The collections of `database` with their validation rules and indexes.
pub async fn collections(
    member: &Member,
    database: &str,
) -> Result<BTreeMap<String, Collection>, MongoError> {
    let db = member.client.database(database);
    let specs: Vec<_> = member
        .within("listCollections", async {
            db.list_collections().await?.try_collect().await
        })
        .await?;
    let mut out = BTreeMap::new();
    for spec in specs {
        if spec.collection_type != mongodb::results::CollectionType::Collection
            || spec.name.starts_with("system.")
        {
            continue;
        }
        let indexes: Vec<IndexModel> = member
            .within("listIndexes", async {
                db.collection::<Document>(&spec.name)
                    .list_indexes()
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        let indexes = indexes
            .into_iter()
            .filter_map(|model| {
                let options = model.options.unwrap_or_default();
                let name = options.name?;
                (name != "_id_").then(|| MongoIndex {
                    name,
                    key: model.keys,
                    unique: options.unique.unwrap_or(false),
                    partial_filter: options.partial_filter_expression,
                    expire_after_seconds: options.expire_after.map(|d| d.as_secs() as i64),
                })
            })
            .collect();
        let options = spec.options;
        out.insert(
            spec.name.clone(),
            Collection {
                name: spec.name,
                validator: options.validator.filter(|v| !v.is_empty()),
                validation_level: match options.validation_level {
                    Some(ValidationLevel::Off) => "off",
                    Some(ValidationLevel::Moderate) => "moderate",
                    _ => "strict",
                }
                .to_owned(),
                validation_action: match options.validation_action {
                    Some(ValidationAction::Warn) => "warn",
                    _ => "error",
                }
                .to_owned(),
                indexes,
            },
        );
    }
    Ok(out)
}

/// Run a change's steps in order; the admin password goes in only here.
pub async fn run(
    member: &Member,
    steps: &[MongoStep],
    admin_password: &str,
) -> Result<(), MongoError> {
    for step in steps {
        match step {
            MongoStep::Command {
                database,
                command,
                accepted,
            } => {
                let command = parse_command(command, admin_password)?;
                match member.command(database, command).await {
                    Ok(_) => {}
                    Err(error) if command_code(&error).is_some_and(|c| accepted.contains(&c)) => {}
                    Err(error) => return Err(error),
                }
            }
            MongoStep::WaitForPrimary => wait_for_primary(member, PRIMARY_DEADLINE).await?,
        }
    }
    Ok(())
}

/// The command a step carries, with the password placeholder filled in.
fn parse_command(text: &str, admin_password: &str) -> Result<Document, MongoError> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| MongoError::Unexpected(e.to_string()))?;
    let json = fill_password(json, admin_password);
    match Bson::try_from(json) {
        Ok(Bson::Document(document)) => Ok(document),
        Ok(other) => Err(MongoError::Unexpected(format!("not a command: {other}"))),
        Err(e) => Err(MongoError::Unexpected(e.to_string())),
    }
}

fn fill_password(value: serde_json::Value, password: &str) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s == ADMIN_PASSWORD_PLACEHOLDER => Value::String(password.to_owned()),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| fill_password(v, password))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, fill_password(v, password)))
                .collect(),
        ),
        other => other,
    }
}

/// Ask `hello` until the member is a writable primary; a `hello` unanswered counts as not
/// yet, and none waits past `limit`.
pub async fn wait_for_primary(member: &Member, limit: Duration) -> Result<(), MongoError> {
    let started = Instant::now();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        let hello = member
            .within_limit(
                "hello",
                member.deadlines.command.min(left),
                member
                    .client
                    .database("admin")
                    .run_command(doc! { "hello": 1 }),
            )
            .await;
        if let Ok(reply) = &hello
            && reply.get_bool("isWritablePrimary").unwrap_or(false)
        {
            return Ok(());
        }
        if started.elapsed() >= limit {
            return Err(MongoError::NoPrimary {
                target: member.target.clone(),
                limit,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn command_code(error: &MongoError) -> Option<i32> {
    match error {
        MongoError::Request { source, .. } => match source.kind.as_ref() {
            ErrorKind::Command(command) => Some(command.code),
            _ => None,
        },
        _ => None,
    }
}

fn integer(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}
