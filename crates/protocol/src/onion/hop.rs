//! Onion hop encryption (network §7.2, crypto §8.4; libsession `hop_encryption.cpp`, SS
//! `channel_encryption.cpp`).
//!
//! Each layer is encrypted to a hop's X25519 key `B` from a client ephemeral pair `(a, A)`:
//!
//! * `aes-gcm`: key = HMAC-SHA256(key = `"LOKI"`, X25519(a, B)); output `iv12 || ct || tag16`.
//! * `xchacha20`: key = BLAKE2b-32(X25519(a, B) || A || B) (client key first); output
//!   `nonce24 || ct || tag16`.
//!
//! Both keys are symmetric: the node derives the same key from `(b, A)` and uses it for its reply.

use std::fmt;
use std::str::FromStr;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use crate::primitives::{
    WeakPublicKey, X25519Secret, blake2b_32, x25519, xchacha20_open_into, xchacha20_seal_in_place,
};

/// Length of the authentication tag appended by both AEADs.
pub const TAG_LEN: usize = 16;

/// The largest nonce either type uses; [`HopKey::encrypt_with_nonce`] takes this many bytes and
/// aes-gcm uses only the first 12.
pub const MAX_NONCE_LEN: usize = 24;

/// The hop encryption type named by an `enc_type` JSON field (network §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncType {
    /// XChaCha20-Poly1305 with a BLAKE2b-derived key: `"xchacha20"` (alias
    /// `"xchacha20-poly1305"`). libsession's default, and ours when building.
    #[default]
    XChaCha20,
    /// AES-256-GCM with an HMAC("LOKI")-derived key: `"aes-gcm"` (alias `"gcm"`). What a node
    /// assumes when a layer has no `enc_type` ([`EncType::WIRE_DEFAULT`]).
    AesGcm,
}

/// An `enc_type` string that this implementation does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncTypeError {
    /// `aes-cbc`/`cbc`: a legacy storage-server type that current clients never send.
    #[error("unsupported legacy encryption type aes-cbc")]
    Unsupported,
    /// Any other string.
    #[error("unknown encryption type")]
    Unknown,
}

impl EncType {
    /// The type a node uses when a layer's JSON has no `enc_type` (network §7.4).
    pub const WIRE_DEFAULT: EncType = EncType::AesGcm;

    /// Parses an `enc_type` value as upstream does: `xchacha20` / `xchacha20-poly1305`,
    /// `aes-gcm` / `gcm` (exact, case-sensitive). `aes-cbc` / `cbc` are recognised but refused.
    pub fn parse(text: &str) -> Result<Self, EncTypeError> {
        match text {
            "xchacha20" | "xchacha20-poly1305" => Ok(EncType::XChaCha20),
            "aes-gcm" | "gcm" => Ok(EncType::AesGcm),
            "aes-cbc" | "cbc" => Err(EncTypeError::Unsupported),
            _ => Err(EncTypeError::Unknown),
        }
    }

    /// The canonical wire name: `"xchacha20"` or `"aes-gcm"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EncType::XChaCha20 => "xchacha20",
            EncType::AesGcm => "aes-gcm",
        }
    }

    /// Length of the nonce/IV that prefixes a ciphertext: 24 or 12.
    pub const fn nonce_len(self) -> usize {
        match self {
            EncType::XChaCha20 => 24,
            EncType::AesGcm => 12,
        }
    }

    /// Bytes a ciphertext adds to its plaintext (nonce + tag); also the minimum ciphertext length.
    pub const fn overhead(self) -> usize {
        self.nonce_len() + TAG_LEN
    }
}

impl FromStr for EncType {
    type Err = EncTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for EncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hop operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HopError {
    /// The peer's X25519 key is of small order (the shared secret is all zero).
    #[error("peer X25519 key is of small order")]
    WeakPublicKey,
    /// The ciphertext is shorter than nonce + tag, or does not authenticate under the key.
    #[error("hop ciphertext did not decrypt")]
    DecryptionFailed,
}

impl From<WeakPublicKey> for HopError {
    fn from(_: WeakPublicKey) -> Self {
        HopError::WeakPublicKey
    }
}

/// The symmetric key of one onion layer, with its encryption type (network §7.2). Used in both
/// directions: the client encrypts the layer and decrypts the reply; the node does the reverse.
#[derive(Clone, PartialEq, Eq)]
pub struct HopKey {
    key: Zeroizing<[u8; 32]>,
    enc_type: EncType,
}

impl fmt::Debug for HopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HopKey").field("enc_type", &self.enc_type).finish_non_exhaustive()
    }
}

