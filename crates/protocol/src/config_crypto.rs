//! Config-message encryption and padding (crypto §8.2, libsession `config/encrypt.cpp`).
//!
//! Config messages (user configs and the groups v2 Info/Members configs) are encrypted
//! deterministically:
//!
//! * key = BLAKE2b-32(`key_base || BE-u64(len(plaintext)) || domain`) (unkeyed);
//! * nonce = BLAKE2b-24(plaintext; key = `"libsessionutil-config-encrypted-" || domain`);
//! * output = `XChaCha20-Poly1305(plaintext, nonce, key) || nonce` ([`ENCRYPT_OVERHEAD`] = 40
//!   bytes), no associated data.
//!
//! The domain (for example `"groups::Info"`) is 1..=24 bytes. Callers pad the plaintext with
//! leading NULs to [`padded_size`] before encrypting ([`pad_message`]); `encrypt` itself adds
//! no padding.

use zeroize::Zeroizing;

use crate::primitives::{
    XCHACHA20_NONCE_LEN, XCHACHA20_TAG_LEN, blake2b_32, blake2b_n, xchacha20_open_into, xchacha20_seal_append,
};

/// Bytes [`encrypt`] adds: the Poly1305 tag and the appended 24-byte nonce.
pub const ENCRYPT_OVERHEAD: usize = XCHACHA20_TAG_LEN + XCHACHA20_NONCE_LEN;
/// Shortest allowed domain, in bytes.
pub const MIN_DOMAIN_LEN: usize = 1;
/// Longest allowed domain, in bytes.
pub const MAX_DOMAIN_LEN: usize = 24;

/// Prefix of the BLAKE2b key that derives the nonce; the domain follows it.
const NONCE_KEY_PREFIX: &[u8; 32] = b"libsessionutil-config-encrypted-";

/// Why config encryption or decryption failed (crypto §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigCryptoError {
    /// The domain is not 1..=24 bytes long.
    #[error("config encryption domain of {len} bytes is not 1..=24 bytes")]
    InvalidDomain {
        /// Length of the domain in bytes.
        len: usize,
    },
    /// The ciphertext is shorter than tag plus nonce (40 bytes).
    #[error("config ciphertext of {len} bytes is shorter than tag plus nonce (40 bytes)")]
    TooShort {
        /// Length of the ciphertext.
        len: usize,
    },
    /// The ciphertext did not authenticate under the key for this key base and domain.
    #[error("config ciphertext did not decrypt under the derived key")]
    DecryptionFailed,
}

/// Encrypts a config message: `XChaCha20-Poly1305(message) || nonce`, 40 bytes longer than the
/// message, deterministic in (key_base, domain, message) (crypto §8.2).
pub fn encrypt(key_base: &[u8; 32], domain: &str, message: &[u8]) -> Result<Vec<u8>, ConfigCryptoError> {
    let nonce = nonce(domain, message)?;
    let key = derive_key(key_base, domain, message.len())?;
    let mut out = Vec::with_capacity(message.len() + ENCRYPT_OVERHEAD);
    xchacha20_seal_append(&key, &nonce, message, &mut out);
    out.extend_from_slice(&nonce);
    Ok(out)
}

/// Decrypts a config message produced by [`encrypt`] (crypto §8.2). The plaintext is returned
/// as decrypted, padding included.
pub fn decrypt(key_base: &[u8; 32], domain: &str, ciphertext: &[u8]) -> Result<Vec<u8>, ConfigCryptoError> {
    check_domain(domain)?;
    let (sealed, nonce) = ciphertext
        .split_last_chunk::<XCHACHA20_NONCE_LEN>()
        .filter(|(sealed, _)| sealed.len() >= XCHACHA20_TAG_LEN)
        .ok_or(ConfigCryptoError::TooShort { len: ciphertext.len() })?;
    let key = derive_key(key_base, domain, sealed.len() - XCHACHA20_TAG_LEN)?;
    let mut plaintext = Vec::new();
    xchacha20_open_into(&key, nonce, sealed, &mut plaintext)
        .map_err(|_| ConfigCryptoError::DecryptionFailed)?;
    Ok(plaintext)
}

/// The per-message key: BLAKE2b-32(`key_base || BE-u64(plaintext_len) || domain`), unkeyed
/// (crypto §8.2).
pub fn derive_key(
    key_base: &[u8; 32],
    domain: &str,
    plaintext_len: usize,
) -> Result<Zeroizing<[u8; 32]>, ConfigCryptoError> {
    check_domain(domain)?;
    let len = u64::try_from(plaintext_len).unwrap_or(u64::MAX).to_be_bytes();
    Ok(Zeroizing::new(blake2b_32(&[], &[key_base, &len, domain.as_bytes()])))
}

