//! Onion requests (network §7.4): `POST /onion_req/v2` from clients and `/node/v1/onion` from
//! the previous hop.
//!
//! The node peels one layer with its X25519 key and then, on the layer's routing JSON:
//! * `headers` present: it is the destination, runs the client RPC and returns the encrypted
//!   `{"status", "body"}` with HTTP 200;
//! * `destination`: relays the inner layer to that node over the node-to-node channel with
//!   `hop_no + 1`, passing the reply back unchanged;
//! * `host`: POSTs the whole decrypted layer to an allowlisted server's `/oxen/v4/lsrpc` or
//!   `/loki/v3/lsrpc`-style target and returns its reply verbatim.
//!
//! Only the destination (or the server) encrypts; every failure before that is a plain-text
//! status. Nothing here panics on input.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use session_protocol::onion::hop::MAX_NONCE_LEN;
use session_protocol::onion::{
    EntryRequest, FinalRequest, MAX_ONION_HOPS, PeelError, PeeledLayer, ProxyRequest, RelayRequest, Route,
    RouteError, parse_entry_request, peel_layer_with,
};

use crate::NodeContext;
use crate::config::NodeConfig;
use crate::peer::PeerError;
use crate::rpc::{self, Origin, ReplyBody};

/// What an onion endpoint answers: status, body and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionReply {
    /// HTTP status.
    pub status: u16,
    /// The body (encrypted reply, relayed reply, or a plain-text error).
    pub body: Vec<u8>,
    /// `Content-Type`.
    pub content_type: Cow<'static, str>,
}

const TEXT: &str = "text/plain; charset=utf-8";
const OCTETS: &str = "application/octet-stream";

impl OnionReply {
    /// A plain-text reply.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self { status, body: text.into().into_bytes(), content_type: Cow::Borrowed(TEXT) }
    }
}

impl IntoResponse for OnionReply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type =
            HeaderValue::from_str(&self.content_type).unwrap_or_else(|_| HeaderValue::from_static(OCTETS));
        (status, [(header::CONTENT_TYPE, content_type)], self.body).into_response()
    }
}

/// `POST /onion_req/v2` (network §7.4): the body is `[N][ciphertext]{"ephemeral_key",
/// "enc_type", "hop_no"}` from a client.
pub async fn handle(ctx: &NodeContext, body: &[u8]) -> OnionReply {
    match parse_entry_request(body) {
        Ok(entry) => process(ctx, &entry).await,
        Err(e) => entry_error(e),
    }
}

/// `POST /node/v1/onion` (after the channel checked the sender): the same body from the previous
/// hop. `hop_no` counts from 1 here; past [`MAX_ONION_HOPS`] the request is refused.
pub async fn handle_relayed(ctx: &NodeContext, body: &[u8]) -> OnionReply {
    match parse_entry_request(body) {
        Ok(mut entry) => {
            entry.hop_no = entry.hop_no.max(1);
            if entry.hop_no > MAX_ONION_HOPS {
                return OnionReply::text(400, "onion request max path length exceeded");
            }
            process(ctx, &entry).await
        }
        Err(e) => entry_error(e),
    }
}

// ---- internals ----

async fn process(ctx: &NodeContext, entry: &EntryRequest<'_>) -> OnionReply {
    let layer = match peel_layer_with(
        ctx.identity.onion_key(),
        entry.ciphertext,
        &entry.ephemeral_key,
        entry.enc_type,
    ) {
        Ok(layer) => layer,
        Err(_) => return OnionReply::text(400, "Invalid ciphertext"),
    };
    match layer.route() {
        Ok(Route::Final(request)) => destination(ctx, &layer, request).await,
        Ok(Route::Relay(request)) => relay(ctx, request, entry.hop_no).await,
        Ok(Route::Proxy(request)) => {
            let Some(url) = proxy_url(&ctx.config, &request) else {
                return sealed_status(&layer, 403, "Invalid url: proxy host not allowed");
            };
            proxy(ctx, layer, url).await
        }
        Err(RouteError::InvalidUrl) => sealed_status(&layer, 400, "Invalid url"),
        Err(_) => sealed_status(&layer, 400, "Invalid json"),
    }
}

