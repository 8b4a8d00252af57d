//! Schema diff cases in the style of sqldef (`tests/schema_cases/*.yaml`: current schema,
//! desired schema, expected DDL), each run through dbtopo against a real PostgreSQL 17: the
//! current manifest is applied into a database of its own, the desired manifest's plan must
//! show exactly the expected SQL, apply must run it (refusing destructive cases without
//! --allow-destructive), and the plan afterwards must be empty.

mod common;

use std::path::Path;

use common::TestEnv;
use dbtopo::plan::{Operation, Plan};
use serde::Deserialize;

const ONE_NODE: &str = "
name: cases
postgres:
  nodes:
    node: { port: 5601 }
";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    current: String,
    desired: String,
    expected: String,
    #[serde(default)]
    destructive: bool,
}

fn cases() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the cases folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let case = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("case {name} does not parse: {e}"));
            (name, case)
        })
        .collect()
}

/// The SQL of every schema step of the plan, one statement after the other.
fn schema_sql(plan: &Plan) -> String {
    plan.changes
        .iter()
        .filter_map(|change| match &change.operation {
            Operation::ApplySchema { steps, .. } => Some(steps),
            _ => None,
        })
        .flatten()
        .map(|step| format!("{}\n", step.sql))
        .collect()
}

fn with_schema(database: &str) -> String {
    format!("{ONE_NODE}  schema:\n    file: manifest.sql\n    database: {database}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_case_plans_its_expected_ddl_applies_it_and_converges() {
    let cases = cases();
    assert!(cases.len() >= 13, "the case files are missing");
    let env = TestEnv::from_yaml("cases", ONE_NODE);
    env.apply().await.expect("apply the server");

    for (name, case) in cases {
        let database = format!("case_{}", name.replace(|c: char| !c.is_alphanumeric(), "_"));
        let text =
            with_schema(&database).replace("port: 5601", &format!("port: {}", env.port("node")));
        let text = text.replace("name: cases", &format!("name: {}", env.name));
        env.write_file("topology.yaml", &text);

        env.write_file("manifest.sql", &case.current);
        env.apply()
            .await
            .unwrap_or_else(|e| panic!("{name}: applying the current schema: {e:?}"));

        env.write_file("manifest.sql", &case.desired);
        let plan = env.plan().await;
        assert_eq!(
            schema_sql(&plan),
            case.expected,
            "{name}: the planned DDL differs\n{}",
            dbtopo::plan::render_text(&plan)
        );
        assert_eq!(
            !plan.destructive_steps().is_empty(),
            case.destructive,
            "{name}: destructive or not\n{}",
            dbtopo::plan::render_text(&plan)
        );
        if case.destructive {
            let refused = env.apply().await.expect_err("destructive without the flag");
            assert!(
                format!("{refused:?}").contains("destroys data"),
                "{name}: {refused:?}"
            );
            assert_eq!(
                schema_sql(&env.plan().await),
                case.expected,
                "{name}: a refused apply changed something"
            );
        }
        env.apply_with(case.destructive)
            .await
            .unwrap_or_else(|e| panic!("{name}: applying the desired schema: {e:?}"));
        let after = env.plan().await;
        assert!(
            after.is_empty(),
            "{name}: not converged\n{}",
            dbtopo::plan::render_text(&after)
        );
    }
}
