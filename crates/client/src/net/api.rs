//! Typed storage RPC methods (network §4), signed with the account's [`IdentityKey`].
//!
//! The account is the `05` Session ID of the key (`05 || X25519 public key`); signed requests
//! carry `pubkey_ed25519` so the node can check the Ed25519 → X25519 binding (network §3.3).
//! Requests go to the account's swarm with [`Network`]'s retry rules; timestamps are the network
//! time, taken again for every attempt.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use session_protocol::keys::verify_ed25519;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{ExpireMode, NamespaceSelector, NodeResultToSign, SignableRequest};
use session_protocol::{IdPrefix, IdentityKey, SessionId};

use super::pool::{ServiceNode, parse_service_node_states};
use super::{Network, NetworkError};

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    /// Target namespace.
    pub namespace: Namespace,
    /// The message bytes (at most 76 800).
    pub data: Vec<u8>,
    /// Time to live (10 s to 14 days for public inboxes, 30 days otherwise).
    pub ttl: Duration,
    /// The message timestamp (Unix ms); `None`: the network time when sent.
    pub timestamp_ms: Option<u64>,
}

impl StoreRequest {
    /// A message stamped with the network time when sent.
    pub fn new(namespace: Namespace, data: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        Self { namespace, data: data.into(), ttl, timestamp_ms: None }
    }
}

/// What a store did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResult {
    /// The message's hash (checked against the one computed locally).
    pub hash: MessageHash,
    /// The expiry the swarm stored (the latest reported; may be later than asked when the
    /// message was already stored with a later one).
    pub expiry_ms: Option<u64>,
    /// Swarm members that stored it (with a valid signature over the hash).
    pub stored_on: usize,
    /// Swarm members that reported a failure, or whose result did not verify.
    pub failed_on: usize,
}

/// Parameters of a retrieve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetrieveRequest {
    /// Namespace to read.
    pub namespace: Namespace,
    /// Only messages stored after this one (on the node asked; the cursor is node-local, so
    /// callers deduplicate by hash).
    pub last_hash: Option<MessageHash>,
    /// Per-node cursors (by the node's Ed25519 key): when the member asked has an entry here, it
    /// is sent instead of `last_hash`, so a poller can keep one position per node.
    pub last_hash_by_node: BTreeMap<[u8; 32], MessageHash>,
    /// At most this many messages.
    pub max_count: Option<u32>,
    /// Size limit in bytes, or a negative fraction `-k` of the node's maximum (network §4.2).
    pub max_size: Option<i64>,
}

impl RetrieveRequest {
    /// Everything in `namespace` (within the node's default size limit).
    pub fn new(namespace: Namespace) -> Self {
        Self { namespace, ..Self::default() }
    }
}

/// A retrieved message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievedMessage {
    /// Its hash.
    pub hash: MessageHash,
    /// Its timestamp, Unix ms.
    pub timestamp_ms: u64,
    /// Its expiry, Unix ms.
    pub expiry_ms: u64,
    /// The stored bytes.
    pub data: Vec<u8>,
}

/// The result of a retrieve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    /// Messages in the node's storage order.
    pub messages: Vec<RetrievedMessage>,
    /// More messages are waiting (a limit cut the list).
    pub more: bool,
    /// The Ed25519 key of the swarm member that answered (whose cursor the list continues).
    pub node: [u8; 32],
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteResult {
    /// Hashes some swarm member deleted (union over the members).
    pub deleted: BTreeSet<MessageHash>,
    /// Swarm members that answered with a result signed by them.
    pub answered: usize,
    /// Swarm members that reported a failure, or whose result did not verify.
    pub failed_on: usize,
}

/// What an expire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireResult {
    /// Hashes whose expiry changed on some member, with the applied expiry (Unix ms).
    pub updated: BTreeMap<MessageHash, u64>,
    /// With shorten/extend: hashes left as they were, with their current expiry.
    pub unchanged: BTreeMap<MessageHash, u64>,
    /// Swarm members that answered with a result signed by them.
    pub answered: usize,
    /// Swarm members that reported a failure, or whose result did not verify.
    pub failed_on: usize,
}