/// The deterministic nonce: BLAKE2b-24(message; key = `"libsessionutil-config-encrypted-" ||
/// domain`) (crypto §8.2).
pub fn nonce(domain: &str, message: &[u8]) -> Result<[u8; 24], ConfigCryptoError> {
    check_domain(domain)?;
    let mut key = [0u8; NONCE_KEY_PREFIX.len() + MAX_DOMAIN_LEN];
    let key_len = NONCE_KEY_PREFIX.len() + domain.len();
    let (prefix, rest) = key.split_at_mut(NONCE_KEY_PREFIX.len());
    prefix.copy_from_slice(NONCE_KEY_PREFIX);
    rest.get_mut(..domain.len()).expect("domain length checked").copy_from_slice(domain.as_bytes());
    Ok(blake2b_n::<24>(key.get(..key_len).expect("within the buffer"), &[message]))
}

/// The size a config plaintext of `size` bytes is padded to, given `overhead` bytes added later
/// (crypto §8.2): `size + overhead` is rounded up to a multiple of 256 below 5120, 1024 below
/// 20480, 2048 below 40960 and 5120 otherwise, and `overhead` is subtracted again. Saturates
/// instead of overflowing for sizes near `usize::MAX`.
pub fn padded_size(size: usize, overhead: usize) -> usize {
    let total = size.saturating_add(overhead);
    let chunk = if total < 5120 {
        256
    } else if total < 20480 {
        1024
    } else if total < 40960 {
        2048
    } else {
        5120
    };
    total.div_ceil(chunk).saturating_mul(chunk).saturating_sub(overhead).max(size)
}

/// `message` prefixed with NUL bytes up to [`padded_size`]`(len, overhead)` (libsession
/// `pad_message`; crypto §8.2).
pub fn pad_message(message: &[u8], overhead: usize) -> Vec<u8> {
    let target = padded_size(message.len(), overhead);
    let mut out = vec![0u8; target - message.len()];
    out.reserve_exact(message.len());
    out.extend_from_slice(message);
    out
}

// ---- helpers ----

fn check_domain(domain: &str) -> Result<(), ConfigCryptoError> {
    if (MIN_DOMAIN_LEN..=MAX_DOMAIN_LEN).contains(&domain.len()) {
        Ok(())
    } else {
        Err(ConfigCryptoError::InvalidDomain { len: domain.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x33; 32];

    #[test]
    fn roundtrip_and_failures() {
        let ct = encrypt(&KEY, "groups::Info", b"payload").unwrap();
        assert_eq!(ct.len(), 7 + ENCRYPT_OVERHEAD);
        assert_eq!(decrypt(&KEY, "groups::Info", &ct).unwrap(), b"payload");
        assert_eq!(decrypt(&KEY, "groups::Members", &ct), Err(ConfigCryptoError::DecryptionFailed));
        assert_eq!(decrypt(&[0u8; 32], "groups::Info", &ct), Err(ConfigCryptoError::DecryptionFailed));
        assert_eq!(decrypt(&KEY, "groups::Info", &ct[..39]), Err(ConfigCryptoError::TooShort { len: 39 }));
        let empty = encrypt(&KEY, "d", b"").unwrap();
        assert_eq!(decrypt(&KEY, "d", &empty).unwrap(), b"");
    }

    #[test]
    fn domain_length_limits() {
        assert_eq!(encrypt(&KEY, "", b"m"), Err(ConfigCryptoError::InvalidDomain { len: 0 }));
        let long = "x".repeat(25);
        assert_eq!(encrypt(&KEY, &long, b"m"), Err(ConfigCryptoError::InvalidDomain { len: 25 }));
        assert_eq!(decrypt(&KEY, &long, &[0u8; 64]), Err(ConfigCryptoError::InvalidDomain { len: 25 }));
        assert!(encrypt(&KEY, &"x".repeat(24), b"m").is_ok());
    }

    #[test]
    fn padding() {
        assert_eq!(padded_size(0, 0), 0);
        assert_eq!(padded_size(usize::MAX, 40), usize::MAX);
        let padded = pad_message(b"abc", 40);
        assert_eq!(padded.len(), 256 - 40);
        assert!(padded.ends_with(b"abc"));
        assert!(padded[..padded.len() - 3].iter().all(|&b| b == 0));
    }
}
