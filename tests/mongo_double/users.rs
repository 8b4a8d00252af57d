//! User management: `createUser`, `updateUser`, `dropUser`, `usersInfo`. Users are kept per
//! database under mongod's `_id`, `<db>.<user>`, with SCRAM-SHA-256 credentials derived from
//! the password and the password itself forgotten.

use mongodb::bson::{Bson, Document, doc};

use super::commands::{CommandError, CommandResult, require_primary, require_readable};
use super::scram::ScramCredentials;
use super::state::{State, User, new_uuid};

const MECHANISMS: &[&str] = &["SCRAM-SHA-1", "SCRAM-SHA-256"];

/// Roles as mongod stores them: a bare name means a role of the user's own database.
fn normalize_roles(
    command: &str,
    database: &str,
    roles: Option<&Bson>,
) -> Result<Vec<Bson>, CommandError> {
    let Some(roles) = roles else {
        return Err(CommandError::new(
            40414,
            format!("BSON field '{command}.roles' is missing but a required field"),
        ));
    };
    let Bson::Array(roles) = roles else {
        return Err(CommandError::new(
            14,
            format!("BSON field '{command}.roles' is the wrong type, expected type 'array'"),
        ));
    };
    roles
        .iter()
        .map(|role| match role {
            Bson::String(name) => Ok(Bson::Document(doc! { "role": name, "db": database })),
            Bson::Document(role) if role.get_str("role").is_ok() && role.get_str("db").is_ok() => {
                Ok(Bson::Document(doc! { "role": role.get_str("role").unwrap_or_default(), "db": role.get_str("db").unwrap_or_default() }))
            }
            _ => Err(CommandError::new(2, "Role names must be either strings or objects")),
        })
        .collect()
}

fn credentials(
    state: &State,
    password: &str,
    mechanisms: &[String],
) -> Result<Option<ScramCredentials>, CommandError> {
    if !mechanisms
        .iter()
        .any(|mechanism| mechanism == "SCRAM-SHA-256")
    {
        return Ok(None);
    }
    ScramCredentials::derive(password, state.options.scram_iterations)
        .map(Some)
        .map_err(|message| CommandError::new(2, message))
}

fn mechanisms(body: &Document) -> Result<Vec<String>, CommandError> {
    let Ok(given) = body.get_array("mechanisms") else {
        return Ok(MECHANISMS
            .iter()
            .map(|mechanism| mechanism.to_string())
            .collect());
    };
    given
        .iter()
        .map(|mechanism| match mechanism.as_str() {
            Some(name) if MECHANISMS.contains(&name) => Ok(name.to_string()),
            _ => Err(CommandError::new(
                2,
                format!("Unknown auth mechanism '{mechanism}'"),
            )),
        })
        .collect()
}

fn password(command: &str, body: &Document) -> Result<String, CommandError> {
    body.get_str("pwd").map(str::to_string).map_err(|_| {
        CommandError::new(
            2,
            format!("Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db ({command})"),
        )
    })
}

pub fn create(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let Ok(name) = body.get_str("createUser") else {
        return Err(CommandError::new(
            14,
            "BSON field 'createUser.createUser' is the wrong type, expected type 'string'",
        ));
    };
    require_primary(state)?;
    let roles = normalize_roles("createUser", database, body.get("roles"))?;
    let mechanisms = mechanisms(body)?;
    let password = password("createUser", body)?;
    let key = format!("{database}.{name}");
    if state.users.contains_key(&key) {
        return Err(CommandError::new(
            51003,
            format!("User \"{name}@{database}\" already exists"),
        ));
    }
    let credentials = credentials(state, &password, &mechanisms)?;
    let user = User {
        user: name.to_string(),
        db: database.to_string(),
        user_id: new_uuid(),
        roles,
        mechanisms,
        credentials,
    };
    state.users.insert(key, user);
    Ok(Document::new())
}

pub fn update(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let name = body.get_str("updateUser").unwrap_or_default().to_string();
    require_primary(state)?;
    let key = format!("{database}.{name}");
    if !state.users.contains_key(&key) {
        return Err(CommandError::new(
            11,
            format!("Could not find user \"{name}@{database}\""),
        ));
    }
    let roles = match body.get("roles") {
        Some(roles) => Some(normalize_roles("updateUser", database, Some(roles))?),
        None => None,
    };
    let new_mechanisms = if body.contains_key("mechanisms") {
        Some(mechanisms(body)?)
    } else {
        None
    };
    let mechanisms = new_mechanisms.unwrap_or_else(|| state.users[&key].mechanisms.clone());
    let credentials = match body.get_str("pwd") {
        Ok(password) => Some(credentials(state, password, &mechanisms)?),
        Err(_) => None,
    };
    let Some(user) = state.users.get_mut(&key) else {
        return Err(CommandError::new(
            11,
            format!("Could not find user \"{name}@{database}\""),
        ));
    };
    if let Some(roles) = roles {
        user.roles = roles;
    }
    user.mechanisms = mechanisms;
    if let Some(credentials) = credentials {
        user.credentials = credentials;
    }
    Ok(Document::new())
}

pub fn drop(state: &mut State, database: &str, body: &Document) -> CommandResult {
    let name = body.get_str("dropUser").unwrap_or_default().to_string();
    require_primary(state)?;
    match state.users.remove(&format!("{database}.{name}")) {
        Some(_) => Ok(Document::new()),
        None => Err(CommandError::new(
            11,
            format!("Could not find user \"{name}@{database}\""),
        )),
    }
}

/// `usersInfo: 1` (all of this database's users), `"name"`, `{user, db}`, or an array of the
/// last two.
pub fn info(state: &State, database: &str, body: &Document) -> CommandResult {
    require_readable(state, body)?;
    let wanted: Vec<(String, String)> = match body.get("usersInfo") {
        Some(Bson::String(name)) => vec![(database.to_string(), name.clone())],
        Some(Bson::Document(one)) => vec![qualified(database, one)],
        Some(Bson::Array(many)) => many
            .iter()
            .map(|entry| match entry {
                Bson::String(name) => (database.to_string(), name.clone()),
                Bson::Document(one) => qualified(database, one),
                _ => (String::new(), String::new()),
            })
            .collect(),
        _ => state
            .users
            .values()
            .filter(|user| user.db == database)
            .map(|user| (user.db.clone(), user.user.clone()))
            .collect(),
    };
    let users: Vec<Document> = wanted
        .iter()
        .filter_map(|(db, name)| state.users.get(&format!("{db}.{name}")))
        .map(|user| {
            doc! {
                "_id": format!("{}.{}", user.db, user.user),
                "userId": user.user_id.clone(),
                "user": user.user.clone(),
                "db": user.db.clone(),
                "roles": user.roles.clone(),
                "mechanisms": user.mechanisms.clone(),
            }
        })
        .collect();
    Ok(doc! { "users": users })
}

fn qualified(database: &str, one: &Document) -> (String, String) {
    (
        one.get_str("db").unwrap_or(database).to_string(),
        one.get_str("user").unwrap_or_default().to_string(),
    )
}
