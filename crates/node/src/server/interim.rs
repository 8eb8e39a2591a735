//! Adapters to the onion and peer modules (helper N4): `onion::handle` for `POST /onion_req/v2`
//! and `peer::router` for the node-to-node channel.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};

use crate::NodeContext;

/// Runs an onion request body (`POST /onion_req/v2`).
pub(super) async fn onion_req(ctx: &Arc<NodeContext>, body: Bytes) -> Response {
    let reply = crate::onion::handle(ctx, &body).await;
    ctx.metrics.record_request("onion_req", reply.status);
    reply.into_response()
}

/// Routes of the node-to-node channel.
pub(super) fn peer_routes() -> axum::Router<Arc<NodeContext>> {
    crate::peer::router()
}
