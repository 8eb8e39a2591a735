//! The `session-node` binary: parses flags and the config file, sets up logging, runs the node.

fn main() -> std::process::ExitCode {
    session_node::run_cli()
}
