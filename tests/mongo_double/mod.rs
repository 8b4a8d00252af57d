//! A TEST DOUBLE of mongod: a fake MongoDB server speaking the wire protocol on
//! `127.0.0.1:<ephemeral port>`, which the real `mongodb` driver connects to.
//!
//! It exists because no real MongoDB server can be obtained on this project's machines (no
//! registry for its images, no Debian package), yet dbtopo's MongoDB reconciler must be
//! tested against something that answers as mongod does. It implements only the commands
//! dbtopo sends, with mongod 7.0's reply shapes, error codes and code names; the replica set
//! checks and their messages follow mongod's sources, other messages are mongod's as far as
//! known. Any other command gets CommandNotFound (59).
//!
//! One double is one mongod started with `--replSet <name>`, reached with
//! `directConnection=true`:
//! - Handshake and monitoring: OP_MSG `hello`/`isMaster` (the driver's handshake; it never
//!   sends OP_QUERY), and legacy OP_QUERY on `admin.$cmd` answered with OP_REPLY for older
//!   clients. Awaitable hellos (`topologyVersion` + `maxAwaitTimeMS`) wait for a topology
//!   change as mongod's do. No compression is advertised.
//! - Replica set: `replSetInitiate`, `replSetGetStatus`, `replSetGetConfig`,
//!   `replSetReconfig`. After initiation the member is secondary for
//!   [`Options::election_delay`], then primary. The other configured members are reported
//!   healthy (secondaries, or arbiters); they are not contacted.
//! - Users: `createUser`, `updateUser`, `dropUser`, `usersInfo`, and real SCRAM-SHA-256
//!   authentication (`saslStart`/`saslContinue`, speculative authentication in hello). With
//!   [`Options::access_control`] (mongod's `--keyFile`/`--auth`), unauthenticated connections
//!   get Unauthorized (13) except for hello-like commands and, until the first user exists,
//!   the localhost exception's `createUser` and `replSetInitiate`. Roles are stored and
//!   reported but not enforced: an authenticated user may run anything. SCRAM-SHA-1 and other
//!   mechanisms are not implemented.
//! - `ping`, `buildInfo` (version 7.0.14) and `endSessions`.
//! - Collections: `create`, `collMod`, `listCollections`, `drop`; validators are stored and
//!   reported, not enforced on writes.
//! - Indexes: `createIndexes`, `listIndexes`, `dropIndexes`, with mongod's conflict errors;
//!   unique indexes are enforced on inserts.
//! - Documents: `insert`, `find`, `update`, `delete`, with filters of equality and the
//!   comparison operators `$eq $ne $gt $gte $lt $lte $in $nin $exists` plus `$and`/`$or`;
//!   `find` sorts, skips, limits and projects top-level fields, and returns everything in one
//!   batch (cursor id 0). `update` knows `$set`, `$inc` and `$unset` on top-level and dotted
//!   paths, one document or `multi`, with `n`/`nModified`, `writeErrors` and unique indexes
//!   checked on the result. Other operators are refused with BadValue rather than answered
//!   wrongly.
//! - Not done: `aggregate` (CommandNotFound), `getMore` (no cursor outlives its first
//!   batch), upserts, replacement and pipeline updates, `arrayFilters` and positional paths,
//!   projections of dotted paths or expressions, validators on writes, collation.
//!
//! As a fault, [`Options::silent_on`] names commands the double receives and never answers,
//! holding the connection open, as a paused mongod does.
//!
//! Tests read the state with [`MongoDouble::snapshot`] and the commands received with
//! [`MongoDouble::command_log`].

// Each test target uses a different part of the double.
#![allow(dead_code)]

mod auth;
mod collections;
mod commands;
mod indexes;
mod matcher;
mod replset;
mod scram;
mod state;
mod updates;
mod users;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

// What other test targets may name; this one does not use every item.
#[allow(unused_imports)]
pub use state::{Collection, LoggedCommand, MemberState, Snapshot, User, WRITE_COMMANDS};

