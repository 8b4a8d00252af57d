//! Mutation fuzzing of the loaders: the topology (YAML, with its validation), the SQL manifest
//! parser and the MongoDB collection manifests. Each round takes a seed from the corpus (the
//! project's own files and `tests/fuzz_corpus/`), damages it (bytes flipped, inserted,
//! deleted, spans duplicated, YAML and SQL tokens spliced in) and loads it; a panic is a
//! failure, saved into `tests/fuzz_corpus/` so it stays a regression case. No Docker.
//!
//! `cargo test --release --test fuzz_loaders` fuzzes for `DBTOPO_FUZZ_SECONDS` (default 5);
//! `DBTOPO_FUZZ_SECONDS=600 cargo test --release --test fuzz_loaders` is the ten-minute run.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOKENS: [&str; 28] = [
    ":",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "\t",
    "é",
    "- ",
    "&a",
    "*a",
    "\n ",
    "\n",
    "#",
    "!!str ",
    "---\n",
    "~",
    "0x",
    "-1",
    "99999999999999999999",
    "(",
    ")",
    ";",
    ",",
    "CREATE TABLE ",
    "CHECK (",
    "REFERENCES ",
];

#[derive(Clone, Copy, Debug)]
enum Loader {
    Topology,
    Sql,
    Collection,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seeds() -> Vec<(Loader, String)> {
    let mut seeds = Vec::new();
    let mut add = |loader, path: &Path| {
        if let Ok(text) = std::fs::read_to_string(path) {
            seeds.push((loader, text));
        }
    };
    add(Loader::Topology, &root().join("topology.yaml"));
    for dir in ["manifests", "tests/fixtures"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "sql") {
                add(Loader::Sql, &entry.path());
            }
        }
    }
    for entry in std::fs::read_dir(root().join("manifests/mongo"))
        .unwrap()
        .flatten()
    {
        add(Loader::Collection, &entry.path());
    }
    for entry in std::fs::read_dir(root().join("tests/fuzz_corpus"))
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let loader = match name.split('-').next() {
            Some("topology") => Loader::Topology,
            Some("sql") => Loader::Sql,
            Some("collection") => Loader::Collection,
            _ => continue,
        };
        add(loader, &entry.path());
    }
    seeds
}

fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..5) {
            0 if at < bytes.len() => bytes[at] = rng.random(),
            1 if at < bytes.len() => {
                let end = (at + rng.random_range(1..16)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            3 if at < bytes.len() => {
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                let span = bytes[at..end].to_vec();
                let to = rng.random_range(0..=bytes.len());
                bytes.splice(to..to, span);
            }
            _ => bytes.insert(at.min(bytes.len()), b' '),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn load(loader: Loader, text: &str) {
    match loader {
        Loader::Topology => {
            let _ = dbtopo::topology::load_str("fuzz.yaml", text);
        }
        Loader::Sql => {
            let _ = dbtopo::schema::parse_manifest("fuzz.sql", text);
        }
        Loader::Collection => {
            let _ = dbtopo::mongo::manifest::parse_collection("fuzz.yaml", "fuzz", text);
        }
    }
}

#[test]
fn the_loaders_never_panic_on_damaged_input() {
    let seconds: u64 = std::env::var("DBTOPO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("DBTOPO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let seeds = seeds();
    assert!(seeds.len() >= 5, "the corpus: {} seeds", seeds.len());
    // Every saved case loads without a panic first.
    for (loader, text) in &seeds {
        load(*loader, text);
    }
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    let mut panics = Vec::new();
    while Instant::now() < deadline {
        let (loader, text) = &seeds[rng.random_range(0..seeds.len())];
        let damaged = mutate(&mut rng, text);
        runs += 1;
        if std::panic::catch_unwind(AssertUnwindSafe(|| load(*loader, &damaged))).is_err() {
            let kind = format!("{loader:?}").to_lowercase();
            let path = root().join(format!("tests/fuzz_corpus/{kind}-panic-{seed}-{runs}"));
            let _ = std::fs::write(&path, &damaged);
            panics.push(path.display().to_string());
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "fuzz: {runs} inputs in {seconds} s (seed {seed}), {} panics",
        panics.len()
    );
    assert!(panics.is_empty(), "panics, saved as: {panics:#?}");
}
