//! The node pool: what the client knows about the service nodes (network §7.8, §8).
//!
//! The pool holds every active node with the fields the client needs (keys, address, port,
//! swarm), when it was last refreshed, and a failure count per node. A node with
//! [`NODE_FAILURE_LIMIT`] failures is excluded from paths and swarm choices until the next
//! refresh from a registry clears the counts. The pool can be exported as a [`PoolSnapshot`]
//! (plain serde data) and imported again, so a caller can keep it across restarts.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use session_protocol::onion::NodeKeys;
use session_protocol::swarm::{SwarmId, swarm_for_pubkey};

/// A node is excluded after this many failures (libsession: 3).
pub const NODE_FAILURE_LIMIT: u32 = 3;

/// One service node as the client knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceNode {
    /// Ed25519 public key: the node's identity; onion layers name the next hop by it.
    #[serde(with = "hex32")]
    pub ed25519: [u8; 32],
    /// X25519 public key: onion layers for this node are encrypted to it.
    #[serde(with = "hex32")]
    pub x25519: [u8; 32],
    /// Public IPv4 address.
    pub ip: Ipv4Addr,
    /// Storage (HTTP or HTTPS) port.
    pub port: u16,
    /// The swarm the node belongs to.
    pub swarm_id: u64,
    /// Whether the node serves HTTPS (`Some(true)`), plain HTTP (`Some(false)`), or unknown
    /// (`None`: HTTPS is tried first, then HTTP).
    #[serde(default)]
    pub tls: Option<bool>,
}

impl ServiceNode {
    /// The keys an onion path names this node by.
    pub fn keys(&self) -> NodeKeys {
        NodeKeys { ed25519: self.ed25519, x25519: self.x25519 }
    }

    /// A short form of the node's key for logs: the first 8 hex digits.
    pub fn short(&self) -> String {
        hex::encode(&self.ed25519[..4])
    }

    /// Whether the node's address is in 127.0.0.0/8.
    pub fn is_loopback(&self) -> bool {
        self.ip.is_loopback()
    }

    /// Parses one entry of `service_node_states` (registry `get_n_service_nodes`, or a node's
    /// `oxend_request get_service_nodes`). `None` for entries a client cannot use: inactive, not
    /// in a swarm, address `0.0.0.0`, or a missing or malformed field.
    pub fn from_state(state: &Value) -> Option<Self> {
        if state.get("active").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        let key = |name: &str| -> Option<[u8; 32]> {
            let text = state.get(name)?.as_str()?;
            let mut out = [0u8; 32];
            hex::decode_to_slice(text, &mut out).ok()?;
            Some(out)
        };
        let ip: Ipv4Addr = state.get("public_ip")?.as_str()?.parse().ok()?;
        if ip.is_unspecified() {
            return None;
        }
        let port = u16::try_from(state.get("storage_port")?.as_u64()?).ok().filter(|&p| p != 0)?;
        let swarm_id = state.get("swarm_id")?.as_u64().filter(|&s| SwarmId(s).is_valid())?;
        Some(Self {
            ed25519: key("pubkey_ed25519")?,
            x25519: key("pubkey_x25519")?,
            ip,
            port,
            swarm_id,
            tls: state.get("tls").and_then(Value::as_bool),
        })
    }
}

/// Parses a `get_service_nodes` result (`{"service_node_states": [...], ...}`), keeping the
/// usable entries ([`ServiceNode::from_state`]). `None` if the list itself is missing.
pub fn parse_service_node_states(result: &Value) -> Option<Vec<ServiceNode>> {
    let states = result.get("service_node_states")?.as_array()?;
    let mut nodes: Vec<ServiceNode> = states.iter().filter_map(ServiceNode::from_state).collect();
    nodes.sort_by_key(|n| n.ed25519);
    nodes.dedup_by_key(|n| n.ed25519);
    Some(nodes)
}

