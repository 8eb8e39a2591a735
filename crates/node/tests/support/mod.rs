//! Test support: real `session-node` processes on loopback, for the multi-process tests
//! (`tests/cluster.rs`, `tests/crash.rs`) and the load generator (`benches/loadgen.rs`).
//!
//! A [`Cluster`] gives every node a temporary data directory holding a `node.key` made from a
//! known seed, so the node list (one JSON file shared by all nodes) can be written before any node
//! starts. Ports are reserved by binding `127.0.0.1:0` and releasing the socket just before the
//! node starts. Each node runs as a child process that is killed (SIGKILL) when its [`Node`] is
//! dropped; its stdout and stderr are drained by threads into a short ring buffer that
//! [`Node::logs`] returns for failure messages.
//!
//! Also here: test accounts ([`Account`]) that pick an account served by a given swarm, signed
//! request builders, and an HTTP helper ([`Http`]) over a keep-alive `reqwest` client.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng as _;
use serde_json::{Value, json};
use session_node::AccountKey;
use session_node::nodelist::{NodeList, NodeListFile, NodeRecord};
use session_protocol::IdentityKey;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::onion::NodeKeys;
use session_protocol::rpc_sign::SignableRequest;
use session_protocol::swarm::SwarmId;

/// How long a node may take to print its startup line (the test machine is shared and busy).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of output kept per node.
const LOG_LINES: usize = 400;

/// The `session-node` binary Cargo built for this test or bench target.
pub fn node_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_session-node"))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// One entry per node: the swarm it belongs to.
    pub swarms: Vec<u64>,
    /// Extra command-line flags given to every node (e.g. `--rate 0`).
    pub extra_args: Vec<String>,
    /// The node binary.
    pub binary: PathBuf,
    /// Capture the nodes' stderr logs in memory (off for load runs: logging costs CPU).
    pub capture_logs: bool,
    /// `RUST_LOG` for the nodes.
    pub log_filter: String,
    /// Serve HTTPS (`--tls`, self-signed certificates) instead of plain HTTP.
    pub tls: bool,
}

impl ClusterSpec {
    /// Nodes in the given swarms, default flags, the Cargo-built binary.
    pub fn new(swarms: &[u64]) -> Self {
        Self {
            swarms: swarms.to_vec(),
            extra_args: Vec::new(),
            binary: node_binary(),
            capture_logs: true,
            log_filter: "info".into(),
            tls: false,
        }
    }

    /// Adds flags for every node.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A set of running nodes sharing one node-list file.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in spec order.
    pub nodes: Vec<Node>,
    /// The node-list file every node reads.
    pub node_list_path: PathBuf,
    /// The list as written.
    pub records: Vec<NodeRecord>,
    // Kept last so that the nodes are killed before their directories go.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes keys and the node list, then starts every node and waits for each startup line.
    pub fn start(spec: &ClusterSpec) -> Result<Self, String> {
        let dir =
            tempfile::Builder::new().prefix("session-node-test").tempdir().map_err(|e| e.to_string())?;
        let node_list_path = dir.path().join("nodes.json");
        let ports = reserve_ports(spec.swarms.len())?;
        let mut nodes = Vec::with_capacity(spec.swarms.len());
        let mut records = Vec::with_capacity(spec.swarms.len());
        for (index, (&swarm_id, &port)) in spec.swarms.iter().zip(&ports).enumerate() {
            let data_dir = dir.path().join(format!("node{index}"));
            std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            write_key(&data_dir, &seed)?;
            let key = IdentityKey::from_seed_bytes(&seed);
            let record = NodeRecord {
                pubkey_ed25519: hex::encode(key.ed25519_public()),
                pubkey_x25519: hex::encode(key.x25519_public()),
                public_ip: Ipv4Addr::LOCALHOST,
                storage_port: port,
                storage_lmq_port: 0,
                swarm_id,
                tls: spec.tls,
            };
            records.push(record.clone());
            nodes.push(Node {
                index,
                key,
                record,
                data_dir,
                node_list: node_list_path.clone(),
                binary: spec.binary.clone(),
                extra_args: if spec.tls {
                    spec.extra_args.iter().cloned().chain(["--tls".to_string()]).collect()
                } else {
                    spec.extra_args.clone()
                },
                capture_logs: spec.capture_logs,
                log_filter: spec.log_filter.clone(),
                child: None,
                logs: Arc::new(Mutex::new(VecDeque::new())),
            });
        }
        let file = NodeListFile { service_node_states: records.clone() };
        std::fs::write(&node_list_path, serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        // Start all, then wait for all: the nodes start in parallel.
        let mut waits = Vec::with_capacity(nodes.len());
        for node in &mut nodes {
            waits.push(node.spawn()?);
        }
        for (node, wait) in nodes.iter_mut().zip(waits) {
            node.wait_started(wait)?;
        }
        Ok(Self { nodes, node_list_path, records, _dir: dir })
    }

    /// Replaces the node-list file (the nodes poll it and reload on change).
    pub fn rewrite_node_list(&mut self, records: Vec<NodeRecord>) -> Result<(), String> {
        let file = NodeListFile { service_node_states: records.clone() };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        // Write then rename, so that a node never reads half a file.
        let tmp = self.node_list_path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &self.node_list_path).map_err(|e| e.to_string())?;
        for node in &mut self.nodes {
            if let Some(r) = records.iter().find(|r| r.pubkey_ed25519 == node.record.pubkey_ed25519) {
                node.record = r.clone();
            }
        }
        self.records = records;
        Ok(())
    }

