//! The network layer: talking to the Session network through onion paths.
//!
//! [`Network`] is a clone-able handle. [`Network::bootstrap`] gets the node list from a registry
//! (or imports a stored [`PoolSnapshot`]); every request then goes through an onion path of 3
//! nodes to a member of the account's swarm, computed locally from the pool. Failures are handled
//! as network §7.9 describes: the path or node is blamed, another swarm member is tried after
//! min(100 ms · 2^n, 5 s), a 421 leads to another member and then to a pool refresh, and a clock
//! error (406/425) to a resynchronisation of the network time offset.
//!
//! The typed storage methods (store, retrieve, delete, expire, get_expiries, delete_all,
//! get_swarm) are in [`api`].
//!
//! Choices where the spec leaves room:
//! - **Refresh through nodes** asks [`REFRESH_SOURCES`] random usable nodes (fewer when the pool
//!   has fewer) and keeps the nodes every answer agrees on (same keys, address, port, swarm). At
//!   least two answers are needed when two or more nodes could be asked. If fewer answer, or the
//!   agreed list is below `min_pool_size` (and never below 4, a path plus a destination), the
//!   list is taken from a registry instead; without a registry a non-empty agreed list is kept.
//! - **Registry lists** replace the pool and clear failure counts; lists from nodes keep the
//!   counts of nodes still listed. A registry is asked again when 3 or fewer nodes are usable,
//!   or when every member of a swarm is excluded.
//! - **Failures**: a guard that refuses the connection is marked bad at once (libsession does so
//!   for a QUIC handshake timeout); `Next node unreachable: <key>` (this project's nodes, for a
//!   next hop that is down) gives that node one failure and replaces it in the path, or, when it
//!   is the destination, moves on to another swarm member; a reply that does not decrypt counts
//!   as a path failure and is retried. A success clears the failure counts of the path and of
//!   its nodes, so the limits count consecutive failures.
//! - **Scheme**: nodes' own lists do not say whether a node serves HTTPS; a scheme learnt from a
//!   registry is kept, and an unknown one is tried as HTTPS, then HTTP, and remembered.
//! - **Time**: every reply with `t` sets the offset (no smoothing); a 406/425 triggers one `info`
//!   request to the same node for its time and one retry with new timestamps and signatures.
//! - **Recursive replies** (store, delete, delete_all, expire) are summed over the swarm members
//!   whose result carries a valid Ed25519 signature by a node the pool knows (network §3.8); a
//!   member that failed or whose signature does not verify counts in `failed_on`, and a reply
//!   in which no member verifies is refused as [`NetworkError::InvalidResponse`].

pub mod api;
mod clock;
mod error;
pub mod path;
pub mod pool;
mod transport;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use session_protocol::onion::{Destination, EncType, FinalOptions, RequestSpec, build_request_random};

pub use api::{
    DeleteResult, ExpireResult, RetrieveRequest, Retrieved, RetrievedMessage, StoreRequest, StoreResult,
};
pub use error::NetworkError;
pub use path::{OnionPath, PathSet};
pub use pool::{NodePool, PoolSnapshot, ServiceNode};

use clock::Clock;
use transport::{InnerReply, PathFault, Transport, TransportError, classify_path_reply};

/// How long a node list stays fresh (network §7.8: 2 h).
pub const POOL_MAX_AGE: Duration = Duration::from_secs(2 * 3600);
/// libsession's minimum pool size: below it the list is taken from a registry again.
pub const DEFAULT_MIN_POOL_SIZE: usize = 12;
/// Nodes asked when the pool is refreshed through the network.
pub const REFRESH_SOURCES: usize = 3;
/// The fields asked of `get_service_nodes`.
const NODE_FIELDS: [&str; 7] =
    ["public_ip", "storage_port", "pubkey_ed25519", "pubkey_x25519", "swarm_id", "active", "tls"];

