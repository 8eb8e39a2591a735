//! The HTTP(S) server (network §2.1): routes, the checks made before a request is processed
//! (IPv4 only, rate limit, long-poll, body size, readiness), TLS, panic isolation and graceful
//! shutdown.
//!
//! | Endpoint | Handling |
//! |---|---|
//! | `POST /storage_rpc/v1` | IPv4 → rate limit → long-poll (410) → size (413) → ready (503) → RPC |
//! | `POST /onion_req/v2` | IPv4 → size (413) → ready (503) → onion; not rate-limited |
//! | `POST /ping_test/v1` | 200, empty, `X-Oxen-Snode-Pubkey: <b64 Ed25519 key>` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /get_stats/v1` | `{"version":"2.8.0"}` (deprecated upstream) |
//! | peer routes | the node-to-node channel (`peer.rs`) |
//! | anything else | 404 |
//!
//! Every response carries a `Server` header. A panicking handler yields 500 for that request
//! only.

pub mod ratelimit;
pub mod tls;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::{NodeContext, rpc};
pub use ratelimit::RateLimiter;

/// The `Server` header on every response.
pub const SERVER_HEADER: &str = concat!("session-node/", env!("CARGO_PKG_VERSION"));

/// Header that used to request long polling; requests carrying it get 410.
pub const LONG_POLL_HEADER: &str = "x-loki-long-poll";

/// Header of the `/ping_test/v1` reply carrying our Ed25519 key, base64.
pub const PUBKEY_HEADER: &str = "x-oxen-snode-pubkey";

/// Time a client has to send a whole request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a client has to send request headers (also the idle keep-alive limit).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A rejected body declared up to this many times the limit is read and discarded (so the client
/// sees the 413); a larger one closes the connection.
pub const DRAIN_FACTOR: u64 = 2;

/// Time a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time open connections get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The remote address of the connection a request came on (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// The client's IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match self.0.ip().to_canonical() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        }
    }
}

/// State the HTTP layer keeps beside the node context.
#[derive(Debug)]
struct HttpState {
    limiter: RateLimiter,
    max_body_bytes: usize,
    pubkey_b64: HeaderValue,
}

