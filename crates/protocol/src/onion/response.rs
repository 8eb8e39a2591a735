//! Onion responses (network §7.4 step 4, §7.6): the destination encrypts its reply once, with the
//! innermost layer's key, and it travels back unchanged.
//!
//! * Snode destination: HTTP 200, body = base64(ciphertext) (libsession also accepts
//!   `{"result":"<b64>"}`, and the client may have asked for raw bytes with `"base64": false`);
//!   the plaintext is JSON `{"status":n,"body":…}`.
//! * Server destination (v4): HTTP 200, body = raw ciphertext; the plaintext is a v4 response
//!   ([`super::v4`]).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::hop::{EncType, HopError, HopKey, MAX_NONCE_LEN};
use crate::primitives::x25519;

/// Standard alphabet, padding optional (oxenc's `from_base64` is as lenient).
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What kind of destination a request went to; it decides how the response body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// A snode: base64 (or `{"result": b64}`, or raw when `base64:false` was asked for).
    Snode,
    /// A server over v4: raw ciphertext.
    Server,
}

/// A response could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The destination's X25519 key is of small order.
    #[error("destination X25519 key is of small order")]
    WeakPublicKey,
    /// The body is too short or does not authenticate under the request's key.
    #[error("onion response did not decrypt")]
    DecryptionFailed,
}

impl From<HopError> for ResponseError {
    fn from(e: HopError) -> Self {
        match e {
            HopError::WeakPublicKey => ResponseError::WeakPublicKey,
            _ => ResponseError::DecryptionFailed,
        }
    }
}

/// What the client keeps from building a request to decrypt its response (§7.3 step 5): the
/// innermost ephemeral key pair, the destination's X25519 key, the type, and the derived key.
#[derive(Clone)]
pub struct ResponseContext {
    key: HopKey,
    ephemeral_secret: Zeroizing<[u8; 32]>,
    ephemeral_public: [u8; 32],
    destination_x25519: [u8; 32],
    kind: DestinationKind,
}

