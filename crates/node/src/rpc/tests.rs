//! Tests of the RPC layer against a real store: a node alone in its swarm (so recursive methods
//! have nobody to forward to), plus a second swarm with one other node for 421 checks.

use std::net::Ipv4Addr;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use session_protocol::IdentityKey;
use session_protocol::keys::verify_ed25519;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{
    ExpireMode, NamespaceSelector, NodeResultToSign, SignableRequest, SubaccountFlags, SubaccountToken,
};
use session_protocol::swarm::SwarmId;

use super::*;
use crate::config::NodeConfig;
use crate::identity::NodeIdentity;
use crate::metrics::Metrics;
use crate::nodelist::NodeRecord;
use crate::peer::PeerClient;
use crate::store::{Store, StoreOptions};

const OUR_SWARM: u64 = 100;
const OTHER_SWARM: u64 = 1 << 63;

struct Harness {
    ctx: NodeContext,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    harness_with_cap(1 << 30)
}

fn harness_with_cap(max_db_bytes: u64) -> Harness {
    let identity = NodeIdentity::new(IdentityKey::from_seed_bytes(&[42u8; 32]));
    let nodes = vec![record(&identity, 22021, OUR_SWARM), other_swarm_node()];
    node_context(identity, nodes, max_db_bytes)
}

/// A node in the other swarm (for 421 checks).
fn other_swarm_node() -> NodeRecord {
    let other = NodeIdentity::new(IdentityKey::from_seed_bytes(&[43u8; 32]));
    NodeRecord { public_ip: Ipv4Addr::new(127, 0, 0, 2), ..record(&other, 22031, OTHER_SWARM) }
}

fn record(identity: &NodeIdentity, port: u16, swarm_id: u64) -> NodeRecord {
    NodeRecord {
        pubkey_ed25519: identity.ed25519_hex().to_owned(),
        pubkey_x25519: identity.x25519_hex().to_owned(),
        public_ip: Ipv4Addr::new(127, 0, 0, 1),
        storage_port: port,
        storage_lmq_port: port.saturating_sub(1),
        swarm_id,
        tls: false,
    }
}

/// A node context with a fresh store in a temporary directory.
fn node_context(identity: NodeIdentity, nodes: Vec<NodeRecord>, max_db_bytes: u64) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions { max_db_bytes, read_connections: 2 }).unwrap();
    let peers = PeerClient::new(identity.clone()).unwrap();
    let ctx = NodeContext {
        identity,
        config: NodeConfig::default(),
        nodes: ArcSwap::from_pointee(NodeList::new(nodes)),
        store,
        peers,
        metrics: Metrics::default(),
        list_changed: Default::default(),
    };
    Harness { ctx, _dir: dir }
}

/// A client account: a `05` Session ID, or a `03` group keyed directly by its Ed25519 key.
struct Client {
    key: IdentityKey,
    pubkey: [u8; 33],
}

impl Client {
    fn pubkey_hex(&self) -> String {
        hex::encode(self.pubkey)
    }

    fn account(&self) -> AccountKey {
        AccountKey::from_bytes(self.pubkey)
    }

    fn ed_hex(&self) -> String {
        hex::encode(self.key.ed25519_public())
    }

    fn sign(&self, request: &SignableRequest<'_>) -> String {
        STANDARD.encode(request.sign(&self.key))
    }

    /// Params with pubkey (and pubkey_ed25519 for 05) and the signature of `request`.
    fn signed(&self, request: &SignableRequest<'_>, mut extra: Value) -> Value {
        let obj = extra.as_object_mut().unwrap();
        obj.insert("pubkey".into(), json!(self.pubkey_hex()));
        if self.pubkey[0] == 0x05 {
            obj.insert("pubkey_ed25519".into(), json!(self.ed_hex()));
        }
        obj.insert("signature".into(), json!(self.sign(request)));
        extra
    }
}

/// A client whose account maps to our swarm (`ours`) or the other one.
fn client(h: &Harness, prefix: u8, ours: bool) -> Client {
    let want = SwarmId(if ours { OUR_SWARM } else { OTHER_SWARM });
    (0u8..=255)
        .map(|i| {
            let key = IdentityKey::from_seed_bytes(&[i; 32]);
            let mut pubkey = [prefix; 33];
            match prefix {
                0x05 => pubkey[1..].copy_from_slice(key.x25519_public()),
                _ => pubkey[1..].copy_from_slice(&key.ed25519_public()),
            }
            Client { key, pubkey }
        })
        .find(|c| h.ctx.node_list().swarm_of(&c.account()) == Some(want))
        .expect("some seed maps to each swarm")
}

async fn call_as(h: &Harness, method: &str, params: Value, origin: Origin) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"method": method, "params": params})).unwrap();
    let reply = handle_request(&h.ctx, &body, origin).await;
    (reply.status, reply.body_value())
}

async fn call(h: &Harness, method: &str, params: Value) -> (u16, Value) {
    call_as(h, method, params, Origin::Client).await
}

fn own_hex(h: &Harness) -> String {
    h.ctx.identity.ed25519_hex().to_owned()
}

fn node_key(h: &Harness) -> [u8; 32] {
    h.ctx.identity.key().ed25519_public()
}

/// Checks a per-node signature made by our node.
fn assert_node_signed(h: &Harness, result: &Value, what: NodeResultToSign<'_>) {
    let sig = STANDARD.decode(result["signature"].as_str().unwrap()).unwrap();
    assert!(verify_ed25519(&node_key(h), &what.message(), &sig), "node signature does not verify");
}

fn hashes(list: &Value) -> Vec<MessageHash> {
    list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect()
}

/// Stores `data` in `ns` (signing when the namespace needs it) and returns the hash.
async fn store(h: &Harness, c: &Client, ns: i16, data: &[u8], ttl: i64) -> MessageHash {
    let now = h.ctx.now_ms();
    let mut params = json!({
        "pubkey": c.pubkey_hex(),
        "namespace": ns,
        "timestamp": now,
        "ttl": ttl,
        "data": STANDARD.encode(data),
    });
    if Namespace(ns).store_requires_auth() {
        let req = SignableRequest::Store { namespace: Namespace(ns), sig_timestamp: ms_u64(now) };
        params = c.signed(&req, params);
    }
    let (status, body) = call(h, "store", params).await;
    assert_eq!(status, 200, "{body}");
    body["hash"].as_str().unwrap().parse().unwrap()
}

