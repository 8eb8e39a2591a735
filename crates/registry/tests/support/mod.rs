//! Test support: the real `session-registry` binary on 127.0.0.1 with a temporary data dir,
//! nodes that answer `/ping_test/v1` (a small in-process HTTP server with a real key, or a real
//! `session-node` process), and signed registration and heartbeat helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::Rng as _;
use serde_json::{Value, json};
use session_protocol::IdentityKey;
use session_registry::api::{HeartbeatRequest, RegisterRequest};

/// How long a process may take to print its startup line (the machine is shared and busy).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for any condition a test waits for.
pub const WAIT: Duration = Duration::from_secs(60);
/// Heartbeat interval given to the registry and used by [`Heartbeats`].
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A fresh random node key.
pub fn random_key() -> IdentityKey {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    IdentityKey::from_seed_bytes(&seed)
}

/// A running `session-registry` process, killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The registry key from the startup line.
    pub pubkey: [u8; 32],
    /// The data directory.
    pub data_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Flags for short liveness timings.
pub fn fast_args() -> Vec<String> {
    [
        "--heartbeat-interval",
        "0.5",
        "--decommission-after",
        "6",
        "--remove-after",
        "3600",
        "--tick",
        "0.2",
        "--ping-timeout",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Registry {
    /// Starts the binary on `127.0.0.1:0` with `data_dir` and `extra` flags (after
    /// [`fast_args`]) and waits for its startup line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_session-registry"));
        cmd.arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(data_dir).args(fast_args()).args(extra);
        cmd.env("RUST_LOG", "info,session_registry=debug").stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn session-registry");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let line = wait_for_line(&mut child, &logs, "session-registry listening on ");
        // "session-registry listening on http://127.0.0.1:PORT pubkey=HEX"
        let mut words = line.split_whitespace();
        let url = words.nth(3).expect("url in the startup line").to_string();
        let pubkey_hex =
            words.next().and_then(|w| w.strip_prefix("pubkey=")).expect("pubkey in the startup line");
        let pubkey = hex::decode(pubkey_hex).unwrap().try_into().unwrap();
        Self { child, url, pubkey, data_dir: data_dir.to_path_buf(), logs }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the registry's log, for failure messages.
    pub fn logs(&self) -> String {
        let logs = self.logs.lock().unwrap();
        logs[logs.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `child`'s stdout until a line starting with `prefix` (bounded by [`START_TIMEOUT`]);
/// drains stdout and stderr into `logs` afterwards. Panics when the line does not come.
fn wait_for_line(child: &mut Child, logs: &Arc<Mutex<Vec<String>>>, prefix: &str) -> String {
    try_wait_for_line(child, logs, prefix).unwrap_or_else(|e| panic!("{e}"))
}

/// [`wait_for_line`], returning what went wrong (the process is killed then).
fn try_wait_for_line(
    child: &mut Child,
    logs: &Arc<Mutex<Vec<String>>>,
    prefix: &str,
) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let prefix_owned = prefix.to_string();
    let out_logs = logs.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && line.starts_with(&prefix_owned) {
                let _ = tx.send(line.clone());
                sent = true;
            }
            out_logs.lock().unwrap().push(line);
        }
    });
    let stderr = child.stderr.take().expect("piped stderr");
    let err_logs = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut logs = err_logs.lock().unwrap();
            logs.push(line);
            if logs.len() > 2000 {
                logs.drain(..1000);
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) => Ok(line),
        Err(_) => {
            let _ = child.kill();
            let exited = child.wait().ok();
            // Let the reader threads collect what the process wrote before it went.
            std::thread::sleep(Duration::from_millis(300));
            Err(format!(
                "no startup line {prefix:?} (exit: {exited:?}); output:\n{}",
                logs.lock().unwrap().join("\n")
            ))
        }
    }
}

/// A plain HTTP client for the tests.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(90)).build().unwrap()
}

/// POSTs JSON, returns status and body text.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, String) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A JSON-RPC call; returns the whole reply object.
pub async fn rpc(client: &reqwest::Client, registry: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, text) = post(client, &format!("{registry}/json_rpc"), &body).await;
    assert_eq!(status, 200, "{method}: {text}");
    serde_json::from_str(&text).expect("JSON-RPC reply")
}

