//! Building an onion request on the client (network §7.3; libsession `onionreq/builder.cpp`).
//!
//! Layers are built from the inside out. With a path `[guard, middle, exit]` and a destination,
//! the caller supplies one [`LayerSecrets`] per layer, **innermost first**: destination, exit,
//! middle, guard. Every routing JSON is written with sorted keys and no whitespace, as libsession
//! (nlohmann) writes it; nodes parse JSON generically.

use std::fmt;

use zeroize::Zeroizing;

use super::hop::{EncType, HopKey, MAX_NONCE_LEN, TAG_LEN};
use super::payload::{MAX_PAYLOAD_LEN, PayloadError, encode_combined_payload_into};
use super::response::{DestinationKind, ResponseContext};
use super::{write_json_hex32, write_json_str};
use crate::primitives::{write_decimal, x25519_base_and_shared};

/// The most layers a request may have: upstream nodes refuse `hop_no > 15` (network §7.5).
pub const MAX_PATH_LEN: usize = 15;

/// The two public keys that identify a snode on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeKeys {
    /// Ed25519 public key: how the previous hop names this node (`destination`).
    pub ed25519: [u8; 32],
    /// X25519 public key: what the layer is encrypted to.
    pub x25519: [u8; 32],
}

/// `protocol` of a server destination (network §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// `"https"`, the default; port 443.
    #[default]
    Https,
    /// `"http"`; port 80 when the builder chooses it.
    Http,
}

impl Protocol {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Https => "https",
            Protocol::Http => "http",
        }
    }

    /// Parses `"https"` or `"http"` exactly.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "https" => Some(Protocol::Https),
            "http" => Some(Protocol::Http),
            _ => None,
        }
    }

    /// The port libsession writes when none is given: 443 or 80.
    pub const fn default_port(self) -> u16 {
        match self {
            Protocol::Https => 443,
            Protocol::Http => 80,
        }
    }
}

/// Optional flags of a final-destination layer (network §7.3 step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalOptions {
    /// `"json": true`: the node embeds the RPC's JSON body rather than a JSON string.
    pub json: bool,
    /// `"base64": false`: the node returns raw ciphertext instead of base64. Default true.
    pub base64: bool,
}

impl Default for FinalOptions {
    fn default() -> Self {
        Self { json: false, base64: true }
    }
}

/// An HTTP(S) server reached through the exit node (network §7.3, §7.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerDestination<'a> {
    /// Host name or address the exit node connects to.
    pub host: &'a str,
    /// Path; nodes accept only `/loki/…/lsrpc` or `/oxen/…/lsrpc` without `?`, e.g.
    /// `/oxen/v4/lsrpc`.
    pub target: &'a str,
    /// `http` or `https`.
    pub protocol: Protocol,
    /// Port; `None` writes the protocol's default (443/80), as libsession does.
    pub port: Option<u16>,
    /// The server's X25519 public key: the innermost layer is encrypted to it.
    pub x25519: [u8; 32],
    /// The already-encoded request (e.g. [`super::v4::encode_v4_request`]), encrypted directly
    /// with no combined-payload wrapper.
    pub request: &'a [u8],
}

/// Where the request ends (network §7.3 step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A snode processes `body` (client RPC JSON `{"method":…,"params":…}`) itself.
    Snode {
        /// The destination snode.
        node: NodeKeys,
        /// The RPC request text.
        body: &'a [u8],
        /// `json` / `base64` flags.
        options: FinalOptions,
    },
    /// The exit node proxies the request to a server.
    Server(ServerDestination<'a>),
}

/// Everything that determines a request's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSpec<'a> {
    /// One encryption type for every layer (libsession's behaviour).
    pub enc_type: EncType,
    /// The path, entry (guard) first; usually 3 nodes. 1 to [`MAX_PATH_LEN`] nodes.
    pub path: &'a [NodeKeys],
    /// Destination snode or server.
    pub destination: Destination<'a>,
    /// Optional starting `hop_no` for the entry node, to disguise its position (§7.3 step 4).
    pub hop_no: Option<u32>,
}

/// The random inputs of one layer: an X25519 ephemeral secret and a nonce (aes-gcm uses the first
/// 12 bytes as its IV, xchacha20 all 24).
#[derive(Clone)]
pub struct LayerSecrets {
    /// The ephemeral X25519 secret `a` (any 32 bytes; X25519 clamps).
    pub ephemeral_secret: Zeroizing<[u8; 32]>,
    /// The nonce / IV source.
    pub nonce: [u8; MAX_NONCE_LEN],
}

impl fmt::Debug for LayerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerSecrets").finish_non_exhaustive()
    }
}