async fn retrieve(h: &Harness, c: &Client, ns: i16, extra: Value) -> (u16, Value) {
    let now = ms_u64(h.ctx.now_ms());
    let req = SignableRequest::Retrieve { namespace: Namespace(ns), timestamp: now };
    let mut params = c.signed(&req, extra);
    params["namespace"] = json!(ns);
    params["timestamp"] = json!(now);
    call(h, "retrieve", params).await
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn info_and_get_swarm() {
    let h = harness();
    let (status, body) = call(&h, "info", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], json!([2, 8, 0]));
    assert_eq!(body["hf"], json!(HARDFORK));
    assert!(body["t"].as_i64().unwrap() > 1_600_000_000_000);

    let c = client(&h, 0x05, true);
    for method in ["get_swarm", "get_snodes_for_pubkey"] {
        let (status, body) = call(&h, method, json!({"pubKey": c.pubkey_hex()})).await;
        assert_eq!(status, 200);
        assert_eq!(body["swarm"], json!("64"));
        let snode = &body["snodes"][0];
        assert_eq!(snode["pubkey_ed25519"], json!(own_hex(&h)));
        assert_eq!(snode["port"], json!("22021"));
        assert_eq!(snode["port_https"], json!(22021));
        assert_eq!(snode["port_omq"], snode["port_quic"]);
        assert!(snode["address"].as_str().unwrap().ends_with(".snode"));
        assert!(body["t"].is_i64() && body["hf"].is_array());
    }
    let (status, body) = call(&h, "get_swarm", json!({"pubkey": "05abc"})).await;
    assert_eq!((status, body), (400, json!("invalid request: Pubkey must be 66 hex digits/33 bytes long")));
}

#[tokio::test]
async fn store_public_inbox_and_retrieve() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let params = json!({
        "pubkey": c.pubkey_hex(),
        "timestamp": now.to_string(),
        "ttl": "86400000",
        "data": STANDARD.encode(b"hello"),
    });
    let (status, body) = call(&h, "store", params.clone()).await;
    assert_eq!(status, 200, "{body}");
    let hash = MessageHash::compute(&c.pubkey, Namespace(0), b"hello");
    assert_eq!(body["hash"], json!(hash.as_str()));
    let mine = &body["swarm"][own_hex(&h)];
    assert_eq!(mine["hash"], json!(hash.as_str()));
    assert_eq!(mine["expiry"], json!(now + 86_400_000));
    assert!(mine["t"].is_i64() && mine.get("already").is_none());
    assert_node_signed(&h, mine, NodeResultToSign::Store { hash: &hash });
    assert!(body["t"].is_i64() && body["hf"].is_array());

    let (status, body) = call(&h, "store", params).await;
    assert_eq!(status, 200);
    assert_eq!(body["swarm"][own_hex(&h)]["already"], json!(true));

    // Namespace 0 needs a signed retrieve.
    let (status, body) = call(&h, "retrieve", json!({"pubkey": c.pubkey_hex()})).await;
    assert_eq!((status, body), (401, json!("retrieve: request signature required")));
    let (status, body) = retrieve(&h, &c, 0, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let msg = &body["messages"][0];
    assert_eq!(msg["hash"], json!(hash.as_str()));
    assert_eq!(msg["data"], json!(STANDARD.encode(b"hello")));
    assert_eq!(msg["expiration"], json!(now + 86_400_000));
    assert_eq!(msg["timestamp"], json!(now));
    assert_eq!(body["more"], json!(false));
    assert!(body["t"].is_i64() && body["hf"].is_array());

    let text = h.ctx.metrics.render(Default::default());
    assert!(text.contains("method=\"store\",status=\"200\"} 2"), "{text}");
    assert!(text.contains("session_node_store_seconds_count 2"));
    assert!(text.contains("session_node_retrieve_seconds_count 1"));
}

#[tokio::test]
async fn store_validation() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let base = |extra: Value| {
        let mut p = json!({"pubkey": c.pubkey_hex(), "timestamp": now, "data": "aGk="});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let cases = [
        (json!({"ttl": 5000}), 403, "Provided expiry/TTL is not valid."),
        (json!({"ttl": 15 * 24 * 3600 * 1000u64}), 403, "Provided expiry/TTL is not valid."),
        (
            json!({"ttl": 60000, "expiry": now + 60000}),
            400,
            "invalid request: Cannot specify both 'expiry' and 'ttl'",
        ),
        (json!({}), 400, "invalid request: Required field 'expiry' or 'ttl' missing"),
        (json!({"ttl": 60000, "timestamp": now + 20_000}), 406, "Timestamp error: check your clock"),
        (
            json!({"ttl": 60000, "data": "!!!"}),
            400,
            "invalid request: Invalid 'data' value: not base64 encoded",
        ),
        (
            json!({"ttl": 60000, "data": "A".repeat(102_404)}),
            400,
            "invalid request: Message body exceeds maximum allowed length of 76800 bytes",
        ),
        (json!({"ttl": "abc"}), 400, "invalid request: Invalid value given for 'ttl': \"abc\""),
        (
            json!({"ttl": 60000, "namespace": "all"}),
            400,
            "invalid request: Invalid value given for 'namespace': expected 16-bit integer",
        ),
        (
            json!({"ttl": 60000, "pubKey": c.pubkey_hex()}),
            400,
            "invalid request: Cannot specify both 'pubkey' and 'pubKey'",
        ),
        (json!({"ttl": 60000, "namespace": 2}), 401, "store: signature required to store to namespace 2"),
    ];
    for (extra, status, text) in cases {
        let (got, body) = call(&h, "store", base(extra.clone())).await;
        assert_eq!((got, body), (status, json!(text)), "{extra}");
    }
    // 30-day TTL is fine outside public inboxes; expiry in the past is a clock error.
    let (status, _) =
        call(&h, "store", base(json!({"expiry": now - 20_000, "timestamp": now - 40_000}))).await;
    assert_eq!(status, 406);
    // Seconds instead of ms.
    let (status, body) = call(&h, "store", base(json!({"expiry": 999_999_999}))).await;
    assert_eq!(
        (status, body),
        (400, json!("invalid request: Invalid timestamp for 'expiry': timestamp must be in milliseconds"))
    );
}

