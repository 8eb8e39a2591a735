//! Following the node registry (`docs/registry.md` §6).
//!
//! A node configured with `registry_url` registers, sends signed heartbeats, and keeps its node
//! list from the registry's epoch chain: it long-polls `get_service_nodes` with
//! `poll_block_hash`, fetches new epochs with `get_epochs`, verifies each one (hash, signature
//! with the configured or pinned registry key, link to the previous one), replays them with the
//! swarm assignment of network §6.1, and installs the replayed list. Nothing the registry says
//! about swarms is taken on trust: the list is what the verified chain computes.
//!
//! Verified epochs are appended to `DATA_DIR/registry-chain.jsonl` (fsynced), so a restarted node
//! serves from its last verified list at once, without the registry. The registry key is
//! `registry_pubkey` from the configuration or, when absent, pinned at first contact in
//! `DATA_DIR/registry.pub` (trust on first use).

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use session_registry::api::{HeartbeatRequest, RegisterRequest, StatusReply};
use session_registry::chain::{ChainError, Epoch, State};

use crate::NodeContext;
use crate::nodelist::{self, NodeList, NodeRecord};

/// File of verified epochs, one JSON object a line.
pub const CHAIN_FILE: &str = "registry-chain.jsonl";

/// File holding the pinned registry key (hex) when the configuration names none.
pub const PINNED_KEY_FILE: &str = "registry.pub";

/// How long the registry may hold a long poll, seconds (`poll_wait`).
const POLL_WAIT_SECS: u64 = 25;

/// Epochs fetched per `get_epochs` call.
const EPOCH_PAGE: u64 = 1000;

/// Retry delays after a failed registry call: from 250 ms, doubling, at most 10 s.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why following the registry failed (logged; the node keeps its last verified list).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The registry could not be reached or answered with an HTTP error.
    #[error("registry unreachable: {0}")]
    Unreachable(String),
    /// The registry's answer was not the documented JSON.
    #[error("registry answer malformed: {0}")]
    Malformed(String),
    /// An epoch did not verify or apply.
    #[error("registry chain refused: {0}")]
    Chain(#[from] ChainError),
    /// The registry key in the configuration or the pin file is not 64 hex digits.
    #[error("registry public key is not 64 hex digits")]
    BadKey,
    /// The registry presents another key than the one pinned or configured.
    #[error("registry key changed: expected {expected}, got {got}")]
    KeyChanged {
        /// Short form of the key we trust.
        expected: String,
        /// Short form of the key the registry presents.
        got: String,
    },
    /// Reading or writing the chain or key file failed.
    #[error("registry files in the data dir: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts following the registry at `url`: installs the list of the stored chain at once (if
/// any), then registers, heartbeats and follows new epochs until the node stops.
/// `port` is the port we serve on (announced with our address).
pub fn spawn(ctx: Arc<NodeContext>, url: String, port: u16) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let follower = match Follower::new(ctx, url, port) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("cannot follow the registry: {e}");
                return;
            }
        };
        follower.run().await;
    })
}

/// The node's side of the registry protocol.
struct Follower {
    ctx: Arc<NodeContext>,
    url: String,
    port: u16,
    http: reqwest::Client,
    chain_path: PathBuf,
    /// The key from the configuration or the pin file; `None` until pinned.
    key: Option<[u8; 32]>,
    /// The replayed state of the stored chain (`None` before the first epoch).
    state: Option<State>,
}

