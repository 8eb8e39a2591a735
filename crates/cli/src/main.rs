//! `session`: the Session command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod chat;
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
    /// Chat in the terminal: conversations, messages, requests (Esc or Ctrl-C quits).
    Chat {
        /// Open the conversation with this Session ID (a new one if there is none).
        id: Option<String>,
        /// The account's data directory. The database key is the key file there, or the
        /// passphrase in $SESSION_PASSPHRASE when set.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The network: a registry URL.
        #[arg(long, value_name = "REGISTRY_URL")]
        network: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tool(cmd) => tool::run(cmd),
        Command::Chat { id, data_dir, network } => return chat_command(id.as_deref(), data_dir, network),
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

/// `session chat`: opens the account and runs the chat. (Opening is local to this command until
/// the shared account options land.)
fn chat_command(id: Option<&str>, data_dir: PathBuf, registry: String) -> ExitCode {
    use session_client::db::KeySource;
    use session_client::{Client, NetworkConfig};

    let open = match id.map(str::parse::<session_protocol::SessionId>).transpose() {
        Ok(open) => open,
        Err(e) => {
            eprintln!("session: not a Session ID: {e}");
            return ExitCode::FAILURE;
        }
    };
    let key = match std::env::var("SESSION_PASSPHRASE") {
        Ok(passphrase) => KeySource::passphrase(passphrase),
        Err(_) => KeySource::KeyFile,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("session: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = Client::open(&data_dir, key, NetworkConfig::new([registry]))
            .await
            .map_err(|e| format!("cannot open the account in {}: {e}", data_dir.display()))?;
        chat::run(client, open).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session: {e}");
            ExitCode::FAILURE
        }
    }
}