#[tokio::test]
async fn store_authenticated_namespace() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let req = SignableRequest::Store { namespace: Namespace(2), sig_timestamp: ms_u64(now) };
    let params = c.signed(
        &req,
        json!({"namespace": 2, "timestamp": now, "ttl": 30 * 24 * 3600 * 1000u64, "data": "Y29uZmln"}),
    );
    let (status, body) = call(&h, "store", params.clone()).await;
    assert_eq!(status, 200, "{body}");

    // Forged: signed by another key.
    let other = IdentityKey::from_seed_bytes(&[200u8; 32]);
    let mut forged = params.clone();
    forged["signature"] = json!(STANDARD.encode(req.sign(&other)));
    assert_eq!(call(&h, "store", forged).await, (401, json!("store signature verification failed")));
    // Wrong pubkey_ed25519 for the 05 account.
    let mut mismatched = params.clone();
    mismatched["pubkey_ed25519"] = json!(hex::encode(other.ed25519_public()));
    assert_eq!(call(&h, "store", mismatched).await.0, 401);
    // Missing pubkey_ed25519.
    let mut missing = params.clone();
    missing.as_object_mut().unwrap().remove("pubkey_ed25519");
    assert_eq!(call(&h, "store", missing).await.0, 401);
    // Stale signature timestamp (message timestamp still fine).
    let stale = now - 120_000;
    let req = SignableRequest::Store { namespace: Namespace(2), sig_timestamp: ms_u64(stale) };
    let mut p = c.signed(&req, params.clone());
    p["sig_timestamp"] = json!(stale);
    assert_eq!(
        call(&h, "store", p).await,
        (406, json!("store signature timestamp too far from current time"))
    );
    // Bad signature encoding.
    let mut bad = params.clone();
    bad["signature"] = json!("abc");
    assert_eq!(
        call(&h, "store", bad).await,
        (400, json!("invalid request: invalid signature: expected base64 encoded Ed25519 signature"))
    );
    // pubkey_ed25519 on a non-05 account.
    let g = client(&h, 0x03, true);
    let mut p =
        g.signed(&SignableRequest::Store { namespace: Namespace(11), sig_timestamp: ms_u64(now) }, params);
    p["pubkey_ed25519"] = json!(g.ed_hex());
    assert_eq!(
        call(&h, "store", p).await,
        (400, json!("invalid request: pubkey_ed25519 is only permitted for 05[...] pubkeys"))
    );
}

#[tokio::test]
async fn public_inbox_ignores_bad_signature_and_outbox_replaces() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let params = json!({
        "pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": "aGk=",
        "signature": STANDARD.encode([0u8; 64]),
    });
    assert_eq!(call(&h, "store", params).await.0, 200);

    // Public outbox (-21): a store replaces the previous message; anyone may retrieve.
    store(&h, &c, -21, b"first", 60_000).await;
    let second = store(&h, &c, -21, b"second", 60_000).await;
    let (status, body) = call(&h, "retrieve", json!({"pubkey": c.pubkey_hex(), "namespace": -21})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["hash"], json!(second.as_str()));
    // Legacy closed groups (-10) need no auth either.
    assert_eq!(call(&h, "retrieve", json!({"pubkey": c.pubkey_hex(), "namespace": -10})).await.0, 200);
}

#[tokio::test]
async fn retrieve_paging_and_errors() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let mut stored = Vec::new();
    for i in 0..5u8 {
        stored.push(store(&h, &c, 0, &[i; 10], 60_000).await);
    }
    let (status, body) = retrieve(&h, &c, 0, json!({"max_count": 2})).await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(body["more"], json!(true));
    let (_, body) = retrieve(&h, &c, 0, json!({"lastHash": stored[2].as_str()})).await;
    let got: Vec<&str> =
        body["messages"].as_array().unwrap().iter().map(|m| m["hash"].as_str().unwrap()).collect();
    assert_eq!(got, vec![stored[3].as_str(), stored[4].as_str()]);
    assert_eq!(
        retrieve(&h, &c, 0, json!({"last_hash": ""})).await.1["messages"].as_array().unwrap().len(),
        5
    );

    let bad = [
        (json!({"last_hash": "short"}), "invalid request: Invalid last_hash: expected base64 (43 chars)"),
        (json!({"last_hash": "!".repeat(43)}), "invalid request: Invalid last_hash: not base64"),
        (
            json!({"last_hash": stored[0].as_str(), "lastHash": stored[0].as_str()}),
            "invalid request: Cannot specify both 'last_hash' and 'lastHash'",
        ),
        (json!({"max_count": "x"}), "invalid request: Invalid value given for 'max_count': expected integer"),
    ];
    for (extra, text) in bad {
        assert_eq!(retrieve(&h, &c, 0, extra).await, (400, json!(text)));
    }
    // Any auth field makes the signature required (400 when missing).
    assert_eq!(
        call(&h, "retrieve", json!({"pubkey": c.pubkey_hex(), "timestamp": h.ctx.now_ms()})).await,
        (400, json!("invalid request: Required field 'signature' missing"))
    );
    // Stale and forged.
    let stale = ms_u64(h.ctx.now_ms() - 61_000);
    let req = SignableRequest::Retrieve { namespace: Namespace(0), timestamp: stale };
    let mut p = c.signed(&req, json!({}));
    p["timestamp"] = json!(stale);
    assert_eq!(
        call(&h, "retrieve", p.clone()).await,
        (406, json!("retrieve timestamp too far from current time"))
    );
    let now = ms_u64(h.ctx.now_ms());
    p["timestamp"] = json!(now);
    assert_eq!(call(&h, "retrieve", p).await, (401, json!("retrieve signature verification failed")));
}

#[tokio::test]
async fn wrong_swarm_is_421() {
    let h = harness();
    let c = client(&h, 0x05, false);
    let now = h.ctx.now_ms();
    let (status, body) =
        call(&h, "store", json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": "aGk="}))
            .await;
    assert_eq!(status, 421);
    assert_eq!(body["swarm"], json!(format!("{OTHER_SWARM:x}")));
    assert_eq!(body["snodes"].as_array().unwrap().len(), 1);
    assert_ne!(body["snodes"][0]["pubkey_ed25519"], json!(own_hex(&h)));
    assert!(body["t"].is_i64() && body["hf"].is_array());
    // Swarm is checked before the signature.
    let (status, _) = retrieve(&h, &c, 0, json!({})).await;
    assert_eq!(status, 421);
    let req = SignableRequest::DeleteAll { namespace: NamespaceSelector::All, timestamp: ms_u64(now) };
    let p = c.signed(&req, json!({"namespace": "all", "timestamp": now}));
    assert_eq!(call(&h, "delete_all", p).await.0, 421);
    // get_swarm answers for any account.
    assert_eq!(call(&h, "get_swarm", json!({"pubkey": c.pubkey_hex()})).await.0, 200);
}

#[tokio::test]
async fn delete_by_hash() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let a = store(&h, &c, 0, b"a", 60_000).await;
    let b = store(&h, &c, 2, b"b", 60_000).await;
    let missing = MessageHash::compute(&c.pubkey, Namespace(0), b"never stored");
    let requested = vec![missing, b, a];
    let req = SignableRequest::Delete { messages: &requested };
    let texts: Vec<&str> = requested.iter().map(MessageHash::as_str).collect();
    let params = c.signed(&req, json!({"messages": texts}));
    let (status, body) = call(&h, "delete", params.clone()).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    let mut deleted = vec![a, b];
    deleted.sort();
    assert_eq!(hashes(&mine["deleted"]), deleted);
    assert_node_signed(
        &h,
        mine,
        NodeResultToSign::Delete { pubkey: &c.pubkey, requested: &requested, deleted: &deleted },
    );
    assert!(body["t"].is_i64());

    // Replayed with required: nothing left to delete → 404.
    let mut p = params.clone();
    p["required"] = json!(true);
    assert_eq!(call(&h, "delete", p).await.0, 404);
    assert_eq!(call(&h, "delete", params.clone()).await.0, 200);

    let mut p = params.clone();
    p["messages"] = json!([]);
    assert_eq!(
        call(&h, "delete", p).await,
        (400, json!("invalid request: messages does not contain any message hashes"))
    );
    let mut p = params.clone();
    p["messages"] = json!("nope");
    assert_eq!(call(&h, "delete", p).await, (400, json!("invalid request: invalid message hash: nope")));
    let mut p = params;
    p["messages"] = json!([a.as_str()]);
    assert_eq!(call(&h, "delete", p).await, (401, json!("delete_msgs signature verification failed")));
    assert_eq!(
        call(&h, "delete", json!({"pubkey": c.pubkey_hex(), "messages": [a.as_str()]})).await,
        (400, json!("invalid request: Required field 'signature' missing"))
    );
}

