//! TEMPORARY adapters to the onion and peer modules (helper N4), which are being written on
//! another branch. Replaced by calls to `onion::handle` / `peer::router` when those land; until
//! then the onion endpoint answers 503.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;

use super::text;
use crate::NodeContext;

/// Runs an onion request body (`POST /onion_req/v2`).
pub(super) async fn onion_req(ctx: &Arc<NodeContext>, body: Bytes) -> Response {
    let _ = (ctx, body);
    text(axum::http::StatusCode::SERVICE_UNAVAILABLE, "Service node is not ready: onion not built yet")
}

/// Routes of the node-to-node channel.
pub(super) fn peer_routes() -> axum::Router<Arc<NodeContext>> {
    axum::Router::new()
}
