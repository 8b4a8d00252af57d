//! Who a server admits over TCP, against real servers: by default its environment's network
//! only (the other servers, and the host through the published port); an `access:` rule adds
//! its addresses with a reload, and taking it away refuses them again.

mod common;

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use common::TestEnv;
use dbtopo::plan::{Action, Operation};
use futures_util::StreamExt;

/// A coordinator with a streaming replica, a data node holding list and hash fragments, a
/// reference copy (a logical subscription) and prepared transactions for `txn`.
const TOPOLOGY: &str = "
name: gate
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 8 }
  nodes:
    hub: { port: 6211 }
    leaf: { port: 6212 }
  replicas:
    hub-mirror: { of: hub, port: 6213 }
  schema: { file: tests/fixtures/fragments.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal:
        key: region
        by: list
        parts:
          - { node: leaf, values: [EU] }
          - { node: hub, values: [US] }
    events:
      horizontal: { key: user_id, by: hash, parts: [{ node: leaf }, { node: hub }] }
  reference_tables:
    categories: [leaf]
";

/// Made by the test without dbtopo's label: a network outside the environment and a client
/// container on it; removed when the test ends, failed or not.
struct Outside {
    network: String,
    client: String,
    /// Environment containers the test attached to the network.
    attached: Vec<String>,
}

impl Drop for Outside {
    fn drop(&mut self) {
        let (network, client) = (self.network.clone(), self.client.clone());
        let attached = std::mem::take(&mut self.attached);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let docker = common::docker().await;
                let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build();
                let _ = docker.remove_container(&client, Some(options)).await;
                for container in attached {
                    let _ = docker
                        .disconnect_network(
                            &network,
                            bollard::models::NetworkDisconnectRequest {
                                container,
                                force: Some(true),
                            },
                        )
                        .await;
                }
                let _ = docker.remove_network(&network).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Run psql in the client container against `host`; its output and whether it succeeded.
async fn psql(docker: &bollard::Docker, client: &str, host: &str) -> (bool, String) {
    let script = "for p in $(command -v psql) /usr/lib/postgresql/*/bin/psql; do \
                  [ -x \"$p\" ] && exec \"$p\" -h \"$1\" -p 5432 -U postgres -d postgres -Atc 'SELECT 42'; \
                  done; echo 'no psql in the image'; exit 127";
    let exec = docker
        .create_exec(
            client,
            CreateExecOptions {
                cmd: Some(vec![
                    "sh".to_owned(),
                    "-c".to_owned(),
                    script.to_owned(),
                    "psql".to_owned(),
                    host.to_owned(),
                ]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker.start_exec(&exec.id, None).await.unwrap()
    {
        while let Some(chunk) = stream.next().await {
            output.push_str(&chunk.unwrap().to_string());
        }
    }
    let code = docker.inspect_exec(&exec.id).await.unwrap().exit_code;
    (code == Some(0), output)
}

/// The address of `container` on `network`.
async fn address_on(docker: &bollard::Docker, container: &str, network: &str) -> String {
    let inspect = docker.inspect_container(container, None).await.unwrap();
    let networks = inspect.network_settings.unwrap().networks.unwrap();
    networks[network].ip_address.clone().unwrap()
}

async fn started_at(docker: &bollard::Docker, container: &str) -> String {
    let inspect = docker.inspect_container(container, None).await.unwrap();
    inspect.state.unwrap().started_at.unwrap()
}

fn access_rule(subnet: &str) -> String {
    format!("  access:\n    - {{ database: all, user: all, address: {subnet} }}\n  nodes:\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_environment_is_admitted_until_an_access_rule_adds_an_address() {
    let env = TestEnv::from_yaml("acc", TOPOLOGY);
    let docker = common::docker().await;
    env.apply().await.expect("apply");

    // dbtopo itself works through the default rules: the replica streams, the coordinator's
    // foreign tables reach the leaf, the leaf's subscription copies, verify passes, and a
    // distributed transaction commits on both nodes, all from the host's published ports.
    env.assert_converged_and_streaming("hub-mirror").await;
    let hub = env.connect_to("hub", "shop").await;
    let leaf = env.connect_to("leaf", "shop").await;
    hub.batch_execute(
        "INSERT INTO orders VALUES (1, 'EU', 10), (2, 'US', 20), (3, 'EU', 5);
         INSERT INTO events SELECT g, g FROM generate_series(1, 40) g;
         INSERT INTO categories VALUES (1, 'tools');",
    )
    .await
    .expect("writes through the coordinator reach the leaf");
    let eu: i64 = leaf
        .query_one("SELECT count(*) FROM orders_eu", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(eu, 2);
    let mut copied = 0i64;
    for _ in 0..100 {
        copied = leaf
            .query_one("SELECT count(*) FROM categories", &[])
            .await
            .unwrap()
            .get(0);
        if copied == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        copied, 1,
        "the leaf's subscription copies the reference table"
    );
    let script = env.file.with_file_name("script.sql");
    std::fs::write(
        &script,
        "-- node: hub\nINSERT INTO users VALUES (1, 'ada@example.com', 'Ada', 'x');\n-- node: leaf\nINSERT INTO orders_eu VALUES (4, 'EU', 7);\n",
    )
    .unwrap();
    dbtopo::app::txn(&dbtopo::cli::TxnArgs {
        file: dbtopo::cli::FileArg {
            file: env.file.clone(),
            profiles: Vec::new(),
        },
        sql: script,
    })
    .await
    .expect("a distributed transaction commits on both nodes");
    assert!(
        dbtopo::app::verify_command(&env.file)
            .await
            .expect("verify runs"),
        "verify passes"
    );

    // A network outside the environment, with the coordinator attached to it and a client.
    let outside = Outside {
        network: format!("{}-outside", env.name),
        client: format!("{}-client", env.name),
        attached: vec![env.container("hub")],
    };
    let labels = std::collections::HashMap::from([("dbtopo-test".to_owned(), env.name.clone())]);
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: outside.network.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let inspect = docker
        .inspect_network(
            &outside.network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    let subnet = inspect.ipam.unwrap().config.unwrap()[0]
        .subnet
        .clone()
        .unwrap();
    docker
        .connect_network(
            &outside.network,
            bollard::models::NetworkConnectRequest {
                container: env.container("hub"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let secrets = dbtopo::secrets::load_existing(&env.name).unwrap().unwrap();
    let body = bollard::models::ContainerCreateBody {
        image: Some("postgres:17".into()),
        entrypoint: Some(vec!["sleep".into(), "600".into()]),
        env: Some(vec![
            format!("PGPASSWORD={}", secrets.superuser),
            "PGCONNECT_TIMEOUT=5".into(),
        ]),
        labels: Some(labels),
        host_config: Some(bollard::models::HostConfig {
            network_mode: Some(outside.network.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&outside.client)
        .build();
    docker.create_container(Some(options), body).await.unwrap();
    docker.start_container(&outside.client, None).await.unwrap();
    let hub_outside = address_on(&docker, &env.container("hub"), &outside.network).await;
    let client_address = address_on(&docker, &outside.client, &outside.network).await;

    // Outside the environment: refused by pg_hba, though the password is right.
    let (ok, output) = psql(&docker, &outside.client, &hub_outside).await;
    assert!(!ok, "admitted from outside: {output}");
    assert!(
        output.contains(&format!(
            "no pg_hba.conf entry for host \"{client_address}\""
        )),
        "{output}"
    );

    // A rule for the outside network: planned as a reload that shows the rule, applied
    // without a restart, then the client is admitted and nothing is left to do.
    let before = (
        started_at(&docker, &env.container("hub")).await,
        env.postmaster_start("hub").await,
    );
    env.rewrite(|text| text.replacen("  nodes:\n", &access_rule(&subnet), 1));
    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    assert_eq!(
        common::actions(&plan),
        vec![
            ("node.hub".to_owned(), Action::Update),
            ("node.hub-mirror".to_owned(), Action::Update),
            ("node.leaf".to_owned(), Action::Update),
        ],
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "+ pg_hba.conf = \"host all all {subnet} scram-sha-256\"  (reload)"
        )),
        "{text}"
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| matches!(c.operation, Operation::Reconfigure { restart: false, .. }))
    );
    env.apply().await.expect("apply the rule");
    let (ok, output) = psql(&docker, &outside.client, &hub_outside).await;
    assert!(ok, "the rule's network is refused: {output}");
    assert_eq!(output.trim(), "42");
    assert_eq!(
        (
            started_at(&docker, &env.container("hub")).await,
            env.postmaster_start("hub").await,
        ),
        before,
        "the rule was taken up without a restart"
    );
    env.assert_converged_and_streaming("hub-mirror").await;

    // The rule taken away: refused again.
    env.rewrite(|text| text.replacen(&access_rule(&subnet), "  nodes:\n", 1));
    let text = dbtopo::plan::render_text(&env.plan().await);
    assert!(
        text.contains(&format!(
            "- pg_hba.conf = \"host all all {subnet} scram-sha-256\"  (reload)"
        )),
        "{text}"
    );
    env.apply().await.expect("apply without the rule");
    let (ok, output) = psql(&docker, &outside.client, &hub_outside).await;
    assert!(!ok, "still admitted after the rule went: {output}");
    assert!(output.contains("no pg_hba.conf entry"), "{output}");
    env.assert_converged_and_streaming("hub-mirror").await;
    // The host still comes in through the published port.
    env.postmaster_start("leaf").await;
    drop(outside);
}
