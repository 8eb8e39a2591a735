//! SOGS (community server) request authentication headers (crypto §5.4), as session-desktop
//! builds them.
//!
//! The signed bytes are
//! `server_pk || nonce16 || decimal(timestamp) || method || path [|| BLAKE2b-64(body)]`, signed
//! either with the 15-blinded key (desktop nonce, crypto §5.3) or with the plain Ed25519 key.
//! The nonce and the timestamp are arguments: the caller supplies randomness and time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::blinding::{BlindingError, NonceStyle, blind15_key_pair, blind15_sign_with};
use crate::keys::IdentityKey;
use crate::primitives::blake2b_n;

/// Header carrying the signing key: `15` + hex(kA) or `00` + hex(Ed25519 public key).
pub const HEADER_PUBKEY: &str = "X-SOGS-Pubkey";
/// Header carrying the decimal unix timestamp in seconds.
pub const HEADER_TIMESTAMP: &str = "X-SOGS-Timestamp";
/// Header carrying the base64 16-byte nonce.
pub const HEADER_NONCE: &str = "X-SOGS-Nonce";
/// Header carrying the base64 64-byte signature.
pub const HEADER_SIGNATURE: &str = "X-SOGS-Signature";

/// The parts of an HTTP request that the SOGS signature covers (crypto §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SogsRequest<'a> {
    /// HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// Path and query string exactly as sent, e.g. `/room/x/messages/recent?limit=25`.
    pub path: &'a str,
    /// Request body, if any. An empty body is treated as no body (the server only hashes a
    /// non-empty body).
    pub body: Option<&'a [u8]>,
}

/// Which key signs the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SogsKey {
    /// The 15-blinded key for this server (`X-SOGS-Pubkey` starts with `15`).
    Blinded15,
    /// The account's Ed25519 key (`X-SOGS-Pubkey` starts with `00`).
    Unblinded,
}

/// The four authentication header values and the bytes that were signed (crypto §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SogsAuth {
    /// `X-SOGS-Pubkey`: 66 hex characters.
    pub pubkey_header: String,
    /// `X-SOGS-Timestamp`: decimal unix seconds.
    pub timestamp: String,
    /// `X-SOGS-Nonce`: standard base64 (with padding) of the 16-byte nonce.
    pub nonce_b64: String,
    /// `X-SOGS-Signature`: standard base64 (with padding) of the 64-byte signature.
    pub signature_b64: String,
    /// The signed bytes (see [`signed_message`]).
    pub signed_message: Vec<u8>,
}

impl SogsAuth {
    /// The headers as `(name, value)` pairs, in the order pubkey, timestamp, nonce, signature.
    pub fn headers(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_PUBKEY, &self.pubkey_header),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_NONCE, &self.nonce_b64),
            (HEADER_SIGNATURE, &self.signature_b64),
        ]
    }
}

/// Builds the SOGS authentication headers for one request (crypto §5.4). Blinded requests are
/// signed with the desktop nonce ([`NonceStyle::Desktop`]), unblinded ones with plain Ed25519.
pub fn auth_headers(
    identity: &IdentityKey,
    server_pk: &[u8; 32],
    nonce: &[u8; 16],
    timestamp: u64,
    request: &SogsRequest<'_>,
    key: SogsKey,
) -> Result<SogsAuth, BlindingError> {
    let signed = signed_message(server_pk, nonce, timestamp, request);
    let (pubkey_header, signature) = match key {
        SogsKey::Blinded15 => {
            let key_pair = blind15_key_pair(identity, server_pk)?;
            let signature = blind15_sign_with(identity, &key_pair, &signed, NonceStyle::Desktop)?;
            (format!("15{}", hex::encode(key_pair.public_key())), signature)
        }
        SogsKey::Unblinded => {
            (format!("00{}", hex::encode(identity.ed25519_public())), identity.sign(&signed))
        }
    };
    Ok(SogsAuth {
        pubkey_header,
        timestamp: timestamp.to_string(),
        nonce_b64: STANDARD.encode(nonce),
        signature_b64: STANDARD.encode(signature),
        signed_message: signed,
    })
}

/// The bytes a SOGS request signature covers (crypto §5.4):
/// `server_pk || nonce || decimal(timestamp) || method || path [|| BLAKE2b-64(body)]`, the body
/// hash only for a non-empty body.
pub fn signed_message(
    server_pk: &[u8; 32],
    nonce: &[u8; 16],
    timestamp: u64,
    request: &SogsRequest<'_>,
) -> Vec<u8> {
    let ts = timestamp.to_string();
    let body_hash = request.body.filter(|b| !b.is_empty()).map(|b| blake2b_n::<64>(&[], &[b]));
    let mut out = Vec::with_capacity(32 + 16 + ts.len() + request.method.len() + request.path.len() + 64);
    out.extend_from_slice(server_pk);
    out.extend_from_slice(nonce);
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(request.method.as_bytes());
    out.extend_from_slice(request.path.as_bytes());
    if let Some(hash) = body_hash {
        out.extend_from_slice(&hash);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::verify_ed25519;

    #[test]
    fn empty_body_is_no_body() {
        let with_empty = SogsRequest { method: "GET", path: "/x", body: Some(b"") };
        let without = SogsRequest { method: "GET", path: "/x", body: None };
        assert_eq!(
            signed_message(&[1; 32], &[2; 16], 3, &with_empty),
            signed_message(&[1; 32], &[2; 16], 3, &without)
        );
        let with_body = SogsRequest { method: "GET", path: "/x", body: Some(b"b") };
        assert_eq!(signed_message(&[1; 32], &[2; 16], 3, &with_body).len(), 32 + 16 + 1 + 3 + 2 + 64);
    }

    #[test]
    fn signatures_verify_under_header_key() {
        let identity = IdentityKey::from_seed_bytes(&[5; 32]);
        let request = SogsRequest { method: "POST", path: "/room/r/message", body: Some(b"{}") };
        for key in [SogsKey::Blinded15, SogsKey::Unblinded] {
            let auth = auth_headers(&identity, &[7; 32], &[8; 16], 1_700_000_000, &request, key).unwrap();
            let pk: [u8; 32] = hex::decode(&auth.pubkey_header[2..]).unwrap().try_into().unwrap();
            let sig = STANDARD.decode(&auth.signature_b64).unwrap();
            assert!(verify_ed25519(&pk, &auth.signed_message, &sig));
            assert_eq!(auth.headers()[1], (HEADER_TIMESTAMP, "1700000000"));
        }
    }
}