#[tokio::test]
async fn delete_all_and_before() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let a = store(&h, &c, 0, b"a", 60_000).await;
    let b = store(&h, &c, 3, b"b", 60_000).await;
    let d = store(&h, &c, 4, b"d", 60_000).await;
    let now = h.ctx.now_ms();

    // One namespace.
    let req = SignableRequest::DeleteAll {
        namespace: NamespaceSelector::One(Namespace(3)),
        timestamp: ms_u64(now),
    };
    let (status, body) =
        call(&h, "delete_all", c.signed(&req, json!({"namespace": 3, "timestamp": now}))).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    assert_eq!(hashes(&mine["deleted"]), vec![b]);
    assert_node_signed(
        &h,
        mine,
        NodeResultToSign::Bulk { pubkey: &c.pubkey, value: ms_u64(now), affected: &[b] },
    );

    // Stale timestamp.
    let stale = now - 61_000;
    let req = SignableRequest::DeleteAll { namespace: NamespaceSelector::All, timestamp: ms_u64(stale) };
    let p = c.signed(&req, json!({"namespace": "all", "timestamp": stale}));
    assert_eq!(
        call(&h, "delete_all", p.clone()).await,
        (406, json!("delete_all timestamp too far from current time"))
    );
    // ...but a forwarded copy gets 70 s.
    let (status, body) = call_as(&h, "delete_all", p, Origin::Forwarded).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("swarm").is_none() && body.get("t").is_none());
    let mut all = vec![a, d];
    all.sort();
    let got = body["deleted"].as_object().unwrap();
    assert_eq!(hashes(&got["0"]), vec![a]);
    assert_eq!(hashes(&got["4"]), vec![d]);
    assert_node_signed(
        &h,
        &body,
        NodeResultToSign::Bulk { pubkey: &c.pubkey, value: ms_u64(stale), affected: &all },
    );

    // delete_before: future `before` is 401; "all" returns the per-namespace shape.
    let e = store(&h, &c, 5, b"e", 60_000).await;
    let future = h.ctx.now_ms() + 120_000;
    let req = SignableRequest::DeleteBefore { namespace: NamespaceSelector::All, before: ms_u64(future) };
    let p = c.signed(&req, json!({"namespace": "all", "before": future}));
    assert_eq!(
        call(&h, "delete_before", p).await,
        (401, json!("delete_before timestamp too far in the future"))
    );
    let before = h.ctx.now_ms();
    let req = SignableRequest::DeleteBefore { namespace: NamespaceSelector::All, before: ms_u64(before) };
    let (status, body) =
        call(&h, "delete_before", c.signed(&req, json!({"namespace": "all", "before": before}))).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    assert_eq!(hashes(&mine["deleted"]["5"]), vec![e]);
    assert_node_signed(
        &h,
        mine,
        NodeResultToSign::Bulk { pubkey: &c.pubkey, value: ms_u64(before), affected: &[e] },
    );
    // Forged.
    let p = c.signed(&req, json!({"namespace": 5, "before": before}));
    assert_eq!(
        call(&h, "delete_before", p).await,
        (401, json!("delete_before signature verification failed"))
    );
}

