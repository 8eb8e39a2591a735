//! Peeling one onion layer as a node does (network §7.4; SS `onion_processing.cpp`).
//!
//! 1. The entry node parses the POST body `[N][blob]{"ephemeral_key","enc_type","hop_no"}`
//!    ([`parse_entry_request`]); later hops get the same three things from the previous node.
//! 2. The blob is decrypted with the node's X25519 key ([`peel_layer`]). Failure is the plain
//!    400 "Invalid ciphertext" case: [`PeelError`].
//! 3. The plaintext is parsed as a combined payload and dispatched on its JSON
//!    ([`PeeledLayer::route`]): `headers` → final destination; `host` → proxy to a server;
//!    otherwise relay to `destination`. A failure here is answered *encrypted* with the layer
//!    key ([`PeeledLayer::reply_key`]), so it is a separate error, [`RouteError`].

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::builder::Protocol;
use super::hop::{EncType, EncTypeError, HopKey, MAX_NONCE_LEN};
use super::payload::{CombinedPayload, PayloadError};
use super::response::seal_response;
use crate::primitives::{X25519Secret, hex_array};

/// Upstream refuses a relayed layer whose `hop_no` exceeds this (network §7.5).
pub const MAX_ONION_HOPS: u64 = 15;

/// A layer could not be opened: the node answers with a plain (unencrypted) 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeelError {
    /// The entry body is not a valid combined payload.
    #[error("malformed onion request: {0}")]
    Payload(#[from] PayloadError),
    /// The entry JSON is not an object of the expected field types.
    #[error("malformed onion request metadata")]
    InvalidMetadata,
    /// The entry JSON has no `ephemeral_key`.
    #[error("onion request has no ephemeral_key")]
    MissingEphemeralKey,
    /// `ephemeral_key` is not 64 hex digits.
    #[error("onion request ephemeral_key is not a 32-byte hex key")]
    InvalidEphemeralKey,
    /// `enc_type` names no supported type.
    #[error("onion request enc_type: {0}")]
    EncType(#[from] EncTypeError),
    /// The blob does not decrypt with this node's key ("Invalid ciphertext").
    #[error("onion layer did not decrypt")]
    DecryptionFailed,
}

/// The decrypted layer cannot be routed: the node answers with an encrypted 400 ("Invalid json"
/// or "Invalid url").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The plaintext is not `[N][blob]{json object}` or a field has the wrong JSON type.
    #[error("onion layer plaintext is not a combined payload with JSON metadata")]
    InvalidJson,
    /// A required routing field is absent.
    #[error("onion layer routing lacks {0}")]
    MissingField(&'static str),
    /// A routing field has an invalid value.
    #[error("onion layer routing has an invalid {0}")]
    InvalidField(&'static str),
    /// A proxy request whose `protocol` or `target` nodes refuse (§7.4: target must start with
    /// `/loki/` or `/oxen/`, end with `/lsrpc` and contain no `?`).
    #[error("onion proxy target not allowed")]
    InvalidUrl,
}

/// The entry node's view of a POST body (§7.4 step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRequest<'a> {
    /// The encrypted layer.
    pub ciphertext: &'a [u8],
    /// The client's ephemeral X25519 key for this layer.
    pub ephemeral_key: [u8; 32],
    /// `enc_type`, aes-gcm when absent.
    pub enc_type: EncType,
    /// `hop_no`, 0 when absent; negative values count as 0.
    pub hop_no: u64,
}

/// A decrypted layer: the key (for the reply), the plaintext, and where it goes.
#[derive(Debug)]
pub struct PeeledLayer {
    key: HopKey,
    plaintext: Vec<u8>,
    route: Result<RouteInfo, RouteError>,
}

/// What a node does with a decrypted layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Route<'a> {
    /// This node is the destination (`headers` present).
    Final(FinalRequest<'a>),
    /// Forward to the next snode.
    Relay(RelayRequest<'a>),
    /// POST to an HTTP(S) server.
    Proxy(ProxyRequest<'a>),
}

/// A request for this node (§7.4, `headers` present).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinalRequest<'a> {
    /// The client RPC JSON text.
    pub body: &'a [u8],
    /// The `headers` value (upstream only checks that the key exists; desktop sends an object).
    pub headers: &'a Value,
    /// `json: true`: embed the RPC body as JSON rather than as a string.
    pub json: bool,
    /// `base64` (default true): base64-encode the encrypted reply.
    pub base64: bool,
}

/// A layer to forward to another snode (§7.4, relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayRequest<'a> {
    /// The next node's Ed25519 public key (`destination`).
    pub next_node: [u8; 32],
    /// The next layer's ciphertext.
    pub ciphertext: &'a [u8],
    /// The next layer's ephemeral key.
    pub ephemeral_key: [u8; 32],
    /// The next layer's type (aes-gcm when absent).
    pub enc_type: EncType,
}

/// A request to proxy to a server (§7.4, `host` present). Target and protocol are already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRequest<'a> {
    /// Host to connect to.
    pub host: &'a str,
    /// Request path.
    pub target: &'a str,
    /// `method` as the client sent it (libsession sends "POST"; upstream nodes always POST).
    pub method: Option<&'a str>,
    /// http or https (default https).
    pub protocol: Protocol,
    /// Port (default 443, whatever the protocol, as upstream nodes do).
    pub port: u16,
    /// The body to POST: this layer's **entire** decrypted plaintext.
    pub payload: &'a [u8],
}

