//! dbtopo's rules of trust, against a real Docker Engine: no secret goes to a program that
//! merely holds a topology's port.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TestEnv;

const ONE_NODE: &str = "
name: trust
postgres:
  nodes:
    lone: { port: 5801 }
";

const LONE_AND_COPY: &str = "
name: trust
postgres:
  nodes:
    lone: { port: 5801 }
  replicas:
    lone-copy: { of: lone, port: 5802 }
";

/// A program on `port` that asks for the password in cleartext (as a fake server would) and
/// records whether anybody connected and what it sent.
fn stranger(port: u16) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the topology's port");
    listener.set_nonblocking(true).unwrap();
    let contacted = Arc::new(AtomicBool::new(false));
    let flag = contacted.clone();
    let served = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut received = Vec::new();
        while std::time::Instant::now() < deadline && !flag.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut socket, _)) => {
                    flag.store(true, Ordering::SeqCst);
                    socket.set_nonblocking(false).unwrap();
                    socket
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let mut buf = [0u8; 1024];
                    let n = socket.read(&mut buf).unwrap_or(0);
                    received.extend_from_slice(&buf[..n]);
                    // AuthenticationCleartextPassword.
                    let _ = std::io::Write::write_all(&mut socket, &[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
                    let n = socket.read(&mut buf).unwrap_or(0);
                    received.extend_from_slice(&buf[..n]);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        received
    });
    (contacted, served)
}

/// A program holding a topology's port, with no container of the environment behind it,
/// gets no connection (let alone a password), and the plan reports the port as taken.
#[tokio::test(flavor = "multi_thread")]
async fn plan_sends_nothing_to_a_program_on_a_port_no_container_of_the_environment_publishes() {
    let env = TestEnv::from_yaml("stranger", LONE_AND_COPY);
    // The environment's passwords exist (as after an earlier apply), so a careless plan would
    // log in wherever the topology points.
    let secrets = dbtopo::secrets::load_or_create(&env.name).expect("secrets");
    let port = env.port("lone");
    let (contacted, served) = stranger(port);
    let error = plan_error(&env, true).await;
    // Nor does a command that uses a running environment: verify asks the replica's upstream.
    let verified = dbtopo::app::verify_command(&env.file).await;
    assert!(
        !verified.is_ok_and(|ok| ok),
        "verify cannot pass with no server"
    );
    let was_contacted = contacted.load(Ordering::SeqCst);
    // Stop the stranger and read what it got.
    contacted.store(true, Ordering::SeqCst);
    let received = served.join().unwrap();
    assert!(
        !was_contacted,
        "plan connected to the stranger and sent {received:?}"
    );
    let password = secrets.superuser.as_bytes();
    assert!(!received.windows(password.len()).any(|w| w == password));
    assert!(
        error.contains(&format!(
            "lone needs 127.0.0.1:{port}, which another program holds"
        )),
        "{error}"
    );
}

