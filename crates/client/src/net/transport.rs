//! HTTP to nodes and registries, and reading what comes back from an onion request.
//!
//! Nodes may serve plain HTTP or HTTPS with self-signed certificates; certificates are not
//! verified, because nodes are authenticated by their keys through the onion encryption (a node
//! that is not who the pool says cannot decrypt its layer). rustls uses the ring provider,
//! installed explicitly.

use std::time::Duration;

use serde_json::Value;

use super::pool::ServiceNode;

/// A request to a node or registry failed before an HTTP status came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransportError {
    /// No connection could be made (refused, unreachable, TLS handshake failed).
    Connect(String),
    /// The request timed out.
    Timeout,
    /// Anything else (connection reset mid-request, body not readable).
    Other(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Other(e) => write!(f, "transport error: {e}"),
        }
    }
}

/// The HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
}

impl Transport {
    /// A client whose requests time out after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Result<Self, String> {
        // reqwest is built without a bundled provider: install ring (harmless if already done).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .tls_backend_rustls()
            .tls_danger_accept_invalid_certs(true)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http })
    }

    /// POSTs `body` to `path` on `node`: HTTPS or HTTP as the pool knows it; when unknown,
    /// HTTPS first and then HTTP if that could not connect. Returns the status, the body and
    /// whether HTTPS was used.
    pub(crate) async fn post_node(
        &self,
        node: &ServiceNode,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>, bool), TransportError> {
        let url = |scheme: &str| format!("{scheme}://{}:{}{path}", node.ip, node.port);
        let with = |tls: bool| move |(status, body): (u16, Vec<u8>)| (status, body, tls);
        match node.tls {
            Some(true) => self.post(&url("https"), body).await.map(with(true)),
            Some(false) => self.post(&url("http"), body).await.map(with(false)),
            None => match self.post(&url("https"), body.clone()).await {
                Err(TransportError::Connect(_) | TransportError::Other(_)) => {
                    self.post(&url("http"), body).await.map(with(false))
                }
                other => other.map(with(true)),
            },
        }
    }

    /// POSTs a JSON-RPC call to `url` and returns the parsed JSON reply.
    pub(crate) async fn post_json(&self, url: &str, body: &Value) -> Result<Value, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let (status, reply) = self.post(url, bytes).await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("HTTP status {status}"));
        }
        serde_json::from_slice(&reply).map_err(|_| "the reply is not JSON".to_owned())
    }

    async fn post(&self, url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), TransportError> {
        let response = self.http.post(url).body(body).send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(classify)?.to_vec();
        Ok((status, body))
    }
}

fn classify(e: reqwest::Error) -> TransportError {
    let (timeout, connect) = (e.is_timeout(), e.is_connect());
    // The URL holds only a node address, but keep messages short.
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if timeout {
        TransportError::Timeout
    } else if connect {
        TransportError::Connect(text)
    } else {
        TransportError::Other(text)
    }
}

/// Why an onion request came back with a non-200 status from the path (network §7.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathFault {
    /// "Next node not found: <hex>": a hop does not know that node.
    NotFound([u8; 32]),
    /// "Next node unreachable: <hex>" (this project's nodes): a hop could not reach that node.
    Unreachable([u8; 32]),
    /// 504 / "Request time out" / "504 Gateway Timeout".
    Timeout,
    /// Anything else.
    Other,
}

/// Classifies a non-200 reply of the entry node.
pub(crate) fn classify_path_reply(status: u16, body: &[u8]) -> PathFault {
    let text = String::from_utf8_lossy(body);
    let named = |marker: &str| -> Option<[u8; 32]> {
        let start = text.find(marker)? + marker.len();
        let hex_text = text.get(start..start + 64)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut key).ok()?;
        Some(key)
    };
    if let Some(key) = named("Next node not found: ") {
        return PathFault::NotFound(key);
    }
    if let Some(key) = named("Next node unreachable: ") {
        return PathFault::Unreachable(key);
    }
    let mapped = mapped_status(&text).unwrap_or(status);
    if mapped == 504 {
        return PathFault::Timeout;
    }
    PathFault::Other
}

/// Plain-text bodies beginning "400 Bad Request", "403 Forbidden", "500 …", "502 …", "503 …",
/// "504 Gateway Timeout" are mapped to those codes (network §7.9).
fn mapped_status(text: &str) -> Option<u16> {
    let code: u16 = text.get(..3)?.parse().ok()?;
    let rest = text.get(3..)?;
    (matches!(code, 400 | 403 | 500 | 502 | 503 | 504) && rest.starts_with(' ')).then_some(code)
}

/// The decrypted reply of a snode destination: `{"status": n, "body": …}` (network §7.6).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InnerReply {
    /// The RPC status.
    pub(crate) status: u16,
    /// The RPC body: parsed JSON when the body is JSON text (or embedded JSON), else the text as a
    /// JSON string.
    pub(crate) body: Value,
}

impl InnerReply {
    /// Parses the decrypted plaintext; `None` when it is not the expected JSON object.
    pub(crate) fn parse(plaintext: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(plaintext).ok()?;
        let status = value.get("status").or_else(|| value.get("status_code"))?.as_u64()?;
        let status = u16::try_from(status).ok()?;
        let body = match value.get("body") {
            Some(Value::String(text)) => {
                serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.clone()))
            }
            Some(other) => other.clone(),
            None => Value::Null,
        };
        Some(Self { status, body })
    }

    /// The body as text for error messages (shortened).
    pub(crate) fn reason(&self) -> String {
        let text = match &self.body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut short: String = text.chars().take(200).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_replies_name_the_failed_node() {
        let key = [0xab; 32];
        let text = format!("Next node not found: {}", hex::encode(key));
        assert_eq!(classify_path_reply(502, text.as_bytes()), PathFault::NotFound(key));
        let quic = format!("502 Bad Gateway\n\nNext node not found: {}", hex::encode(key));
        assert_eq!(classify_path_reply(502, quic.as_bytes()), PathFault::NotFound(key));
        let ours = format!("Next node unreachable: {}", hex::encode(key));
        assert_eq!(classify_path_reply(502, ours.as_bytes()), PathFault::Unreachable(key));
        assert_eq!(classify_path_reply(502, b"Next node not found: zz"), PathFault::Other);
        assert_eq!(classify_path_reply(504, b"Request time out"), PathFault::Timeout);
        assert_eq!(classify_path_reply(200, b"504 Gateway Timeout"), PathFault::Timeout);
        assert_eq!(classify_path_reply(400, b"Invalid ciphertext"), PathFault::Other);
    }

    #[test]
    fn inner_replies_parse_string_and_embedded_bodies() {
        let r = InnerReply::parse(br#"{"status":200,"body":"{\"t\":5}"}"#).unwrap();
        assert_eq!((r.status, r.body["t"].as_u64()), (200, Some(5)));
        let r = InnerReply::parse(br#"{"status_code":421,"body":{"snodes":[]}}"#).unwrap();
        assert_eq!(r.status, 421);
        assert!(r.body["snodes"].is_array());
        let r = InnerReply::parse(br#"{"status":401,"body":"bad signature"}"#).unwrap();
        assert_eq!(r.reason(), "bad signature");
        assert!(InnerReply::parse(b"not json").is_none());
        assert!(InnerReply::parse(br#"{"body":"x"}"#).is_none());
    }
}
