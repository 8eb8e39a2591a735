//! Request signatures of the node-to-node channel (`docs/node-channel.md` §3).
//!
//! Every request carries three headers: `X-Node-Pubkey` (the sender's Ed25519 key, 64 lowercase
//! hex), `X-Node-Timestamp` (ms since the Unix epoch, decimal) and `X-Node-Signature` (standard
//! padded base64 of a 64-byte Ed25519 signature). The signature covers
//!
//! ```text
//! session-node-channel/v1 \n METHOD \n PATH \n TIMESTAMP \n SENDER_HEX \n RECIPIENT_HEX \n BODY_HASH_HEX
//! ```
//!
//! (no spaces; `\n` is one 0x0a byte) where the body hash is BLAKE2b-256 (unkeyed) of the raw
//! body. The recipient accepts a request only from a node in its current node list, with a
//! timestamp within [`MAX_CLOCK_SKEW_MS`] of its own clock.
//!
//! Instead of `X-Node-Signature` a request may carry `X-Node-Mac`: the 32-byte keyed BLAKE2b of
//! the same message under the pair's channel key, which only the two nodes can compute (the
//! X25519 agreement of one's secret with the other's key converted from its listed Ed25519 key;
//! see [`ChannelKeys`]). It authenticates the sender to the recipient as the signature does, at
//! a hash's cost instead of an Ed25519 signature and verification per request, like upstream's
//! per-connection CurveZMQ authentication; senders use it whenever the key agreement works.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use session_protocol::IdentityKey;
use session_protocol::primitives::blake2b_32;

use crate::nodelist::NodeList;

/// Header naming the sender's Ed25519 public key (hex).
pub const PUBKEY_HEADER: &str = "x-node-pubkey";
/// Header with the request time in ms since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "x-node-timestamp";
/// Header with the base64 Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "x-node-signature";

/// Header with the base64 keyed-BLAKE2b MAC (alternative to the signature).
pub const MAC_HEADER: &str = "x-node-mac";

/// Requests whose timestamp differs from the recipient's clock by more than this are stale.
pub const MAX_CLOCK_SKEW_MS: i64 = 60_000;

/// Domain separator, the first line of every signed message.
const DOMAIN: &[u8] = b"session-node-channel/v1";
/// Domain separator of the channel-key derivation.
const KEY_DOMAIN: &[u8] = b"session-node-channel/v1 mac key";
/// More cached channel keys than this and the cache starts over (bounded memory; the node list
/// is far smaller).
const MAX_CACHED_KEYS: usize = 4096;

/// This node's channel keys with every peer: `BLAKE2b-256(key = X25519(own secret, peer X25519),
/// KEY_DOMAIN ‖ lower Ed25519 key ‖ higher Ed25519 key)`, where the peer's X25519 key is
/// converted from its Ed25519 key (so the key is bound to the identity that the node list
/// names). Both nodes of a pair compute the same key. Computed once per peer and cached.
pub struct ChannelKeys {
    own_x25519_secret: zeroize::Zeroizing<[u8; 32]>,
    own_ed25519: [u8; 32],
    cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], zeroize::Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for ChannelKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelKeys").finish_non_exhaustive()
    }
}