/// The application: every route, with the node context applied. Requests must carry a
/// [`ClientAddr`] extension (the accept loop adds it); without one they count as non-IPv4.
pub fn router(ctx: Arc<NodeContext>) -> Router {
    let limits = &ctx.config.limits;
    let ed25519 = ctx.identity.key().ed25519_public();
    let http = Arc::new(HttpState {
        limiter: RateLimiter::new(limits.rate_per_second, limits.rate_burst),
        max_body_bytes: limits.max_body_bytes,
        pubkey_b64: HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(ed25519))
            .expect("base64 is a valid header value"),
    });
    Router::new()
        .route("/storage_rpc/v1", post(storage_rpc))
        .route("/onion_req/v2", post(onion_req))
        .route("/ping_test/v1", post(ping_test))
        .route("/metrics", get(metrics))
        .route("/get_stats/v1", get(get_stats))
        .merge(crate::peer::router())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::Extension(http))
        .with_state(ctx)
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` turns true, then
/// stops accepting and gives open connections [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    spawn_connection(stream, peer, acceptor.clone(), app.clone(), http.clone(), graceful.watcher());
                }
                Err(e) => {
                    // Usually EMFILE/ENFILE: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
}

fn spawn_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    http: hyper::server::conn::http1::Builder,
    watcher: Watcher,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        let app = app.clone();
        async move {
            let handled = CatchPanic(Box::pin(async move { app.oneshot(req.map(Body::new)).await })).await;
            let mut response = match handled {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(panic) => {
                    tracing::error!("request handler panicked: {}", panic_message(panic.as_ref()));
                    text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
                }
            };
            response.headers_mut().insert(header::SERVER, HeaderValue::from_static(SERVER_HEADER));
            Ok::<_, Infallible>(response)
        }
    });
    tokio::spawn(async move {
        match acceptor {
            None => {
                let _ = watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await;
            }
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = watcher.watch(http.serve_connection(TokioIo::new(tls), service)).await;
                    }
                    Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
    });
}

// ---- handlers ----

async fn storage_rpc(
    State(ctx): State<Arc<NodeContext>>,
    axum::Extension(http): axum::Extension<Arc<HttpState>>,
    req: Request,
) -> Response {
    const LABEL: &str = "storage_rpc";
    let Some(ip) = req.extensions().get::<ClientAddr>().and_then(ClientAddr::ipv4) else {
        return rejected(&ctx, LABEL, StatusCode::BAD_REQUEST, "Only IPv4 clients are supported");
    };
    if !http.limiter.allow(IpAddr::V4(ip)) {
        return rejected(&ctx, LABEL, StatusCode::TOO_MANY_REQUESTS, "Too many requests, try again later");
    }
    if req.headers().contains_key(LONG_POLL_HEADER) {
        return rejected(&ctx, LABEL, StatusCode::GONE, "long polling is no longer supported");
    }
    let body = match checked_body(&ctx, &http, req).await {
        Ok(body) => body,
        Err((status, message)) => return rejected(&ctx, LABEL, status, message),
    };
    rpc_response(rpc::handle_request(&ctx, &body, rpc::Origin::Client).await)
}

async fn onion_req(
    State(ctx): State<Arc<NodeContext>>,
    axum::Extension(http): axum::Extension<Arc<HttpState>>,
    req: Request,
) -> Response {
    const LABEL: &str = "onion_req";
    if req.extensions().get::<ClientAddr>().and_then(ClientAddr::ipv4).is_none() {
        return rejected(&ctx, LABEL, StatusCode::BAD_REQUEST, "Only IPv4 clients are supported");
    }
    let body = match checked_body(&ctx, &http, req).await {
        Ok(body) => body,
        Err((status, message)) => return rejected(&ctx, LABEL, status, message),
    };
    let reply = crate::onion::handle(&ctx, &body).await;
    ctx.metrics.record_request(LABEL, reply.status);
    reply.into_response()
}

async fn ping_test(axum::Extension(http): axum::Extension<Arc<HttpState>>) -> Response {
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(PUBKEY_HEADER, http.pubkey_b64.clone());
    response
}

async fn metrics(State(ctx): State<Arc<NodeContext>>) -> Response {
    let stats = match ctx.store.stats().await {
        Ok(stats) => stats,
        Err(e) => {
            tracing::warn!("store stats for metrics: {e}");
            Default::default()
        }
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
        ctx.metrics.render(stats),
    )
        .into_response()
}

async fn get_stats() -> Response {
    let [major, minor, patch] = rpc::VERSION;
    json(StatusCode::OK, serde_json::json!({ "version": format!("{major}.{minor}.{patch}") }).to_string())
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Not found")
}

// ---- helpers ----

/// The HTTP form of an RPC reply: its status, and a JSON or plain-text body.
pub fn rpc_response(reply: rpc::RpcReply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.body {
        rpc::ReplyBody::Json(value) => json(status, value.to_string()),
        rpc::ReplyBody::Text(message) => text(status, message),
    }
}

/// A `text/plain` response.
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], message.into())
        .into_response()
}

/// An `application/json` response from serialized JSON.
pub(crate) fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.into())
        .into_response()
}

/// A refusal sent before (or instead of) reading the whole request body. It carries
/// `Connection: close`: the unread rest of the body would otherwise be taken for the next request
/// on a kept-alive connection, and hyper closes such a connection after the reply anyway, which a
/// pooling client must know so as not to reuse it.
fn rejected(
    ctx: &NodeContext,
    label: &'static str,
    status: StatusCode,
    message: impl Into<String>,
) -> Response {
    ctx.metrics.record_request(label, status.as_u16());
    let mut response = text(status, message);
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why this node cannot serve requests yet, if it cannot (network §2.1: not in a swarm).
pub fn not_ready_reason(ctx: &NodeContext) -> Option<&'static str> {
    let nodes = ctx.nodes.load();
    match nodes.by_ed25519(ctx.identity.ed25519_hex()) {
        None => Some("not in the node list"),
        Some(record) if record.swarm().is_none() => Some("not in a swarm"),
        Some(_) => None,
    }
}

/// The size and readiness checks shared by the RPC and onion endpoints, then the body, read
/// with the size limit enforced while streaming.
async fn checked_body(
    ctx: &NodeContext,
    http: &HttpState,
    req: Request,
) -> Result<Bytes, (StatusCode, String)> {
    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large".to_owned());
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > http.max_body_bytes as u64) {
        // Read and discard a moderately oversized body so that the client, still sending it,
        // gets to read the 413 instead of a broken pipe; larger ones just close the connection.
        if len <= (http.max_body_bytes as u64).saturating_mul(DRAIN_FACTOR) {
            drain_in_background(req.into_body());
        }
        return Err(too_large());
    }
    if let Some(reason) = not_ready_reason(ctx) {
        return Err((StatusCode::SERVICE_UNAVAILABLE, format!("Service node is not ready: {reason}")));
    }
    let limited = Limited::new(req.into_body(), http.max_body_bytes);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err((StatusCode::BAD_REQUEST, "Invalid request body".to_owned())),
        Err(_) => Err((StatusCode::REQUEST_TIMEOUT, "Request body timed out".to_owned())),
    }
}

/// Discards the rest of a rejected request body, for at most [`BODY_TIMEOUT`].
fn drain_in_background(body: Body) {
    tokio::spawn(async move {
        let mut body = body;
        let _ =
            tokio::time::timeout(BODY_TIMEOUT, async { while let Some(Ok(_)) = body.frame().await {} }).await;
    });
}

/// Polls a future, turning a panic into an `Err` carrying the payload.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        tls::install_crypto_provider();
        reqwest::Client::new()
    }

    async fn boom() -> &'static str {
        panic!("handler bug")
    }

    #[tokio::test]
    async fn panicking_handler_gives_500_and_the_server_keeps_serving() {
        let app = Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "fine" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, None, app, stopped));
        let client = client();
        let boom = client.get(format!("http://{addr}/boom")).send().await.unwrap();
        assert_eq!(boom.status(), 500);
        assert_eq!(boom.headers()[header::SERVER], SERVER_HEADER);
        let ok = client.get(format!("http://{addr}/ok")).send().await.unwrap();
        assert_eq!(ok.text().await.unwrap(), "fine");
        stop.send(true).unwrap();
        server.await.unwrap();
        assert!(TcpListener::bind(addr).await.is_ok(), "listener released after shutdown");
    }

    #[tokio::test]
    async fn ipv6_clients_get_400_and_mapped_ipv4_counts_as_ipv4() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::NodeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let node = crate::node::start(config).await.unwrap();
        let app = router(node.ctx.clone());
        let call = |peer: &str, path: &'static str| {
            let mut req = Request::post(path).body(Body::from("{}")).unwrap();
            req.extensions_mut().insert(ClientAddr(peer.parse().unwrap()));
            app.clone().oneshot(req)
        };
        for path in ["/storage_rpc/v1", "/onion_req/v2"] {
            assert_eq!(call("[::1]:5000", path).await.unwrap().status(), 400, "{path}");
            // Not in the node list yet: past the IPv4 check, stopped by readiness.
            assert_eq!(call("[::ffff:127.0.0.1]:5000", path).await.unwrap().status(), 503, "{path}");
            assert_eq!(call("127.0.0.1:5000", path).await.unwrap().status(), 503, "{path}");
        }
        node.shutdown().await;
    }

    #[test]
    fn rpc_replies_keep_status_and_content_type() {
        let json = rpc_response(rpc::RpcReply::json(421, serde_json::json!({"snodes": []})));
        assert_eq!(json.status(), 421);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let text = rpc_response(rpc::RpcReply::text(401, "bad signature"));
        assert_eq!(text.status(), 401);
        assert!(text.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(rpc_response(rpc::RpcReply::text(1, "x")).status(), 500, "invalid status code");
    }
}