impl Network {
    /// Stores a message in the account's own swarm, signed when the namespace needs it.
    pub async fn store(
        &self,
        key: &IdentityKey,
        message: &StoreRequest,
    ) -> Result<StoreResult, NetworkError> {
        self.store_inner(&own_account(key), Some(key), message).await
    }

    /// Stores a message for another account (e.g. a 1:1 message into a recipient's namespace 0)
    /// without a signature: only public-inbox namespaces (`ns % 10 == 0`) accept that.
    pub async fn store_unsigned(
        &self,
        recipient: &SessionId,
        message: &StoreRequest,
    ) -> Result<StoreResult, NetworkError> {
        if message.namespace.store_requires_auth() {
            return Err(NetworkError::SignatureRequired { namespace: message.namespace.0 });
        }
        self.store_inner(&storage_account(recipient)?, None, message).await
    }

    /// Retrieves messages of the account's namespace (signed).
    pub async fn retrieve(
        &self,
        key: &IdentityKey,
        request: &RetrieveRequest,
    ) -> Result<Retrieved, NetworkError> {
        let account = own_account(key);
        let pubkey = hex::encode(account);
        let ed = hex::encode(key.ed25519_public());
        let build = |now: u64, node: &ServiceNode| {
            let signature =
                SignableRequest::Retrieve { namespace: request.namespace, timestamp: now }.sign(key);
            let mut p = json!({"pubkey": pubkey, "timestamp": now, "signature": B64.encode(signature),
                "pubkey_ed25519": ed});
            if !request.namespace.is_default() {
                p["namespace"] = json!(request.namespace.0);
            }
            if let Some(hash) = request.last_hash_by_node.get(&node.ed25519).or(request.last_hash.as_ref()) {
                p["last_hash"] = json!(hash.as_str());
            }
            if let Some(n) = request.max_count {
                p["max_count"] = json!(n);
            }
            if let Some(n) = request.max_size {
                p["max_size"] = json!(n);
            }
            p
        };
        let (body, node) = self.swarm_request_at(&account, "retrieve", &build).await?;
        parse_retrieved(&body, node.ed25519)
    }

    /// Deletes messages of the account by hash (any namespace).
    pub async fn delete(
        &self,
        key: &IdentityKey,
        hashes: &[MessageHash],
    ) -> Result<DeleteResult, NetworkError> {
        let account = own_account(key);
        let (pubkey, ed) = (hex::encode(account), hex::encode(key.ed25519_public()));
        let list: Vec<&str> = hashes.iter().map(MessageHash::as_str).collect();
        let signature = B64.encode(SignableRequest::Delete { messages: hashes }.sign(key));
        let build = |_now: u64| json!({"pubkey": pubkey, "messages": list, "signature": signature, "pubkey_ed25519": ed});
        let body = self.swarm_request(&account, "delete", &build).await?;
        let (results, failed_on) = self.verified_results(&body, |result| {
            let deleted = hash_list(result.get("deleted"))?;
            Ok(NodeResultToSign::Delete { pubkey: &account, requested: hashes, deleted: &deleted }.message())
        })?;
        let mut deleted = BTreeSet::new();
        for result in &results {
            deleted.extend(hash_list(result.get("deleted"))?);
        }
        Ok(DeleteResult { deleted, answered: results.len(), failed_on })
    }

    /// Deletes every message of the account in one namespace, or in all.
    pub async fn delete_all(
        &self,
        key: &IdentityKey,
        namespace: NamespaceSelector,
    ) -> Result<DeleteResult, NetworkError> {
        let account = own_account(key);
        let (pubkey, ed) = (hex::encode(account), hex::encode(key.ed25519_public()));
        // The timestamp of the last attempt (the one answered), which the nodes sign.
        let sent_at = AtomicU64::new(0);
        let build = |now: u64| {
            sent_at.store(now, Ordering::Relaxed);
            let signature = SignableRequest::DeleteAll { namespace, timestamp: now }.sign(key);
            let ns = match namespace {
                NamespaceSelector::All => json!("all"),
                NamespaceSelector::One(ns) => json!(ns.0),
            };
            json!({"pubkey": pubkey, "timestamp": now, "namespace": ns, "signature": B64.encode(signature),
                "pubkey_ed25519": ed})
        };
        let body = self.swarm_request(&account, "delete_all", &build).await?;
        let timestamp = sent_at.load(Ordering::Relaxed);
        let (results, failed_on) = self.verified_results(&body, |result| {
            let affected = all_deleted(result)?;
            Ok(NodeResultToSign::Bulk { pubkey: &account, value: timestamp, affected: &affected }.message())
        })?;
        let mut deleted = BTreeSet::new();
        for result in &results {
            deleted.extend(all_deleted(result)?);
        }
        Ok(DeleteResult { deleted, answered: results.len(), failed_on })
    }