/// The nodes every list agrees on: present in each list with the same keys, address, port and
/// swarm (network §7.8: "keeping the intersection"). The TLS flag is not compared (nodes do not
/// publish it); a known value wins over an unknown one.
pub fn intersect(lists: &[Vec<ServiceNode>]) -> Vec<ServiceNode> {
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    let same = |a: &ServiceNode, b: &ServiceNode| {
        a.ed25519 == b.ed25519
            && a.x25519 == b.x25519
            && a.ip == b.ip
            && a.port == b.port
            && a.swarm_id == b.swarm_id
    };
    let mut out = Vec::new();
    'nodes: for node in first {
        let mut merged = node.clone();
        for list in rest {
            match list.iter().find(|n| same(n, node)) {
                Some(other) => merged.tls = merged.tls.or(other.tls),
                None => continue 'nodes,
            }
        }
        out.push(merged);
    }
    out
}

/// The pool as plain data, for the caller to store and import later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSnapshot {
    /// The nodes.
    pub nodes: Vec<ServiceNode>,
    /// When the list was last refreshed, Unix milliseconds (local clock).
    pub refreshed_at_ms: u64,
    /// Failure counts by node Ed25519 key (hex); nodes without failures are absent.
    #[serde(default)]
    pub failures: BTreeMap<String, u32>,
}

/// The client's node pool.
#[derive(Debug, Clone, Default)]
pub struct NodePool {
    nodes: Vec<ServiceNode>,
    refreshed_at_ms: u64,
    failures: HashMap<[u8; 32], u32>,
}

impl NodePool {
    /// A pool of `nodes`, refreshed at `now_ms`.
    pub fn new(nodes: Vec<ServiceNode>, now_ms: u64) -> Self {
        Self { nodes, refreshed_at_ms: now_ms, failures: HashMap::new() }
    }

    /// Imports a snapshot (failure counts of unknown nodes and malformed keys are dropped).
    pub fn from_snapshot(snapshot: PoolSnapshot) -> Self {
        let mut pool = Self::new(snapshot.nodes, snapshot.refreshed_at_ms);
        for (key, count) in snapshot.failures {
            let mut ed = [0u8; 32];
            if hex::decode_to_slice(&key, &mut ed).is_ok() && pool.node(&ed).is_some() {
                pool.failures.insert(ed, count);
            }
        }
        pool
    }

    /// Exports the pool.
    pub fn snapshot(&self) -> PoolSnapshot {
        PoolSnapshot {
            nodes: self.nodes.clone(),
            refreshed_at_ms: self.refreshed_at_ms,
            failures: self.failures.iter().map(|(k, v)| (hex::encode(k), *v)).collect(),
        }
    }

    /// Replaces the node list. Failure counts are kept for nodes still listed unless
    /// `clear_failures`. TLS flags known before are kept where the new list has none.
    pub fn replace(&mut self, mut nodes: Vec<ServiceNode>, now_ms: u64, clear_failures: bool) {
        for node in &mut nodes {
            if node.tls.is_none() {
                node.tls = self.node(&node.ed25519).and_then(|old| old.tls);
            }
        }
        self.nodes = nodes;
        self.refreshed_at_ms = now_ms;
        if clear_failures {
            self.failures.clear();
        } else {
            let nodes = &self.nodes;
            self.failures.retain(|k, _| nodes.iter().any(|n| &n.ed25519 == k));
        }
    }

    /// Every node, excluded ones included.
    pub fn nodes(&self) -> &[ServiceNode] {
        &self.nodes
    }

    /// Number of nodes, excluded ones included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the pool has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// When the list was last refreshed (Unix ms, local clock).
    pub fn refreshed_at_ms(&self) -> u64 {
        self.refreshed_at_ms
    }

    /// Whether the list is older than `max_age_ms` at `now_ms`.
    pub fn is_expired(&self, now_ms: u64, max_age_ms: u64) -> bool {
        now_ms.saturating_sub(self.refreshed_at_ms) >= max_age_ms
    }