impl ChannelKeys {
    /// The channel keys of the node with `key`.
    pub fn new(key: &IdentityKey) -> Self {
        Self {
            own_x25519_secret: zeroize::Zeroizing::new(*key.x25519_secret()),
            own_ed25519: key.ed25519_public(),
            cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The channel key with the node whose Ed25519 key is `peer`; `None` when that key is not a
    /// usable curve point (such a peer can still sign).
    pub fn key_for(&self, peer: &[u8; 32]) -> Option<[u8; 32]> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = cache.get(peer) {
            return Some(**key);
        }
        let peer_x25519 = session_protocol::keys::ed25519_to_x25519(peer).ok()?;
        let shared = session_protocol::primitives::x25519(&self.own_x25519_secret, &peer_x25519).ok()?;
        let (lo, hi) =
            if self.own_ed25519 <= *peer { (&self.own_ed25519, peer) } else { (peer, &self.own_ed25519) };
        let key = blake2b_32(&shared[..], &[KEY_DOMAIN, lo, hi]);
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(*peer, zeroize::Zeroizing::new(key));
        Some(key)
    }
}

/// Authenticates a request from this node to `recipient_hex` with the pair's channel key
/// (header value for [`MAC_HEADER`] in `SignedHeaders::signature`); `None` when the recipient's
/// key is malformed or not a usable point (sign instead).
pub fn mac_request(
    keys: &ChannelKeys,
    sender_hex: &str,
    recipient_hex: &str,
    method: &str,
    path: &str,
    timestamp_ms: i64,
    body: &[u8],
) -> Option<SignedHeaders> {
    let recipient = session_protocol::primitives::hex_array::<32>(recipient_hex)?;
    let key = keys.key_for(&recipient)?;
    let timestamp = timestamp_ms.to_string();
    let message = signed_message(method, path, &timestamp, sender_hex, recipient_hex, body);
    Some(SignedHeaders {
        pubkey: sender_hex.to_owned(),
        timestamp,
        signature: STANDARD.encode(mac(&key, &message)),
    })
}

/// The three authentication headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Node-Pubkey`.
    pub pubkey: String,
    /// `X-Node-Timestamp`.
    pub timestamp: String,
    /// `X-Node-Signature`.
    pub signature: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A header is absent or not valid text.
    #[error("missing node authentication headers")]
    MissingHeaders,
    /// The pubkey, timestamp or signature header is malformed.
    #[error("malformed node authentication headers")]
    Malformed,
    /// The sender is not in our node list.
    #[error("unknown node")]
    UnknownSender,
    /// The timestamp is more than 60 s from our clock.
    #[error("stale request timestamp")]
    Stale,
    /// The signature does not verify.
    #[error("invalid node signature")]
    BadSignature,
}

impl AuthError {
    /// The HTTP status the receiver answers with: 403 for an unknown sender, 401 otherwise.
    pub fn status(self) -> u16 {
        match self {
            AuthError::UnknownSender => 403,
            _ => 401,
        }
    }
}

/// Signs a request from `key` to `recipient_hex` (Ed25519 hex) at `timestamp_ms`.
pub fn sign_request(
    key: &IdentityKey,
    sender_hex: &str,
    recipient_hex: &str,
    method: &str,
    path: &str,
    timestamp_ms: i64,
    body: &[u8],
) -> SignedHeaders {
    let timestamp = timestamp_ms.to_string();
    let message = signed_message(method, path, &timestamp, sender_hex, recipient_hex, body);
    SignedHeaders { pubkey: sender_hex.to_owned(), timestamp, signature: STANDARD.encode(key.sign(&message)) }
}

/// A received request as the receiver sees it: the authentication headers (absent ones are
/// `None`), method, path and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// `X-Node-Pubkey`.
    pub pubkey: Option<&'a str>,
    /// `X-Node-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Node-Signature`.
    pub signature: Option<&'a str>,
    /// `X-Node-Mac` (used instead of the signature when present).
    pub mac: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

/// Checks a received request addressed to `own_hex` against the node list and our clock.
/// Returns the sender's Ed25519 hex on success.
pub fn verify_request<'a>(
    nodes: &NodeList,
    keys: &ChannelKeys,
    own_hex: &str,
    now_ms: i64,
    request: &Received<'a>,
) -> Result<&'a str, AuthError> {
    let (Some(pubkey), Some(timestamp)) = (request.pubkey, request.timestamp) else {
        return Err(AuthError::MissingHeaders);
    };
    if pubkey.len() != 64 || !pubkey.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(AuthError::Malformed);
    }
    let ts: i64 = parse_timestamp(timestamp).ok_or(AuthError::Malformed)?;
    // The MAC when present (senders send one or the other), else the signature.
    let credential = match (request.mac, request.signature) {
        (Some(mac), _) => Credential::Mac(decode_base64(mac)?),
        (None, Some(signature)) => Credential::Signature(decode_base64(signature)?),
        (None, None) => return Err(AuthError::MissingHeaders),
    };
    let (_, verifier) = nodes.verifier_by_ed25519(pubkey).ok_or(AuthError::UnknownSender)?;
    if now_ms.abs_diff(ts) > MAX_CLOCK_SKEW_MS.unsigned_abs() {
        return Err(AuthError::Stale);
    }
    let message = signed_message(request.method, request.path, timestamp, pubkey, own_hex, request.body);
    let valid = match credential {
        Credential::Mac(got) => session_protocol::primitives::hex_array::<32>(pubkey)
            .and_then(|sender| keys.key_for(&sender))
            .is_some_and(|key| subtle::ConstantTimeEq::ct_eq(&mac(&key, &message)[..], &got[..]).into()),
        // `verify_ed25519`'s rules, with the sender's key decoded once per node list.
        Credential::Signature(sig) => verifier.is_some_and(|key| key.verify(&message, &sig)),
    };
    if valid { Ok(pubkey) } else { Err(AuthError::BadSignature) }
}

