//! File-system work on a bootstrapped root: slimming it, streaming it as a tar, removing it.
//!
//! The root holds absolute symlinks (`var/run -> /run`) and, while debootstrap runs or after
//! it was killed, mounts of the host's `/proc` and `/sys`. Every path is therefore resolved
//! inside the root, and nothing is deleted while something is mounted below it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::DebianRecipe;

/// Name prefix of build directories under `std::env::temp_dir()`.
pub(crate) const BUILD_DIR_PREFIX: &str = "dbtopo-rootfs-";

/// A fresh directory for one build, removed (mount-safely) on every path out.
pub(crate) struct BuildDir {
    path: PathBuf,
    removed: bool,
}

impl BuildDir {
    pub(crate) fn create() -> io::Result<Self> {
        Self::create_named(BUILD_DIR_PREFIX)
    }

    fn create_named(prefix: &str) -> io::Result<Self> {
        let name = format!(
            "{prefix}{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir(&path)?;
        // Mount points are reported canonically; compare like with like.
        let path = path.canonicalize()?;
        Ok(BuildDir {
            path,
            removed: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn remove(mut self) -> io::Result<()> {
        self.removed = true;
        remove_tree(&self.path)
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = remove_tree(&self.path)
        {
            eprintln!(
                "dbtopo: could not remove build directory {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Removes `path` after unmounting whatever is mounted below it; refuses if a mount stays.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    for mount in mounts_under(path)? {
        // Lazy, so a busy /proc still detaches; ignore failures and re-check below.
        let _ = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(&mount)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let left = mounts_under(path)?;
    if let Some(mount) = left.first() {
        return Err(io::Error::other(format!(
            "{} is still mounted; not deleting through it",
            mount.display()
        )));
    }
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Mount points at or below `path`, deepest first.
fn mounts_under(path: &Path) -> io::Result<Vec<PathBuf>> {
    let info = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(info) => info,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount| mount.starts_with(path))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    mounts.dedup();
    Ok(mounts)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// Resolves `rel` as a process chrooted into `root` would: symlinks, absolute ones too,
/// never lead outside `root`.
pub(crate) fn resolve_in_root(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut current = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            current.pop();
            continue;
        }
        let candidate = current.join(&part);
        let full = root.join(&candidate);
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other(format!(
                        "too many symlinks resolving {}",
                        rel.display()
                    )));
                }
                let target = fs::read_link(&full)?;
                if target.is_absolute() {
                    current = PathBuf::new();
                }
                push_components(&mut pending, &target);
            }
            _ => current = candidate,
        }
    }
    Ok(root.join(current))
}

/// Pushes `path`'s components so that popping yields them in order.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// Removes what a database container never reads, and the Debian package's default cluster
/// (dbtopo creates its own); makes the socket directory usable as in the official image.
pub(crate) fn slim(root: &Path, recipe: &DebianRecipe) -> io::Result<()> {
    for dir in [
        "var/cache/apt",
        "var/lib/apt/lists",
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
        "usr/share/linda",
        "var/log/apt",
    ] {
        clear_dir(root, dir, &[])?;
    }
    // Device nodes come from Docker at run time.
    clear_dir(root, "dev", &[])?;
    for file in [
        "var/log/bootstrap.log",
        "var/log/dpkg.log",
        "var/log/alternatives.log",
    ] {
        remove_in_root(root, file)?;
    }
    // debootstrap copies the build host's; Docker mounts the container's own over them.
    for file in ["etc/resolv.conf", "etc/hostname"] {
        let path = resolve_in_root(root, Path::new(file))?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            fs::write(&path, b"")?;
        }
    }
    for file in [
        "var/cache/debconf/config.dat-old",
        "var/cache/debconf/templates.dat-old",
    ] {
        remove_in_root(root, file)?;
    }
    // Keep the licences, drop the rest of the documentation.
    let doc = resolve_in_root(root, Path::new("usr/share/doc"))?;
    if let Ok(packages) = fs::read_dir(&doc) {
        for package in packages {
            let package = package?.path();
            if fs::symlink_metadata(&package)?.is_dir() {
                clear_real_dir(&package, &["copyright"])?;
            }
        }
    }
    // C.UTF-8 is all the image promises (LANG=C.UTF-8); translations and other locales go.
    clear_dir(root, "usr/share/locale", &["locale.alias"])?;
    clear_dir(root, "usr/lib/locale", &["C.utf8", "C.UTF-8"])?;
    clear_dir(root, "usr/share/i18n/charmaps", &["UTF-8.gz"])?;
    clear_dir(root, "usr/share/i18n/locales", &["C", "POSIX"])?;

    for package in &recipe.packages {
        if let Some(major) = package.strip_prefix("postgresql-")
            && !major.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
        {
            remove_in_root(root, &format!("var/lib/postgresql/{major}"))?;
            remove_in_root(root, &format!("etc/postgresql/{major}"))?;
        }
    }
    prepare_socket_dir(root)
}

/// `/var/run/postgresql` owned by postgres, mode 3777 like the official image, so a server
/// started under any uid can put its socket there.
fn prepare_socket_dir(root: &Path) -> io::Result<()> {
    let (uid, gid) = passwd_ids(root, "postgres")?.ok_or_else(|| {
        io::Error::other("the packages created no `postgres` user in /etc/passwd")
    })?;
    let dir = resolve_in_root(root, Path::new("var/run/postgresql"))?;
    fs::create_dir_all(&dir)?;
    std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o3777))
}

