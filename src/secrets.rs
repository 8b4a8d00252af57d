//! Generated passwords: kept in a file only its owner can read, outside the project, or given
//! by environment variables. Never printed, logged, or put in labels or plans.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

pub const SUPERUSER_ENV: &str = "DBTOPO_SUPERUSER_PASSWORD";
pub const REPLICATION_ENV: &str = "DBTOPO_REPLICATION_PASSWORD";
pub const STATE_DIR_ENV: &str = "DBTOPO_STATE_DIR";

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Secrets {
    pub superuser: String,
    pub replication: String,
    /// The password of dbtopo's user on the MongoDB replica sets (made on first need).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mongo_admin: String,
    /// The key replica set members authenticate each other with (`--keyFile`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mongo_keyfile: String,
}

/// Fill the MongoDB secrets of a file written before they existed; says whether it did.
fn complete(secrets: &mut Secrets) -> bool {
    let missing = secrets.mongo_admin.is_empty() || secrets.mongo_keyfile.is_empty();
    if secrets.mongo_admin.is_empty() {
        secrets.mongo_admin = generate();
    }
    if secrets.mongo_keyfile.is_empty() {
        // mongod wants 6 to 1024 characters of the base64 alphabet.
        secrets.mongo_keyfile = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(756)
            .map(char::from)
            .collect();
    }
    missing
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SecretsError {
    #[error("cannot read or write the secrets file {path}")]
    #[diagnostic(
        code(dbtopo::secrets::io),
        help(
            "set {STATE_DIR_ENV} to a writable folder, or give the passwords in {SUPERUSER_ENV} and {REPLICATION_ENV}"
        )
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secrets file {path} is not valid")]
    #[diagnostic(
        code(dbtopo::secrets::corrupt),
        help("restore it, or remove it only if the environment does not exist yet")
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Folder holding one secrets file per environment.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("dbtopo");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".local/state/dbtopo")
}

pub fn secrets_path(env: &str) -> PathBuf {
    state_dir().join(format!("{env}.secrets.json"))
}

fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The environment's passwords: from the environment variables, else the file, else newly
/// generated and saved (mode 0600) before anything uses them.
pub fn load_or_create(env: &str) -> Result<Secrets, SecretsError> {
    let path = secrets_path(env);
    let mut secrets = match read(&path)? {
        Some(mut s) => {
            if complete(&mut s) {
                write(&path, &s)?;
            }
            s
        }
        None => {
            let mut fresh = Secrets {
                superuser: generate(),
                replication: generate(),
                ..Default::default()
            };
            complete(&mut fresh);
            write(&path, &fresh)?;
            fresh
        }
    };
    if let Ok(p) = std::env::var(SUPERUSER_ENV) {
        secrets.superuser = p;
    }
    if let Ok(p) = std::env::var(REPLICATION_ENV) {
        secrets.replication = p;
    }
    Ok(secrets)
}

/// The passwords if they exist, without creating any (for plan and destroy).
pub fn load_existing(env: &str) -> Result<Option<Secrets>, SecretsError> {
    let mut secrets = read(&secrets_path(env))?;
    if let (Ok(superuser), Ok(replication)) =
        (std::env::var(SUPERUSER_ENV), std::env::var(REPLICATION_ENV))
    {
        let stored = secrets.unwrap_or_default();
        return Ok(Some(Secrets {
            superuser,
            replication,
            ..stored
        }));
    }
    if let Some(s) = secrets.as_mut() {
        if let Ok(p) = std::env::var(SUPERUSER_ENV) {
            s.superuser = p;
        }
        if let Ok(p) = std::env::var(REPLICATION_ENV) {
            s.replication = p;
        }
    }
    Ok(secrets)
}

/// Save passwords found elsewhere (read back from a container).
pub fn save(env: &str, secrets: &Secrets) -> Result<(), SecretsError> {
    write(&secrets_path(env), secrets)
}

/// Where the environment's passfile is kept (see [`write_passfile`]).
pub fn passfile_path(env: &str) -> PathBuf {
    state_dir().join(format!("{env}.pgpass"))
}

/// Write the environment's passfile, readable by the user alone, with the superuser's
/// password for each `port` on 127.0.0.1: libpq reads the password from there
/// (`PGPASSFILE`), so it is on no command line and in no environment variable.
pub fn write_passfile(
    env: &str,
    secrets: &Secrets,
    ports: &[u16],
) -> Result<PathBuf, SecretsError> {
    let path = passfile_path(env);
    let io = |source| SecretsError::Io {
        path: path.clone(),
        source,
    };
    // In a passfile `:` separates fields and `\` escapes.
    let password = secrets.superuser.replace('\\', "\\\\").replace(':', "\\:");
    let text: String = ports
        .iter()
        .map(|port| {
            format!(
                "127.0.0.1:{port}:*:{}:{password}\n",
                crate::model::SUPERUSER
            )
        })
        .collect();
    write_private(&path, text.as_bytes()).map_err(io)?;
    Ok(path)
}

pub fn remove(env: &str) -> Result<(), SecretsError> {
    let _ = fs::remove_file(passfile_path(env));
    let path = secrets_path(env);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SecretsError::Io { path, source: e })
        }
        _ => Ok(()),
    }
}

fn read(path: &Path) -> Result<Option<Secrets>, SecretsError> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| SecretsError::Corrupt {
                    path: path.into(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretsError::Io {
            path: path.into(),
            source,
        }),
    }
}

fn write(path: &Path, secrets: &Secrets) -> Result<(), SecretsError> {
    let io = |source| SecretsError::Io {
        path: path.into(),
        source,
    };
    write_private(
        path,
        &serde_json::to_vec(secrets).expect("secrets serialize"),
    )
    .map_err(io)
}

/// Write `bytes` to `path` whole (a file beside it, renamed over it), readable by the user
/// alone, in a folder only the user can enter.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_file_is_owner_only_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("dbtopo-secrets-{}", std::process::id()));
        let path = dir.join("env.secrets.json");
        let secrets = Secrets {
            superuser: generate(),
            replication: generate(),
            mongo_admin: generate(),
            mongo_keyfile: generate(),
        };
        write(&path, &secrets).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let dir_mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        let read_back = read(&path).unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(mode, 0o600);
        assert_eq!(dir_mode, 0o700);
        assert_eq!(read_back, Some(secrets));
    }

    #[test]
    fn generated_passwords_are_long_distinct_and_never_debug_printed() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        let secrets = Secrets {
            superuser: a.clone(),
            replication: b,
            ..Default::default()
        };
        assert!(!format!("{secrets:?}").contains(&a));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_new_passwords() {
        let path = std::env::temp_dir().join(format!("dbtopo-bad-{}.json", std::process::id()));
        fs::write(&path, "{ not json").unwrap();
        let result = read(&path);
        let _ = fs::remove_file(&path);
        assert!(matches!(result, Err(SecretsError::Corrupt { .. })));
    }
}
