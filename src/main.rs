use std::process::ExitCode;

use clap::Parser;
use dbtopo::app;
use dbtopo::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
