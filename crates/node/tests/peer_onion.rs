//! The node-to-node channel and onion requests through real HTTP servers on 127.0.0.1, with
//! real node contexts (SQLite stores in temp dirs).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use session_node::config::NodeConfig;
use session_node::identity::NodeIdentity;
use session_node::metrics::Metrics;
use session_node::nodelist::{NodeList, NodeRecord};
use session_node::peer::{self, PeerClient, PeerReply, auth};
use session_node::server::{self, tls};
use session_node::store::{RetrieveLimits, Store, StoreOptions, StoredMessage};
use session_node::{AccountKey, NodeContext, onion};
use session_protocol::IdentityKey;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::onion::{
    Destination, EncType, FinalOptions, HopKey, LayerSecrets, NodeKeys, Protocol, RequestSpec,
    ServerDestination, build_request, build_request_random, encode_combined_payload, encode_v4_request,
    encode_v4_response, parse_entry_request, parse_v4_request, parse_v4_response, seal_response,
};
use session_protocol::primitives::x25519_base;
use tokio::net::TcpListener;

const SWARM: u64 = 0x1234_5678_9abc_def0;

/// One in-process node: its context, address and record, and the temp dir of its store.
struct TestNode {
    ctx: Arc<NodeContext>,
    record: NodeRecord,
    _dir: tempfile::TempDir,
}

impl TestNode {
    fn keys(&self) -> NodeKeys {
        NodeKeys { ed25519: self.record.ed25519().unwrap(), x25519: self.record.x25519().unwrap() }
    }
}

/// Binds `n` listeners, builds a context for each with `config`, gives every node the list of all
/// of them (plus `extra` records), and serves `/onion_req/v2` and the channel routes (over HTTPS
/// with a self-signed certificate when the config says `tls`).
async fn start_nodes(n: usize, config: impl Fn(usize) -> NodeConfig, extra: &[NodeRecord]) -> Vec<TestNode> {
    let mut pending = Vec::new();
    for i in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let identity = NodeIdentity::load_or_create(dir.path()).unwrap();
        let mut record = record_for(identity.key(), port);
        let config = config(i);
        record.tls = config.tls;
        pending.push((config, listener, dir, identity, record));
    }
    let mut records: Vec<NodeRecord> = pending.iter().map(|p| p.4.clone()).collect();
    records.extend_from_slice(extra);
    let mut nodes = Vec::new();
    for (config, listener, dir, identity, record) in pending {
        let store =
            Store::open(dir.path(), StoreOptions { max_db_bytes: 1 << 30, read_connections: 2 }).unwrap();
        let ctx = Arc::new(NodeContext {
            peers: PeerClient::new(identity.clone()).unwrap(),
            identity,
            config,
            nodes: ArcSwap::from_pointee(NodeList::new(records.clone())),
            store,
            metrics: Metrics::default(),
            list_changed: Default::default(),
        });
        let tls = ctx.config.tls.then(|| tls::server_config(dir.path()).unwrap());
        // The shutdown sender lives as long as the test's runtime.
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        std::mem::forget(shutdown);
        tokio::spawn(server::serve(listener, tls, app(ctx.clone()), shutdown_rx));
        nodes.push(TestNode { ctx, record, _dir: dir });
    }
    nodes
}

fn app(ctx: Arc<NodeContext>) -> Router {
    async fn onion_req(State(ctx): State<Arc<NodeContext>>, body: Bytes) -> onion::OnionReply {
        onion::handle(&ctx, &body).await
    }
    Router::new().route("/onion_req/v2", post(onion_req)).merge(peer::router()).with_state(ctx)
}

fn record_for(key: &IdentityKey, port: u16) -> NodeRecord {
    NodeRecord {
        pubkey_ed25519: hex::encode(key.ed25519_public()),
        pubkey_x25519: hex::encode(key.x25519_public()),
        public_ip: Ipv4Addr::LOCALHOST,
        storage_port: port,
        storage_lmq_port: 0,
        swarm_id: SWARM,
        tls: false,
    }
}