impl LayerSecrets {
    /// Fixed secrets (tests, vectors).
    pub fn new(ephemeral_secret: [u8; 32], nonce: [u8; MAX_NONCE_LEN]) -> Self {
        Self { ephemeral_secret: Zeroizing::new(ephemeral_secret), nonce }
    }

    /// Fresh secrets from `rng`.
    pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut ephemeral_secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut ephemeral_secret[..]);
        let mut nonce = [0u8; MAX_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        Self { ephemeral_secret, nonce }
    }
}

/// A built request.
#[derive(Debug)]
pub struct OnionRequest {
    /// The bytes to POST to the entry node (`/onion_req/v2`): `[N][guard layer]{"enc_type":…,
    /// "ephemeral_key":…}`.
    pub body: Vec<u8>,
    /// What the client keeps to decrypt the response (§7.3 step 5).
    pub response: ResponseContext,
}

/// One layer as built, for inspection and test vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTrace {
    /// The layer's ephemeral public key `A`.
    pub ephemeral_public: [u8; 32],
    /// The layer's plaintext.
    pub plaintext: Vec<u8>,
    /// The layer's ciphertext (`nonce || ct || tag`).
    pub ciphertext: Vec<u8>,
}

/// A request could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The path has no nodes.
    #[error("onion path is empty")]
    EmptyPath,
    /// The path has more than [`MAX_PATH_LEN`] nodes.
    #[error("onion path longer than {MAX_PATH_LEN} nodes")]
    PathTooLong,
    /// `secrets` must hold one entry per layer: path length + 1.
    #[error("expected {expected} layer secrets, got {got}")]
    SecretCount {
        /// Path length + 1.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A node's (or the destination's) X25519 key is of small order. `layer` counts from the
    /// innermost (0 = destination).
    #[error("X25519 key of layer {layer} is of small order")]
    WeakPublicKey {
        /// Layer index, innermost first.
        layer: usize,
    },
    /// A layer would exceed [`MAX_PAYLOAD_LEN`].
    #[error("onion request larger than 10 MiB")]
    TooLarge,
}

impl From<PayloadError> for BuildError {
    fn from(_: PayloadError) -> Self {
        BuildError::TooLarge
    }
}

/// Builds the request with caller-supplied secrets (innermost layer first, `path.len() + 1`
/// entries).
pub fn build_request(spec: &RequestSpec<'_>, secrets: &[LayerSecrets]) -> Result<OnionRequest, BuildError> {
    build(spec, secrets, None)
}

/// As [`build_request`], also returning every layer (innermost first) for inspection.
pub fn build_request_traced(
    spec: &RequestSpec<'_>,
    secrets: &[LayerSecrets],
) -> Result<(OnionRequest, Vec<LayerTrace>), BuildError> {
    let mut trace = Vec::with_capacity(secrets.len());
    let request = build(spec, secrets, Some(&mut trace))?;
    Ok((request, trace))
}

/// As [`build_request`], drawing every ephemeral secret and nonce from `rng`.
pub fn build_request_random<R: rand_core::CryptoRng + ?Sized>(
    spec: &RequestSpec<'_>,
    rng: &mut R,
) -> Result<OnionRequest, BuildError> {
    let secrets: Vec<LayerSecrets> = (0..=spec.path.len()).map(|_| LayerSecrets::random(rng)).collect();
    build(spec, &secrets, None)
}

// ---- internals ----