/// How the client reaches the network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Registry base URLs (e.g. `http://127.0.0.1:40123`); their `/json_rpc` serves
    /// `get_n_service_nodes`. All are asked at once; the first usable answer wins.
    pub registry_urls: Vec<String>,
    /// A pool stored earlier ([`Network::pool_snapshot`]); used instead of asking a registry at
    /// start when it is not empty.
    pub pool: Option<PoolSnapshot>,
    /// Onion layer encryption: xchacha20 (default, as libsession) or aes-gcm.
    pub enc_type: EncType,
    /// Below this many nodes the pool is taken from a registry again (default 12).
    pub min_pool_size: usize,
    /// Age after which the pool is refreshed before the next request (default 2 h).
    pub pool_max_age: Duration,
    /// Timeout of one HTTP request (an onion request end to end, or a registry call).
    pub request_timeout: Duration,
    /// Attempts per request before giving up with [`NetworkError::AllNodesFailed`].
    pub max_attempts: u32,
    /// Test hook: pretend the local clock is off by this many milliseconds (positive: ahead).
    pub clock_skew_ms: i64,
}

impl NetworkConfig {
    /// Defaults with these registries.
    pub fn new<S: Into<String>>(registry_urls: impl IntoIterator<Item = S>) -> Self {
        Self {
            registry_urls: registry_urls.into_iter().map(Into::into).collect(),
            pool: None,
            enc_type: EncType::XChaCha20,
            min_pool_size: DEFAULT_MIN_POOL_SIZE,
            pool_max_age: POOL_MAX_AGE,
            request_timeout: Duration::from_secs(30),
            max_attempts: 8,
            clock_skew_ms: 0,
        }
    }
}

/// Counters of what the network layer did, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Onion requests sent.
    pub onion_requests: u64,
    /// Requests that failed on the path or at the destination and were retried.
    pub retries: u64,
    /// 421 replies (node outside the account's swarm).
    pub wrong_swarm_replies: u64,
    /// Pool refreshes through nodes.
    pub pool_refreshes: u64,
    /// Node lists taken from a registry.
    pub registry_fetches: u64,
    /// Clock resynchronisations after a 406/425.
    pub clock_resyncs: u64,
}

/// A handle to the Session network. Cheap to clone; clones share the pool, paths and clock.
#[derive(Debug, Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: NetworkConfig,
    transport: Transport,
    clock: Clock,
    state: Mutex<State>,
    /// One pool refresh at a time.
    refresh: tokio::sync::Mutex<()>,
    stats: Stats,
}

#[derive(Debug, Default)]
struct State {
    pool: NodePool,
    paths: PathSet,
}

#[derive(Debug, Default)]
struct Stats {
    onion_requests: AtomicU64,
    retries: AtomicU64,
    wrong_swarm_replies: AtomicU64,
    pool_refreshes: AtomicU64,
    registry_fetches: AtomicU64,
    clock_resyncs: AtomicU64,
}

/// How one onion request failed.
#[derive(Debug)]
enum SendError {
    /// The path failed (already blamed); the destination is not suspected.
    Path(String),
    /// The destination failed (already blamed).
    Destination(String),
    /// Nothing can be sent (too few nodes).
    Fatal(NetworkError),
}

impl Network {
    /// Starts the network layer: imports `config.pool` when it has nodes, else gets the node
    /// list from a registry; then builds the onion paths. Fails when no node list can be had or
    /// it is too small to build a path.
    pub async fn bootstrap(config: NetworkConfig) -> Result<Self, NetworkError> {
        if config.registry_urls.is_empty() && config.pool.as_ref().is_none_or(|p| p.nodes.is_empty()) {
            return Err(NetworkError::Config("no registry URL and no stored node pool".into()));
        }
        let transport = Transport::new(config.request_timeout).map_err(NetworkError::Config)?;
        let clock = Clock::new(config.clock_skew_ms);
        let pool = config.pool.clone().map(NodePool::from_snapshot).unwrap_or_default();
        let network = Self {
            inner: Arc::new(Inner {
                config,
                transport,
                clock,
                state: Mutex::new(State { pool, paths: PathSet::new() }),
                refresh: tokio::sync::Mutex::new(()),
                stats: Stats::default(),
            }),
        };
        if network.state().pool.is_empty() {
            network.fetch_from_registry().await?;
        }
        network.ensure_ready().await?;
        Ok(network)
    }

    /// The pool as plain data, for storing and a later [`NetworkConfig::pool`].
    pub fn pool_snapshot(&self) -> PoolSnapshot {
        self.state().pool.snapshot()
    }

    /// Replaces the pool with a stored one (and rebuilds the paths on the next request).
    pub fn import_pool(&self, snapshot: PoolSnapshot) {
        let mut state = self.state();
        state.pool = NodePool::from_snapshot(snapshot);
        state.paths = PathSet::new();
    }

