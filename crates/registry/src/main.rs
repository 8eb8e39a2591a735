//! The `session-registry` binary: parses flags and the config file, sets up logging, runs the
//! registry until SIGTERM/SIGINT. Prints `session-registry listening on URL pubkey=HEX` on stdout
//! once it serves.

fn main() -> std::process::ExitCode {
    session_registry::run_cli()
}