fn passwd_ids(root: &Path, user: &str) -> io::Result<Option<(u32, u32)>> {
    let passwd = fs::read_to_string(resolve_in_root(root, Path::new("etc/passwd"))?)?;
    Ok(passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == user {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    }))
}

/// Empties directory `rel` (resolved in `root`) except for the names in `keep`.
fn clear_dir(root: &Path, rel: &str, keep: &[&str]) -> io::Result<()> {
    clear_real_dir(&resolve_in_root(root, Path::new(rel))?, keep)
}

fn clear_real_dir(dir: &Path, keep: &[&str]) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if keep.iter().any(|k| entry.file_name() == *k) {
            continue;
        }
        remove_path(&entry.path())?;
    }
    Ok(())
}

fn remove_in_root(root: &Path, rel: &str) -> io::Result<()> {
    remove_path(&resolve_in_root(root, Path::new(rel))?)
}

/// Removes a file, symlink (not its target) or directory tree; absent is fine.
fn remove_path(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Chunk size of the tar stream sent to Docker.
const CHUNK: usize = 1 << 20;

/// Streams a tar of `root` (owners, modes, symlinks and hard links kept; device nodes,
/// fifos, sockets and other file systems skipped), produced on a blocking thread. The handle
/// yields the archive's size.
pub(crate) fn tar_stream(
    root: PathBuf,
) -> (
    impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    JoinHandle<io::Result<u64>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let producer = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: tx.clone(),
            written: 0,
        };
        let result = write_tar(&root, &mut writer).and_then(|()| writer.flush_chunk());
        if let Err(e) = &result {
            // Make the request body fail instead of ending like a complete archive.
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result.map(|()| writer.written)
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (stream, producer)
}

struct ChannelWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
    written: u64,
}

impl ChannelWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.written += chunk.len() as u64;
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "Docker stopped reading the image",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the archive of `root` (entries relative to it, the root itself omitted).
pub(crate) fn write_tar<W: Write>(root: &Path, out: W) -> io::Result<()> {
    let dev = fs::symlink_metadata(root)?.dev();
    let mut builder = tar::Builder::new(out);
    let mut hard_links = HashMap::new();
    append_tree(&mut builder, root, Path::new(""), dev, &mut hard_links)?;
    builder.into_inner()?.flush()
}

fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    dev: u64,
    hard_links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut entries = fs::read_dir(root.join(rel))?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(&path)?;
        if meta.dev() != dev {
            continue;
        }
        let kind = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_mode(meta.mode() & 0o7777);
        if kind.is_dir() {
            builder.append_data(&mut header, &name, io::empty())?;
            append_tree(builder, root, &name, dev, hard_links)?;
        } else if kind.is_symlink() {
            builder.append_link(&mut header, &name, fs::read_link(&path)?)?;
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                match hard_links.entry((meta.dev(), meta.ino())) {
                    Entry::Occupied(first) => {
                        header.set_entry_type(tar::EntryType::Link);
                        header.set_size(0);
                        builder.append_link(&mut header, &name, first.get())?;
                        continue;
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(name.clone());
                    }
                }
            }
            let file = fs::File::open(&path)?;
            builder.append_data(&mut header, &name, file.take(meta.len()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Not under BUILD_DIR_PREFIX, which a concurrent real build would sweep away.
    fn scratch() -> BuildDir {
        BuildDir::create_named("dbtopo-unit-").unwrap()
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let dir = scratch();
        let root = dir.path();
        fs::create_dir_all(root.join("run")).unwrap();
        fs::create_dir_all(root.join("var")).unwrap();
        symlink("/run", root.join("var/run")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("var/run/postgresql")).unwrap(),
            root.join("run/postgresql")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("up/etc/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, Path::new("loop/x")).is_err());
        dir.remove().unwrap();
    }

    #[test]
    fn slim_keeps_licences_and_c_utf8_and_drops_the_default_cluster() {
        let dir = scratch();
        let root = dir.path();
        for d in [
            "usr/share/doc/libc6",
            "usr/share/locale/de/LC_MESSAGES",
            "usr/lib/locale/C.utf8",
            "var/lib/postgresql/17/main",
            "etc/postgresql/17/main",
            "var/cache/apt/archives",
            "run",
            "etc",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::create_dir_all(root.join("var")).unwrap();
        symlink("/run", root.join("var/run")).unwrap();
        for f in [
            "usr/share/doc/libc6/copyright",
            "usr/share/doc/libc6/changelog.gz",
            "usr/share/locale/locale.alias",
            "usr/share/locale/de/LC_MESSAGES/x.mo",
            "var/cache/apt/archives/a.deb",
            "etc/resolv.conf",
        ] {
            fs::write(root.join(f), b"x").unwrap();
        }
        let me = fs::metadata(root).unwrap();
        fs::write(
            root.join("etc/passwd"),
            format!(
                "root:x:0:0::/root:/bin/sh\npostgres:x:{}:{}::/:/bin/sh\n",
                me.uid(),
                me.gid()
            ),
        )
        .unwrap();
        let recipe = crate::images::debian_recipe("postgres:17").unwrap();
        slim(root, &recipe).unwrap();
        assert!(root.join("usr/share/doc/libc6/copyright").exists());
        assert!(!root.join("usr/share/doc/libc6/changelog.gz").exists());
        assert!(root.join("usr/share/locale/locale.alias").exists());
        assert!(!root.join("usr/share/locale/de").exists());
        assert!(root.join("usr/lib/locale/C.utf8").exists());
        assert!(!root.join("var/lib/postgresql/17").exists());
        assert!(root.join("var/lib/postgresql").exists());
        assert!(!root.join("etc/postgresql/17").exists());
        assert!(!root.join("var/cache/apt/archives").exists());
        assert_eq!(fs::read(root.join("etc/resolv.conf")).unwrap(), b"");
        let socket_dir = fs::metadata(root.join("run/postgresql")).unwrap();
        assert_eq!(socket_dir.mode() & 0o7777, 0o3777);
        dir.remove().unwrap();
    }

    #[test]
    fn tar_keeps_links_and_modes() {
        let dir = scratch();
        let root = dir.path();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(root.join("bin/tool"), root.join("bin/tool2")).unwrap();
        symlink("/bin/tool", root.join("bin/abs")).unwrap();
        let mut archive = Vec::new();
        write_tar(root, &mut archive).unwrap();
        let mut seen = Vec::new();
        for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry.path().unwrap().into_owned();
            let link = entry.link_name().unwrap().map(|l| l.into_owned());
            seen.push((path, header.entry_type(), header.mode().unwrap(), link));
        }
        let find = |p: &str| seen.iter().find(|e| e.0 == Path::new(p)).unwrap().clone();
        assert_eq!(find("bin").1, tar::EntryType::Directory);
        assert_eq!(find("bin/tool").1, tar::EntryType::Regular);
        assert_eq!(find("bin/tool").2, 0o4755);
        assert_eq!(find("bin/tool2").1, tar::EntryType::Link);
        assert_eq!(find("bin/tool2").3, Some(PathBuf::from("bin/tool")));
        assert_eq!(find("bin/abs").1, tar::EntryType::Symlink);
        assert_eq!(find("bin/abs").3, Some(PathBuf::from("/bin/tool")));
        dir.remove().unwrap();
    }

    #[test]
    fn mountinfo_escapes_decode() {
        assert_eq!(
            unescape_mountinfo(r"/tmp/a\040b"),
            OsString::from("/tmp/a b")
        );
        assert_eq!(unescape_mountinfo(r"/x\134y"), OsString::from(r"/x\y"));
        assert_eq!(unescape_mountinfo(r"/x\1"), OsString::from(r"/x\1"));
    }
}