/// Objects made here without dbtopo's label, removed when the test ends, failed or not.
struct Strangers {
    containers: Vec<String>,
    volumes: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Strangers {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        let volumes = std::mem::take(&mut self.volumes);
        let networks = std::mem::take(&mut self.networks);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let docker = common::docker().await;
                for name in containers {
                    let options =
                        bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                            .force(true)
                            .build();
                    let _ = docker.remove_container(&name, Some(options)).await;
                }
                for name in volumes {
                    let _ = docker
                        .remove_volume(
                            &name,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        )
                        .await;
                }
                for name in networks {
                    let _ = docker.remove_network(&name).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The plan's error for `env`, with its stored passwords when `with_secrets`.
async fn plan_error(env: &TestEnv, with_secrets: bool) -> String {
    let docker = common::docker().await;
    let topology = dbtopo::topology::load(&env.file)
        .unwrap()
        .with_profiles(&[]);
    let desired = dbtopo::app::desired(&topology).unwrap();
    let secrets = match with_secrets {
        true => dbtopo::secrets::load_existing(&env.name).unwrap(),
        false => None,
    };
    match dbtopo::app::plan_for(&docker, &desired, secrets.as_ref()).await {
        Ok(plan) => panic!("planned:\n{}", dbtopo::plan::render_text(&plan)),
        // As the command line shows it: the problems with their places in the file.
        Err(error) => {
            let mut shown = String::new();
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(200)
                .render_report(&mut shown, error.as_ref())
                .unwrap();
            shown
        }
    }
}

/// A container, a volume and a network that bear the environment's names but not its label
/// are a plan error naming each; apply touches none of them.
#[tokio::test(flavor = "multi_thread")]
async fn objects_that_take_the_environments_names_are_left_alone_and_reported() {
    let env = TestEnv::from_yaml("foreign", ONE_NODE);
    let docker = common::docker().await;
    dbtopo::images::ensure_image(&docker, "postgres:17", &|_| {})
        .await
        .expect("the postgres image");
    let container = env.container("lone");
    let volume = dbtopo::model::volume_name(&env.name, "lone");
    let network = dbtopo::model::network_name(&env.name);
    let _strangers = Strangers {
        containers: vec![container.clone()],
        volumes: vec![volume.clone()],
        networks: vec![network.clone()],
    };
    let body = bollard::models::ContainerCreateBody {
        image: Some("postgres:17".into()),
        entrypoint: Some(vec!["sleep".into(), "600".into()]),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&container)
        .build();
    let created = docker.create_container(Some(options), body).await.unwrap();
    docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(volume.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.clone(),
            ..Default::default()
        })
        .await
        .unwrap();

    let error = plan_error(&env, false).await;
    for name in [&container, &volume, &network] {
        assert!(
            error.contains(&format!("{name} was not made by dbtopo")),
            "{error}"
        );
    }
    let applied = env.apply().await;
    assert!(applied.is_err(), "apply went ahead");

    // Nothing was touched: the same container, still not running, and no dbtopo label
    // anywhere.
    let inspect = docker.inspect_container(&container, None).await.unwrap();
    assert_eq!(inspect.id.as_deref(), Some(created.id.as_str()));
    assert_eq!(inspect.state.and_then(|s| s.running), Some(false));
    let labels = docker.inspect_volume(&volume).await.unwrap().labels;
    assert!(!labels.contains_key(dbtopo::model::label::ENV));
    let networks = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .unwrap();
    assert_eq!(
        networks
            .iter()
            .filter(|n| n.name.as_deref() == Some(network.as_str()))
            .count(),
        1,
        "no second network of that name"
    );
}

const PRIMARY_AND_REPLICA: &str = "
name: voltrust
postgres:
  nodes:
    main: { port: 5811 }
  replicas:
    main-copy: { of: main, port: 5812 }
";

/// A primary whose container and volume were removed while its replica holds every row: the
/// plan says making it again loses data and where the data still is; apply refuses without
/// --allow-destructive and touches nothing; with it, one apply converges.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_primary_volume_is_not_replaced_by_an_empty_cluster_silently() {
    let env = TestEnv::from_yaml("volume", PRIMARY_AND_REPLICA);
    env.apply().await.expect("first apply");
    let main = env.connect("main").await;
    main.batch_execute(
        "CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept SELECT generate_series(1, 100);",
    )
    .await
    .unwrap();
    let copy = env.connect("main-copy").await;
    let mut rows = 0;
    for _ in 0..100 {
        rows = copy
            .query_one("SELECT count(*) FROM kept", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if rows == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows, 100, "the replica has every row");
    drop(main);

    // The primary's container and data volume are lost.
    let docker = common::docker().await;
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    docker
        .remove_container(&env.container("main"), Some(options))
        .await
        .unwrap();
    docker
        .remove_volume(
            &dbtopo::model::volume_name(&env.name, "main"),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();

    let plan = env.plan().await;
    let text = dbtopo::plan::render_text(&plan);
    let losses = plan.data_losses();
    assert!(
        losses.iter().any(|(address, why)| *address == "node.main"
            && why.contains("replica main-copy still holds its data (timeline")),
        "{text}"
    );
    assert!(
        losses
            .iter()
            .any(|(address, _)| *address == "node.main-copy"),
        "{text}"
    );

    let refused = env.apply().await.expect_err("apply refuses to lose data");
    assert!(
        format!("{refused:?}").contains("destroys data"),
        "{refused:?}"
    );
    assert!(
        docker
            .inspect_container(&env.container("main"), None)
            .await
            .is_err(),
        "no empty primary was made"
    );
    let rows: i64 = copy
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 100, "the replica still holds every row");
    drop(copy);

    // Accepted: one apply makes the new primary and copies the replica from it.
    env.apply_with(true)
        .await
        .expect("apply with --allow-destructive");
    env.assert_converged_and_streaming("main-copy").await;
}

/// Settings the server would refuse are a plan error, judged by the server's own
/// `pg_settings`, before anything restarts; the server stays up.
#[tokio::test(flavor = "multi_thread")]
async fn settings_the_server_would_refuse_are_a_plan_error() {
    const BAD: &str = "  settings: { shared_buffers: lots, max_connections: -5, work_mme: 4MB, wal_level: everything }\n  nodes:";
    let refused = |error: &str| {
        for expected in [
            "shared_buffers = \"lots\": expected a number",
            "max_connections = \"-5\" is outside what the server accepts",
            "work_mme is not a setting of this server; did you mean `work_mem`?",
            "wal_level = \"everything\": expected one of minimal, replica, logical",
        ] {
            assert!(error.contains(expected), "{expected}\n{error}");
        }
    };
    let env = TestEnv::from_yaml("settings", ONE_NODE);
    let docker = common::docker().await;

    // Before any server of the environment exists, the catalogue dbtopo carries for the
    // image's PostgreSQL judges the values; apply makes nothing.
    env.rewrite(|yaml| yaml.replace("  nodes:", BAD));
    let error = plan_error(&env, false).await;
    refused(&error);
    // Each refused value is shown where the topology writes it.
    assert!(
        error.contains("settings: { shared_buffers: lots,")
            && error.contains("the servers refuse this value"),
        "{error}"
    );
    assert!(env.apply().await.is_err());
    let made = dbtopo::observe::docker::inventory(&docker, &env.name)
        .await
        .unwrap();
    assert!(
        made.containers.is_empty() && made.volumes.is_empty() && made.networks.is_empty(),
        "{made:?}"
    );

    env.rewrite(|yaml| yaml.replace(BAD, "  nodes:"));
    env.apply().await.expect("first apply");

    // That catalogue is what the image's server itself lists.
    let client = env.connect("lone").await;
    let catalogue = dbtopo::plan::settings::builtin_catalogue("postgres:17").expect("carried");
    let rows = client
        .query(
            "SELECT lower(name), vartype, unit, min_val, max_val, enumvals, context FROM pg_settings",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), catalogue.len(), "the number of settings");
    for row in rows {
        let name: String = row.get(0);
        let carried = catalogue
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is not in the catalogue"));
        let accepts = carried.accepts.as_ref().unwrap();
        assert_eq!(
            (
                row.get::<_, String>(1),
                row.get::<_, Option<String>>(2),
                row.get::<_, Option<String>>(3),
                row.get::<_, Option<String>>(4),
                row.get::<_, Option<Vec<String>>>(5).unwrap_or_default(),
                row.get::<_, String>(6),
            ),
            (
                accepts.vartype.clone(),
                carried.unit.clone(),
                accepts.min.clone(),
                accepts.max.clone(),
                accepts.enumvals.clone(),
                carried.context.clone(),
            ),
            "{name}"
        );
    }

    // With a server running, its own pg_settings judge them.
    env.rewrite(|yaml| yaml.replace("  nodes:", BAD));
    refused(&plan_error(&env, true).await);
    env.rewrite(|yaml| {
        yaml.replace(
            "{ shared_buffers: lots, max_connections: -5, work_mme: 4MB, wal_level: everything }",
            "{ shared_buffers: 1000TB }",
        )
    });
    let error = plan_error(&env, true).await;
    assert!(error.contains("shared_buffers = \"1000TB\""), "{error}");
    assert!(env.apply().await.is_err());
    // Nothing was touched: the server answers as before.
    let client = env.connect("lone").await;
    let value: String = client
        .query_one("SHOW shared_buffers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, "128MB");
}
