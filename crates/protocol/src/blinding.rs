//! Community blinding (crypto §5.1–5.3, §5.5): 15/25-blinded ids, key pairs and signatures, and
//! the version-check ("07") key.
//!
//! A community (SOGS) server never sees a user's Session ID. Instead the user presents a blinded
//! Ed25519 key `kA` derived from the server's public key:
//!
//! * **15-blinding** (§5.1): `k = reduce64(BLAKE2b-64(server_pk))`, the same for every user, so
//!   anyone who knows a Session ID and the server key can compute the id (up to its sign bit).
//! * **25-blinding** (§5.2): `k = reduce64(BLAKE2b-64(05 || X || server_pk))`, per user, with
//!   no sign ambiguity.
//!
//! Point arithmetic reproduces libsodium's `crypto_scalarmult_ed25519[_base]_noclamp`: only bit
//! 255 of a scalar is cleared, points must be canonical, of large order and in the prime-order
//! subgroup, and an identity result is an error ([`BlindingError`]).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use zeroize::{Zeroize, Zeroizing};

use crate::id::{IdPrefix, SessionId};
use crate::keys::{IdentityKey, is_torsion_free, xed25519_public};
use crate::primitives::{blake2b_32, blake2b_n, sha512};

/// BLAKE2b key for the 25-blinding nonce seed (crypto §5.3).
const BLIND25_SEED_KEY: &[u8] = b"SessCommBlind25_seed";
/// BLAKE2b key for the 25-blinding nonce (crypto §5.3).
const BLIND25_SIG_KEY: &[u8] = b"SessCommBlind25_sig";
/// BLAKE2b key for the version-check key seed (crypto §5.5).
const VERSION_KEY_SEED_KEY: &[u8] = b"VersionCheckKey_sig";

/// A blinded id, key pair or signature could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlindingError {
    /// The Session ID to blind does not have the standard `05` prefix.
    #[error("only a standard (05) Session ID can be blinded; got prefix {0:02x}")]
    NotStandardId(u8),
    /// A public key is not a canonical Ed25519 point of large order in the prime-order subgroup
    /// (libsodium: "invalid session id / not on main subgroup").
    #[error("public key is not a valid point in the prime-order subgroup")]
    InvalidPoint,
    /// The scalar multiplication gave the identity point (libsodium rejects this).
    #[error("blinding produced the identity point")]
    IdentityResult,
}

/// Which community blinding scheme (crypto §5.1, §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blinding {
    /// Legacy 15-blinding: the factor depends on the server key only.
    Blind15,
    /// 25-blinding: the factor depends on the Session ID and the server key.
    Blind25,
}

impl Blinding {
    /// The Session ID prefix of ids blinded this way (`15` or `25`).
    pub fn prefix(self) -> IdPrefix {
        match self {
            Self::Blind15 => IdPrefix::Blinded15,
            Self::Blind25 => IdPrefix::Blinded25,
        }
    }

    /// The blinding a prefix stands for, if it is a blinded prefix.
    pub fn from_prefix(prefix: IdPrefix) -> Option<Self> {
        match prefix {
            IdPrefix::Blinded15 => Some(Self::Blind15),
            IdPrefix::Blinded25 => Some(Self::Blind25),
            _ => None,
        }
    }
}

/// Which nonce derivation a 15-blinded signature uses (crypto §5.3). Both verify under the same
/// key; they only produce different signature bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonceStyle {
    /// libsession `blind15_sign`: `r = reduce64(SHA-512(SHA-512(sk64)[32..64] || kA || M))`.
    Libsession,
    /// desktop `blindedED25519Signature` (used for SOGS request headers):
    /// `r = reduce64(SHA-512(SHA-512(seed32)[32..64] || kA || M))`.
    Desktop,
}

/// The 15-blinding factor `k = reduce64(BLAKE2b-64(server_pk))`, canonical little-endian
/// (crypto §5.1). Not secret.
pub fn blind15_factor(server_pk: &[u8; 32]) -> [u8; 32] {
    factor15(server_pk).to_bytes()
}

/// The 25-blinding factor `k = reduce64(BLAKE2b-64(05 || X || server_pk))` of a standard
/// Session ID, canonical little-endian (crypto §5.2). Not secret.
pub fn blind25_factor(session_id: &SessionId, server_pk: &[u8; 32]) -> Result<[u8; 32], BlindingError> {
    require_standard(session_id)?;
    Ok(factor25(session_id.key(), server_pk).to_bytes())
}

