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
    session_common::service::run("session-registry", || config::Cli::parse().into_config(), |_| 0, run)
}