impl HopKey {
    /// Derives the key from an X25519 shared secret and both public keys (§7.2). `client_public`
    /// is the ephemeral `A`, `node_public` the hop's `B`; only xchacha20 uses them.
    pub fn from_shared_secret(
        enc_type: EncType,
        shared: &[u8; 32],
        client_public: &[u8; 32],
        node_public: &[u8; 32],
    ) -> Self {
        let key = match enc_type {
            EncType::AesGcm => {
                let mut mac =
                    <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"LOKI").expect("HMAC accepts any key");
                mac.update(shared);
                let mut out = [0u8; 32];
                out.copy_from_slice(&mac.finalize().into_bytes());
                out
            }
            EncType::XChaCha20 => blake2b_32(&[], &[shared, client_public, node_public]),
        };
        Self { key: Zeroizing::new(key), enc_type }
    }

    /// The client's key for a layer to `node_public`, from its ephemeral pair `(a, A)`.
    pub fn for_client(
        enc_type: EncType,
        client_secret: &[u8; 32],
        client_public: &[u8; 32],
        node_public: &[u8; 32],
    ) -> Result<Self, HopError> {
        let shared = x25519(client_secret, node_public)?;
        Ok(Self::from_shared_secret(enc_type, &shared, client_public, node_public))
    }

    /// The node's key for a layer sent with ephemeral key `client_public`.
    pub fn for_node(
        enc_type: EncType,
        node_secret: &[u8; 32],
        node_public: &[u8; 32],
        client_public: &[u8; 32],
    ) -> Result<Self, HopError> {
        let shared = x25519(node_secret, client_public)?;
        Ok(Self::from_shared_secret(enc_type, &shared, client_public, node_public))
    }

    /// [`HopKey::for_node`] with the node's prepared key (what a node keeps: it saves preparing
    /// the key, which costs a public-key computation, per request).
    pub fn for_node_key(
        enc_type: EncType,
        node_key: &X25519Secret,
        client_public: &[u8; 32],
    ) -> Result<Self, HopError> {
        let shared = node_key.agree(client_public)?;
        Ok(Self::from_shared_secret(enc_type, &shared, client_public, node_key.public()))
    }

    /// Wraps raw key bytes (e.g. a key kept from an earlier derivation).
    pub fn from_bytes(enc_type: EncType, key: [u8; 32]) -> Self {
        Self { key: Zeroizing::new(key), enc_type }
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The encryption type this key is for.
    pub fn enc_type(&self) -> EncType {
        self.enc_type
    }

    /// Encrypts with a caller-chosen nonce: `nonce || ciphertext || tag`. aes-gcm uses the first
    /// 12 bytes of `nonce` as its IV; xchacha20 uses all 24.
    pub fn encrypt_with_nonce(&self, nonce: &[u8; MAX_NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.enc_type.overhead() + plaintext.len());
        out.extend_from_slice(&nonce[..self.enc_type.nonce_len()]);
        out.extend_from_slice(plaintext);
        self.seal_tail(&mut out, 0);
        out
    }

    /// Encrypts with a fresh random nonce from `rng`.
    pub fn encrypt<R: rand_core::CryptoRng + ?Sized>(&self, plaintext: &[u8], rng: &mut R) -> Vec<u8> {
        let mut nonce = [0u8; MAX_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.encrypt_with_nonce(&nonce, plaintext)
    }

    /// Decrypts `nonce || ciphertext || tag`.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, HopError> {
        let nonce_len = self.enc_type.nonce_len();
        if ciphertext.len() < nonce_len + TAG_LEN {
            return Err(HopError::DecryptionFailed);
        }
        let (nonce, sealed) = ciphertext.split_at(nonce_len);
        match self.enc_type {
            EncType::AesGcm => {
                let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
                let mut out = vec![0u8; body.len()];
                let buf = InOutBuf::new(body, &mut out).map_err(|_| HopError::DecryptionFailed)?;
                let cipher = Aes256Gcm::new(&(*self.key).into());
                let nonce: [u8; 12] = nonce.try_into().map_err(|_| HopError::DecryptionFailed)?;
                let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| HopError::DecryptionFailed)?;
                cipher
                    .decrypt_inout_detached(&nonce.into(), &[], buf, &tag.into())
                    .map_err(|_| HopError::DecryptionFailed)?;
                Ok(out)
            }
            EncType::XChaCha20 => {
                let nonce: &[u8; 24] = nonce.try_into().map_err(|_| HopError::DecryptionFailed)?;
                let mut out = Vec::new();
                xchacha20_open_into(&self.key, nonce, sealed, &mut out)
                    .map_err(|_| HopError::DecryptionFailed)?;
                Ok(out)
            }
        }
    }

    /// In-place sealing used by the builder: `buf[start..start + nonce_len]` already holds the
    /// nonce and everything after it is plaintext. Encrypts the plaintext in place and appends
    /// the tag.
    pub(crate) fn seal_tail(&self, buf: &mut Vec<u8>, start: usize) {
        let msg_start = start + self.enc_type.nonce_len();
        match self.enc_type {
            EncType::AesGcm => {
                let (head, msg) = buf.split_at_mut(msg_start);
                let nonce: [u8; 12] = head[start..].try_into().expect("nonce slice is 12 bytes");
                let tag = Aes256Gcm::new(&(*self.key).into())
                    .encrypt_inout_detached(&nonce.into(), &[], msg.into())
                    .expect("AES-GCM accepts messages up to 64 GiB");
                buf.extend_from_slice(&tag);
            }
            EncType::XChaCha20 => {
                let nonce: [u8; 24] = buf[start..msg_start].try_into().expect("nonce slice is 24 bytes");
                xchacha20_seal_in_place(&self.key, &nonce, buf, msg_start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B_SECRET: &str = "8fcd8ad3a15c76f76f1c56dff0c529999f8c59b4acda79e05666e54d5727dca1";
    const B_PUBLIC: &str = "caea52c5b0c316d85ffb53ea536826618b13dee40685f166f632653114526a78";
    const A_SECRET: &str = "ccc335912da8939e2b44816728a5a4773063efa82bf7ae2d42a0abfa2caa452d";
    const A_PUBLIC: &str = "bbdfc83022d0aff084a6f0c529a93d1c4d728bf7e41199afed0e01ae70d20540";

    fn h32(s: &str) -> [u8; 32] {
        crate::primitives::hex_array(s).unwrap()
    }

    #[test]
    fn parse_enc_type_names() {
        assert_eq!(EncType::parse("xchacha20"), Ok(EncType::XChaCha20));
        assert_eq!(EncType::parse("xchacha20-poly1305"), Ok(EncType::XChaCha20));
        assert_eq!(EncType::parse("aes-gcm"), Ok(EncType::AesGcm));
        assert_eq!(EncType::parse("gcm"), Ok(EncType::AesGcm));
        assert_eq!(EncType::parse("cbc"), Err(EncTypeError::Unsupported));
        assert_eq!(EncType::parse("AES-GCM"), Err(EncTypeError::Unknown));
        assert_eq!(EncType::default(), EncType::XChaCha20);
        assert_eq!(EncType::WIRE_DEFAULT.to_string(), "aes-gcm");
    }

    #[test]
    fn client_and_node_keys_agree() {
        assert_eq!(crate::primitives::x25519_base(&h32(A_SECRET)), h32(A_PUBLIC));
        for enc in [EncType::AesGcm, EncType::XChaCha20] {
            let c = HopKey::for_client(enc, &h32(A_SECRET), &h32(A_PUBLIC), &h32(B_PUBLIC)).unwrap();
            let n = HopKey::for_node(enc, &h32(B_SECRET), &h32(B_PUBLIC), &h32(A_PUBLIC)).unwrap();
            assert_eq!(c, n);
            let ct = c.encrypt_with_nonce(&[7u8; 24], b"Hello world");
            assert_eq!(ct.len(), 11 + enc.overhead());
            assert_eq!(n.decrypt(&ct).unwrap(), b"Hello world");
            let mut bad = ct.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(n.decrypt(&bad), Err(HopError::DecryptionFailed));
            assert_eq!(n.decrypt(&ct[..enc.overhead() - 1]), Err(HopError::DecryptionFailed));
            assert_eq!(n.decrypt(&ct[..enc.overhead()]), Err(HopError::DecryptionFailed));
        }
    }

    #[test]
    fn upstream_ciphertexts_decrypt() {
        let gcm =
            hex::decode("1eb6ae1cd72f60999486365749bd5dc15cc0b6a2a44d7d063daa5e93722f0c025fd00306403b61")
                .unwrap();
        let k = HopKey::for_node(EncType::AesGcm, &h32(B_SECRET), &h32(B_PUBLIC), &h32(A_PUBLIC)).unwrap();
        assert_eq!(k.decrypt(&gcm).unwrap(), b"Hello world");
    }

    #[test]
    fn weak_key_rejected() {
        let r = HopKey::for_node(EncType::AesGcm, &h32(B_SECRET), &h32(B_PUBLIC), &[0u8; 32]);
        assert_eq!(r, Err(HopError::WeakPublicKey));
    }

    #[test]
    fn debug_hides_key() {
        let k = HopKey::from_bytes(EncType::AesGcm, [0xab; 32]);
        assert!(!format!("{k:?}").contains("ab"));
    }
}
