//! Account keys (crypto §1): seeds, the Ed25519 identity key pair, Ed25519 → X25519 conversion
//! as libsodium does it, and the XEd25519 "positive" conversion back.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::id::{IdPrefix, SessionId};
use crate::primitives::sha512;

/// A key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An account seed must be 16 bytes (legacy, zero-padded) or 32 bytes.
    #[error("account seed must be 16 or 32 bytes, got {0}")]
    SeedLength(usize),
    /// The bytes are not a valid Ed25519 point, or it is of small order or outside the
    /// prime-order subgroup (libsodium refuses to convert such keys).
    #[error("invalid Ed25519 public key")]
    InvalidEd25519Key,
    /// The X25519 key has no Edwards equivalent.
    #[error("invalid X25519 public key")]
    InvalidX25519Key,
}

/// The 32-byte Ed25519 seed of an account. A 16-byte legacy seed is zero-padded (crypto §1.1).
#[derive(Clone, PartialEq, Eq, zeroize::ZeroizeOnDrop)]
pub struct AccountSeed([u8; 32]);

impl AccountSeed {
    /// Accepts 16 bytes (padded with 16 zero bytes) or 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        match bytes.len() {
            16 | 32 => seed[..bytes.len()].copy_from_slice(bytes),
            n => return Err(KeyError::SeedLength(n)),
        }
        Ok(Self(seed))
    }

    /// A 32-byte seed.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True when the upper 16 bytes are zero: the seed is shown as a 13-word phrase.
    pub fn is_legacy(&self) -> bool {
        self.0[16..].iter().all(|b| *b == 0)
    }

    /// The bytes a recovery phrase encodes: 16 for a legacy seed, else 32.
    pub fn phrase_bytes(&self) -> &[u8] {
        if self.is_legacy() { &self.0[..16] } else { &self.0[..] }
    }
}

impl std::fmt::Debug for AccountSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountSeed(<redacted>)")
    }
}

/// An account's identity: the Ed25519 key pair and its X25519 form, converted once and cached.
#[derive(Clone)]
pub struct IdentityKey {
    signing: SigningKey,
    x25519_secret: Zeroizing<[u8; 32]>,
    x25519_public: [u8; 32],
}

impl IdentityKey {
    /// `crypto_sign_ed25519_seed_keypair(seed)` plus the X25519 conversion.
    pub fn from_seed(seed: &AccountSeed) -> Self {
        Self::from_seed_bytes(seed.as_bytes())
    }

    /// From the raw 32-byte Ed25519 seed.
    pub fn from_seed_bytes(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let x25519_secret = ed25519_seed_to_x25519_secret(seed);
        // The X25519 secret is the Ed25519 scalar, so the X25519 public key is the Ed25519
        // public point in Montgomery form: one inversion instead of a second scalar
        // multiplication.
        let x25519_public = signing.verifying_key().to_edwards().to_montgomery().to_bytes();
        Self { signing, x25519_secret, x25519_public }
    }

    /// From a 64-byte libsodium secret key (`seed || pubkey`); the public half must match.
    pub fn from_secret_key(sk64: &[u8; 64]) -> Result<Self, KeyError> {
        let seed: [u8; 32] = sk64[..32].try_into().expect("32 of 64 bytes");
        let key = Self::from_seed_bytes(&seed);
        if key.ed25519_public() != sk64[32..] {
            return Err(KeyError::InvalidEd25519Key);
        }
        Ok(key)
    }

