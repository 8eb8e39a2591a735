//! The start-up of a long-running binary (the node, the registry): logging to stderr filtered
//! by `RUST_LOG` (default `info`), ring as the process-wide rustls provider, a multi-threaded
//! tokio runtime, and an exit code that tells a bad configuration (2) from a failure (1).

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// Installs ring as the process-wide rustls provider (needed by clients built without an
/// explicit provider, such as reqwest). Harmless when a provider is already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs the program `name`: sets up logging and the TLS provider, then `config()` (an error is
/// printed as `name: error` with exit code 2), then `run(config)` on a new runtime with
/// `threads(&config)` worker threads (0: tokio's default, one per CPU, or `TOKIO_WORKER_THREADS`)
/// until it returns (an error is printed with exit code 1).
pub fn run<C, CE, RE, F>(
    name: &str,
    config: impl FnOnce() -> Result<C, CE>,
    threads: impl FnOnce(&C) -> usize,
    run: impl FnOnce(C) -> F,
) -> ExitCode
where
    CE: Display,
    RE: Display,
    F: Future<Output = Result<(), RE>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    install_crypto_provider();
    let config = match config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    match threads(&config) {
        0 => {}
        n => {
            builder.worker_threads(n);
        }
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