/// Parses the POST body an entry node receives (§7.4 step 1).
pub fn parse_entry_request(body: &[u8]) -> Result<EntryRequest<'_>, PeelError> {
    let payload = CombinedPayload::parse(body)?;
    let meta: EntryJson<'_> = serde_json::from_slice(payload.json).map_err(|_| PeelError::InvalidMetadata)?;
    let key = meta.ephemeral_key.ok_or(PeelError::MissingEphemeralKey)?;
    let ephemeral_key = hex_array::<32>(&key).ok_or(PeelError::InvalidEphemeralKey)?;
    let enc_type = match meta.enc_type {
        Some(text) => EncType::parse(&text)?,
        None => EncType::WIRE_DEFAULT,
    };
    let hop_no = meta.hop_no.map_or(0, |n| u64::try_from(n).unwrap_or(0));
    Ok(EntryRequest { ciphertext: payload.blob, ephemeral_key, enc_type, hop_no })
}

/// Decrypts one layer with the node's X25519 key pair and parses its routing (§7.4 steps 2–4).
pub fn peel_layer(
    node_secret: &[u8; 32],
    node_public: &[u8; 32],
    ciphertext: &[u8],
    ephemeral_key: &[u8; 32],
    enc_type: EncType,
) -> Result<PeeledLayer, PeelError> {
    let key = HopKey::for_node(enc_type, node_secret, node_public, ephemeral_key)
        .map_err(|_| PeelError::DecryptionFailed)?;
    open_layer(key, ciphertext)
}

/// [`peel_layer`] with the node's prepared key ([`X25519Secret`], kept by a running node).
pub fn peel_layer_with(
    node_key: &X25519Secret,
    ciphertext: &[u8],
    ephemeral_key: &[u8; 32],
    enc_type: EncType,
) -> Result<PeeledLayer, PeelError> {
    let key =
        HopKey::for_node_key(enc_type, node_key, ephemeral_key).map_err(|_| PeelError::DecryptionFailed)?;
    open_layer(key, ciphertext)
}

/// Decrypts a layer with its derived key and parses the routing.
fn open_layer(key: HopKey, ciphertext: &[u8]) -> Result<PeeledLayer, PeelError> {
    let plaintext = key.decrypt(ciphertext).map_err(|_| PeelError::DecryptionFailed)?;
    let route = parse_route(&plaintext);
    Ok(PeeledLayer { key, plaintext, route })
}

/// The entry node's whole step: [`parse_entry_request`] then [`peel_layer`].
pub fn peel_request(
    node_secret: &[u8; 32],
    node_public: &[u8; 32],
    body: &[u8],
) -> Result<PeeledLayer, PeelError> {
    let entry = parse_entry_request(body)?;
    peel_layer(node_secret, node_public, entry.ciphertext, &entry.ephemeral_key, entry.enc_type)
}

/// True when nodes may proxy to `target` (SS `is_onion_url_target_allowed`).
pub fn is_target_allowed(target: &str) -> bool {
    (target.starts_with("/loki/") || target.starts_with("/oxen/"))
        && target.ends_with("/lsrpc")
        && !target.contains('?')
}

impl PeeledLayer {
    /// The layer key: encrypts this node's reply (final destination, or an error after
    /// decryption succeeded).
    pub fn reply_key(&self) -> &HopKey {
        &self.key
    }

