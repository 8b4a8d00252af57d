//! Building an image from Debian packages: debootstrap, slim, `docker import`, then a
//! metadata-only build for what import cannot set (STOPSIGNAL).

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveImageOptions,
};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::rootfs::{self, BuildDir};
use super::{DebianRecipe, ImageError, image_present};

/// Overrides debootstrap's default Debian mirror.
pub const MIRROR_ENV: &str = "DBTOPO_DEBIAN_MIRROR";

/// Streaming ~300 MB into the daemon can outlast bollard's default 2-minute timeout.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Standard directories that follow the recipe's own in the image's `PATH`.
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build `recipe` into an image tagged `tag` (used by ensure_image; public for tests).
pub async fn build_from_debian(
    docker: &Docker,
    recipe: &DebianRecipe,
    tag: &str,
    report: &(dyn Fn(&str) + Sync),
) -> Result<(), ImageError> {
    let _lock = BuildLock::acquire(report).await?;
    if image_present(docker, tag).await? {
        report(&format!(
            "{tag} was built by another dbtopo process meanwhile"
        ));
        return Ok(());
    }
    let program = super::debootstrap_tool::locate_or_fetch(report).await?;
    sweep_stale_build_dirs(report).await;
    sweep_stale_base_images(docker).await;

    let dir = blocking("creating a build directory", BuildDir::create).await?;
    let result = build_in(docker, recipe, tag, report, &program, dir.path()).await;
    let removed = blocking("removing the build directory", move || dir.remove()).await;
    result?;
    removed
}

async fn build_in(
    docker: &Docker,
    recipe: &DebianRecipe,
    tag: &str,
    report: &(dyn Fn(&str) + Sync),
    program: &super::debootstrap_tool::Debootstrap,
    root: &Path,
) -> Result<(), ImageError> {
    let started = Instant::now();
    report(&format!(
        "debootstrap: installing Debian {} with {} (about a minute)",
        recipe.suite,
        recipe.packages.join(", ")
    ));
    run_debootstrap(program, recipe, root, report).await?;
    report(&format!(
        "debootstrap: done in {}s; slimming the file system",
        started.elapsed().as_secs()
    ));

    let (slim_root, slim_recipe) = (root.to_path_buf(), recipe.clone());
    blocking("slimming the built file system", move || {
        rootfs::slim(&slim_root, &slim_recipe)
    })
    .await?;

    let base = format!("{BASE_REPO_PREFIX}{:016x}:import", rand::random::<u64>());
    report(&format!("importing the file system into Docker as {tag}"));
    let result = async {
        import_rootfs(docker, root.to_path_buf(), &base, tag, report).await?;
        finish_image(docker, &base, recipe, tag).await
    }
    .await;
    // On success this only untags: the final image keeps `base` as its parent layer.
    let force = result.is_err();
    let options = RemoveImageOptions {
        force,
        ..Default::default()
    };
    let _ = docker.remove_image(&base, Some(options), None).await;
    result?;
    if !image_present(docker, tag).await? {
        return Err(ImageError::ImportFailed {
            tag: tag.to_string(),
            message: "the build finished but the image is not there".into(),
        });
    }
    report(&format!(
        "built {tag} from Debian {} in {}s",
        recipe.suite,
        started.elapsed().as_secs()
    ));
    Ok(())
}

/// Held for a whole build, so concurrent dbtopo processes never debootstrap twice.
struct BuildLock {
    _file: File,
}

impl BuildLock {
    async fn acquire(report: &(dyn Fn(&str) + Sync)) -> Result<Self, ImageError> {
        let path = std::env::temp_dir().join("dbtopo-image-build.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ImageError::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => return Ok(BuildLock { _file: file }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(ImageError::io(format!("locking {}", path.display()), e));
            }
        }
        report("another dbtopo process is building an image; waiting for it");
        let action = format!("locking {}", path.display());
        blocking(action, move || {
            file.lock().map(|()| BuildLock { _file: file })
        })
        .await
    }
}

