//! Everything a request handler needs, shared by all tasks.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::config::NodeConfig;
use crate::identity::NodeIdentity;
use crate::metrics::Metrics;
use crate::nodelist::{NodeList, NodeRecord};
use crate::peer::PeerClient;
use crate::store::Store;

/// Shared node state. Handlers take `&NodeContext` (held in an `Arc`).
#[derive(Debug)]
pub struct NodeContext {
    /// Our key.
    pub identity: NodeIdentity,
    /// Configuration as loaded.
    pub config: NodeConfig,
    /// The current node list; replaced atomically when the file (later: the registry) changes.
    pub nodes: ArcSwap<NodeList>,
    /// The message store.
    pub store: Store,
    /// The node-to-node channel.
    pub peers: PeerClient,
    /// Counters.
    pub metrics: Metrics,
    /// Signalled by `nodelist::install` after each new node list; the sync task waits on it.
    pub list_changed: tokio::sync::Notify,
}

impl NodeContext {
    /// The current time in ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// A snapshot of the node list.
    pub fn node_list(&self) -> Arc<NodeList> {
        self.nodes.load_full()
    }

    /// Our own record in the node list, if we are listed.
    pub fn own_record(&self) -> Option<NodeRecord> {
        self.node_list().by_ed25519(self.identity.ed25519_hex()).cloned()
    }
}
