//! Session Protocol v1 one-to-one encryption (crypto §3.1–3.3).
//!
//! A message `M` (already padded Content, §4.1) is signed by the sender's Ed25519 key together
//! with the sender's Ed25519 public key `A` and the recipient's X25519 key `Y`, and the inner
//! plaintext `M || A || SIG` is put in a libsodium sealed box for `Y`:
//!
//! ```text
//! ciphertext = E(32) || tag(16) || XSalsa20(M || A || SIG)      (len(M) + 144 bytes)
//! ```
//!
//! Encryption writes the output buffer once and encrypts it in place; decryption authenticates
//! before copying and checks the signature on the plaintext buffer where it lies. The recipient's
//! X25519 key pair comes from the [`IdentityKey`] cache, never recomputed.

use curve25519_dalek::edwards::EdwardsPoint;
use zeroize::Zeroizing;

use crate::id::{IdPrefix, SessionId};
use crate::keys::{Ed25519Verifier, IdentityKey, is_torsion_free};
use crate::primitives::{
    MAC_LEN, SEAL_OVERHEAD, blake2b_32, box_beforenm, box_seed_secret, seal_key_agreement, seal_nonce,
    secretbox_open, secretbox_seal_in_place,
};

/// Length of the sender's Ed25519 public key inside the inner plaintext.
pub const SENDER_KEY_LEN: usize = 32;
/// Length of the Ed25519 signature inside the inner plaintext.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes a v1 ciphertext adds to the message: sealed box (48) + sender key (32) + signature (64).
pub const V1_OVERHEAD: usize = SEAL_OVERHEAD + SENDER_KEY_LEN + SIGNATURE_LEN;
/// BLAKE2b key of the deterministic ephemeral seed (crypto §3.3).
pub const DETERMINISTIC_EPHEMERAL_KEY: &[u8] = b"SessionBoxEphemeralHashKey";

/// Encryption could not start: the recipient key is unusable (crypto §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The recipient must be a 32-byte X25519 key or a 33-byte `05` Session ID.
    #[error("recipient key must be 32 bytes or a 33-byte 05 Session ID, got {0} bytes")]
    RecipientLength(usize),
    /// A 33-byte recipient whose prefix is not `05` (only standard accounts receive v1 DMs).
    #[error("recipient Session ID has prefix {0:02x}; v1 messages go to 05 accounts only")]
    RecipientPrefix(u8),
    /// The recipient X25519 key is a small-order point (the shared secret would be all zero).
    #[error("recipient X25519 key is a small-order point")]
    WeakRecipientKey,
}

/// A v1 ciphertext was rejected (crypto §3.2). Variants map onto the vector error classes
/// `too_short`, `decryption_failed` and `signature_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Shorter than the 144-byte minimum (sealed box + sender key + signature).
    #[error("v1 ciphertext is {len} bytes, shorter than the {V1_OVERHEAD}-byte minimum")]
    TooShort {
        /// Length of the rejected ciphertext.
        len: usize,
    },
    /// The sealed box did not open with our key (not for us, or corrupted).
    #[error("v1 sealed box did not open (not addressed to this key, or corrupted)")]
    DecryptionFailed,
    /// The box opened but the sender's signature over `M || A || our X25519 key` is invalid.
    #[error("v1 sender signature verification failed")]
    SignatureInvalid,
    /// The signature verified but the sender's Ed25519 key has no X25519 form (not in the
    /// prime-order subgroup), so no Session ID can be given for it.
    #[error("v1 sender Ed25519 key cannot be converted to a Session ID")]
    InvalidSenderKey,
}

/// A decrypted v1 message (crypto §3.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The message exactly as the sender passed it in (still padded, §4.1).
    pub message: Vec<u8>,
    /// The sender's Ed25519 public key `A`, which signed the message.
    pub sender_ed25519: [u8; 32],
    /// The sender's Session ID, `05 || X25519(A)`.
    pub sender: SessionId,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("message_len", &self.message.len())
            .field("sender", &self.sender.short())
            .finish_non_exhaustive()
    }
}

