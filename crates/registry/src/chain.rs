//! The epoch chain (`docs/registry.md` §4): signed, hash-linked epochs of membership events, and
//! the [`State`] that replaying them produces, swarm assignment included.
//!
//! Pure: no clock, files or sockets. Nodes use this module to verify the registry's epochs and
//! recompute the published node list; the registry uses it to build and apply its own.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use session_protocol::IdentityKey;
use session_protocol::keys::verify_ed25519;
use session_protocol::swarm::SwarmId;

use crate::assign::assign_swarms;

/// Domain prefix of the epoch hash.
pub const EPOCH_HASH_DOMAIN: &[u8] = b"session-registry/epoch";

/// The registry's view of a node as published in `register` / `update` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Ed25519 key, the node's identity.
    #[serde(with = "hex_bytes")]
    pub pubkey_ed25519: [u8; 32],
    /// X25519 form of the Ed25519 key.
    #[serde(with = "hex_bytes")]
    pub pubkey_x25519: [u8; 32],
    /// Public IPv4 address.
    pub public_ip: Ipv4Addr,
    /// HTTP(S) storage port.
    pub storage_port: u16,
    /// OMQ/QUIC port (0 when there is none).
    pub storage_lmq_port: u16,
    /// Whether the node serves HTTPS.
    pub tls: bool,
    /// Storage server version `[a, b, c]`.
    pub version: [u16; 3],
}

/// A node named by its key only (`decommission`, `recommission`, `remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    /// Ed25519 key.
    #[serde(with = "hex_bytes")]
    pub pubkey_ed25519: [u8; 32],
}

/// A membership change (`docs/registry.md` §4). JSON: `{"type": "register", "node": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// Adds a node (active, no swarm yet), or replaces a known node's record keeping its swarm.
    Register {
        /// The record.
        node: NodeRecord,
    },
    /// Replaces a known node's record.
    Update {
        /// The record.
        node: NodeRecord,
    },
    /// Takes an active node out of its swarm and marks it inactive.
    Decommission {
        /// The node.
        node: NodeRef,
    },
    /// Marks a decommissioned node active again, without a swarm (it is assigned like a new one).
    Recommission {
        /// The node.
        node: NodeRef,
    },
    /// Forgets a node.
    Remove {
        /// The node.
        node: NodeRef,
    },
}

impl Event {
    /// The node the event is about.
    pub fn node_key(&self) -> &[u8; 32] {
        match self {
            Event::Register { node } | Event::Update { node } => &node.pubkey_ed25519,
            Event::Decommission { node } | Event::Recommission { node } | Event::Remove { node } => {
                &node.pubkey_ed25519
            }
        }
    }

    /// The event's `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Register { .. } => "register",
            Event::Update { .. } => "update",
            Event::Decommission { .. } => "decommission",
            Event::Recommission { .. } => "recommission",
            Event::Remove { .. } => "remove",
        }
    }
}

/// One epoch of the chain (`docs/registry.md` §4), in its published JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    /// 0 for the genesis, then +1 per epoch.
    pub height: u64,
    /// The previous epoch's hash (zeros for the genesis).
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    /// Milliseconds since the Unix epoch; never decreases along the chain.
    pub timestamp: u64,
    /// The JSON text of the event list, hashed exactly as stored.
    pub events: String,
    /// BLAKE2b-256 of the domain, `prev_hash`, height, timestamp and events.
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
    /// Ed25519 signature of `hash` by the registry key.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

