//! The one place where the channel and the onion handler call into the client RPC (`rpc`).

use serde_json::Value;

use crate::NodeContext;

/// An RPC reply: status and body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcOutput {
    /// HTTP-style status.
    pub status: u16,
    /// JSON body, or plain text (error strings).
    pub body: RpcBody,
}

/// The body of an RPC reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RpcBody {
    /// `application/json`.
    Json(Value),
    /// `text/plain`.
    Text(String),
}

/// Runs a client request body (`{"method":…,"params":…}`) as `/storage_rpc/v1` would.
pub(crate) async fn client_request(ctx: &NodeContext, body: &[u8]) -> RpcOutput {
    let _ = (ctx, body);
    unavailable()
}

/// Runs a request forwarded by a swarm member (network §3.8).
pub(crate) async fn forwarded(ctx: &NodeContext, method: &str, params: &Value) -> RpcOutput {
    let _ = (ctx, method, params);
    unavailable()
}

fn unavailable() -> RpcOutput {
    RpcOutput { status: 503, body: RpcBody::Text("RPC not available".into()) }
}