/// The 15-blinded ids of a Session ID (crypto §5.1): `15 || k·A'` with A' the positive Ed25519
/// key recovered from the Session ID, and the same id with bit 255 of the key flipped. The
/// owner's real 15-id (from [`blind15_key_pair`]) is one of the two.
pub fn blind15_id(
    session_id: &SessionId,
    server_pk: &[u8; 32],
) -> Result<(SessionId, SessionId), BlindingError> {
    require_standard(session_id)?;
    let positive = xed25519_public(session_id.key()).map_err(|_| BlindingError::InvalidPoint)?;
    let key = scalarmult_noclamp(&factor15(server_pk), &positive)?;
    Ok((SessionId::new(IdPrefix::Blinded15, key), SessionId::new(IdPrefix::Blinded15, flip_sign(key))))
}

/// The 25-blinded id of a Session ID (crypto §5.2): `25 || k·|A|`. Deterministic: it equals the
/// id of the owner's [`blind25_key_pair`].
pub fn blind25_id(session_id: &SessionId, server_pk: &[u8; 32]) -> Result<SessionId, BlindingError> {
    require_standard(session_id)?;
    let positive = xed25519_public(session_id.key()).map_err(|_| BlindingError::InvalidPoint)?;
    let key = scalarmult_noclamp(&factor25(session_id.key(), server_pk), &positive)?;
    Ok(SessionId::new(IdPrefix::Blinded25, key))
}

/// The exact 15-blinded id `15 || k·A` of an Ed25519 public key (sign bit included), as the
/// key's owner computes it (crypto §5.1).
pub fn blind15_id_from_ed25519(
    ed25519_public: &[u8; 32],
    server_pk: &[u8; 32],
) -> Result<SessionId, BlindingError> {
    blinded_id_and_x25519(ed25519_public, server_pk, Blinding::Blind15).map(|(id, _)| id)
}

/// The 25-blinded id `25 || k·|A|` of an Ed25519 public key (crypto §5.2); k is derived from
/// the key's Session ID.
pub fn blind25_id_from_ed25519(
    ed25519_public: &[u8; 32],
    server_pk: &[u8; 32],
) -> Result<SessionId, BlindingError> {
    blinded_id_and_x25519(ed25519_public, server_pk, Blinding::Blind25).map(|(id, _)| id)
}

/// True when `blinded_id` (15 or 25) belongs to `session_id` on the server `server_pk`
/// (libsession `session_id_matches_blinded_id`). A 15-id matches in either sign form. Ids with
/// other prefixes never match.
pub fn session_id_matches_blinded_id(
    session_id: &SessionId,
    blinded_id: &SessionId,
    server_pk: &[u8; 32],
) -> Result<bool, BlindingError> {
    Ok(match Blinding::from_prefix(blinded_id.prefix()) {
        Some(Blinding::Blind15) => {
            let (id, flipped) = blind15_id(session_id, server_pk)?;
            *blinded_id == id || *blinded_id == flipped
        }
        Some(Blinding::Blind25) => *blinded_id == blind25_id(session_id, server_pk)?,
        None => false,
    })
}

/// A user's blinded key pair for one server: the blinded public key `kA` and the blinded
/// signing scalar `ka` (crypto §5.1, §5.2). The scalar is wiped on drop and never printed.
#[derive(Clone)]
pub struct BlindedKeyPair {
    blinding: Blinding,
    public: [u8; 32],
    secret: Zeroizing<Scalar>,
}

impl BlindedKeyPair {
    /// Which blinding produced this key pair.
    pub fn blinding(&self) -> Blinding {
        self.blinding
    }

    /// The blinded public key `kA` (32 bytes, no prefix).
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The blinded id: the blinding's prefix followed by `kA`.
    pub fn id(&self) -> SessionId {
        SessionId::new(self.blinding.prefix(), self.public)
    }

    /// The blinded scalar `ka` as canonical little-endian bytes.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The blinded scalar, for the blinded DM shared secret.
    pub(crate) fn secret_scalar(&self) -> &Scalar {
        &self.secret
    }
}

impl std::fmt::Debug for BlindedKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindedKeyPair").field("id", &self.id().short()).finish_non_exhaustive()
    }
}

/// The owner's 15-blinded key pair (crypto §5.1): `ka = k·a mod L`, `kA = ka·B`.
pub fn blind15_key_pair(
    identity: &IdentityKey,
    server_pk: &[u8; 32],
) -> Result<BlindedKeyPair, BlindingError> {
    key_pair_with_factor(identity, Blinding::Blind15, factor15(server_pk))
}

