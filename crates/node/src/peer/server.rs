//! Receiving side of the node-to-node channel: the `/node/v1/` routes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::auth::{self, AuthError};
use super::wire::{MessagesReply, MessagesRequest};
use super::{MAX_REQUEST_BYTES, MESSAGES_PATH, ONION_PATH, RPC_PATH};
use crate::NodeContext;
use crate::rpc::{self, Origin, ReplyBody, RpcReply};
use crate::store::StoreError;

/// The channel's receiving endpoints, for the server to merge into its router:
/// `POST /node/v1/rpc`, `POST /node/v1/onion`, `POST /node/v1/messages`. Every request must be
/// signed by a node in the current node list (`docs/node-channel.md`).
pub fn router() -> Router<Arc<NodeContext>> {
    Router::new()
        .route(RPC_PATH, post(rpc))
        .route(ONION_PATH, post(onion))
        .route(MESSAGES_PATH, post(messages))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
}

/// `POST /node/v1/rpc`: body `{"method": <string>, "params": <object>}`; reply: the RPC's
/// status and body, as `/storage_rpc/v1` would give them.
async fn rpc(State(ctx): State<Arc<NodeContext>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authenticate(&ctx, RPC_PATH, &headers, &body) {
        return refused(e);
    }
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid request: body is not a JSON object");
    };
    let (Some(Value::String(method)), Some(params @ Value::Object(_))) =
        (request.remove("method"), request.remove("params"))
    else {
        return text(StatusCode::BAD_REQUEST, "invalid request: expected a method string and params object");
    };
    rpc_response(rpc::handle_method(&ctx, &method, &params, Origin::Forwarded).await)
}

/// `POST /node/v1/onion`: body `[N][ciphertext]{"ephemeral_key","enc_type","hop_no"}`; reply: the
/// onion result, status and body passed back unchanged by every hop.
async fn onion(State(ctx): State<Arc<NodeContext>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authenticate(&ctx, ONION_PATH, &headers, &body) {
        return refused(e);
    }
    crate::onion::handle_relayed(&ctx, &body).await.into_response()
}

/// `POST /node/v1/messages`: body `{"messages": [...]}`; reply `{"received","inserted","rejected"}`.
async fn messages(State(ctx): State<Arc<NodeContext>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authenticate(&ctx, MESSAGES_PATH, &headers, &body) {
        return refused(e);
    }
    let Ok(request) = serde_json::from_slice::<MessagesRequest>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid request: malformed message transfer");
    };
    let received = request.messages.len();
    let now = ctx.now_ms();
    let valid: Vec<_> =
        request.messages.iter().filter_map(|m| m.decode().ok()).filter(|(_, m)| m.expiry_ms > now).collect();
    let rejected = received - valid.len();
    match ctx.store.bulk_insert(valid).await {
        Ok(inserted) => {
            let reply = MessagesReply { received, inserted, rejected };
            (StatusCode::OK, axum::Json(reply)).into_response()
        }
        Err(StoreError::Full) => text(StatusCode::INSUFFICIENT_STORAGE, "database is full"),
        Err(e) => {
            tracing::warn!(error = %e, "bulk insert from peer failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "database error")
        }
    }
}

fn authenticate(ctx: &NodeContext, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let nodes = ctx.node_list();
    let received = auth::Received {
        method: "POST",
        path,
        pubkey: header(auth::PUBKEY_HEADER),
        timestamp: header(auth::TIMESTAMP_HEADER),
        signature: header(auth::SIGNATURE_HEADER),
        body,
    };
    let result = auth::verify_request(&nodes, ctx.identity.ed25519_hex(), ctx.now_ms(), &received);
    if let Err(e) = result {
        tracing::debug!(error = %e, path, "peer request refused");
    }
    result.map(|_| ())
}

fn refused(e: AuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    text(status, &e.to_string())
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], body.to_owned())
        .into_response()
}

fn rpc_response(output: RpcReply) -> Response {
    let status = StatusCode::from_u16(output.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match output.body {
        ReplyBody::Json(value) => (status, axum::Json(value)).into_response(),
        ReplyBody::Text(body) => text(status, &body),
    }
}
