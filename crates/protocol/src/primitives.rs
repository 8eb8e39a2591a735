//! Thin, libsodium-compatible wrappers over the primitives every other module uses:
//! BLAKE2b with key and variable output, X25519 with libsodium's all-zero check, and the
//! NaCl `crypto_box` / `crypto_secretbox` / sealed-box constructions, and the crate's one
//! XChaCha20-Poly1305 (IETF, no associated data) wrapper.
//!
//! Everything here is byte-for-byte what libsodium computes; the tests at the bottom pin it.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Tag, XChaCha20Poly1305};
use curve25519_dalek::montgomery::MontgomeryPoint;
use poly1305::Poly1305;
use poly1305::universal_hash::KeyInit;
use salsa20::XSalsa20;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Length of a Poly1305 tag, as placed by `crypto_box_easy` / `crypto_secretbox_easy`.
pub const MAC_LEN: usize = 16;
/// Extra bytes added by a sealed box: ephemeral public key plus tag.
pub const SEAL_OVERHEAD: usize = 32 + MAC_LEN;
/// Length of an XChaCha20-Poly1305 nonce.
pub const XCHACHA20_NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag appended by XChaCha20-Poly1305.
pub const XCHACHA20_TAG_LEN: usize = 16;

/// BLAKE2b with `out_len` bytes of output (1..=64), an optional key (empty = unkeyed) and the
/// concatenation of `parts` as input.
pub fn blake2b(out_len: usize, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut state = blake2b_simd::Params::new().hash_length(out_len).key(key).to_state();
    for part in parts {
        state.update(part);
    }
    state.finalize().as_bytes().to_vec()
}

/// BLAKE2b with a fixed output size `N` (1..=64).
pub fn blake2b_n<const N: usize>(key: &[u8], parts: &[&[u8]]) -> [u8; N] {
    let mut state = blake2b_simd::Params::new().hash_length(N).key(key).to_state();
    for part in parts {
        state.update(part);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// BLAKE2b-32.
pub fn blake2b_32(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    blake2b_n::<32>(key, parts)
}

/// SHA-512 of the concatenation of `parts`.
pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    use sha2::Digest;
    let mut h = sha2::Sha512::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// The X25519 function failed because the peer's point gives an all-zero shared secret
/// (a small-order point). libsodium's `crypto_scalarmult` fails the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("X25519 produced an all-zero shared secret (small-order public key)")]
pub struct WeakPublicKey;

/// `crypto_scalarmult(secret, public)`: X25519 with clamping; rejects an all-zero result.
/// A one-off [`X25519Secret::agree`]; keep an [`X25519Secret`] for a key used many times.
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, WeakPublicKey> {
    X25519Secret::new(secret).agree(public)
}

/// An X25519 secret key prepared for key agreements, with its public key.
///
/// The multiplications are AWS-LC's (`aws-lc-rs`: s2n-bignum's constant-time ladder in
/// MULX/ADX assembly), about 1.5 times as fast here as curve25519-dalek's Edwards route and 2
/// times its Montgomery ladder (crates/protocol/README.md, "Benchmarks"): the operation a node
/// runs once per onion hop, and a client once per onion layer and per message it opens.
/// Preparing computes the public key (AWS-LC does that for every raw private key), so a node
/// prepares its own key once and keeps it. RFC 7748 semantics, as libsodium: the secret is
/// clamped, the top bit of the peer's key ignored and a non-canonical u reduced; the tests at
/// the bottom pin it to the ladder of x25519-dalek, byte for byte.
pub struct X25519Secret {
    key: aws_lc_rs::agreement::PrivateKey,
    public: [u8; 32],
}

impl std::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X25519Secret").field("public", &hex::encode(self.public)).finish_non_exhaustive()
    }
}

