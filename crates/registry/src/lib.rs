//! The Session node registry (`docs/registry.md`): admission of service nodes, liveness, the
//! swarm assignment of network §6.1, and the signed, hash-chained epoch log that lets any node
//! recompute every published assignment.
//!
//! Pure parts that nodes use to follow the registry: [`assign`] (swarm assignment) and [`chain`]
//! (epochs, verification, replay). The server parts ([`db`], [`server`], [`config`]) run the
//! `session-registry` binary.

pub mod api;
pub mod assign;
pub mod chain;
pub mod config;
pub mod db;
pub mod rpc;
pub mod server;

pub use server::{RegistryError, RunningRegistry, run, start};

/// The `session-registry` command: parses the flags (from `std::env::args`) and the config file, sets
/// up logging to stderr, runs until SIGTERM/SIGINT. Exit code 2 for bad configuration.
/// `session-devnet` runs this in its own executable when started under the name `session-registry`.
pub fn run_cli() -> std::process::ExitCode {
    use clap::Parser as _;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match config::Cli::parse().into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("session-registry: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("session-registry: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session-registry: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
