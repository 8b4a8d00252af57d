//! New primaries are copies of a cached initdb, and each is still a cluster of its own: its
//! own system identifier, the environment's password, a WAL it restarts from. A damaged cache
//! costs an initdb, never a node. One test, so nothing else here touches the cache meanwhile.

mod common;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use common::{TestEnv, docker};
use dbtopo::model;
use futures_util::StreamExt;

const TWO_NODES: &str = "
name: cache
postgres:
  nodes:
    one: { port: 5501 }
    two: { port: 5502 }
  replicas:
    one-copy: { of: one, port: 5503 }
";

/// What initdb prints when it runs: absent from a node made from the cache.
const INITDB_SAYS: &str = "The files belonging to this database system";

async fn system_identifier(env: &TestEnv, node: &str) -> i64 {
    env.connect(node)
        .await
        .query_one("SELECT system_identifier FROM pg_control_system()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn logs(docker: &Docker, container: &str) -> String {
    dbtopo::execute::docker::log_tail(docker, container, 10_000).await
}

/// Run `script` in a throwaway container that mounts the cache volume at /cache; its output.
async fn in_cache(docker: &Docker, script: &str) -> String {
    let name = format!(
        "tcache-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let body = ContainerCreateBody {
        image: Some("postgres:17".into()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        cmd: Some(vec![]),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some("/cache".into()),
                source: Some(model::INITDB_CACHE_VOLUME.into()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker.create_container(Some(options), body).await.unwrap();
    let ran = async {
        docker.start_container(&name, None).await?;
        let mut wait = docker.wait_container(&name, None::<WaitContainerOptions>);
        while let Some(status) = wait.next().await {
            status?;
        }
        Ok::<_, bollard::errors::Error>(())
    }
    .await;
    let output = logs(docker, &name).await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&name, Some(remove)).await;
    ran.unwrap_or_else(|e| panic!("cache helper failed: {e}: {output}"));
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn primaries_copied_from_the_initdb_cache_are_clusters_of_their_own() {
    let docker = docker().await;
    let first = TestEnv::from_yaml("cachea", TWO_NODES);
    first.apply().await.expect("first environment");
    let listing = in_cache(&docker, "ls /cache").await;
    assert!(
        listing.lines().any(|l| l.ends_with(".tar")),
        "a fresh cluster is cached after the first apply: {listing:?}"
    );

    // A second environment's nodes are copies of the cached cluster.
    let second = TestEnv::from_yaml("cacheb", TWO_NODES);
    second.apply().await.expect("second environment");
    for node in ["one", "two"] {
        let log = logs(&docker, &second.container(node)).await;
        assert!(
            !log.contains(INITDB_SAYS),
            "{node} was copied, not made by initdb: {log}"
        );
    }

    // Every cluster has its own identifier; a replica shares its upstream's.
    let mut identifiers = Vec::new();
    for env in [&first, &second] {
        for node in ["one", "two"] {
            identifiers.push(system_identifier(env, node).await);
        }
        assert_eq!(
            system_identifier(env, "one-copy").await,
            system_identifier(env, "one").await,
            "a replica is a copy of its upstream"
        );
    }
    let distinct: std::collections::BTreeSet<_> = identifiers.iter().collect();
    assert_eq!(distinct.len(), 4, "identifiers: {identifiers:?}");

    // A copied cluster writes, streams, and restarts from its own WAL with its rows.
    second
        .connect("one")
        .await
        .batch_execute(
            "CREATE TABLE probe (id int PRIMARY KEY); INSERT INTO probe SELECT generate_series(1, 100)",
        )
        .await
        .unwrap();
    docker
        .restart_container(
            &second.container("one"),
            None::<bollard::query_parameters::RestartContainerOptions>,
        )
        .await
        .unwrap();
    second.apply().await.expect("the restarted node answers");
    let rows: i64 = second
        .connect("one")
        .await
        .query_one("SELECT count(*) FROM probe", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 100);
    second.assert_converged_and_streaming("one-copy").await;

    // A damaged cache: the next node runs initdb instead, and the cache is whole again.
    let sizes = "for f in /cache/*.tar; do wc -c < \"$f\"; done";
    in_cache(
        &docker,
        "for f in /cache/*.tar; do head -c 100000 \"$f\" > \"$f.cut\" && mv \"$f.cut\" \"$f\"; done",
    )
    .await;
    let third = TestEnv::from_yaml(
        "cachec",
        "name: cache\npostgres:\n  nodes:\n    solo: { port: 5501 }\n",
    );
    third
        .apply()
        .await
        .expect("a damaged cache does not fail the apply");
    let log = logs(&docker, &third.container("solo")).await;
    assert!(log.contains(INITDB_SAYS), "solo was made by initdb: {log}");
    let after = in_cache(&docker, sizes).await;
    assert!(
        after
            .split_whitespace()
            .any(|size| size.parse::<u64>().unwrap() > 100_000),
        "the cache is whole again: sizes {after:?}"
    );
    assert!(third.plan().await.is_empty());

    // The cache leaves out the WAL (a copy's pg_resetwal writes its own), and a node copied
    // from the cache as just written starts and answers.
    let wal = in_cache(&docker, "for f in /cache/*.tar; do tar -tf \"$f\"; done").await;
    assert!(wal.contains("./global/pg_control"), "{wal}");
    assert!(
        !wal.lines().any(|l| l.starts_with("./pg_wal/0")),
        "no WAL segment in the cache: {wal}"
    );
    let port = common::free_ports(1)[0];
    third.rewrite(|t| format!("{t}    duo: {{ port: {port} }}\n"));
    third
        .apply()
        .await
        .expect("a node copied from the new cache");
    let log = logs(&docker, &third.container("duo")).await;
    assert!(!log.contains(INITDB_SAYS), "duo was copied: {log}");
    assert!(third.plan().await.is_empty());
}