/// Build directories are only created under the build lock, so any left when we hold it
/// belong to an interrupted build.
async fn sweep_stale_build_dirs(report: &(dyn Fn(&str) + Sync)) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let stale: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(rootfs::BUILD_DIR_PREFIX)
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .collect();
    for dir in stale {
        report(&format!(
            "removing {} left by an interrupted build",
            dir.display()
        ));
        let action = format!("could not remove {}", dir.display());
        if let Err(e) = blocking(action, move || rootfs::remove_tree(&dir)).await {
            report(&e.to_string());
        }
    }
}

/// Repository prefix of the intermediate imported image, untagged once the build is done.
const BASE_REPO_PREFIX: &str = "dbtopo-rootfs-";

/// Like the directories, a base image still tagged while we hold the lock was left by an
/// interrupted build.
async fn sweep_stale_base_images(docker: &Docker) {
    let filters = HashMap::from([("reference", vec![format!("{BASE_REPO_PREFIX}*")])]);
    let options = ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let Ok(images) = docker.list_images(Some(options)).await else {
        return;
    };
    for tag in images.iter().flat_map(|i| &i.repo_tags) {
        if tag.starts_with(BASE_REPO_PREFIX) {
            let options = RemoveImageOptions {
                force: true,
                ..Default::default()
            };
            let _ = docker.remove_image(tag, Some(options), None).await;
        }
    }
}

/// debootstrap calls chroot, mknod and friends, which live in sbin.
fn debootstrap_path_env() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for sbin in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(sbin)) {
            dirs.push(sbin.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or(path)
}

async fn run_debootstrap(
    program: &super::debootstrap_tool::Debootstrap,
    recipe: &DebianRecipe,
    target: &Path,
    report: &(dyn Fn(&str) + Sync),
) -> Result<(), ImageError> {
    let mut include = recipe.packages.clone();
    include.push("ca-certificates".into());
    let mut command = Command::new(&program.program);
    if let Some(share) = &program.share_dir {
        command.env("DEBOOTSTRAP_DIR", share);
    }
    command
        .arg("--variant=minbase")
        .arg(format!("--include={}", include.join(",")))
        .arg(&recipe.suite)
        .arg(target);
    if let Some(mirror) = std::env::var(MIRROR_ENV)
        .ok()
        .filter(|m| !m.trim().is_empty())
    {
        command.arg(mirror.trim());
    }
    command
        .env("PATH", debootstrap_path_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so cancelling can stop dpkg & co. inside the chroot too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImageError::DebootstrapMissing,
        _ => ImageError::io(format!("starting {}", program.program.display()), e),
    })?;
    let mut group = ProcessGroup(child.id().and_then(|pid| i32::try_from(pid).ok()));
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut progress = DebootstrapProgress::new();
    read_lines(stdout, stderr, |line| {
        if let Some(message) = progress.line(line, Instant::now()) {
            report(&format!("debootstrap: {message}"));
        }
    })
    .await
    .map_err(|e| ImageError::io("reading debootstrap's output", e))?;
    let status = child
        .wait()
        .await
        .map_err(|e| ImageError::io("waiting for debootstrap", e))?;
    group.0 = None;
    if status.success() {
        return Ok(());
    }
    let mut tail: Vec<String> = progress.tail.into_iter().collect();
    // On failure debootstrap points to its own log inside the target; quote it before the
    // target is removed.
    if let Ok(log) = std::fs::read_to_string(target.join("debootstrap/debootstrap.log")) {
        let lines: Vec<&str> = log.lines().collect();
        tail.push("--- debootstrap.log (end) ---".into());
        tail.extend(
            lines[lines.len().saturating_sub(TAIL_LINES)..]
                .iter()
                .map(|l| l.to_string()),
        );
    }
    Err(ImageError::DebootstrapFailed {
        suite: recipe.suite.clone(),
        status: status.to_string(),
        tail: tail.join("\n"),
    })
}