    /// The node list as the nodes see it.
    pub fn node_list(&self) -> NodeList {
        NodeList::new(self.records.clone())
    }

    /// The nodes of one swarm.
    pub fn members(&self, swarm: u64) -> Vec<&Node> {
        self.nodes.iter().filter(|n| n.record.swarm_id == swarm).collect()
    }
}

/// One `session-node` child process (killed on drop).
#[derive(Debug)]
pub struct Node {
    /// Position in the cluster.
    pub index: usize,
    /// The node's key (from the seed written to `node.key`).
    pub key: IdentityKey,
    /// Its entry in the node list.
    pub record: NodeRecord,
    /// Its data directory.
    pub data_dir: PathBuf,
    node_list: PathBuf,
    binary: PathBuf,
    extra_args: Vec<String>,
    capture_logs: bool,
    log_filter: String,
    child: Option<Child>,
    logs: Arc<Mutex<VecDeque<String>>>,
}

/// Receives the startup line (or the reason there is none).
type StartWait = mpsc::Receiver<Result<String, String>>;

impl Node {
    /// `http://127.0.0.1:PORT` (`https` with TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.record.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.record.public_ip, self.record.storage_port)
    }

    /// `<base>/storage_rpc/v1`.
    pub fn rpc_url(&self) -> String {
        format!("{}/storage_rpc/v1", self.base_url())
    }

    /// `<base>/onion_req/v2`.
    pub fn onion_url(&self) -> String {
        format!("{}/onion_req/v2", self.base_url())
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.record.public_ip, self.record.storage_port))
    }

    /// Ed25519 public key, hex.
    pub fn ed25519_hex(&self) -> &str {
        &self.record.pubkey_ed25519
    }

    /// The keys an onion path names this node by.
    pub fn onion_keys(&self) -> NodeKeys {
        NodeKeys { ed25519: self.key.ed25519_public(), x25519: *self.key.x25519_public() }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process with SIGKILL (`kill -9`) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same data directory and port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill9();
        let wait = self.spawn()?;
        self.wait_started(wait)
    }

    /// The last lines the node wrote (stdout and stderr).
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<StartWait, String> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--listen")
            .arg(self.addr().to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--node-list")
            .arg(&self.node_list)
            .args(&self.extra_args)
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if self.capture_logs { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            drain(stdout, self.logs.clone(), Some(tx.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            drain(stderr, self.logs.clone(), None);
        }
        drop(tx);
        self.child = Some(child);
        Ok(rx)
    }

    fn wait_started(&mut self, wait: StartWait) -> Result<(), String> {
        let line = match wait.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("node {}: {e}\n{}", self.index, self.logs())),
            Err(_) => {
                // Give the stderr drainer a moment to collect the reason.
                std::thread::sleep(Duration::from_millis(200));
                return Err(format!("node {} did not start\n{}", self.index, self.logs()));
            }
        };
        let expected = format!("ed25519={}", self.record.pubkey_ed25519);
        if !line.contains(&expected) {
            return Err(format!("node {} started with an unexpected key: {line}", self.index));
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads `stream` line by line into `logs`; the first `session-node listening on` line (or EOF)
/// is sent on `started`.
fn drain<R: Read + Send + 'static>(
    stream: R,
    logs: Arc<Mutex<VecDeque<String>>>,
    started: Option<mpsc::Sender<Result<String, String>>>,
) {
    std::thread::spawn(move || {
        let mut started = started;
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            if line.starts_with("session-node listening on")
                && let Some(tx) = started.take()
            {
                let _ = tx.send(Ok(line.clone()));
            }
            if let Ok(mut logs) = logs.lock() {
                if logs.len() == LOG_LINES {
                    logs.pop_front();
                }
                logs.push_back(line);
            }
        }
        if let Some(tx) = started {
            let _ = tx.send(Err("exited before listening".into()));
        }
    });
}

/// Distinct free loopback ports (held together while choosing, released before returning).
fn reserve_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