    /// The node with this Ed25519 key.
    pub fn node(&self, ed25519: &[u8; 32]) -> Option<&ServiceNode> {
        self.nodes.iter().find(|n| &n.ed25519 == ed25519)
    }

    /// The failure count of a node.
    pub fn failures(&self, ed25519: &[u8; 32]) -> u32 {
        self.failures.get(ed25519).copied().unwrap_or(0)
    }

    /// Whether a node is excluded (failed [`NODE_FAILURE_LIMIT`] times).
    pub fn is_excluded(&self, ed25519: &[u8; 32]) -> bool {
        self.failures(ed25519) >= NODE_FAILURE_LIMIT
    }

    /// Adds a failure to a node; returns the new count.
    pub fn record_failure(&mut self, ed25519: &[u8; 32]) -> u32 {
        let count = self.failures.entry(*ed25519).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Marks a node bad: excluded at once.
    pub fn mark_bad(&mut self, ed25519: &[u8; 32]) {
        let count = self.failures.entry(*ed25519).or_insert(0);
        *count = (*count).max(NODE_FAILURE_LIMIT);
    }

    /// Records whether a node serves HTTPS.
    pub fn set_tls(&mut self, ed25519: &[u8; 32], tls: bool) {
        if let Some(node) = self.nodes.iter_mut().find(|n| &n.ed25519 == ed25519) {
            node.tls = Some(tls);
        }
    }

    /// A node answered: its failure count is cleared.
    pub fn record_success(&mut self, ed25519: &[u8; 32]) {
        self.failures.remove(ed25519);
    }

    /// The nodes that are not excluded.
    pub fn usable(&self) -> Vec<ServiceNode> {
        self.nodes.iter().filter(|n| !self.is_excluded(&n.ed25519)).cloned().collect()
    }

    /// Whether every node is on 127.0.0.0/8 (a local test network), which relaxes the
    /// one-node-per-IP path rules to "distinct nodes".
    pub fn all_loopback(&self) -> bool {
        !self.nodes.is_empty() && self.nodes.iter().all(ServiceNode::is_loopback)
    }

    /// The distinct swarm ids, ascending.
    pub fn swarm_ids(&self) -> Vec<SwarmId> {
        let mut ids: Vec<SwarmId> = self.nodes.iter().map(|n| SwarmId(n.swarm_id)).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The swarm an account (33-byte pubkey) belongs to, computed from this list (network §6.2).
    pub fn swarm_of(&self, account: &[u8; 33]) -> Option<SwarmId> {
        swarm_for_pubkey(account, &self.swarm_ids())
    }

    /// Every member of the account's swarm, excluded ones included.
    pub fn swarm_members(&self, account: &[u8; 33]) -> Vec<ServiceNode> {
        let Some(swarm) = self.swarm_of(account) else {
            return Vec::new();
        };
        self.nodes.iter().filter(|n| n.swarm_id == swarm.0).cloned().collect()
    }
}

/// Serde for 32-byte keys as hex strings.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(key))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// A node with key bytes `k`, on `ip`, in `swarm`.
    pub(crate) fn node(k: u8, ip: [u8; 4], swarm: u64) -> ServiceNode {
        ServiceNode {
            ed25519: [k; 32],
            x25519: [k.wrapping_add(100); 32],
            ip: Ipv4Addr::from(ip),
            port: 20000 + u16::from(k),
            swarm_id: swarm,
            tls: Some(false),
        }
    }

    #[test]
    fn parses_states_and_skips_unusable_entries() {
        let ok = json!({"pubkey_ed25519": hex::encode([1u8; 32]), "pubkey_x25519": hex::encode([2u8; 32]),
            "public_ip": "10.0.0.1", "storage_port": 22021, "swarm_id": 7, "active": true, "tls": true});
        let mut zero_ip = ok.clone();
        zero_ip["public_ip"] = json!("0.0.0.0");
        let mut inactive = ok.clone();
        inactive["active"] = json!(false);
        let mut no_swarm = ok.clone();
        no_swarm["swarm_id"] = json!(u64::MAX);
        let mut bad_key = ok.clone();
        bad_key["pubkey_x25519"] = json!("zz");
        let list = json!({"service_node_states": [ok, zero_ip, inactive, no_swarm, bad_key]});
        let nodes = parse_service_node_states(&list).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].ip, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!((nodes[0].port, nodes[0].swarm_id, nodes[0].tls), (22021, 7, Some(true)));
        assert!(parse_service_node_states(&json!({"x": 1})).is_none());
    }

