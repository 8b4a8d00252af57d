//! `dbtopo tour` end to end, with no pauses, on a fragmented topology unlike the default
//! (other names, a list-fragmented coordinator and one node, a MongoDB set in a profile the
//! tour leaves out): every step works and says what
//! it shows, drift is shown by plan and repaired by apply, the recording is asciicast v2, and
//! the tour's environment is gone at the end.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

const TOPOLOGY: &str = "
name: NAME
postgres:
  settings: { wal_level: logical, max_prepared_transactions: 16 }
  nodes:
    hub: { port: 5851 }
    eu: { port: 5852 }
  schema: { file: manifests/ecommerce.sql, database: shop, nodes: [hub] }
  fragments:
    orders:
      horizontal: &by_region
        key: region
        by: list
        parts:
          - { node: eu, values: [EU] }
          - { node: hub, values: [US] }
    order_details: { horizontal: *by_region }
    transactions: { horizontal: *by_region }
    shipping: { horizontal: *by_region }
  reference_tables:
    categories: [eu]
    products: [eu]
mongo:
  replica_sets:
    rs9:
      profiles: [mongo]
      members: 1
      port: 27999
      database: shop
      collections: manifests/mongo
";

/// Removes whatever the tour's environment left, pass or fail.
struct TourCleanup {
    env: String,
    dir: std::path::PathBuf,
}

impl Drop for TourCleanup {
    fn drop(&mut self) {
        let env = self.env.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let docker = common::docker().await;
                if let Ok(inventory) = dbtopo::observe::docker::inventory(&docker, &env).await {
                    let _ = dbtopo::app::remove_all(&docker, &inventory).await;
                }
            });
            let _ = dbtopo::secrets::remove(&env);
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tour_runs_every_step_records_it_and_leaves_nothing() {
    let name = format!("ttour{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let _cleanup = TourCleanup {
        env: format!("{name}-tour"),
        dir: dir.clone(),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("manifests/queries")).unwrap();
    std::fs::copy(
        root.join("manifests/ecommerce.sql"),
        dir.join("manifests/ecommerce.sql"),
    )
    .unwrap();
    // The queries, and the collections of a replica set in a profile the tour does not
    // show, which the topology names all the same.
    for folder in ["manifests/queries", "manifests/mongo"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.join(folder).join(entry.file_name())).unwrap();
            }
        }
    }
    let file = dir.join("topology.yaml");
    std::fs::write(&file, TOPOLOGY.replace("NAME", &name)).unwrap();
    let cast = dir.join("tour.cast");

    let output = Command::new(env!("CARGO_BIN_EXE_dbtopo"))
        .arg("tour")
        .arg(&file)
        .args(["--pace", "0", "--record"])
        .arg(&cast)
        .env_remove("DBTOPO_PROFILES")
        .stdin(Stdio::null())
        .output()
        .expect("run the tour");
    let text = common::text(&output);
    assert!(output.status.success(), "{text}");
    for shown in [
        "=== 1. Plan and apply ===",
        "=== 2. The schema and its ER diagram ===",
        "=== 3. Seeding ===",
        "=== 4. Where everything lives ===",
        "=== 5. Queries over the fragments ===",
        "=== 6. Distributed transactions ===",
        "=== 7. Drift, shown and repaired ===",
        "=== 8. A fragment moved to another node ===",
        "=== 9. MongoDB (skipped) ===",
        "not active: `dbtopo tour --profile mongo`",
        "=== 10. Destroy ===",
        "look at:",
        "erDiagram",
        "Every step of the tour worked.",
    ] {
        assert!(text.contains(shown), "the tour shows no {shown:?}:\n{text}");
    }
    // Drift: after the node was stopped and a setting changed by hand, plan shows the node
    // to start and the setting; the plan after apply is empty.
    let drift = &text[text.find("=== 7.").unwrap()..text.find("=== 8.").unwrap()];
    let after_stop = &drift[drift.find("$ docker stop").unwrap()..];
    assert!(after_stop.contains("node.eu"), "{drift}");
    assert!(after_stop.contains("work_mem"), "{drift}");
    assert!(
        drift
            .trim_end_matches("\x1b[1m")
            .trim_end()
            .ends_with("matches the topology."),
        "{drift}"
    );

    // The move: the EU part of the four co-located tables goes from eu to the coordinator;
    // the plan names the movement, the counts before and after are the same and not empty,
    // and the plan after the apply is empty.
    let moved = &text[text.find("=== 8.").unwrap()..text.find("=== 9.").unwrap()];
    assert!(
        moved.contains("order_details, orders, shipping, transactions goes from eu to hub"),
        "{moved}"
    );
    assert!(
        moved.contains("moved_part") || moved.contains("moves"),
        "{moved}"
    );
    assert!(moved.contains("(the same row counts as before)"), "{moved}");
    let orders_count = moved
        .lines()
        .find_map(|l| l.strip_prefix("orders|"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no count of orders:\n{moved}"));
    assert!(orders_count > 0, "{moved}");
    assert!(
        moved
            .trim_end_matches("\x1b[1m")
            .trim_end()
            .ends_with("matches the topology."),
        "{moved}"
    );

    // The recording: an asciicast v2 header, then output events that hold the tour.
    let recording = std::fs::read_to_string(&cast).unwrap();
    let mut lines = recording.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let mut played = String::new();
    let mut last = 0.0;
    for line in lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let time = event[0].as_f64().unwrap();
        assert!(time >= last, "events go forward in time");
        last = time;
        assert_eq!(event[1], "o");
        played.push_str(event[2].as_str().unwrap());
    }
    assert!(played.contains("=== 10. Destroy ==="));
    assert!(played.contains("Every step of the tour worked."));

    // Nothing of the tour's environment is left.
    let docker = common::docker().await;
    let inventory = dbtopo::observe::docker::inventory(&docker, &format!("{name}-tour"))
        .await
        .unwrap();
    assert!(
        inventory.containers.is_empty() && inventory.volumes.is_empty(),
        "{inventory:?}"
    );
}