    /// The decrypted layer, `[N][blob]{json}`.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// Takes the decrypted layer (e.g. to POST it to a server without copying).
    pub fn into_plaintext(self) -> Vec<u8> {
        self.plaintext
    }

    /// Where this layer goes, borrowing from the plaintext.
    pub fn route(&self) -> Result<Route<'_>, RouteError> {
        let info = self.route.as_ref().map_err(|e| *e)?;
        // The blob always starts right after the 4-byte length prefix.
        let blob = |len: usize| self.plaintext.get(4..4 + len).unwrap_or_default();
        Ok(match info {
            RouteInfo::Final { body_len, headers, json, base64 } => {
                Route::Final(FinalRequest { body: blob(*body_len), headers, json: *json, base64: *base64 })
            }
            RouteInfo::Relay { ciphertext_len, next_node, ephemeral_key, enc_type } => {
                Route::Relay(RelayRequest {
                    next_node: *next_node,
                    ciphertext: blob(*ciphertext_len),
                    ephemeral_key: *ephemeral_key,
                    enc_type: *enc_type,
                })
            }
            RouteInfo::Proxy { host, target, method, protocol, port } => Route::Proxy(ProxyRequest {
                host,
                target,
                method: method.as_deref(),
                protocol: *protocol,
                port: *port,
                payload: &self.plaintext,
            }),
        })
    }

    /// Encrypts a reply with this layer's key (§7.4 step 4), base64-encoding it when `base64`.
    pub fn seal_reply(&self, nonce: &[u8; MAX_NONCE_LEN], reply: &[u8], base64: bool) -> Vec<u8> {
        seal_response(&self.key, nonce, reply, base64)
    }
}

// ---- internals ----

/// Routing parsed once at peel time; big byte ranges stay in the plaintext.
#[derive(Debug)]
enum RouteInfo {
    Final { body_len: usize, headers: Value, json: bool, base64: bool },
    Relay { ciphertext_len: usize, next_node: [u8; 32], ephemeral_key: [u8; 32], enc_type: EncType },
    Proxy { host: String, target: String, method: Option<String>, protocol: Protocol, port: u16 },
}

#[derive(Deserialize)]
struct EntryJson<'a> {
    #[serde(borrow, default)]
    ephemeral_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    enc_type: Option<Cow<'a, str>>,
    #[serde(default)]
    hop_no: Option<i64>,
}

#[derive(Deserialize)]
struct InnerJson<'a> {
    #[serde(default, deserialize_with = "present")]
    headers: Option<Value>,
    #[serde(default)]
    json: Option<bool>,
    #[serde(default)]
    base64: Option<bool>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(borrow, default)]
    destination: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ephemeral_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    enc_type: Option<Cow<'a, str>>,
}

