//! Starts the real `session-node` binary on 127.0.0.1 and checks the HTTP layer (network §2.1):
//! endpoints, the checks made before a request is processed, malformed input, key persistence,
//! graceful shutdown and TLS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RPC: &str = "/storage_rpc/v1";
const ONION: &str = "/onion_req/v2";

/// A running `session-node` process; killed on drop.
struct NodeProc {
    child: Child,
    url: String,
    addr: String,
    ed25519: String,
    x25519: String,
    data_dir: PathBuf,
    node_list: PathBuf,
}

impl NodeProc {
    /// Starts the binary with `data_dir` and these extra flags; waits for the startup line.
    fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let node_list = data_dir.join("nodes.json");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_session-node"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--node-list")
            .arg(&node_list)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start session-node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("startup line");
        // session-node listening on http://127.0.0.1:PORT ed25519=HEX x25519=HEX
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("session-node"), "startup line: {line:?}");
        let url = words.nth(2).expect("url").to_owned();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .expect("key in startup line")
                .to_owned()
        };
        let (ed25519, x25519) = (field("ed25519="), field("x25519="));
        assert_eq!(ed25519.len(), 64);
        let addr = url.split("://").nth(1).unwrap().to_owned();
        Self { child, url, addr, ed25519, x25519, data_dir: data_dir.to_owned(), node_list }
    }

    /// Writes a node list holding only this node, in swarm 0.
    fn list_self(&self) {
        let port: u16 = self.addr.rsplit(':').next().unwrap().parse().unwrap();
        let list = serde_json::json!({ "service_node_states": [{
            "pubkey_ed25519": self.ed25519,
            "pubkey_x25519": self.x25519,
            "public_ip": "127.0.0.1",
            "storage_port": port,
            "swarm_id": 0,
        }]});
        let tmp = self.data_dir.join("nodes.json.tmp");
        std::fs::write(&tmp, list.to_string()).unwrap();
        std::fs::rename(tmp, &self.node_list).unwrap();
    }

    /// Lists the node and waits until it has picked up the list (stops answering 503).
    async fn make_ready(&self, client: &reqwest::Client) {
        self.list_self();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, _) = post(client, &self.url, RPC, r#"{"method":"info","params":{}}"#).await;
            if status != 503 {
                return;
            }
            assert!(Instant::now() < deadline, "node never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    session_node::server::tls::install_crypto_provider();
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs `body`; returns the status and the body text.
async fn post(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let response = client.post(format!("{url}{path}")).body(body).send().await.unwrap();
    assert_eq!(response.headers()["server"].to_str().unwrap(), session_node::server::SERVER_HEADER);
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Sends raw bytes on a fresh connection and returns the status line's code. The bytes are
/// written while the answer is read: the server may answer (and close) before reading them all.
async fn raw_status(addr: &str, request: &[u8]) -> u16 {
    let (mut reader, mut writer) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
    let request = request.to_vec();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut buf = vec![0u8; 1024];
    let mut got = 0;
    while !buf[..got].windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf[got..]))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed without a status line");
        got += n;
    }
    writing.abort();
    let line = String::from_utf8_lossy(&buf[..got]);
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn endpoints_answer_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("n"), &[]);
    let client = client();

    // Before the node list names us: 503 for the RPC and onion endpoints, ping still works.
    let (status, text) = post(&client, &node.url, RPC, r#"{"method":"info","params":{}}"#).await;
    assert_eq!(status, 503);
    assert!(text.starts_with("Service node is not ready"), "{text}");
    assert_eq!(post(&client, &node.url, ONION, "x").await.0, 503);
    node.make_ready(&client).await;

    let ping = client.post(format!("{}/ping_test/v1", node.url)).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    let key =
        base64::engine::general_purpose::STANDARD.decode(&ping.headers()["x-oxen-snode-pubkey"]).unwrap();
    assert_eq!(hex::encode(key), node.ed25519);
    assert!(ping.headers().contains_key("server"));
    assert!(ping.bytes().await.unwrap().is_empty());

    let (status, text) = post(&client, &node.url, RPC, r#"{"method":"info","params":{}}"#).await;
    assert_eq!(status, 200, "{text}");

    let metrics = client.get(format!("{}/metrics", node.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains("session_node_requests_total{method=\"info\",status=\"200\"}"), "{text}");
    assert!(text.contains("session_node_db_bytes"), "{text}");

    let stats = client.get(format!("{}/get_stats/v1", node.url)).send().await.unwrap();
    assert_eq!(stats.headers()["content-type"], "application/json");
    let stats: serde_json::Value = stats.json_value().await;
    assert_eq!(stats["version"], "2.8.0");

    for (method, path) in
        [("GET", "/nope"), ("POST", "/nope"), ("GET", RPC), ("POST", "/metrics"), ("GET", "/")]
    {
        let response =
            client.request(method.parse().unwrap(), format!("{}{path}", node.url)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert!(response.headers().contains_key("server"));
    }
}

#[tokio::test]
async fn rejections_before_processing() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("n"), &[]);
    let client = client();
    node.make_ready(&client).await;

    // Long polling is gone.
    let response = client
        .post(format!("{}{RPC}", node.url))
        .header("X-Loki-Long-Poll", "true")
        .body(r#"{"method":"info","params":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    // The body was not read, so the connection cannot be reused: the reply says so.
    assert_eq!(response.headers()["connection"], "close");

    // Over 10 MiB: refused on the declared length without the body being sent.
    let header =
        format!("POST {RPC} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 10 * 1024 * 1024 + 1);
    assert_eq!(raw_status(&node.addr, header.as_bytes()).await, 413);
    assert_eq!(raw_status(&node.addr, header.replace(RPC, ONION).as_bytes()).await, 413);
    // ... and counted while streaming when the length is not declared (chunked).
    let mut chunked =
        format!("POST {RPC} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..11 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    assert_eq!(raw_status(&node.addr, &chunked).await, 413);
    // A real oversized body through a normal client.
    let (status, _) = post(&client, &node.url, RPC, vec![b' '; 10 * 1024 * 1024 + 1]).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn rate_limit_applies_to_rpc_only() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("n"), &["--rate", "1", "--burst", "20"]);
    let client = client();
    node.make_ready(&client).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(post(&client, &node.url, RPC, r#"{"method":"info","params":{}}"#).await.0);
    }
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(statuses[..5].iter().all(|&s| s == 200), "{statuses:?}");
    assert!(limited >= 10, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 429), "{statuses:?}");
    // A refused request whose body the node did not read leaves the pooled client usable: the
    // next request does not land on a half-read connection.
    for _ in 0..3 {
        match client.post(format!("{}{RPC}", node.url)).body(vec![b' '; 1 << 20]).send().await {
            Ok(response) => {
                if response.status() == 429 {
                    assert_eq!(response.headers()["connection"], "close");
                }
                let _ = response.bytes().await;
            }
            // The node may answer 429 and close before the whole body is written; the client
            // then sees the connection closed mid-write (an early refusal on HTTP/1.1).
            Err(e) => assert!(e.is_request(), "{e:?}"),
        }
        let after = client.post(format!("{}/ping_test/v1", node.url)).send().await.unwrap();
        assert_eq!(after.status(), 200);
    }
    // The onion entry point is not rate-limited.
    let (status, _) = post(&client, &node.url, ONION, "not an onion request").await;
    assert_ne!(status, 429);
    // Neither is ping.
    assert_eq!(client.post(format!("{}/ping_test/v1", node.url)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn malformed_input_never_yields_500() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("n"), &[]);
    let client = client();
    node.make_ready(&client).await;
    let mut bodies: Vec<Vec<u8>> = [
        "",
        "{",
        "null",
        "[]",
        "\"x\"",
        r#"{"method":1,"params":{}}"#,
        r#"{"method":"store"}"#,
        r#"{"method":"store","params":[]}"#,
        r#"{"method":"nope","params":{}}"#,
        r#"{"method":"store","params":{"pubkey":"zz","data":1}}"#,
        r#"{"method":"retrieve","params":{"pubkey":"05","namespace":"x"}}"#,
        r#"{"method":"batch","params":{"requests":[{"method":"batch","params":{}}]}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    bodies.push(vec![0xff, 0xfe, 0x00, 0x80]);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for len in [1usize, 7, 64, 1000, 65_536] {
        let bytes = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        bodies.push(bytes);
    }
    for body in bodies {
        for path in [RPC, ONION] {
            let (status, text) = post(&client, &node.url, path, body.clone()).await;
            assert!((400..500).contains(&status) || status == 503, "{path} {status} {text}");
        }
    }
    // Broken HTTP itself is answered (by hyper) with a 4xx, and the server keeps serving.
    let status = raw_status(&node.addr, b"POST /storage_rpc/v1 HTTP/1.1\r\nContent-Length: x\r\n\r\n").await;
    assert!((400..500).contains(&status), "{status}");
    let (status, _) = post(&client, &node.url, RPC, r#"{"method":"info","params":{}}"#).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn restart_keeps_key_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n");
    let client = client();
    let first = NodeProc::start(&data, &[]);
    first.make_ready(&client).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let store = serde_json::json!({"method": "store", "params": {
        "pubkey": format!("05{}", "ab".repeat(32)),
        "timestamp": now as u64,
        "ttl": 3_600_000,
        "data": "aGVsbG8=",
    }});
    let response = client.post(format!("{}{RPC}", first.url)).body(store.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let key = first.ed25519.clone();
    let status = first.terminate();
    assert!(status.success(), "exit on SIGTERM: {status:?}");

    let second = NodeProc::start(&data, &[]);
    assert_eq!(second.ed25519, key);
    // The node list file is still there: ready at once, and the stored message survived.
    let metrics = client.get(format!("{}/metrics", second.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("session_node_messages 1"), "{metrics}");
    let (status, _) = post(&client, &second.url, RPC, r#"{"method":"info","params":{}}"#).await;
    assert_eq!(status, 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("node.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn tls_mode_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n");
    let node = NodeProc::start(&data, &["--tls"]);
    assert!(node.url.starts_with("https://"), "{}", node.url);
    let client = client();
    let ping = client.post(format!("{}/ping_test/v1", node.url)).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    node.make_ready(&client).await;
    let (status, text) = post(&client, &node.url, RPC, r#"{"method":"info","params":{}}"#).await;
    assert_eq!(status, 200, "{text}");
    // Plain HTTP on the TLS port does not get an answer.
    let plain = reqwest::Client::new().get(format!("http://{}/metrics", node.addr)).send().await;
    assert!(plain.is_err());
    let cert = std::fs::read(data.join("tls-cert.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("tls-key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(node.terminate().success());
    let again = NodeProc::start(&data, &["--tls"]);
    assert_eq!(std::fs::read(data.join("tls-cert.pem")).unwrap(), cert, "certificate kept across restarts");
    let ping = client.post(format!("{}/ping_test/v1", again.url)).send().await.unwrap();
    assert_eq!(ping.status(), 200);
}

/// `reqwest` is built without its `json` feature; parse by hand.
trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}
