//! `session`: the Session command line.
//!
//! The account commands (`init`, `send`, `sync`, …) are in [`commands`], the `chat` TUI in
//! [`chat`]; how they find the data
//! directory, the network and the database key is in [`context`]; `session tool …` is in
//! [`tool`].

use std::process::ExitCode;

use clap::Parser;

mod chat;
mod commands;
mod context;
mod output;
mod resolve;
mod tool;

/// The Session private messenger.
#[derive(Debug, Parser)]
#[command(name = "session", version, about)]
struct Cli {
    #[command(flatten)]
    global: context::Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Account(commands::AccountCommand),
    /// Inspection and interoperability tools: keys, phrases, encryption, blinding, hashes.
    #[command(subcommand)]
    Tool(tool::ToolCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Tool(cmd) => match tool::run(cmd) {
            Ok(report) => {
                output::print(&report, cli.global.json);
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("session: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Account(cmd) => run_account(&cli.global, cmd),
    }
}

/// Runs an account command on a tokio runtime and prints its output or error.
fn run_account(global: &context::Global, cmd: commands::AccountCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("session: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(global, cmd));
    // Background tasks (network, poller) end with the runtime; do not wait for them.
    runtime.shutdown_background();
    let failure = match result {
        Ok(out) => {
            if global.json {
                if !out.json.is_null() {
                    println!("{}", out.json);
                }
            } else {
                print!("{}", out.text);
            }
            out.failure
        }
        Err(err) => Some(err),
    };
    match failure {
        None => ExitCode::SUCCESS,
        Some(err) => {
            eprintln!("session: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Logs go to stderr, and only when `RUST_LOG` asks for them.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
}