/// `encrypt_for_recipient` (crypto §3.1): signs `message || A || Y` and seals `message || A ||
/// SIG` to `Y` with a fresh ephemeral key from `rng`. `recipient` is the X25519 key `Y` (32
/// bytes) or a `05` Session ID (33 bytes). Output length is `message.len() + 144`.
pub fn encrypt_for_recipient<R: rand_core::CryptoRng + ?Sized>(
    sender: &IdentityKey,
    recipient: &[u8],
    message: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, EncryptError> {
    let recipient = recipient_x25519(recipient)?;
    let mut ephemeral_secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut ephemeral_secret[..]);
    seal_signed(sender, &recipient, message, &ephemeral_secret)
}

/// `encrypt_for_recipient_deterministic` (crypto §3.3): as [`encrypt_for_recipient`], but the
/// ephemeral key is `crypto_box_seed_keypair(`[`deterministic_ephemeral_seed`]`)`, so equal inputs
/// give equal ciphertexts. Only for self-addressed legacy config (§4.4): it gives up the sealed
/// box's forward secrecy.
pub fn encrypt_for_recipient_deterministic(
    sender: &IdentityKey,
    recipient: &[u8],
    message: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let recipient = recipient_x25519(recipient)?;
    let seed = deterministic_ephemeral_seed(sender, &recipient, message);
    seal_signed(sender, &recipient, message, &box_seed_secret(&seed))
}

/// The deterministic ephemeral seed of crypto §3.3:
/// BLAKE2b-32(`seed32 || Y || message`; key = `SessionBoxEphemeralHashKey`).
pub fn deterministic_ephemeral_seed(
    sender: &IdentityKey,
    recipient_x25519: &[u8; 32],
    message: &[u8],
) -> Zeroizing<[u8; 32]> {
    let seed = sender.seed();
    Zeroizing::new(blake2b_32(DETERMINISTIC_EPHEMERAL_KEY, &[&seed[..], recipient_x25519, message]))
}

/// The recipient X25519 key `Y` from a 32-byte key or a 33-byte `05` Session ID (crypto §3.1).
pub fn recipient_x25519(recipient: &[u8]) -> Result<[u8; 32], EncryptError> {
    let key = match recipient.len() {
        32 => recipient,
        33 => match recipient.split_first() {
            Some((&0x05, key)) => key,
            Some((&prefix, _)) => return Err(EncryptError::RecipientPrefix(prefix)),
            None => return Err(EncryptError::RecipientLength(0)),
        },
        n => return Err(EncryptError::RecipientLength(n)),
    };
    key.try_into().map_err(|_| EncryptError::RecipientLength(recipient.len()))
}

/// `decrypt_incoming` plus `decrypt_incoming_session_id` (crypto §3.2) with the account's
/// X25519 key pair: opens the sealed box, verifies the sender's signature over
/// `M || A || our X25519 key`, and converts `A` to the sender's Session ID.
pub fn decrypt_incoming(recipient: &IdentityKey, ciphertext: &[u8]) -> Result<Decrypted, DecryptError> {
    decrypt_incoming_with_x25519(recipient.x25519_public(), recipient.x25519_secret(), ciphertext)
}

/// [`decrypt_incoming`] with an explicit X25519 key pair (the legacy closed-group variant,
/// crypto §3.2 step 2 / §6.1).
pub fn decrypt_incoming_with_x25519(
    x25519_public: &[u8; 32],
    x25519_secret: &[u8; 32],
    ciphertext: &[u8],
) -> Result<Decrypted, DecryptError> {
    if ciphertext.len() < V1_OVERHEAD {
        return Err(DecryptError::TooShort { len: ciphertext.len() });
    }
    let (ephemeral, boxed) = ciphertext.split_first_chunk::<32>().ok_or(DecryptError::DecryptionFailed)?;

    // crypto_box_seal_open: authenticate first, then decrypt into the only copy we make.
    let nonce = seal_nonce(ephemeral, x25519_public);
    let key = box_beforenm(ephemeral, x25519_secret).map_err(|_| DecryptError::DecryptionFailed)?;
    let mut inner = secretbox_open(&key, &nonce, boxed).map_err(|_| DecryptError::DecryptionFailed)?;

    // inner = M || A || SIG. SIG signs M || A || Y.
    let message_len = inner.len() - SENDER_KEY_LEN - SIGNATURE_LEN;
    let signature_start = message_len + SENDER_KEY_LEN;
    let (signed, signature) = inner.split_at(signature_start);
    let sender_ed25519: [u8; 32] =
        signed[message_len..].try_into().map_err(|_| DecryptError::SignatureInvalid)?;
    let signature: &[u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| DecryptError::SignatureInvalid)?;
    let point = verify_signature(&sender_ed25519, &[signed, x25519_public], signature)
        .ok_or(DecryptError::SignatureInvalid)?;
    inner.truncate(message_len);

    // crypto_sign_ed25519_pk_to_curve25519: small-order keys were refused above; the key must
    // also lie in the prime-order subgroup.
    if !is_torsion_free(&point) {
        return Err(DecryptError::InvalidSenderKey);
    }
    let sender = SessionId::new(IdPrefix::Standard, point.to_montgomery().to_bytes());
    Ok(Decrypted { message: inner, sender_ed25519, sender })
}