impl X25519Secret {
    /// Prepares `secret` (32 bytes, clamped as X25519 does).
    pub fn new(secret: &[u8; 32]) -> Self {
        use aws_lc_rs::agreement::{PrivateKey, X25519};
        // AWS-LC refuses an X25519 private key only for its length, and this one has 32 bytes.
        let key = PrivateKey::from_private_key(&X25519, secret).expect("a 32-byte X25519 private key");
        let mut public = [0u8; 32];
        // The public key was computed with the key; this copies it out.
        let computed = key.compute_public_key().expect("the public key of a valid X25519 private key");
        public.copy_from_slice(computed.as_ref());
        Self { key, public }
    }

    /// `X25519(secret, 9)`.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// `X25519(secret, peer)`; an all-zero result (a small-order `peer`) is refused.
    pub fn agree(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, WeakPublicKey> {
        use aws_lc_rs::agreement::{UnparsedPublicKey, X25519, agree};
        let mut shared = Zeroizing::new([0u8; 32]);
        // AWS-LC fails the agreement exactly when the result is all zero.
        agree(&self.key, UnparsedPublicKey::new(&X25519, peer), WeakPublicKey, |bytes| {
            if bytes.len() != shared.len() {
                return Err(WeakPublicKey);
            }
            shared.copy_from_slice(bytes);
            Ok(())
        })?;
        Ok(shared)
    }
}

/// An Ed25519 key prepared for signing many messages, with AWS-LC (s2n-bignum's fixed-base
/// multiplication and inversion in assembly; curve25519-dalek's serial field arithmetic made
/// signing a tenth of a node's CPU under store load). Ed25519 signatures are deterministic
/// (RFC 8032), so the bytes are the same as [`crate::keys::IdentityKey::sign`]'s; the tests at
/// the bottom pin that.
pub struct Ed25519Signer {
    key: aws_lc_rs::signature::Ed25519KeyPair,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer").finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// Prepares the key of a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // AWS-LC refuses a seed only for its length, and this one has 32 bytes.
        let key =
            aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed).expect("a 32-byte Ed25519 seed");
        Self { key }
    }

    /// The deterministic Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.key.sign(message).as_ref());
        out
    }
}

/// `crypto_scalarmult_base(secret)`: the X25519 public key of a secret. Like libsodium it goes
/// through the Edwards fixed-base table, several times faster than a Montgomery ladder on the
/// base point (same result).
pub fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

/// An ephemeral key agreement in one go: `(X25519(secret, 9), X25519(secret, peer))`, as a
/// sealed box or an onion layer needs (one [`X25519Secret`]: its public key comes with it).
pub fn x25519_base_and_shared(
    secret: &[u8; 32],
    peer: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<[u8; 32]>), WeakPublicKey> {
    let key = X25519Secret::new(secret);
    let shared = key.agree(peer)?;
    Ok((*key.public(), shared))
}

/// `crypto_box_seed_keypair(seed)`: secret = SHA-512(seed)[0..32], public = X25519-base(secret).
pub fn box_seed_keypair(seed: &[u8; 32]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let secret = box_seed_secret(seed);
    let public = x25519_base(&secret);
    (secret, public)
}

/// The secret half of [`box_seed_keypair`]: SHA-512(seed)[0..32], for callers that derive the
/// public key together with a shared secret ([`seal_key_agreement`]).
pub fn box_seed_secret(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut h = sha512(&[seed]);
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&h[..32]);
    h.zeroize();
    secret
}

/// `crypto_box_beforenm`: HSalsa20(X25519(secret, public), zero nonce).
pub fn box_beforenm(public: &[u8; 32], secret: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, WeakPublicKey> {
    let shared = x25519(secret, public)?;
    Ok(box_key(&shared))
}

/// The key agreement of `crypto_box_seal` with ephemeral secret `e`: the ephemeral public key
/// `E = X25519(e, 9)` and the box key `crypto_box_beforenm(Y, e)`, with `E` and the shared
/// secret sharing one inversion ([`x25519_base_and_shared`]).
pub fn seal_key_agreement(
    recipient_public: &[u8; 32],
    ephemeral_secret: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<[u8; 32]>), WeakPublicKey> {
    let (ephemeral_public, shared) = x25519_base_and_shared(ephemeral_secret, recipient_public)?;
    Ok((ephemeral_public, box_key(&shared)))
}

/// The box key of a shared secret: HSalsa20(shared, zero nonce).
fn box_key(shared: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let key = salsa20::hsalsa::<salsa20::cipher::consts::U10>(&(*shared).into(), &[0u8; 16].into());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&key);
    out
}