impl Epoch {
    /// `BLAKE2b-256("session-registry/epoch" ‖ prev_hash ‖ height (u64 BE) ‖ timestamp (u64 BE) ‖
    /// events)`.
    pub fn compute_hash(prev_hash: &[u8; 32], height: u64, timestamp: u64, events: &str) -> [u8; 32] {
        let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
        state.update(EPOCH_HASH_DOMAIN);
        state.update(prev_hash);
        state.update(&height.to_be_bytes());
        state.update(&timestamp.to_be_bytes());
        state.update(events.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(state.finalize().as_bytes());
        out
    }

    /// A new epoch holding `events`, hashed and signed with the registry key.
    pub fn create(
        key: &IdentityKey,
        prev_hash: [u8; 32],
        height: u64,
        timestamp: u64,
        events: &[Event],
    ) -> Self {
        let events = serde_json::to_string(events).expect("events serialize to JSON");
        let hash = Self::compute_hash(&prev_hash, height, timestamp, &events);
        let signature = key.sign(&hash);
        Self { height, prev_hash, timestamp, events, hash, signature }
    }

    /// The genesis epoch: height 0, zero `prev_hash`, no events.
    pub fn genesis(key: &IdentityKey, timestamp: u64) -> Self {
        Self::create(key, [0; 32], 0, timestamp, &[])
    }

    /// Checks the hash and the registry's signature (not the link to the previous epoch: see
    /// [`State::apply`]).
    pub fn verify(&self, registry_pubkey: &[u8; 32]) -> Result<(), ChainError> {
        let expected = Self::compute_hash(&self.prev_hash, self.height, self.timestamp, &self.events);
        if expected != self.hash {
            return Err(ChainError::BadHash { height: self.height });
        }
        if !verify_ed25519(registry_pubkey, &self.hash, &self.signature) {
            return Err(ChainError::BadSignature { height: self.height });
        }
        Ok(())
    }

    /// The event list.
    pub fn parse_events(&self) -> Result<Vec<Event>, ChainError> {
        serde_json::from_str(&self.events)
            .map_err(|e| ChainError::MalformedEvents { height: self.height, reason: e.to_string() })
    }

    /// The swarm-assignment seed: the first 8 bytes of the hash, little-endian.
    pub fn seed(&self) -> u64 {
        u64::from_le_bytes(self.hash[..8].try_into().expect("8 of 32 bytes"))
    }
}

/// A chain that does not verify or does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The epoch's hash is not the hash of its contents.
    #[error("epoch {height}: hash does not match its contents")]
    BadHash {
        /// The epoch.
        height: u64,
    },
    /// The signature is not the registry's.
    #[error("epoch {height}: signature is not the registry's")]
    BadSignature {
        /// The epoch.
        height: u64,
    },
    /// The epoch does not follow the current tip.
    #[error("epoch {height} does not follow the chain tip (expected height {expected})")]
    WrongHeight {
        /// The epoch.
        height: u64,
        /// The height that would follow.
        expected: u64,
    },
    /// `prev_hash` is not the previous epoch's hash.
    #[error("epoch {height}: prev_hash does not link to the previous epoch")]
    BrokenLink {
        /// The epoch.
        height: u64,
    },
    /// The timestamp is before the previous epoch's.
    #[error("epoch {height}: timestamp goes backwards")]
    TimestampBackwards {
        /// The epoch.
        height: u64,
    },
    /// The genesis epoch carries events.
    #[error("the genesis epoch must have no events")]
    GenesisWithEvents,
    /// `events` is not a valid event list.
    #[error("epoch {height}: malformed events: {reason}")]
    MalformedEvents {
        /// The epoch.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// An event does not fit the state (unknown node, decommissioning an inactive node, ...).
    #[error("epoch {height}: {kind} event for node {node}: {reason}")]
    InvalidEvent {
        /// The epoch.
        height: u64,
        /// The event type.
        kind: &'static str,
        /// The node, short form.
        node: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A node of the replayed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The latest record.
    pub record: NodeRecord,
    /// Its swarm; [`SwarmId::INVALID`] while decommissioned.
    pub swarm_id: SwarmId,
    /// False while decommissioned.
    pub active: bool,
    /// Timestamp (ms) of the epoch that last registered, decommissioned or recommissioned it.
    pub since: u64,
}

/// The chain tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Height of the last applied epoch.
    pub height: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// Its timestamp (ms).
    pub timestamp: u64,
}

/// The state of the network after replaying the chain: every known node, its record, swarm and
/// whether it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    registry_pubkey: [u8; 32],
    tip: Option<Tip>,
    nodes: BTreeMap<[u8; 32], NodeEntry>,
}

impl State {
    /// The empty state before the genesis, for a chain signed by `registry_pubkey`.
    pub fn new(registry_pubkey: [u8; 32]) -> Self {
        Self { registry_pubkey, tip: None, nodes: BTreeMap::new() }
    }

