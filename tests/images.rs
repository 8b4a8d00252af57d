//! Against the real Docker Engine: build PostgreSQL 17 from Debian packages and run it.
//! Needs root, a Docker daemon and debootstrap with access to Debian's archive.

use std::sync::Mutex;
use std::time::Instant;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptions, RemoveImageOptions,
};
use dbtopo::images::{ImageError, build_from_debian, debian_recipe, ensure_image, image_present};
use futures_util::StreamExt;

async fn docker() -> Docker {
    Docker::connect_with_local_defaults()
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("docker daemon answers")
}

fn unique() -> String {
    format!("{:012x}", rand::random::<u64>() >> 16)
}

/// Removes the test's containers and images by name, even when an assertion failed.
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        let images = std::mem::take(&mut self.images);
        // Drop runs inside the test's runtime, which cannot be blocked on; use a fresh one.
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let docker = docker().await;
                for name in &containers {
                    let options = RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    };
                    let _ = docker.remove_container(name, Some(options)).await;
                }
                for name in &images {
                    let options = RemoveImageOptions {
                        force: true,
                        ..Default::default()
                    };
                    let _ = docker.remove_image(name, Some(options), None).await;
                }
            });
        });
        let _ = worker.join();
    }
}

/// Collects progress lines, echoing them (shown with --nocapture or on failure).
fn recorder(lines: &Mutex<Vec<String>>) -> impl Fn(&str) + Sync + '_ {
    let started = Instant::now();
    move |line: &str| {
        eprintln!("[images {:5.1}s] {line}", started.elapsed().as_secs_f64());
        lines.lock().unwrap().push(line.to_string());
    }
}

const CHECK_SCRIPT: &str = r#"
set -e
postgres --version
initdb --version
echo "socket dir: $(stat -c '%U %a' /var/run/postgresql)"
test ! -e /var/lib/postgresql/17/main && test ! -e /etc/postgresql/17 && echo no-default-cluster
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
as_pg initdb -D /tmp/pgdata -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg pg_ctl -D /tmp/pgdata -w -l /tmp/pgdata.log start >/dev/null
echo "answer: $(as_pg psql -h /var/run/postgresql -At -c 'select 40 + 2' postgres)"
as_pg pg_ctl -D /tmp/pgdata -m fast -w stop >/dev/null
"#;

#[tokio::test]
async fn builds_postgres_17_from_debian_and_runs_it() {
    let docker = docker().await;
    let id = unique();
    let tag = format!("dbtopo-test-{id}/postgres:17");
    let container = format!("dbtopo-test-{id}-run");
    let _cleanup = Cleanup {
        containers: vec![container.clone()],
        images: vec![tag.clone()],
    };
    let lines = Mutex::new(Vec::new());
    let report = recorder(&lines);

    let recipe = debian_recipe("postgres:17").expect("postgres:17 has a recipe");
    let started = Instant::now();
    build_from_debian(&docker, &recipe, &tag, &report)
        .await
        .unwrap_or_else(|e| panic!("build failed: {:?}", miette::Report::new(e)));
    eprintln!(
        "[images] build took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(image_present(&docker, &tag).await.unwrap());
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("debootstrap")),
        "progress was reported"
    );

    let image = docker.inspect_image(&tag).await.unwrap();
    let config = image.config.expect("image config");
    let labels = config.labels.unwrap_or_default();
    assert_eq!(
        labels.get("dbtopo.built-from").map(String::as_str),
        Some("debian:trixie")
    );
    assert_eq!(
        labels.get("dbtopo.packages").map(String::as_str),
        Some("postgresql-17")
    );
    let env = config.env.unwrap_or_default();
    assert!(env.iter().any(|e| e == "LANG=C.UTF-8"), "{env:?}");
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=/usr/lib/postgresql/17/bin:")),
        "{env:?}"
    );
    assert_eq!(config.stop_signal.as_deref(), Some("SIGINT"));
    let size_mb = image.size.unwrap_or(0) / 1_000_000;
    eprintln!("[images] image size {size_mb} MB");
    assert!(size_mb > 50 && size_mb < 450, "image is {size_mb} MB");

    let options = CreateContainerOptionsBuilder::default()
        .name(&container)
        .build();
    let body = ContainerCreateBody {
        image: Some(tag.clone()),
        cmd: Some(vec!["sh".into(), "-c".into(), CHECK_SCRIPT.into()]),
        ..Default::default()
    };
    docker.create_container(Some(options), body).await.unwrap();
    docker.start_container(&container, None).await.unwrap();
    let exit = match docker.wait_container(&container, None).next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("waiting for the container: {other:?}"),
    };
    let logs_options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut output = String::new();
    let mut logs = docker.logs(&container, Some(logs_options));
    while let Some(chunk) = logs.next().await {
        output.push_str(&chunk.unwrap().to_string());
    }
    assert_eq!(exit, 0, "container failed:\n{output}");
    assert!(
        output.contains("postgres (PostgreSQL) 17"),
        "postgres --version:\n{output}"
    );
    assert!(
        output.contains("initdb (PostgreSQL) 17"),
        "initdb --version:\n{output}"
    );
    assert!(output.contains("socket dir: postgres 3777"), "{output}");
    assert!(output.contains("no-default-cluster"), "{output}");
    assert!(output.contains("answer: 42"), "{output}");
}

#[tokio::test]
async fn unknown_image_without_registry_fails_with_the_no_recipe_error() {
    let docker = docker().await;
    let reference = format!("dbtopo-test-{}/nothing:1", unique());
    let _cleanup = Cleanup {
        containers: vec![],
        images: vec![reference.clone()],
    };
    assert!(!image_present(&docker, &reference).await.unwrap());
    let lines = Mutex::new(Vec::new());
    let error = ensure_image(&docker, &reference, &recorder(&lines))
        .await
        .expect_err("nothing can provide this image");
    match &error {
        ImageError::NoRecipe {
            reference: r,
            pull_error,
        } => {
            assert_eq!(r, &reference);
            assert!(!pull_error.is_empty());
        }
        other => panic!("expected NoRecipe, got {other:?}"),
    }
    let rendered = format!("{:?}", miette::Report::new(error));
    assert!(rendered.contains(&reference), "{rendered}");
    assert!(rendered.contains("No registry answered"), "{rendered}");
    assert!(rendered.contains("docker load"), "{rendered}");
    assert!(rendered.contains("images.postgres"), "{rendered}");
    assert!(
        lines.lock().unwrap().iter().any(|l| l.contains("pulling")),
        "the pull attempt was reported"
    );
}

#[tokio::test]
async fn failed_debootstrap_quotes_its_output() {
    let docker = docker().await;
    let tag = format!("dbtopo-test-{}/broken:1", unique());
    let _cleanup = Cleanup {
        containers: vec![],
        images: vec![tag.clone()],
    };
    let mut recipe = debian_recipe("postgres:17").unwrap();
    recipe.suite = "dbtopo-no-such-suite".into();
    let lines = Mutex::new(Vec::new());
    let error = build_from_debian(&docker, &recipe, &tag, &recorder(&lines))
        .await
        .expect_err("no such suite");
    match &error {
        ImageError::DebootstrapFailed { suite, tail, .. } => {
            assert_eq!(suite, "dbtopo-no-such-suite");
            assert!(tail.contains("dbtopo-no-such-suite"), "{tail}");
        }
        other => panic!("expected DebootstrapFailed, got {other:?}"),
    }
    assert!(!image_present(&docker, &tag).await.unwrap());
}