// ---- helpers ----

/// Builds `E || tag || XSalsa20(message || A || SIG)` in one buffer (`E` = the X25519 public
/// key of `ephemeral_secret`, derived with the box key by [`seal_key_agreement`]): the signed
/// bytes `message || A || Y` are laid out in place, then Y is replaced by the signature and the
/// inner plaintext is encrypted where it lies.
fn seal_signed(
    sender: &IdentityKey,
    recipient: &[u8; 32],
    message: &[u8],
    ephemeral_secret: &[u8; 32],
) -> Result<Vec<u8>, EncryptError> {
    let (ephemeral_public, key) =
        seal_key_agreement(recipient, ephemeral_secret).map_err(|_| EncryptError::WeakRecipientKey)?;
    let nonce = seal_nonce(&ephemeral_public, recipient);

    let mut out = Vec::with_capacity(message.len() + V1_OVERHEAD);
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&[0u8; MAC_LEN]);
    out.extend_from_slice(message);
    out.extend_from_slice(&sender.ed25519_public());
    out.extend_from_slice(recipient);
    let signature = sender.sign(&out[SEAL_OVERHEAD..]);
    out.truncate(out.len() - 32);
    out.extend_from_slice(&signature);

    secretbox_seal_in_place(&key, &nonce, &mut out[32..]);
    Ok(out)
}

/// `crypto_sign_verify_detached` with libsodium's checks (the same as ed25519-dalek's
/// `verify_strict`): `s < L`; `A` canonical, decodable and not of small order;
/// `[s]B − [k]A` with `k = SHA-512(R || A || message)` encodes to exactly `R`, and is not of
/// small order. `R` is compared as bytes, as libsodium does, so it is never decompressed.
/// Returns the decoded `A`, which the caller converts. Public data only: variable time.
fn verify_signature(
    public: &[u8; 32],
    message: &[&[u8]],
    signature: &[u8; SIGNATURE_LEN],
) -> Option<EdwardsPoint> {
    if !is_canonical_ed25519(public) {
        return None;
    }
    let key = Ed25519Verifier::new(public)?;
    key.verify_parts(message, signature).then(|| *key.point())
}

