//! The registry server (`docs/registry.md` §2, §3, §5): admission, heartbeats, reachability
//! tests, the epoch writer and the JSON-RPC node-list API.
//!
//! | Route | Reply |
//! |---|---|
//! | `POST /register` | 200 `{"status", "height"}`; 400 malformed / bad signature; 403 not allowed; 406 stale |
//! | `POST /heartbeat` | 200 `{"status", "height"}`; 400 malformed / bad signature; 406 stale |
//! | `POST /json_rpc` | JSON-RPC 2.0 (`get_service_nodes` and its aliases `get_n_service_nodes`, `get_all_service_nodes`; `get_epochs`; `get_registry_info`); 400 when the body is not JSON |
//! | `GET /metrics` | Prometheus text: height and node counts |
//!
//! One task (the writer) appends epochs: every `tick` it compares the liveness table with the
//! replayed chain and turns every difference (a pending node that passed its reachability test,
//! a changed record, a node silent for `decommission_after`, a decommissioned node back, a node
//! decommissioned for `remove_after`) into events of one epoch. Another task re-tests every known
//! node's reachability every `heartbeat_interval`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use session_protocol::IdentityKey;
use session_protocol::keys::{ed25519_to_x25519, verify_ed25519};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{HeartbeatRequest, RegisterRequest};
use crate::chain::{ChainError, Epoch, Event, NodeRecord, NodeRef, ServiceNodeState, State, short_key};
use crate::config::{ConfigError, Policy, RegistryConfig};
use crate::db::{Db, DbError, LivenessRow};
use crate::rpc::{ParamsError, ServiceNodesQuery};

/// Name of the key file in the data directory.
pub const KEY_FILE: &str = "registry.key";
/// Name of the database file in the data directory.
pub const DB_FILE: &str = "registry.db";
/// Header of the nodes' `/ping_test/v1` reply carrying their Ed25519 key, base64.
pub const PUBKEY_HEADER: &str = "X-Oxen-Snode-Pubkey";
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most epochs one `get_epochs` returns.
pub const MAX_EPOCHS_PER_REQUEST: u64 = 1000;
/// Reachability tests run at once.
const TEST_CONCURRENCY: usize = 32;
/// Reported as `hardfork` in `get_service_nodes`.
const HARDFORK: u64 = 21;

/// The registry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading or writing the data directory or key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file could not be read or made, or is not a 32-byte seed.
    #[error("registry {0}")]
    Key(#[from] session_common::secret_file::SecretFileError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The stored chain does not replay (wrong key file, or a damaged database).
    #[error("stored chain does not replay: {0}")]
    Chain(#[from] ChainError),
    /// The listening socket could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client for reachability tests could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Installing the signal handlers failed.
    #[error("installing signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

/// A running registry: its address, key and background tasks.
#[derive(Debug)]
pub struct RunningRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningRegistry {
    /// `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry's Ed25519 public key.
    pub fn pubkey(&self) -> [u8; 32] {
        self.shared.key.ed25519_public()
    }

    /// The public key, hex.
    pub fn pubkey_hex(&self) -> String {
        hex::encode(self.pubkey())
    }

    /// Current chain height.
    pub fn height(&self) -> u64 {
        self.shared.chain().state.height().unwrap_or(0)
    }

    /// The line the binary prints on stdout once it serves.
    pub fn startup_line(&self) -> String {
        format!("session-registry listening on {} pubkey={}", self.url(), self.pubkey_hex())
    }

    /// Stops serving (open long polls end), stops the tasks and saves the liveness table.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.flush_liveness()).await;
    }
}

/// Starts the registry: loads or makes the key, opens the database, replays the stored chain
/// (making the genesis on first start), binds `config.listen` and spawns the server, the writer
/// and the reachability tester.
pub async fn start(config: RegistryConfig) -> Result<RunningRegistry, RegistryError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let allowlist: HashSet<[u8; 32]> = config.allowlist_keys()?.into_iter().collect();
    let data_dir = config.data_dir.clone();
    let Stored { key, db, epochs, rows } = tokio::task::spawn_blocking(move || open_data_dir(&data_dir))
        .await
        .map_err(|e| RegistryError::Io { path: "data dir".into(), source: std::io::Error::other(e) })??;
    let state = State::replay(key.ed25519_public(), &epochs)?;
    let tip_hash = state.block_hash().unwrap_or([0; 32]);
    let client = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.ping_timeout)
        .timeout(config.ping_timeout)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(RegistryError::Client)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RegistryError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| RegistryError::Bind { addr: config.listen, source })?;

    let mut liveness = BTreeMap::new();
    for row in rows {
        liveness.insert(row.record.pubkey_ed25519, Live { row, dirty: false, reachable: None });
    }
    let published = state.node_records();
    let (tip_tx, _) = watch::channel(tip_hash);
    let (shutdown, shutdown_rx) = watch::channel(false);
    tracing::info!(
        registry = %short_key(&key.ed25519_public()),
        height = state.height().unwrap_or(0),
        nodes = state.nodes().len(),
        "registry state replayed"
    );
    let shared = Arc::new(Shared {
        allowlist,
        key,
        db,
        chain: RwLock::new(ChainView { state, epochs, published }),
        liveness: Mutex::new(liveness),
        testing: Mutex::new(HashSet::new()),
        tip_tx,
        client,
        started_at: now_ms(),
        shutdown: shutdown_rx.clone(),
        config,
    });

    let app = Router::new()
        .route("/register", post(register))
        .route("/heartbeat", post(heartbeat))
        .route("/json_rpc", post(json_rpc))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared.clone());
    let mut stop = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!("registry server: {e}");
        }
    });
    let writer = tokio::spawn(writer_task(shared.clone()));
    let tester = tokio::spawn(tester_task(shared.clone()));
    Ok(RunningRegistry { addr, shared, shutdown, tasks: vec![server, writer, tester] })
}