/// A malformed entry body: "Invalid ciphertext" for decryption failures, a parse error otherwise.
fn entry_error(e: PeelError) -> OnionReply {
    match e {
        PeelError::DecryptionFailed => OnionReply::text(400, "Invalid ciphertext"),
        e => OnionReply::text(400, format!("Error parsing onion request: {e}")),
    }
}

/// Final destination: run the RPC and return the encrypted `{"status","body"}` (§7.4, §7.6).
async fn destination(ctx: &NodeContext, layer: &PeeledLayer, request: FinalRequest<'_>) -> OnionReply {
    ctx.metrics.onion_final();
    let output = rpc::handle_request(ctx, request.body, Origin::Client).await;
    let body = match output.body {
        ReplyBody::Json(value) if request.json => value,
        ReplyBody::Json(value) => Value::String(value.to_string()),
        ReplyBody::Text(text) => Value::String(text),
    };
    seal(layer, output.status, &body, request.base64)
}

/// Relay to the next node over the channel (§7.4).
async fn relay(ctx: &NodeContext, request: RelayRequest<'_>, hop_no: u64) -> OnionReply {
    let next = hex::encode(request.next_node);
    let nodes = ctx.node_list();
    let Some(peer) = nodes.by_ed25519(&next) else {
        return OnionReply::text(502, format!("Next node not found: {next}"));
    };
    ctx.metrics.onion_relayed();
    let result = ctx
        .peers
        .relay_onion(
            peer,
            request.ciphertext,
            &request.ephemeral_key,
            request.enc_type,
            hop_no.saturating_add(1),
        )
        .await;
    match result {
        Ok((status, body)) => {
            let content_type = if status == 200 { OCTETS } else { TEXT };
            OnionReply { status, body, content_type: Cow::Borrowed(content_type) }
        }
        Err(PeerError::Timeout) => OnionReply::text(504, "Request time out"),
        Err(e) => {
            tracing::debug!(error = %e, "onion relay failed");
            OnionReply::text(502, format!("Next node unreachable: {next}"))
        }
    }
}

/// Proxy to a server (§7.4): POST the whole decrypted layer, return the reply verbatim.
async fn proxy(ctx: &NodeContext, layer: PeeledLayer, url: reqwest::Url) -> OnionReply {
    ctx.metrics.onion_final();
    match ctx.peers.proxy_post(url, layer.into_plaintext()).await {
        Ok(reply) => OnionReply {
            status: reply.status,
            body: reply.body,
            content_type: reply.content_type.map_or(Cow::Borrowed(OCTETS), Cow::Owned),
        },
        Err(PeerError::Timeout) => OnionReply::text(504, "Request time out"),
        Err(e) => {
            tracing::debug!(error = %e, "onion proxy request failed");
            OnionReply::text(502, "Proxy request failed")
        }
    }
}

