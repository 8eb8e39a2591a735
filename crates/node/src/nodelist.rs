//! The list of service nodes this node knows, and the swarm arithmetic over it.
//!
//! For now the list comes from a static JSON file in the `get_service_nodes` shape (network §8.3)
//! that is reloaded when it changes; the registry replaces the file later.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use session_protocol::swarm::{SwarmId, swarm_for_pubkey};

use crate::AccountKey;

/// One service node, with the fields of `get_service_nodes` that matter here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Ed25519 public key, hex (the node's identity in onion `destination` fields).
    pub pubkey_ed25519: String,
    /// X25519 public key, hex (onion layer encryption).
    pub pubkey_x25519: String,
    /// IPv4 address.
    pub public_ip: Ipv4Addr,
    /// The HTTP(S) storage port.
    pub storage_port: u16,
    /// The OMQ/QUIC port (unused by this project; reported for compatibility).
    #[serde(default)]
    pub storage_lmq_port: u16,
    /// The swarm, or `u64::MAX` when the node is decommissioned.
    pub swarm_id: u64,
    /// The node serves HTTPS (self-signed; peers do not verify the certificate) rather than
    /// plain HTTP on `storage_port`. Not an oxend field; absent means plain HTTP.
    #[serde(default)]
    pub tls: bool,
}

impl NodeRecord {
    /// The swarm this node belongs to, if any.
    pub fn swarm(&self) -> Option<SwarmId> {
        let id = SwarmId(self.swarm_id);
        id.is_valid().then_some(id)
    }

    /// The Ed25519 key as bytes, if the hex is valid.
    pub fn ed25519(&self) -> Option<[u8; 32]> {
        session_protocol::primitives::hex_array(&self.pubkey_ed25519)
    }

    /// The X25519 key as bytes, if the hex is valid.
    pub fn x25519(&self) -> Option<[u8; 32]> {
        session_protocol::primitives::hex_array(&self.pubkey_x25519)
    }
}

/// The JSON file: `{"service_node_states": [NodeRecord, ...]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeListFile {
    /// The nodes.
    pub service_node_states: Vec<NodeRecord>,
}

/// An immutable snapshot of the node list with its swarms indexed.
#[derive(Debug, Clone, Default)]
pub struct NodeList {
    nodes: Vec<NodeRecord>,
    swarm_ids: Vec<SwarmId>,
    by_ed25519: BTreeMap<String, usize>,
}

impl NodeList {
    /// Indexes a list of nodes. Records with invalid keys are dropped.
    pub fn new(nodes: Vec<NodeRecord>) -> Self {
        let nodes: Vec<NodeRecord> =
            nodes.into_iter().filter(|n| n.ed25519().is_some() && n.x25519().is_some()).collect();
        let mut swarm_ids: Vec<SwarmId> = nodes.iter().filter_map(NodeRecord::swarm).collect();
        swarm_ids.sort();
        swarm_ids.dedup();
        let by_ed25519 = nodes.iter().enumerate().map(|(i, n)| (n.pubkey_ed25519.clone(), i)).collect();
        Self { nodes, swarm_ids, by_ed25519 }
    }

    /// Parses the JSON file form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let file: NodeListFile = serde_json::from_slice(bytes)?;
        Ok(Self::new(file.service_node_states))
    }

    /// Every node, decommissioned ones included.
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// The node with this Ed25519 key (hex), if known.
    pub fn by_ed25519(&self, pubkey_hex: &str) -> Option<&NodeRecord> {
        self.by_ed25519.get(pubkey_hex).map(|&i| &self.nodes[i])
    }

    /// The swarm that serves an account (network §6.2), if any swarm exists.
    pub fn swarm_of(&self, account: &AccountKey) -> Option<SwarmId> {
        swarm_for_pubkey(account.as_bytes(), &self.swarm_ids)
    }

    /// The active members of a swarm.
    pub fn members(&self, swarm: SwarmId) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(move |n| n.swarm() == Some(swarm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8, swarm: u64) -> NodeRecord {
        NodeRecord {
            pubkey_ed25519: hex::encode([i; 32]),
            pubkey_x25519: hex::encode([i + 100; 32]),
            public_ip: Ipv4Addr::new(127, 0, 0, i),
            storage_port: 20000 + u16::from(i),
            storage_lmq_port: 0,
            swarm_id: swarm,
            tls: false,
        }
    }

    #[test]
    fn swarms_and_members() {
        let list = NodeList::new(vec![node(1, 10), node(2, 10), node(3, u64::MAX), node(4, 1 << 63)]);
        assert_eq!(list.members(SwarmId(10)).count(), 2);
        let account: AccountKey = format!("05{}", "00".repeat(32)).parse().unwrap();
        assert_eq!(list.swarm_of(&account), Some(SwarmId(10)));
        assert!(list.by_ed25519(&hex::encode([3u8; 32])).is_some());
    }
}