/// `crypto_secretbox_easy`: XSalsa20-Poly1305, output `tag16 || ciphertext`.
pub fn secretbox_seal(key: &[u8; 32], nonce: &[u8; 24], message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; MAC_LEN + message.len()];
    out[MAC_LEN..].copy_from_slice(message);
    secretbox_seal_in_place(key, nonce, &mut out);
    out
}

/// [`secretbox_seal`] in place: `boxed` is [`MAC_LEN`] bytes of room for the tag followed by
/// the message, which is encrypted where it lies; the tag is written in front of it.
///
/// # Panics
/// If `boxed` is shorter than [`MAC_LEN`] (callers lay the buffer out themselves).
pub(crate) fn secretbox_seal_in_place(key: &[u8; 32], nonce: &[u8; 24], boxed: &mut [u8]) {
    let (tag_slot, message) = boxed.split_at_mut(MAC_LEN);
    let mut cipher = XSalsa20::new(&(*key).into(), &(*nonce).into());
    let mut mac_key = Zeroizing::new([0u8; 32]);
    cipher.apply_keystream(&mut mac_key[..]);
    cipher.apply_keystream(message);
    let tag = Poly1305::new(&(*mac_key).into()).compute_unpadded(message);
    tag_slot.copy_from_slice(&tag);
}

/// The box or secretbox did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ciphertext did not authenticate")]
pub struct OpenFailed;

/// `crypto_secretbox_open_easy`: input `tag16 || ciphertext`.
pub fn secretbox_open(key: &[u8; 32], nonce: &[u8; 24], boxed: &[u8]) -> Result<Vec<u8>, OpenFailed> {
    if boxed.len() < MAC_LEN {
        return Err(OpenFailed);
    }
    let (tag, ct) = boxed.split_at(MAC_LEN);
    let mut cipher = XSalsa20::new(&(*key).into(), &(*nonce).into());
    let mut mac_key = Zeroizing::new([0u8; 32]);
    cipher.apply_keystream(&mut mac_key[..]);
    let expected = Poly1305::new(&(*mac_key).into()).compute_unpadded(ct);
    if !bool::from(expected.as_slice().ct_eq(tag)) {
        return Err(OpenFailed);
    }
    let mut out = ct.to_vec();
    cipher.apply_keystream(&mut out);
    Ok(out)
}

/// `crypto_box_easy(message, nonce, public, secret)`.
pub fn box_seal(
    message: &[u8],
    nonce: &[u8; 24],
    public: &[u8; 32],
    secret: &[u8; 32],
) -> Result<Vec<u8>, WeakPublicKey> {
    let key = box_beforenm(public, secret)?;
    Ok(secretbox_seal(&key, nonce, message))
}

/// `crypto_box_open_easy(boxed, nonce, public, secret)`.
pub fn box_open(
    boxed: &[u8],
    nonce: &[u8; 24],
    public: &[u8; 32],
    secret: &[u8; 32],
) -> Result<Vec<u8>, OpenFailed> {
    let key = box_beforenm(public, secret).map_err(|_| OpenFailed)?;
    secretbox_open(&key, nonce, boxed)
}

/// The sealed-box nonce: BLAKE2b-24(ephemeral_pk || recipient_pk).
pub fn seal_nonce(ephemeral_public: &[u8; 32], recipient_public: &[u8; 32]) -> [u8; 24] {
    blake2b_n::<24>(&[], &[ephemeral_public, recipient_public])
}