    /// Sets the expiry (Unix ms) of messages of the account; `mode` restricts it to shortening
    /// or extending.
    pub async fn expire(
        &self,
        key: &IdentityKey,
        hashes: &[MessageHash],
        expiry_ms: u64,
        mode: ExpireMode,
    ) -> Result<ExpireResult, NetworkError> {
        let account = own_account(key);
        let (pubkey, ed) = (hex::encode(account), hex::encode(key.ed25519_public()));
        let list: Vec<&str> = hashes.iter().map(MessageHash::as_str).collect();
        let expiries = [expiry_ms];
        let signature =
            B64.encode(SignableRequest::Expire { mode, expiries: &expiries, messages: hashes }.sign(key));
        let build = |_now: u64| {
            let mut p = json!({"pubkey": pubkey, "messages": list, "expiry": expiry_ms, "signature": signature,
                "pubkey_ed25519": ed});
            match mode {
                ExpireMode::Shorten => p["shorten"] = json!(true),
                ExpireMode::Extend => p["extend"] = json!(true),
                ExpireMode::Set => {}
            }
            p
        };
        let body = self.swarm_request(&account, "expire", &build).await?;
        let (results, failed_on) = self.verified_results(&body, |result| {
            let applied = result
                .get("expiry")
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid("expire result has no expiry"))?;
            let updated = hash_list(result.get("updated"))?;
            let unchanged: Vec<(MessageHash, u64)> = unchanged_map(result)?.into_iter().collect();
            Ok(NodeResultToSign::Expire {
                pubkey: &account,
                applied: &[applied],
                requested: hashes,
                updated: &updated,
                unchanged: &unchanged,
            }
            .message())
        })?;
        let mut out = ExpireResult {
            updated: BTreeMap::new(),
            unchanged: BTreeMap::new(),
            answered: results.len(),
            failed_on,
        };
        for result in &results {
            let applied = result.get("expiry").and_then(Value::as_u64).unwrap_or(expiry_ms);
            for hash in hash_list(result.get("updated"))? {
                out.updated.insert(hash, applied);
            }
            out.unchanged.extend(unchanged_map(result)?);
        }
        Ok(out)
    }

    /// The current expiries (Unix ms) of messages of the account; unknown hashes are absent.
    pub async fn get_expiries(
        &self,
        key: &IdentityKey,
        hashes: &[MessageHash],
    ) -> Result<BTreeMap<MessageHash, u64>, NetworkError> {
        let account = own_account(key);
        let (pubkey, ed) = (hex::encode(account), hex::encode(key.ed25519_public()));
        let list: Vec<&str> = hashes.iter().map(MessageHash::as_str).collect();
        let build = |now: u64| {
            let signature = SignableRequest::GetExpiries { timestamp: now, messages: hashes }.sign(key);
            json!({"pubkey": pubkey, "messages": list, "timestamp": now, "signature": B64.encode(signature),
                "pubkey_ed25519": ed})
        };
        let body = self.swarm_request(&account, "get_expiries", &build).await?;
        let Some(Value::Object(map)) = body.get("expiries") else {
            return Err(invalid("get_expiries reply has no expiries"));
        };
        map.iter()
            .map(|(hash, expiry)| {
                Ok((parse_hash(hash)?, expiry.as_u64().ok_or_else(|| invalid("expiry is not a number"))?))
            })
            .collect()
    }

    /// Asks a member of the account's swarm (as the pool computes it) for the swarm's current
    /// members (`get_swarm`).
    pub async fn get_swarm(&self, account: &SessionId) -> Result<Vec<ServiceNode>, NetworkError> {
        let bytes = storage_account(account)?;
        let pubkey = hex::encode(bytes);
        let build = |_now: u64| json!({"pubkey": pubkey});
        let body = self.swarm_request(&bytes, "get_swarm", &build).await?;
        parse_get_swarm(&body)
    }

    /// The members of the account's swarm as the pool says (no network request).
    pub fn swarm_of(&self, account: &SessionId) -> Result<Vec<ServiceNode>, NetworkError> {
        let bytes = storage_account(account)?;
        let members = self.state().pool.swarm_members(&bytes);
        if members.is_empty() {
            return Err(NetworkError::NoSwarm);
        }
        Ok(members)
    }

    /// The per-node results of a recursive reply whose signature verifies with the key of a node
    /// the pool knows (`message` rebuilds what the node signed from its result). Results that do
    /// not verify count as failed; when none verifies the reply is refused.
    fn verified_results(
        &self,
        body: &Value,
        message: impl Fn(&Value) -> Result<Vec<u8>, NetworkError>,
    ) -> Result<(Vec<Value>, usize), NetworkError> {
        let (results, mut failed) = swarm_results(body)?;
        let mut verified = Vec::with_capacity(results.len());
        for (node, result) in results {
            let mut key = [0u8; 32];
            let known =
                hex::decode_to_slice(&node, &mut key).is_ok() && self.state().pool.node(&key).is_some();
            if known && message(&result).is_ok_and(|m| signed_by(&key, &result, &m)) {
                verified.push(result);
            } else {
                tracing::debug!(node = %node.get(..8).unwrap_or("?"), "a swarm member's result did not verify");
                failed += 1;
            }
        }
        if verified.is_empty() {
            return Err(invalid("no swarm member's result carries a valid signature"));
        }
        Ok((verified, failed))
    }

    async fn store_inner(
        &self,
        account: &[u8; 33],
        key: Option<&IdentityKey>,
        message: &StoreRequest,
    ) -> Result<StoreResult, NetworkError> {
        let pubkey = hex::encode(account);
        let data = B64.encode(&message.data);
        let ttl = u64::try_from(message.ttl.as_millis()).unwrap_or(u64::MAX);
        let signer = key.filter(|_| message.namespace.store_requires_auth());
        let build = |now: u64| {
            let timestamp = message.timestamp_ms.unwrap_or(now);
            let mut p = json!({"pubkey": pubkey, "timestamp": timestamp, "ttl": ttl, "data": data});
            if !message.namespace.is_default() {
                p["namespace"] = json!(message.namespace.0);
            }
            if let Some(key) = signer {
                let signature =
                    SignableRequest::Store { namespace: message.namespace, sig_timestamp: now }.sign(key);
                p["sig_timestamp"] = json!(now);
                p["signature"] = json!(B64.encode(signature));
                p["pubkey_ed25519"] = json!(hex::encode(key.ed25519_public()));
            }
            p
        };
        let body = self.swarm_request(account, "store", &build).await?;
        let expected = MessageHash::compute(account, message.namespace, &message.data);
        let hash = match body.get("hash").and_then(Value::as_str) {
            Some(text) => parse_hash(text)?,
            None => expected,
        };
        if hash != expected {
            return Err(invalid("the stored message's hash is not the one computed locally"));
        }
        let (results, failed_on) = self.verified_results(&body, |result| {
            let hash = parse_hash(result.get("hash").and_then(Value::as_str).unwrap_or_default())?;
            if hash != expected {
                return Err(invalid("a node stored a different hash"));
            }
            Ok(NodeResultToSign::Store { hash: &expected }.message())
        })?;
        let expiry_ms = results.iter().filter_map(|r| r.get("expiry").and_then(Value::as_u64)).max();
        Ok(StoreResult { hash, expiry_ms, stored_on: results.len(), failed_on })
    }
}

