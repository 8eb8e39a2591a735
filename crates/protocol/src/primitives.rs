//! Thin, libsodium-compatible wrappers over the primitives every other module uses:
//! BLAKE2b with key and variable output, X25519 with libsodium's all-zero check, and the
//! NaCl `crypto_box` / `crypto_secretbox` / sealed-box constructions.
//!
//! Everything here is byte-for-byte what libsodium computes; the tests at the bottom pin it.

use curve25519_dalek::edwards::EdwardsPoint;
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
///
/// A point on the curve is multiplied in its Edwards form: curve25519-dalek's constant-time
/// Edwards scalar multiplication (AVX2 where available) plus the two conversions costs about 0.7
/// of its Montgomery ladder. The Montgomery u-coordinate of `[k]P` is that of `[k](−P)`, so
/// the sign chosen for the Edwards point does not matter and the result is the ladder's, byte
/// for byte. Twist points and u = −1 have no Edwards form and take the ladder. The branch
/// depends only on the public point.
pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, WeakPublicKey> {
    let point = MontgomeryPoint(*public);
    let shared = Zeroizing::new(match point.to_edwards(0) {
        Some(edwards) => Zeroizing::new(edwards.mul_clamped(*secret)).to_montgomery().to_bytes(),
        None => point.mul_clamped(*secret).to_bytes(),
    });
    if bool::from(shared.ct_eq(&[0u8; 32])) {
        return Err(WeakPublicKey);
    }
    Ok(shared)
}

/// `crypto_scalarmult_base(secret)`: the X25519 public key of a secret, through the Edwards
/// base-point table (as libsodium does) rather than a ladder from u = 9.
pub fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

/// An ephemeral key agreement in one go: `(X25519(secret, 9), X25519(secret, peer))`, as a
/// sealed box or an onion layer needs. With `peer` on the curve both products are taken in
/// Edwards form and share one inversion on the way back to Montgomery form (one fewer than
/// [`x25519_base`] + [`x25519`]); otherwise it is exactly those two. Byte-identical either way.
pub fn x25519_base_and_shared(
    secret: &[u8; 32],
    peer: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<[u8; 32]>), WeakPublicKey> {
    let Some(peer_point) = MontgomeryPoint(*peer).to_edwards(0) else {
        return Ok((x25519_base(secret), x25519(secret, peer)?));
    };
    let points = Zeroizing::new([EdwardsPoint::mul_base_clamped(*secret), peer_point.mul_clamped(*secret)]);
    let montgomery = Zeroizing::new(EdwardsPoint::to_montgomery_batch(&points[..]));
    let [public, shared] = montgomery.as_slice() else { unreachable!("two points in, two points out") };
    if bool::from(shared.as_bytes().ct_eq(&[0u8; 32])) {
        return Err(WeakPublicKey);
    }
    Ok((public.to_bytes(), Zeroizing::new(shared.to_bytes())))
}

/// `crypto_box_seed_keypair(seed)`: secret = SHA-512(seed)[0..32], public = X25519-base(secret).
pub fn box_seed_keypair(seed: &[u8; 32]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let mut h = sha512(&[seed]);
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&h[..32]);
    h.zeroize();
    let public = x25519_base(&secret);
    (secret, public)
}

/// `crypto_box_beforenm`: HSalsa20(X25519(secret, public), zero nonce).
pub fn box_beforenm(public: &[u8; 32], secret: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, WeakPublicKey> {
    let shared = x25519(secret, public)?;
    let key = salsa20::hsalsa::<salsa20::cipher::consts::U10>(&(*shared).into(), &[0u8; 16].into());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&key);
    Ok(out)
}

/// `crypto_secretbox_easy`: XSalsa20-Poly1305, output `tag16 || ciphertext`.
pub fn secretbox_seal(key: &[u8; 32], nonce: &[u8; 24], message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; MAC_LEN + message.len()];
    out[MAC_LEN..].copy_from_slice(message);
    let mut cipher = XSalsa20::new(&(*key).into(), &(*nonce).into());
    let mut mac_key = Zeroizing::new([0u8; 32]);
    cipher.apply_keystream(&mut mac_key[..]);
    cipher.apply_keystream(&mut out[MAC_LEN..]);
    let tag = Poly1305::new(&(*mac_key).into()).compute_unpadded(&out[MAC_LEN..]);
    out[..MAC_LEN].copy_from_slice(&tag);
    out
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
    let ephemeral_public = x25519_base(ephemeral_secret);
    let nonce = seal_nonce(&ephemeral_public, recipient_public);
    let boxed = box_seal(message, &nonce, recipient_public, ephemeral_secret)?;
    let mut out = Vec::with_capacity(32 + boxed.len());
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&boxed);
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

/// Decodes lowercase or uppercase hex into exactly `N` bytes.
pub fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
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
    fn x25519_rejects_zero_point() {
        assert_eq!(x25519(&[1u8; 32], &[0u8; 32]), Err(WeakPublicKey));
    }

    /// The Edwards route gives the ladder's bytes: on-curve points, twist points (no Edwards
    /// form), u = −1, non-canonical u ≥ p, and the top bit set.
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

    #[test]
    fn x25519_base_matches_ladder() {
        for i in 0u8..8 {
            let secret = blake2b_32(&[], &[&[i]]);
            assert_eq!(
                x25519_base(&secret),
                x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES)
            );
        }
    }

    #[test]
    fn blake2b_known_answer() {
        // BLAKE2b-512("abc") from RFC 7693 appendix A.
        let h = blake2b(64, &[], &[b"abc"]);
        assert_eq!(&hex::encode(&h)[..32], "ba80a53f981c4d0d6a2797b69f12f6e9");
    }
}