/// `get_service_nodes` with `params`; returns `result`.
pub async fn service_nodes(client: &reqwest::Client, registry: &str, params: Value) -> Value {
    let reply = rpc(client, registry, "get_service_nodes", params).await;
    reply.get("result").cloned().unwrap_or_else(|| panic!("no result: {reply}"))
}

/// Polls `check` every 100 ms until it returns `Some`, for at most [`WAIT`].
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers `key` at `addr`; returns status and body.
pub async fn register(
    client: &reqwest::Client,
    registry: &str,
    key: &IdentityKey,
    addr: SocketAddr,
) -> (u16, String) {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    };
    let req = RegisterRequest::new_signed(key, ip, addr.port(), 0, false, [0, 1, 0], now_ms());
    post(client, &format!("{registry}/register"), &serde_json::to_value(&req).unwrap()).await
}

/// Sends one heartbeat; returns the reported status.
pub async fn heartbeat(client: &reqwest::Client, registry: &str, key: &IdentityKey) -> String {
    let req = HeartbeatRequest::new_signed(key, now_ms());
    let (status, body) =
        post(client, &format!("{registry}/heartbeat"), &serde_json::to_value(&req).unwrap()).await;
    assert_eq!(status, 200, "heartbeat: {body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    reply["status"].as_str().unwrap().to_string()
}

/// A small HTTP server on 127.0.0.1 that answers `POST /ping_test/v1` like a node with `key`,
/// and sends heartbeats for it to a registry while running. Stopping it closes the socket and
/// stops the heartbeats; starting it again reuses the same port.
#[derive(Debug)]
pub struct PingNode {
    /// The node key.
    pub key: IdentityKey,
    /// Where it listens.
    pub addr: SocketAddr,
    running: Option<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)>,
    registry: Arc<Mutex<String>>,
    answer_as: [u8; 32],
}

impl PingNode {
    /// A node on a fresh port, answering with its own key.
    pub async fn start(registry: &str) -> Self {
        let key = random_key();
        let answer_as = key.ed25519_public();
        Self::start_with(registry, key, answer_as).await
    }

    /// A node that answers ping tests with `answer_as` instead of its own key.
    pub async fn start_with(registry: &str, key: IdentityKey, answer_as: [u8; 32]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut node = Self {
            key,
            addr,
            running: None,
            registry: Arc::new(Mutex::new(registry.to_string())),
            answer_as,
        };
        node.run(listener);
        node
    }

    /// Points the heartbeats at another registry URL (after a registry restart).
    pub fn set_registry(&self, registry: &str) {
        *self.registry.lock().unwrap() = registry.to_string();
    }