/// `05 || X25519 public key` of an identity.
fn own_account(key: &IdentityKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = IdPrefix::Standard.byte();
    out[1..].copy_from_slice(key.x25519_public());
    out
}

/// The 33 bytes of an account that has a swarm: `05` (standard) or `03` (group).
fn storage_account(id: &SessionId) -> Result<[u8; 33], NetworkError> {
    match id.prefix() {
        IdPrefix::Standard | IdPrefix::Group => Ok(id.to_bytes()),
        other => Err(NetworkError::UnsupportedAccount { prefix: other.byte() }),
    }
}

fn invalid(what: &str) -> NetworkError {
    NetworkError::InvalidResponse(what.to_owned())
}

fn parse_hash(text: &str) -> Result<MessageHash, NetworkError> {
    MessageHash::from_ascii(text.as_bytes()).map_err(|_| invalid("malformed message hash"))
}

fn hash_list(value: Option<&Value>) -> Result<Vec<MessageHash>, NetworkError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| invalid("hash is not a string")).and_then(parse_hash))
            .collect(),
        Some(_) => Err(invalid("hash list is not a list")),
    }
}

/// The per-node results of a recursive method (`{"swarm": {node: result}}`), split into those
/// that did not fail (with the node's key as given) and the number that failed.
fn swarm_results(body: &Value) -> Result<(Vec<(String, Value)>, usize), NetworkError> {
    let Some(Value::Object(swarm)) = body.get("swarm") else {
        return Err(invalid("no per-node results"));
    };
    let mut ok = Vec::new();
    let mut failed = 0;
    for (node, result) in swarm {
        if result.get("failed").and_then(Value::as_bool) == Some(true) {
            failed += 1;
        } else {
            ok.push((node.clone(), result.clone()));
        }
    }
    Ok((ok, failed))
}