/// Runs the registry until SIGTERM or SIGINT, printing [`RunningRegistry::startup_line`] on
/// stdout once it serves.
pub async fn run(config: RegistryConfig) -> Result<(), RegistryError> {
    let registry = start(config).await?;
    let signal = shutdown_signal()?;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", registry.startup_line());
        let _ = stdout.flush();
    }
    signal.await;
    tracing::info!("shutting down");
    registry.shutdown().await;
    Ok(())
}

fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, RegistryError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(RegistryError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(RegistryError::Signal)?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// What the data directory holds at start.
struct Stored {
    key: IdentityKey,
    db: Arc<Db>,
    epochs: Vec<Epoch>,
    rows: Vec<LivenessRow>,
}

/// Loads or makes the key, opens the database, reads the epochs (storing a new genesis when there
/// are none) and the liveness rows.
fn open_data_dir(dir: &Path) -> Result<Stored, RegistryError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| RegistryError::Io { path: dir.display().to_string(), source })?;
    let key = load_or_create_key(&dir.join(KEY_FILE))?;
    let db = Db::open(&dir.join(DB_FILE))?;
    let mut epochs = db.epochs()?;
    if epochs.is_empty() {
        let genesis = Epoch::genesis(&key, now_ms());
        db.append_epoch(&genesis, &[])?;
        epochs.push(genesis);
    }
    let rows = db.liveness()?;
    Ok(Stored { key, db: Arc::new(db), epochs, rows })
}

/// `registry.key`: the raw 32-byte Ed25519 seed, mode 0600, made at first start.
fn load_or_create_key(path: &Path) -> Result<IdentityKey, RegistryError> {
    let seed = session_common::secret_file::load_or_create(path, session_common::secret_file::Encoding::Raw)?;
    Ok(IdentityKey::from_seed_bytes(&seed))
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
struct Shared {
    config: RegistryConfig,
    allowlist: HashSet<[u8; 32]>,
    key: IdentityKey,
    db: Arc<Db>,
    chain: RwLock<ChainView>,
    liveness: Mutex<BTreeMap<[u8; 32], Live>>,
    /// Nodes with a reachability test in flight.
    testing: Mutex<HashSet<[u8; 32]>>,
    /// The current block hash; long polls wait for it to change.
    tip_tx: watch::Sender<[u8; 32]>,
    client: reqwest::Client,
    /// When this process started (ms): nobody is decommissioned for silence the registry could
    /// not hear.
    started_at: u64,
    shutdown: watch::Receiver<bool>,
}

/// The replayed chain and what is published from it.
#[derive(Debug)]
struct ChainView {
    state: State,
    epochs: Vec<Epoch>,
    /// `state.node_records()`, recomputed per epoch.
    published: Vec<ServiceNodeState>,
}

#[derive(Debug)]
struct Live {
    row: LivenessRow,
    /// Changed since last saved.
    dirty: bool,
    /// Result of the last reachability test in this process.
    reachable: Option<bool>,
}

/// What the registry tells a node about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeStatus {
    Active,
    Pending,
    Decommissioned,
    Unknown,
}