    #[test]
    fn intersection_keeps_only_agreeing_entries() {
        let a = vec![node(1, [10, 0, 0, 1], 5), node(2, [10, 0, 0, 2], 5), node(3, [10, 0, 0, 3], 5)];
        let mut b = a.clone();
        b[1].swarm_id = 9; // disagrees
        b.remove(2); // missing
        let mut c = a.clone();
        c[0].tls = None;
        let both = intersect(&[a.clone(), b, c]);
        assert_eq!(both, vec![a[0].clone()]);
        assert!(intersect(&[]).is_empty());
    }

    #[test]
    fn failures_exclude_after_the_limit_and_snapshot_round_trips() {
        let mut pool = NodePool::new(vec![node(1, [10, 0, 0, 1], 5), node(2, [10, 0, 0, 2], 5)], 1000);
        assert_eq!(pool.record_failure(&[1; 32]), 1);
        pool.record_failure(&[1; 32]);
        assert!(!pool.is_excluded(&[1; 32]));
        pool.record_failure(&[1; 32]);
        assert!(pool.is_excluded(&[1; 32]));
        assert_eq!(pool.usable().len(), 1);
        pool.mark_bad(&[2; 32]);
        assert!(pool.usable().is_empty());
        pool.record_success(&[2; 32]);
        assert_eq!(pool.usable().len(), 1);

        let snap = pool.snapshot();
        let text = serde_json::to_string(&snap).unwrap();
        let back: PoolSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, snap);
        let again = NodePool::from_snapshot(back);
        assert!(again.is_excluded(&[1; 32]) && !again.is_excluded(&[2; 32]));
        assert!(again.is_expired(1000 + 7_200_000, 7_200_000));
        assert!(!again.is_expired(1000 + 7_199_999, 7_200_000));
    }

    #[test]
    fn replace_keeps_tls_and_failures_of_listed_nodes() {
        let mut pool = NodePool::new(vec![node(1, [10, 0, 0, 1], 5), node(2, [10, 0, 0, 2], 5)], 0);
        pool.record_failure(&[1; 32]);
        pool.record_failure(&[2; 32]);
        let mut fresh = node(1, [10, 0, 0, 1], 5);
        fresh.tls = None;
        pool.replace(vec![fresh], 5, false);
        assert_eq!(pool.nodes()[0].tls, Some(false));
        assert_eq!(pool.failures(&[1; 32]), 1);
        assert_eq!(pool.failures(&[2; 32]), 0);
        pool.replace(pool.nodes().to_vec(), 6, true);
        assert_eq!(pool.failures(&[1; 32]), 0);
    }

    #[test]
    fn swarm_members_follow_the_swarm_rule() {
        let pool = NodePool::new(
            vec![node(1, [10, 0, 0, 1], 0), node(2, [10, 0, 0, 2], u64::MAX / 2), node(3, [10, 0, 0, 3], 0)],
            0,
        );
        let mut account = [0u8; 33];
        account[0] = 0x05;
        // space 0 → swarm 0.
        assert_eq!(pool.swarm_of(&account), Some(SwarmId(0)));
        assert_eq!(pool.swarm_members(&account).len(), 2);
        assert!(!pool.all_loopback());
    }
}
