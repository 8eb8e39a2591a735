//! Community DMs between blinded ids (crypto §3.4): libsession `encrypt_for_blinded_recipient`
//! and `decrypt_from_blinded_recipient`.
//!
//! Wire format: `0x00 || XChaCha20-Poly1305(M || A_sender_ed25519, key, nonce) || nonce24`
//! (73 bytes of overhead) with `key = BLAKE2b-32(s || kA_sender || jB_recipient)` and `s` the
//! noclamp product of the peer's blinded key and our scalar (`a` for 15-blinding, `ka` for
//! 25-blinding).

use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

use crate::blinding::{
    BlindedKeyPair, Blinding, BlindingError, blinded_id_and_x25519, blinded_key_pair, flip_sign,
    scalarmult_noclamp,
};
use crate::id::{IdPrefix, SessionId};
use crate::keys::IdentityKey;
use crate::primitives::{
    XCHACHA20_NONCE_LEN, XCHACHA20_TAG_LEN, blake2b_32, xchacha20_open_into, xchacha20_seal_in_place,
};

/// The version byte of the only supported format.
pub const VERSION: u8 = 0x00;
/// Nonce length (XChaCha20-Poly1305).
pub const NONCE_LEN: usize = XCHACHA20_NONCE_LEN;
/// Authentication tag length.
pub const TAG_LEN: usize = XCHACHA20_TAG_LEN;
/// Bytes added to the message: version, sender Ed25519 key, tag and nonce.
pub const OVERHEAD: usize = 1 + 32 + TAG_LEN + NONCE_LEN;

/// A blinded DM could not be encrypted or decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlindedDmError {
    /// The ciphertext is shorter than version + tag + nonce, or its plaintext is shorter than
    /// the 32-byte sender key.
    #[error("blinded DM ciphertext too short")]
    TooShort,
    /// The first byte is not the supported version 0x00.
    #[error("unsupported blinded DM version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The ciphertext did not authenticate under the shared key.
    #[error("blinded DM decryption failed")]
    DecryptionFailed,
    /// The sender key inside the message does not blind to the claimed sender id.
    #[error("blinded sender id does not match the actual sender")]
    SenderMismatch,
    /// An id is not 15- or 25-blinded, or sender and recipient use different blindings.
    #[error("sender and recipient must both be 15-blinded or both 25-blinded ids")]
    InvalidId,
    /// The peer's blinded key is not a valid point, or the shared secret is the identity.
    #[error("blinded key is not usable for a shared secret")]
    InvalidKey,
    /// Our own blinded key pair could not be derived.
    #[error("blinding failed: {0}")]
    Blinding(#[from] BlindingError),
}

/// Encrypts `message` (the padded Content) from `sender` to a 15- or 25-blinded recipient on
/// the server `server_pk`, with a random nonce from `rng` (crypto §3.4). The recipient's
/// prefix selects the blinding; the sender uses its own key pair of the same kind.
pub fn encrypt<R: rand_core::CryptoRng + ?Sized>(
    sender: &IdentityKey,
    server_pk: &[u8; 32],
    recipient_blinded: &SessionId,
    message: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, BlindedDmError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    encrypt_with_nonce(sender, server_pk, recipient_blinded, message, &nonce)
}

