use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use dbtopo::app;
use dbtopo::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    // Output piped into `head` ends quietly instead of panicking on a closed pipe.
    // SAFETY: restoring the default disposition of one signal before any thread uses stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Exit codes as Terraform's: 0 done, 1 any error (a usage error included), 2 only for
    // the changes `plan --detailed-exitcode` reports.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.exit_code() {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            };
        }
    };
    if cli.no_color {
        app::disable_color();
    }
    let run = async {
        match cli.command {
            Command::Validate(args) if args.json => match app::validate_json(&args.file.file) {
                true => Ok(ExitCode::SUCCESS),
                false => Ok(ExitCode::FAILURE),
            },
            Command::Validate(args) => app::validate(&args.file.file).map(|_| ExitCode::SUCCESS),
            Command::Plan(args) => app::plan(&args).await.map(|changes| {
                if args.detailed_exitcode && changes {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                }
            }),
            Command::Apply(args) => app::apply(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Destroy(args) => app::destroy(&args).await.map(|_| ExitCode::SUCCESS),
            Command::Schema => app::schema().map(|_| ExitCode::SUCCESS),
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
            Command::Completions(args) => {
                let mut command = Cli::command();
                clap_complete::generate(args.shell, &mut command, "dbtopo", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
            Command::Man => clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map(|_| ExitCode::SUCCESS)
                .map_err(|e| miette::miette!("cannot write the manual page: {e}")),
            Command::Verify(args) if args.json => {
                app::verify_json(&args.file.file).await.map(|ok| match ok {
                    true => ExitCode::SUCCESS,
                    false => ExitCode::FAILURE,
                })
            }
            Command::Verify(args) => app::verify_command(&args.file.file).await.map(|ok| {
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