    /// Replays `epochs` from the genesis.
    pub fn replay<'a>(
        registry_pubkey: [u8; 32],
        epochs: impl IntoIterator<Item = &'a Epoch>,
    ) -> Result<Self, ChainError> {
        let mut state = Self::new(registry_pubkey);
        for epoch in epochs {
            state.apply(epoch)?;
        }
        Ok(state)
    }

    /// Verifies `epoch` (hash, signature, height, link to the tip, timestamp), applies its events
    /// in order, then runs the swarm assignment (network §6.1) over the active nodes, seeded by
    /// the epoch hash. On error the state is unchanged.
    pub fn apply(&mut self, epoch: &Epoch) -> Result<(), ChainError> {
        self.check_link(epoch)?;
        epoch.verify(&self.registry_pubkey)?;
        let events = epoch.parse_events()?;
        if epoch.height == 0 && !events.is_empty() {
            return Err(ChainError::GenesisWithEvents);
        }
        let mut nodes = self.nodes.clone();
        for event in &events {
            apply_event(&mut nodes, event, epoch)?;
        }
        let active =
            nodes.iter().filter(|(_, entry)| entry.active).map(|(key, entry)| (*key, entry.swarm_id));
        let assignment = assign_swarms(active, epoch.seed());
        for (key, swarm) in assignment {
            if let Some(entry) = nodes.get_mut(&key) {
                entry.swarm_id = swarm;
            }
        }
        self.nodes = nodes;
        self.tip = Some(Tip { height: epoch.height, hash: epoch.hash, timestamp: epoch.timestamp });
        Ok(())
    }

    /// Checks that `epoch` follows the tip: the next height, `prev_hash` equal to the tip's hash
    /// (zeros for the genesis) and a timestamp no earlier than the tip's.
    pub fn check_link(&self, epoch: &Epoch) -> Result<(), ChainError> {
        let (expected, prev_hash, prev_time) = match &self.tip {
            Some(tip) => (tip.height + 1, tip.hash, tip.timestamp),
            None => (0, [0; 32], 0),
        };
        if epoch.height != expected {
            return Err(ChainError::WrongHeight { height: epoch.height, expected });
        }
        if epoch.prev_hash != prev_hash {
            return Err(ChainError::BrokenLink { height: epoch.height });
        }
        if epoch.timestamp < prev_time {
            return Err(ChainError::TimestampBackwards { height: epoch.height });
        }
        Ok(())
    }

    /// The key the chain is signed with.
    pub fn registry_pubkey(&self) -> &[u8; 32] {
        &self.registry_pubkey
    }

    /// The last applied epoch, if any.
    pub fn tip(&self) -> Option<Tip> {
        self.tip
    }

    /// Height of the last applied epoch.
    pub fn height(&self) -> Option<u64> {
        self.tip.map(|tip| tip.height)
    }

    /// Hash of the last applied epoch (the `block_hash` of `get_service_nodes`).
    pub fn block_hash(&self) -> Option<[u8; 32]> {
        self.tip.map(|tip| tip.hash)
    }

    /// Every known node (active or decommissioned), by Ed25519 key.
    pub fn nodes(&self) -> &BTreeMap<[u8; 32], NodeEntry> {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, pubkey_ed25519: &[u8; 32]) -> Option<&NodeEntry> {
        self.nodes.get(pubkey_ed25519)
    }

    /// The ids of the swarms that have active nodes, ascending.
    pub fn swarm_ids(&self) -> Vec<SwarmId> {
        let mut ids: Vec<SwarmId> =
            self.nodes.values().filter(|e| e.active).map(|e| e.swarm_id).filter(|s| s.is_valid()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The published per-node view (`get_service_nodes` entries), sorted by Ed25519 key. The
    /// liveness fields are not in the chain: `last_uptime_proof` is 0 and
    /// `storage_server_reachable` equals `active` here; the registry fills in what it measured.
    pub fn node_records(&self) -> Vec<ServiceNodeState> {
        self.nodes.values().map(ServiceNodeState::from_entry).collect()
    }
}

fn apply_event(
    nodes: &mut BTreeMap<[u8; 32], NodeEntry>,
    event: &Event,
    epoch: &Epoch,
) -> Result<(), ChainError> {
    let invalid = |reason| ChainError::InvalidEvent {
        height: epoch.height,
        kind: event.kind(),
        node: short_key(event.node_key()),
        reason,
    };
    match event {
        Event::Register { node } => match nodes.get_mut(&node.pubkey_ed25519) {
            Some(entry) => entry.record = node.clone(),
            None => {
                nodes.insert(
                    node.pubkey_ed25519,
                    NodeEntry {
                        record: node.clone(),
                        swarm_id: SwarmId::INVALID,
                        active: true,
                        since: epoch.timestamp,
                    },
                );
            }
        },
        Event::Update { node } => {
            let entry = nodes.get_mut(&node.pubkey_ed25519).ok_or_else(|| invalid("unknown node"))?;
            entry.record = node.clone();
        }
        Event::Decommission { node } => {
            let entry = nodes.get_mut(&node.pubkey_ed25519).ok_or_else(|| invalid("unknown node"))?;
            if !entry.active {
                return Err(invalid("node is already decommissioned"));
            }
            entry.active = false;
            entry.swarm_id = SwarmId::INVALID;
            entry.since = epoch.timestamp;
        }
        Event::Recommission { node } => {
            let entry = nodes.get_mut(&node.pubkey_ed25519).ok_or_else(|| invalid("unknown node"))?;
            if entry.active {
                return Err(invalid("node is active"));
            }
            entry.active = true;
            entry.swarm_id = SwarmId::INVALID;
            entry.since = epoch.timestamp;
        }
        Event::Remove { node } => {
            nodes.remove(&node.pubkey_ed25519).ok_or_else(|| invalid("unknown node"))?;
        }
    }
    Ok(())
}

/// One entry of `get_service_nodes` (`docs/registry.md` §5, network §8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNodeState {
    /// The Ed25519 key, hex (oxend's primary key; here the same as `pubkey_ed25519`).
    pub service_node_pubkey: String,
    /// Ed25519 key, hex.
    pub pubkey_ed25519: String,
    /// X25519 key, hex.
    pub pubkey_x25519: String,
    /// IPv4 address.
    pub public_ip: String,
    /// HTTP(S) storage port.
    pub storage_port: u16,
    /// OMQ/QUIC port.
    pub storage_lmq_port: u16,
    /// Swarm id; `u64::MAX` while decommissioned.
    pub swarm_id: u64,
    /// Swarm id as 16 hex digits.
    pub swarm: String,
    /// False while decommissioned.
    pub active: bool,
    /// Always true.
    pub funded: bool,
    /// `[a, b, c]`.
    pub storage_server_version: [u16; 3],
    /// Always 0.
    pub requested_unlock_height: u64,
    /// Unix seconds of the last heartbeat (0 when unknown).
    pub last_uptime_proof: u64,
    /// Whether the last reachability test passed.
    pub storage_server_reachable: bool,
    /// Our extension: the node serves HTTPS.
    pub tls: bool,
}

