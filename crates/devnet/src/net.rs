//! HTTP to the registry (`/json_rpc`, docs/registry.md §5) and to the nodes
//! (`/storage_rpc/v1`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::DevnetError;
use crate::state::{NO_SWARM, NodeEntry};

/// A node as a `get_service_nodes` reply lists it (the fields the devnet uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedNode {
    /// Ed25519 key, hex.
    pub pubkey_ed25519: String,
    /// X25519 key, hex.
    #[serde(default)]
    pub pubkey_x25519: String,
    /// Announced IPv4 address.
    #[serde(default)]
    pub public_ip: String,
    /// Announced storage port.
    #[serde(default)]
    pub storage_port: u16,
    /// Swarm ([`NO_SWARM`] when none).
    #[serde(default = "no_swarm")]
    pub swarm_id: u64,
    /// Active (in a swarm) rather than decommissioned.
    #[serde(default)]
    pub active: bool,
}

fn no_swarm() -> u64 {
    NO_SWARM
}

/// A `get_service_nodes` result: the list and the epoch it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeListing {
    /// The nodes.
    pub nodes: Vec<ListedNode>,
    /// Epoch height.
    pub height: u64,
    /// Epoch hash (`block_hash`).
    pub block_hash: String,
}

impl NodeListing {
    /// The entry of the node with Ed25519 key `hex`.
    pub fn find(&self, hex: &str) -> Option<&ListedNode> {
        if hex.is_empty() {
            return None;
        }
        self.nodes.iter().find(|n| n.pubkey_ed25519 == hex)
    }
}

/// An HTTP client for loopback devnet processes: no proxy, short timeouts, and self-signed node
/// certificates accepted (clients know nodes by their keys, network §2).
pub fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("a reqwest client with the ring provider builds")
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value, DevnetError> {
    let http = |e: reqwest::Error| DevnetError::Http { url: url.to_string(), message: e.to_string() };
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).expect("JSON values serialize"))
        .send()
        .await
        .map_err(http)?;
    let status = response.status();
    let text = response.text().await.map_err(http)?;
    if !status.is_success() {
        return Err(DevnetError::Http { url: url.to_string(), message: format!("HTTP {status}: {text}") });
    }
    serde_json::from_str(&text)
        .map_err(|e| DevnetError::Http { url: url.to_string(), message: format!("reply is not JSON: {e}") })
}

fn parse_listing(url: &str, result: &Value) -> Result<NodeListing, DevnetError> {
    let bad = |what: &str| DevnetError::Http {
        url: url.to_string(),
        message: format!("get_service_nodes: {what}"),
    };
    let nodes = result.get("service_node_states").cloned().ok_or_else(|| bad("no service_node_states"))?;
    let nodes: Vec<ListedNode> = serde_json::from_value(nodes).map_err(|e| bad(&e.to_string()))?;
    Ok(NodeListing {
        nodes,
        height: result.get("height").and_then(Value::as_u64).unwrap_or(0),
        block_hash: result.get("block_hash").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

/// The registry's `get_service_nodes` (every node, decommissioned ones included).
pub async fn registry_nodes(
    client: &reqwest::Client,
    registry_url: &str,
) -> Result<NodeListing, DevnetError> {
    let url = format!("{registry_url}/json_rpc");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "get_service_nodes", "params": {}});
    let reply = post_json(client, &url, &body).await?;
    let result = reply.get("result").ok_or_else(|| DevnetError::Http {
        url: url.clone(),
        message: format!("JSON-RPC error: {}", reply.get("error").unwrap_or(&Value::Null)),
    })?;
    parse_listing(&url, result)
}

/// One storage RPC call to a node; the reply body.
pub async fn node_rpc(
    client: &reqwest::Client,
    node: &NodeEntry,
    method: &str,
    params: Value,
) -> Result<Value, DevnetError> {
    post_json(client, &node.rpc_url(), &json!({"method": method, "params": params})).await
}

/// The node list a node holds (its `get_service_nodes`).
pub async fn node_view(client: &reqwest::Client, node: &NodeEntry) -> Result<NodeListing, DevnetError> {
    let params = json!({"fields": ["pubkey_ed25519", "swarm_id", "active", "public_ip", "storage_port"]});
    let reply = node_rpc(client, node, "get_service_nodes", params).await?;
    let result = reply.get("result").cloned().unwrap_or(Value::Null);
    parse_listing(&node.rpc_url(), &result)
}

/// The node's `info` (version and clock): `Ok` once the node is in a swarm (it answers 503
/// before).
pub async fn node_info(client: &reqwest::Client, node: &NodeEntry) -> Result<Value, DevnetError> {
    node_rpc(client, node, "info", json!({})).await
}

/// The HTTP status of the node's `info`, `None` when it does not answer at all.
pub async fn node_info_status(client: &reqwest::Client, node: &NodeEntry) -> Option<u16> {
    let body = serde_json::to_vec(&json!({"method": "info", "params": {}})).expect("JSON values serialize");
    let response = client.post(node.rpc_url()).body(body).send().await.ok()?;
    Some(response.status().as_u16())
}