impl NodeStatus {
    fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Active => "active",
            NodeStatus::Pending => "pending",
            NodeStatus::Decommissioned => "decommissioned",
            NodeStatus::Unknown => "unknown",
        }
    }
}

impl Shared {
    fn chain(&self) -> RwLockReadGuard<'_, ChainView> {
        self.chain.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn liveness(&self) -> MutexGuard<'_, BTreeMap<[u8; 32], Live>> {
        self.liveness.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn status_of(&self, key: &[u8; 32]) -> (NodeStatus, u64) {
        let chain = self.chain();
        let height = chain.state.height().unwrap_or(0);
        let status = match chain.state.node(key) {
            Some(entry) if entry.active => NodeStatus::Active,
            Some(_) => NodeStatus::Decommissioned,
            None if self.liveness().contains_key(key) => NodeStatus::Pending,
            None => NodeStatus::Unknown,
        };
        (status, height)
    }

    fn check_timestamp(&self, timestamp: u64) -> Result<(), Rejection> {
        if now_ms().abs_diff(timestamp) > ms(self.config.timestamp_tolerance) {
            return Err(Rejection(
                StatusCode::NOT_ACCEPTABLE,
                "timestamp is too far from the registry's clock",
            ));
        }
        Ok(())
    }

    /// Saves the liveness rows changed since the last save.
    fn flush_liveness(&self) {
        let rows: Vec<LivenessRow> = {
            let mut live = self.liveness();
            live.values_mut()
                .filter(|l| l.dirty)
                .map(|l| {
                    l.dirty = false;
                    l.row.clone()
                })
                .collect()
        };
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.db.save_liveness(&rows) {
            tracing::error!("saving liveness: {e}");
            let mut live = self.liveness();
            for row in rows {
                if let Some(l) = live.get_mut(&row.record.pubkey_ed25519) {
                    l.dirty = true;
                }
            }
        }
    }

    /// Starts a reachability test of `key` unless one is already running.
    fn spawn_test(self: &Arc<Self>, record: NodeRecord) {
        let key = record.pubkey_ed25519;
        if !self.testing.lock().unwrap_or_else(|p| p.into_inner()).insert(key) {
            return;
        }
        let shared = self.clone();
        tokio::spawn(async move {
            let passed = reachable(&shared.client, &record).await;
            shared.testing.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            shared.record_test(&key, passed);
        });
    }

    fn record_test(&self, key: &[u8; 32], passed: bool) {
        let mut live = self.liveness();
        let Some(l) = live.get_mut(key) else { return };
        if l.reachable != Some(passed) {
            tracing::info!(node = %short_key(key), passed, "reachability changed");
        }
        l.reachable = Some(passed);
        if passed {
            l.row.last_reachable = Some(now_ms());
            l.dirty = true;
        }
    }
}

/// `POST /ping_test/v1` to the node: 200 with its own key in [`PUBKEY_HEADER`].
async fn reachable(client: &reqwest::Client, record: &NodeRecord) -> bool {
    let scheme = if record.tls { "https" } else { "http" };
    let url = format!("{scheme}://{}:{}/ping_test/v1", record.public_ip, record.storage_port);
    let expected = base64::engine::general_purpose::STANDARD.encode(record.pubkey_ed25519);
    match client.post(&url).body(Vec::new()).send().await {
        Ok(response) => {
            let ok = response.status() == reqwest::StatusCode::OK
                && response.headers().get(PUBKEY_HEADER).is_some_and(|v| v.as_bytes() == expected.as_bytes());
            if !ok {
                tracing::debug!(node = %short_key(&record.pubkey_ed25519), status = %response.status(), "ping test refused");
            }
            ok
        }
        Err(e) => {
            tracing::debug!(node = %short_key(&record.pubkey_ed25519), "ping test failed: {e}");
            false
        }
    }
}