/// Whether the result's `signature` (base64) is `node`'s Ed25519 signature of `message`.
fn signed_by(node: &[u8; 32], result: &Value, message: &[u8]) -> bool {
    let Some(signature) = result.get("signature").and_then(Value::as_str).and_then(|s| B64.decode(s).ok())
    else {
        return false;
    };
    verify_ed25519(node, message, &signature)
}

/// Every hash of a delete_all result (a list, or lists per namespace), sorted as signed.
fn all_deleted(result: &Value) -> Result<Vec<MessageHash>, NetworkError> {
    let mut all = match result.get("deleted") {
        Some(Value::Object(by_ns)) => {
            let mut all = Vec::new();
            for list in by_ns.values() {
                all.extend(hash_list(Some(list))?);
            }
            all
        }
        other => hash_list(other)?,
    };
    all.sort();
    Ok(all)
}

/// The `unchanged` map of an expire result (hash → current expiry).
fn unchanged_map(result: &Value) -> Result<BTreeMap<MessageHash, u64>, NetworkError> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(map)) = result.get("unchanged") {
        for (hash, expiry) in map {
            let expiry = expiry.as_u64().ok_or_else(|| invalid("unchanged expiry is not a number"))?;
            out.insert(parse_hash(hash)?, expiry);
        }
    }
    Ok(out)
}

fn parse_retrieved(body: &Value, node: [u8; 32]) -> Result<Retrieved, NetworkError> {
    let Some(Value::Array(items)) = body.get("messages") else {
        return Err(invalid("retrieve reply has no messages list"));
    };
    let mut messages = Vec::with_capacity(items.len());
    for item in items {
        let hash = parse_hash(
            item.get("hash").and_then(Value::as_str).ok_or_else(|| invalid("message without hash"))?,
        )?;
        let number = |name: &str| item.get(name).and_then(Value::as_u64);
        let timestamp_ms = number("timestamp").ok_or_else(|| invalid("message without timestamp"))?;
        let expiry_ms = number("expiration")
            .or_else(|| number("expiry"))
            .ok_or_else(|| invalid("message without expiration"))?;
        let data = item
            .get("data")
            .and_then(Value::as_str)
            .and_then(|d| B64.decode(d).ok())
            .ok_or_else(|| invalid("message data is not base64"))?;
        messages.push(RetrievedMessage { hash, timestamp_ms, expiry_ms, data });
    }
    let more = body.get("more").and_then(Value::as_bool).unwrap_or(false);
    Ok(Retrieved { messages, more, node })
}

