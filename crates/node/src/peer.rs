//! The node-to-node channel (our design; byte-level spec in `docs/node-channel.md`).
//!
//! INTERFACE SKETCH — being written (helper N3b). Every POST between nodes is signed by the
//! sending node's Ed25519 key over method, body hash and timestamp, and accepted only from nodes
//! in the current node list.

use serde_json::Value;

use crate::nodelist::NodeRecord;

/// What a peer said to a forwarded request, or why it said nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerReply {
    /// The peer answered with this status and JSON body (or a JSON string for text bodies).
    Answered {
        /// HTTP-style status code.
        status: u16,
        /// The body.
        body: Value,
    },
    /// No answer within the timeout.
    Timeout,
    /// The answer could not be understood.
    BadResponse,
}

/// Client side of the channel.
#[derive(Debug, Clone, Default)]
pub struct PeerClient {}

impl PeerClient {
    /// Forwards a parsed client RPC (`method`, `params`) to `peer` for it to run locally as a
    /// swarm member (network §3.8); 5 s timeout.
    pub async fn forward_rpc(&self, peer: &NodeRecord, method: &str, params: &Value) -> PeerReply {
        let _ = (peer, method, params);
        unimplemented!()
    }
}
