//! The list of service nodes this node knows, and the swarm arithmetic over it.
//!
//! For now the list comes from a static JSON file in the `get_service_nodes` shape (network §8.3)
//! that is reloaded when it changes; the registry replaces the file later.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_protocol::keys::Ed25519Verifier;
use session_protocol::swarm::{SwarmId, swarm_for_pubkey};

use crate::{AccountKey, NodeContext};

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
    /// Each node's decoded Ed25519 key (`None`: no signature verifies under it), decoded on
    /// first use: the channel checks a signature per request, and decoding the key is a point
    /// decompression.
    verifiers: Vec<OnceLock<Option<Ed25519Verifier>>>,
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
        let verifiers = nodes.iter().map(|_| OnceLock::new()).collect();
        Self { nodes, swarm_ids, by_ed25519, verifiers }
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

    /// The node with this Ed25519 key (hex) and the key decoded for verifying its signatures
    /// (`None` when no signature can verify under it), or `None` if the node is not listed.
    pub fn verifier_by_ed25519(&self, pubkey_hex: &str) -> Option<(&NodeRecord, Option<&Ed25519Verifier>)> {
        let &i = self.by_ed25519.get(pubkey_hex)?;
        let record = &self.nodes[i];
        let verifier =
            self.verifiers[i].get_or_init(|| record.ed25519().as_ref().and_then(Ed25519Verifier::new));
        Some((record, verifier.as_ref()))
    }

    /// The swarm ids with at least one member, ascending.
    pub fn swarm_ids(&self) -> &[SwarmId] {
        &self.swarm_ids
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

/// The node-list file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeListError {
    /// The file could not be read.
    #[error("node list {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid node list.
    #[error("node list {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads and parses a node-list file (the `get_service_nodes` shape).
pub fn load_file(path: &Path) -> Result<NodeList, NodeListError> {
    let bytes = std::fs::read(path)
        .map_err(|source| NodeListError::Read { path: path.display().to_string(), source })?;
    NodeList::from_json(&bytes)
        .map_err(|source| NodeListError::Parse { path: path.display().to_string(), source })
}

/// Watches a node-list file: each [`poll`](Self::poll) re-reads it and yields a new list when
/// its content changed and parses. A missing or invalid file keeps the previous list.
#[derive(Debug)]
pub struct NodeListFileWatcher {
    path: PathBuf,
    last: Option<Vec<u8>>,
    last_error: Option<String>,
}

impl NodeListFileWatcher {
    /// Watches `path`; nothing is read until the first poll.
    pub fn new(path: PathBuf) -> Self {
        Self { path, last: None, last_error: None }
    }

    /// The new list if the file changed since the last successful poll (the first poll yields
    /// the file's list). Read and parse failures are logged once per distinct error and yield
    /// `None`.
    pub fn poll(&mut self) -> Option<NodeList> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(source) => {
                self.log_error(NodeListError::Read { path: self.path.display().to_string(), source });
                return None;
            }
        };
        if self.last.as_deref() == Some(bytes.as_slice()) {
            return None;
        }
        match NodeList::from_json(&bytes) {
            Ok(list) => {
                self.last = Some(bytes);
                self.last_error = None;
                Some(list)
            }
            Err(source) => {
                self.log_error(NodeListError::Parse { path: self.path.display().to_string(), source });
                None
            }
        }
    }

    fn log_error(&mut self, error: NodeListError) {
        let text = error.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!("{text}; keeping the current node list");
            self.last_error = Some(text);
        }
    }
}

/// How often [`spawn_file_watcher`] polls the file.
pub const FILE_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls `watcher` every `interval` and stores each new list into `ctx.nodes`. The task runs
/// until aborted.
pub fn spawn_file_watcher(
    ctx: Arc<NodeContext>,
    mut watcher: NodeListFileWatcher,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let (w, list) = match tokio::task::spawn_blocking(move || {
                let list = watcher.poll();
                (watcher, list)
            })
            .await
            {
                Ok(done) => done,
                Err(_) => return,
            };
            watcher = w;
            if let Some(list) = list {
                install(&ctx, list);
            }
        }
    })
}

/// Replaces the context's node list, logging the change, and wakes the sync task
/// (`crate::sync`), which moves data between swarms as the new list requires. Every source of
/// node lists (the file watcher, later the registry) installs them through here.
pub fn install(ctx: &NodeContext, list: NodeList) {
    let own = list.by_ed25519(ctx.identity.ed25519_hex()).and_then(NodeRecord::swarm);
    tracing::info!(
        nodes = list.nodes().len(),
        swarms = list.swarm_ids.len(),
        own_swarm = own.map(|s| format!("{:x}", s.0)),
        "node list updated"
    );
    ctx.nodes.store(Arc::new(list));
    ctx.list_changed.notify_one();
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

    #[test]
    fn watcher_reloads_on_change_and_keeps_list_on_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodes.json");
        let mut watcher = NodeListFileWatcher::new(path.clone());
        assert!(watcher.poll().is_none(), "missing file");
        let write = |nodes: Vec<NodeRecord>| {
            std::fs::write(&path, serde_json::to_vec(&NodeListFile { service_node_states: nodes }).unwrap())
                .unwrap();
        };
        write(vec![node(1, 10)]);
        assert_eq!(watcher.poll().unwrap().nodes().len(), 1);
        assert!(watcher.poll().is_none(), "unchanged");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(watcher.poll().is_none(), "garbage keeps the old list");
        write(vec![node(1, 10), node(2, 10)]);
        assert_eq!(watcher.poll().unwrap().nodes().len(), 2);
        assert_eq!(load_file(&path).unwrap().nodes().len(), 2);
        assert!(matches!(load_file(&dir.path().join("nope")), Err(NodeListError::Read { .. })));
    }
}
