//! Two-phase commit across two real servers started by dbtopo: a script spanning both nodes
//! commits on both, a failure on one rolls both back, and transactions left prepared by a
//! coordinator that stopped are finished by the next apply from the decision record.

mod common;

use common::TestEnv;
use dbtopo::cli::{FileArg, TxnArgs};
use tokio_postgres::Client;

const TOPOLOGY: &str = "
name: txn
postgres:
  settings: { max_prepared_transactions: 8 }
  nodes:
    primary: { port: 5911 }
    shard: { port: 5912 }
  schema: { file: tests/fixtures/accounts.sql, database: bank, nodes: [primary, shard] }
";

async fn balance(client: &Client, id: i32) -> Option<i32> {
    client
        .query_opt("SELECT balance FROM accounts WHERE id = $1", &[&id])
        .await
        .unwrap()
        .map(|row| row.get(0))
}

async fn prepared(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM pg_prepared_xacts", &[])
        .await
        .unwrap()
        .get(0)
}

async fn run_script(env: &TestEnv, script: &str) -> miette::Result<()> {
    let path = env.file.with_file_name("script.sql");
    std::fs::write(&path, script).unwrap();
    dbtopo::app::txn(&TxnArgs {
        file: FileArg {
            file: env.file.clone(),
            profiles: Vec::new(),
        },
        sql: path,
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn work_on_two_nodes_commits_on_both_or_neither_and_in_doubt_work_is_finished() {
    let env = TestEnv::from_yaml("txn", TOPOLOGY);
    env.apply().await.expect("apply");
    let primary = env.connect_to("primary", "bank").await;
    let shard = env.connect_to("shard", "bank").await;

    // Commit: both rows, nothing left prepared, no decision kept.
    run_script(
        &env,
        "-- node: primary\nINSERT INTO accounts VALUES (1, 100);\n-- node: shard\nINSERT INTO accounts VALUES (2, 50);\n",
    )
    .await
    .expect("commit on both nodes");
    assert_eq!(balance(&primary, 1).await, Some(100));
    assert_eq!(balance(&shard, 2).await, Some(50));
    assert_eq!(prepared(&primary).await + prepared(&shard).await, 0);
    let decisions: i64 = primary
        .query_one("SELECT count(*) FROM dbtopo.txn_decisions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(decisions, 0);

    // Rollback: the shard refuses (its CHECK), so the primary's part is undone too.
    let refused = run_script(
        &env,
        "-- node: primary\nUPDATE accounts SET balance = balance - 80 WHERE id = 1;\n-- node: shard\nUPDATE accounts SET balance = balance - 80 WHERE id = 2;\n",
    )
    .await
    .expect_err("the shard's balance would go negative");
    assert!(format!("{refused:?}").contains("nothing was committed"));
    assert_eq!(balance(&primary, 1).await, Some(100));
    assert_eq!(balance(&shard, 2).await, Some(50));
    assert_eq!(prepared(&primary).await + prepared(&shard).await, 0);

    // A coordinator that stopped after recording "commit" for t1, and after recording
    // "rollback" for t2: its prepared transactions wait on both nodes.
    for (client, node, id, value) in [
        (&primary, "primary", "t1", 3),
        (&shard, "shard", "t1", 4),
        (&shard, "shard", "t2", 5),
    ] {
        client
            .batch_execute(&format!(
                "BEGIN; INSERT INTO accounts VALUES ({value}, 1); PREPARE TRANSACTION 'dbtopo:{id}:{node}';"
            ))
            .await
            .unwrap();
    }
    primary
        .batch_execute(
            "INSERT INTO dbtopo.txn_decisions (gid, outcome) VALUES ('t1', 'commit'), ('t2', 'rollback')",
        )
        .await
        .unwrap();
    // A third, just prepared and undecided: its coordinator may still be at work.
    shard
        .batch_execute(
            "BEGIN; INSERT INTO accounts VALUES (6, 1); PREPARE TRANSACTION 'dbtopo:t3:shard';",
        )
        .await
        .unwrap();

    // A manifest change meanwhile: the shard's part waits for t3, which holds locks on the
    // table, rather than blocking behind it.
    let manifest = std::fs::read_to_string("tests/fixtures/accounts.sql").unwrap();
    env.write_file(
        "tests/fixtures/accounts.sql",
        &manifest.replace(
            "balance integer NOT NULL CHECK (balance >= 0)",
            "balance integer NOT NULL CHECK (balance >= 0),\n    note    text",
        ),
    );

    let plan = env.plan().await;
    let held = plan
        .notices
        .iter()
        .any(|n| n.contains("schema change of node shard is held back"));
    assert!(held, "{:?}", plan.notices);
    let mut actions = common::actions(&plan);
    assert!(
        actions.contains(&("schema.primary".to_owned(), dbtopo::plan::Action::Update)),
        "{actions:?}"
    );
    actions.retain(|(a, _)| a != "schema.primary");
    assert_eq!(
        actions,
        [
            (
                "prepared_xact.primary.dbtopo:t1:primary".to_owned(),
                dbtopo::plan::Action::Update
            ),
            (
                "prepared_xact.shard.dbtopo:t1:shard".to_owned(),
                dbtopo::plan::Action::Update
            ),
            (
                "prepared_xact.shard.dbtopo:t2:shard".to_owned(),
                dbtopo::plan::Action::Delete
            ),
            ("txn_decision.t1".to_owned(), dbtopo::plan::Action::Delete),
            ("txn_decision.t2".to_owned(), dbtopo::plan::Action::Delete),
        ],
        "{}",
        dbtopo::plan::render_text(&plan)
    );
    assert!(
        plan.notices.iter().any(|w| w.contains("dbtopo:t3:shard")),
        "{:?}",
        plan.notices
    );
    env.apply().await.expect("finish the in-doubt transactions");
    assert_eq!(balance(&primary, 3).await, Some(1));
    assert_eq!(balance(&shard, 4).await, Some(1));
    assert_eq!(balance(&shard, 5).await, None, "t2 was rolled back");
    assert_eq!(prepared(&primary).await, 0);
    assert_eq!(prepared(&shard).await, 1, "t3 is left alone");
    let records: i64 = primary
        .query_one("SELECT count(*) FROM dbtopo.txn_decisions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        records, 0,
        "the finished transactions' decisions are removed"
    );
    shard
        .batch_execute("ROLLBACK PREPARED 'dbtopo:t3:shard'")
        .await
        .unwrap();
    // Nothing holds the table any more: the shard's schema change comes through.
    let after = env.plan().await;
    assert_eq!(
        common::actions(&after),
        [("schema.shard".to_owned(), dbtopo::plan::Action::Update)]
    );
    env.apply().await.expect("the held-back change");
    assert!(env.plan().await.is_empty());

    // The library itself stops between PREPARE and COMMIT (its connections dropped, as when
    // the process is killed): prepared on both nodes, the commit recorded. The next apply
    // commits both.
    {
        let on_primary = env.connect_to("primary", "bank").await;
        let on_shard = env.connect_to("shard", "bank").await;
        let decisions = env.connect_to("primary", "bank").await;
        let transaction = dbtopo::txn::DistributedTransaction::begin(vec![
            dbtopo::txn::Participant {
                node: "primary".into(),
                client: &on_primary,
            },
            dbtopo::txn::Participant {
                node: "shard".into(),
                client: &on_shard,
            },
        ])
        .await
        .unwrap();
        on_primary
            .batch_execute("UPDATE accounts SET balance = balance - 30 WHERE id = 1")
            .await
            .unwrap();
        on_shard
            .batch_execute("UPDATE accounts SET balance = balance + 30 WHERE id = 2")
            .await
            .unwrap();
        let decided = transaction.prepare(&decisions).await.expect("prepared");
        drop(decided);
    }
    assert_eq!(balance(&primary, 1).await, Some(100), "not committed yet");
    assert_eq!(prepared(&primary).await + prepared(&shard).await, 2);
    let recovery = env.plan().await;
    assert_eq!(
        common::actions(&recovery)
            .iter()
            .map(|(_, action)| *action)
            .collect::<Vec<_>>(),
        [
            dbtopo::plan::Action::Update,
            dbtopo::plan::Action::Update,
            dbtopo::plan::Action::Delete
        ],
        "{}",
        dbtopo::plan::render_text(&recovery)
    );
    env.apply().await.expect("recover");
    assert_eq!(balance(&primary, 1).await, Some(70));
    assert_eq!(balance(&shard, 2).await, Some(80));
    assert_eq!(prepared(&primary).await + prepared(&shard).await, 0);
}
