//! dbtopo with an image laid out like the official `postgres` image: an ENTRYPOINT script of
//! its own, a VOLUME at /var/lib/postgresql/data, the server binaries only under
//! /usr/lib/postgresql/17/bin and not on PATH. No registry serves the official image here, so
//! this one is derived from the local postgres:17.

mod common;

use bollard::query_parameters::BuildImageOptionsBuilder;
use common::{TestEnv, docker};
use futures_util::StreamExt;

const TOPOLOGY: &str = "
name: layout
images:
  postgres: \"postgres:17\"
postgres:
  nodes:
    solo: { port: 5601 }
  replicas:
    solo-copy: { of: solo, port: 5602 }
";

const DOCKERFILE: &str = "FROM postgres:17
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
ENTRYPOINT [\"docker-entrypoint.sh\"]
CMD [\"postgres\"]
";

async fn build_official_like(tag: &str) {
    let mut context = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(DOCKERFILE.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    context
        .append_data(&mut header, "Dockerfile", DOCKERFILE.as_bytes())
        .unwrap();
    let context = context.into_inner().unwrap();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .build();
    let docker = docker().await;
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        item.expect("build the official-like image");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_official_like_image_runs_and_destroy_leaves_no_anonymous_volume() {
    let env = TestEnv::from_yaml("layout", TOPOLOGY);
    // Make sure postgres:17 exists (built from Debian packages if needed) before deriving from it.
    dbtopo::images::ensure_image(&docker().await, "postgres:17", &|_| {})
        .await
        .expect("postgres:17");
    let tag = format!("dbtopo-test/{}:17", env.name);
    env.extra_images.lock().unwrap().push(tag.clone());
    build_official_like(&tag).await;
    env.rewrite(|t| t.replace("postgres: \"postgres:17\"", &format!("postgres: \"{tag}\"")));

    env.apply()
        .await
        .expect("apply with the official-like image");
    env.assert_converged_and_streaming("solo-copy").await;

    // The image's VOLUME gives each container an anonymous volume dbtopo does not use.
    let docker = docker().await;
    let inspect = docker
        .inspect_container(&env.container("solo"), None)
        .await
        .unwrap();
    let anonymous = inspect
        .mounts
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.destination.as_deref() == Some("/var/lib/postgresql/data"))
        .and_then(|m| m.name)
        .expect("the image's VOLUME is mounted");

    env.destroy().await.expect("destroy");
    let gone = docker.inspect_volume(&anonymous).await;
    assert!(
        gone.is_err(),
        "anonymous volume {anonymous} was left behind"
    );
}