/// The owner's 25-blinded key pair (crypto §5.2): `k' = ±k` (negated when the Ed25519 key has
/// bit 255 set), `ka = k'·a`, `kA = ka·B = k·|A|`.
pub fn blind25_key_pair(
    identity: &IdentityKey,
    server_pk: &[u8; 32],
) -> Result<BlindedKeyPair, BlindingError> {
    let mut k = factor25(identity.x25519_public(), server_pk);
    if identity.ed25519_public()[31] & 0x80 != 0 {
        k = -k;
    }
    key_pair_with_factor(identity, Blinding::Blind25, k)
}

/// The owner's key pair for either blinding.
pub fn blinded_key_pair(
    identity: &IdentityKey,
    server_pk: &[u8; 32],
    blinding: Blinding,
) -> Result<BlindedKeyPair, BlindingError> {
    match blinding {
        Blinding::Blind15 => blind15_key_pair(identity, server_pk),
        Blinding::Blind25 => blind25_key_pair(identity, server_pk),
    }
}

/// A 15-blinded signature (crypto §5.3): Ed25519 `(R, S)` that verifies as plain Ed25519 under
/// the blinded key `kA` of [`blind15_key_pair`]. `nonce` picks libsession's or desktop's nonce.
pub fn blind15_sign(
    identity: &IdentityKey,
    server_pk: &[u8; 32],
    message: &[u8],
    nonce: NonceStyle,
) -> Result<[u8; 64], BlindingError> {
    let key_pair = blind15_key_pair(identity, server_pk)?;
    blind15_sign_with(identity, &key_pair, message, nonce)
}

/// A 25-blinded signature (crypto §5.3) with the BLAKE2b nonce
/// `r = reduce64(BLAKE2b-64(BLAKE2b-32(seed; key=SessCommBlind25_seed) || kA || M;
/// key=SessCommBlind25_sig))`; verifies as plain Ed25519 under the key of [`blind25_key_pair`].
pub fn blind25_sign(
    identity: &IdentityKey,
    server_pk: &[u8; 32],
    message: &[u8],
) -> Result<[u8; 64], BlindingError> {
    let key_pair = blind25_key_pair(identity, server_pk)?;
    let seed = identity.seed();
    let h = Zeroizing::new(blake2b_32(BLIND25_SEED_KEY, &[&seed[..]]));
    let mut wide = blake2b_n::<64>(BLIND25_SIG_KEY, &[&h[..], key_pair.public_key(), message]);
    let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide));
    wide.zeroize();
    sign_with_nonce(&key_pair, &r, message)
}

/// The version-check ("07") Ed25519 key (crypto §5.5): seed' = BLAKE2b-32(seed;
/// key=`VersionCheckKey_sig`). Wiped on drop.
#[derive(Clone)]
pub struct VersionBlindedKey {
    signing: SigningKey,
}

impl VersionBlindedKey {
    /// Derives the key from an account identity.
    pub fn from_identity(identity: &IdentityKey) -> Self {
        let seed = identity.seed();
        let derived = Zeroizing::new(blake2b_32(VERSION_KEY_SEED_KEY, &[&seed[..]]));
        Self { signing: SigningKey::from_bytes(&derived) }
    }

    /// The derived 32-byte seed.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The libsodium 64-byte secret key `seed' || pubkey`.
    pub fn secret_key_bytes(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.signing.to_keypair_bytes())
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Plain Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Signs a version-check request: Ed25519 over [`version_request_message`].
    pub fn sign_request(&self, timestamp: u64, method: &str, path: &str, body: Option<&[u8]>) -> [u8; 64] {
        self.sign(&version_request_message(timestamp, method, path, body))
    }
}

impl std::fmt::Debug for VersionBlindedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionBlindedKey").finish_non_exhaustive()
    }
}

/// The bytes a version-check request signs (crypto §5.5):
/// `decimal(timestamp) || method || path [|| body]`.
pub fn version_request_message(timestamp: u64, method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
    let ts = timestamp.to_string();
    let body = body.unwrap_or_default();
    let mut out = Vec::with_capacity(ts.len() + method.len() + path.len() + body.len());
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(body);
    out
}

// ---- crate-internal helpers ----