fn parse_get_swarm(body: &Value) -> Result<Vec<ServiceNode>, NetworkError> {
    let Some(Value::Array(snodes)) = body.get("snodes") else {
        return Err(invalid("get_swarm reply has no snodes"));
    };
    let swarm_id = body
        .get("swarm")
        .and_then(Value::as_str)
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| invalid("get_swarm reply has no swarm id"))?;
    let states: Vec<Value> = snodes
        .iter()
        .map(|n| {
            json!({"pubkey_ed25519": n.get("pubkey_ed25519"), "pubkey_x25519": n.get("pubkey_x25519"),
                "public_ip": n.get("ip"), "storage_port": n.get("port_https"), "swarm_id": swarm_id})
        })
        .collect();
    Ok(parse_service_node_states(&json!({"service_node_states": states})).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieve_replies_parse_and_reject_garbage() {
        let hash = MessageHash::compute(&[5; 33], Namespace(0), b"hi");
        let body = json!({"messages": [{"hash": hash.as_str(), "timestamp": 5, "expiration": 9,
            "data": B64.encode(b"hi")}], "more": true, "t": 1});
        let r = parse_retrieved(&body, [0; 32]).unwrap();
        assert!(r.more);
        assert_eq!(
            r.messages,
            vec![RetrievedMessage { hash, timestamp_ms: 5, expiry_ms: 9, data: b"hi".to_vec() }]
        );
        let mut bad = body.clone();
        bad["messages"][0]["data"] = json!("***");
        assert!(parse_retrieved(&bad, [0; 32]).is_err());
        assert!(parse_retrieved(&json!({"t": 1}), [0; 32]).is_err());
    }

    #[test]
    fn swarm_results_split_failures() {
        let body = json!({"swarm": {"a": {"hash": "x"}, "b": {"failed": true, "timeout": true}, "c": {}}});
        let (ok, failed) = swarm_results(&body).unwrap();
        assert_eq!((ok.len(), failed), (2, 1));
        assert_eq!(ok[0].0, "a");
        assert!(swarm_results(&json!({})).is_err());
    }

    #[test]
    fn node_result_signatures_are_checked() {
        let node = IdentityKey::from_seed_bytes(&[9; 32]);
        let hash = MessageHash::compute(&[5; 33], Namespace(0), b"hi");
        let message = NodeResultToSign::Store { hash: &hash }.message();
        let result = json!({"hash": hash.as_str(), "signature": B64.encode(node.sign(&message))});
        assert!(signed_by(&node.ed25519_public(), &result, &message));
        let other = MessageHash::compute(&[5; 33], Namespace(0), b"ho");
        assert!(!signed_by(
            &node.ed25519_public(),
            &result,
            &NodeResultToSign::Store { hash: &other }.message()
        ));
        assert!(!signed_by(&[1; 32], &result, &message));
        assert!(!signed_by(&node.ed25519_public(), &json!({"signature": "***"}), &message));
        assert!(!signed_by(&node.ed25519_public(), &json!({}), &message));
    }

    #[test]
    fn delete_all_hashes_are_flattened_and_sorted() {
        let a = MessageHash::compute(&[5; 33], Namespace(0), b"a");
        let b = MessageHash::compute(&[5; 33], Namespace(2), b"b");
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let by_ns = json!({"deleted": {"0": [hi.as_str()], "2": [lo.as_str()]}});
        assert_eq!(all_deleted(&by_ns).unwrap(), vec![lo, hi]);
        assert_eq!(all_deleted(&json!({"deleted": [hi.as_str(), lo.as_str()]})).unwrap(), vec![lo, hi]);
        assert!(all_deleted(&json!({"deleted": [1]})).is_err());
    }

    #[test]
    fn only_standard_and_group_ids_have_swarms() {
        let blinded = SessionId::new(IdPrefix::Blinded15, [1; 32]);
        assert_eq!(storage_account(&blinded), Err(NetworkError::UnsupportedAccount { prefix: 0x15 }));
        let group = SessionId::new(IdPrefix::Group, [1; 32]);
        assert_eq!(storage_account(&group).unwrap()[0], 0x03);
    }

    #[test]
    fn get_swarm_replies_become_nodes() {
        let body = json!({"snodes": [{"pubkey_ed25519": hex::encode([1u8; 32]), "pubkey_x25519": hex::encode([2u8; 32]),
            "ip": "10.1.2.3", "port_https": 4433, "port": "4433"}], "swarm": "ff", "t": 3});
        let nodes = parse_get_swarm(&body).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!((nodes[0].swarm_id, nodes[0].port), (255, 4433));
    }
}
