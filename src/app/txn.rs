//! `dbtopo txn`: run a script whose parts name their nodes as one distributed transaction,
//! committed with two-phase commit on every node it touches or on none.

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use super::environment::{connect_node, existing_environment};

/// Run a script spanning nodes as one distributed transaction (two-phase commit).
pub async fn txn(args: &crate::cli::TxnArgs) -> Result<()> {
    let (desired, secrets) = existing_environment(&args.file.file, &args.file.profiles).await?;
    let script = std::fs::read_to_string(&args.sql)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", args.sql.display()))?;
    let parts = crate::txn::split_script(&script)
        .map_err(|why| miette!("{}: {why}", args.sql.display()))?;
    let Some(schema) = &desired.schema else {
        return Err(miette!(
            help = "add `postgres.schema` to the topology",
            "{} declares no database to run the script in",
            args.file.file.display()
        ));
    };
    let database = &schema.target.database;
    let coordinator_node = schema
        .fragments
        .as_ref()
        .map_or_else(|| schema.target.nodes[0].clone(), |f| f.coordinator.clone());
    let connect = |node: String| {
        let secrets = &secrets;
        let desired = &desired;
        async move {
            let Some(port) = desired
                .state
                .servers
                .get(&node)
                .and_then(|s| s.container.as_ref())
                .map(|c| c.host_port)
            else {
                return Err(miette!(
                    "the script names node {node}, which the topology does not have"
                ));
            };
            connect_node(port, secrets, database, &node).await
        }
    };
    let coordinator = connect(coordinator_node.clone()).await?;
    crate::txn::ensure_decisions(&coordinator).await?;
    let mut clients: Vec<(String, tokio_postgres::Client)> = Vec::new();
    for (node, _) in &parts {
        if !clients.iter().any(|(n, _)| n == node) {
            clients.push((node.clone(), connect(node.clone()).await?));
        }
    }
    let participants = clients
        .iter()
        .map(|(node, client)| crate::txn::Participant {
            node: node.clone(),
            client,
        })
        .collect();
    let transaction = crate::txn::DistributedTransaction::begin(participants).await?;
    for (node, sql) in &parts {
        let client = transaction
            .client(node)
            .expect("every node of the script takes part");
        if let Err(e) = client.batch_execute(sql).await {
            let message = crate::pg::server_message(&e);
            transaction.rollback().await;
            return Err(miette!(
                help = "nothing was committed on any node",
                "node {node}: {message}"
            ));
        }
    }
    let id = transaction.id().to_owned();
    let nodes = parts
        .iter()
        .map(|(node, _)| node)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    transaction.commit(&coordinator).await?;
    println!("Committed on {nodes} node(s) (transaction {id}).");
    Ok(())
}
