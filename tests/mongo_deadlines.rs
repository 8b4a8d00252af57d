//! Every call dbtopo makes to MongoDB has a deadline, and the error that meets it names the
//! replica set, MongoDB and the port. Docker-free: the members here are a socket on loopback
//! that accepts connections and never answers, and the mongod TEST DOUBLE of
//! `tests/mongo_double/` told to go silent on one command ([`Options::silent_on`]), through
//! the real `mongodb` driver. None of this is a real-server result.

#[path = "mongo_double/mod.rs"]
mod mongo_double;

use std::future::Future;
use std::time::{Duration, Instant};

use dbtopo::mongo::client::{self, Deadlines, Member, MongoError, Target};
use dbtopo::mongo::diff::MongoStep;
use dbtopo::observed::SetObservation;
use mongo_double::{MongoDouble, Options};
use tokio::net::TcpListener;

const PASSWORD: &str = "s3cret-for-the-double";

/// Short, so that the tests are quick.
const DEADLINES: Deadlines = Deadlines {
    connect: Duration::from_secs(1),
    command: Duration::from_secs(1),
};

/// How late after its deadline a call may fail: scheduling on a busy machine, not waiting.
const SLACK: Duration = Duration::from_secs(3);

/// A port on loopback that accepts every connection and never sends a byte.
async fn never_answers() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// A double with access control, its set initiated and dbtopo's user made, that never
/// answers `silent_on`.
async fn double_silent_on(command: &str) -> MongoDouble {
    let double = MongoDouble::start(Options {
        access_control: true,
        silent_on: vec![command.to_owned()],
        ..Options::default()
    })
    .await;
    let bootstrap = connect(&double, None).await.expect("connect");
    let create_user = format!(
        r#"{{"createUser":"dbtopo","pwd":"{}","roles":[{{"role":"root","db":"admin"}}]}}"#,
        dbtopo::mongo::diff::ADMIN_PASSWORD_PLACEHOLDER
    );
    let initiate = format!(
        r#"{{"replSetInitiate":{{"_id":"rs0","members":[{{"_id":0,"host":"127.0.0.1:{}"}}]}}}}"#,
        double.port()
    );
    let steps = [
        MongoStep::Command {
            database: "admin".into(),
            command: initiate,
            accepted: Vec::new(),
        },
        MongoStep::WaitForPrimary,
        MongoStep::Command {
            database: "admin".into(),
            command: create_user,
            accepted: Vec::new(),
        },
    ];
    client::run(&bootstrap, &steps, PASSWORD)
        .await
        .expect("bootstrap");
    double
}

async fn connect(double: &MongoDouble, password: Option<&str>) -> Result<Member, MongoError> {
    client::connect_within(Target::set("rs0", double.port()), password, DEADLINES).await
}

/// Runs `call`, asserts that it failed by `limit` (plus slack) and returns its error text.
async fn fails_within<T, E: std::fmt::Display>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> String {
    let started = Instant::now();
    let outcome = tokio::time::timeout(limit + SLACK, call)
        .await
        .unwrap_or_else(|_| panic!("the call still waits {:?} after its deadline", SLACK));
    let elapsed = started.elapsed();
    let Err(error) = outcome else {
        panic!("the call succeeded")
    };
    assert!(
        elapsed >= limit.mul_f32(0.9),
        "failed after {elapsed:?}, before its deadline of {limit:?}: {error}"
    );
    error.to_string()
}

/// dbtopo's own words name the member (the driver's alone name only its address).
fn assert_names(error: &str, port: u16) {
    let member = format!("MongoDB replica set rs0 on 127.0.0.1:{port}");
    assert!(
        error.contains(&member),
        "`{member}` is missing from: {error}"
    );
    assert!(!error.contains(PASSWORD), "the password is shown: {error}");
}

#[tokio::test]
async fn a_member_that_accepts_and_never_answers_fails_the_connection_within_its_deadline() {
    let port = never_answers().await;
    let error = fails_within(
        DEADLINES.connect,
        client::connect_within(Target::set("rs0", port), Some(PASSWORD), DEADLINES),
    )
    .await;
    assert_names(&error, port);
}

/// Observation (plan, apply, seed's first step) uses the default deadlines: the set is
/// reported unknown after the connection deadline, with the reason, rather than waited on.
#[tokio::test]
async fn observing_a_member_that_never_answers_reports_it_unknown_within_the_connect_deadline() {
    let port = never_answers().await;
    let defaults = Deadlines::from_env().unwrap();
    let observed = fails_within(defaults.connect, async {
        match dbtopo::observe::mongo::set("rs0", port, PASSWORD, "shop").await {
            SetObservation::Unknown(why) => Err(why),
            other => Ok(other),
        }
    })
    .await;
    assert_names(&observed, port);
}

#[tokio::test]
async fn a_login_that_is_never_answered_fails_within_the_connect_deadline() {
    // The driver starts SCRAM inside its handshake (speculative authentication); the login's
    // next message is a saslContinue.
    let double = double_silent_on("saslContinue").await;
    let error = fails_within(DEADLINES.connect, connect(&double, Some(PASSWORD))).await;
    assert_names(&error, double.port());
    assert!(error.contains("login"), "{error}");
    assert!(
        double
            .command_log()
            .iter()
            .any(|c| c.name == "saslContinue"),
        "the handshake was answered and the login sent"
    );
}

#[tokio::test]
async fn a_read_that_is_never_answered_fails_within_the_command_deadline() {
    let double = double_silent_on("replSetGetConfig").await;
    let member = connect(&double, Some(PASSWORD)).await.expect("login");
    let error = fails_within(DEADLINES.command, client::set_state(&member)).await;
    assert_names(&error, double.port());
    assert!(error.contains("replSetGetConfig"), "{error}");

    let double = double_silent_on("listCollections").await;
    let member = connect(&double, Some(PASSWORD)).await.expect("login");
    let error = fails_within(DEADLINES.command, client::collections(&member, "shop")).await;
    assert_names(&error, double.port());
    assert!(error.contains("listCollections"), "{error}");
}

#[tokio::test]
async fn a_change_that_is_never_answered_fails_within_the_command_deadline() {
    let double = double_silent_on("create").await;
    let member = connect(&double, Some(PASSWORD)).await.expect("login");
    let steps = [MongoStep::Command {
        database: "shop".into(),
        command: r#"{"create":"reviews"}"#.into(),
        accepted: vec![48],
    }];
    let error = fails_within(DEADLINES.command, client::run(&member, &steps, PASSWORD)).await;
    assert_names(&error, double.port());
    assert!(error.contains("create"), "{error}");
}

#[tokio::test]
async fn a_seed_insert_that_is_never_answered_fails_within_the_command_deadline() {
    let double = double_silent_on("insert").await;
    let member = connect(&double, Some(PASSWORD)).await.expect("login");
    let error = fails_within(
        DEADLINES.command,
        dbtopo::mongo::seed::seed(&member, "shop", 1),
    )
    .await;
    assert_names(&error, double.port());
    assert!(error.contains("insert"), "{error}");
}
