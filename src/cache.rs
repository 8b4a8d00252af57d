//! dbtopo's cache folder (`$XDG_CACHE_HOME/dbtopo`, else `~/.cache/dbtopo`): things that can be
//! made again, kept to save time.

use std::path::{Path, PathBuf};

pub fn dir(name: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("dbtopo").join(name)
}

/// Write `content` to `path` so a reader sees the old file or the whole new one, never half.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, content)?;
    std::fs::rename(&partial, path)
}