// ---- internals ----

/// The request's credential: `X-Node-Mac` or `X-Node-Signature`, decoded.
enum Credential {
    Mac([u8; 32]),
    Signature([u8; 64]),
}

/// Standard padded base64 of exactly `N` bytes.
fn decode_base64<const N: usize>(text: &str) -> Result<[u8; N], AuthError> {
    let mut out = [0u8; N];
    match STANDARD.decode_slice(text.as_bytes(), &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => Err(AuthError::Malformed),
    }
}

/// The channel MAC of §3.2a over a §3.2 message.
fn mac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    blake2b_32(key, &[message])
}

/// A decimal timestamp without sign, leading `+` or spaces, at most 15 digits.
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn signed_message(
    method: &str,
    path: &str,
    timestamp: &str,
    sender: &str,
    recipient: &str,
    body: &[u8],
) -> Vec<u8> {
    let body_hash = hex::encode(blake2b_32(&[], &[body]));
    let parts: [&[u8]; 7] = [
        DOMAIN,
        method.as_bytes(),
        path.as_bytes(),
        timestamp.as_bytes(),
        sender.as_bytes(),
        recipient.as_bytes(),
        body_hash.as_bytes(),
    ];
    let mut message = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        if !message.is_empty() {
            message.push(b'\n');
        }
        message.extend_from_slice(part);
    }
    message
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::nodelist::NodeRecord;

    fn record(key: &IdentityKey) -> NodeRecord {
        NodeRecord {
            pubkey_ed25519: hex::encode(key.ed25519_public()),
            pubkey_x25519: hex::encode(key.x25519_public()),
            public_ip: Ipv4Addr::LOCALHOST,
            storage_port: 1,
            storage_lmq_port: 0,
            swarm_id: 0,
            tls: false,
        }
    }

    #[test]
    fn sign_then_verify() {
        let a = IdentityKey::from_seed_bytes(&[1; 32]);
        let b = IdentityKey::from_seed_bytes(&[2; 32]);
        let (a_hex, b_hex) = (hex::encode(a.ed25519_public()), hex::encode(b.ed25519_public()));
        let list = NodeList::new(vec![record(&a), record(&b)]);
        let h = sign_request(&a, &a_hex, &b_hex, "POST", "/node/v1/rpc", 1_000_000, b"body");
        let check = |list: &NodeList, own: &str, now: i64, path: &str, body: &[u8], h: &SignedHeaders| {
            let received = Received {
                method: "POST",
                path,
                pubkey: Some(&h.pubkey),
                timestamp: Some(&h.timestamp),
                signature: Some(&h.signature),
                mac: None,
                body,
            };
            verify_request(list, &ChannelKeys::new(&b), own, now, &received).map(str::to_owned)
        };
        assert_eq!(check(&list, &b_hex, 1_000_000, "/node/v1/rpc", b"body", &h), Ok(a_hex.clone()));
        assert_eq!(check(&list, &b_hex, 1_059_000, "/node/v1/rpc", b"body", &h), Ok(a_hex.clone()));
        assert_eq!(check(&list, &b_hex, 1_060_001, "/node/v1/rpc", b"body", &h), Err(AuthError::Stale));
        assert_eq!(check(&list, &b_hex, 939_999, "/node/v1/rpc", b"body", &h), Err(AuthError::Stale));
        assert_eq!(
            check(&list, &b_hex, 1_000_000, "/node/v1/rpc", b"bodY", &h),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            check(&list, &b_hex, 1_000_000, "/node/v1/onion", b"body", &h),
            Err(AuthError::BadSignature)
        );
        // Addressed to b, replayed to a.
        assert_eq!(
            check(&list, &a_hex, 1_000_000, "/node/v1/rpc", b"body", &h),
            Err(AuthError::BadSignature)
        );
        let only_b = NodeList::new(vec![record(&b)]);
        assert_eq!(
            check(&only_b, &b_hex, 1_000_000, "/node/v1/rpc", b"body", &h),
            Err(AuthError::UnknownSender)
        );
        let mut bad = h.clone();
        bad.timestamp = "-1000000".into();
        assert_eq!(check(&list, &b_hex, 1_000_000, "/node/v1/rpc", b"body", &bad), Err(AuthError::Malformed));
        let mut bad = h.clone();
        bad.signature = "AAAA".into();
        assert_eq!(check(&list, &b_hex, 1_000_000, "/node/v1/rpc", b"body", &bad), Err(AuthError::Malformed));
        let mut bad = h.clone();
        bad.pubkey = a_hex.to_uppercase();
        assert_eq!(check(&list, &b_hex, 1_000_000, "/node/v1/rpc", b"body", &bad), Err(AuthError::Malformed));
        assert_eq!(
            verify_request(
                &list,
                &ChannelKeys::new(&b),
                &b_hex,
                0,
                &Received {
                    method: "POST",
                    path: "/",
                    pubkey: None,
                    timestamp: Some("1"),
                    signature: Some("x"),
                    mac: None,
                    body: b""
                }
            ),
            Err(AuthError::MissingHeaders)
        );
        // A listed node whose key is of small order: no signature verifies under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut small = record(&a);
        small.pubkey_ed25519 = hex::encode(identity);
        let with_small = NodeList::new(vec![small.clone(), record(&b)]);
        let mut forged = h.clone();
        forged.pubkey = small.pubkey_ed25519.clone();
        forged.signature = STANDARD.encode([&identity[..], &[0u8; 32]].concat());
        assert_eq!(
            check(&with_small, &b_hex, 1_000_000, "/node/v1/rpc", b"body", &forged),
            Err(AuthError::BadSignature)
        );
        assert_eq!(AuthError::UnknownSender.status(), 403);
        assert_eq!(AuthError::Stale.status(), 401);
    }

    /// The channel's check (the sender's key decoded once, through the node list) accepts exactly
    /// what `verify_ed25519` accepts: the valid signature, and none of its single-bit
    /// corruptions or its s + L form.
    #[test]
    fn verification_matches_verify_ed25519() {
        use session_protocol::keys::verify_ed25519;
        let a = IdentityKey::from_seed_bytes(&[3; 32]);
        let b = IdentityKey::from_seed_bytes(&[4; 32]);
        let (a_hex, b_hex) = (hex::encode(a.ed25519_public()), hex::encode(b.ed25519_public()));
        let list = NodeList::new(vec![record(&a), record(&b)]);
        let h = sign_request(&a, &a_hex, &b_hex, "POST", "/node/v1/onion", 5_000, b"layer");
        let message = signed_message("POST", "/node/v1/onion", "5000", &a_hex, &b_hex, b"layer");
        let mut good = [0u8; 64];
        STANDARD.decode_slice(&h.signature, &mut good).unwrap();
        let mut signatures = vec![good];
        for bit in 0..512 {
            let mut sig = good;
            sig[bit / 8] ^= 1 << (bit % 8);
            signatures.push(sig);
        }
        // s + L: the same scalar, not reduced.
        let mut s_plus_l = good;
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (i, l) in l.iter().enumerate() {
            let sum = u16::from(good[32 + i]) + u16::from(*l) + carry;
            s_plus_l[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        signatures.push(s_plus_l);
        let mut accepted = 0;
        for (i, sig) in signatures.iter().enumerate() {
            let signature = STANDARD.encode(sig);
            let received = Received {
                method: "POST",
                path: "/node/v1/onion",
                pubkey: Some(&h.pubkey),
                timestamp: Some(&h.timestamp),
                signature: Some(&signature),
                mac: None,
                body: b"layer",
            };
            let ours = verify_request(&list, &ChannelKeys::new(&b), &b_hex, 5_000, &received);
            let expected = verify_ed25519(&a.ed25519_public(), &message, sig);
            assert_eq!(ours.is_ok(), expected, "signature {i}");
            if !expected {
                assert_eq!(ours, Err(AuthError::BadSignature), "signature {i}");
            }
            accepted += usize::from(expected);
        }
        assert_eq!(accepted, 1);
    }

    /// The MAC form: both nodes of a pair derive the same key; it authenticates the same
    /// message as the signature (path, body, recipient, time, sender) and only the pair can
    /// make it.
    #[test]
    fn mac_then_verify() {
        let a = IdentityKey::from_seed_bytes(&[5; 32]);
        let b = IdentityKey::from_seed_bytes(&[6; 32]);
        let c = IdentityKey::from_seed_bytes(&[7; 32]);
        let (a_hex, b_hex, c_hex) = (
            hex::encode(a.ed25519_public()),
            hex::encode(b.ed25519_public()),
            hex::encode(c.ed25519_public()),
        );
        let (ka, kb, kc) = (ChannelKeys::new(&a), ChannelKeys::new(&b), ChannelKeys::new(&c));
        assert_eq!(ka.key_for(&b.ed25519_public()), kb.key_for(&a.ed25519_public()));
        assert_ne!(ka.key_for(&b.ed25519_public()), ka.key_for(&c.ed25519_public()));
        assert_ne!(kc.key_for(&a.ed25519_public()), kb.key_for(&a.ed25519_public()));
        let list = NodeList::new(vec![record(&a), record(&b), record(&c)]);
        let h = mac_request(&ka, &a_hex, &b_hex, "POST", "/node/v1/onion", 1_000_000, b"layer").unwrap();
        let check = |keys: &ChannelKeys, own: &str, now: i64, path: &str, body: &[u8], h: &SignedHeaders| {
            let received = Received {
                method: "POST",
                path,
                pubkey: Some(&h.pubkey),
                timestamp: Some(&h.timestamp),
                signature: None,
                mac: Some(&h.signature),
                body,
            };
            verify_request(&list, keys, own, now, &received).map(str::to_owned)
        };
        assert_eq!(check(&kb, &b_hex, 1_000_000, "/node/v1/onion", b"layer", &h), Ok(a_hex.clone()));
        assert_eq!(check(&kb, &b_hex, 1_060_001, "/node/v1/onion", b"layer", &h), Err(AuthError::Stale));
        assert_eq!(
            check(&kb, &b_hex, 1_000_000, "/node/v1/onion", b"layeR", &h),
            Err(AuthError::BadSignature)
        );
        assert_eq!(check(&kb, &b_hex, 1_000_000, "/node/v1/rpc", b"layer", &h), Err(AuthError::BadSignature));
        // Replayed to another node, which has a different key with a.
        assert_eq!(
            check(&kc, &c_hex, 1_000_000, "/node/v1/onion", b"layer", &h),
            Err(AuthError::BadSignature)
        );
        // c claims to be a: c's key with b is not a's.
        let forged = mac_request(&kc, &a_hex, &b_hex, "POST", "/node/v1/onion", 1_000_000, b"layer").unwrap();
        assert_eq!(
            check(&kb, &b_hex, 1_000_000, "/node/v1/onion", b"layer", &forged),
            Err(AuthError::BadSignature)
        );
        let mut bad = h.clone();
        bad.signature = "AAAA".into();
        assert_eq!(
            check(&kb, &b_hex, 1_000_000, "/node/v1/onion", b"layer", &bad),
            Err(AuthError::Malformed)
        );
        let unlisted = NodeList::new(vec![record(&b)]);
        let received = Received {
            method: "POST",
            path: "/node/v1/onion",
            pubkey: Some(&h.pubkey),
            timestamp: Some(&h.timestamp),
            signature: None,
            mac: Some(&h.signature),
            body: b"layer",
        };
        assert_eq!(
            verify_request(&unlisted, &kb, &b_hex, 1_000_000, &received),
            Err(AuthError::UnknownSender)
        );
        // A recipient key that is not a point: no MAC, the sender signs instead.
        assert!(mac_request(&ka, &a_hex, &"ff".repeat(32), "POST", "/", 1, b"").is_none());
        assert!(mac_request(&ka, &a_hex, "not hex", "POST", "/", 1, b"").is_none());
    }
}
