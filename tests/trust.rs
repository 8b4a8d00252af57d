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

#[tokio::test(flavor = "multi_thread")]
async fn plan_sends_nothing_to_a_program_on_a_port_no_container_of_the_environment_publishes() {
    let env = TestEnv::from_yaml("stranger", ONE_NODE);
    // The environment's passwords exist (as after an earlier apply), so a careless plan would
    // log in wherever the topology points.
    let secrets = dbtopo::secrets::load_or_create(&env.name).expect("secrets");
    let (contacted, served) = stranger(env.port("lone"));
    let plan = env.plan().await;
    assert!(
        plan.changes.iter().any(|c| c.address == "node.lone"),
        "{}",
        dbtopo::plan::render_text(&plan)
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
}