fn build(
    spec: &RequestSpec<'_>,
    secrets: &[LayerSecrets],
    mut trace: Option<&mut Vec<LayerTrace>>,
) -> Result<OnionRequest, BuildError> {
    let path = spec.path;
    if path.is_empty() {
        return Err(BuildError::EmptyPath);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(BuildError::PathTooLong);
    }
    if secrets.len() != path.len() + 1 {
        return Err(BuildError::SecretCount { expected: path.len() + 1, got: secrets.len() });
    }
    let enc = spec.enc_type;
    let nonce_len = enc.nonce_len();
    let mut json = Vec::with_capacity(256);

    // Innermost layer, to the destination.
    let inner = &secrets[0];
    let (dest_x25519, kind) = match &spec.destination {
        Destination::Snode { node, .. } => (node.x25519, DestinationKind::Snode),
        Destination::Server(server) => (server.x25519, DestinationKind::Server),
    };
    let (inner_public, inner_key) = client_key(enc, &inner.ephemeral_secret, &dest_x25519)
        .ok_or(BuildError::WeakPublicKey { layer: 0 })?;
    let mut blob = Vec::new();
    blob.extend_from_slice(&inner.nonce[..nonce_len]);
    match &spec.destination {
        Destination::Snode { body, options, .. } => {
            write_final_json(&mut json, options);
            encode_combined_payload_into(&mut blob, body, &json)?;
        }
        Destination::Server(server) => {
            if server.request.len() > MAX_PAYLOAD_LEN {
                return Err(BuildError::TooLarge);
            }
            blob.extend_from_slice(server.request);
        }
    }
    seal_layer(&inner_key, &mut blob, inner_public, nonce_len, trace.as_deref_mut());

    // Routing JSON for the exit node.
    json.clear();
    match &spec.destination {
        Destination::Snode { node, .. } => write_relay_json(&mut json, &node.ed25519, enc, &inner_public),
        Destination::Server(server) => write_server_json(&mut json, server, enc, &inner_public),
    }

    // Path layers, exit first.
    let mut next_public = inner_public;
    for (depth, (hop, layer)) in path.iter().rev().zip(&secrets[1..]).enumerate() {
        let (public, key) = client_key(enc, &layer.ephemeral_secret, &hop.x25519)
            .ok_or(BuildError::WeakPublicKey { layer: depth + 1 })?;
        let mut next = Vec::with_capacity(nonce_len + 4 + blob.len() + json.len() + TAG_LEN);
        next.extend_from_slice(&layer.nonce[..nonce_len]);
        encode_combined_payload_into(&mut next, &blob, &json)?;
        seal_layer(&key, &mut next, public, nonce_len, trace.as_deref_mut());
        blob = next;
        next_public = public;
        // Routing for the node before this one: forward to this hop.
        json.clear();
        write_relay_json(&mut json, &hop.ed25519, enc, &next_public);
    }

    // The entry wrapper.
    json.clear();
    write_entry_json(&mut json, enc, &next_public, spec.hop_no);
    let mut body = Vec::with_capacity(4 + blob.len() + json.len());
    encode_combined_payload_into(&mut body, &blob, &json)?;

    let response =
        ResponseContext::with_key(inner_key, inner.ephemeral_secret.clone(), inner_public, dest_x25519, kind);
    Ok(OnionRequest { body, response })
}

/// A layer's ephemeral public key `A` and its key to `node_public`: [`HopKey::for_client`] with
/// `A` and the shared secret computed together (one inversion fewer). `None`: small-order node key.
fn client_key(
    enc: EncType,
    ephemeral_secret: &[u8; 32],
    node_public: &[u8; 32],
) -> Option<([u8; 32], HopKey)> {
    let (public, shared) = x25519_base_and_shared(ephemeral_secret, node_public).ok()?;
    Some((public, HopKey::from_shared_secret(enc, &shared, &public, node_public)))
}

/// `buf` = nonce || plaintext; encrypts in place, recording the layer when tracing.
fn seal_layer(
    key: &HopKey,
    buf: &mut Vec<u8>,
    ephemeral_public: [u8; 32],
    nonce_len: usize,
    trace: Option<&mut Vec<LayerTrace>>,
) {
    let plaintext = trace.is_some().then(|| buf.get(nonce_len..).unwrap_or_default().to_vec());
    key.seal_tail(buf, 0);
    if let (Some(trace), Some(plaintext)) = (trace, plaintext) {
        trace.push(LayerTrace { ephemeral_public, plaintext, ciphertext: buf.clone() });
    }
}

