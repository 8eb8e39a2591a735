//! `session`: the Session command line.

use std::process::ExitCode;

use clap::Parser;

mod output;
mod tool;

/// The Session private messenger.
#[derive(Debug, Parser)]
#[command(name = "session", version, about)]
struct Cli {
    /// Print one JSON object on stdout instead of readable text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Inspection and interoperability tools: keys, phrases, encryption, blinding, hashes.
    #[command(subcommand)]
    Tool(tool::ToolCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tool(cmd) => tool::run(cmd),
    };
    match result {
        Ok(report) => {
            output::print(&report, cli.json);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("session: {err}");
            ExitCode::FAILURE
        }
    }
}
