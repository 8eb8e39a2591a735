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
use super::wire::{AccountsRequest, DigestRequest, FetchRequest, MessagesReply, MessagesRequest};
use super::{ACCOUNTS_PATH, DIGEST_PATH, FETCH_PATH, MAX_REQUEST_BYTES, MESSAGES_PATH, ONION_PATH, RPC_PATH};
use crate::NodeContext;
use crate::metrics::SyncCounters;
use crate::rpc::{self, Origin, ReplyBody, RpcReply};
use crate::store::StoreError;
use crate::sync::catchup::{self, ServeError};

/// The channel's receiving endpoints, for the server to merge into its router:
/// `POST /node/v1/rpc`, `/onion`, `/messages`, `/digest`, `/accounts`, `/fetch`. Every request must be
/// signed by a node in the current node list (`docs/node-channel.md`).
pub fn router() -> Router<Arc<NodeContext>> {
    Router::new()
        .route(RPC_PATH, post(rpc))
        .route(ONION_PATH, post(onion))
        .route(MESSAGES_PATH, post(messages))
        .route(DIGEST_PATH, post(digest))
        .route(ACCOUNTS_PATH, post(accounts))
        .route(FETCH_PATH, post(fetch))
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

/// `POST /node/v1/messages`: body `{"messages": [...]}`; reply
/// `{"received","inserted","rejected","owned"}`.
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
    let nodes = ctx.node_list();
    let own_swarm = nodes.by_ed25519(ctx.identity.ed25519_hex()).and_then(crate::nodelist::NodeRecord::swarm);
    let owned = valid
        .iter()
        .filter(|(account, _)| own_swarm.is_some() && nodes.swarm_of(account) == own_swarm)
        .count();
    match ctx.store.bulk_insert(valid).await {
        Ok(inserted) => {
            SyncCounters::add(&ctx.metrics.sync().received_pushed, inserted);
            let reply = MessagesReply { received, inserted, rejected, owned };
            (StatusCode::OK, axum::Json(reply)).into_response()
        }
        Err(StoreError::Full) => text(StatusCode::INSUFFICIENT_STORAGE, "database is full"),
        Err(e) => {
            tracing::warn!(error = %e, "bulk insert from peer failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "database error")
        }
    }
}

/// `POST /node/v1/digest`: body `{"swarm", "buckets": [{"bucket","count","digest"}]}`; reply
/// `{"differ": [bucket, ...]}`.
async fn digest(State(ctx): State<Arc<NodeContext>>, headers: HeaderMap, body: Bytes) -> Response {
    let sender = match authenticate_sender(&ctx, DIGEST_PATH, &headers, &body) {
        Ok(sender) => sender,
        Err(e) => return refused(e),
    };
    let Ok(request) = serde_json::from_slice::<DigestRequest>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid request: malformed digest request");
    };
    catch_up_response(catchup::answer_digest(&ctx, &sender, request).await)
}

/// `POST /node/v1/accounts`: body `{"swarm", "buckets": [bucket, ...]}`; reply
/// `{"accounts": [{"account","count","digest"}]}`.
async fn accounts(State(ctx): State<Arc<NodeContext>>, headers: HeaderMap, body: Bytes) -> Response {
    let sender = match authenticate_sender(&ctx, ACCOUNTS_PATH, &headers, &body) {
        Ok(sender) => sender,
        Err(e) => return refused(e),
    };
    let Ok(request) = serde_json::from_slice::<AccountsRequest>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid request: malformed accounts request");
    };
    catch_up_response(catchup::answer_accounts(&ctx, &sender, request).await)
}

/// `POST /node/v1/fetch`: body `{"swarm", "accounts": [{"account","have"}]}`; reply
/// `{"messages": [...], "more": bool}`.
async fn fetch(State(ctx): State<Arc<NodeContext>>, headers: HeaderMap, body: Bytes) -> Response {
    let sender = match authenticate_sender(&ctx, FETCH_PATH, &headers, &body) {
        Ok(sender) => sender,
        Err(e) => return refused(e),
    };
    let Ok(request) = serde_json::from_slice::<FetchRequest>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid request: malformed fetch request");
    };
    catch_up_response(catchup::answer_fetch(&ctx, &sender, request).await)
}

fn catch_up_response<T: serde::Serialize>(result: Result<T, ServeError>) -> Response {
    match result {
        Ok(reply) => (StatusCode::OK, axum::Json(reply)).into_response(),
        Err(e) => {
            if let ServeError::Store(inner) = &e {
                tracing::warn!(error = %inner, "catch-up request failed");
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(status, &e.to_string())
        }
    }
}

fn authenticate(ctx: &NodeContext, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
    authenticate_sender(ctx, path, headers, body).map(|_| ())
}

/// Checks the request's signature; returns the sender's Ed25519 key (hex).
fn authenticate_sender(
    ctx: &NodeContext,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AuthError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let nodes = ctx.node_list();
    let received = auth::Received {
        method: "POST",
        path,
        pubkey: header(auth::PUBKEY_HEADER),
        timestamp: header(auth::TIMESTAMP_HEADER),
        signature: header(auth::SIGNATURE_HEADER),
        mac: header(auth::MAC_HEADER),
        body,
    };
    let result = auth::verify_request(
        &nodes,
        ctx.identity.channel_keys(),
        ctx.identity.ed25519_hex(),
        ctx.now_ms(),
        &received,
    );
    if let Err(e) = &result {
        tracing::debug!(error = %e, path, "peer request refused");
    }
    result.map(str::to_owned)
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
