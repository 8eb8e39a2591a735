//! Whole networks end to end: a real `session-registry` and real `session-node` processes on
//! 127.0.0.1 that register, heartbeat, follow the verified epoch chain and move data on every
//! list change (`docs/registry.md`, network §6.1 and §6.5, `docs/node-channel.md` §7–§8).
//!
//! Every test counts the messages it had acknowledged and checks that none is lost: each one is
//! retrievable from every current member of its account's swarm, and every other running node
//! answers 421 naming exactly those members (no redirect loops for accounts whose swarm moved).
//!
//! * nodes join one at a time up to 14: after each join the published swarms are what replaying
//!   the chain computes, every swarm has at least 5 members once there are 5 nodes, and at 14 the
//!   one swarm splits in two; messages stored along the way are served by their new swarms;
//! * a stopped node is decommissioned; when its swarm falls below 5 a node of the other swarm is
//!   moved in (Robin Hood) and serves every message of its new swarm (healing time printed);
//! * a member killed briefly (not long enough to be decommissioned) misses writes and serves all
//!   of them after its restart; one killed past the decommission delay is decommissioned, then
//!   recommissioned after its restart, and serves every message too;
//! * a registry killed and restarted on the same port and data dir serves the same key, height,
//!   block hash and list; the nodes serve throughout and follow it afterwards.
//!
//! The tests run one at a time (each starts up to 14 processes on a small machine).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use session_protocol::IdentityKey;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::SignableRequest;
use session_protocol::swarm::{SwarmId, new_swarm_id, swarm_for_pubkey};
use session_registry::chain::{Epoch, Event, State};
use support::{RealNode, Registry, http, now_ms, random_key};

/// Upper bound for any one condition a test waits for (the machine is shared and busy).
const WAIT: Duration = Duration::from_secs(60);
/// Namespaces written: the public inbox (unsigned stores) and a signed config namespace.
const NAMESPACES: [i16; 2] = [0, 2];
/// Message TTL: longer than any test.
const TTL_MS: u64 = 3_600_000;
/// Not in a swarm (decommissioned).
const NO_SWARM: u64 = u64::MAX;
/// oxend's minimum swarm size (network §6.1).
const MIN_SWARM_SIZE: usize = 5;

