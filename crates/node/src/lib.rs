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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    crate::server::tls::install_crypto_provider();
    let config = match config::Cli::parse().into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("session-node: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("session-node: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::node::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session-node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