/// How the double behaves, as mongod's command line would set it.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--replSet`: the name `replSetInitiate` must be given.
    pub replica_set_name: String,
    /// How long after `replSetInitiate` the member stays secondary before it is primary, so
    /// that "wait for a primary" can be tested.
    pub election_delay: Duration,
    /// `--auth`/`--keyFile`: once a user exists, unauthenticated commands are refused.
    pub access_control: bool,
    /// The host this member must find itself as in a config (mongod's "isSelf"). `None`: the
    /// first member of whatever config it is given.
    pub self_host: Option<String>,
    /// SCRAM iteration count for new users (mongod's `scramSHA256IterationCount`).
    pub scram_iterations: u32,
    /// Commands (by name, e.g. `saslStart`, `insert`) logged but never answered: the
    /// connection stays open and silent, so that clients' deadlines can be tested.
    pub silent_on: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replica_set_name: "rs0".to_string(),
            election_delay: Duration::ZERO,
            access_control: false,
            self_host: None,
            scram_iterations: scram::DEFAULT_ITERATIONS,
            silent_on: Vec::new(),
        }
    }
}

/// A running double. Dropping it stops the server and closes every connection.
pub struct MongoDouble {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    state: Mutex<state::State>,
    next_connection_id: AtomicI64,
    next_reply_id: AtomicI32,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panic while holding the lock is a bug in the double; the state is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MongoDouble {
    /// Starts listening on an ephemeral port of 127.0.0.1.
    pub async fn start(options: Options) -> MongoDouble {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port on 127.0.0.1");
        let address = listener.local_addr().expect("the listener's address");
        let shared = Arc::new(Shared {
            state: Mutex::new(state::State::new(options, address.to_string())),
            next_connection_id: AtomicI64::new(1),
            next_reply_id: AtomicI32::new(1),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        MongoDouble {
            address,
            shared,
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// A connection string for the driver: this one member, directly.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.address)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().snapshot()
    }

    /// Every command received so far, in order, including hellos and rejected commands.
    pub fn command_log(&self) -> Vec<LoggedCommand> {
        self.shared.lock().command_log.clone()
    }

    /// The state-changing commands received so far (see [`WRITE_COMMANDS`]).
    pub fn write_commands(&self) -> Vec<LoggedCommand> {
        self.command_log()
            .into_iter()
            .filter(LoggedCommand::is_write)
            .collect()
    }

    pub fn clear_command_log(&self) {
        self.shared.lock().command_log.clear();
    }
}

impl Drop for MongoDouble {
    fn drop(&mut self) {
        // The server task owns the connection tasks: aborting it drops them all.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
            }
            // Reap finished connections so the set does not grow with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed);
    let mut connection = auth::Connection::new(id);
    // A malformed message or an I/O error ends the connection, as with mongod.
    while let Ok(Some(request)) = wire::read_request(&mut stream).await {
        // Logged on receipt: an awaitable hello is in the log while it is held.
        let name = request.body.keys().next().cloned().unwrap_or_default();
        let silent = {
            let mut state = shared.lock();
            state.command_log.push(LoggedCommand {
                database: request.database.clone(),
                name: name.clone(),
            });
            state.options.silent_on.contains(&name)
        };
        if silent {
            // Until the client gives up and closes the connection, or the double stops.
            let mut byte = [0u8; 1];
            while matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await, Ok(n) if n > 0)
            {
            }
            return;
        }
        if let Some(awaited) = commands::awaited_topology_version(&request.body) {
            await_topology_change(&shared, awaited).await;
        }
        let reply = {
            let mut state = shared.lock();
            state.advance(Instant::now());
            commands::handle(&mut state, &mut connection, &request)
        };
        if request.expects_no_reply {
            continue;
        }
        let reply_id = shared.next_reply_id.fetch_add(1, Ordering::Relaxed);
        if wire::write_reply(&mut stream, &request, reply_id, &reply)
            .await
            .is_err()
        {
            break;
        }
    }
}

/// An awaitable hello: mongod answers at once if the client's topology version is stale,
/// else when the topology changes or `maxAwaitTimeMS` has passed.
async fn await_topology_change(shared: &Shared, awaited: commands::AwaitedTopology) {
    // A client's absurd maxAwaitTimeMS must not overflow the clock: wait a day at most.
    let max_await = awaited.max_await.min(Duration::from_secs(86_400));
    let deadline = Instant::now() + max_await;
    let mut changes = shared.lock().subscribe_topology_changes();
    loop {
        changes.borrow_and_update();
        let wake_at = {
            let mut state = shared.lock();
            state.advance(Instant::now());
            if state.process_id != awaited.process_id || state.topology_counter != awaited.counter {
                return;
            }
            state
                .pending_election()
                .map_or(deadline, |election| election.min(deadline))
        };
        if Instant::now() >= deadline {
            return;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
}
