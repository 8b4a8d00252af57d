//! `dbtopo status`, `dbtopo psql` and `dbtopo env` against a real environment (a node with a
//! streaming replica, names and ports unlike the default topology's): what they print, that
//! the password is in none of it, and that psql reaches the node with the host's psql and,
//! where there is none, with the container's. Apply leaves every table analyzed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use common::TestEnv;

const PAIR: &str = "
name: conn
postgres:
  nodes:
    books: { port: 5941 }
  replicas:
    books-copy: { of: books, port: 5942 }
  schema: { file: manifests/ecommerce.sql, database: library }
";

fn dbtopo(args: &[&str], path: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dbtopo"));
    command
        .args(args)
        .env_remove("DBTOPO_PROFILES")
        .stdin(Stdio::null());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().expect("run dbtopo")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_psql_and_env_show_and_reach_the_servers_without_showing_the_password() {
    let env = TestEnv::from_yaml("conn", PAIR);
    env.apply().await.expect("apply");
    let file = env.file.to_str().unwrap();
    let password = dbtopo::secrets::load_existing(&env.name)
        .unwrap()
        .unwrap()
        .superuser;
    let port = env.port("books");

    // Apply left the planner's statistics current: every table was analyzed.
    let unanalyzed: i64 = env
        .connect_to("books", "library")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unanalyzed, 0, "tables apply left without statistics");

    let status = dbtopo(&["status", file], None);
    let text = common::text(&status);
    assert!(status.status.success(), "{text}");
    for shown in [
        "books",
        "books-copy",
        "replica of books",
        "running",
        "streaming",
        &format!("postgresql://postgres@127.0.0.1:{port}/library"),
    ] {
        assert!(text.contains(shown), "status shows no {shown:?}:\n{text}");
    }
    assert!(!text.contains(&password), "status shows the password");

    let json = dbtopo(&["status", file, "--json"], None);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(parsed["format_version"], 1);
    let servers = parsed["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    let copy = servers.iter().find(|s| s["name"] == "books-copy").unwrap();
    assert_eq!(copy["health"], "streaming");
    assert!(copy["lag_bytes"].is_u64(), "{copy}");

    // The host's psql (this machine has one), then the container's (PATH without it).
    for path in [None, Some("/usr/local/bin")] {
        let psql = dbtopo(
            &["psql", "books", file, "--", "-At", "-c", "SELECT 40 + 2"],
            path,
        );
        let text = common::text(&psql);
        assert!(psql.status.success(), "{path:?}: {text}");
        assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "42", "{text}");
        assert!(!text.contains(&password));
        assert_eq!(
            text.contains("using the one in container"),
            path.is_some(),
            "{text}"
        );
    }
    // psql's own exit code comes back.
    let failing = dbtopo(&["psql", "books", file, "--", "-c", "SELECT nope"], None);
    assert_eq!(failing.status.code(), Some(1), "{}", common::text(&failing));

    let exports = dbtopo(&["env", "books-copy", file], None);
    let text = common::text(&exports);
    assert!(exports.status.success(), "{text}");
    assert!(!text.contains(&password));
    let vars: Vec<(String, String)> = String::from_utf8_lossy(&exports.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect();
    let var = |name: &str| {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(var("PGPORT"), env.port("books-copy").to_string());
    assert_eq!(var("PGDATABASE"), "library");
    let passfile = var("PGPASSFILE");
    let mode = std::fs::metadata(&passfile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{passfile}");
    // A client with nothing but those variables reaches the replica.
    let psql = Command::new("psql")
        .args(["-At", "-c", "SELECT pg_is_in_recovery()"])
        .envs(vars.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .env_remove("PGPASSWORD")
        .output()
        .expect("run psql");
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "t",
        "{}",
        common::text(&psql)
    );

    // A stopped node is said to be stopped; nothing is started behind the user's back.
    let docker = common::docker().await;
    docker
        .stop_container(
            &env.container("books-copy"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    let stopped = dbtopo(&["psql", "books-copy", file, "--", "-c", "SELECT 1"], None);
    let text = common::text(&stopped);
    assert!(
        !stopped.status.success() && text.contains("is not running"),
        "{text}"
    );
    let unknown = dbtopo(&["psql", "bookz", file], None);
    assert!(common::text(&unknown).contains("books, books-copy"));
}