/// The blinded id of an Ed25519 public key (15: `k·A`, 25: `k·|A|`) together with the key's
/// X25519 form, decoding and validating the point once.
pub(crate) fn blinded_id_and_x25519(
    ed25519_public: &[u8; 32],
    server_pk: &[u8; 32],
    blinding: Blinding,
) -> Result<(SessionId, [u8; 32]), BlindingError> {
    let point = decode_subgroup_point(ed25519_public)?;
    let x25519 = point.to_montgomery().to_bytes();
    let mut product = match blinding {
        Blinding::Blind15 => factor15(server_pk) * point,
        Blinding::Blind25 => factor25(&x25519, server_pk) * point,
    };
    // k·|A| = −(k·A) when A is negative.
    if blinding == Blinding::Blind25 && ed25519_public[31] & 0x80 != 0 {
        product = -product;
    }
    if product.is_identity() {
        return Err(BlindingError::IdentityResult);
    }
    Ok((SessionId::new(blinding.prefix(), product.compress().to_bytes()), x25519))
}

/// A 15-blinded signature with an already computed key pair.
pub(crate) fn blind15_sign_with(
    identity: &IdentityKey,
    key_pair: &BlindedKeyPair,
    message: &[u8],
    nonce: NonceStyle,
) -> Result<[u8; 64], BlindingError> {
    let mut prefix_hash = match nonce {
        NonceStyle::Libsession => sha512(&[&identity.secret_key_bytes()[..]]),
        NonceStyle::Desktop => sha512(&[&identity.seed()[..]]),
    };
    let mut wide = sha512(&[&prefix_hash[32..], key_pair.public_key(), message]);
    prefix_hash.zeroize();
    let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide));
    wide.zeroize();
    sign_with_nonce(key_pair, &r, message)
}

/// `crypto_scalarmult_ed25519_noclamp(scalar, point)`: validates the point like libsodium and
/// rejects an identity result.
pub(crate) fn scalarmult_noclamp(scalar: &Scalar, point: &[u8; 32]) -> Result<[u8; 32], BlindingError> {
    let point = decode_subgroup_point(point)?;
    let product = scalar * point;
    if product.is_identity() {
        return Err(BlindingError::IdentityResult);
    }
    Ok(product.compress().to_bytes())
}

/// The 32-byte point with bit 255 (the sign of x) flipped: the encoding of its negation.
pub(crate) fn flip_sign(mut key: [u8; 32]) -> [u8; 32] {
    key[31] ^= 0x80;
    key
}

fn require_standard(session_id: &SessionId) -> Result<(), BlindingError> {
    match session_id.prefix() {
        IdPrefix::Standard => Ok(()),
        other => Err(BlindingError::NotStandardId(other.byte())),
    }
}

fn factor15(server_pk: &[u8; 32]) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&blake2b_n::<64>(&[], &[server_pk]))
}

fn factor25(x25519_public: &[u8; 32], server_pk: &[u8; 32]) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&blake2b_n::<64>(&[], &[&[0x05], x25519_public, server_pk]))
}

fn key_pair_with_factor(
    identity: &IdentityKey,
    blinding: Blinding,
    k: Scalar,
) -> Result<BlindedKeyPair, BlindingError> {
    let a = Zeroizing::new(Scalar::from_bytes_mod_order(*identity.x25519_secret()));
    let secret = Zeroizing::new(k * *a);
    let public = scalarmult_base_noclamp(&secret)?;
    Ok(BlindedKeyPair { blinding, public, secret })
}

/// `crypto_scalarmult_ed25519_base_noclamp` for a reduced scalar; rejects an identity result.
fn scalarmult_base_noclamp(scalar: &Scalar) -> Result<[u8; 32], BlindingError> {
    let point = EdwardsPoint::mul_base(scalar);
    if point.is_identity() {
        return Err(BlindingError::IdentityResult);
    }
    Ok(point.compress().to_bytes())
}

/// Decodes a point the way libsodium's noclamp multiplication accepts it: canonical encoding,
/// not of small order, in the prime-order subgroup.
fn decode_subgroup_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, BlindingError> {
    let point = CompressedEdwardsY(*bytes).decompress().ok_or(BlindingError::InvalidPoint)?;
    // A non-canonical y (≥ p) does not re-encode to the same bytes; libsodium rejects it.
    if point.compress().as_bytes() != bytes || point.is_small_order() || !is_torsion_free(&point) {
        return Err(BlindingError::InvalidPoint);
    }
    Ok(point)
}