#[tokio::test]
async fn expire_methods() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let a = store(&h, &c, 0, b"a", 600_000).await;
    let b = store(&h, &c, 0, b"b", 600_000).await;
    let now = h.ctx.now_ms();

    // expire_all shortens.
    let target = now + 300_000;
    let req = SignableRequest::ExpireAll {
        namespace: NamespaceSelector::One(Namespace(0)),
        expiry: ms_u64(target),
    };
    let (status, body) = call(&h, "expire_all", c.signed(&req, json!({"expiry": target}))).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(hashes(&mine["updated"]), both);
    assert_node_signed(
        &h,
        mine,
        NodeResultToSign::Bulk { pubkey: &c.pubkey, value: ms_u64(target), affected: &both },
    );
    let old = now - 120_000;
    let req = SignableRequest::ExpireAll { namespace: NamespaceSelector::All, expiry: ms_u64(old) };
    let p = c.signed(&req, json!({"expiry": old, "namespace": "all"}));
    assert_eq!(
        call(&h, "expire_all", p).await,
        (406, json!("expire_all timestamp should be >= current time"))
    );

    // expire, single expiry with extend: a is extended, b asked for an earlier time → unchanged.
    let later = now + 900_000;
    let requested = vec![a, b];
    let req = SignableRequest::Expire {
        mode: ExpireMode::Extend,
        expiries: &[ms_u64(later)],
        messages: &requested,
    };
    let p = c.signed(&req, json!({"expiry": later, "extend": true, "messages": [a.as_str(), b.as_str()]}));
    let (status, body) = call(&h, "expire", p).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    assert_eq!(mine["expiry"], json!(later));
    assert_eq!(hashes(&mine["updated"]), both);
    assert_eq!(mine["unchanged"], json!({}));

    // Array mode, shorten: a shortened, b asked to be later → unchanged with its current expiry.
    let exps = [ms_u64(now + 100_000), ms_u64(now + 2_000_000)];
    let req = SignableRequest::Expire { mode: ExpireMode::Shorten, expiries: &exps, messages: &requested };
    let p = c.signed(&req, json!({"expiry": exps, "shorten": true, "messages": [a.as_str(), b.as_str()]}));
    let (status, body) = call(&h, "expire", p).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    assert_eq!(hashes(&mine["updated"]), vec![a]);
    assert_eq!(mine["expiry"], json!([exps[0]]));
    assert_eq!(mine["unchanged"], json!({ b.as_str(): later }));
    assert_node_signed(
        &h,
        mine,
        NodeResultToSign::Expire {
            pubkey: &c.pubkey,
            applied: &[exps[0]],
            requested: &requested,
            updated: &[a],
            unchanged: &[(b, ms_u64(later))],
        },
    );

    // Expiry capped at now + 30 days; the signature still covers the requested value.
    let far = now + 40 * 24 * 3600 * 1000;
    let req = SignableRequest::Expire {
        mode: ExpireMode::Set,
        expiries: &[ms_u64(far)],
        messages: &requested[..1],
    };
    let (status, body) =
        call(&h, "expire", c.signed(&req, json!({"expiry": far, "messages": a.as_str()}))).await;
    assert_eq!(status, 200, "{body}");
    let applied = body["swarm"][own_hex(&h)]["expiry"].as_i64().unwrap();
    assert!(applied < far && applied >= now + 30 * 24 * 3600 * 1000);

    // Errors.
    let past = now - 120_000;
    let req = SignableRequest::Expire {
        mode: ExpireMode::Set,
        expiries: &[ms_u64(past)],
        messages: &requested[..1],
    };
    let p = c.signed(&req, json!({"expiry": past, "messages": [a.as_str()]}));
    assert_eq!(call(&h, "expire", p).await, (401, json!("expire: timestamp should be >= current time")));
    let p = c.signed(&req, json!({"expiry": later, "messages": [a.as_str()]}));
    assert_eq!(call(&h, "expire", p).await, (401, json!("expire: signature verification failed")));
    let p =
        c.signed(&req, json!({"expiry": later, "messages": [a.as_str()], "shorten": true, "extend": true}));
    assert_eq!(
        call(&h, "expire", p).await,
        (400, json!("invalid request: cannot specify both 'shorten' and 'extend'"))
    );
    let p = c.signed(&req, json!({"expiry": [later, later, later], "messages": [a.as_str(), b.as_str()]}));
    assert_eq!(
        call(&h, "expire", p).await,
        (400, json!("invalid request: 'expiry' must be a single expiry, or the same length as 'messages'"))
    );

    // get_expiries: only existing hashes, no t/hf.
    let missing = MessageHash::compute(&c.pubkey, Namespace(0), b"zzz");
    let asked = vec![a, missing];
    let ts = ms_u64(h.ctx.now_ms());
    let req = SignableRequest::GetExpiries { timestamp: ts, messages: &asked };
    let p = c.signed(&req, json!({"timestamp": ts, "messages": [a.as_str(), missing.as_str()]}));
    let (status, body) = call(&h, "get_expiries", p).await;
    assert_eq!(status, 200, "{body}");
    let expiries = body["expiries"].as_object().unwrap();
    assert_eq!(expiries.len(), 1);
    assert_eq!(expiries[a.as_str()], json!(applied));
    assert!(body.get("t").is_none() && body.get("hf").is_none());
    let stale = ts - 61_000;
    let req = SignableRequest::GetExpiries { timestamp: stale, messages: &asked };
    let p = c.signed(&req, json!({"timestamp": stale, "messages": [a.as_str(), missing.as_str()]}));
    assert_eq!(
        call(&h, "get_expiries", p).await,
        (406, json!("get_expiries timestamp too far from current time"))
    );
}

/// Builds subaccount params for a member of a group.
fn sub_params(
    group: &Client,
    member: &IdentityKey,
    flags: SubaccountFlags,
    req: &SignableRequest<'_>,
    extra: Value,
) -> Value {
    let token = SubaccountToken::new(0x03, flags, &member.ed25519_public());
    let mut p = extra;
    p["pubkey"] = json!(group.pubkey_hex());
    p["subaccount"] = json!(STANDARD.encode(token.as_bytes()));
    p["subaccount_sig"] = json!(STANDARD.encode(token.sign(&group.key)));
    p["signature"] = json!(STANDARD.encode(member.sign(&req.message())));
    p
}

