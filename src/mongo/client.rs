//! Talking to a replica set through one member's 127.0.0.1 port: read what it holds, and run
//! a change's steps. The only code here that reaches MongoDB.

use std::collections::BTreeMap;
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

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum MongoError {
    #[error("MongoDB request failed: {0}")]
    #[diagnostic(code(dbtopo::mongo::request))]
    Request(#[from] mongodb::error::Error),
    #[error("the replica set reported something dbtopo cannot read: {0}")]
    #[diagnostic(code(dbtopo::mongo::unexpected))]
    Unexpected(String),
    #[error("no writable primary after {0:?}")]
    #[diagnostic(
        code(dbtopo::mongo::no_primary),
        help("check the members' logs (docker logs <env>-<set>-<id>) and run apply again")
    )]
    NoPrimary(Duration),
}

/// A client for the member at `127.0.0.1:host_port`, alone (no discovery of the others,
/// whose names resolve only on the environment's network); as `ADMIN_USER` when a password
/// is given.
pub async fn connect(host_port: u16, admin_password: Option<&str>) -> Result<Client, MongoError> {
    let mut options = ClientOptions::parse(format!(
        "mongodb://127.0.0.1:{host_port}/?directConnection=true&serverSelectionTimeoutMS=5000&retryWrites=false"
    ))
    .await?;
    options.app_name = Some("dbtopo".to_owned());
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
    Ok(Client::with_options(options)?)
}

/// The set's configuration as the member holds it.
pub async fn set_state(client: &Client) -> Result<SetState, MongoError> {
    let reply = match client
        .database("admin")
        .run_command(doc! { "replSetGetConfig": 1 })
        .await
    {
        Ok(reply) => reply,
        Err(error) if command_code(&error) == Some(NOT_YET_INITIALIZED) => {
            return Ok(SetState::NotInitiated);
        }
        // dbtopo's user cannot log in: it was never made (the password is dbtopo's own).
        Err(error) if matches!(error.kind.as_ref(), ErrorKind::Authentication { .. }) => {
            return Ok(SetState::NoAdminUser);
        }
        Err(error) => return Err(error.into()),
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

/// The collections of `database` with their validation rules and indexes.
pub async fn collections(
    client: &Client,
    database: &str,
) -> Result<BTreeMap<String, Collection>, MongoError> {
    let db = client.database(database);
    let specs: Vec<_> = db.list_collections().await?.try_collect().await?;
    let mut out = BTreeMap::new();
    for spec in specs {
        if spec.collection_type != mongodb::results::CollectionType::Collection
            || spec.name.starts_with("system.")
        {
            continue;
        }
        let indexes: Vec<IndexModel> = db
            .collection::<Document>(&spec.name)
            .list_indexes()
            .await?
            .try_collect()
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
    client: &Client,
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
                match client.database(database).run_command(command).await {
                    Ok(_) => {}
                    Err(error) if command_code(&error).is_some_and(|c| accepted.contains(&c)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            MongoStep::WaitForPrimary => wait_for_primary(client, Duration::from_secs(60)).await?,
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

/// Ask `hello` until the member is a writable primary.
pub async fn wait_for_primary(client: &Client, limit: Duration) -> Result<(), MongoError> {
    let started = Instant::now();
    loop {
        let hello = client
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .await;
        if let Ok(reply) = &hello
            && reply.get_bool("isWritablePrimary").unwrap_or(false)
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(MongoError::NoPrimary(limit));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(command) => Some(command.code),
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