/// Kills debootstrap's process group if dropped before debootstrap exited, and waits for
/// the group to be gone so that its mounts and files can be removed.
struct ProcessGroup(Option<i32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let Some(pgid) = self.0 else { return };
        // SAFETY: kill(2) takes no pointers; a negative pid addresses our child's group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a live (non-zombie) process is still in group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.filter_map(Result::ok).any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // After "pid (comm) ": state ppid pgrp …; comm may contain spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let mut fields = rest.split(' ');
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

/// Reads both pipes line by line (lossy UTF-8) until both close.
async fn read_lines(
    stdout: impl AsyncRead + Unpin,
    stderr: impl AsyncRead + Unpin,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut out = BufReader::new(stdout).split(b'\n');
    let mut err = BufReader::new(stderr).split(b'\n');
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let segment = tokio::select! {
            s = out.next_segment(), if out_open => {
                let s = s?;
                out_open = s.is_some();
                s
            }
            s = err.next_segment(), if err_open => {
                let s = s?;
                err_open = s.is_some();
                s
            }
        };
        if let Some(bytes) = segment {
            on_line(String::from_utf8_lossy(&bytes).trim_end());
        }
    }
    Ok(())
}

const TAIL_LINES: usize = 25;

/// Condenses debootstrap's hundreds of `I:` lines into stage changes and a heartbeat.
struct DebootstrapProgress {
    stage: Option<&'static str>,
    last_report: Instant,
    tail: VecDeque<String>,
}

const HEARTBEAT: Duration = Duration::from_secs(15);

impl DebootstrapProgress {
    fn new() -> Self {
        DebootstrapProgress {
            stage: None,
            last_report: Instant::now(),
            tail: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    fn line(&mut self, line: &str, now: Instant) -> Option<String> {
        if line.is_empty() {
            return None;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        if let Some(warning) = line.strip_prefix("W: ") {
            return Some(format!("warning: {warning}"));
        }
        let rest = line.strip_prefix("I: ")?;
        // Per-package lines stay in the current stage; they only feed the heartbeat.
        let stage = stage_of(rest).or(self.stage)?;
        if self.stage != Some(stage) {
            self.stage = Some(stage);
            self.last_report = now;
            return Some(stage.to_string());
        }
        if now.duration_since(self.last_report) >= HEARTBEAT {
            self.last_report = now;
            return Some(format!("{stage} ({rest})"));
        }
        None
    }
}

/// The stage an `I:` line opens, if it opens one.
fn stage_of(info: &str) -> Option<&'static str> {
    let verb = info.split_whitespace().next()?;
    match verb {
        "Retrieving" | "Validating" | "Checking" | "Valid" | "Resolving" | "Found" => {
            Some("downloading packages")
        }
        "Chosen" | "Extracting" => Some("extracting packages"),
        "Installing" => Some("installing core packages"),
        "Unpacking" | "Configuring" if info.ends_with(" required packages...") => {
            Some("installing required packages")
        }
        "Unpacking" | "Configuring" if info.ends_with(" the base system...") => {
            Some("installing the base system")
        }
        _ => None,
    }
}

/// Streams a tar of `root` into `POST /images/create?fromSrc=-`, tagged `base`.
async fn import_rootfs(
    docker: &Docker,
    root: PathBuf,
    base: &str,
    tag: &str,
    report: &(dyn Fn(&str) + Sync),
) -> Result<(), ImageError> {
    let failed = |message: String| ImageError::ImportFailed {
        tag: tag.to_string(),
        message,
    };
    let (repo, base_tag) = base.split_once(':').expect("base has a tag");
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(base_tag)
        .message("dbtopo: debootstrapped root file system")
        .build();
    let (body, producer) = rootfs::tar_stream(root);
    let docker = docker.clone().with_timeout(IMPORT_TIMEOUT);
    let mut responses =
        docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut daemon_error = None;
    while let Some(item) = responses.next().await {
        if let Err(e) = item {
            daemon_error = Some(e.to_string());
            break;
        }
    }
    drop(responses);
    let produced = producer
        .await
        .map_err(|e| failed(format!("the tar writer crashed: {e}")))?;
    match (produced, daemon_error) {
        (Ok(bytes), None) => {
            report(&format!("imported {} MB", bytes / 1_000_000));
            Ok(())
        }
        (Ok(_), Some(daemon)) => Err(failed(daemon)),
        (Err(tar), Some(daemon)) if tar.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(failed(daemon))
        }
        (Err(tar), _) => Err(failed(format!("writing the tar stream: {tar}"))),
    }
}

/// Sets ENV, LABEL and STOPSIGNAL with a classic-builder build FROM the imported base:
/// `docker import --change` rejects STOPSIGNAL.
async fn finish_image(
    docker: &Docker,
    base: &str,
    recipe: &DebianRecipe,
    tag: &str,
) -> Result<(), ImageError> {
    let failed = |message: String| ImageError::ImportFailed {
        tag: tag.to_string(),
        message,
    };
    let context = build_context(&dockerfile(base, recipe))
        .map_err(|e| failed(format!("writing the build context: {e}")))?;
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        item.map_err(|e| failed(format!("setting the image's metadata: {e}")))?;
    }
    Ok(())
}