impl fmt::Debug for ResponseContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseContext")
            .field("enc_type", &self.key.enc_type())
            .field("ephemeral_public", &hex::encode(self.ephemeral_public))
            .field("destination_x25519", &hex::encode(self.destination_x25519))
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ResponseContext {
    /// Rebuilds the context from its parts (e.g. kept across a restart).
    pub fn new(
        enc_type: EncType,
        ephemeral_secret: &[u8; 32],
        ephemeral_public: &[u8; 32],
        destination_x25519: &[u8; 32],
        kind: DestinationKind,
    ) -> Result<Self, ResponseError> {
        let key = HopKey::for_client(enc_type, ephemeral_secret, ephemeral_public, destination_x25519)?;
        Ok(Self::with_key(
            key,
            Zeroizing::new(*ephemeral_secret),
            *ephemeral_public,
            *destination_x25519,
            kind,
        ))
    }

    pub(crate) fn with_key(
        key: HopKey,
        ephemeral_secret: Zeroizing<[u8; 32]>,
        ephemeral_public: [u8; 32],
        destination_x25519: [u8; 32],
        kind: DestinationKind,
    ) -> Self {
        Self { key, ephemeral_secret, ephemeral_public, destination_x25519, kind }
    }

    /// The encryption type of the request (and so of the response).
    pub fn enc_type(&self) -> EncType {
        self.key.enc_type()
    }

    /// The innermost ephemeral public key `A0`.
    pub fn ephemeral_public(&self) -> &[u8; 32] {
        &self.ephemeral_public
    }

    /// The innermost ephemeral secret `a0`.
    pub fn ephemeral_secret(&self) -> &[u8; 32] {
        &self.ephemeral_secret
    }

    /// The destination's X25519 public key.
    pub fn destination_x25519(&self) -> &[u8; 32] {
        &self.destination_x25519
    }

    /// Snode or server.
    pub fn kind(&self) -> DestinationKind {
        self.kind
    }

    /// The layer key shared with the destination.
    pub fn key(&self) -> &HopKey {
        &self.key
    }

    /// Decrypts a raw response ciphertext (`nonce || ct || tag`). As libsession does, an xchacha20
    /// response that fails is retried as aes-gcm (a workaround for the legacy push server).
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, ResponseError> {
        match self.key.decrypt(ciphertext) {
            Ok(plaintext) => Ok(plaintext),
            Err(_) if self.key.enc_type() == EncType::XChaCha20 => {
                let shared = x25519(&self.ephemeral_secret, &self.destination_x25519)
                    .map_err(|_| ResponseError::WeakPublicKey)?;
                let gcm = HopKey::from_shared_secret(
                    EncType::AesGcm,
                    &shared,
                    &self.ephemeral_public,
                    &self.destination_x25519,
                );
                Ok(gcm.decrypt(ciphertext)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Decrypts an HTTP 200 response body as §7.6 describes it. For a snode destination: a JSON
    /// `{"result": "<b64>"}` wrapper, else base64 text (padding optional), else raw bytes (when the
    /// request set `base64:false`). For a server destination: raw bytes.
    pub fn decrypt_body(&self, body: &[u8]) -> Result<Vec<u8>, ResponseError> {
        if self.kind == DestinationKind::Server {
            return self.decrypt(body);
        }
        let text = body.trim_ascii();
        if text.first() == Some(&b'{')
            && let Some(decoded) = result_wrapper(text)
            && let Ok(plaintext) = self.decrypt(&decoded)
        {
            return Ok(plaintext);
        }
        if let Ok(decoded) = BASE64_LENIENT.decode(text)
            && let Ok(plaintext) = self.decrypt(&decoded)
        {
            return Ok(plaintext);
        }
        self.decrypt(body)
    }
}

/// Node side (§7.4 step 4): encrypts a reply with the layer key and, unless the client asked for
/// `base64:false`, base64-encodes it (standard alphabet, padded).
pub fn seal_response(key: &HopKey, nonce: &[u8; MAX_NONCE_LEN], plaintext: &[u8], base64: bool) -> Vec<u8> {
    let ciphertext = key.encrypt_with_nonce(nonce, plaintext);
    if base64 { STANDARD.encode(&ciphertext).into_bytes() } else { ciphertext }
}

/// The base64 inside `{"result": "<b64>"}`, if that is what `text` is.
fn result_wrapper(text: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Wrapper<'a> {
        #[serde(borrow)]
        result: std::borrow::Cow<'a, str>,
    }
    let wrapper: Wrapper<'_> = serde_json::from_slice(text).ok()?;
    BASE64_LENIENT.decode(wrapper.result.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::x25519_base;

    fn ctx(enc: EncType, kind: DestinationKind) -> (ResponseContext, HopKey) {
        let a = [3u8; 32];
        let d = [4u8; 32];
        let (pa, pd) = (x25519_base(&a), x25519_base(&d));
        let c = ResponseContext::new(enc, &a, &pa, &pd, kind).unwrap();
        let node = HopKey::for_node(enc, &d, &pd, &pa).unwrap();
        (c, node)
    }

    #[test]
    fn all_body_encodings() {
        for enc in [EncType::AesGcm, EncType::XChaCha20] {
            let (c, node) = ctx(enc, DestinationKind::Snode);
            let b64 = seal_response(&node, &[9; 24], b"{\"status\":200}", true);
            assert_eq!(c.decrypt_body(&b64).unwrap(), b"{\"status\":200}");
            let raw = seal_response(&node, &[9; 24], b"x", false);
            assert_eq!(c.decrypt_body(&raw).unwrap(), b"x");
            let wrapped = format!("{{\"result\":\"{}\"}}", String::from_utf8(b64.clone()).unwrap());
            assert_eq!(c.decrypt_body(wrapped.as_bytes()).unwrap(), b"{\"status\":200}");
            let unpadded = b64.iter().copied().filter(|&b| b != b'=').collect::<Vec<_>>();
            assert_eq!(c.decrypt_body(&unpadded).unwrap(), b"{\"status\":200}");
            assert_eq!(c.decrypt_body(b"garbage"), Err(ResponseError::DecryptionFailed));
        }
        let (c, node) = ctx(EncType::XChaCha20, DestinationKind::Server);
        let raw = seal_response(&node, &[1; 24], b"l1:ae", false);
        assert_eq!(c.decrypt_body(&raw).unwrap(), b"l1:ae");
    }

    #[test]
    fn xchacha_falls_back_to_gcm() {
        let (c, _) = ctx(EncType::XChaCha20, DestinationKind::Snode);
        let (_, gcm_node) = ctx(EncType::AesGcm, DestinationKind::Snode);
        let ct = gcm_node.encrypt_with_nonce(&[5; 24], b"push");
        assert_eq!(c.decrypt(&ct).unwrap(), b"push");
    }
}