    /// The current onion paths, guard first (for diagnostics).
    pub fn paths(&self) -> Vec<Vec<ServiceNode>> {
        self.state().paths.paths().iter().map(|p| p.nodes.clone()).collect()
    }

    /// What the layer has done so far.
    pub fn stats(&self) -> NetworkStats {
        let s = &self.inner.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetworkStats {
            onion_requests: get(&s.onion_requests),
            retries: get(&s.retries),
            wrong_swarm_replies: get(&s.wrong_swarm_replies),
            pool_refreshes: get(&s.pool_refreshes),
            registry_fetches: get(&s.registry_fetches),
            clock_resyncs: get(&s.clock_resyncs),
        }
    }

    /// The network's time, Unix milliseconds: the local clock corrected by the offset learnt from
    /// the nodes' `t` fields.
    pub fn network_time_ms(&self) -> u64 {
        self.inner.clock.network_now_ms()
    }

    /// The offset added to the local clock to get the network time, in milliseconds.
    pub fn time_offset_ms(&self) -> i64 {
        self.inner.clock.offset_ms()
    }

    /// Refreshes the pool through the network (network §7.8): asks [`REFRESH_SOURCES`] random
    /// usable nodes for their node list through onion paths and keeps the nodes they all agree
    /// on. On a small network it asks as many as there are (at least two must answer when the
    /// pool has two or more usable nodes). When too few answer, or the agreed list is smaller
    /// than `min_pool_size`, the list is taken from a registry instead (if one is configured).
    pub async fn refresh_pool(&self) -> Result<(), NetworkError> {
        let _one_at_a_time = self.inner.refresh.lock().await;
        self.refresh_pool_locked().await
    }

    /// Takes the node list from a registry (clearing failure counts).
    pub async fn fetch_from_registry(&self) -> Result<(), NetworkError> {
        let _one_at_a_time = self.inner.refresh.lock().await;
        self.fetch_from_registry_locked().await
    }

    // ---- internals ----