fn url(node: &TestNode, path: &str) -> String {
    let scheme = if node.record.tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{}{path}", node.record.storage_port)
}

/// A client like a Session client's: does not verify node certificates.
fn http() -> reqwest::Client {
    tls::install_crypto_provider();
    reqwest::Client::builder().tls_danger_accept_invalid_certs(true).build().unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
        .unwrap()
}

fn account(i: u8) -> AccountKey {
    format!("05{}", hex::encode([i; 32])).parse().unwrap()
}

fn message(account: &AccountKey, namespace: i16, data: &[u8]) -> StoredMessage {
    let namespace = Namespace(namespace);
    StoredMessage {
        hash: MessageHash::compute(account.as_bytes(), namespace, data),
        namespace,
        timestamp_ms: now_ms(),
        expiry_ms: now_ms() + 3_600_000,
        data: data.to_vec(),
    }
}

/// POSTs `body` to `path` of `to`, signed as `signer` claiming to be `claimed` at `timestamp`.
async fn raw_signed_post(
    to: &TestNode,
    path: &str,
    signer: &IdentityKey,
    claimed: &str,
    timestamp: i64,
    body: &[u8],
) -> (u16, String) {
    let h = auth::sign_request(signer, claimed, &to.record.pubkey_ed25519, "POST", path, timestamp, body);
    let reply = http()
        .post(url(to, path))
        .header(auth::PUBKEY_HEADER, h.pubkey)
        .header(auth::TIMESTAMP_HEADER, h.timestamp)
        .header(auth::SIGNATURE_HEADER, h.signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

#[tokio::test]
async fn channel_accepts_listed_peer_and_carries_rpc_and_messages() {
    let nodes = start_nodes(2, |_| NodeConfig::default(), &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);

    // A forwarded store: b runs it locally and answers with its own signed result.
    let acct = account(7);
    let params = json!({
        "pubkey": acct.to_hex(),
        "ttl": 3_600_000,
        "timestamp": now_ms(),
        "data": STANDARD.encode(b"forwarded"),
    });
    let reply = a.ctx.peers.forward_rpc(&b.record, "store", &params).await;
    let PeerReply::Answered { status, body } = reply else { panic!("no answer: {reply:?}") };
    assert_eq!(status, 200, "{body}");
    assert!(body.get("hash").is_some(), "{body}");
    let got = b
        .ctx
        .store
        .retrieve(acct, Namespace(0), None, RetrieveLimits { max_count: None, max_size: 1 << 20 }, now_ms())
        .await
        .unwrap();
    assert_eq!(got.messages.len(), 1);

    // A non-recursive method is refused by the receiver's RPC layer (but the channel let it in).
    let reply = a.ctx.peers.forward_rpc(&b.record, "info", &json!({})).await;
    assert!(matches!(reply, PeerReply::Answered { status: 400, .. }), "{reply:?}");

    // Bulk transfer keeps namespaces; a second transfer inserts nothing new.
    let other = account(9);
    let batch = vec![
        (acct, message(&acct, -11, b"group revoked")),
        (other, message(&other, 5, b"user groups")),
        (other, message(&other, 0, b"plain")),
    ];
    assert_eq!(a.ctx.peers.send_messages(&b.record, batch.clone()).await.unwrap(), 3);
    assert_eq!(a.ctx.peers.send_messages(&b.record, batch.clone()).await.unwrap(), 0);
    for (account, sent) in &batch {
        let got = b
            .ctx
            .store
            .retrieve(
                *account,
                sent.namespace,
                None,
                RetrieveLimits { max_count: None, max_size: 1 << 20 },
                now_ms(),
            )
            .await
            .unwrap();
        assert!(
            got.messages.iter().any(|m| m.hash == sent.hash && m.data == sent.data),
            "{:?}",
            sent.namespace
        );
    }

    // A transfer with a forged hash, an expired message and one good message.
    let mut forged = message(&other, 0, b"x");
    forged.data = b"y".to_vec();
    let mut expired = message(&other, 0, b"old");
    expired.expiry_ms = now_ms() - 1;
    let fresh = message(&other, 0, b"fresh");
    let sent = vec![(other, forged), (other, expired), (other, fresh)];
    assert_eq!(a.ctx.peers.send_messages(&b.record, sent).await.unwrap(), 1);
}

#[tokio::test]
async fn channel_rejects_unknown_forged_and_stale() {
    let nodes = start_nodes(2, |_| NodeConfig::default(), &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let a_key = a.ctx.identity.key();
    let stranger = IdentityKey::from_seed_bytes(&[0x55; 32]);
    let stranger_hex = hex::encode(stranger.ed25519_public());
    let body = br#"{"method":"store","params":{}}"#;

    // Unknown sender, through the real client.
    let client = PeerClient::new(NodeIdentity::new(stranger.clone())).unwrap();
    let reply = client.forward_rpc(&b.record, "store", &json!({})).await;
    assert!(matches!(reply, PeerReply::Answered { status: 403, .. }), "{reply:?}");
    assert_eq!(raw_signed_post(b, peer::RPC_PATH, &stranger, &stranger_hex, now_ms(), body).await.0, 403);

    // Claims to be a, signed by someone else.
    let a_hex = a.record.pubkey_ed25519.clone();
    assert_eq!(raw_signed_post(b, peer::RPC_PATH, &stranger, &a_hex, now_ms(), body).await.0, 401);
    // Signed by a for a different path.
    let h =
        auth::sign_request(a_key, &a_hex, &b.record.pubkey_ed25519, "POST", peer::ONION_PATH, now_ms(), body);
    let status = http()
        .post(url(b, peer::RPC_PATH))
        .header(auth::PUBKEY_HEADER, h.pubkey)
        .header(auth::TIMESTAMP_HEADER, h.timestamp)
        .header(auth::SIGNATURE_HEADER, h.signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    // Stale and future timestamps.
    assert_eq!(raw_signed_post(b, peer::RPC_PATH, a_key, &a_hex, now_ms() - 61_000, body).await.0, 401);
    assert_eq!(raw_signed_post(b, peer::RPC_PATH, a_key, &a_hex, now_ms() + 61_000, body).await.0, 401);
    // No headers at all.
    let status = http().post(url(b, peer::MESSAGES_PATH)).body("{}").send().await.unwrap().status();
    assert_eq!(status, 401);
    // And the genuine article passes authentication (the RPC layer then parses the params).
    let (status, text) = raw_signed_post(b, peer::RPC_PATH, a_key, &a_hex, now_ms(), body).await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("signature"), "{text}");
}

/// Builds a request for `dest` over `path`, POSTs it to the first hop and decrypts the reply.
async fn onion_rpc(
    path: &[&TestNode],
    dest: &TestNode,
    enc_type: EncType,
    options: FinalOptions,
    rpc: &Value,
) -> Value {
    let path_keys: Vec<NodeKeys> = path.iter().map(|n| n.keys()).collect();
    let body = serde_json::to_vec(rpc).unwrap();
    let spec = RequestSpec {
        enc_type,
        path: &path_keys,
        destination: Destination::Snode { node: dest.keys(), body: &body, options },
        hop_no: None,
    };
    let request = build_request_random(&spec, &mut rand::rng()).unwrap();
    let reply = http().post(url(path[0], "/onion_req/v2")).body(request.body).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let bytes = reply.bytes().await.unwrap();
    let plaintext = request.response.decrypt_body(&bytes).unwrap();
    serde_json::from_slice(&plaintext).unwrap()
}

#[tokio::test]
async fn onion_and_channel_over_tls_peers() {
    // Nodes 1 and 2 serve HTTPS with self-signed certificates; the channel does not verify them.
    let nodes = start_nodes(4, |i| NodeConfig { tls: i == 1 || i == 2, ..NodeConfig::default() }, &[]).await;
    assert!(nodes[1].record.tls && !nodes[0].record.tls);
    let path = [&nodes[0], &nodes[1], &nodes[2]];
    let info = json!({"method": "info", "params": {}});
    let reply = onion_rpc(&path, &nodes[3], EncType::XChaCha20, FinalOptions::default(), &info).await;
    assert_eq!(reply["status"], 200, "{reply}");
    let reply = nodes[3].ctx.peers.forward_rpc(&nodes[2].record, "info", &json!({})).await;
    assert!(matches!(reply, PeerReply::Answered { status: 400, .. }), "{reply:?}");
}

#[tokio::test]
async fn onion_three_hops_to_destination_node_both_enc_types() {
    let nodes = start_nodes(4, |_| NodeConfig::default(), &[]).await;
    let path = [&nodes[0], &nodes[1], &nodes[2]];
    let info = json!({"method": "info", "params": {}});
    for enc_type in [EncType::XChaCha20, EncType::AesGcm] {
        let reply = onion_rpc(&path, &nodes[3], enc_type, FinalOptions::default(), &info).await;
        assert_eq!(reply["status"], 200, "{reply}");
        // The body is the RPC's JSON as a string.
        let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["version"], json!([2, 8, 0]));

        // json:true embeds the object, base64:false returns raw bytes.
        let options = FinalOptions { json: true, base64: false };
        let reply = onion_rpc(&path, &nodes[3], enc_type, options, &info).await;
        assert_eq!(reply["body"]["version"], json!([2, 8, 0]), "{reply}");

        // Errors of the RPC come back encrypted too, as plain strings.
        let bad = json!({"method": "no_such_method", "params": {}});
        let reply = onion_rpc(&path, &nodes[3], enc_type, FinalOptions::default(), &bad).await;
        assert_eq!(reply["status"], 400);
        assert_eq!(reply["body"], "no method no_such_method");
    }
    // A store through the onion lands in the destination's database.
    let acct = account(3);
    let store = json!({"method": "store", "params": {
        "pubkey": acct.to_hex(), "ttl": 600_000, "timestamp": now_ms(), "data": STANDARD.encode(b"via onion")}});
    let reply =
        onion_rpc(&path, &nodes[3], EncType::XChaCha20, FinalOptions { json: true, base64: true }, &store)
            .await;
    assert_eq!(reply["status"], 200, "{reply}");

    let metrics = |n: &TestNode| n.ctx.metrics.render(Default::default());
    assert!(metrics(&nodes[0]).contains("session_node_onion_relayed_total 7"), "{}", metrics(&nodes[0]));
    assert!(metrics(&nodes[2]).contains("session_node_onion_relayed_total 7"));
    assert!(metrics(&nodes[3]).contains("session_node_onion_final_total 7"));
}

/// A v4 "server": decrypts the exit node's POST with its X25519 key, answers with a v4 response
/// echoing the request's method, endpoint and body.
async fn start_v4_server(key: IdentityKey) -> SocketAddr {
    async fn lsrpc(State(key): State<Arc<IdentityKey>>, body: Bytes) -> Vec<u8> {
        let entry = parse_entry_request(&body).unwrap();
        let hop =
            HopKey::for_node(entry.enc_type, key.x25519_secret(), key.x25519_public(), &entry.ephemeral_key)
                .unwrap();
        let plaintext = hop.decrypt(entry.ciphertext).unwrap();
        let request = parse_v4_request(&plaintext).unwrap();
        let echo = json!({
            "method": request.method,
            "endpoint": request.endpoint,
            "body": String::from_utf8_lossy(request.body.unwrap_or_default()),
        });
        let response =
            encode_v4_response(200, &[("content-type", "application/json")], echo.to_string().as_bytes());
        seal_response(&hop, &[9; 24], &response, false)
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/oxen/v4/lsrpc", post(lsrpc)).with_state(Arc::new(key));
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

/// Builds a v4 request to `host:port` through `path` and returns the HTTP status, the body, the
/// response context and the key of the exit node's layer.
async fn proxied(
    path: &[&TestNode],
    host: &str,
    port: u16,
    server_key: &IdentityKey,
    enc_type: EncType,
) -> (u16, Vec<u8>, session_protocol::onion::ResponseContext, HopKey) {
    let path_keys: Vec<NodeKeys> = path.iter().map(|n| n.keys()).collect();
    let v4 = encode_v4_request(&session_protocol::onion::V4Request {
        method: "POST",
        endpoint: "/room/lobby/messages?limit=5",
        headers: &[("content-type", "application/json")],
        body: Some(br#"{"hello":"server"}"#),
    });
    let spec = RequestSpec {
        enc_type,
        path: &path_keys,
        destination: Destination::Server(ServerDestination {
            host,
            target: "/oxen/v4/lsrpc",
            protocol: Protocol::Http,
            port: Some(port),
            x25519: *server_key.x25519_public(),
            request: &v4,
        }),
        hop_no: None,
    };
    let secrets: Vec<LayerSecrets> =
        (0..=path.len()).map(|_| LayerSecrets::random(&mut rand::rng())).collect();
    let exit_secret = &secrets[1].ephemeral_secret;
    let exit_key = HopKey::for_client(
        enc_type,
        exit_secret,
        &x25519_base(exit_secret),
        path[path.len() - 1].ctx.identity.key().x25519_public(),
    )
    .unwrap();
    let request = build_request(&spec, &secrets).unwrap();
    let reply = http().post(url(path[0], "/onion_req/v2")).body(request.body).send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.bytes().await.unwrap().to_vec(), request.response, exit_key)
}

#[tokio::test]
async fn onion_proxy_to_allowlisted_v4_server() {
    let server_key = IdentityKey::from_seed_bytes(&[0x77; 32]);
    let server = start_v4_server(server_key.clone()).await;
    // Node 2 (the exit) allowlists 127.0.0.1 with loopback allowed; node 1 allowlists it without
    // loopback; node 0 allowlists nothing.
    let nodes = start_nodes(
        3,
        |i| NodeConfig {
            proxy_allowlist: if i == 0 { vec![] } else { vec!["127.0.0.1".into()] },
            allow_loopback_proxy: i == 2,
            ..NodeConfig::default()
        },
        &[],
    )
    .await;
    for enc_type in [EncType::XChaCha20, EncType::AesGcm] {
        let path = [&nodes[0], &nodes[1], &nodes[2]];
        let (status, body, response, _) =
            proxied(&path, "127.0.0.1", server.port(), &server_key, enc_type).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let plaintext = response.decrypt_body(&body).unwrap();
        let v4 = parse_v4_response(&plaintext).unwrap();
        assert_eq!(v4.code, 200);
        let echo: Value = serde_json::from_slice(v4.body.unwrap()).unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["endpoint"], "/room/lobby/messages?limit=5");
        assert_eq!(echo["body"], r#"{"hello":"server"}"#);
    }

    // Exits that may not proxy there answer with an encrypted 403 (base64, HTTP 200), sealed with
    // the exit's layer key.
    let refused = |status: u16, body: &[u8], exit_key: &HopKey| {
        assert_eq!(status, 200);
        let sealed = STANDARD.decode(body).unwrap();
        let reply: Value = serde_json::from_slice(&exit_key.decrypt(&sealed).unwrap()).unwrap();
        assert_eq!(reply["status"], 403, "{reply}");
    };
    for exit in [&nodes[1], &nodes[0]] {
        let path = [&nodes[2], exit];
        let (status, body, _, exit_key) =
            proxied(&path, "127.0.0.1", server.port(), &server_key, EncType::AesGcm).await;
        refused(status, &body, &exit_key);
    }
    // "localhost" is loopback too, and on no allowlist.
    let path = [&nodes[0], &nodes[2]];
    let (status, body, _, exit_key) =
        proxied(&path, "localhost", server.port(), &server_key, EncType::XChaCha20).await;
    refused(status, &body, &exit_key);
}

#[tokio::test]
async fn onion_errors_unknown_hop_garbage_and_hop_limit() {
    let ghost = IdentityKey::from_seed_bytes(&[0x66; 32]);
    // The ghost is not in anyone's list; "dead" is listed but nothing listens on its port.
    let dead_key = IdentityKey::from_seed_bytes(&[0x44; 32]);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        record_for(&dead_key, port)
    };
    let nodes = start_nodes(2, |_| NodeConfig::default(), &[dead]).await;
    let client = http();
    let info = serde_json::to_vec(&json!({"method": "info", "params": {}})).unwrap();
    let ghost_keys = NodeKeys { ed25519: ghost.ed25519_public(), x25519: *ghost.x25519_public() };
    let dead_keys = NodeKeys { ed25519: dead_key.ed25519_public(), x25519: *dead_key.x25519_public() };

    // Unknown next hop, seen by the second node and passed back by the first.
    let path = [nodes[0].keys(), nodes[1].keys()];
    let spec = RequestSpec {
        enc_type: EncType::XChaCha20,
        path: &path,
        destination: Destination::Snode { node: ghost_keys, body: &info, options: FinalOptions::default() },
        hop_no: None,
    };
    let request = build_request_random(&spec, &mut rand::rng()).unwrap();
    let reply = client.post(url(&nodes[0], "/onion_req/v2")).body(request.body).send().await.unwrap();
    assert_eq!(reply.status(), 502);
    assert_eq!(
        reply.text().await.unwrap(),
        format!("Next node not found: {}", hex::encode(ghost_keys.ed25519))
    );

    // Listed but unreachable next hop.
    let spec = RequestSpec { path: &path[..1], ..spec };
    let spec = RequestSpec {
        destination: Destination::Snode { node: dead_keys, body: &info, options: FinalOptions::default() },
        ..spec
    };
    let request = build_request_random(&spec, &mut rand::rng()).unwrap();
    let reply = client.post(url(&nodes[0], "/onion_req/v2")).body(request.body).send().await.unwrap();
    assert_eq!(reply.status(), 502);

    // Garbage and undecryptable layers: 400, plain text, never 500.
    let eph = hex::encode([9u8; 32]);
    let wrong_key = encode_combined_payload(
        &[1u8; 64],
        format!(r#"{{"ephemeral_key":"{eph}","enc_type":"xchacha20"}}"#).as_bytes(),
    )
    .unwrap();
    for (body, expected) in [
        (b"\x00\x01garbage".to_vec(), None),
        (vec![0xff; 300], None),
        (Vec::new(), None),
        (wrong_key.clone(), Some("Invalid ciphertext")),
    ] {
        let reply = client.post(url(&nodes[0], "/onion_req/v2")).body(body).send().await.unwrap();
        assert_eq!(reply.status(), 400);
        if let Some(expected) = expected {
            assert_eq!(reply.text().await.unwrap(), expected);
        }
    }

    // A layer that decrypts but is not a combined payload: encrypted "Invalid json", HTTP 200.
    let secret = [5u8; 32];
    let public = session_protocol::primitives::x25519_base(&secret);
    let node_x = nodes[0].ctx.identity.key().x25519_public();
    let hop = HopKey::for_client(EncType::AesGcm, &secret, &public, node_x).unwrap();
    let ciphertext = hop.encrypt_with_nonce(&[3; 24], b"not a payload");
    let meta = format!(r#"{{"ephemeral_key":"{}","enc_type":"aes-gcm"}}"#, hex::encode(public));
    let body = encode_combined_payload(&ciphertext, meta.as_bytes()).unwrap();
    let reply = client.post(url(&nodes[0], "/onion_req/v2")).body(body).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let sealed = STANDARD.decode(reply.bytes().await.unwrap()).unwrap();
    let reply: Value = serde_json::from_slice(&hop.decrypt(&sealed).unwrap()).unwrap();
    assert_eq!(reply, json!({"status": 400, "body": "Invalid json"}));

    // Random bytes, and random ciphertexts in well-formed envelopes, straight into the handlers.
    use rand::Rng;
    let mut rng = rand::rng();
    for i in 0..300usize {
        let mut junk = vec![0u8; i % 97];
        rng.fill_bytes(&mut junk);
        let enveloped = encode_combined_payload(
            &junk,
            format!(
                r#"{{"ephemeral_key":"{}","enc_type":"{}"}}"#,
                hex::encode(public),
                ["aes-gcm", "xchacha20"][i % 2]
            )
            .as_bytes(),
        )
        .unwrap();
        for body in [&junk, &enveloped] {
            assert_eq!(onion::handle(&nodes[0].ctx, body).await.status, 400);
            assert_eq!(onion::handle_relayed(&nodes[0].ctx, body).await.status, 400);
        }
    }

    // The relay receiver refuses a hop count past 15.
    let relayed = encode_combined_payload(
        &ciphertext,
        format!(r#"{{"ephemeral_key":"{}","enc_type":"aes-gcm","hop_no":16}}"#, hex::encode(public))
            .as_bytes(),
    )
    .unwrap();
    let reply = onion::handle_relayed(&nodes[0].ctx, &relayed).await;
    assert_eq!((reply.status, reply.body.as_slice()), (400, &b"onion request max path length exceeded"[..]));
    // Garbage on the relay endpoint, from a listed peer: still 400.
    let a_hex = nodes[1].record.pubkey_ed25519.clone();
    let (status, _) = raw_signed_post(
        &nodes[0],
        peer::ONION_PATH,
        nodes[1].ctx.identity.key(),
        &a_hex,
        now_ms(),
        b"\x07junk",
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn full_server_onion_three_hops_and_forwarded_store() {
    // Four nodes started as the binary starts them, sharing one node-list file.
    let list_dir = tempfile::tempdir().unwrap();
    let list_file = list_dir.path().join("nodes.json");
    let mut dirs = Vec::new();
    let mut running = Vec::new();
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            node_list_file: Some(list_file.clone()),
            ..NodeConfig::default()
        };
        running.push(session_node::node::start(config).await.unwrap());
        dirs.push(dir);
    }
    let records: Vec<NodeRecord> =
        running.iter().map(|n| record_for(n.ctx.identity.key(), n.addr.port())).collect();
    let file = json!({ "service_node_states": records });
    std::fs::write(&list_file, serde_json::to_vec(&file).unwrap()).unwrap();
    for _ in 0..100 {
        if running.iter().all(|n| n.ctx.node_list().nodes().len() == 4) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(running.iter().all(|n| n.ctx.node_list().nodes().len() == 4), "node list not loaded");

    let keys: Vec<NodeKeys> = records
        .iter()
        .map(|r| NodeKeys { ed25519: r.ed25519().unwrap(), x25519: r.x25519().unwrap() })
        .collect();
    let acct = account(0x42);
    let store = serde_json::to_vec(&json!({"method": "store", "params": {
        "pubkey": acct.to_hex(), "ttl": 600_000, "timestamp": now_ms(), "data": STANDARD.encode(b"everywhere")}}))
    .unwrap();
    for enc_type in [EncType::XChaCha20, EncType::AesGcm] {
        let spec = RequestSpec {
            enc_type,
            path: &keys[..3],
            destination: Destination::Snode {
                node: keys[3],
                body: &store,
                options: FinalOptions { json: true, base64: true },
            },
            hop_no: None,
        };
        let request = build_request_random(&spec, &mut rand::rng()).unwrap();
        let reply = http()
            .post(format!("{}/onion_req/v2", running[0].url()))
            .body(request.body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let plaintext = request.response.decrypt_body(&reply.bytes().await.unwrap()).unwrap();
        let reply: Value = serde_json::from_slice(&plaintext).unwrap();
        assert_eq!(reply["status"], 200, "{reply}");
        // The destination forwarded the store to the other three members over the channel.
        let swarm = reply["body"]["swarm"].as_object().unwrap();
        assert_eq!(swarm.len(), 4, "{reply}");
        assert!(swarm.values().all(|r| r.get("failed").is_none()), "{reply}");
    }
    let metrics =
        http().get(format!("{}/metrics", running[1].url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("session_node_onion_relayed_total 2"), "{metrics}");
    for node in running {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn catch_up_endpoints_compare_list_and_fetch() {
    use session_node::peer::wire::{AccountsRequest, DigestRequest, FetchAccount, FetchRequest, WireBucket};
    let nodes = start_nodes(2, |_| NodeConfig::default(), &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let swarm = format!("{SWARM:x}");
    let alice = account(3);
    let msgs: Vec<_> = (0..3).map(|i| message(&alice, [0, 2, -11][i], format!("m{i}").as_bytes())).collect();
    for m in &msgs {
        b.ctx.store.store(alice, m.clone()).await.unwrap();
    }
    a.ctx.store.store(alice, msgs[0].clone()).await.unwrap();

    // Same content: nothing differs. Claiming an empty store: alice's bucket differs.
    let digest_of_a = session_node::sync::digest::bucket_digests(&[session_node::sync::digest::digest_of(
        alice,
        &msgs.iter().map(|m| m.hash).collect::<Vec<_>>(),
    )]);
    let same = DigestRequest {
        swarm: swarm.clone(),
        buckets: digest_of_a
            .iter()
            .map(|d| WireBucket { bucket: d.bucket, count: d.count, digest: hex::encode(d.digest) })
            .collect(),
    };
    assert!(a.ctx.peers.digest(&b.record, &same).await.unwrap().differ.is_empty());
    let empty = DigestRequest { swarm: swarm.clone(), buckets: Vec::new() };
    let differ = a.ctx.peers.digest(&b.record, &empty).await.unwrap().differ;
    assert_eq!(differ, vec![3u8], "alice's key starts with 03");

    let listed = a
        .ctx
        .peers
        .account_digests(&b.record, &AccountsRequest { swarm: swarm.clone(), buckets: differ })
        .await;
    let listed = listed.unwrap().accounts;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].account.as_str(), listed[0].count), (alice.to_hex().as_str(), 3));

    let fetch = FetchRequest {
        swarm: swarm.clone(),
        accounts: vec![FetchAccount {
            account: alice.to_hex(),
            have: vec![msgs[0].hash.as_str().to_owned()],
        }],
    };
    let reply = a.ctx.peers.fetch(&b.record, &fetch).await.unwrap();
    assert!(!reply.more);
    let got: Vec<_> = reply.messages.iter().map(|w| w.decode().unwrap().1).collect();
    assert_eq!(got, msgs[1..].to_vec(), "namespaces, timestamps and expiries as stored");

    // Malformed and wrong-swarm requests: documented 4xx.
    for (path, body, status) in [
        (peer::DIGEST_PATH, b"{".to_vec(), 400),
        (peer::ACCOUNTS_PATH, b"[]".to_vec(), 400),
        (peer::FETCH_PATH, br#"{"swarm":"zz","accounts":[]}"#.to_vec(), 400),
        (
            peer::FETCH_PATH,
            format!(r#"{{"swarm":"{swarm}","accounts":[{{"account":"05","have":[]}}]}}"#).into_bytes(),
            400,
        ),
        (
            peer::FETCH_PATH,
            format!(
                r#"{{"swarm":"{swarm}","accounts":[{{"account":"{}","have":["short"]}}]}}"#,
                alice.to_hex()
            )
            .into_bytes(),
            400,
        ),
        (peer::DIGEST_PATH, br#"{"swarm":"1","buckets":[]}"#.to_vec(), 409),
        (
            peer::DIGEST_PATH,
            format!(r#"{{"swarm":"{swarm}","buckets":[{{"bucket":300}}]}}"#).into_bytes(),
            400,
        ),
    ] {
        let key = a.ctx.identity.key();
        let (got, text) = raw_signed_post(b, path, key, a.ctx.identity.ed25519_hex(), now_ms(), &body).await;
        assert_eq!(got, status, "{path} {}: {text}", String::from_utf8_lossy(&body));
    }
}
