//! ONS name decryption, push-notification decryption and the generic xchacha20 helpers (crypto §8.3).
//!
//! * ONS (Session name service) lookups return the owner's Session ID encrypted under a key derived
//!   from the (lower-cased) name: XChaCha20-Poly1305 with a key from BLAKE2b for current
//!   responses ([`decrypt_xchacha20`]), or `crypto_secretbox` with an Argon2id key and a zero
//!   nonce for legacy responses without a nonce ([`decrypt_legacy`]).
//! * Push notifications and the generic helpers use `nonce24 || XChaCha20-Poly1305(plaintext)`,
//!   without associated data ([`decrypt_push_notification`], [`xchacha20_encrypt`],
//!   [`xchacha20_decrypt`]).

use std::borrow::Cow;

use zeroize::Zeroizing;

use crate::id::SessionId;
pub use crate::primitives::{XCHACHA20_NONCE_LEN, XCHACHA20_TAG_LEN};
use crate::primitives::{blake2b_32, secretbox_open, xchacha20_open_into, xchacha20_seal_append};
/// Bytes added by [`xchacha20_encrypt`]: nonce plus tag.
pub const XCHACHA20_OVERHEAD: usize = XCHACHA20_NONCE_LEN + XCHACHA20_TAG_LEN;

/// Length of the Session ID an ONS response decrypts to.
const ONS_PLAINTEXT_LEN: usize = 33;

/// Argon2id parameters of legacy ONS responses: libsodium `crypto_pwhash` MODERATE limits
/// (opslimit 3, memlimit 268435456 bytes = 262144 KiB), one lane, 32-byte output (crypto §8.3).
const LEGACY_ARGON2_T_COST: u32 = 3;
const LEGACY_ARGON2_M_COST_KIB: u32 = 268_435_456 / 1024;
const LEGACY_ARGON2_LANES: u32 = 1;

/// Why an ONS response could not be decrypted (crypto §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnsError {
    /// The ciphertext did not authenticate under the key derived from the name (wrong name, or a
    /// corrupted or truncated response).
    #[error("ONS response did not decrypt under the key derived from the name")]
    DecryptionFailed,
    /// The response decrypted, but not to 33 bytes.
    #[error("ONS response decrypted to {len} bytes, expected a 33-byte Session ID")]
    WrongLength {
        /// Length of the decrypted plaintext.
        len: usize,
    },
    /// The response decrypted to 33 bytes that are not a Session ID (unknown prefix).
    #[error("ONS response decrypted to an invalid Session ID")]
    InvalidSessionId,
    /// Argon2id key derivation failed (legacy responses only; not expected with the fixed
    /// parameters).
    #[error("Argon2id key derivation failed")]
    KeyDerivation,
}

/// Why a `nonce24 || XChaCha20-Poly1305` payload could not be decrypted (crypto §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XChaChaError {
    /// Shorter than nonce plus tag (40 bytes).
    #[error("payload of {len} bytes is shorter than nonce plus tag (40 bytes)")]
    TooShort {
        /// Length of the payload.
        len: usize,
    },
    /// The ciphertext did not authenticate under the key.
    #[error("payload did not decrypt under the key")]
    DecryptionFailed,
}

/// BLAKE2b-32 of the lower-cased ONS name (crypto §8.3); the key of the hash that gives
/// [`xchacha20_key`].
pub fn name_hash(name: &str) -> [u8; 32] {
    blake2b_32(&[], &[lowercase(name).as_bytes()])
}

/// The key of current ONS responses: BLAKE2b-32(name; key = BLAKE2b-32(name)) over the
/// lower-cased name (crypto §8.3).
pub fn xchacha20_key(name: &str) -> [u8; 32] {
    let name = lowercase(name);
    let hash = blake2b_32(&[], &[name.as_bytes()]);
    blake2b_32(&hash, &[name.as_bytes()])
}