    /// [`Self::refresh_pool`] with the refresh lock held.
    async fn refresh_pool_locked(&self) -> Result<(), NetworkError> {
        let sources: Vec<ServiceNode> = {
            let state = self.state();
            let mut usable = state.pool.usable();
            shuffle(&mut usable);
            usable.truncate(REFRESH_SOURCES);
            usable
        };
        let needed = sources.len().min(2);
        let body = rpc_body(
            "oxend_request",
            &json!({"endpoint": "get_service_nodes", "params": service_node_params()}),
        );
        let mut lists = Vec::new();
        let mut last_error = String::from("no usable node to ask");
        for source in &sources {
            match self.onion_request(source, &body).await {
                Ok(reply) if reply.status == 200 => {
                    self.observe_time(&reply.body);
                    match reply.body.get("result").and_then(pool::parse_service_node_states) {
                        Some(list) => lists.push(list),
                        None => last_error = format!("node {} sent no node list", source.short()),
                    }
                }
                Ok(reply) => last_error = format!("node {} answered {}", source.short(), reply.status),
                Err(SendError::Fatal(e)) => return Err(e),
                Err(SendError::Path(e) | SendError::Destination(e)) => last_error = e,
            }
        }
        let agreed = if lists.len() >= needed.max(1) { pool::intersect(&lists) } else { Vec::new() };
        let min = self.inner.config.min_pool_size;
        if agreed.len() >= min.max(path::PATH_LEN + 1) {
            self.inner.stats.pool_refreshes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(nodes = agreed.len(), sources = lists.len(), "node pool refreshed through nodes");
            let now = self.inner.clock.local_now_ms();
            let mut state = self.state();
            state.pool.replace(agreed, now, false);
            return Ok(());
        }
        if !self.inner.config.registry_urls.is_empty() {
            return self.fetch_from_registry_locked().await;
        }
        if !agreed.is_empty() {
            // No registry to fall back on: a small agreed list is still the best knowledge.
            self.inner.stats.pool_refreshes.fetch_add(1, Ordering::Relaxed);
            let now = self.inner.clock.local_now_ms();
            self.state().pool.replace(agreed, now, false);
            return Ok(());
        }
        Err(NetworkError::AllNodesFailed { attempts: sources.len() as u32, last: last_error })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data; keep using it.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn fetch_from_registry_locked(&self) -> Result<(), NetworkError> {
        let urls = self.inner.config.registry_urls.clone();
        if urls.is_empty() {
            return Err(NetworkError::Config("no registry URL configured".into()));
        }
        let request = json!({"jsonrpc": "2.0", "id": 0, "method": "get_n_service_nodes",
            "params": service_node_params()});
        // Every registry at once; the first usable answer wins (network §8.1).
        let mut asks = tokio::task::JoinSet::new();
        for url in urls {
            let (transport, request) = (self.inner.transport.clone(), request.clone());
            asks.spawn(async move {
                let endpoint = format!("{}/json_rpc", url.trim_end_matches('/'));
                let reply = transport.post_json(&endpoint, &request).await;
                (url, reply)
            });
        }
        let mut errors = Vec::new();
        while let Some(joined) = asks.join_next().await {
            let Ok((url, reply)) = joined else { continue };
            match reply {
                Ok(reply) => match reply.get("result").and_then(pool::parse_service_node_states) {
                    Some(nodes) if !nodes.is_empty() => {
                        asks.abort_all();
                        self.inner.stats.registry_fetches.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(nodes = nodes.len(), "node list from a registry");
                        let now = self.inner.clock.local_now_ms();
                        let mut state = self.state();
                        state.pool.replace(nodes, now, true);
                        return Ok(());
                    }
                    Some(_) => errors.push(format!("{url}: the list is empty")),
                    None => errors.push(format!("{url}: no node list in the reply")),
                },
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        Err(NetworkError::Bootstrap(errors.join("; ")))
    }

    /// Before a request: refreshes an expired pool, takes a new list from a registry when too
    /// few nodes are usable, and builds missing paths.
    async fn ensure_ready(&self) -> Result<(), NetworkError> {
        let now = self.inner.clock.local_now_ms();
        let max_age = u64::try_from(self.inner.config.pool_max_age.as_millis()).unwrap_or(u64::MAX);
        if self.state().pool.is_expired(now, max_age) {
            let _one_at_a_time = self.inner.refresh.lock().await;
            // Another request may have refreshed it while this one waited.
            if self.state().pool.is_expired(now, max_age)
                && let Err(e) = self.refresh_pool_locked().await
            {
                tracing::debug!(error = %e, "node pool refresh failed; using the old list");
            }
        }
        let (usable, known) = {
            let state = self.state();
            (state.pool.usable().len(), state.pool.len())
        };
        // Too few usable nodes for a path and a destination: a fresh list from a registry (which
        // also clears failure counts). A pool merely below `min_pool_size` is handled by
        // `refresh_pool`, so that a small network is not fetched before every request.
        if usable <= path::PATH_LEN
            && !self.inner.config.registry_urls.is_empty()
            && let Err(e) = self.fetch_from_registry().await
        {
            tracing::debug!(error = %e, "registry fetch failed");
            return Err(NetworkError::NotEnoughNodes { usable, known });
        }
        let mut state = self.state();
        let State { pool, paths } = &mut *state;
        paths.ensure(pool, &mut rand::rng());
        let usable = pool.usable().len();
        if usable <= path::PATH_LEN || paths.paths().is_empty() {
            return Err(NetworkError::NotEnoughNodes { usable, known: pool.len() });
        }
        Ok(())
    }

    /// Sends `body` (client RPC JSON) to `destination` through an onion path and decrypts the
    /// reply. Path and node failures are recorded here.
    async fn onion_request(&self, destination: &ServiceNode, body: &[u8]) -> Result<InnerReply, SendError> {
        let (path, request) = {
            let mut state = self.state();
            let State { pool, paths } = &mut *state;
            let mut rng = rand::rng();
            paths.ensure(pool, &mut rng);
            let Some(path) = paths.choose(pool, destination, &mut rng) else {
                return Err(SendError::Fatal(NetworkError::NotEnoughNodes {
                    usable: pool.usable().len(),
                    known: pool.len(),
                }));
            };
            let hops: Vec<_> = path.nodes.iter().map(ServiceNode::keys).collect();
            let spec = RequestSpec {
                enc_type: self.inner.config.enc_type,
                path: &hops,
                destination: Destination::Snode {
                    node: destination.keys(),
                    body,
                    options: FinalOptions::default(),
                },
                hop_no: None,
            };
            let request = build_request_random(&spec, &mut rng).map_err(|e| {
                SendError::Fatal(NetworkError::Config(format!("cannot build onion request: {e}")))
            })?;
            (path, request)
        };
        self.inner.stats.onion_requests.fetch_add(1, Ordering::Relaxed);
        let guard = path.guard().clone();
        let reply = self.inner.transport.post_node(&guard, "/onion_req/v2", request.body).await;
        let mut state = self.state();
        let State { pool, paths } = &mut *state;
        if guard.tls.is_none()
            && let Ok((_, _, tls)) = &reply
        {
            // Learnt the guard's scheme: no more HTTPS attempts on an HTTP node.
            pool.set_tls(&guard.ed25519, *tls);
            paths.set_tls(&guard.ed25519, *tls);
        }
        match reply {
            Err(TransportError::Connect(e)) => {
                tracing::debug!(guard = %guard.short(), error = %e, "guard unreachable");
                paths.guard_unreachable(&path, pool);
                Err(SendError::Path(format!("guard {} unreachable: {e}", guard.short())))
            }
            Err(e) => {
                paths.record_failure(&path, pool);
                Err(SendError::Path(format!("via guard {}: {e}", guard.short())))
            }
            Ok((200, body, _)) => {
                let inner =
                    request.response.decrypt_body(&body).ok().and_then(|plain| InnerReply::parse(&plain));
                match inner {
                    Some(inner) => {
                        paths.record_success(path.id);
                        for node in &path.nodes {
                            pool.record_success(&node.ed25519);
                        }
                        Ok(inner)
                    }
                    None => {
                        paths.record_failure(&path, pool);
                        Err(SendError::Path("the reply did not decrypt".into()))
                    }
                }
            }
            Ok((status, body, _)) => {
                let fault = classify_path_reply(status, &body);
                let mut rng = rand::rng();
                match fault {
                    PathFault::NotFound(node) | PathFault::Unreachable(node)
                        if node == destination.ed25519 =>
                    {
                        match fault {
                            PathFault::NotFound(_) => pool.mark_bad(&node),
                            _ => {
                                pool.record_failure(&node);
                            }
                        }
                        Err(SendError::Destination(format!(
                            "node {} unreachable ({status})",
                            destination.short()
                        )))
                    }
                    PathFault::NotFound(node) => {
                        paths.node_not_found(&path, &node, pool, &mut rng);
                        Err(SendError::Path(format!("a hop did not know node {}", hex::encode(&node[..4]))))
                    }
                    PathFault::Unreachable(node) => {
                        paths.node_unreachable(&path, &node, pool, &mut rng);
                        Err(SendError::Path(format!("node {} unreachable", hex::encode(&node[..4]))))
                    }
                    PathFault::Timeout | PathFault::Other => {
                        paths.record_failure(&path, pool);
                        let text: String = String::from_utf8_lossy(&body).chars().take(100).collect();
                        Err(SendError::Path(format!("path failed with {status}: {text}")))
                    }
                }
            }
        }
    }

    /// Sends an RPC to the swarm of `account` with the retry rules of network §7.9. `params` is
    /// called with the network time (ms) for every attempt (signatures carry timestamps).
    /// Returns the body of a 2xx reply.
    async fn swarm_request(
        &self,
        account: &[u8; 33],
        method: &str,
        params: &(dyn Fn(u64) -> Value + Sync),
    ) -> Result<Value, NetworkError> {
        let params = |now: u64, _: &ServiceNode| params(now);
        Ok(self.swarm_request_at(account, method, &params).await?.0)
    }

    /// [`Self::swarm_request`] whose parameters may depend on the member asked (a retrieve's
    /// per-node `last_hash`); returns the reply and the member that gave it.
    async fn swarm_request_at(
        &self,
        account: &[u8; 33],
        method: &str,
        params: &(dyn Fn(u64, &ServiceNode) -> Value + Sync),
    ) -> Result<(Value, ServiceNode), NetworkError> {
        let max_attempts = self.inner.config.max_attempts.max(1);
        let mut tried: HashSet<[u8; 32]> = HashSet::new();
        let mut wrong_swarm = 0u32;
        let mut clock_synced = false;
        let mut failures = 0u32;
        let mut last_error = String::new();
        let mut attempt = 0u32;
        while attempt < max_attempts {
            attempt += 1;
            self.ensure_ready().await?;
            let destination = {
                let state = self.state();
                let members = state.pool.swarm_members(account);
                if members.is_empty() {
                    return Err(NetworkError::NoSwarm);
                }
                let mut open: Vec<ServiceNode> = members
                    .iter()
                    .filter(|n| !state.pool.is_excluded(&n.ed25519) && !tried.contains(&n.ed25519))
                    .cloned()
                    .collect();
                if open.is_empty() {
                    // Every member tried or excluded: start over with those not excluded.
                    tried.clear();
                    open = members.into_iter().filter(|n| !state.pool.is_excluded(&n.ed25519)).collect();
                }
                shuffle(&mut open);
                open.into_iter().next()
            };
            let Some(destination) = destination else {
                last_error = "every member of the swarm is excluded after failures".into();
                // A fresh list (and cleared failure counts) from a registry is the way out.
                if self.inner.config.registry_urls.is_empty() || self.fetch_from_registry().await.is_err() {
                    break;
                }
                continue;
            };
            let body = rpc_body(method, &params(self.network_time_ms(), &destination));
            let mut failed = false;
            match self.onion_request(&destination, &body).await {
                Ok(reply) => match reply_action(reply.status, wrong_swarm, clock_synced) {
                    ReplyAction::Done => {
                        self.observe_time(&reply.body);
                        return Ok((reply.body, destination));
                    }
                    action @ (ReplyAction::OtherMember
                    | ReplyAction::RefreshPool
                    | ReplyAction::GiveUpWrongSwarm) => {
                        self.inner.stats.wrong_swarm_replies.fetch_add(1, Ordering::Relaxed);
                        self.observe_time(&reply.body);
                        wrong_swarm += 1;
                        tracing::debug!(node = %destination.short(), "421: node is not in the account's swarm");
                        match action {
                            ReplyAction::OtherMember => {
                                tried.insert(destination.ed25519);
                            }
                            ReplyAction::RefreshPool => {
                                if let Err(e) = self.refresh_pool().await {
                                    tracing::debug!(error = %e, "pool refresh after 421 failed");
                                }
                                tried.clear();
                            }
                            _ => return Err(NetworkError::WrongSwarm),
                        }
                    }
                    ReplyAction::ResyncClock => {
                        clock_synced = true;
                        if !self.sync_clock(&destination).await {
                            return Err(NetworkError::ClockOutOfSync);
                        }
                        // The resync does not count as an attempt.
                        attempt -= 1;
                    }
                    ReplyAction::GiveUpClock => return Err(NetworkError::ClockOutOfSync),
                    ReplyAction::Reject => {
                        return Err(NetworkError::Rejected { status: reply.status, reason: reply.reason() });
                    }
                    action @ (ReplyAction::Busy | ReplyAction::MemberFailed) => {
                        last_error = format!(
                            "node {} answered {}: {}",
                            destination.short(),
                            reply.status,
                            reply.reason()
                        );
                        if action == ReplyAction::MemberFailed {
                            self.state().pool.record_failure(&destination.ed25519);
                        }
                        tried.insert(destination.ed25519);
                        failed = true;
                    }
                },
                Err(SendError::Fatal(e)) => return Err(e),
                Err(SendError::Destination(e)) => {
                    last_error = e;
                    tried.insert(destination.ed25519);
                    failed = true;
                }
                Err(SendError::Path(e)) => {
                    last_error = e;
                    failed = true;
                }
            }
            if failed {
                failures += 1;
                if attempt < max_attempts {
                    self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(path::retry_delay(failures - 1)).await;
                }
            }
        }
        Err(NetworkError::AllNodesFailed { attempts: attempt, last: last_error })
    }

    /// Asks `node` for its time (`info`) and sets the offset from it; false if it did not answer.
    async fn sync_clock(&self, node: &ServiceNode) -> bool {
        self.inner.stats.clock_resyncs.fetch_add(1, Ordering::Relaxed);
        let body = rpc_body("info", &json!({}));
        match self.onion_request(node, &body).await {
            Ok(reply) if reply.status == 200 => {
                let before = self.inner.clock.offset_ms();
                let seen = self.observe_time(&reply.body);
                tracing::debug!(before, after = self.inner.clock.offset_ms(), "network time resynchronised");
                seen
            }
            _ => false,
        }
    }

    /// Takes the network time from a reply's `t` (or `timestamp`) field.
    fn observe_time(&self, body: &Value) -> bool {
        match body.get("t").or_else(|| body.get("timestamp")).and_then(Value::as_u64) {
            Some(t) => {
                self.inner.clock.observe(t);
                true
            }
            None => false,
        }
    }
}

/// What to do with the RPC status a swarm member answered (network §7.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyAction {
    /// 2xx: done.
    Done,
    /// A first 421: try another member of the cached swarm.
    OtherMember,
    /// A second 421: refresh the pool, recompute the swarm and retry.
    RefreshPool,
    /// A third 421: give up.
    GiveUpWrongSwarm,
    /// A first 406/425: take the network time from the node and retry.
    ResyncClock,
    /// 406/425 after a resync: give up.
    GiveUpClock,
    /// 400, 401, 403, 404, 413: the request itself is refused; the caller gets it, nothing is
    /// blamed.
    Reject,
    /// 429: the member is busy; try another without blaming it.
    Busy,
    /// 5xx and anything else: the member failed; it gets a failure and another is tried.
    MemberFailed,
}

/// The decision for an RPC status, given the 421s seen before and whether the clock was resynced.
fn reply_action(status: u16, wrong_swarm_before: u32, clock_synced: bool) -> ReplyAction {
    match status {
        200..=299 => ReplyAction::Done,
        421 => match wrong_swarm_before {
            0 => ReplyAction::OtherMember,
            1 => ReplyAction::RefreshPool,
            _ => ReplyAction::GiveUpWrongSwarm,
        },
        406 | 425 if clock_synced => ReplyAction::GiveUpClock,
        406 | 425 => ReplyAction::ResyncClock,
        400 | 401 | 403 | 404 | 413 => ReplyAction::Reject,
        429 => ReplyAction::Busy,
        _ => ReplyAction::MemberFailed,
    }
}

/// `get_service_nodes` parameters: active nodes only, the fields the pool needs.
fn service_node_params() -> Value {
    let fields: serde_json::Map<String, Value> =
        NODE_FIELDS.iter().map(|f| ((*f).to_owned(), json!(true))).collect();
    json!({"active_only": true, "fields": fields})
}

/// `{"method": m, "params": p}` as bytes.
fn rpc_body(method: &str, params: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"method": method, "params": params})).unwrap_or_default()
}