#[tokio::test]
async fn subaccounts_and_revocation() {
    let h = harness();
    let group = client(&h, 0x03, true);
    let member = IdentityKey::from_seed_bytes(&[77u8; 32]);
    let rw = SubaccountFlags::READ | SubaccountFlags::WRITE;
    let token = SubaccountToken::new(0x03, rw, &member.ed25519_public());
    store(&h, &group, 11, b"group msg", 60_000).await;
    store(&h, &group, -11, b"removal notice", 60_000).await;

    let retrieve_as_member = |ns: i16| {
        let now = ms_u64(h.ctx.now_ms());
        let req = SignableRequest::Retrieve { namespace: Namespace(ns), timestamp: now };
        sub_params(&group, &member, rw, &req, json!({"namespace": ns, "timestamp": now}))
    };
    let (status, body) = call(&h, "retrieve", retrieve_as_member(11)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);

    // Store with Read+Write works; delete_all needs Delete.
    let now = h.ctx.now_ms();
    let req = SignableRequest::Store { namespace: Namespace(11), sig_timestamp: ms_u64(now) };
    let p = sub_params(
        &group,
        &member,
        rw,
        &req,
        json!({"namespace": 11, "timestamp": now, "ttl": 60000, "data": "eA=="}),
    );
    assert_eq!(call(&h, "store", p).await.0, 200);
    let req = SignableRequest::DeleteAll { namespace: NamespaceSelector::All, timestamp: ms_u64(now) };
    let p = sub_params(&group, &member, rw, &req, json!({"namespace": "all", "timestamp": now}));
    assert_eq!(call(&h, "delete_all", p).await, (401, json!("delete_all signature verification failed")));
    // Read-only token cannot store.
    let req = SignableRequest::Store { namespace: Namespace(11), sig_timestamp: ms_u64(now) };
    let p = sub_params(
        &group,
        &member,
        SubaccountFlags::READ,
        &req,
        json!({"namespace": 11, "timestamp": now, "ttl": 60000, "data": "eA=="}),
    );
    assert_eq!(call(&h, "store", p).await.0, 401);
    // subaccount without subaccount_sig.
    let mut p = retrieve_as_member(11);
    p.as_object_mut().unwrap().remove("subaccount_sig");
    assert_eq!(
        call(&h, "retrieve", p).await,
        (400, json!("invalid request: invalid subaccount: subaccount_sig is required when using subaccount"))
    );

    // A write-only token may not shorten (400) and a plain expire only extends.
    let hash = store(&h, &group, 11, b"to expire", 600_000).await;
    let soon = now + 100_000;
    let req =
        SignableRequest::Expire { mode: ExpireMode::Shorten, expiries: &[ms_u64(soon)], messages: &[hash] };
    let p = sub_params(
        &group,
        &member,
        rw,
        &req,
        json!({"expiry": soon, "shorten": true, "messages": hash.as_str()}),
    );
    assert_eq!(call(&h, "expire", p).await.0, 400);
    let req = SignableRequest::Expire { mode: ExpireMode::Set, expiries: &[ms_u64(soon)], messages: &[hash] };
    let p = sub_params(&group, &member, rw, &req, json!({"expiry": soon, "messages": hash.as_str()}));
    let (status, body) = call(&h, "expire", p).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["swarm"][own_hex(&h)]["updated"], json!([]));

    // Revoke (owner only): the member loses access except to the unrevocable namespace.
    let ts = ms_u64(h.ctx.now_ms());
    let tokens = [token];
    let req = SignableRequest::RevokeSubaccount { timestamp: ts, tokens: &tokens };
    let p = group.signed(&req, json!({"timestamp": ts, "revoke": hex::encode(token.as_bytes())}));
    let (status, body) = call(&h, "revoke_subaccount", p).await;
    assert_eq!(status, 200, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    assert!(mine.get("count").is_none());
    assert_node_signed(
        &h,
        mine,
        NodeResultToSign::Revocation { pubkey: &group.pubkey, timestamp: ts, tokens: &tokens },
    );
    assert_eq!(
        call(&h, "retrieve", retrieve_as_member(11)).await,
        (401, json!("retrieve signature verification failed"))
    );
    let (status, body) = call(&h, "retrieve", retrieve_as_member(-11)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);

    // The member cannot revoke (signature by the wrong key), even with subaccount fields.
    let p = sub_params(
        &group,
        &member,
        rw,
        &req,
        json!({"timestamp": ts, "revoke": [hex::encode(token.as_bytes())]}),
    );
    assert_eq!(
        call(&h, "revoke_subaccount", p).await,
        (401, json!("revoke_subaccount signature verification failed"))
    );

    // Unrevoke restores access.
    let req = SignableRequest::UnrevokeSubaccount { timestamp: ts, tokens: &tokens };
    let p = group.signed(&req, json!({"timestamp": ts, "unrevoke": [STANDARD.encode(token.as_bytes())]}));
    let (status, body) = call(&h, "unrevoke_subaccount", p).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["swarm"][own_hex(&h)]["count"], json!(1));
    assert_eq!(call(&h, "retrieve", retrieve_as_member(11)).await.0, 200);

    // Revoke limits and stale timestamps.
    let many: Vec<String> = (0..51).map(|i| hex::encode([i as u8; 36])).collect();
    let p = group.signed(&req, json!({"timestamp": ts, "revoke": many}));
    assert_eq!(
        call(&h, "revoke_subaccount", p).await,
        (400, json!("invalid request: invalid revoke: cannot revoke more than 50 subaccounts at once"))
    );
    let stale = ts - 61_000;
    let req = SignableRequest::UnrevokeSubaccount { timestamp: stale, tokens: &tokens };
    let p = group.signed(&req, json!({"timestamp": stale, "unrevoke": [STANDARD.encode(token.as_bytes())]}));
    assert_eq!(
        call(&h, "unrevoke_subaccount", p).await,
        (406, json!("unrevoke_subaccount timestamp too far from current time"))
    );
}

#[tokio::test]
async fn batch_sequence_ifelse() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let store_req = |data: &str| json!({"method": "store", "params": {"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": data}});
    let bad_store = json!({"method": "store", "params": {"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 1, "data": "eA=="}});
    let info = json!({"method": "info", "params": {}});

    let (status, body) = call(&h, "batch", json!({"requests": [store_req("YQ=="), bad_store, info]})).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["code"], json!(200));
    assert!(results[0]["body"]["swarm"].is_object());
    assert_eq!(results[1], json!({"code": 403, "body": "Provided expiry/TTL is not valid."}));
    assert_eq!(results[2]["code"], json!(200));
    assert!(body.get("t").is_none());

    let (status, body) =
        call(&h, "sequence", json!({"requests": [store_req("Yg=="), bad_store, info]})).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"].as_array().unwrap().len(), 2);

    let errors = [
        (json!({"requests": []}), "invalid request: Invalid batch request: no valid \"requests\" field"),
        (
            json!({"requests": vec![info.clone(); 21]}),
            "invalid request: Invalid batch request: subrequest limit exceeded",
        ),
        (json!({"requests": [5]}), "invalid request: Invalid batch request: requests must be objects"),
        (
            json!({"requests": [{"method": "info"}]}),
            "invalid request: Invalid batch request: subrequests must have method/params keys",
        ),
        (
            json!({"requests": [{"method": "nope", "params": {}}]}),
            "invalid request: Invalid batch subrequest: invalid method \"nope\"",
        ),
        (
            json!({"requests": [{"method": "batch", "params": {"requests": [info]}}]}),
            "invalid request: Invalid batch subrequest: subrequests may not contain meta-requests",
        ),
        (
            json!({"requests": [info, {"method": "get_swarm", "params": {}}]}),
            "invalid request: Required field 'pubkey' missing",
        ),
    ];
    for (params, text) in errors {
        assert_eq!(call(&h, "batch", params.clone()).await, (400, json!(text)), "{params}");
    }

    // ifelse: true branch may be a batch; false branch absent → no result.
    let p = json!({"if": {"hf_at_least": [19]}, "then": {"method": "batch", "params": {"requests": [info]}}});
    let (status, body) = call(&h, "ifelse", p).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["condition"], json!(true));
    assert_eq!(body["result"]["code"], json!(200));
    assert_eq!(body["result"]["body"]["results"][0]["code"], json!(200));
    assert_eq!(body["v"], json!([2, 8, 0]));
    let p = json!({"if": {"v_before": [2, 8], "height_at_least": 0}, "then": info});
    let (status, body) = call(&h, "ifelse", p).await;
    assert_eq!(status, 200);
    assert_eq!(body["condition"], json!(false));
    assert!(body.get("result").is_none());
    let p = json!({"if": {"hf_before": [99, 0]}, "else": info, "then": {"method": "ifelse", "params":
        {"if": {"v_at_least": [1]}, "then": {"method": "get_swarm", "params": {"pubkey": c.pubkey_hex()}}}}});
    let (_, body) = call(&h, "ifelse", p).await;
    assert_eq!(body["result"]["body"]["result"]["code"], json!(200));
    let errors = [
        (json!({"then": info}), "invalid request: Invalid ifelse request: no valid \"if\" field"),
        (
            json!({"if": {}, "then": info}),
            "invalid request: Invalid ifelse request: must specify at least one \"if\" condition",
        ),
        (
            json!({"if": {"hf_before": [1]}}),
            "invalid request: Invalid ifelse request: at least one of \"then\"/\"else\" required",
        ),
        (
            json!({"if": {"hf_before": [1]}, "then": 3}),
            "invalid request: Invalid ifelse request: then must be an object",
        ),
        (
            json!({"if": {"hf_before": [1]}, "else": {"method": "x", "params": {}}}),
            "invalid request: Invalid ifelse request method \"else\"",
        ),
        (
            json!({"if": {"hf_before": "x"}, "else": info}),
            "invalid request: Invalid value given for 'hf_before': expected integer array",
        ),
    ];
    for (params, text) in errors {
        assert_eq!(call(&h, "ifelse", params.clone()).await, (400, json!(text)), "{params}");
    }
    let mut deep = info.clone();
    for _ in 0..12 {
        deep = json!({"method": "ifelse", "params": {"if": {"hf_before": [1]}, "else": deep}});
    }
    assert_eq!(call(&h, "ifelse", deep["params"].clone()).await.0, 400);
}