    /// The 32-byte seed.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The libsodium 64-byte secret key `seed || pubkey`.
    pub fn secret_key_bytes(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.signing.to_keypair_bytes())
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The X25519 secret `a(sk)`: clamp(SHA-512(seed)[0..32]). It is also the Ed25519 scalar.
    pub fn x25519_secret(&self) -> &[u8; 32] {
        &self.x25519_secret
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> &[u8; 32] {
        &self.x25519_public
    }

    /// The account's Session ID, `05 || X25519 public`.
    pub fn session_id(&self) -> SessionId {
        SessionId::new(IdPrefix::Standard, self.x25519_public)
    }

    /// Deterministic Ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The same key prepared for signing many messages ([`Ed25519Signer`], faster).
    pub fn signer(&self) -> crate::primitives::Ed25519Signer {
        let seed = zeroize::Zeroizing::new(self.signing.to_bytes());
        crate::primitives::Ed25519Signer::from_seed(&seed)
    }

    /// The dalek signing key (for modules that need hazmat operations).
    #[allow(dead_code)]
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKey").field("session_id", &self.session_id().short()).finish_non_exhaustive()
    }
}

/// `crypto_sign_ed25519_sk_to_curve25519`: clamp(SHA-512(seed)[0..32]).
pub fn ed25519_seed_to_x25519_secret(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut h = sha512(&[seed]);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&h[..32]);
    h.zeroize();
    out[0] &= 248;
    out[31] &= 127;
    out[31] |= 64;
    out
}

/// `crypto_sign_ed25519_pk_to_curve25519`: u = (1+y)/(1−y). Rejects what libsodium rejects:
/// non-decodable points, small-order points and points outside the prime-order subgroup.
pub fn ed25519_to_x25519(ed25519_public: &[u8; 32]) -> Result<[u8; 32], KeyError> {
    let point = CompressedEdwardsY(*ed25519_public).decompress().ok_or(KeyError::InvalidEd25519Key)?;
    if point.is_small_order() || !is_torsion_free(&point) {
        return Err(KeyError::InvalidEd25519Key);
    }
    Ok(point.to_montgomery().to_bytes())
}

/// The XEd25519 "positive" Ed25519 key of an X25519 key: y = (u−1)/(u+1), sign bit 0
/// (crypto §1.3). Equals the real key, or the real key with bit 255 flipped.
pub fn xed25519_public(x25519_public: &[u8; 32]) -> Result<[u8; 32], KeyError> {
    let point = MontgomeryPoint(*x25519_public).to_edwards(0).ok_or(KeyError::InvalidX25519Key)?;
    Ok(point.compress().to_bytes())
}

/// Verifies a plain Ed25519 signature with ed25519-dalek's `verify_strict` rules (as libsodium
/// does, except that a non-canonical encoding of a key is accepted, as dalek does): `s < L`, the
/// key decodable and not of small order, and `R` the encoding of `[s]B − [k]A`, not of small
/// order. Returns false on any malformed input. Through [`Ed25519Verifier`], which a caller that
/// verifies many signatures by one key can keep.
pub fn verify_ed25519(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <&[u8; 64]>::try_from(signature) else { return false };
    Ed25519Verifier::new(public).is_some_and(|key| key.verify(message, signature))
}

/// An Ed25519 public key decoded once, to verify many signatures by it: [`verify_ed25519`]
/// without the decompression of `A` on every call, and without any decompression of `R` (it is
/// compared as bytes with the encoding of `[s]B − [k]A`, which implies what `verify_strict`'s
/// decompression of `R` checks). Public data only: variable time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519Verifier {
    public: [u8; 32],
    point: EdwardsPoint,
}

impl Ed25519Verifier {
    /// Decodes `public`. `None` when no signature can verify under it: the bytes are not a point,
    /// or the point has small order (ed25519-dalek's `verify_strict` refuses such keys). A
    /// non-canonical encoding (y ≥ p) is decoded as dalek decodes it, and the signed hash
    /// covers the bytes as given.
    pub fn new(public: &[u8; 32]) -> Option<Self> {
        let point = CompressedEdwardsY(*public).decompress()?;
        if point.is_small_order() {
            return None;
        }
        Some(Self { public: *public, point })
    }

    /// The key's 32 bytes, as given to [`Ed25519Verifier::new`].
    pub fn public_bytes(&self) -> &[u8; 32] {
        &self.public
    }

    /// The decoded point `A`.
    pub(crate) fn point(&self) -> &EdwardsPoint {
        &self.point
    }