fn shuffle<T>(items: &mut [T]) {
    use rand::seq::SliceRandom as _;
    items.shuffle(&mut rand::rng());
}

#[cfg(test)]
mod tests {
    use session_protocol::IdentityKey;

    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// The request futures can be spawned on a multi-threaded runtime (never run).
    #[allow(dead_code)]
    fn futures_are_send(
        network: &Network,
        key: &IdentityKey,
        message: &StoreRequest,
        request: &RetrieveRequest,
    ) {
        assert_send(network.store(key, message));
        assert_send(network.retrieve(key, request));
        assert_send(network.refresh_pool());
        assert_send(Network::bootstrap(NetworkConfig::new(["http://127.0.0.1:1"])));
    }

    #[test]
    fn reply_statuses_map_to_the_documented_actions() {
        use ReplyAction::*;
        assert_eq!(reply_action(200, 0, false), Done);
        assert_eq!(reply_action(421, 0, false), OtherMember);
        assert_eq!(reply_action(421, 1, false), RefreshPool);
        assert_eq!(reply_action(421, 2, false), GiveUpWrongSwarm);
        assert_eq!(reply_action(406, 0, false), ResyncClock);
        assert_eq!(reply_action(425, 0, false), ResyncClock);
        assert_eq!(reply_action(406, 0, true), GiveUpClock);
        for status in [400, 401, 403, 404, 413] {
            assert_eq!(reply_action(status, 0, false), Reject);
        }
        assert_eq!(reply_action(429, 0, false), Busy);
        for status in [500, 502, 503, 504, 418] {
            assert_eq!(reply_action(status, 0, false), MemberFailed);
        }
    }

    #[tokio::test]
    async fn bootstrap_needs_a_registry_or_a_pool() {
        let err = Network::bootstrap(NetworkConfig::new(Vec::<String>::new())).await.unwrap_err();
        assert!(matches!(err, NetworkError::Config(_)));
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_a_bootstrap_error() {
        // Port 1 on loopback: nothing listens.
        let mut config = NetworkConfig::new(["http://127.0.0.1:1"]);
        config.request_timeout = Duration::from_secs(5);
        let err = Network::bootstrap(config).await.unwrap_err();
        assert!(matches!(err, NetworkError::Bootstrap(_)), "{err}");
    }
}