/// `{"base64":false,"headers":"","json":true}` with only the non-default flags.
fn write_final_json(out: &mut Vec<u8>, options: &FinalOptions) {
    out.push(b'{');
    if !options.base64 {
        out.extend_from_slice(br#""base64":false,"#);
    }
    out.extend_from_slice(br#""headers":"""#);
    if options.json {
        out.extend_from_slice(br#","json":true"#);
    }
    out.push(b'}');
}

/// `{"destination":<ed hex>,"enc_type":T,"ephemeral_key":<hex>}`.
fn write_relay_json(out: &mut Vec<u8>, next_ed25519: &[u8; 32], enc: EncType, ephemeral: &[u8; 32]) {
    out.extend_from_slice(br#"{"destination":"#);
    write_json_hex32(out, next_ed25519);
    write_enc_and_key(out, enc, ephemeral);
    out.push(b'}');
}

/// `{"enc_type":T,"ephemeral_key":<hex>,"host":…,"method":"POST","port":p,"protocol":…,"target":…}`.
fn write_server_json(out: &mut Vec<u8>, server: &ServerDestination<'_>, enc: EncType, ephemeral: &[u8; 32]) {
    out.push(b'{');
    write_enc_and_key(out, enc, ephemeral);
    out.extend_from_slice(br#","host":"#);
    write_json_str(out, server.host);
    out.extend_from_slice(br#","method":"POST","port":"#);
    let port = server.port.unwrap_or(server.protocol.default_port());
    write_decimal(out, u64::from(port));
    out.extend_from_slice(br#","protocol":""#);
    out.extend_from_slice(server.protocol.as_str().as_bytes());
    out.extend_from_slice(br#"","target":"#);
    write_json_str(out, server.target);
    out.push(b'}');
}

/// `{"enc_type":T,"ephemeral_key":<hex>[,"hop_no":k]}`.
fn write_entry_json(out: &mut Vec<u8>, enc: EncType, ephemeral: &[u8; 32], hop_no: Option<u32>) {
    out.push(b'{');
    write_enc_and_key(out, enc, ephemeral);
    if let Some(hop_no) = hop_no {
        out.extend_from_slice(br#","hop_no":"#);
        write_decimal(out, u64::from(hop_no));
    }
    out.push(b'}');
}

/// `"enc_type":T,"ephemeral_key":<hex>` (a leading comma is added when `out` does not end in `{`).
fn write_enc_and_key(out: &mut Vec<u8>, enc: EncType, ephemeral: &[u8; 32]) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.extend_from_slice(br#""enc_type":""#);
    out.extend_from_slice(enc.as_str().as_bytes());
    out.extend_from_slice(br#"","ephemeral_key":"#);
    write_json_hex32(out, ephemeral);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::x25519_base;
    use serde_json::Value;

    fn node(n: u8) -> NodeKeys {
        NodeKeys { ed25519: [n; 32], x25519: x25519_base(&[n; 32]) }
    }

    fn secrets(count: usize) -> Vec<LayerSecrets> {
        (0..count).map(|i| LayerSecrets::new([100 + i as u8; 32], [i as u8; 24])).collect()
    }

    #[test]
    fn json_shapes_are_sorted_and_compact() {
        let mut out = Vec::new();
        write_final_json(&mut out, &FinalOptions { json: true, base64: false });
        assert_eq!(out, br#"{"base64":false,"headers":"","json":true}"#);
        out.clear();
        write_final_json(&mut out, &FinalOptions::default());
        assert_eq!(out, br#"{"headers":""}"#);
        out.clear();
        let server = ServerDestination {
            host: "example.org",
            target: "/oxen/v4/lsrpc",
            protocol: Protocol::Http,
            port: None,
            x25519: [0; 32],
            request: b"",
        };
        write_server_json(&mut out, &server, EncType::AesGcm, &[0; 32]);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["port"], 80);
        assert_eq!(v["method"], "POST");
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        out.clear();
        write_entry_json(&mut out, EncType::XChaCha20, &[1; 32], Some(3));
        assert!(out.ends_with(br#","hop_no":3}"#));
    }

    #[test]
    fn rejects_bad_shapes() {
        let path = [node(1), node(2), node(3)];
        let spec = RequestSpec {
            enc_type: EncType::XChaCha20,
            path: &path,
            destination: Destination::Snode { node: node(4), body: b"{}", options: FinalOptions::default() },
            hop_no: None,
        };
        assert_eq!(
            build_request(&spec, &secrets(3)).unwrap_err(),
            BuildError::SecretCount { expected: 4, got: 3 }
        );
        let empty = RequestSpec { path: &[], ..spec };
        assert_eq!(build_request(&empty, &secrets(1)).unwrap_err(), BuildError::EmptyPath);
        let weak = RequestSpec {
            destination: Destination::Snode {
                node: NodeKeys { ed25519: [0; 32], x25519: [0; 32] },
                body: b"{}",
                options: FinalOptions::default(),
            },
            ..spec
        };
        assert_eq!(build_request(&weak, &secrets(4)).unwrap_err(), BuildError::WeakPublicKey { layer: 0 });
    }

    #[test]
    fn trace_matches_request() {
        let path = [node(1), node(2), node(3)];
        let spec = RequestSpec {
            enc_type: EncType::AesGcm,
            path: &path,
            destination: Destination::Snode { node: node(4), body: b"{}", options: FinalOptions::default() },
            hop_no: None,
        };
        let (req, trace) = build_request_traced(&spec, &secrets(4)).unwrap();
        assert_eq!(trace.len(), 4);
        let outer = super::super::payload::CombinedPayload::parse(&req.body).unwrap();
        assert_eq!(outer.blob, &trace[3].ciphertext[..]);
        assert_eq!(req.body, build_request(&spec, &secrets(4)).unwrap().body);
    }
}