/// `crypto_box_seal` with a caller-chosen ephemeral secret: `E || crypto_box_easy(m, nonce, Y, e)`.
pub fn seal_with_ephemeral(
    message: &[u8],
    recipient_public: &[u8; 32],
    ephemeral_secret: &[u8; 32],
) -> Result<Vec<u8>, WeakPublicKey> {
    let (ephemeral_public, key) = seal_key_agreement(recipient_public, ephemeral_secret)?;
    let nonce = seal_nonce(&ephemeral_public, recipient_public);
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + message.len());
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&[0u8; MAC_LEN]);
    out.extend_from_slice(message);
    secretbox_seal_in_place(&key, &nonce, &mut out[32..]);
    Ok(out)
}

/// `crypto_box_seal`: a fresh ephemeral key from `rng`.
pub fn seal<R: rand_core::CryptoRng + ?Sized>(
    message: &[u8],
    recipient_public: &[u8; 32],
    rng: &mut R,
) -> Result<Vec<u8>, WeakPublicKey> {
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut ephemeral[..]);
    seal_with_ephemeral(message, recipient_public, &ephemeral)
}

/// `crypto_box_seal_open(sealed, recipient_pk, recipient_sk)`.
pub fn seal_open(
    sealed: &[u8],
    recipient_public: &[u8; 32],
    recipient_secret: &[u8; 32],
) -> Result<Vec<u8>, OpenFailed> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(OpenFailed);
    }
    let (eph, boxed) = sealed.split_at(32);
    let eph: [u8; 32] = eph.try_into().map_err(|_| OpenFailed)?;
    let nonce = seal_nonce(&eph, recipient_public);
    box_open(boxed, &nonce, &eph, recipient_secret)
}

/// An XChaCha20-Poly1305 ciphertext was too short for its tag or did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AeadFailed;

/// Encrypts `buf[start..]` in place with XChaCha20-Poly1305 (no associated data) and appends the
/// 16-byte tag, so that `buf[start..]` becomes `ciphertext || tag`.
pub(crate) fn xchacha20_seal_in_place(key: &[u8; 32], nonce: &[u8; 24], buf: &mut Vec<u8>, start: usize) {
    let tag = XChaCha20Poly1305::new(&(*key).into())
        .encrypt_inout_detached(&(*nonce).into(), &[], buf[start..].as_mut().into())
        .expect("XChaCha20-Poly1305 accepts any message that fits in memory");
    buf.extend_from_slice(&tag);
}

/// Appends `XChaCha20-Poly1305(plaintext, nonce, key) || tag16` (no associated data) to `out`.
pub(crate) fn xchacha20_seal_append(key: &[u8; 32], nonce: &[u8; 24], plaintext: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(plaintext);
    xchacha20_seal_in_place(key, nonce, out, start);
}

/// Opens XChaCha20-Poly1305 `ciphertext || tag16` (no associated data) into `out` (cleared
/// first, so it can be reused as a buffer). On failure `out` holds no plaintext.
pub(crate) fn xchacha20_open_into(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ciphertext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), AeadFailed> {
    out.clear();
    let (body, tag) = ciphertext.split_last_chunk::<XCHACHA20_TAG_LEN>().ok_or(AeadFailed)?;
    out.extend_from_slice(body);
    // The tag is verified before any byte is decrypted, so on failure `out` holds ciphertext.
    XChaCha20Poly1305::new(&(*key).into())
        .decrypt_inout_detached(&(*nonce).into(), &[], out.as_mut_slice().into(), &Tag::from(*tag))
        .map_err(|_| {
            out.clear();
            AeadFailed
        })
}