    fn run(&mut self, listener: tokio::net::TcpListener) {
        let header = base64::engine::general_purpose::STANDARD.encode(self.answer_as);
        let app = axum::Router::new().route(
            "/ping_test/v1",
            axum::routing::post(move || {
                let header = header.clone();
                async move { ([("X-Oxen-Snode-Pubkey", header)], "") }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let key = self.key.clone();
        let registry = self.registry.clone();
        let beats = tokio::spawn(async move {
            let client = http();
            loop {
                let url = registry.lock().unwrap().clone();
                let req = HeartbeatRequest::new_signed(&key, now_ms());
                let _ = client
                    .post(format!("{url}/heartbeat"))
                    .body(serde_json::to_vec(&req).unwrap())
                    .send()
                    .await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
        self.running = Some((server, beats));
    }

    /// Stops answering and heartbeating.
    pub async fn stop(&mut self) {
        if let Some((server, beats)) = self.running.take() {
            server.abort();
            beats.abort();
            let _ = server.await;
            let _ = beats.await;
        }
    }

    /// Answers and heartbeats again, on the same port.
    /// An outgoing connection may hold the port for a moment: a few attempts.
    pub async fn restart(&mut self) {
        for attempt in 0.. {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => return self.run(listener),
                Err(e) if attempt < 20 => {
                    eprintln!("rebinding {}: {e}; retrying", self.addr);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("rebinding {}: {e}", self.addr),
            }
        }
    }

    /// The Ed25519 key, hex.
    pub fn hex(&self) -> String {
        hex::encode(self.key.ed25519_public())
    }
}

impl Drop for PingNode {
    fn drop(&mut self) {
        if let Some((server, beats)) = self.running.take() {
            server.abort();
            beats.abort();
        }
    }
}

/// The `session-node` binary of this workspace: next to this test's `deps` directory, built with
/// `cargo build -p session-node` if it is not there yet (`cargo test --workspace` builds it).
pub fn node_binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join(format!("session-node{}", std::env::consts::EXE_SUFFIX));
    BUILT.call_once(|| {
        if binary.exists() {
            return;
        }
        let target_dir = profile_dir.parent().expect("target dir");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args(["build", "-p", "session-node", "--bin", "session-node", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("run cargo build -p session-node");
        assert!(status.success(), "cargo build -p session-node failed");
    });
    assert!(binary.exists(), "no session-node binary at {}", binary.display());
    binary
}

/// A real `session-node` process on loopback, killed on drop.
#[derive(Debug)]
pub struct RealNode {
    child: Option<Child>,
    /// Node key (written to `node.key` before start).
    pub key: IdentityKey,
    /// Where it listens.
    pub addr: SocketAddr,
    data_dir: PathBuf,
    extra: Vec<String>,
    logs: Arc<Mutex<Vec<String>>>,
    heartbeats: Option<tokio::task::JoinHandle<()>>,
    alive: Arc<AtomicBool>,
}

impl RealNode {
    /// Starts a node with a fresh key in `data_dir` on a free port.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with_args(data_dir, &[])
    }

    /// Starts a node with a fresh key in `data_dir` on a free port, with `extra` flags.
    pub fn start_with_args(data_dir: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        std::fs::write(data_dir.join("node.key"), hex::encode(seed)).unwrap();
        let key = IdentityKey::from_seed_bytes(&seed);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut node = Self {
            child: None,
            key,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            data_dir: data_dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            logs: Arc::new(Mutex::new(Vec::new())),
            heartbeats: None,
            alive: Arc::new(AtomicBool::new(false)),
        };
        node.spawn();
        node
    }

    /// Starts the process on `self.addr`. The port was free when picked, but an outgoing
    /// connection may hold it for a moment: a few attempts, a second apart.
    fn spawn(&mut self) {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let mut cmd = Command::new(node_binary());
            cmd.arg("--listen").arg(self.addr.to_string()).arg("--data-dir").arg(&self.data_dir);
            cmd.args(&self.extra);
            cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn session-node");
            match try_wait_for_line(&mut child, &self.logs, "session-node listening on ") {
                Ok(line) => {
                    assert!(
                        line.contains(&hex::encode(self.key.ed25519_public())),
                        "node runs with our key: {line}"
                    );
                    self.child = Some(child);
                    return;
                }
                Err(e) => failures.push(e),
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("session-node did not start:\n{}", failures.join("\n---\n"));
    }

    /// Sends heartbeats for this node to `registry` every [`HEARTBEAT`] while it runs.
    pub fn heartbeat_to(&mut self, registry: &str) {
        self.alive.store(true, Ordering::SeqCst);
        let key = self.key.clone();
        let url = registry.to_string();
        let alive = self.alive.clone();
        self.heartbeats = Some(tokio::spawn(async move {
            let client = http();
            while alive.load(Ordering::SeqCst) {
                let req = HeartbeatRequest::new_signed(&key, now_ms());
                let _ = client
                    .post(format!("{url}/heartbeat"))
                    .body(serde_json::to_vec(&req).unwrap())
                    .send()
                    .await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        }));
    }

    /// SIGKILLs the process and stops its heartbeats.
    pub async fn kill(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
        if let Some(task) = self.heartbeats.take() {
            task.abort();
            let _ = task.await;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and data dir.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// The Ed25519 key, hex.
    pub fn hex(&self) -> String {
        hex::encode(self.key.ed25519_public())
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
        if let Some(task) = self.heartbeats.take() {
            task.abort();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The node entry with Ed25519 key `hex` in a `get_service_nodes` result.
pub fn entry<'a>(result: &'a Value, hex: &str) -> Option<&'a Value> {
    result["service_node_states"].as_array()?.iter().find(|n| n["pubkey_ed25519"] == hex)
}

/// Swarm id → member count over the active nodes of a `get_service_nodes` result.
pub fn swarm_sizes(result: &Value) -> std::collections::BTreeMap<u64, usize> {
    let mut sizes = std::collections::BTreeMap::new();
    for node in result["service_node_states"].as_array().unwrap() {
        if node["active"] == true {
            *sizes.entry(node["swarm_id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    sizes
}