#[tokio::test]
async fn service_nodes() {
    let h = harness();
    let (status, body) = call(&h, "get_service_nodes", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    let states = result["service_node_states"].as_array().unwrap();
    assert_eq!(states.len(), 2);
    assert!(
        states.iter().any(|s| s["pubkey_ed25519"] == json!(own_hex(&h)) && s["swarm_id"] == json!(OUR_SWARM))
    );
    assert_eq!(states[0]["storage_server_version"], json!([2, 8, 0]));
    assert!(body["t"].is_i64() && body["hf"].is_array());

    let p = json!({"endpoint": "get_service_nodes", "params": {"active_only": true, "limit": 1,
        "fields": {"public_ip": true, "storage_port": true, "pubkey_ed25519": true}}});
    let (status, body) = call(&h, "oxend_request", p).await;
    assert_eq!(status, 200, "{body}");
    let states = body["result"]["service_node_states"].as_array().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].as_object().unwrap().len(), 3);

    let hash = body["result"]["block_hash"].clone();
    let (_, body) = call(&h, "get_service_nodes", json!({"poll_block_hash": hash})).await;
    assert_eq!(body["result"]["unchanged"], json!(true));
    assert!(body["result"].get("service_node_states").is_none());

    assert_eq!(
        call(&h, "oxend_request", json!({"endpoint": "get_info"})).await,
        (400, json!("invalid request: Invalid oxend endpoint 'get_info'"))
    );
    assert_eq!(call(&h, "oxend_request", json!({"endpoint": "ons_resolve"})).await.0, 400);
    assert_eq!(
        call(&h, "oxend_request", json!({})).await,
        (400, json!("invalid request: Required field 'endpoint' missing"))
    );
}