/// Decrypts a current ONS response (crypto §8.3): XChaCha20-Poly1305 of the 33-byte Session ID
/// under [`xchacha20_key`] with the response's 24-byte nonce. The name is lower-cased first.
pub fn decrypt_xchacha20(name: &str, ciphertext: &[u8], nonce: &[u8; 24]) -> Result<SessionId, OnsError> {
    let key = xchacha20_key(name);
    let mut plaintext = Zeroizing::new(Vec::new());
    xchacha20_open_into(&key, nonce, ciphertext, &mut plaintext).map_err(|_| OnsError::DecryptionFailed)?;
    session_id_from_plaintext(&plaintext)
}

/// The key of legacy ONS responses (crypto §8.3): Argon2id v1.3 over the lower-cased name, salt
/// 16 zero bytes, t_cost 3, 256 MiB, one lane, 32 bytes. Costs about 256 MiB of memory and a
/// noticeable amount of CPU time; call it once per lookup.
pub fn legacy_key(name: &str) -> Result<[u8; 32], OnsError> {
    let params =
        argon2::Params::new(LEGACY_ARGON2_M_COST_KIB, LEGACY_ARGON2_T_COST, LEGACY_ARGON2_LANES, Some(32))
            .map_err(|_| OnsError::KeyDerivation)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(lowercase(name).as_bytes(), &[0u8; 16], &mut key)
        .map_err(|_| OnsError::KeyDerivation)?;
    Ok(key)
}

/// Opens a legacy ONS response with a key from [`legacy_key`]: `crypto_secretbox_open_easy`
/// (`tag16 || ct`) with a 24-byte zero nonce; the plaintext must be a 33-byte Session ID
/// (crypto §8.3).
pub fn decrypt_legacy_with_key(key: &[u8; 32], ciphertext: &[u8]) -> Result<SessionId, OnsError> {
    let plaintext =
        Zeroizing::new(secretbox_open(key, &[0u8; 24], ciphertext).map_err(|_| OnsError::DecryptionFailed)?);
    session_id_from_plaintext(&plaintext)
}

/// Decrypts a legacy ONS response (no nonce; crypto §8.3): [`legacy_key`] then
/// [`decrypt_legacy_with_key`].
pub fn decrypt_legacy(name: &str, ciphertext: &[u8]) -> Result<SessionId, OnsError> {
    decrypt_legacy_with_key(&legacy_key(name)?, ciphertext)
}

/// Decrypts a push-notification payload `nonce24 || XChaCha20-Poly1305` with the 32-byte key
/// from the push-server registration and strips trailing NUL padding (crypto §8.3).
pub fn decrypt_push_notification(enc_key: &[u8; 32], payload: &[u8]) -> Result<Vec<u8>, XChaChaError> {
    let mut plaintext = xchacha20_decrypt(enc_key, payload)?;
    let unpadded = plaintext.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
    plaintext.truncate(unpadded);
    Ok(plaintext)
}

/// `nonce || XChaCha20-Poly1305(plaintext, nonce, key)`, no associated data (crypto §8.3).
/// The nonce must never repeat under one key; see [`xchacha20_encrypt_random`].
pub fn xchacha20_encrypt(key: &[u8; 32], plaintext: &[u8], nonce: &[u8; 24]) -> Vec<u8> {
    let mut out = Vec::with_capacity(XCHACHA20_OVERHEAD + plaintext.len());
    out.extend_from_slice(nonce);
    xchacha20_seal_append(key, nonce, plaintext, &mut out);
    out
}

/// [`xchacha20_encrypt`] with a fresh random nonce from `rng` (libsession `encrypt_xchacha20`).
pub fn xchacha20_encrypt_random<R: rand_core::CryptoRng + ?Sized>(
    key: &[u8; 32],
    plaintext: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    let mut nonce = [0u8; XCHACHA20_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    xchacha20_encrypt(key, plaintext, &nonce)
}

/// Decrypts `nonce24 || XChaCha20-Poly1305` under `key` and returns the plaintext exactly as
/// decrypted (crypto §8.3, libsession `decrypt_xchacha20`).
pub fn xchacha20_decrypt(key: &[u8; 32], data: &[u8]) -> Result<Vec<u8>, XChaChaError> {
    let (nonce, ciphertext) = data
        .split_first_chunk::<XCHACHA20_NONCE_LEN>()
        .filter(|(_, ct)| ct.len() >= XCHACHA20_TAG_LEN)
        .ok_or(XChaChaError::TooShort { len: data.len() })?;
    let mut plaintext = Vec::new();
    xchacha20_open_into(key, nonce, ciphertext, &mut plaintext)
        .map_err(|_| XChaChaError::DecryptionFailed)?;
    Ok(plaintext)
}

// ---- helpers ----

/// The ONS name in lower case; borrows when it already is.
fn lowercase(name: &str) -> Cow<'_, str> {
    if name.chars().any(char::is_uppercase) { Cow::Owned(name.to_lowercase()) } else { Cow::Borrowed(name) }
}