pub(crate) fn dockerfile(base: &str, recipe: &DebianRecipe) -> String {
    let mut path = recipe.path_dirs.clone();
    path.push(BASE_PATH.to_string());
    format!(
        "FROM {base}\n\
         ENV PATH=\"{path}\" LANG=\"C.UTF-8\"\n\
         LABEL dbtopo.built-from=\"debian:{suite}\" dbtopo.packages=\"{packages}\"\n\
         STOPSIGNAL SIGINT\n",
        path = path.join(":"),
        suite = recipe.suite,
        packages = recipe.packages.join(","),
    )
}

fn build_context(dockerfile: &str) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())?;
    builder.into_inner()
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    action: impl Into<String>,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ImageError> {
    let action = action.into();
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| ImageError::io(action, e)),
        Err(e) => Err(ImageError::io(action, std::io::Error::other(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_sets_path_lang_labels_and_stop_signal() {
        let recipe = super::super::debian_recipe("postgres:17").unwrap();
        assert_eq!(
            dockerfile("dbtopo-rootfs-1:import", &recipe),
            "FROM dbtopo-rootfs-1:import\n\
             ENV PATH=\"/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\" LANG=\"C.UTF-8\"\n\
             LABEL dbtopo.built-from=\"debian:trixie\" dbtopo.packages=\"postgresql-17\"\n\
             STOPSIGNAL SIGINT\n"
        );
    }

    #[test]
    fn debootstrap_progress_reports_stage_changes_only() {
        let mut p = DebootstrapProgress::new();
        let t0 = Instant::now();
        let lines = [
            "I: Retrieving InRelease ",
            "I: Checking Release signature",
            "I: Retrieving libc6 2.41-12",
            "I: Validating libc6 2.41-12",
            "I: Chosen extractor for .deb packages: dpkg-deb",
            "I: Extracting libc6...",
            "I: Installing core packages...",
            "I: Unpacking required packages...",
            "I: Unpacking libc6:amd64...",
            "I: Configuring required packages...",
            "I: Configuring libc6:amd64...",
            "I: Unpacking the base system...",
            "I: Unpacking postgresql-17...",
            "I: Configuring the base system...",
            "I: Configuring postgresql-17...",
            "W: something odd",
            "I: Base system installed successfully.",
        ];
        let reported: Vec<String> = lines.iter().filter_map(|l| p.line(l, t0)).collect();
        assert_eq!(
            reported,
            [
                "downloading packages",
                "extracting packages",
                "installing core packages",
                "installing required packages",
                "installing the base system",
                "warning: something odd",
            ]
        );
        let later = t0 + HEARTBEAT;
        assert_eq!(
            p.line("I: Configuring libpq5:amd64...", later).as_deref(),
            Some("installing the base system (Configuring libpq5:amd64...)")
        );
        assert_eq!(p.line("I: Configuring libc-bin...", later), None);
        assert_eq!(p.tail.back().unwrap(), "I: Configuring libc-bin...");
    }
}