/// Ed25519 signature `(R, S)` with the blinded key: `R = r·B`,
/// `S = r + reduce64(SHA-512(R || kA || M))·ka` (crypto §5.3).
fn sign_with_nonce(key_pair: &BlindedKeyPair, r: &Scalar, message: &[u8]) -> Result<[u8; 64], BlindingError> {
    let big_r = scalarmult_base_noclamp(r)?;
    let hram = Scalar::from_bytes_mod_order_wide(&sha512(&[&big_r, key_pair.public_key(), message]));
    let s = hram * key_pair.secret_scalar() + r;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::verify_ed25519;

    const SERVER: [u8; 32] = [0xab; 32];

    #[test]
    fn key_pairs_match_ids_from_session_id() {
        for seed in [[1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]] {
            let identity = IdentityKey::from_seed_bytes(&seed);
            let sid = identity.session_id();
            let kp15 = blind15_key_pair(&identity, &SERVER).unwrap();
            let (a, b) = blind15_id(&sid, &SERVER).unwrap();
            assert!(kp15.id() == a || kp15.id() == b);
            assert_eq!(blind15_id_from_ed25519(&identity.ed25519_public(), &SERVER).unwrap(), kp15.id());
            let kp25 = blind25_key_pair(&identity, &SERVER).unwrap();
            assert_eq!(blind25_id(&sid, &SERVER).unwrap(), kp25.id());
            assert_eq!(blind25_id_from_ed25519(&identity.ed25519_public(), &SERVER).unwrap(), kp25.id());
            assert!(session_id_matches_blinded_id(&sid, &kp15.id(), &SERVER).unwrap());
            assert!(session_id_matches_blinded_id(&sid, &kp25.id(), &SERVER).unwrap());
            assert!(!session_id_matches_blinded_id(&sid, &kp25.id(), &[0xcd; 32]).unwrap());
        }
    }

    #[test]
    fn signatures_verify() {
        let identity = IdentityKey::from_seed_bytes(&[9u8; 32]);
        let kp15 = blind15_key_pair(&identity, &SERVER).unwrap();
        let kp25 = blind25_key_pair(&identity, &SERVER).unwrap();
        let lib = blind15_sign(&identity, &SERVER, b"msg", NonceStyle::Libsession).unwrap();
        let desk = blind15_sign(&identity, &SERVER, b"msg", NonceStyle::Desktop).unwrap();
        assert_ne!(lib, desk);
        assert!(verify_ed25519(kp15.public_key(), b"msg", &lib));
        assert!(verify_ed25519(kp15.public_key(), b"msg", &desk));
        let sig25 = blind25_sign(&identity, &SERVER, b"msg").unwrap();
        assert!(verify_ed25519(kp25.public_key(), b"msg", &sig25));
        assert!(!verify_ed25519(kp25.public_key(), b"msg!", &sig25));
    }

    #[test]
    fn invalid_points_rejected() {
        // Identity (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(blind15_id_from_ed25519(&identity, &SERVER), Err(BlindingError::InvalidPoint));
        // Non-canonical encoding of y = 1 (y + p).
        let mut noncanon = [0xffu8; 32];
        noncanon[0] = 0xee;
        noncanon[31] = 0x7f;
        assert_eq!(blind15_id_from_ed25519(&noncanon, &SERVER), Err(BlindingError::InvalidPoint));
        // A point with a torsion component: A + T where T has order 2 (y = -1).
        let a = EdwardsPoint::mul_base(&Scalar::from(7u64));
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let t = CompressedEdwardsY(minus_one).decompress().unwrap();
        let mixed = (a + t).compress().to_bytes();
        assert_eq!(blind15_id_from_ed25519(&mixed, &SERVER), Err(BlindingError::InvalidPoint));
        // Group id is not blindable.
        let group = SessionId::new(IdPrefix::Group, [1; 32]);
        assert_eq!(blind25_id(&group, &SERVER), Err(BlindingError::NotStandardId(3)));
    }

    #[test]
    fn version_message_format() {
        assert_eq!(
            version_request_message(1234567890, "GET", "/session_version?platform=desktop", None),
            b"1234567890GET/session_version?platform=desktop"
        );
        assert_eq!(version_request_message(1, "POST", "/x", Some(b"body")), b"1POST/xbody");
    }

    #[test]
    fn debug_hides_secrets() {
        let identity = IdentityKey::from_seed_bytes(&[9u8; 32]);
        let kp = blind15_key_pair(&identity, &SERVER).unwrap();
        let text = format!("{kp:?} {:?}", VersionBlindedKey::from_identity(&identity));
        assert!(!text.contains(&hex::encode(&kp.secret_bytes()[..])));
        assert!(!text.contains(&hex::encode(kp.public_key())));
    }
}