impl Follower {
    fn new(ctx: Arc<NodeContext>, url: String, port: u16) -> Result<Self, FollowError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .tls_backend_rustls()
            .tls_danger_accept_invalid_certs(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(POLL_WAIT_SECS + 10))
            .build()
            .map_err(|e| FollowError::Unreachable(e.to_string()))?;
        let data_dir = ctx.config.data_dir.clone();
        let key = match &ctx.config.registry_pubkey {
            Some(hex) => Some(parse_key(hex)?),
            None => read_pinned_key(&data_dir)?,
        };
        let chain_path = data_dir.join(CHAIN_FILE);
        let mut follower =
            Self { ctx, url: url.trim_end_matches('/').to_owned(), port, http, chain_path, key, state: None };
        follower.load_stored_chain();
        Ok(follower)
    }

    /// Replays the stored chain and installs its list. A stored chain that does not verify
    /// (another registry, a damaged file) is discarded and fetched again.
    fn load_stored_chain(&mut self) {
        let Some(key) = self.key else { return };
        let epochs = match read_chain_file(&self.chain_path) {
            Ok(epochs) if !epochs.is_empty() => epochs,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("stored registry chain unreadable ({e}); fetching it again");
                let _ = std::fs::remove_file(&self.chain_path);
                return;
            }
        };
        match State::replay(key, &epochs) {
            Ok(state) => {
                tracing::info!(height = state.height(), "node list from the stored registry chain");
                nodelist::install(&self.ctx, node_list(&state));
                self.state = Some(state);
            }
            Err(e) => {
                tracing::warn!("stored registry chain does not verify ({e}); fetching it again");
                let _ = std::fs::remove_file(&self.chain_path);
            }
        }
    }

    async fn run(mut self) {
        let heartbeat =
            tokio::spawn(heartbeat_loop(self.ctx.clone(), self.http.clone(), self.url.clone(), self.port));
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.poll_once().await {
                Ok(()) => backoff = BACKOFF_MIN,
                Err(e) => {
                    tracing::warn!("{e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            if heartbeat.is_finished() {
                return;
            }
        }
    }

    /// One long poll; on a new epoch hash, fetches, verifies, stores and installs.
    async fn poll_once(&mut self) -> Result<(), FollowError> {
        let key = self.registry_key().await?;
        let tip = self.state.as_ref().and_then(State::tip);
        let mut params = json!({"fields": {"pubkey_ed25519": true}, "limit": 1});
        if let Some(tip) = tip {
            params["poll_block_hash"] = json!(hex::encode(tip.hash));
            params["poll_wait"] = json!(POLL_WAIT_SECS);
        }
        let result = self.json_rpc("get_service_nodes", params).await?;
        if result.get("unchanged").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        let published = result.get("height").and_then(Value::as_u64);
        self.catch_up(key, published).await
    }

    /// Fetches and applies every epoch after our tip, page by page.
    async fn catch_up(&mut self, key: [u8; 32], published: Option<u64>) -> Result<(), FollowError> {
        let mut state = self.state.clone().unwrap_or_else(|| State::new(key));
        let mut fresh = Vec::new();
        loop {
            let from = state.height().map_or(0, |h| h + 1);
            let result = self.json_rpc("get_epochs", json!({"from": from, "limit": EPOCH_PAGE})).await?;
            let epochs: Vec<Epoch> =
                serde_json::from_value(result.get("epochs").cloned().unwrap_or(Value::Null))
                    .map_err(|e| FollowError::Malformed(format!("epochs: {e}")))?;
            if epochs.is_empty() {
                break;
            }
            for epoch in epochs {
                state.apply(&epoch)?;
                fresh.push(epoch);
            }
            if published.is_some_and(|p| state.height() >= Some(p)) {
                break;
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        append_chain_file(&self.chain_path, &fresh)?;
        tracing::info!(height = state.height(), epochs = fresh.len(), "registry chain verified");
        nodelist::install(&self.ctx, node_list(&state));
        self.state = Some(state);
        Ok(())
    }

    /// The registry key we trust: configured, pinned, or pinned now from `get_registry_info`.
    /// The key the registry presents must match it.
    async fn registry_key(&mut self) -> Result<[u8; 32], FollowError> {
        if let Some(key) = self.key {
            return Ok(key);
        }
        let info = self.json_rpc("get_registry_info", json!({})).await?;
        let hex = info
            .get("registry_pubkey")
            .and_then(Value::as_str)
            .ok_or_else(|| FollowError::Malformed("registry_pubkey missing".into()))?;
        let key = parse_key(hex)?;
        write_pinned_key(&self.ctx.config.data_dir, &key)?;
        tracing::info!(registry = %short(&key), "pinned the registry key (trust on first use)");
        self.key = Some(key);
        Ok(key)
    }

    async fn json_rpc(&self, method: &str, params: Value) -> Result<Value, FollowError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .http
            .post(format!("{}/json_rpc", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| FollowError::Unreachable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(FollowError::Unreachable(format!("HTTP {}", response.status())));
        }
        let mut value = read_json::<Value>(response).await?;
        if let Some(error) = value.get("error") {
            return Err(FollowError::Malformed(format!("{method}: {error}")));
        }
        Ok(value.get_mut("result").map(Value::take).unwrap_or(Value::Null))
    }
}

/// Registers until accepted, then heartbeats every `heartbeat_secs`; registers again when the
/// registry does not know us (for example after our address changed or we were removed).
async fn heartbeat_loop(ctx: Arc<NodeContext>, http: reqwest::Client, url: String, port: u16) {
    let url = url.trim_end_matches('/').to_owned();
    let interval = Duration::from_secs(ctx.config.registry_heartbeat_secs.max(1));
    let mut registered = false;
    let mut backoff = BACKOFF_MIN;
    loop {
        let outcome = if registered {
            heartbeat(&ctx, &http, &url).await
        } else {
            register(&ctx, &http, &url, port).await
        };
        match outcome {
            Ok(reply) => {
                backoff = BACKOFF_MIN;
                if reply.status == "unknown" {
                    registered = false;
                    continue;
                }
                if !registered {
                    tracing::info!(status = %reply.status, height = reply.height, "registered with the registry");
                }
                registered = true;
                tokio::time::sleep(interval).await;
            }
            Err(e) => {
                tracing::warn!("registry {}: {e}", if registered { "heartbeat" } else { "registration" });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(interval.max(BACKOFF_MIN));
            }
        }
    }
}

async fn register(
    ctx: &NodeContext,
    http: &reqwest::Client,
    url: &str,
    port: u16,
) -> Result<StatusReply, FollowError> {
    let ip = announced_ip(ctx);
    let now = u64::try_from(ctx.now_ms()).unwrap_or(0);
    let request = RegisterRequest::new_signed(
        ctx.identity.key(),
        ip,
        port,
        0,
        ctx.config.tls,
        crate::rpc::VERSION,
        now,
    );
    post_signed(http, &format!("{url}/register"), &request).await
}

async fn heartbeat(ctx: &NodeContext, http: &reqwest::Client, url: &str) -> Result<StatusReply, FollowError> {
    let now = u64::try_from(ctx.now_ms()).unwrap_or(0);
    let request = HeartbeatRequest::new_signed(ctx.identity.key(), now);
    post_signed(http, &format!("{url}/heartbeat"), &request).await
}

async fn post_signed<T: serde::Serialize>(
    http: &reqwest::Client,
    url: &str,
    body: &T,
) -> Result<StatusReply, FollowError> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).map_err(|e| FollowError::Malformed(e.to_string()))?)
        .send()
        .await
        .map_err(|e| FollowError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(FollowError::Unreachable(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    read_json(response).await
}

/// Reads a JSON reply body.
async fn read_json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, FollowError> {
    let bytes = response.bytes().await.map_err(|e| FollowError::Unreachable(e.without_url().to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| FollowError::Malformed(e.to_string()))
}

/// The address we announce: `public_ip`, else the listen address when it is IPv4 and specified.
fn announced_ip(ctx: &NodeContext) -> Ipv4Addr {
    if let Some(ip) = ctx.config.public_ip {
        return ip;
    }
    match ctx.config.listen.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => ip,
        _ => Ipv4Addr::LOCALHOST,
    }
}

/// The node list the chain computes.
pub fn node_list(state: &State) -> NodeList {
    let nodes = state
        .nodes()
        .values()
        .map(|entry| NodeRecord {
            pubkey_ed25519: hex::encode(entry.record.pubkey_ed25519),
            pubkey_x25519: hex::encode(entry.record.pubkey_x25519),
            public_ip: entry.record.public_ip,
            storage_port: entry.record.storage_port,
            storage_lmq_port: entry.record.storage_lmq_port,
            swarm_id: entry.swarm_id.0,
            tls: entry.record.tls,
        })
        .collect();
    NodeList::new(nodes)
}

fn parse_key(hex: &str) -> Result<[u8; 32], FollowError> {
    session_protocol::primitives::hex_array(hex.trim()).ok_or(FollowError::BadKey)
}

fn short(key: &[u8; 32]) -> String {
    session_registry::chain::short_key(key)
}

fn read_pinned_key(dir: &Path) -> Result<Option<[u8; 32]>, FollowError> {
    match std::fs::read_to_string(dir.join(PINNED_KEY_FILE)) {
        Ok(text) => parse_key(&text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_pinned_key(dir: &Path, key: &[u8; 32]) -> Result<(), FollowError> {
    let tmp = dir.join(format!("{PINNED_KEY_FILE}.tmp"));
    std::fs::write(&tmp, format!("{}\n", hex::encode(key)))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(PINNED_KEY_FILE))?;
    Ok(())
}

/// Reads the stored epochs. A torn last line (a crash while appending) is ignored; any other
/// malformed line is an error.
fn read_chain_file(path: &Path) -> std::io::Result<Vec<Epoch>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let lines: Vec<String> = std::io::BufReader::new(file).lines().collect::<Result<_, _>>()?;
    let mut epochs = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Epoch>(line) {
            Ok(epoch) => epochs.push(epoch),
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
    }
    Ok(epochs)
}

/// Appends verified epochs and fsyncs.
fn append_chain_file(path: &Path, epochs: &[Epoch]) -> std::io::Result<()> {
    let mut text = String::new();
    for epoch in epochs {
        text.push_str(&serde_json::to_string(epoch).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_protocol::IdentityKey;
    use session_registry::chain::{Event, NodeRecord as ChainRecord};

    fn record(seed: u8, port: u16) -> ChainRecord {
        let key = IdentityKey::from_seed_bytes(&[seed; 32]);
        ChainRecord {
            pubkey_ed25519: key.ed25519_public(),
            pubkey_x25519: key.x25519_public(),
            public_ip: Ipv4Addr::LOCALHOST,
            storage_port: port,
            storage_lmq_port: 0,
            tls: false,
            version: [2, 8, 0],
        }
    }

    fn chain(registry: &IdentityKey, nodes: u8) -> Vec<Epoch> {
        let genesis = Epoch::genesis(registry, 1);
        let events: Vec<Event> =
            (1..=nodes).map(|i| Event::Register { node: record(i, 20000 + u16::from(i)) }).collect();
        let first = Epoch::create(registry, genesis.hash, 1, 2, &events);
        vec![genesis, first]
    }

    #[test]
    fn chain_file_round_trips_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHAIN_FILE);
        let registry = IdentityKey::from_seed_bytes(&[9; 32]);
        let epochs = chain(&registry, 6);
        append_chain_file(&path, &epochs[..1]).unwrap();
        append_chain_file(&path, &epochs[1..]).unwrap();
        assert_eq!(read_chain_file(&path).unwrap(), epochs);
        // A crash in the middle of an append leaves a partial line: it is dropped.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"height":2,"prev_ha"#).unwrap();
        assert_eq!(read_chain_file(&path).unwrap(), epochs);
    }

    #[test]
    fn replayed_list_puts_every_node_in_one_swarm_of_at_least_five() {
        let registry = IdentityKey::from_seed_bytes(&[9; 32]);
        let epochs = chain(&registry, 12);
        let state = State::replay(registry.ed25519_public(), &epochs).unwrap();
        let list = node_list(&state);
        assert_eq!(list.nodes().len(), 12);
        let mut sizes = std::collections::BTreeMap::new();
        for node in list.nodes() {
            *sizes.entry(node.swarm().expect("every node in a swarm")).or_insert(0) += 1;
        }
        assert!(sizes.values().all(|&n| n >= 5), "{sizes:?}");
    }

    #[test]
    fn a_chain_signed_by_another_key_is_refused() {
        let registry = IdentityKey::from_seed_bytes(&[9; 32]);
        let other = IdentityKey::from_seed_bytes(&[10; 32]);
        let epochs = chain(&other, 6);
        assert!(State::replay(registry.ed25519_public(), &epochs).is_err());
    }

    #[test]
    fn keys_parse_strictly() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert!(matches!(parse_key("abc"), Err(FollowError::BadKey)));
        assert!(matches!(parse_key(&"zz".repeat(32)), Err(FollowError::BadKey)));
    }
}
