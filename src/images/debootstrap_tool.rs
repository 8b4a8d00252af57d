//! Finding debootstrap: installed on the system, or Debian's own debootstrap package unpacked
//! into dbtopo's cache (fetched with `apt-get download`, opened with `dpkg-deb -x`), so a
//! Debian machine without it needs no system-wide install.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::ImageError;

/// How to run debootstrap: the program, and `DEBOOTSTRAP_DIR` for an unpacked copy.
#[derive(Debug, Clone)]
pub struct Debootstrap {
    pub program: PathBuf,
    pub share_dir: Option<PathBuf>,
}

pub async fn locate_or_fetch(report: &(dyn Fn(&str) + Sync)) -> Result<Debootstrap, ImageError> {
    if let Some(program) = installed() {
        return Ok(Debootstrap {
            program,
            share_dir: None,
        });
    }
    let cache = cache_dir();
    if let Some(found) = unpacked(&cache) {
        return Ok(found);
    }
    if !on_path("apt-get") || !on_path("dpkg-deb") {
        return Err(ImageError::DebootstrapMissing);
    }
    report(&format!(
        "debootstrap is not installed: unpacking Debian's debootstrap package into {} (nothing is installed on the system)",
        cache.display()
    ));
    fetch_into(&cache).await?;
    unpacked(&cache).ok_or(ImageError::DebootstrapMissing)
}

fn installed() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("debootstrap"))
        .find(|p| p.is_file())
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

fn cache_dir() -> PathBuf {
    crate::cache::dir("debootstrap")
}

fn unpacked(root: &Path) -> Option<Debootstrap> {
    let program = root.join("usr/sbin/debootstrap");
    let share_dir = root.join("usr/share/debootstrap");
    (program.is_file() && share_dir.is_dir()).then_some(Debootstrap {
        program,
        share_dir: Some(share_dir),
    })
}

async fn run(command: &mut Command, what: &str) -> Result<bool, ImageError> {
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(|e| ImageError::io(what.to_string(), e))?;
    Ok(status.success())
}

/// `apt-get download` into a scratch folder (after `apt-get update` when the package lists
/// are empty and we may refresh them), then unpack atomically into `cache`.
async fn fetch_into(cache: &Path) -> Result<(), ImageError> {
    let parent = cache.parent().unwrap_or(Path::new("/tmp"));
    let scratch = parent.join(format!("debootstrap.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("root"))
        .map_err(|e| ImageError::io("creating the debootstrap cache", e))?;
    let download = || {
        let mut c = Command::new("apt-get");
        c.args(["download", "-q", "debootstrap"])
            .current_dir(&scratch);
        c
    };
    let mut fetched = run(&mut download(), "running apt-get download").await?;
    if !fetched && unsafe { libc::geteuid() } == 0 {
        run(
            Command::new("apt-get").args(["update", "-qq"]),
            "running apt-get update",
        )
        .await?;
        fetched = run(&mut download(), "running apt-get download").await?;
    }
    let deb = std::fs::read_dir(&scratch)
        .map_err(|e| ImageError::io("reading the download folder", e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"));
    let result = match (fetched, deb) {
        (true, Some(deb)) => {
            let ok = run(
                Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(&deb)
                    .arg(scratch.join("root")),
                "running dpkg-deb",
            )
            .await?;
            if ok {
                let _ = std::fs::remove_dir_all(cache);
                std::fs::rename(scratch.join("root"), cache)
                    .map_err(|e| ImageError::io("moving debootstrap into the cache", e))
            } else {
                Err(ImageError::DebootstrapMissing)
            }
        }
        _ => Err(ImageError::DebootstrapMissing),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
