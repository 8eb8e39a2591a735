//! TEMPORARY adapters to the RPC (helper N2) and onion (helper N4) modules, which are being
//! written on other branches. Replaced by calls to `rpc::handle_request` / `onion::handle` when
//! those land; until then both endpoints answer 503.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;

use super::text;
use crate::NodeContext;

/// Runs a client RPC body (`POST /storage_rpc/v1`).
pub(super) async fn storage_rpc(ctx: &Arc<NodeContext>, body: Bytes) -> Response {
    let _ = (ctx, body);
    text(axum::http::StatusCode::SERVICE_UNAVAILABLE, "Service node is not ready: RPC not built yet")
}

/// Runs an onion request body (`POST /onion_req/v2`).
pub(super) async fn onion_req(ctx: &Arc<NodeContext>, body: Bytes) -> Response {
    let _ = (ctx, body);
    text(axum::http::StatusCode::SERVICE_UNAVAILABLE, "Service node is not ready: onion not built yet")
}

/// Routes of the node-to-node channel.
pub(super) fn peer_routes() -> axum::Router<Arc<NodeContext>> {
    axum::Router::new()
}