fn session_id_from_plaintext(plaintext: &[u8]) -> Result<SessionId, OnsError> {
    if plaintext.len() != ONS_PLAINTEXT_LEN {
        return Err(OnsError::WrongLength { len: plaintext.len() });
    }
    SessionId::from_bytes(plaintext).map_err(|_| OnsError::InvalidSessionId)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x42; 32];

    #[test]
    fn xchacha20_roundtrip_and_tamper() {
        let sealed = xchacha20_encrypt(&KEY, b"hello", &[7u8; 24]);
        assert_eq!(sealed.len(), 5 + XCHACHA20_OVERHEAD);
        assert_eq!(&sealed[..24], &[7u8; 24]);
        assert_eq!(xchacha20_decrypt(&KEY, &sealed).unwrap(), b"hello");
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert_eq!(xchacha20_decrypt(&KEY, &bad), Err(XChaChaError::DecryptionFailed));
        assert_eq!(xchacha20_decrypt(&KEY, &sealed[..39]), Err(XChaChaError::TooShort { len: 39 }));
        // Empty plaintext: exactly nonce plus tag.
        let empty = xchacha20_encrypt(&KEY, b"", &[1u8; 24]);
        assert_eq!(xchacha20_decrypt(&KEY, &empty).unwrap(), b"");
    }

    #[test]
    fn push_notification_strips_trailing_nuls_only() {
        let sealed = xchacha20_encrypt(&KEY, b"\0a\0b\0\0\0", &[3u8; 24]);
        assert_eq!(decrypt_push_notification(&KEY, &sealed).unwrap(), b"\0a\0b");
        let all_zero = xchacha20_encrypt(&KEY, &[0u8; 10], &[3u8; 24]);
        assert_eq!(decrypt_push_notification(&KEY, &all_zero).unwrap(), b"");
    }

    #[test]
    fn ons_name_is_lower_cased() {
        assert_eq!(xchacha20_key("TeSt"), xchacha20_key("test"));
        assert_eq!(name_hash("TEST"), name_hash("test"));
    }

    #[test]
    fn ons_rejects_wrong_plaintext_length_and_prefix() {
        let key = xchacha20_key("name");
        let nonce = [9u8; 24];
        let short = xchacha20_encrypt(&key, &[5u8; 32], &nonce);
        assert_eq!(decrypt_xchacha20("name", &short[24..], &nonce), Err(OnsError::WrongLength { len: 32 }));
        let mut bad_prefix = [0u8; 33];
        bad_prefix[0] = 0x99;
        let sealed = xchacha20_encrypt(&key, &bad_prefix, &nonce);
        assert_eq!(decrypt_xchacha20("name", &sealed[24..], &nonce), Err(OnsError::InvalidSessionId));
        assert_eq!(decrypt_xchacha20("other", &sealed[24..], &nonce), Err(OnsError::DecryptionFailed));
    }

    #[test]
    fn legacy_open_with_key() {
        let key = [0x11; 32];
        let mut id = [0x22u8; 33];
        id[0] = 0x05;
        let boxed = crate::primitives::secretbox_seal(&key, &[0u8; 24], &id);
        assert_eq!(decrypt_legacy_with_key(&key, &boxed).unwrap().to_bytes(), id);
        assert_eq!(decrypt_legacy_with_key(&[0x12; 32], &boxed), Err(OnsError::DecryptionFailed));
        assert_eq!(decrypt_legacy_with_key(&key, &boxed[..10]), Err(OnsError::DecryptionFailed));
    }
}
