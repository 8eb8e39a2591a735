//! A devnet of real `session-registry` and `session-node` processes on loopback, through the
//! library API and through the `session-devnet` binary: formation into swarms, `devnet.json`
//! against the registry, a node stopped (decommissioned) and started (back in a swarm), a node
//! added, and a network brought back from its directory with its keys and a stored message.
//!
//! The tests run one at a time (each starts 6 processes or more on a shared machine); every wait
//! is bounded.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng as _;
use serde_json::{Value, json};
use session_devnet::{Binaries, Devnet, DevnetOptions, NO_SWARM, NodeEntry, Timing, net, process};
use session_protocol::IdentityKey;
use session_protocol::message_hash::Namespace;
use session_protocol::rpc_sign::SignableRequest;
use session_protocol::swarm::{SwarmId, swarm_for_pubkey};

/// Bound of every wait for a network condition.
const WAIT: Duration = Duration::from_secs(120);

/// One devnet at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The registry and node binaries of this workspace, built into this test's target directory.
fn binaries() -> Binaries {
    Binaries::build_for_tests().expect("building session-node and session-registry")
}

/// Options for a quick test network: heartbeat 1 s, decommission after 5 s.
fn options(dir: &Path, nodes: usize) -> DevnetOptions {
    let mut o = DevnetOptions::new(dir, nodes);
    o.binaries = Some(binaries());
    o.timing = Timing { heartbeat_secs: 1, decommission_after_secs: 5.0, ..Timing::default() };
    o.ready_timeout = WAIT;
    o
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Polls `check` every 200 ms until it returns `Some`, for at most [`WAIT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The raw `devnet.json`.
fn devnet_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("devnet.json")).unwrap()).unwrap()
}

/// Checks that every node of `devnet.json` is listed by the registry at its address and port,
/// with its keys, in the swarm the file records, and that every swarm has at least 5 members.
async fn assert_file_matches_registry(devnet: &Devnet) {
    let file = devnet_json(devnet.dir());
    let listing = devnet.registry_nodes().await.unwrap();
    assert_eq!(file["registry_url"], devnet.registry_url().unwrap());
    let nodes = file["nodes"].as_array().unwrap();
    let mut sizes = std::collections::BTreeMap::<u64, usize>::new();
    for (k, node) in nodes.iter().enumerate() {
        assert_eq!(node["index"], k);
        let key = node["pubkey_ed25519"].as_str().unwrap();
        let listed = listing.find(key).unwrap_or_else(|| panic!("node {k} is not at the registry"));
        assert_eq!(node["address"], listed.public_ip, "node {k}");
        assert_eq!(node["storage_port"], listed.storage_port, "node {k}");
        assert_eq!(node["pubkey_x25519"], listed.pubkey_x25519, "node {k}");
        assert_eq!(node["swarm_id"], listed.swarm_id, "node {k}");
        assert!(listed.active && listed.swarm_id != NO_SWARM, "node {k} in a swarm");
        let pid = node["pid"].as_u64().unwrap_or_else(|| panic!("node {k} has a pid"));
        assert!(process::is_alive(session_devnet::ProcessId { pid: pid as u32, start_ticks: None }));
        *sizes.entry(listed.swarm_id).or_default() += 1;
    }
    assert!(sizes.values().all(|&n| n >= 5), "swarm sizes {sizes:?}");
}

/// Waits until the registry lists `node` with `active == want` (and, when active, in a swarm).
async fn wait_registry_state(devnet: &Devnet, node: &NodeEntry, want: bool) -> u64 {
    wait_for(&format!("node {} active={want} at the registry", node.index), || async {
        let listing = devnet.registry_nodes().await.ok()?;
        let listed = listing.find(&node.pubkey_ed25519)?;
        let in_swarm = listed.swarm_id != NO_SWARM;
        (listed.active == want && in_swarm == want).then_some(listed.swarm_id)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_form_swarms_then_stop_start_and_add() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::up(options(dir.path(), 6)).await.unwrap();
    assert_eq!(devnet.nodes().unwrap().len(), 6);
    assert_file_matches_registry(&devnet).await;
    let swarms = devnet.swarms().unwrap();
    assert_eq!(swarms.iter().map(|s| s.nodes.len()).sum::<usize>(), 6);
    for node in devnet.nodes().unwrap() {
        assert_eq!(node.address.to_string(), format!("127.0.0.{}", node.index + 2));
        assert!(node.log.starts_with(dir.path()) && node.log.exists());
    }

    // Stop node 2: the registry decommissions it (no swarm, inactive), devnet.json has no pid.
    let node = devnet.node(2).unwrap();
    let old_pid = node.process().unwrap();
    assert!(devnet.stop_node(2).await.unwrap());
    assert!(!process::is_alive(old_pid));
    assert_eq!(devnet_json(dir.path())["nodes"][2]["pid"], Value::Null);
    assert_eq!(wait_registry_state(&devnet, &node, false).await, NO_SWARM);
    // The other five are still ready; the file records node 2 out of its swarm.
    devnet.wait_until_ready(WAIT).await.unwrap();
    assert_eq!(devnet_json(dir.path())["nodes"][2]["swarm_id"], NO_SWARM);
    assert!(!devnet.stop_node(2).await.unwrap(), "already stopped");

    // Start it again: back in a swarm with the same key, at the same address.
    devnet.start_node(2).await.unwrap();
    let again = devnet.node(2).unwrap();
    assert_eq!(
        (again.pubkey_ed25519.as_str(), again.listen()),
        (node.pubkey_ed25519.as_str(), node.listen())
    );
    assert!(devnet.start_node(2).await.is_err(), "already running");
    devnet.wait_until_ready(WAIT).await.unwrap();
    assert_file_matches_registry(&devnet).await;

    // Growth: node 6 at 127.0.0.8 joins a swarm.
    let k = devnet.add_node().await.unwrap();
    assert_eq!(k, 6);
    devnet.wait_until_ready(WAIT).await.unwrap();
    let added = devnet.node(6).unwrap();
    assert_eq!(added.address.to_string(), "127.0.0.8");
    assert!(added.in_swarm());
    assert_file_matches_registry(&devnet).await;

    let pids: Vec<_> = devnet.nodes().unwrap().iter().filter_map(NodeEntry::process).collect();
    let registry_pid = devnet.state().unwrap().registry.process.unwrap();
    devnet.down().await.unwrap();
    assert!(pids.iter().chain([&registry_pid]).all(|p| !process::is_alive(*p)));
    let file = devnet_json(dir.path());
    assert!(file["nodes"].as_array().unwrap().iter().all(|n| n["pid"].is_null()));
    assert!(file["supervisor"].is_null());
}

/// A Session account for store/retrieve.
struct Account {
    key: IdentityKey,
    pubkey: [u8; 33],
}

impl Account {
    fn random() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let key = IdentityKey::from_seed_bytes(&seed);
        let mut pubkey = [0u8; 33];
        pubkey[0] = 0x05;
        pubkey[1..].copy_from_slice(key.x25519_public());
        Self { key, pubkey }
    }

    fn hex(&self) -> String {
        hex::encode(self.pubkey)
    }

    /// A node of the swarm the registry assigns this account to.
    async fn swarm_node(&self, devnet: &Devnet) -> NodeEntry {
        let nodes = devnet.nodes().unwrap();
        let ids: Vec<SwarmId> = devnet.swarms().unwrap().iter().map(|s| SwarmId(s.id)).collect();
        let swarm = swarm_for_pubkey(&self.pubkey, &ids).expect("a swarm");
        nodes.into_iter().find(|n| n.swarm_id == swarm.0).expect("a member")
    }

    /// Stores `data` in the public inbox (namespace 0, no signature needed).
    async fn store(&self, devnet: &Devnet, node: &NodeEntry, data: &[u8]) {
        let params =
            json!({"pubkey": self.hex(), "timestamp": now_ms(), "ttl": 3_600_000, "data": B64.encode(data)});
        let reply = net::node_rpc(devnet.client(), node, "store", params).await.unwrap();
        assert!(reply.get("hash").is_some() || reply.get("swarm").is_some(), "store reply {reply}");
    }

    /// The messages' data, by a signed retrieve.
    async fn retrieve(&self, devnet: &Devnet, node: &NodeEntry) -> Option<Vec<Vec<u8>>> {
        let timestamp = now_ms();
        let sig = SignableRequest::Retrieve { namespace: Namespace(0), timestamp }.sign(&self.key);
        let params = json!({
            "pubkey": self.hex(),
            "timestamp": timestamp,
            "signature": B64.encode(sig),
            "pubkey_ed25519": hex::encode(self.key.ed25519_public()),
        });
        let reply = net::node_rpc(devnet.client(), node, "retrieve", params).await.ok()?;
        reply["messages"].as_array()?.iter().map(|m| B64.decode(m["data"].as_str()?).ok()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_again_brings_back_the_same_network_and_its_messages() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(options(dir.path(), 6)).await.unwrap();
    let before = devnet.state().unwrap();
    let account = Account::random();
    let node = account.swarm_node(&devnet).await;
    account.store(&devnet, &node, b"kept across a restart").await;
    let stored = wait_for("the message on its node", || async {
        account.retrieve(&devnet, &node).await.filter(|m| !m.is_empty())
    })
    .await;
    assert_eq!(stored, vec![b"kept across a restart".to_vec()]);
    devnet.down().await.unwrap();

    // A second `up` on the directory (asking for the same 6 nodes).
    let devnet = Devnet::up(options(dir.path(), 6)).await.unwrap();
    let after = devnet.state().unwrap();
    assert_eq!(after.registry_url, before.registry_url, "same registry address");
    assert_eq!(after.registry.pubkey, before.registry.pubkey, "same registry key");
    let keys = |s: &session_devnet::DevnetState| {
        s.nodes.iter().map(|n| (n.pubkey_ed25519.clone(), n.listen())).collect::<Vec<_>>()
    };
    assert_eq!(keys(&after), keys(&before), "same node keys and addresses");
    assert_file_matches_registry(&devnet).await;
    let node = account.swarm_node(&devnet).await;
    let messages = wait_for("the message after the restart", || async {
        account.retrieve(&devnet, &node).await.filter(|m| !m.is_empty())
    })
    .await;
    assert_eq!(messages, vec![b"kept across a restart".to_vec()]);

    // While it runs, a second `up` on the same directory is refused.
    let err = Devnet::create(options(dir.path(), 6)).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");
    // Dropping the supervising handle kills the whole network.
    let pids: Vec<_> = devnet.nodes().unwrap().iter().filter_map(NodeEntry::process).collect();
    drop(devnet);
    assert!(pids.iter().all(|p| !process::is_alive(*p)));
}

/// Runs `session-devnet ARGS --dir DIR` to completion (bounded), returning stdout.
fn cli(dir: &Path, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_session-devnet"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        // The command line runs the node and registry built into itself.
        .env_remove("SESSION_REGISTRY_BIN")
        .env_remove("SESSION_NODE_BIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("session-devnet {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "session-devnet {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_up_status_node_and_down() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("up.out")).unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_session-devnet"))
        .args(["up", "--nodes", "5", "--heartbeat", "1", "--decommission-after", "5", "--dir"])
        .arg(dir.path().join("net"))
        // The command line runs the node and registry built into itself.
        .env_remove("SESSION_REGISTRY_BIN")
        .env_remove("SESSION_NODE_BIN")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let net = dir.path().join("net");
    let out = || std::fs::read_to_string(dir.path().join("up.out")).unwrap_or_default();
    let deadline = Instant::now() + WAIT;
    while !out().contains("running; Ctrl-C") {
        assert!(up.try_wait().unwrap().is_none(), "up exited:\n{}", out());
        assert!(Instant::now() < deadline, "`up` did not report the network ready:\n{}", out());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let printed = out();
    assert!(printed.contains("in swarms") && printed.contains("5/5 nodes registered"), "{printed}");
    assert!(printed.contains("registry  http://127.0.0.1:"), "{printed}");
    let devnet_exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_session-devnet")).unwrap();
    for program in ["session-node", "session-registry"] {
        let target = std::fs::canonicalize(net.join("bin").join(program)).unwrap();
        assert_eq!(target, devnet_exe, "{program} runs from the session-devnet executable");
    }

    let status: Value = serde_json::from_str(&cli(&net, &["status", "--json"])).unwrap();
    assert_eq!(status["supervisor_pid"], up.id());
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    assert!(
        nodes
            .iter()
            .all(|n| n["running"] == true && n["reachable"] == true && n["registry_state"] == "active")
    );
    let table = cli(&net, &["status"]);
    assert!(table.contains("127.0.0.6:") && table.contains("active"), "{table}");

    // Node 1 stopped from another shell: decommissioned at the registry; started again: back.
    cli(&net, &["node", "stop", "1"]);
    wait_for("node 1 decommissioned", || async {
        let status: Value = serde_json::from_str(&cli(&net, &["status", "--json"])).ok()?;
        let n = &status["nodes"][1];
        (n["running"] == false && n["registry_state"] == "decommissioned" && n["swarm_id"] == NO_SWARM)
            .then_some(())
    })
    .await;
    cli(&net, &["node", "start", "1", "--wait"]);
    let status: Value = serde_json::from_str(&cli(&net, &["status", "--json"])).unwrap();
    assert_eq!(status["nodes"][1]["registry_state"], "active");
    let restarted_pid = status["nodes"][1]["pid"].as_u64().unwrap() as u32;

    // `down` stops the supervisor, which stops every node (including the one started from
    // another shell) and the registry.
    cli(&net, &["down"]);
    let code = up.wait().unwrap();
    assert!(code.success(), "up exited with {code}:\n{}", out());
    assert!(out().contains("devnet stopped"), "{}", out());
    let file = devnet_json(&net);
    assert!(file["nodes"].as_array().unwrap().iter().all(|n| n["pid"].is_null()));
    assert!(!process::is_alive(session_devnet::ProcessId { pid: restarted_pid, start_ticks: None }));
    let status: Value = serde_json::from_str(&cli(&net, &["status", "--json"])).unwrap();
    assert_eq!(status["registry_reachable"], false);
    assert!(status["nodes"].as_array().unwrap().iter().all(|n| n["running"] == false));
}