/// Writes `data_dir/node.key` (64 hex characters, mode 0600) as the node would at first start.
fn write_key(data_dir: &Path, seed: &[u8; 32]) -> Result<(), String> {
    use std::io::Write as _;
    let path = data_dir.join("node.key");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(hex::encode(seed).as_bytes()).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Accounts and requests.

/// A Session account (05 prefix) with its key.
#[derive(Debug, Clone)]
pub struct Account {
    /// The key.
    pub key: IdentityKey,
    /// `05` + X25519 key, hex.
    pub pubkey_hex: String,
    /// The 33 bytes.
    pub pubkey: [u8; 33],
}

impl Account {
    /// A fresh random account.
    pub fn random() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let key = IdentityKey::from_seed_bytes(&seed);
        let mut pubkey = [0u8; 33];
        pubkey[0] = 0x05;
        pubkey[1..].copy_from_slice(key.x25519_public());
        Self { pubkey_hex: hex::encode(pubkey), pubkey, key }
    }

    /// A fresh random account that `list` assigns to `swarm`.
    pub fn in_swarm(list: &NodeList, swarm: u64) -> Self {
        loop {
            let account = Self::random();
            if list.swarm_of(&account.account_key()) == Some(SwarmId(swarm)) {
                return account;
            }
        }
    }

    /// As the node's type.
    pub fn account_key(&self) -> AccountKey {
        self.pubkey_hex.parse().expect("66 hex characters with a 05 prefix")
    }

    /// `pubkey_ed25519`, hex.
    pub fn ed25519_hex(&self) -> String {
        hex::encode(self.key.ed25519_public())
    }

    /// The hash a store of `data` in `namespace` gets.
    pub fn hash(&self, namespace: i16, data: &[u8]) -> String {
        MessageHash::compute(&self.pubkey, Namespace(namespace), data).as_str().to_owned()
    }

    /// `store` params; signed when the namespace needs it.
    pub fn store(&self, namespace: i16, data: &[u8], ttl_ms: u64, timestamp: u64) -> Value {
        let mut p = json!({
            "pubkey": self.pubkey_hex,
            "timestamp": timestamp,
            "ttl": ttl_ms,
            "data": B64.encode(data),
        });
        if namespace != 0 {
            p["namespace"] = json!(namespace);
        }
        if Namespace(namespace).store_requires_auth() {
            let sig = SignableRequest::Store { namespace: Namespace(namespace), sig_timestamp: timestamp }
                .sign(&self.key);
            p["signature"] = json!(B64.encode(sig));
            p["pubkey_ed25519"] = json!(self.ed25519_hex());
        }
        p
    }

    /// Signed `retrieve` params.
    pub fn retrieve(&self, namespace: i16, timestamp: u64, last_hash: Option<&str>) -> Value {
        let sig = SignableRequest::Retrieve { namespace: Namespace(namespace), timestamp }.sign(&self.key);
        let mut p = json!({
            "pubkey": self.pubkey_hex,
            "timestamp": timestamp,
            "signature": B64.encode(sig),
            "pubkey_ed25519": self.ed25519_hex(),
        });
        if namespace != 0 {
            p["namespace"] = json!(namespace);
        }
        if let Some(h) = last_hash {
            p["last_hash"] = json!(h);
        }
        p
    }

    /// Signs any signable request and returns the base64 signature.
    pub fn sign_b64(&self, request: &SignableRequest<'_>) -> String {
        B64.encode(request.sign(&self.key))
    }
}

/// `{"method": m, "params": p}` as bytes.
pub fn rpc_body(method: &str, params: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"method": method, "params": params})).expect("JSON values serialize")
}

/// An HTTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A keep-alive HTTP client for loopback nodes.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Self::new(Duration::from_secs(40))
    }
}

impl Http {
    /// A client whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self::with_pool(timeout, 1024)
    }

    /// A client that opens a new connection for every request.
    pub fn unpooled(timeout: Duration) -> Self {
        Self::with_pool(timeout, 0)
    }

    fn with_pool(timeout: Duration, max_idle: usize) -> Self {
        // reqwest is built without a bundled rustls provider; the node installs ring.
        session_node::server::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .pool_max_idle_per_host(max_idle)
            .tcp_nodelay(true)
            // Nodes use self-signed certificates; clients know nodes by their keys (network §2).
            .tls_danger_accept_invalid_certs(true)
            .build()
            .expect("a reqwest client builds");
        Self { client }
    }

    /// POSTs raw bytes (a parsed `reqwest::Url` saves parsing it per request).
    pub async fn post(&self, url: impl reqwest::IntoUrl, body: Vec<u8>) -> Result<Reply, reqwest::Error> {
        let response = self.client.post(url).body(body).send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?.to_vec();
        Ok(Reply { status, body })
    }

    /// GETs a URL.
    pub async fn get(&self, url: &str) -> Result<Reply, reqwest::Error> {
        let response = self.client.get(url).send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?.to_vec();
        Ok(Reply { status, body })
    }

    /// Calls one storage RPC method on `node`; panics on a transport error (tests).
    pub async fn rpc(&self, node: &Node, method: &str, params: &Value) -> Reply {
        self.post(&node.rpc_url(), rpc_body(method, params))
            .await
            .unwrap_or_else(|e| panic!("{method} to node {}: {e}\n{}", node.index, node.logs()))
    }
}

/// Polls `f` until it returns `true` or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