/// The tests start many processes each: one network at a time.
static ONE_NETWORK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `check` every 200 ms until it returns `Ok`, for at most [`WAIT`]; on timeout panics with
/// `what` and the last reason `check` gave.
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => {
                panic!("timed out after {WAIT:?} waiting for {what}; last: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}

// ---------------------------------------------------------------------------------------------
// Accounts and messages.

/// A Session account (05 prefix) with its key.
#[derive(Debug, Clone)]
struct Account {
    key: IdentityKey,
    pubkey: [u8; 33],
    hex: String,
}

impl Account {
    fn random() -> Self {
        let key = random_key();
        let mut pubkey = [0u8; 33];
        pubkey[0] = 0x05;
        pubkey[1..].copy_from_slice(key.x25519_public());
        Self { hex: hex::encode(pubkey), pubkey, key }
    }

    /// A fresh account that swarms `ids` put in `swarm`.
    fn in_swarm(swarm: SwarmId, ids: &[SwarmId]) -> Self {
        loop {
            let account = Self::random();
            if account.swarm(ids) == Some(swarm) {
                return account;
            }
        }
    }

    fn swarm(&self, ids: &[SwarmId]) -> Option<SwarmId> {
        swarm_for_pubkey(&self.pubkey, ids)
    }

    fn store_params(&self, namespace: i16, data: &[u8], timestamp: u64) -> Value {
        let mut p =
            json!({"pubkey": self.hex, "timestamp": timestamp, "ttl": TTL_MS, "data": B64.encode(data)});
        if namespace != 0 {
            p["namespace"] = json!(namespace);
        }
        if Namespace(namespace).store_requires_auth() {
            let sig = SignableRequest::Store { namespace: Namespace(namespace), sig_timestamp: timestamp }
                .sign(&self.key);
            p["signature"] = json!(B64.encode(sig));
            p["pubkey_ed25519"] = json!(hex::encode(self.key.ed25519_public()));
        }
        p
    }

    fn retrieve_params(&self, namespace: i16) -> Value {
        let timestamp = now_ms();
        let sig = SignableRequest::Retrieve { namespace: Namespace(namespace), timestamp }.sign(&self.key);
        let mut p = json!({
            "pubkey": self.hex,
            "timestamp": timestamp,
            "signature": B64.encode(sig),
            "pubkey_ed25519": hex::encode(self.key.ed25519_public()),
        });
        if namespace != 0 {
            p["namespace"] = json!(namespace);
        }
        p
    }
}

/// A stored message as retrieve shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Msg {
    namespace: i16,
    hash: String,
    data: String,
}

/// One storage RPC call to `addr`: status and JSON body (`Null` if not JSON).
async fn storage_rpc(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    method: &str,
    params: &Value,
) -> Result<(u16, Value), String> {
    let reply = client
        .post(format!("http://{addr}/storage_rpc/v1"))
        .body(json!({"method": method, "params": params}).to_string())
        .send()
        .await
        .map_err(|e| format!("{method} to {addr}: {e}"))?;
    let status = reply.status().as_u16();
    let body = reply.bytes().await.map_err(|e| format!("{method} to {addr}: {e}"))?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Everything `addr` serves for `account` in [`NAMESPACES`]; `Err` with the status and body of
/// the first refusal or the transport error.
async fn served(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    account: &Account,
) -> Result<BTreeSet<Msg>, String> {
    let mut seen = BTreeSet::new();
    for namespace in NAMESPACES {
        let (status, body) =
            storage_rpc(client, addr, "retrieve", &account.retrieve_params(namespace)).await?;
        if status != 200 {
            return Err(format!("retrieve ns {namespace}: HTTP {status} {body}"));
        }
        assert_ne!(body["more"], json!(true), "the tests stay within one retrieve page");
        for m in body["messages"].as_array().into_iter().flatten() {
            seen.insert(Msg {
                namespace,
                hash: m["hash"].as_str().unwrap_or_default().to_owned(),
                data: m["data"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    Ok(seen)
}

// ---------------------------------------------------------------------------------------------
// What the registry publishes.

/// A node list: height, block hash, and `pubkey_ed25519 → (swarm_id, active)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    height: u64,
    block_hash: String,
    nodes: BTreeMap<String, (u64, bool)>,
}

impl Snapshot {
    fn from_state(state: &State) -> Self {
        Self {
            height: state.height().unwrap_or_default(),
            block_hash: state.block_hash().map(hex::encode).unwrap_or_default(),
            nodes: state
                .nodes()
                .iter()
                .map(|(key, entry)| (hex::encode(key), (entry.swarm_id.0, entry.active)))
                .collect(),
        }
    }

    /// The ids of the swarms with active members, ascending.
    fn swarm_ids(&self) -> Vec<SwarmId> {
        let ids: BTreeSet<u64> =
            self.nodes.values().filter(|(s, active)| *active && *s != NO_SWARM).map(|(s, _)| *s).collect();
        ids.into_iter().map(SwarmId).collect()
    }

    /// Members of `swarm` (active), by key.
    fn members(&self, swarm: u64) -> BTreeSet<String> {
        self.nodes.iter().filter(|(_, (s, active))| *active && *s == swarm).map(|(k, _)| k.clone()).collect()
    }

    /// Swarm id → member count.
    fn sizes(&self) -> BTreeMap<u64, usize> {
        self.swarm_ids().into_iter().map(|id| (id.0, self.members(id.0).len())).collect()
    }

    fn swarm_of(&self, node: &str) -> u64 {
        self.nodes.get(node).map_or(NO_SWARM, |(s, _)| *s)
    }

    /// `key → swarm` as a node's `get_service_nodes` shows it.
    fn swarms(&self) -> BTreeMap<String, u64> {
        self.nodes.iter().map(|(k, (s, _))| (k.clone(), *s)).collect()
    }
}

/// A running network: the registry, its nodes, and the messages acknowledged so far.
struct Net {
    dir: tempfile::TempDir,
    registry: Registry,
    registry_extra: Vec<String>,
    nodes: Vec<RealNode>,
    /// Keys of the nodes that are killed right now.
    down: BTreeSet<String>,
    node_extra: Vec<String>,
    client: reqwest::Client,
    accounts: Vec<Account>,
    /// Per account (same index): every message a store acknowledged.
    written: Vec<BTreeSet<Msg>>,
}

impl Net {
    /// A registry with `registry_extra` flags (after the fast test timings); nodes will get
    /// `node_extra` flags.
    fn start(registry_extra: &[&str], node_extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start(&dir.path().join("registry"), registry_extra);
        Self {
            dir,
            registry,
            registry_extra: registry_extra.iter().map(|s| s.to_string()).collect(),
            nodes: Vec::new(),
            down: BTreeSet::new(),
            node_extra: node_extra.iter().map(|s| s.to_string()).collect(),
            client: http(),
            accounts: Vec::new(),
            written: Vec::new(),
        }
    }

    /// Starts one more node following the registry; returns its key.
    fn add_node(&mut self) -> String {
        let pubkey = hex::encode(self.registry.pubkey);
        let mut args: Vec<&str> = vec![
            "--registry-url",
            &self.registry.url,
            "--registry-pubkey",
            &pubkey,
            "--registry-heartbeat-secs",
            "1",
            // Every client of these tests, and every peer, is 127.0.0.1.
            "--rate",
            "0",
            "--sync-retry-ms",
            "200",
        ];
        args.extend(self.node_extra.iter().map(String::as_str));
        let data_dir = self.dir.path().join(format!("n{}", self.nodes.len()));
        let node = RealNode::start_with_args(&data_dir, &args);
        let key = node.hex();
        self.nodes.push(node);
        key
    }

    fn node(&self, key: &str) -> &RealNode {
        self.nodes.iter().find(|n| n.hex() == key).unwrap_or_else(|| panic!("no node {}", short(key)))
    }

    fn node_mut(&mut self, key: &str) -> &mut RealNode {
        self.nodes.iter_mut().find(|n| n.hex() == key).unwrap_or_else(|| panic!("no node {}", short(key)))
    }

    fn running(&self) -> impl Iterator<Item = &RealNode> {
        self.nodes.iter().filter(|n| !self.down.contains(&n.hex()))
    }

    async fn kill(&mut self, key: &str) {
        self.node_mut(key).kill().await;
        self.down.insert(key.to_owned());
    }

    fn restart(&mut self, key: &str) {
        self.node_mut(key).restart();
        self.down.remove(key);
    }

    /// A JSON-RPC call to the registry; `Err` if it is unreachable or answers an error.
    async fn registry_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply = self
            .client
            .post(format!("{}/json_rpc", self.registry.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("registry {method}: {e}"))?;
        let bytes = reply.bytes().await.map_err(|e| format!("registry {method}: {e}"))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("registry {method}: {e}"))?;
        value.get("result").cloned().ok_or_else(|| format!("registry {method}: {value}"))
    }

    /// The registry's `get_service_nodes`.
    async fn published(&self) -> Result<Snapshot, String> {
        let result = self.registry_rpc("get_service_nodes", json!({})).await?;
        let nodes = result["service_node_states"]
            .as_array()
            .ok_or("no service_node_states")?
            .iter()
            .map(|n| {
                let key = n["pubkey_ed25519"].as_str().unwrap_or_default().to_owned();
                (key, (n["swarm_id"].as_u64().unwrap_or_default(), n["active"] == json!(true)))
            })
            .collect();
        Ok(Snapshot {
            height: result["height"].as_u64().ok_or("no height")?,
            block_hash: result["block_hash"].as_str().ok_or("no block_hash")?.to_owned(),
            nodes,
        })
    }

    /// Every epoch the registry serves (`get_epochs`, page by page).
    async fn epochs(&self) -> Result<Vec<Epoch>, String> {
        let mut epochs: Vec<Epoch> = Vec::new();
        loop {
            let result =
                self.registry_rpc("get_epochs", json!({"from": epochs.len(), "limit": 1000})).await?;
            let page: Vec<Epoch> =
                serde_json::from_value(result["epochs"].clone()).map_err(|e| format!("epochs: {e}"))?;
            if page.is_empty() {
                return Ok(epochs);
            }
            epochs.extend(page);
        }
    }

    /// What `State::replay` of the registry's chain computes (verified with the registry key).
    async fn replayed(&self) -> Result<Snapshot, String> {
        let epochs = self.epochs().await?;
        let state = State::replay(self.registry.pubkey, &epochs)
            .unwrap_or_else(|e| panic!("the registry's chain does not replay: {e}"));
        Ok(Snapshot::from_state(&state))
    }

    /// Waits until the registry publishes a list that passes `expect`, that list is exactly what
    /// replaying its chain computes, and every running node serves it.
    async fn settle<E>(&self, what: &str, expect: E) -> Snapshot
    where
        E: Fn(&Snapshot) -> Result<(), String>,
    {
        let expect = &expect;
        poll(what, || async move {
            let published = self.published().await?;
            expect(&published)?;
            let replayed = self.replayed().await?;
            if replayed.height != published.height {
                return Err("the registry published a new epoch between two calls".into());
            }
            assert_eq!(replayed, published, "the published list is not what replaying the chain computes");
            let swarms = published.swarms();
            for node in self.running() {
                let view = node_view(&self.client, node).await?;
                if view != swarms {
                    return Err(format!("node {} serves another list", short(&node.hex())));
                }
            }
            Ok(published)
        })
        .await
    }

    /// Adds `accounts` to the accounts the test writes for.
    fn add_accounts(&mut self, accounts: impl IntoIterator<Item = Account>) {
        for account in accounts {
            self.accounts.push(account);
            self.written.push(BTreeSet::new());
        }
    }

    /// Stores `per_namespace` messages in each of [`NAMESPACES`] for every account, through the
    /// running members of its swarm in `list` in turn; records what was acknowledged.
    async fn write(&mut self, list: &Snapshot, per_namespace: usize, tag: &str) {
        let ids = list.swarm_ids();
        for i in 0..self.accounts.len() {
            let account = self.accounts[i].clone();
            let swarm = account.swarm(&ids).expect("an account has a swarm");
            let members: Vec<String> =
                list.members(swarm.0).into_iter().filter(|k| !self.down.contains(k)).collect();
            assert!(!members.is_empty(), "no running member of swarm {:x}", swarm.0);
            for namespace in NAMESPACES {
                for k in 0..per_namespace {
                    let via = self.node(&members[(i + k) % members.len()]);
                    let data = format!("{tag}: account {i} ns {namespace} message {k}").into_bytes();
                    let params = account.store_params(namespace, &data, now_ms());
                    let (status, body) = storage_rpc(&self.client, via.addr, "store", &params)
                        .await
                        .unwrap_or_else(|e| panic!("{e}\n{}", via.logs()));
                    assert_eq!(status, 200, "store through {}: {body}", short(&via.hex()));
                    self.written[i].insert(Msg {
                        namespace,
                        hash: MessageHash::compute(&account.pubkey, Namespace(namespace), &data)
                            .as_str()
                            .to_owned(),
                        data: B64.encode(&data),
                    });
                }
            }
        }
    }

    fn acknowledged(&self) -> usize {
        self.written.iter().map(BTreeSet::len).sum()
    }

    /// Waits until every running member of each account's swarm in `list` serves exactly the
    /// account's acknowledged messages, and checks that every other running node answers 421
    /// naming exactly that swarm's members.
    async fn assert_no_loss(&self, list: &Snapshot, what: &str) {
        let ids = list.swarm_ids();
        let mut checks = 0;
        for (i, account) in self.accounts.iter().enumerate() {
            let swarm = account.swarm(&ids).expect("an account has a swarm").0;
            let members = list.members(swarm);
            for node in self.running().filter(|n| members.contains(&n.hex())) {
                let expected = &self.written[i];
                poll(
                    &format!(
                        "{what}: node {} serving the {} messages of account {i} (swarm {swarm:x})",
                        short(&node.hex()),
                        expected.len()
                    ),
                    || async {
                        let got = served(&self.client, node.addr, account).await?;
                        if &got == expected {
                            return Ok(());
                        }
                        let missing = expected.difference(&got).count();
                        let extra = got.difference(expected).count();
                        Err(format!("{missing} missing, {extra} unexpected"))
                    },
                )
                .await;
                checks += 1;
            }
            // The rest redirect to exactly the swarm's members: one hop, no loop.
            for node in self.running().filter(|n| !members.contains(&n.hex())) {
                let (status, body) =
                    storage_rpc(&self.client, node.addr, "retrieve", &account.retrieve_params(0))
                        .await
                        .unwrap_or_else(|e| panic!("{e}\n{}", node.logs()));
                assert_eq!(
                    status,
                    421,
                    "{what}: node {} outside swarm {swarm:x}: {body}",
                    short(&node.hex())
                );
                let named: BTreeSet<String> = body["snodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["pubkey_ed25519"].as_str().map(str::to_owned))
                    .collect();
                assert_eq!(
                    named,
                    members,
                    "{what}: the 421 of node {} names another swarm",
                    short(&node.hex())
                );
                assert_eq!(body["swarm"], json!(format!("{swarm:x}")));
            }
        }
        // Count what each node holds: exactly the messages of its swarm's accounts (hand-offs
        // deleted the copies of accounts that moved away; a node outside every swarm holds none).
        let mut held = 0;
        for node in self.running() {
            let swarm = list.swarm_of(&node.hex());
            let expected: u64 = self
                .accounts
                .iter()
                .zip(&self.written)
                .filter(|(account, _)| swarm != NO_SWARM && account.swarm(&ids) == Some(SwarmId(swarm)))
                .map(|(_, written)| written.len() as u64)
                .sum();
            let count =
                poll(&format!("{what}: node {} holding {expected} messages", short(&node.hex())), || async {
                    let count = stored_count(&self.client, node).await?;
                    if count == expected { Ok(count) } else { Err(format!("it holds {count}")) }
                })
                .await;
            held += count;
        }
        eprintln!(
            "{what}: {} acknowledged messages of {} accounts; every one served by every member of its \
             swarm ({checks} member checks), none lost; {held} copies held by {} running nodes",
            self.acknowledged(),
            self.accounts.len(),
            self.running().count()
        );
    }
}

/// A node's own `get_service_nodes` answer: `key → swarm_id`.
async fn node_view(client: &reqwest::Client, node: &RealNode) -> Result<BTreeMap<String, u64>, String> {
    let (status, body) = storage_rpc(client, node.addr, "get_service_nodes", &json!({})).await?;
    if status != 200 {
        return Err(format!("node {} get_service_nodes: HTTP {status}", short(&node.hex())));
    }
    Ok(body["result"]["service_node_states"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["pubkey_ed25519"].as_str()?.to_owned(), n["swarm_id"].as_u64()?)))
        .collect())
}

/// The `session_node_messages` gauge of `node` (messages in its store).
async fn stored_count(client: &reqwest::Client, node: &RealNode) -> Result<u64, String> {
    let reply = client
        .get(format!("http://{}/metrics", node.addr))
        .send()
        .await
        .map_err(|e| format!("metrics: {e}"))?;
    let text = reply.text().await.map_err(|e| format!("metrics: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("session_node_messages ")?.trim().parse().ok())
        .ok_or_else(|| "no session_node_messages in /metrics".to_owned())
}

/// `Ok` when the list has exactly `n` nodes, all active and in a swarm, and every swarm has at
/// least [`MIN_SWARM_SIZE`] members once there are that many nodes.
fn all_active(list: &Snapshot, n: usize) -> Result<(), String> {
    if list.nodes.len() != n {
        return Err(format!("{} of {n} nodes listed", list.nodes.len()));
    }
    if let Some((key, _)) = list.nodes.iter().find(|(_, (s, active))| !active || *s == NO_SWARM) {
        return Err(format!("node {} not active in a swarm", short(key)));
    }
    let sizes = list.sizes();
    if n >= MIN_SWARM_SIZE && sizes.values().any(|&s| s < MIN_SWARM_SIZE) {
        return Err(format!("a swarm below {MIN_SWARM_SIZE} members: {sizes:?}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_one_by_one_and_the_swarm_splits_at_fourteen() {
    let _one = ONE_NETWORK_AT_A_TIME.lock().await;
    let mut net = Net::start(&[], &[]);

    // Accounts for both halves of the split to come: the first swarm gets oxend's first id and
    // the second the id oxend gives the next swarm.
    let first = new_swarm_id(&[]);
    let second = new_swarm_id(&[first]);
    let future = [first, second];
    net.add_accounts((0..8).map(|i| Account::in_swarm(future[i % 2], &future)));

    let mut list: Option<Snapshot> = None;
    let mut before_split = None;
    for n in 1..=14 {
        let started = Instant::now();
        let key = net.add_node();
        let settled = net.settle(&format!("{n} nodes in swarms"), |l| all_active(l, n)).await;
        let sizes = settled.sizes();
        eprintln!("{n} nodes ({}): swarms {sizes:x?} after {:?}", short(&key), started.elapsed());
        if n < 14 {
            assert_eq!(sizes.len(), 1, "{n} nodes: one swarm until the excess allows a second: {sizes:?}");
        }
        if [1, 4, 7, 10, 13].contains(&n) {
            net.write(&settled, 1, &format!("with {n} nodes")).await;
        }
        before_split = list.replace(settled);
    }
    let list = list.expect("fourteen nodes");
    let before_split = before_split.expect("thirteen nodes");
    let sizes = list.sizes();
    assert_eq!(sizes.len(), 2, "fourteen nodes split into two swarms: {sizes:?}");
    assert!(sizes.values().all(|&s| s >= MIN_SWARM_SIZE), "{sizes:?}");
    let ids = list.swarm_ids();
    let old = before_split.swarm_ids();
    assert!(ids.contains(&old[0]), "the old swarm {:x} is one of the two", old[0].0);
    let moved = net.accounts.iter().filter(|a| a.swarm(&ids) != a.swarm(&old)).count();
    eprintln!("split: {moved} of {} accounts moved to the new swarm", net.accounts.len());
    assert!(moved > 0 && moved < net.accounts.len(), "the accounts are spread over both swarms");
    net.assert_no_loss(&list, "after the split").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_is_decommissioned_and_its_swarm_refilled() {
    let _one = ONE_NETWORK_AT_A_TIME.lock().await;
    let mut net = Net::start(&[], &[]);
    for _ in 0..14 {
        net.add_node();
    }
    let list = net
        .settle("14 nodes in two swarms", |l| {
            all_active(l, 14)?;
            if l.sizes().len() == 2 { Ok(()) } else { Err(format!("swarms {:x?}", l.sizes())) }
        })
        .await;
    let ids = list.swarm_ids();
    for &id in &ids {
        net.add_accounts((0..3).map(|_| Account::in_swarm(id, &ids)));
    }
    net.write(&list, 2, "before the stop").await;
    net.assert_no_loss(&list, "two swarms").await;

    // Shrink swarm A to the minimum: those nodes are decommissioned, nothing else changes.
    let sizes = list.sizes();
    let (&a, &b) = (sizes.keys().next().unwrap(), sizes.keys().nth(1).unwrap());
    let a_members: Vec<String> = list.members(a).into_iter().collect();
    let b_members = list.members(b);
    let (extra, last) = a_members.split_at(a_members.len() - MIN_SWARM_SIZE);
    for key in extra {
        net.kill(key).await;
    }
    let shrunk = net
        .settle("the first stopped nodes decommissioned", |l| {
            for key in extra {
                if l.nodes.get(key) != Some(&(NO_SWARM, false)) {
                    return Err(format!("node {} still {:?}", short(key), l.nodes.get(key)));
                }
            }
            Ok(())
        })
        .await;
    assert_eq!(shrunk.members(a).len(), MIN_SWARM_SIZE, "{:x?}", shrunk.sizes());
    assert_eq!(shrunk.members(b), b_members, "swarm B untouched while A keeps {MIN_SWARM_SIZE}");

    // One more of A stops: A falls below the minimum and takes a node from B.
    let stopped = last[0].clone();
    let t0 = Instant::now();
    net.kill(&stopped).await;
    // Writes go on while the dead member is still listed (it is decommissioned only later).
    net.write(&shrunk, 1, "while a member of A is down").await;
    let healed = net
        .settle("the stopped node decommissioned and swarm A refilled", |l| {
            if l.nodes.get(&stopped) != Some(&(NO_SWARM, false)) {
                return Err(format!("stopped node still {:?}", l.nodes.get(&stopped)));
            }
            all_active_except(l, &net.down)
        })
        .await;
    let published_after = t0.elapsed();
    let sizes = healed.sizes();
    assert_eq!(sizes.len(), 2, "still two swarms: {sizes:x?}");
    let moved_in: Vec<String> = healed.members(a).into_iter().filter(|k| b_members.contains(k)).collect();
    assert_eq!(moved_in.len(), 1, "one node of B moved to A (Robin Hood): {sizes:x?}");
    assert_eq!(healed.members(a).len(), MIN_SWARM_SIZE);
    assert_eq!(healed.members(b).len(), b_members.len() - 1);
    let mover = net.node(&moved_in[0]);
    for (i, account) in net.accounts.iter().enumerate() {
        if account.swarm(&healed.swarm_ids()) != Some(SwarmId(a)) {
            continue;
        }
        poll(&format!("the node moved into A serving account {i}"), || async {
            let got = served(&net.client, mover.addr, account).await?;
            if got == net.written[i] {
                Ok(())
            } else {
                Err(format!("{} of {}", got.len(), net.written[i].len()))
            }
        })
        .await;
    }
    let healing = t0.elapsed();
    eprintln!(
        "swarm healing: node stopped -> refill published after {published_after:?} -> the moved node \
         serves every message of its new swarm after {healing:?} (decommission after 6 s)"
    );
    net.assert_no_loss(&healed, "after the refill").await;
}

/// `Ok` when every node not in `down` is active in a swarm and every swarm has at least
/// [`MIN_SWARM_SIZE`] members.
fn all_active_except(list: &Snapshot, down: &BTreeSet<String>) -> Result<(), String> {
    for (key, (swarm, active)) in &list.nodes {
        if !down.contains(key) && (!active || *swarm == NO_SWARM) {
            return Err(format!("node {} not active in a swarm", short(key)));
        }
    }
    let sizes = list.sizes();
    if sizes.values().any(|&s| s < MIN_SWARM_SIZE) {
        return Err(format!("a swarm below {MIN_SWARM_SIZE} members: {sizes:x?}"));
    }
    Ok(())
}

/// Keys of the nodes decommissioned by any epoch of `epochs`.
fn decommissioned(epochs: &[Epoch]) -> BTreeSet<String> {
    epochs
        .iter()
        .flat_map(|e| e.parse_events().expect("events parse"))
        .filter_map(|event| match event {
            Event::Decommission { node } => Some(hex::encode(node.pubkey_ed25519)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_catches_up_on_writes_it_missed() {
    let _one = ONE_NETWORK_AT_A_TIME.lock().await;
    // Short outage: the registry decommissions after 30 s of silence here, far longer than the
    // node stays down, so the node stays a member and must catch up by itself (anti-entropy 2 s).
    let mut net = Net::start(&["--decommission-after", "30"], &["--anti-entropy-secs", "2"]);
    for _ in 0..5 {
        net.add_node();
    }
    let list = net.settle("five nodes in one swarm", |l| all_active(l, 5)).await;
    let swarm = list.swarm_ids()[0];
    net.add_accounts((0..4).map(|_| Account::in_swarm(swarm, &[swarm])));
    net.write(&list, 2, "before the outage").await;
    net.assert_no_loss(&list, "before the outage").await;
    let before = net.acknowledged();

    let victim = list.members(swarm.0).into_iter().next().unwrap();
    let t0 = Instant::now();
    net.kill(&victim).await;
    net.write(&list, 3, "during the outage").await;
    let missed = net.acknowledged() - before;
    net.restart(&victim);
    let down_for = t0.elapsed();
    let restarted = Instant::now();
    let node = net.node(&victim);
    for (i, account) in net.accounts.iter().enumerate() {
        poll(&format!("the restarted node serving account {i}"), || async {
            let got = served(&net.client, node.addr, account).await?;
            if got == net.written[i] {
                Ok(())
            } else {
                Err(format!("{} of {}", got.len(), net.written[i].len()))
            }
        })
        .await;
    }
    eprintln!(
        "catch-up: node down {down_for:?} ({missed} messages written meanwhile); serves all {} \
         messages {:?} after its restart",
        net.acknowledged(),
        restarted.elapsed()
    );
    net.down.clear();
    let after = net.settle("the list unchanged after the restart", |l| all_active(l, 5)).await;
    assert_eq!(after, list, "a short outage changes nothing in the list");
    assert!(
        !decommissioned(&net.epochs().await.unwrap()).contains(&victim),
        "the node was down too briefly to be decommissioned"
    );
    net.assert_no_loss(&after, "after the restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restart_changes_nothing() {
    let _one = ONE_NETWORK_AT_A_TIME.lock().await;
    let mut net = Net::start(&[], &[]);
    for _ in 0..5 {
        net.add_node();
    }
    let list = net.settle("five nodes in one swarm", |l| all_active(l, 5)).await;
    let swarm = list.swarm_ids()[0];
    net.add_accounts((0..4).map(|_| Account::in_swarm(swarm, &[swarm])));
    net.write(&list, 2, "before the registry restart").await;
    let pubkey = net.registry.pubkey;
    let epochs_before = net.epochs().await.unwrap();

    // kill -9; the nodes keep serving and storing from their verified list.
    net.registry.kill();
    net.assert_no_loss(&list, "registry down").await;
    net.write(&list, 1, "while the registry is down").await;
    net.assert_no_loss(&list, "registry down, after more writes").await;

    // Same port, same data dir: same key, height, block hash and list.
    let addr = net.registry.addr().to_owned();
    let extra: Vec<&str> = net.registry_extra.iter().map(String::as_str).collect();
    let data_dir = net.registry.data_dir.clone();
    let restarted_at = now_ms();
    net.registry = Registry::start_on(&addr, &data_dir, &extra);
    assert_eq!(net.registry.pubkey, pubkey, "the registry kept its key");
    let published = net.published().await.unwrap();
    assert_eq!(published, list, "same height, block hash and list right after the restart");
    assert_eq!(net.epochs().await.unwrap(), epochs_before, "the same chain");

    // The nodes find it again (their heartbeats arrive) and nothing changes.
    poll("every node heartbeating to the restarted registry", || async {
        let result = net.registry_rpc("get_service_nodes", json!({})).await?;
        let states = result["service_node_states"].as_array().cloned().unwrap_or_default();
        let late = states
            .iter()
            .filter(|n| n["last_uptime_proof"].as_u64().unwrap_or(0) * 1000 < restarted_at)
            .count();
        if late == 0 { Ok(()) } else { Err(format!("{late} nodes not heard from since the restart")) }
    })
    .await;
    assert_eq!(net.published().await.unwrap(), list, "heartbeats after the restart change nothing");

    // The nodes follow it: a node added now joins, and everyone serves the new list.
    let joined = net.add_node();
    let grown = net.settle("the sixth node joined after the registry restart", |l| all_active(l, 6)).await;
    assert_eq!(grown.swarm_of(&joined), swarm.0, "one swarm of six");
    let epochs = net.epochs().await.unwrap();
    assert_eq!(&epochs[..epochs_before.len()], &epochs_before[..], "the chain only grew");
    for epoch in &epochs[epochs_before.len()..] {
        for event in epoch.parse_events().unwrap() {
            assert_eq!(hex::encode(event.node_key()), joined, "only the new node changed: {event:?}");
        }
    }
    net.assert_no_loss(&grown, "after the registry restart and a join").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_long_enough_to_be_decommissioned_rejoins_with_every_message() {
    let _one = ONE_NETWORK_AT_A_TIME.lock().await;
    // Long outage: past the registry's 6 s, so the node is decommissioned while down and
    // recommissioned (assigned like a new node) after its restart.
    let mut net = Net::start(&[], &["--anti-entropy-secs", "2"]);
    for _ in 0..6 {
        net.add_node();
    }
    let list = net.settle("six nodes in one swarm", |l| all_active(l, 6)).await;
    let swarm = list.swarm_ids()[0];
    net.add_accounts((0..4).map(|_| Account::in_swarm(swarm, &[swarm])));
    net.write(&list, 2, "before the outage").await;
    net.assert_no_loss(&list, "before the long outage").await;

    let victim = list.members(swarm.0).into_iter().next().unwrap();
    let t0 = Instant::now();
    net.kill(&victim).await;
    net.write(&list, 1, "down, still listed").await;
    let shrunk = net
        .settle("the stopped node decommissioned", |l| {
            if l.nodes.get(&victim) == Some(&(NO_SWARM, false)) { Ok(()) } else { Err("still listed".into()) }
        })
        .await;
    assert_eq!(shrunk.members(swarm.0).len(), 5, "{:x?}", shrunk.sizes());
    net.write(&shrunk, 1, "down, decommissioned").await;
    net.assert_no_loss(&shrunk, "while decommissioned").await;

    net.restart(&victim);
    let restarted = Instant::now();
    let back = net.settle("the restarted node recommissioned", |l| all_active(l, 6)).await;
    net.assert_no_loss(&back, "after the recommission").await;
    eprintln!(
        "long outage: down {:?}; recommissioned and serving every message {:?} after its restart",
        restarted - t0,
        restarted.elapsed()
    );
    let events: Vec<String> = net
        .epochs()
        .await
        .unwrap()
        .iter()
        .flat_map(|e| e.parse_events().unwrap())
        .filter(|e| hex::encode(e.node_key()) == victim)
        .map(|e| e.kind().to_owned())
        .collect();
    assert_eq!(events, ["register", "decommission", "recommission"], "the victim's history");
}