/// Writes `magnitude` in ASCII decimal, preceded by `-` when `negative`, at the end of `buf`
/// (room for any `u64` with a sign) and returns the written part. No allocation.
pub(crate) fn decimal_ascii(magnitude: u64, negative: bool, buf: &mut [u8; 21]) -> &[u8] {
    let mut pos = buf.len();
    let mut n = magnitude;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Appends `value` in ASCII decimal.
pub(crate) fn write_decimal(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(decimal_ascii(value, false, &mut [0u8; 21]));
}

/// Appends `value` in ASCII decimal, with a leading `-` when negative.
pub(crate) fn write_signed_decimal(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(decimal_ascii(value.unsigned_abs(), value < 0, &mut [0u8; 21]));
}

/// Decodes lowercase or uppercase hex into exactly `N` bytes.
pub fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Helpers shared by the crate's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A deterministic "RNG" for tests: every byte is one more than the last, starting after
    /// the seed value.
    pub(crate) struct CountingRng(pub(crate) u8);

    impl CountingRng {
        fn next_byte(&mut self) -> u8 {
            self.0 = self.0.wrapping_add(1);
            self.0
        }
    }

    impl rand_core::TryRng for CountingRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from(self.next_byte()))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.next_byte()))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.iter_mut().for_each(|b| *b = self.next_byte());
            Ok(())
        }
    }

    impl rand_core::TryCryptoRng for CountingRng {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_tamper() {
        let (sk, pk) = box_seed_keypair(&[7u8; 32]);
        let sealed = seal_with_ephemeral(b"hello", &pk, &[9u8; 32]).unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(seal_open(&sealed, &pk, &sk).unwrap(), b"hello");
        let mut bad = sealed.clone();
        bad[40] ^= 1;
        assert_eq!(seal_open(&bad, &pk, &sk), Err(OpenFailed));
        assert_eq!(seal_open(&sealed[..47], &pk, &sk), Err(OpenFailed));
    }

    #[test]
    fn xchacha20_seal_open_and_tamper() {
        let mut sealed = b"prefix".to_vec();
        xchacha20_seal_append(&[3u8; 32], &[4u8; 24], b"hello", &mut sealed);
        assert_eq!(sealed.len(), 6 + 5 + XCHACHA20_TAG_LEN);
        let mut out = vec![1, 2, 3];
        xchacha20_open_into(&[3u8; 32], &[4u8; 24], &sealed[6..], &mut out).unwrap();
        assert_eq!(out, b"hello");
        sealed[7] ^= 1;
        assert_eq!(xchacha20_open_into(&[3u8; 32], &[4u8; 24], &sealed[6..], &mut out), Err(AeadFailed));
        assert!(out.is_empty());
        assert_eq!(xchacha20_open_into(&[3u8; 32], &[4u8; 24], &[0u8; 15], &mut out), Err(AeadFailed));
    }

    #[test]
    fn aws_lc_ed25519_signatures_are_dalek_signatures() {
        use ed25519_dalek::{Signer, SigningKey, Verifier};
        for n in 0u8..16 {
            let seed = [n.wrapping_mul(37).wrapping_add(1); 32];
            let dalek = SigningKey::from_bytes(&seed);
            let signer = Ed25519Signer::from_seed(&seed);
            for message in [&b""[..], b"abc", &[n; 1000][..]] {
                let ours = signer.sign(message);
                assert_eq!(ours, dalek.sign(message).to_bytes(), "seed {n}, {} bytes", message.len());
                let signature = ed25519_dalek::Signature::from_bytes(&ours);
                assert!(dalek.verifying_key().verify(message, &signature).is_ok());
            }
        }
    }

    #[test]
    fn decimal() {
        for v in [0u64, 9, 10, 1_700_000_000_000, u64::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        for v in
            [0i64, 1, -1, 9, -10, 11, 12345, i64::from(i16::MIN), i64::from(i16::MAX), i64::MIN, i64::MAX]
        {
            let mut out = Vec::new();
            write_signed_decimal(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }

    #[test]
    fn x25519_base_matches_ladder() {
        let hashed = (0u8..8).map(|i| blake2b_32(&[], &[&[i]]));
        for secret in [[0u8; 32], [1u8; 32], [0xff; 32], [0x5a; 32]].into_iter().chain(hashed) {
            assert_eq!(
                x25519_base(&secret),
                x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES)
            );
        }
    }

    #[test]
    fn prepared_secret_public_key_matches_base() {
        for i in 0u8..16 {
            let secret = blake2b_32(b"prepared", &[&[i]]);
            assert_eq!(*X25519Secret::new(&secret).public(), x25519_base(&secret));
        }
    }

    #[test]
    fn x25519_rejects_zero_point() {
        assert_eq!(x25519(&[1u8; 32], &[0u8; 32]), Err(WeakPublicKey));
    }

    /// AWS-LC's X25519 gives the ladder's bytes: on-curve points, twist points (no Edwards
    /// form), u = −1, non-canonical u ≥ p, the top bit set, and small-order points refused.
    #[test]
    fn x25519_matches_ladder() {
        let mut cases: Vec<[u8; 32]> = (0u8..64).map(|i| blake2b_32(&[], &[&[i]])).collect();
        cases.extend((0u8..16).map(|i| x25519_base(&[i; 32])));
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let mut p_plus_9 = [0xffu8; 32];
        p_plus_9[0] = 0xf6;
        p_plus_9[31] = 0x7f;
        cases.extend([minus_one, p_plus_9, [0xffu8; 32], [0u8; 32]]);
        cases.push({
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        });
        let (mut on_curve, mut off_curve) = (0, 0);
        for (i, public) in cases.iter().enumerate() {
            let secret = blake2b_32(b"secret", &[&[i as u8]]);
            let ladder = x25519_dalek::x25519(secret, *public);
            match x25519(&secret, public) {
                Ok(shared) => assert_eq!(*shared, ladder, "case {i}"),
                Err(WeakPublicKey) => assert_eq!(ladder, [0u8; 32], "case {i}"),
            }
            match MontgomeryPoint(*public).to_edwards(0) {
                Some(_) => on_curve += 1,
                None => off_curve += 1,
            }
        }
        assert!(on_curve > 20 && off_curve > 20, "both routes exercised: {on_curve} / {off_curve}");
    }

    #[test]
    fn base_and_shared_matches_separate_calls() {
        let twist =
            (0u8..).map(|i| blake2b_32(&[], &[&[i]])).find(|u| MontgomeryPoint(*u).to_edwards(0).is_none());
        for peer in [x25519_base(&[3u8; 32]), twist.unwrap(), [0u8; 32]] {
            let secret = [0x5au8; 32];
            match x25519_base_and_shared(&secret, &peer) {
                Ok((public, shared)) => {
                    assert_eq!(public, x25519_base(&secret));
                    assert_eq!(shared, x25519(&secret, &peer).unwrap());
                }
                Err(WeakPublicKey) => assert_eq!(x25519(&secret, &peer), Err(WeakPublicKey)),
            }
        }
    }

    /// The batched sealed-box key agreement and the sealed box built on it equal the separate
    /// `crypto_scalarmult_base` + `crypto_box_easy` construction, for a recipient on the curve
    /// (Edwards route), one on the twist (ladder route) and a small-order one (refused).
    #[test]
    fn seal_key_agreement_matches_box() {
        let twist =
            (0u8..).map(|i| blake2b_32(&[], &[&[i]])).find(|u| MontgomeryPoint(*u).to_edwards(0).is_none());
        let ephemeral = [0x33u8; 32];
        for recipient in [x25519_base(&[3u8; 32]), twist.unwrap()] {
            let (public, key) = seal_key_agreement(&recipient, &ephemeral).unwrap();
            assert_eq!(public, x25519_base(&ephemeral));
            assert_eq!(key, box_beforenm(&recipient, &ephemeral).unwrap());
            let mut expected = public.to_vec();
            let nonce = seal_nonce(&public, &recipient);
            expected.extend(box_seal(b"body", &nonce, &recipient, &ephemeral).unwrap());
            assert_eq!(seal_with_ephemeral(b"body", &recipient, &ephemeral).unwrap(), expected);
        }
        assert_eq!(seal_key_agreement(&[0u8; 32], &ephemeral), Err(WeakPublicKey));
        assert_eq!(seal_with_ephemeral(b"body", &[0u8; 32], &ephemeral), Err(WeakPublicKey));
    }

    #[test]
    fn blake2b_known_answer() {
        // BLAKE2b-512("abc") from RFC 7693 appendix A.
        let h = blake2b(64, &[], &[b"abc"]);
        assert_eq!(&hex::encode(&h)[..32], "ba80a53f981c4d0d6a2797b69f12f6e9");
    }
}
