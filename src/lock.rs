//! One writer per environment: apply and destroy hold a lock file beside the secrets, so two
//! of them never change the same environment at once (plan only reads and takes none).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use crate::secrets::state_dir;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("another dbtopo process is changing environment \"{env}\"")]
    #[diagnostic(
        code(dbtopo::lock::busy),
        help("wait for it to finish; the lock is {path} and goes with the process holding it")
    )]
    Busy { env: String, path: String },
    #[error("cannot create the lock file {path}")]
    #[diagnostic(code(dbtopo::lock::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while it lives; the operating system releases it when the process ends, however.
#[derive(Debug)]
pub struct EnvLock {
    _file: File,
}

/// The lock file of an environment that no longer exists.
pub fn remove_lock_file(env: &str) {
    let _ = std::fs::remove_file(state_dir().join(format!("{env}.lock")));
}

pub fn lock_env(env: &str) -> Result<EnvLock, LockError> {
    let dir = state_dir();
    let path = dir.join(format!("{env}.lock"));
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(EnvLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy {
            env: env.to_string(),
            path: path.display().to_string(),
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_is_done() {
        let env = format!("locktest-{}", std::process::id());
        let first = lock_env(&env);
        let second_busy = matches!(lock_env(&env), Err(LockError::Busy { .. }));
        drop(first);
        let free_again = lock_env(&env).is_ok();
        // Cleaned up before asserting, so a failure leaves no lock file behind.
        remove_lock_file(&env);
        assert!(second_busy, "a second writer must be refused");
        assert!(
            free_again,
            "the lock must be free once the first writer is done"
        );
    }
}