/// A present key is `Some`, even when its value is `null` (upstream tests key presence).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn parse_route(plaintext: &[u8]) -> Result<RouteInfo, RouteError> {
    let payload = CombinedPayload::parse(plaintext).map_err(|_| RouteError::InvalidJson)?;
    let meta: InnerJson<'_> = serde_json::from_slice(payload.json).map_err(|_| RouteError::InvalidJson)?;
    let blob_len = payload.blob.len();
    if let Some(headers) = meta.headers {
        return Ok(RouteInfo::Final {
            body_len: blob_len,
            headers,
            json: meta.json.unwrap_or(false),
            base64: meta.base64.unwrap_or(true),
        });
    }
    if let Some(host) = meta.host {
        let target = meta.target.ok_or(RouteError::MissingField("target"))?;
        let protocol = match meta.protocol {
            Some(p) => Protocol::parse(&p).ok_or(RouteError::InvalidUrl)?,
            None => Protocol::Https,
        };
        if !is_target_allowed(&target) {
            return Err(RouteError::InvalidUrl);
        }
        return Ok(RouteInfo::Proxy {
            host: host.into_owned(),
            target: target.into_owned(),
            method: meta.method.map(Cow::into_owned),
            protocol,
            port: meta.port.unwrap_or(443),
        });
    }
    let destination = meta.destination.ok_or(RouteError::MissingField("destination"))?;
    let next_node = hex_array::<32>(&destination).ok_or(RouteError::InvalidField("destination"))?;
    let key = meta.ephemeral_key.ok_or(RouteError::MissingField("ephemeral_key"))?;
    let ephemeral_key = hex_array::<32>(&key).ok_or(RouteError::InvalidField("ephemeral_key"))?;
    let enc_type = match meta.enc_type {
        Some(text) => EncType::parse(&text).map_err(|_| RouteError::InvalidField("enc_type"))?,
        None => EncType::WIRE_DEFAULT,
    };
    Ok(RouteInfo::Relay { ciphertext_len: blob_len, next_node, ephemeral_key, enc_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onion::payload::encode_combined_payload;

    #[test]
    fn targets() {
        assert!(is_target_allowed("/oxen/v4/lsrpc"));
        assert!(is_target_allowed("/loki/v3/lsrpc"));
        assert!(!is_target_allowed("/oxen/v4/lsrpc?x=1"));
        assert!(!is_target_allowed("/other/lsrpc"));
        assert!(!is_target_allowed("/oxen/v4/rpc"));
    }

    #[test]
    fn entry_parsing() {
        let key = hex::encode([7u8; 32]);
        let body =
            encode_combined_payload(b"ct", format!(r#"{{"ephemeral_key":"{key}"}}"#).as_bytes()).unwrap();
        let e = parse_entry_request(&body).unwrap();
        assert_eq!((e.ciphertext, e.enc_type, e.hop_no), (&b"ct"[..], EncType::AesGcm, 0));
        let body = encode_combined_payload(
            b"",
            format!(r#"{{"ephemeral_key":"{key}","enc_type":"xchacha20-poly1305","hop_no":-4}}"#).as_bytes(),
        )
        .unwrap();
        let e = parse_entry_request(&body).unwrap();
        assert_eq!((e.enc_type, e.hop_no), (EncType::XChaCha20, 0));
        let body = encode_combined_payload(b"", b"{}").unwrap();
        assert_eq!(parse_entry_request(&body), Err(PeelError::MissingEphemeralKey));
        let body = encode_combined_payload(b"", br#"{"ephemeral_key":"00"}"#).unwrap();
        assert_eq!(parse_entry_request(&body), Err(PeelError::InvalidEphemeralKey));
        let body = encode_combined_payload(
            b"",
            format!(r#"{{"ephemeral_key":"{key}","enc_type":"cbc"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(parse_entry_request(&body), Err(PeelError::EncType(EncTypeError::Unsupported)));
        assert_eq!(parse_entry_request(b"\0\0\0\0not json"), Err(PeelError::InvalidMetadata));
    }

    #[test]
    fn routes() {
        let p = encode_combined_payload(b"{}", br#"{"headers":null,"json":true}"#).unwrap();
        assert!(matches!(
            parse_route(&p),
            Ok(RouteInfo::Final { body_len: 2, json: true, base64: true, .. })
        ));
        let p =
            encode_combined_payload(b"", br#"{"host":"h","target":"/oxen/v4/lsrpc","port":8080}"#).unwrap();
        assert!(matches!(
            parse_route(&p),
            Ok(RouteInfo::Proxy { port: 8080, protocol: Protocol::Https, .. })
        ));
        let p = encode_combined_payload(b"", br#"{"host":"h","target":"/x"}"#).unwrap();
        assert_eq!(parse_route(&p).unwrap_err(), RouteError::InvalidUrl);
        let p = encode_combined_payload(b"", br#"{"host":"h","target":"/oxen/v4/lsrpc","protocol":"ftp"}"#)
            .unwrap();
        assert_eq!(parse_route(&p).unwrap_err(), RouteError::InvalidUrl);
        let p = encode_combined_payload(b"", br#"{"host":"h"}"#).unwrap();
        assert_eq!(parse_route(&p).unwrap_err(), RouteError::MissingField("target"));
        let p = encode_combined_payload(b"", br#"{"destination":"zz"}"#).unwrap();
        assert_eq!(parse_route(&p).unwrap_err(), RouteError::InvalidField("destination"));
        let p = encode_combined_payload(b"", br#"{"json":"yes","headers":""}"#).unwrap();
        assert_eq!(parse_route(&p).unwrap_err(), RouteError::InvalidJson);
        let p = encode_combined_payload(b"", br#"{"host":"h\u0041","target":"/oxen/v4/lsrpc"}"#).unwrap();
        assert!(matches!(parse_route(&p), Ok(RouteInfo::Proxy { ref host, .. }) if host == "hA"));
    }
}
