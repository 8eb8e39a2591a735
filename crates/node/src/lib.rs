#![doc = include_str!("../README.md")]

pub mod account;
pub mod config;
pub mod context;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod nodelist;
pub mod onion;
pub mod peer;
pub mod registry;
pub mod rpc;
pub mod server;
pub mod store;
pub mod sync;

pub use account::AccountKey;
pub use context::NodeContext;

/// The `session-node` command: parses the flags (from `std::env::args`) and the config file, sets
/// up logging to stderr, runs until SIGTERM/SIGINT. Exit code 2 for bad configuration.
/// `session-devnet` runs this in its own executable when started under the name `session-node`.
pub fn run_cli() -> std::process::ExitCode {
    use clap::Parser as _;
    session_common::service::run(
        "session-node",
        || config::Cli::parse().into_config(),
        |config| config.threads,
        node::run,
    )
}