/// libsodium's `ge25519_is_canonical`: the encoded y coordinate is below p = 2^255 − 19.
fn is_canonical_ed25519(key: &[u8; 32]) -> bool {
    let top = key[31] & 0x7f;
    !(top == 0x7f && key[1..31].iter().all(|b| *b == 0xff) && key[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::seal_open;
    use crate::primitives::sha512;
    use crate::primitives::testing::CountingRng;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::montgomery::MontgomeryPoint;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::IsIdentity;

    fn alice() -> IdentityKey {
        IdentityKey::from_seed_bytes(&[1u8; 32])
    }
    fn bob() -> IdentityKey {
        IdentityKey::from_seed_bytes(&[2u8; 32])
    }

    #[test]
    fn roundtrip_and_sealed_box_compatibility() {
        let (a, b) = (alice(), bob());
        let ct =
            encrypt_for_recipient(&a, &b.session_id().to_bytes(), b"hi there", &mut CountingRng(0)).unwrap();
        assert_eq!(ct.len(), 8 + V1_OVERHEAD);
        // It is an ordinary sealed box.
        let inner = seal_open(&ct, b.x25519_public(), b.x25519_secret()).unwrap();
        assert_eq!(&inner[..8], b"hi there");
        let got = decrypt_incoming(&b, &ct).unwrap();
        assert_eq!(got.message, b"hi there");
        assert_eq!(got.sender_ed25519, a.ed25519_public());
        assert_eq!(got.sender, a.session_id());
        assert_eq!(decrypt_incoming(&a, &ct), Err(DecryptError::DecryptionFailed));
    }

    #[test]
    fn deterministic_is_deterministic() {
        let (a, b) = (alice(), bob());
        let one = encrypt_for_recipient_deterministic(&a, b.x25519_public(), b"x").unwrap();
        let two = encrypt_for_recipient_deterministic(&a, b.x25519_public(), b"x").unwrap();
        assert_eq!(one, two);
        assert_eq!(decrypt_incoming(&b, &one).unwrap().message, b"x");
    }

    #[test]
    fn recipient_forms() {
        let b = bob();
        assert_eq!(recipient_x25519(b.x25519_public()).unwrap(), *b.x25519_public());
        let mut id = b.session_id().to_bytes();
        assert_eq!(recipient_x25519(&id).unwrap(), *b.x25519_public());
        id[0] = 0x03;
        assert_eq!(recipient_x25519(&id), Err(EncryptError::RecipientPrefix(3)));
        assert_eq!(recipient_x25519(&[0u8; 31]), Err(EncryptError::RecipientLength(31)));
        let weak = [0u8; 32];
        assert_eq!(
            encrypt_for_recipient(&alice(), &weak, b"", &mut CountingRng(0)),
            Err(EncryptError::WeakRecipientKey)
        );
    }

    #[test]
    fn short_and_tampered_inputs() {
        let b = bob();
        assert_eq!(decrypt_incoming(&b, &[0u8; 143]), Err(DecryptError::TooShort { len: 143 }));
        let mut ct = encrypt_for_recipient(&alice(), b.x25519_public(), b"", &mut CountingRng(7)).unwrap();
        assert_eq!(decrypt_incoming(&b, &ct).unwrap().message, b"");
        ct[100] ^= 1;
        assert_eq!(decrypt_incoming(&b, &ct), Err(DecryptError::DecryptionFailed));
    }

    #[test]
    fn torsion_check_matches_dalek() {
        let p = EdwardsPoint::mul_base(&Scalar::from(12345u64));
        assert!(is_torsion_free(&p));
        for t in EIGHT_TORSION.iter().skip(1) {
            let q = p + t;
            assert_eq!(is_torsion_free(&q), q.is_torsion_free());
            assert!(!is_torsion_free(&q));
        }
    }

    /// A sender key with an order-2 component: A' = a·B + T. A signature (R, S = r + k·a) still
    /// verifies whenever k is even, but A' has no X25519 form, so no Session ID can be given.
    #[test]
    fn torsioned_sender_key_is_rejected() {
        use crate::primitives::seal_with_ephemeral;
        use curve25519_dalek::edwards::CompressedEdwardsY;

        let b = bob();
        let a = Scalar::from_bytes_mod_order(*alice().x25519_secret());
        let t2 = EIGHT_TORSION.iter().find(|t| !t.is_identity() && (*t + *t).is_identity()).unwrap();
        let sender = (EdwardsPoint::mul_base(&a) + t2).compress().to_bytes();
        let message = b"torsion";
        let (r, k) = (1u64..)
            .map(|i| {
                let r = Scalar::from(i);
                let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
                let k = Scalar::from_bytes_mod_order_wide(&sha512(&[
                    &big_r,
                    &sender,
                    message,
                    &sender,
                    b.x25519_public(),
                ]));
                (r, k)
            })
            .find(|(_, k)| k.as_bytes()[0] & 1 == 0)
            .unwrap();
        let mut inner = message.to_vec();
        inner.extend_from_slice(&sender);
        inner.extend_from_slice(EdwardsPoint::mul_base(&r).compress().as_bytes());
        inner.extend_from_slice((r + k * a).as_bytes());
        assert!(CompressedEdwardsY(sender).decompress().is_some());
        let ct = seal_with_ephemeral(&inner, b.x25519_public(), &[5u8; 32]).unwrap();
        assert_eq!(decrypt_incoming(&b, &ct), Err(DecryptError::InvalidSenderKey));
    }

    /// The in-place construction is the sealed box of `M || A || SIG`, for a recipient on the
    /// curve (Edwards route) and one on the twist (ladder route). (The batched key agreement
    /// itself is pinned against the separate calls in `primitives`.)
    #[test]
    fn seal_matches_sealed_box() {
        use crate::primitives::seal_with_ephemeral;
        let a = alice();
        let twist = (0u8..)
            .map(|i| blake2b_32(&[], &[&[i]]))
            .find(|u| MontgomeryPoint(*u).to_edwards(0).is_none())
            .unwrap();
        for recipient in [*bob().x25519_public(), twist] {
            let ephemeral = [0x33u8; 32];
            let ct = seal_signed(&a, &recipient, b"body", &ephemeral).unwrap();
            let mut inner = b"body".to_vec();
            inner.extend_from_slice(&a.ed25519_public());
            inner.extend_from_slice(&recipient);
            let signature = a.sign(&inner);
            inner.truncate(4 + 32);
            inner.extend_from_slice(&signature);
            assert_eq!(ct, seal_with_ephemeral(&inner, &recipient, &ephemeral).unwrap());
        }
    }

    /// `verify_signature` accepts exactly what ed25519-dalek's `verify_strict` accepts: valid
    /// signatures, every single-bit corruption of R, s and A, s + L (non-canonical), small-order
    /// R and A with s = 0.
    #[test]
    fn verification_agrees_with_verify_strict() {
        use ed25519_dalek::{Signature, VerifyingKey};
        let strict = |a: &[u8; 32], m: &[u8], sig: &[u8; 64]| {
            VerifyingKey::from_bytes(a)
                .is_ok_and(|key| key.verify_strict(m, &Signature::from_bytes(sig)).is_ok())
        };
        let key = alice();
        let message = b"message || A || Y";
        let signature = key.sign(message);
        let mut cases = vec![(key.ed25519_public(), signature)];
        for bit in 0..256 {
            let mut a = key.ed25519_public();
            a[bit / 8] ^= 1 << (bit % 8);
            cases.push((a, signature));
        }
        for bit in 0..512 {
            let mut sig = signature;
            sig[bit / 8] ^= 1 << (bit % 8);
            cases.push((key.ed25519_public(), sig));
        }
        let mut s_plus_l = signature;
        let s = Scalar::from_canonical_bytes(signature[32..].try_into().unwrap()).unwrap();
        let l_bytes: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (i, (x, y)) in s.as_bytes().iter().zip(l_bytes).enumerate() {
            let sum = u16::from(*x) + u16::from(y) + carry;
            s_plus_l[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        cases.push((key.ed25519_public(), s_plus_l));
        for t in EIGHT_TORSION {
            let small = t.compress().to_bytes();
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&small);
            cases.push((key.ed25519_public(), sig));
            cases.push((small, sig));
            cases.push((small, signature));
        }
        let mut accepted = 0;
        for (i, (a, sig)) in cases.iter().enumerate() {
            let ours = verify_signature(a, &[&message[..5], &message[5..]], sig).is_some();
            assert_eq!(ours, strict(a, message, sig), "case {i}");
            accepted += usize::from(ours);
        }
        assert_eq!(accepted, 1);
    }

    #[test]
    fn canonical_encoding() {
        let mut key = [0xffu8; 32];
        key[31] = 0x7f;
        key[0] = 0xed;
        assert!(!is_canonical_ed25519(&key));
        key[0] = 0xec;
        assert!(is_canonical_ed25519(&key));
    }

    #[test]
    fn debug_hides_plaintext() {
        let b = bob();
        let ct =
            encrypt_for_recipient(&alice(), b.x25519_public(), b"secret words", &mut CountingRng(3)).unwrap();
        let text = format!("{:?}", decrypt_incoming(&b, &ct).unwrap());
        assert!(!text.contains("secret") && !text.contains(&hex::encode(b"secret")));
    }
}