impl ServiceNodeState {
    /// The chain-derived view of one node (liveness fields defaulted, see
    /// [`State::node_records`]).
    pub fn from_entry(entry: &NodeEntry) -> Self {
        let record = &entry.record;
        let ed = hex::encode(record.pubkey_ed25519);
        Self {
            service_node_pubkey: ed.clone(),
            pubkey_ed25519: ed,
            pubkey_x25519: hex::encode(record.pubkey_x25519),
            public_ip: record.public_ip.to_string(),
            storage_port: record.storage_port,
            storage_lmq_port: record.storage_lmq_port,
            swarm_id: entry.swarm_id.0,
            swarm: format!("{:016x}", entry.swarm_id.0),
            active: entry.active,
            funded: true,
            storage_server_version: record.version,
            requested_unlock_height: 0,
            last_uptime_proof: 0,
            storage_server_reachable: entry.active,
            tls: record.tls,
        }
    }
}

/// A short form of a key for logs and errors: `abcdef…1234`.
pub fn short_key(key: &[u8; 32]) -> String {
    let hex = hex::encode(key);
    format!("{}…{}", &hex[..6], &hex[60..])
}

/// Serde of fixed-size byte arrays as lowercase hex strings.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes lowercase hex.
    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Reads exactly `2·N` hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(text.as_ref(), &mut out)
            .map_err(|_| serde::de::Error::custom(format_args!("expected {} hex digits", 2 * N)))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_key() -> IdentityKey {
        IdentityKey::from_seed_bytes(&[7; 32])
    }

    fn record(n: u8) -> NodeRecord {
        let key = IdentityKey::from_seed_bytes(&[n; 32]);
        NodeRecord {
            pubkey_ed25519: key.ed25519_public(),
            pubkey_x25519: *key.x25519_public(),
            public_ip: Ipv4Addr::new(127, 0, 0, n),
            storage_port: 20000 + u16::from(n),
            storage_lmq_port: 0,
            tls: false,
            version: [0, 1, 0],
        }
    }

    /// Appends an epoch with `events` to `chain`.
    fn push(chain: &mut Vec<Epoch>, events: &[Event]) {
        let key = registry_key();
        let epoch = match chain.last() {
            None => Epoch::genesis(&key, 1_000),
            Some(prev) => Epoch::create(&key, prev.hash, prev.height + 1, prev.timestamp + 1_000, events),
        };
        chain.push(epoch);
    }

    #[test]
    fn epoch_json_shape_and_round_trip() {
        let mut chain = Vec::new();
        push(&mut chain, &[]);
        push(&mut chain, &[Event::Register { node: record(1) }]);
        let json = serde_json::to_value(&chain[1]).unwrap();
        let fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields.len(), 6);
        for field in ["height", "prev_hash", "timestamp", "events", "hash", "signature"] {
            assert!(fields.contains(&field), "{field}");
        }
        assert_eq!(json["prev_hash"], hex::encode(chain[0].hash));
        assert_eq!(json["signature"].as_str().unwrap().len(), 128);
        let events: serde_json::Value = serde_json::from_str(json["events"].as_str().unwrap()).unwrap();
        assert_eq!(events[0]["type"], "register");
        assert_eq!(events[0]["node"]["public_ip"], "127.0.0.1");
        assert_eq!(events[0]["node"]["version"], serde_json::json!([0, 1, 0]));
        assert_eq!(events[0]["node"]["pubkey_ed25519"], hex::encode(record(1).pubkey_ed25519));
        let back: Epoch = serde_json::from_value(json).unwrap();
        assert_eq!(back, chain[1]);
        let gone =
            serde_json::to_string(&Event::Remove { node: NodeRef { pubkey_ed25519: [0xab; 32] } }).unwrap();
        assert_eq!(
            gone,
            format!("{{\"type\":\"remove\",\"node\":{{\"pubkey_ed25519\":\"{}\"}}}}", "ab".repeat(32))
        );
    }

    #[test]
    fn hash_is_the_documented_blake2b() {
        let prev = [3u8; 32];
        let events = "[]";
        let mut input = b"session-registry/epoch".to_vec();
        input.extend_from_slice(&prev);
        input.extend_from_slice(&5u64.to_be_bytes());
        input.extend_from_slice(&77u64.to_be_bytes());
        input.extend_from_slice(events.as_bytes());
        let expected = blake2b_simd::Params::new().hash_length(32).hash(&input);
        assert_eq!(Epoch::compute_hash(&prev, 5, 77, events), expected.as_bytes());
        let genesis = Epoch::genesis(&registry_key(), 77);
        assert_eq!(genesis.events, "[]");
        assert_eq!(genesis.prev_hash, [0; 32]);
    }

    #[test]
    fn tampering_is_detected() {
        let mut chain = Vec::new();
        push(&mut chain, &[]);
        push(&mut chain, &[Event::Register { node: record(1) }]);
        let pk = registry_key().ed25519_public();
        assert!(State::replay(pk, &chain).is_ok());

        let mut forged = chain.clone();
        forged[1].events = serde_json::to_string(&[Event::Register { node: record(2) }]).unwrap();
        assert_eq!(State::replay(pk, &forged), Err(ChainError::BadHash { height: 1 }));

        // Re-hashed but not re-signed.
        forged[1].hash = Epoch::compute_hash(&forged[1].prev_hash, 1, forged[1].timestamp, &forged[1].events);
        assert_eq!(State::replay(pk, &forged), Err(ChainError::BadSignature { height: 1 }));

        // Signed by another key.
        let other = IdentityKey::from_seed_bytes(&[9; 32]);
        let foreign = vec![Epoch::genesis(&other, 1_000)];
        assert_eq!(State::replay(pk, &foreign), Err(ChainError::BadSignature { height: 0 }));

        // Skipped or unlinked epochs.
        let mut state = State::replay(pk, &chain[..1]).unwrap();
        let mut chain2 = chain.clone();
        push(&mut chain2, &[]);
        assert_eq!(state.apply(&chain2[2]), Err(ChainError::WrongHeight { height: 2, expected: 1 }));
        let unlinked = Epoch::create(&registry_key(), [1; 32], 1, 5_000, &[]);
        assert_eq!(state.apply(&unlinked), Err(ChainError::BrokenLink { height: 1 }));
        let backwards = Epoch::create(&registry_key(), chain[0].hash, 1, 10, &[]);
        assert_eq!(state.apply(&backwards), Err(ChainError::TimestampBackwards { height: 1 }));
        let with_events =
            Epoch::create(&registry_key(), [0; 32], 0, 10, &[Event::Register { node: record(1) }]);
        assert_eq!(State::new(pk).apply(&with_events), Err(ChainError::GenesisWithEvents));
    }

    #[test]
    fn invalid_events_are_refused_and_leave_the_state_unchanged() {
        let pk = registry_key().ed25519_public();
        let mut chain = Vec::new();
        push(&mut chain, &[]);
        push(&mut chain, &[Event::Register { node: record(1) }]);
        let mut state = State::replay(pk, &chain).unwrap();
        let before = state.clone();
        let unknown = NodeRef { pubkey_ed25519: record(2).pubkey_ed25519 };
        let known = NodeRef { pubkey_ed25519: record(1).pubkey_ed25519 };
        for events in [
            vec![Event::Decommission { node: unknown }],
            vec![Event::Update { node: record(2) }],
            vec![Event::Remove { node: unknown }],
            vec![Event::Recommission { node: known }],
            vec![Event::Decommission { node: known }, Event::Decommission { node: known }],
        ] {
            let epoch = Epoch::create(&registry_key(), chain[1].hash, 2, 9_000, &events);
            assert!(matches!(state.apply(&epoch), Err(ChainError::InvalidEvent { .. })), "{events:?}");
            assert_eq!(state, before);
        }
        let mut garbage = Epoch::create(&registry_key(), chain[1].hash, 2, 9_000, &[]);
        garbage.events = "{\"not\": \"a list\"}".into();
        garbage.hash = Epoch::compute_hash(&garbage.prev_hash, 2, 9_000, &garbage.events);
        garbage.signature = registry_key().sign(&garbage.hash);
        assert!(matches!(state.apply(&garbage), Err(ChainError::MalformedEvents { height: 2, .. })));
    }

    #[test]
    fn replay_assigns_decommissions_recommissions_and_removes() {
        let pk = registry_key().ed25519_public();
        let mut chain = Vec::new();
        push(&mut chain, &[]);
        let regs: Vec<Event> = (1..=6).map(|n| Event::Register { node: record(n) }).collect();
        push(&mut chain, &regs);
        let state = State::replay(pk, &chain).unwrap();
        assert_eq!(state.height(), Some(1));
        assert_eq!(state.block_hash(), Some(chain[1].hash));
        assert_eq!(state.swarm_ids(), [SwarmId(0)]);
        assert!(state.nodes().values().all(|e| e.active && e.swarm_id == SwarmId(0)));

        let gone = NodeRef { pubkey_ed25519: record(3).pubkey_ed25519 };
        push(&mut chain, &[Event::Decommission { node: gone }]);
        let state = State::replay(pk, &chain).unwrap();
        let entry = state.node(&gone.pubkey_ed25519).unwrap();
        assert!(!entry.active);
        assert_eq!(entry.swarm_id, SwarmId::INVALID);
        assert_eq!(entry.since, chain[2].timestamp);
        let listed = state.node_records();
        assert_eq!(listed.len(), 6);
        let view = listed.iter().find(|n| n.pubkey_ed25519 == hex::encode(gone.pubkey_ed25519)).unwrap();
        assert_eq!((view.swarm_id, view.active, view.swarm.as_str()), (u64::MAX, false, "ffffffffffffffff"));

        let mut moved = record(2);
        moved.storage_port = 1;
        push(&mut chain, &[Event::Recommission { node: gone }, Event::Update { node: moved.clone() }]);
        let state = State::replay(pk, &chain).unwrap();
        assert!(state.nodes().values().all(|e| e.active && e.swarm_id == SwarmId(0)));
        assert_eq!(state.node(&moved.pubkey_ed25519).unwrap().record, moved);

        push(&mut chain, &[Event::Remove { node: gone }]);
        let state = State::replay(pk, &chain).unwrap();
        assert_eq!(state.nodes().len(), 5);
        assert_eq!(state.height(), Some(4));
    }

    #[test]
    fn replay_of_the_same_chain_is_identical() {
        let pk = registry_key().ed25519_public();
        let mut chain = Vec::new();
        push(&mut chain, &[]);
        let regs: Vec<Event> = (1..=30).map(|n| Event::Register { node: record(n) }).collect();
        push(&mut chain, &regs);
        let a = State::replay(pk, &chain).unwrap();
        let b = State::replay(pk, &chain).unwrap();
        assert_eq!(a, b);
        assert!(a.swarm_ids().len() >= 2, "30 nodes make several swarms");
    }
}
