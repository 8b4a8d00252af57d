use std::process::ExitCode;

use clap::Parser;
use dbtopo::app;
use dbtopo::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    // Output piped into `head` ends quietly instead of panicking on a closed pipe.
    // SAFETY: restoring the default disposition of one signal before any thread uses stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let run = async {
        match cli.command {
            Command::Validate(args) => app::validate(&args.file).map(|_| ExitCode::SUCCESS),
            Command::Plan(args) => app::plan(&args).await.map(|changes| {
                if args.detailed_exitcode && changes {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                }
            }),
            Command::Apply(args) => app::apply(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Destroy(args) => app::destroy(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Erd(args) => app::erd(&args).map(|_| ExitCode::SUCCESS),
            Command::Seed(args) => app::seed(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Workload(args) => app::workload(&args).await.map(|ok| {
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }),
            Command::Explain(args) => app::explain(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Txn(args) => app::txn(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Tour(args) => app::tour(&args).await.map(|ok| {
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }),
            Command::Status(args) => app::status(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Psql(args) => app::psql(&args).await.map(ExitCode::from),
            Command::Mongosh(args) => app::mongosh(&args).await.map(ExitCode::from),
            Command::Env(args) => app::env_exports(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Mongo(args) => app::mongo(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Verify(args) => app::verify_command(&args.file).await.map(|ok| {
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }),
        }
    };
    // On Ctrl-C the command's future is dropped, which stops and cleans up an image build;
    // every step is idempotent, so the next apply continues where this one stopped.
    let result = tokio::select! {
        result = run => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: run the same command again to continue");
            return ExitCode::from(130);
        }
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