/// Every `heartbeat_interval` (and once at start), tests every known node.
async fn tester_task(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.clone();
    let limit = Arc::new(tokio::sync::Semaphore::new(TEST_CONCURRENCY));
    loop {
        let records: Vec<NodeRecord> = {
            let chain = shared.chain();
            let live = shared.liveness();
            let mut records: BTreeMap<[u8; 32], NodeRecord> =
                live.iter().map(|(k, l)| (*k, l.row.record.clone())).collect();
            for (key, entry) in chain.state.nodes() {
                records.entry(*key).or_insert_with(|| entry.record.clone());
            }
            records.into_values().collect()
        };
        for record in records {
            let Ok(permit) = limit.clone().acquire_owned().await else { return };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let key = record.pubkey_ed25519;
                let passed = reachable(&shared.client, &record).await;
                shared.record_test(&key, passed);
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.config.heartbeat_interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Every `tick`: turns liveness into events, appends one epoch holding them, saves liveness.
async fn writer_task(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.clone();
    let mut interval = tokio::time::interval(shared.config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let s = shared.clone();
        match tokio::task::spawn_blocking(move || s.write_tick()).await {
            Ok(()) => {}
            Err(e) => tracing::error!("epoch writer: {e}"),
        }
    }
}

impl Shared {
    /// One writer tick (blocking: SQLite).
    fn write_tick(&self) {
        let now = now_ms();
        let (events, removed, dropped) = self.pending_events(now);
        if !dropped.is_empty() {
            if let Err(e) = self.db.delete_liveness(&dropped) {
                tracing::error!("dropping expired pending nodes: {e}");
            } else {
                let mut live = self.liveness();
                for key in &dropped {
                    live.remove(key);
                    tracing::info!(node = %short_key(key), "pending node never passed a reachability test; dropped");
                }
            }
        }
        if !events.is_empty() {
            self.append(now, &events, &removed);
        }
        self.flush_liveness();
    }

    /// The events that liveness calls for now, the nodes they remove, and pending nodes to drop.
    fn pending_events(&self, now: u64) -> (Vec<Event>, Vec<[u8; 32]>, Vec<[u8; 32]>) {
        let chain = self.chain();
        let live = self.liveness();
        let decommission_after = ms(self.config.decommission_after);
        let remove_after = ms(self.config.remove_after);
        let recent = |t: Option<u64>, after: u64| {
            t.is_some_and(|t| t > after && now.saturating_sub(t) < decommission_after)
        };
        let mut events = Vec::new();
        let mut removed = Vec::new();
        let mut dropped = Vec::new();
        let mut keys: Vec<[u8; 32]> = live.keys().copied().collect();
        keys.extend(chain.state.nodes().keys().filter(|k| !live.contains_key(*k)));
        keys.sort_unstable();
        for key in keys {
            let l = live.get(&key);
            let node = NodeRef { pubkey_ed25519: key };
            match (chain.state.node(&key), l) {
                (None, Some(l)) => {
                    if recent(l.row.last_reachable, 0) {
                        events.push(Event::Register { node: l.row.record.clone() });
                    } else if now.saturating_sub(l.row.registered_at) >= remove_after {
                        dropped.push(key);
                    }
                }
                (None, None) => {}
                (Some(entry), l) => {
                    if let Some(l) = l
                        && l.row.record != entry.record
                    {
                        events.push(Event::Update { node: l.row.record.clone() });
                    }
                    let heartbeat = l.and_then(|l| l.row.last_heartbeat);
                    let reached = l.and_then(|l| l.row.last_reachable);
                    if entry.active {
                        let last_seen = [heartbeat, reached, Some(entry.since), Some(self.started_at)]
                            .into_iter()
                            .flatten()
                            .max()
                            .unwrap_or(0);
                        if now.saturating_sub(last_seen) >= decommission_after {
                            events.push(Event::Decommission { node });
                        }
                    } else if recent(heartbeat, entry.since) && recent(reached, entry.since) {
                        events.push(Event::Recommission { node });
                    } else if now.saturating_sub(entry.since) >= remove_after {
                        events.push(Event::Remove { node });
                        removed.push(key);
                    }
                }
            }
        }
        (events, removed, dropped)
    }

    /// Makes, checks, stores and publishes the epoch holding `events`.
    fn append(&self, now: u64, events: &[Event], removed: &[[u8; 32]]) {
        let (epoch, state) = {
            let chain = self.chain();
            let tip = chain.state.tip().expect("the chain has a genesis");
            let epoch = Epoch::create(&self.key, tip.hash, tip.height + 1, now.max(tip.timestamp), events);
            let mut state = chain.state.clone();
            if let Err(e) = state.apply(&epoch) {
                tracing::error!("new epoch does not apply (bug): {e}");
                return;
            }
            (epoch, state)
        };
        if let Err(e) = self.db.append_epoch(&epoch, removed) {
            tracing::error!("storing epoch {}: {e}", epoch.height);
            return;
        }
        {
            let mut chain = self.chain.write().unwrap_or_else(|p| p.into_inner());
            chain.published = state.node_records();
            chain.state = state;
            chain.epochs.push(epoch.clone());
        }
        {
            let mut live = self.liveness();
            for key in removed {
                live.remove(key);
            }
        }
        for event in events {
            tracing::info!(height = epoch.height, node = %short_key(event.node_key()), "{}", event.kind());
        }
        self.tip_tx.send_replace(epoch.hash);
    }
}

/// A refused request: status and a text body.
#[derive(Debug)]
struct Rejection(StatusCode, &'static str);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn bad(message: &'static str) -> Rejection {
    Rejection(StatusCode::BAD_REQUEST, message)
}

fn parse_key(text: &str) -> Result<[u8; 32], Rejection> {
    if text.len() != 64 {
        return Err(bad("keys must be 64 hex digits"));
    }
    session_protocol::primitives::hex_array(text).ok_or(bad("keys must be 64 hex digits"))
}

fn check_signature(key: &[u8; 32], message: &str, signature: &str) -> Result<(), Rejection> {
    let signature: [u8; 64] = (signature.len() == 128)
        .then(|| session_protocol::primitives::hex_array(signature))
        .flatten()
        .ok_or(bad("signature must be 128 hex digits"))?;
    if !verify_ed25519(key, message.as_bytes(), &signature) {
        return Err(bad("bad signature"));
    }
    Ok(())
}

fn status_reply(status: NodeStatus, height: u64) -> Response {
    axum::Json(json!({"status": status.as_str(), "height": height})).into_response()
}

async fn register(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    // Blocking: an acknowledged registration is synced to disk first.
    match tokio::task::spawn_blocking(move || register_inner(&shared, &body)).await {
        Ok(Ok(response)) => response,
        Ok(Err(rejection)) => rejection.into_response(),
        Err(e) => {
            tracing::error!("registration task: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "registration failed").into_response()
        }
    }
}

fn register_inner(shared: &Arc<Shared>, body: &[u8]) -> Result<Response, Rejection> {
    let req: RegisterRequest = serde_json::from_slice(body).map_err(|_| bad("malformed registration"))?;
    let ed = parse_key(&req.pubkey_ed25519)?;
    let x = parse_key(&req.pubkey_x25519)?;
    if ed25519_to_x25519(&ed).ok() != Some(x) {
        return Err(bad("pubkey_x25519 is not the X25519 form of pubkey_ed25519"));
    }
    let ip: Ipv4Addr = req.public_ip.parse().map_err(|_| bad("public_ip must be an IPv4 address"))?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(bad("public_ip is not a usable address"));
    }
    if req.storage_port == 0 {
        return Err(bad("storage_port must not be 0"));
    }
    check_signature(&ed, &req.signed_text(), &req.signature)?;
    shared.check_timestamp(req.timestamp)?;
    if shared.config.policy == Policy::Allowlist && !shared.allowlist.contains(&ed) {
        tracing::info!(node = %short_key(&ed), "registration refused: not in the allowlist");
        return Err(Rejection(StatusCode::FORBIDDEN, "not in the allowlist"));
    }
    let record = NodeRecord {
        pubkey_ed25519: ed,
        pubkey_x25519: x,
        public_ip: ip,
        storage_port: req.storage_port,
        storage_lmq_port: req.storage_lmq_port,
        tls: req.tls,
        version: req.version,
    };
    let now = now_ms();
    let row = {
        let mut live = shared.liveness();
        let fresh = !live.contains_key(&ed);
        let l = live.entry(ed).or_insert_with(|| Live {
            row: LivenessRow {
                record: record.clone(),
                registered_at: now,
                last_heartbeat: None,
                last_reachable: None,
            },
            dirty: true,
            reachable: None,
        });
        if fresh {
            tracing::info!(node = %short_key(&ed), "registered (pending)");
        } else if l.row.record != record {
            tracing::info!(node = %short_key(&ed), "registration with a new address");
        }
        l.row.record = record.clone();
        l.row.last_heartbeat = Some(now);
        l.dirty = false;
        l.row.clone()
    };
    // Acknowledged registrations survive a crash.
    if let Err(e) = shared.db.save_liveness(std::slice::from_ref(&row)) {
        tracing::error!("saving a registration: {e}");
        return Err(Rejection(StatusCode::SERVICE_UNAVAILABLE, "registry storage failed"));
    }
    let (status, height) = shared.status_of(&ed);
    if status != NodeStatus::Active {
        shared.spawn_test(record);
    }
    Ok(status_reply(status, height))
}

async fn heartbeat(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    match heartbeat_inner(&shared, &body) {
        Ok(response) => response,
        Err(rejection) => rejection.into_response(),
    }
}

fn heartbeat_inner(shared: &Arc<Shared>, body: &[u8]) -> Result<Response, Rejection> {
    let req: HeartbeatRequest = serde_json::from_slice(body).map_err(|_| bad("malformed heartbeat"))?;
    let ed = parse_key(&req.pubkey_ed25519)?;
    check_signature(&ed, &req.signed_text(), &req.signature)?;
    shared.check_timestamp(req.timestamp)?;
    let in_chain = shared.chain().state.node(&ed).map(|entry| entry.record.clone());
    let record = {
        let mut live = shared.liveness();
        match (live.get_mut(&ed), in_chain) {
            (Some(l), _) => {
                l.row.last_heartbeat = Some(now_ms());
                l.dirty = true;
                Some(l.row.record.clone())
            }
            (None, Some(record)) => {
                let now = now_ms();
                let row = LivenessRow {
                    record: record.clone(),
                    registered_at: now,
                    last_heartbeat: Some(now),
                    last_reachable: None,
                };
                live.insert(ed, Live { row, dirty: true, reachable: None });
                Some(record)
            }
            (None, None) => None,
        }
    };
    let (status, height) = shared.status_of(&ed);
    if let Some(record) = record
        && matches!(status, NodeStatus::Pending | NodeStatus::Decommissioned)
    {
        shared.spawn_test(record);
    }
    Ok(status_reply(status, height))
}

async fn metrics(AxumState(shared): AxumState<Arc<Shared>>) -> Response {
    let (height, active, decommissioned, in_chain) = {
        let chain = shared.chain();
        let active = chain.state.nodes().values().filter(|e| e.active).count();
        (
            chain.state.height().unwrap_or(0),
            active,
            chain.state.nodes().len() - active,
            chain.state.nodes().len(),
        )
    };
    let pending = shared.liveness().len().saturating_sub(in_chain);
    let text = format!(
        "# TYPE registry_height gauge\nregistry_height {height}\n\
         # TYPE registry_nodes gauge\nregistry_nodes{{state=\"active\"}} {active}\n\
         registry_nodes{{state=\"decommissioned\"}} {decommissioned}\nregistry_nodes{{state=\"pending\"}} {pending}\n"
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// A JSON-RPC error.
#[derive(Debug)]
struct RpcError(i64, String);

impl From<ParamsError> for RpcError {
    fn from(e: ParamsError) -> Self {
        RpcError(-32602, e.to_string())
    }
}

async fn json_rpc(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let result = match request.get("method").and_then(Value::as_str) {
        None => {
            Err(RpcError(-32600, "invalid request: an object with a \"method\" string is required".into()))
        }
        Some(method) => {
            let params = request.get("params");
            match method {
                "get_service_nodes" | "get_n_service_nodes" | "get_all_service_nodes" => {
                    get_service_nodes(&shared, params).await
                }
                "get_epochs" => get_epochs(&shared, params),
                "get_registry_info" => Ok(registry_info(&shared)),
                _ => Err(RpcError(
                    -32601,
                    format!("method not found: {}", method.chars().take(64).collect::<String>()),
                )),
            }
        }
    };
    let reply = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(RpcError(code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    };
    axum::Json(reply).into_response()
}

async fn get_service_nodes(shared: &Arc<Shared>, params: Option<&Value>) -> Result<Value, RpcError> {
    let query = ServiceNodesQuery::parse(params)?;
    if let Some(poll) = &query.poll_block_hash {
        let mut tip = shared.tip_tx.subscribe();
        let current = hex::encode(*tip.borrow_and_update());
        if *poll == current
            && let Some(wait) = query.poll_wait
        {
            let mut stop = shared.shutdown.clone();
            tokio::select! {
                _ = tokio::time::timeout(wait, tip.changed()) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    }
    let chain = shared.chain();
    let height = chain.state.height().unwrap_or(0);
    let block_hash = hex::encode(chain.state.block_hash().unwrap_or([0; 32]));
    if query.poll_block_hash.as_deref() == Some(block_hash.as_str()) {
        return Ok(json!({"unchanged": true, "height": height, "block_hash": block_hash, "status": "OK"}));
    }
    let nodes: Vec<ServiceNodeState> = {
        let live = shared.liveness();
        chain
            .published
            .iter()
            .map(|n| {
                let mut n = n.clone();
                let key: Option<[u8; 32]> = session_protocol::primitives::hex_array(&n.pubkey_ed25519);
                if let Some(l) = key.and_then(|k| live.get(&k)) {
                    n.last_uptime_proof = l.row.last_heartbeat.unwrap_or(0) / 1000;
                    n.storage_server_reachable = l.reachable.unwrap_or(n.active);
                }
                n
            })
            .collect()
    };
    drop(chain);
    let states = query.select(&nodes, &mut rand::rng());
    Ok(json!({
        "service_node_states": states,
        "height": height,
        "target_height": height,
        "block_hash": block_hash,
        "hardfork": HARDFORK,
        "snode_revision": 0,
        "status": "OK",
        "unchanged": false,
    }))
}

fn get_epochs(shared: &Shared, params: Option<&Value>) -> Result<Value, RpcError> {
    let field = |name: &str| -> Result<Option<u64>, RpcError> {
        match params.and_then(|p| p.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| RpcError(-32602, format!("{name} must be a non-negative integer"))),
        }
    };
    if params.is_some_and(|p| !p.is_object() && !p.is_null()) {
        return Err(RpcError(-32602, "params must be an object".into()));
    }
    let from = field("from")?.unwrap_or(0);
    let limit = field("limit")?.unwrap_or(MAX_EPOCHS_PER_REQUEST).min(MAX_EPOCHS_PER_REQUEST);
    let chain = shared.chain();
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(chain.epochs.len());
    let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX)).min(chain.epochs.len());
    Ok(json!({
        "epochs": &chain.epochs[start..end],
        "height": chain.state.height().unwrap_or(0),
        "registry_pubkey": hex::encode(shared.key.ed25519_public()),
    }))
}

fn registry_info(shared: &Shared) -> Value {
    let chain = shared.chain();
    json!({
        "registry_pubkey": hex::encode(shared.key.ed25519_public()),
        "height": chain.state.height().unwrap_or(0),
        "block_hash": hex::encode(chain.state.block_hash().unwrap_or([0; 32])),
    })
}
