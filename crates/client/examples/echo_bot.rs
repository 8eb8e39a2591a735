//! An echo bot: accepts every message request and answers every message with its text.
//!
//! ```text
//! cargo run -p session-client --example echo_bot -- DATA_DIR REGISTRY
//! ```
//!
//! * `DATA_DIR`: the bot's account; created on the first run (display name "Echo bot"), opened
//!   afterwards. The database key is a key file beside it, or the passphrase in
//!   `$SESSION_PASSPHRASE` when set.
//! * `REGISTRY`: a registry URL (`http://127.0.0.1:4000`), or the `devnet.json` of a running
//!   devnet (`session-devnet up`), or the devnet's directory.
//!
//! It prints its Session ID, then polls every 2 s until interrupted (Ctrl-C). Logs go to stderr
//! (`RUST_LOG`, default `info`); they never contain message text or full Session IDs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use session_client::client::{ClientError, DB_FILE, Event};
use session_client::db::{Direction, KeySource};
use session_client::{Client, NetworkConfig};
use tokio::sync::broadcast::error::RecvError;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, registry] = args.as_slice() else {
        eprintln!("usage: echo_bot DATA_DIR REGISTRY_URL|DEVNET_JSON|DEVNET_DIR");
        std::process::exit(2);
    };
    let data_dir = PathBuf::from(data_dir);
    let config = NetworkConfig::new([registry_url(registry)?]);
    let key = match std::env::var("SESSION_PASSPHRASE") {
        Ok(passphrase) => KeySource::passphrase(passphrase),
        Err(_) => KeySource::KeyFile,
    };

    let client = if data_dir.join(DB_FILE).exists() {
        Client::open(&data_dir, key, config).await?
    } else {
        // The recovery phrase is not printed: the account lives in DATA_DIR.
        let (client, _phrase) = Client::create(&data_dir, key, config, Some("Echo bot")).await?;
        client
    };
    println!("{}", client.session_id());

    let mut events = client.subscribe();
    let _poller = client.spawn_poller(Duration::from_secs(2));
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tokio::signal::ctrl_c() => break,
        };
        match event {
            Ok(Event::Request { conversation }) => {
                if let Err(e) = client.accept_request(&conversation).await {
                    tracing::warn!(error = %e, from = %conversation.short(), "could not accept a request");
                } else {
                    tracing::info!(from = %conversation.short(), "accepted a message request");
                }
            }
            Ok(Event::Message { conversation, message }) if message.direction == Direction::Incoming => {
                let Some(body) = message.body else { continue };
                if let Err(e) = client.mark_read(&conversation).await {
                    tracing::warn!(error = %e, "could not mark read");
                }
                match client.send_text(&conversation, &body).await {
                    Ok(_) => tracing::info!(to = %conversation.short(), "echoed a message"),
                    Err(ClientError::SendFailed { source, .. }) => {
                        tracing::warn!(error = %source, to = %conversation.short(), "echo not delivered");
                    }
                    Err(e) => tracing::warn!(error = %e, "echo failed"),
                }
            }
            Ok(_) => {}
            // Fell behind: the next events still come; nothing to reload for an echo bot.
            Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "event stream lagged"),
            Err(RecvError::Closed) => break,
        }
    }
    Ok(())
}

/// The registry URL from a URL, a `devnet.json`, or a devnet directory.
fn registry_url(arg: &str) -> Result<String, Box<dyn std::error::Error>> {
    if arg.starts_with("http://") || arg.starts_with("https://") {
        return Ok(arg.to_owned());
    }
    let path = Path::new(arg);
    let file = if path.is_dir() { path.join("devnet.json") } else { path.to_owned() };
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    state
        .get("registry_url")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no registry_url", file.display()).into())
}