/// The URL to proxy to, if the host is allowlisted (and not loopback unless allowed) and the
/// URL parses back to exactly the requested host, port and path.
fn proxy_url(config: &NodeConfig, request: &ProxyRequest<'_>) -> Option<reqwest::Url> {
    let host = request.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || !allowlisted(&config.proxy_allowlist, host, request.port) {
        return None;
    }
    let url_host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    let text = format!("{}://{url_host}:{}{}", request.protocol.as_str(), request.port, request.target);
    let url = reqwest::Url::parse(&text).ok()?;
    let parsed_host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let loopback = match parsed_host.parse::<IpAddr>() {
        Ok(ip) => is_local(ip),
        Err(_) => {
            let name = parsed_host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if loopback && !config.allow_loopback_proxy {
        return None;
    }
    let exact = url.path() == request.target
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    exact.then_some(url)
}

/// True when `host` (or `host:port`) is on the allowlist (case-insensitive).
fn allowlisted(allowlist: &[String], host: &str, port: u16) -> bool {
    allowlist.iter().any(|entry| {
        let entry = entry.trim();
        let (entry_host, entry_port) = split_host_port(entry);
        entry_host.eq_ignore_ascii_case(host) && entry_port.is_none_or(|p| p == port)
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address has no port.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, port.parse().ok()),
        _ => (entry, None),
    }
}

fn is_local(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() || ip.is_unspecified()
}

/// An encrypted `{"status": status, "body": text}` with HTTP 200, base64 (the request's flags
/// may not be readable).
fn sealed_status(layer: &PeeledLayer, status: u16, text: &str) -> OnionReply {
    seal(layer, status, &Value::String(text.to_owned()), true)
}

fn seal(layer: &PeeledLayer, status: u16, body: &Value, base64: bool) -> OnionReply {
    #[derive(Serialize)]
    struct Reply<'a> {
        status: u16,
        body: &'a Value,
    }
    // Serializing a Value into a Vec cannot fail.
    let plaintext = serde_json::to_vec(&Reply { status, body }).unwrap_or_default();
    let mut nonce = [0u8; MAX_NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let body = layer.seal_reply(&nonce, &plaintext, base64);
    OnionReply { status: 200, body, content_type: Cow::Borrowed(if base64 { TEXT } else { OCTETS }) }
}

#[cfg(test)]
mod tests {
    use session_protocol::onion::Protocol;

    use super::*;

    fn request<'a>(host: &'a str, target: &'a str, port: u16) -> ProxyRequest<'a> {
        ProxyRequest { host, target, method: Some("POST"), protocol: Protocol::Https, port, payload: b"" }
    }

    fn config(allowlist: &[&str], loopback: bool) -> NodeConfig {
        NodeConfig {
            proxy_allowlist: allowlist.iter().map(|s| (*s).to_owned()).collect(),
            allow_loopback_proxy: loopback,
            ..NodeConfig::default()
        }
    }

    fn url(config: &NodeConfig, host: &str, target: &str, port: u16) -> Option<String> {
        proxy_url(config, &request(host, target, port)).map(|u| u.to_string())
    }

    #[test]
    fn allowlist_entries() {
        let list: Vec<String> = ["open.getsession.org", "Sogs.Example:8443", "[::1]:80", "::2", " spaced "]
            .map(String::from)
            .into();
        assert!(allowlisted(&list, "open.getsession.org", 443));
        assert!(allowlisted(&list, "OPEN.getsession.org", 1));
        assert!(allowlisted(&list, "sogs.example", 8443));
        assert!(!allowlisted(&list, "sogs.example", 443));
        assert!(allowlisted(&list, "::1", 80));
        assert!(!allowlisted(&list, "::1", 81));
        assert!(allowlisted(&list, "::2", 5));
        assert!(allowlisted(&list, "spaced", 5));
        assert!(!allowlisted(&list, "getsession.org", 443));
        assert!(!allowlisted(&[], "x", 1));
    }

    #[test]
    fn proxy_urls() {
        let cfg = config(&["sogs.example", "127.0.0.1", "localhost", "[::1]", "0.0.0.0"], false);
        assert_eq!(
            url(&cfg, "sogs.example", "/oxen/v4/lsrpc", 443).as_deref(),
            Some("https://sogs.example/oxen/v4/lsrpc")
        );
        assert_eq!(
            url(&cfg, "sogs.example", "/loki/v3/lsrpc", 8080).as_deref(),
            Some("https://sogs.example:8080/loki/v3/lsrpc")
        );
        // Loopback and unspecified hosts need allow_loopback_proxy, even when allowlisted.
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"] {
            assert_eq!(url(&cfg, host, "/oxen/v4/lsrpc", 80), None, "{host}");
        }
        let dev = config(&["127.0.0.1", "[::1]"], true);
        assert_eq!(
            url(&dev, "127.0.0.1", "/oxen/v4/lsrpc", 80).as_deref(),
            Some("https://127.0.0.1:80/oxen/v4/lsrpc")
        );
        assert_eq!(url(&dev, "::1", "/oxen/v4/lsrpc", 80).as_deref(), Some("https://[::1]:80/oxen/v4/lsrpc"));
        // Not allowlisted, or a target that would not parse back to itself.
        assert_eq!(url(&cfg, "evil.example", "/oxen/v4/lsrpc", 443), None);
        assert_eq!(url(&cfg, "", "/oxen/v4/lsrpc", 443), None);
        assert_eq!(url(&cfg, "sogs.example", "/oxen/#/lsrpc", 443), None);
        assert_eq!(url(&cfg, "sogs.example", "/oxen/../x/lsrpc", 443), None);
        assert_eq!(url(&cfg, "sogs.example", "/oxen/a b/lsrpc", 443), None);
    }

    #[test]
    fn local_addresses() {
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1"] {
            assert!(is_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "8.8.8.8", "::ffff:8.8.8.8", "2001:db8::1"] {
            assert!(!is_local(ip.parse().unwrap()), "{ip}");
        }
    }
}