/// [`encrypt`] with a caller-chosen nonce (for test vectors; a nonce must never repeat under
/// one key).
pub fn encrypt_with_nonce(
    sender: &IdentityKey,
    server_pk: &[u8; 32],
    recipient_blinded: &SessionId,
    message: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, BlindedDmError> {
    let blinding = blinding_of(recipient_blinded)?;
    let ours = blinded_key_pair(sender, server_pk, blinding)?;
    let key = directed_key(sender, &ours, true, recipient_blinded.key())?;

    let mut out = Vec::with_capacity(message.len() + OVERHEAD);
    out.push(VERSION);
    out.extend_from_slice(message);
    out.extend_from_slice(&sender.ed25519_public());
    xchacha20_seal_in_place(&key, nonce, &mut out, 1);
    out.extend_from_slice(nonce);
    Ok(out)
}

/// Decrypts a blinded DM as its recipient, or as its sender reading its own outbox copy
/// (crypto §3.4). `ours` is our identity; `sender_blinded` and `recipient_blinded` are the ids
/// the message was stored under (same prefix, 15 or 25). Returns the message (still padded)
/// and the sender's `05` Session ID, after checking that the sender's embedded Ed25519 key
/// blinds to `sender_blinded` (15: either sign form).
pub fn decrypt(
    ours: &IdentityKey,
    server_pk: &[u8; 32],
    sender_blinded: &SessionId,
    recipient_blinded: &SessionId,
    ciphertext: &[u8],
) -> Result<(Vec<u8>, SessionId), BlindedDmError> {
    if ciphertext.len() < 1 + TAG_LEN + NONCE_LEN {
        return Err(BlindedDmError::TooShort);
    }
    let (&version, rest) = ciphertext.split_first().ok_or(BlindedDmError::TooShort)?;
    if version != VERSION {
        return Err(BlindedDmError::UnsupportedVersion(version));
    }
    let key = shared_key(ours, server_pk, sender_blinded, recipient_blinded)?;
    let blinding = blinding_of(sender_blinded)?;

    let (sealed, nonce) = rest.split_last_chunk::<NONCE_LEN>().ok_or(BlindedDmError::TooShort)?;
    let mut plain = Vec::new();
    xchacha20_open_into(&key, nonce, sealed, &mut plain).map_err(|_| BlindedDmError::DecryptionFailed)?;

    let Some(message_len) = plain.len().checked_sub(32) else {
        return Err(BlindedDmError::TooShort);
    };
    let sender_ed: [u8; 32] = plain[message_len..].try_into().map_err(|_| BlindedDmError::TooShort)?;
    plain.truncate(message_len);

    let (actual, sender_x) =
        blinded_id_and_x25519(&sender_ed, server_pk, blinding).map_err(|_| BlindedDmError::SenderMismatch)?;
    let claimed = sender_blinded.key();
    let matches = match blinding {
        Blinding::Blind15 => actual.key() == claimed || flip_sign(*actual.key()) == *claimed,
        _ => actual.key() == claimed,
    };
    if !matches {
        return Err(BlindedDmError::SenderMismatch);
    }
    Ok((plain, SessionId::new(IdPrefix::Standard, sender_x)))
}

/// The XChaCha20-Poly1305 key of a blinded DM between `sender_blinded` and `recipient_blinded`
/// as computed by `ours` (crypto §3.4): if our own blinded id is `sender_blinded` we compute it
/// in the sending direction, otherwise as the recipient. Always
/// `BLAKE2b-32(s || sender key || recipient key)`.
pub fn shared_key(
    ours: &IdentityKey,
    server_pk: &[u8; 32],
    sender_blinded: &SessionId,
    recipient_blinded: &SessionId,
) -> Result<Zeroizing<[u8; 32]>, BlindedDmError> {
    let blinding = blinding_of(sender_blinded)?;
    if blinding_of(recipient_blinded)? != blinding {
        return Err(BlindedDmError::InvalidId);
    }
    let our_pair = blinded_key_pair(ours, server_pk, blinding)?;
    if our_pair.public_key() == sender_blinded.key() {
        directed_key(ours, &our_pair, true, recipient_blinded.key())
    } else {
        directed_key(ours, &our_pair, false, sender_blinded.key())
    }
}

// ---- helpers ----

fn blinding_of(id: &SessionId) -> Result<Blinding, BlindedDmError> {
    Blinding::from_prefix(id.prefix()).ok_or(BlindedDmError::InvalidId)
}

/// The shared key with `peer` (their blinded key); `sending` puts our key first in the hash.
fn directed_key(
    ours: &IdentityKey,
    our_pair: &BlindedKeyPair,
    sending: bool,
    peer: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, BlindedDmError> {
    let a15;
    let scalar = match our_pair.blinding() {
        Blinding::Blind15 => {
            a15 = Zeroizing::new(Scalar::from_bytes_mod_order(*ours.x25519_secret()));
            &*a15
        }
        _ => our_pair.secret_scalar(),
    };
    let shared = Zeroizing::new(scalarmult_noclamp(scalar, peer).map_err(|_| BlindedDmError::InvalidKey)?);
    let (first, second) = if sending { (our_pair.public_key(), peer) } else { (peer, our_pair.public_key()) };
    Ok(Zeroizing::new(blake2b_32(&[], &[&shared[..], first, second])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::testing::CountingRng;

    const SERVER: [u8; 32] = [0x42; 32];

    #[test]
    fn round_trip_both_blindings_both_directions() {
        let alice = IdentityKey::from_seed_bytes(&[1; 32]);
        let bob = IdentityKey::from_seed_bytes(&[2; 32]);
        for blinding in [Blinding::Blind15, Blinding::Blind25] {
            let a_id = blinded_key_pair(&alice, &SERVER, blinding).unwrap().id();
            let b_id = blinded_key_pair(&bob, &SERVER, blinding).unwrap().id();
            let ct = encrypt(&alice, &SERVER, &b_id, b"hi bob", &mut CountingRng(0)).unwrap();
            assert_eq!(ct.len(), 6 + OVERHEAD);
            for reader in [&bob, &alice] {
                let (msg, from) = decrypt(reader, &SERVER, &a_id, &b_id, &ct).unwrap();
                assert_eq!(msg, b"hi bob");
                assert_eq!(from, alice.session_id());
            }
            let carol = IdentityKey::from_seed_bytes(&[3; 32]);
            assert_eq!(decrypt(&carol, &SERVER, &a_id, &b_id, &ct), Err(BlindedDmError::DecryptionFailed));
        }
    }

    #[test]
    fn rejects() {
        let alice = IdentityKey::from_seed_bytes(&[1; 32]);
        let bob = IdentityKey::from_seed_bytes(&[2; 32]);
        let a_id = blinded_key_pair(&alice, &SERVER, Blinding::Blind15).unwrap().id();
        let b_id = blinded_key_pair(&bob, &SERVER, Blinding::Blind15).unwrap().id();
        let b25 = blinded_key_pair(&bob, &SERVER, Blinding::Blind25).unwrap().id();
        assert_eq!(decrypt(&bob, &SERVER, &a_id, &b_id, &[0; 40]), Err(BlindedDmError::TooShort));
        assert_eq!(
            decrypt(&bob, &SERVER, &a_id, &b_id, &[1; 41]),
            Err(BlindedDmError::UnsupportedVersion(1))
        );
        assert_eq!(decrypt(&bob, &SERVER, &a_id, &b25, &[0; 80]), Err(BlindedDmError::InvalidId));
        let plain = SessionId::new(IdPrefix::Standard, [9; 32]);
        assert_eq!(
            encrypt_with_nonce(&alice, &SERVER, &plain, b"x", &[0; 24]),
            Err(BlindedDmError::InvalidId)
        );
        // An empty plaintext that authenticates is too short to hold the sender key.
        let key = shared_key(&alice, &SERVER, &a_id, &b_id).unwrap();
        let mut ct = vec![0u8];
        crate::primitives::xchacha20_seal_append(&key, &[0u8; 24], b"", &mut ct);
        ct.extend_from_slice(&[0u8; 24]);
        assert_eq!(decrypt(&bob, &SERVER, &a_id, &b_id, &ct), Err(BlindedDmError::TooShort));
    }
}