#[tokio::test]
async fn malformed_requests() {
    let h = harness();
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "invalid json"),
        (b"[1,2]", "invalid json: no `method` field"),
        (br#"{"method": 5, "params": {}}"#, "invalid json: no `method` field"),
        (br#"{"method": "info"}"#, "invalid json: no `params` field"),
        (br#"{"method": "info", "params": []}"#, "invalid json: no `params` field"),
    ];
    for (body, text) in cases {
        let reply = handle_request(&h.ctx, body, Origin::Client).await;
        assert_eq!(reply, RpcReply::text(400, text));
    }
    let reply =
        handle_request(&h.ctx, br#"{"jsonrpc":"2.0","method":"frobnicate","params":{}}"#, Origin::Client)
            .await;
    assert_eq!(reply, RpcReply::text(400, "no method frobnicate"));
    assert_eq!(method_label("frobnicate"), "unknown");
    assert_eq!(method_label("get_snodes_for_pubkey"), "get_swarm");
    // Non-recursive methods cannot be forwarded.
    let (status, body) = call_as(&h, "info", json!({}), Origin::Forwarded).await;
    assert_eq!(
        (status, body),
        (400, json!("invalid request: received invalid forwarded non-forwardable request"))
    );
}

#[tokio::test]
async fn forwarded_store_runs_locally() {
    let h = harness();
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let p = json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": "Zm9y"});
    let (status, body) = call_as(&h, "store", p, Origin::Forwarded).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("swarm").is_none() && body.get("t").is_none());
    let hash = MessageHash::compute(&c.pubkey, Namespace(0), b"for");
    assert_eq!(body["hash"], json!(hash.as_str()));
    assert_node_signed(&h, &body, NodeResultToSign::Store { hash: &hash });
}

#[tokio::test]
async fn full_database_gives_query_failure() {
    let h = harness_with_cap(512 * 1024);
    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let mut last = (0, Value::Null);
    for i in 0..20u8 {
        let data = STANDARD.encode(vec![i; 70_000]);
        last = call(
            &h,
            "store",
            json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": data}),
        )
        .await;
        if last.0 != 200 {
            break;
        }
    }
    let (status, body) = last;
    assert_eq!(status, 500, "{body}");
    let mine = &body["swarm"][own_hex(&h)];
    assert_eq!(mine["failed"], json!(true));
    assert_eq!(mine["query_failure"], json!(true));
    assert!(body.get("hash").is_none() && body["t"].is_i64());
    // Forwarded: the failure shape at top level, status 500.
    let data = STANDARD.encode(vec![99u8; 70_000]);
    let p = json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": data});
    let (status, body) = call_as(&h, "store", p, Origin::Forwarded).await;
    assert_eq!((status, body), (500, json!({"failed": true, "query_failure": true})));
}

/// A swarm of three: us, a live peer served over the node channel on 127.0.0.1, and a member
/// that does not answer. Recursive requests reach the peer and report the dead member failed.
#[tokio::test]
async fn recursive_requests_reach_the_swarm() {
    let entry_id = NodeIdentity::new(IdentityKey::from_seed_bytes(&[42u8; 32]));
    let peer_id = NodeIdentity::new(IdentityKey::from_seed_bytes(&[44u8; 32]));
    let dead_id = NodeIdentity::new(IdentityKey::from_seed_bytes(&[45u8; 32]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nodes = vec![
        record(&entry_id, 1, OUR_SWARM),
        record(&peer_id, peer_port, OUR_SWARM),
        record(&dead_id, dead_port, OUR_SWARM),
        other_swarm_node(),
    ];
    let h = node_context(entry_id, nodes.clone(), 1 << 30);
    let peer = node_context(peer_id.clone(), nodes, 1 << 30);
    let served = Arc::new(NodeContext {
        identity: peer.ctx.identity.clone(),
        config: NodeConfig::default(),
        nodes: ArcSwap::from(peer.ctx.node_list()),
        store: peer.ctx.store.clone(),
        peers: peer.ctx.peers.clone(),
        metrics: Metrics::default(),
        list_changed: Default::default(),
    });
    let app = crate::peer::router().with_state(served.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let c = client(&h, 0x05, true);
    let now = h.ctx.now_ms();
    let p =
        json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": STANDARD.encode(b"swarm")});
    let (status, body) = call(&h, "store", p).await;
    assert_eq!(status, 200, "{body}");
    let hash = MessageHash::compute(&c.pubkey, Namespace(0), b"swarm");
    let swarm = body["swarm"].as_object().unwrap();
    assert_eq!(swarm.len(), 3);
    let from_peer = &swarm[peer_id.ed25519_hex()];
    assert_eq!(from_peer["hash"], json!(hash.as_str()));
    assert!(from_peer.get("t").is_none());
    let sig = STANDARD.decode(from_peer["signature"].as_str().unwrap()).unwrap();
    assert!(verify_ed25519(&peer_id.key().ed25519_public(), hash.as_bytes(), &sig));
    assert_eq!(swarm[dead_id.ed25519_hex()], json!({"failed": true, "timeout": true}));

    // The peer holds the message.
    let (status, body) = retrieve(&peer, &c, 0, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["hash"], json!(hash.as_str()));

    // A message only the peer has: delete with `required` succeeds because the peer deleted it.
    let p = json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": STANDARD.encode(b"peer only")});
    assert_eq!(call_as(&peer, "store", p, Origin::Forwarded).await.0, 200);
    let only = MessageHash::compute(&c.pubkey, Namespace(0), b"peer only");
    let req = SignableRequest::Delete { messages: &[only] };
    let p = c.signed(&req, json!({"messages": [only.as_str()], "required": true}));
    let (status, body) = call(&h, "delete", p.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hashes(&body["swarm"][peer_id.ed25519_hex()]["deleted"]), vec![only]);
    assert_eq!(body["swarm"][own_hex(&h)]["deleted"], json!([]));
    // Again: nobody deletes anything now.
    assert_eq!(call(&h, "delete", p).await.0, 404);

    // A peer that disagrees about the swarm answers 421: reported as failed with code/reason,
    // while the request still succeeds overall.
    let mut moved = served.node_list().nodes().to_vec();
    let space = session_protocol::swarm::swarm_space(&c.pubkey);
    moved.push(NodeRecord { swarm_id: space, ..record(&dead_id, dead_port, space) });
    moved.retain(|n| n.pubkey_ed25519 != dead_id.ed25519_hex() || n.swarm_id == space);
    served.nodes.store(Arc::new(NodeList::new(moved)));
    let p =
        json!({"pubkey": c.pubkey_hex(), "timestamp": now, "ttl": 60000, "data": STANDARD.encode(b"421")});
    let (status, body) = call(&h, "store", p).await;
    assert_eq!(status, 200, "{body}");
    let from_peer = &body["swarm"][peer_id.ed25519_hex()];
    assert_eq!(from_peer["failed"], json!(true));
    assert_eq!(from_peer["code"], json!(421));
    assert!(from_peer["reason"].as_str().unwrap().contains("snodes"));
    assert!(body["swarm"][own_hex(&h)].get("hash").is_some());
    server.abort();
}

#[test]
fn peer_results() {
    assert_eq!(peer_result(PeerReply::Timeout), json!({"failed": true, "timeout": true}));
    assert_eq!(peer_result(PeerReply::BadResponse), json!({"failed": true, "bad_peer_response": true}));
    assert_eq!(
        peer_result(PeerReply::Answered { status: 401, body: json!("nope") }),
        json!({"failed": true, "code": 401, "reason": "nope"})
    );
    let failure = json!({"failed": true, "query_failure": true});
    assert_eq!(peer_result(PeerReply::Answered { status: 500, body: failure.clone() }), failure);
    let ok = json!({"hash": "x"});
    assert_eq!(peer_result(PeerReply::Answered { status: 200, body: ok.clone() }), ok);
}

mod arbitrary {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    const METHODS: &[&str] = &[
        "store",
        "retrieve",
        "info",
        "get_swarm",
        "get_snodes_for_pubkey",
        "delete",
        "delete_all",
        "delete_before",
        "expire",
        "expire_all",
        "get_expiries",
        "revoke_subaccount",
        "unrevoke_subaccount",
        "batch",
        "sequence",
        "ifelse",
        "get_service_nodes",
        "oxend_request",
        "bogus",
    ];
    const KEYS: &[&str] = &[
        "pubkey",
        "pubKey",
        "pubkey_ed25519",
        "timestamp",
        "sig_timestamp",
        "ttl",
        "expiry",
        "data",
        "namespace",
        "signature",
        "subaccount",
        "subaccount_sig",
        "messages",
        "last_hash",
        "lastHash",
        "max_count",
        "max_size",
        "required",
        "before",
        "shorten",
        "extend",
        "revoke",
        "unrevoke",
        "requests",
        "method",
        "params",
        "if",
        "then",
        "else",
        "hf_at_least",
        "v_before",
        "endpoint",
        "fields",
        "limit",
        "active_only",
    ];

    fn leaf(pubkey: String) -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (1_600_000_000_000u64..1_900_000_000_000).prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,90}".prop_map(Value::from),
            "[A-Za-z0-9+/]{0,90}={0,2}".prop_map(Value::from),
            Just(Value::from("all")),
            Just(Value::from(pubkey)),
            prop::sample::select(METHODS).prop_map(Value::from),
        ]
    }

    fn json_value(pubkey: String) -> impl Strategy<Value = Value> {
        leaf(pubkey).prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(prop::sample::select(KEYS).prop_map(str::to_owned), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn arbitrary_requests_never_panic_or_500() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let h = harness();
        let pubkey = client(&h, 0x05, true).pubkey_hex();
        let strategy =
            (prop::sample::select(METHODS), json_value(pubkey), prop::collection::vec(any::<u8>(), 0..64));
        let mut runner = TestRunner::new(Config { cases: 512, ..Config::default() });
        runner
            .run(&strategy, |(method, params, raw)| {
                let params = match params {
                    Value::Object(_) => params,
                    other => json!({"requests": [{"method": method, "params": {"x": other}}]}),
                };
                for origin in [Origin::Client, Origin::Forwarded] {
                    let body = serde_json::to_vec(&json!({"method": method, "params": params})).unwrap();
                    let reply = rt.block_on(handle_request(&h.ctx, &body, origin));
                    prop_assert!(reply.status != 500, "{method} {params} → {reply:?}");
                }
                let reply = rt.block_on(handle_request(&h.ctx, &raw, Origin::Client));
                prop_assert_eq!(reply.status, 400);
                Ok(())
            })
            .unwrap();
    }
}