    /// Verifies `signature` (`R || s`) on `message`, with [`verify_ed25519`]'s rules.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.verify_parts(&[message], signature)
    }

    /// [`Ed25519Verifier::verify`] of the concatenation of `parts`, without joining them.
    pub fn verify_parts(&self, parts: &[&[u8]], signature: &[u8; 64]) -> bool {
        let (r, s) = signature.split_at(32);
        let Ok(s) = <[u8; 32]>::try_from(s) else { return false };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else { return false };
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(self.public);
        for part in parts {
            hash.update(part);
        }
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let expected_r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-self.point, &s);
        // Equal bytes mean R is the canonical encoding of `expected_r`, so `R` small-order (which
        // verify_strict refuses) is `expected_r` small-order.
        expected_r.compress().as_bytes() == r && !expected_r.is_small_order()
    }
}

impl std::fmt::Debug for Ed25519Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A short prefix: logs carry no full keys.
        write!(f, "Ed25519Verifier({}…)", hex::encode(&self.public[..4]))
    }
}

/// `[L]P == identity`, computed as `[L−1]P + P` with the variable-time double-base
/// multiplication (the key is public, so variable time is fine and it is cheaper than the
/// constant-time `[L]P` of `EdwardsPoint::is_torsion_free`).
pub(crate) fn is_torsion_free(point: &EdwardsPoint) -> bool {
    let l_minus_one = -Scalar::ONE;
    (EdwardsPoint::vartime_double_scalar_mul_basepoint(&l_minus_one, point, &Scalar::ZERO) + point)
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lengths() {
        assert!(AccountSeed::from_slice(&[1u8; 16]).unwrap().is_legacy());
        assert!(!AccountSeed::from_slice(&[1u8; 32]).unwrap().is_legacy());
        assert_eq!(AccountSeed::from_slice(&[1u8; 20]), Err(KeyError::SeedLength(20)));
    }

    #[test]
    fn x25519_conversion_agrees_with_base_point() {
        let key = IdentityKey::from_seed_bytes(&[42u8; 32]);
        assert_eq!(ed25519_to_x25519(&key.ed25519_public()).unwrap(), *key.x25519_public());
        assert_eq!(crate::primitives::x25519_base(key.x25519_secret()), *key.x25519_public());
        let pos = xed25519_public(key.x25519_public()).unwrap();
        let mut real = key.ed25519_public();
        real[31] &= 0x7f;
        assert_eq!(pos, real);
    }

    #[test]
    fn debug_hides_secrets() {
        let key = IdentityKey::from_seed_bytes(&[42u8; 32]);
        let text = format!("{key:?} {:?}", AccountSeed::from_bytes([42u8; 32]));
        assert!(!text.contains(&hex::encode(key.seed().as_slice())));
        assert!(!text.contains(&hex::encode(key.x25519_public())));
    }

    /// [`verify_ed25519`] and [`Ed25519Verifier`] accept exactly what ed25519-dalek's
    /// `verify_strict` accepts: a valid signature, every single-bit corruption of A, R and s,
    /// s + L (non-canonical s), small-order A and R (with s = 0 and with the real s), a key with
    /// an order-2 component (accepted by both when k is even), and non-canonical encodings
    /// (y ≥ p) of keys that decode.
    #[test]
    fn verifier_agrees_with_verify_strict() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use ed25519_dalek::{Signature, VerifyingKey};
        let strict = |a: &[u8; 32], m: &[u8], sig: &[u8; 64]| {
            VerifyingKey::from_bytes(a)
                .is_ok_and(|key| key.verify_strict(m, &Signature::from_bytes(sig)).is_ok())
        };
        let key = IdentityKey::from_seed_bytes(&[7u8; 32]);
        let message = b"session-node-channel/v1\nPOST\n/node/v1/onion".to_vec();
        let signature = key.sign(&message);
        let mut cases = vec![(key.ed25519_public(), message.clone(), signature)];
        for bit in 0..256 {
            let mut a = key.ed25519_public();
            a[bit / 8] ^= 1 << (bit % 8);
            cases.push((a, message.clone(), signature));
        }
        for bit in 0..512 {
            let mut sig = signature;
            sig[bit / 8] ^= 1 << (bit % 8);
            cases.push((key.ed25519_public(), message.clone(), sig));
        }
        let s = Scalar::from_canonical_bytes(signature[32..].try_into().unwrap()).unwrap();
        let mut s_plus_l = signature;
        s_plus_l[32..].copy_from_slice(&add_l(s.as_bytes()));
        cases.push((key.ed25519_public(), message.clone(), s_plus_l));
        for t in EIGHT_TORSION {
            let small = t.compress().to_bytes();
            let mut zero_s = [0u8; 64];
            zero_s[..32].copy_from_slice(&small);
            let mut real_s = signature;
            real_s[..32].copy_from_slice(&small);
            cases.push((key.ed25519_public(), message.clone(), zero_s));
            cases.push((key.ed25519_public(), message.clone(), real_s));
            cases.push((small, message.clone(), zero_s));
            cases.push((small, message.clone(), signature));
        }

        // A' = aB + T (T of order 2), R = rB, s = r + k·a with k = H(R || A' || M) even:
        // [s]B − [k]A' = R − [k]T = R, so verify_strict accepts it.
        let a = Scalar::from_bytes_mod_order(*key.x25519_secret());
        let t2 = EIGHT_TORSION.iter().find(|t| !t.is_identity() && (*t + *t).is_identity()).unwrap();
        let mixed = (EdwardsPoint::mul_base(&a) + t2).compress().to_bytes();
        let (r, k) = (1u64..)
            .map(|i| {
                let r = Scalar::from(i);
                let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
                (r, Scalar::from_bytes_mod_order_wide(&sha512(&[&big_r, &mixed, &message])))
            })
            .find(|(_, k)| k.as_bytes()[0] & 1 == 0)
            .unwrap();
        let mut torsioned = [0u8; 64];
        torsioned[..32].copy_from_slice(EdwardsPoint::mul_base(&r).compress().as_bytes());
        torsioned[32..].copy_from_slice((r + k * a).as_bytes());
        cases.push((mixed, message.clone(), torsioned));

        // y + p for small y: non-canonical encodings; dalek decodes those that are points.
        let mut non_canonical = 0;
        for y in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut a = [0xffu8; 32];
                a[0] = 0xed + y;
                a[31] = 0x7f | sign;
                non_canonical += usize::from(CompressedEdwardsY(a).decompress().is_some());
                cases.push((a, message.clone(), signature));
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&a);
                cases.push((a, message.clone(), sig));
            }
        }
        assert!(non_canonical > 4, "some non-canonical encodings decode");

        let mut accepted = 0;
        for (i, (a, m, sig)) in cases.iter().enumerate() {
            let expected = strict(a, m, sig);
            assert_eq!(verify_ed25519(a, m, sig), expected, "case {i}");
            let verifier = Ed25519Verifier::new(a);
            assert_eq!(
                verifier.is_some(),
                VerifyingKey::from_bytes(a).is_ok_and(|k| !k.is_weak()),
                "case {i}"
            );
            assert_eq!(
                verifier.is_some_and(|v| v.verify_parts(&[&m[..3], &m[3..]], sig)),
                expected,
                "case {i}"
            );
            accepted += usize::from(expected);
        }
        assert_eq!(accepted, 2, "the valid signature and the torsioned key");
        assert!(!verify_ed25519(&key.ed25519_public(), &message, &signature[..63]));
    }

    /// `s + L` as 32 little-endian bytes (s < L, so it fits).
    fn add_l(s: &[u8; 32]) -> [u8; 32] {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(L[i]) + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
        }
        out
    }

    #[test]
    fn small_order_key_rejected() {
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(ed25519_to_x25519(&identity), Err(KeyError::InvalidEd25519Key));
    }
}
