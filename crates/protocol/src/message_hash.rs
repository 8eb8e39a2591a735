//! Namespaces and the message hash (network §3.1, §3.2).
//!
//! A [`Namespace`] is the signed 16-bit number that partitions an account's messages; its
//! predicates carry the storage server's access rules. A [`MessageHash`] is the 43-character
//! unpadded base64 BLAKE2b-256 hash that identifies a stored message network-wide.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::primitives::{decimal_ascii, write_signed_decimal};

/// A message namespace: a signed 16-bit integer (network §3.1). Omitting the namespace in a
/// request is the same as [`Namespace::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Namespace(pub i16);

impl Namespace {
    /// 0: one-to-one messages to a Session ID (public inbox).
    pub const DEFAULT: Self = Self(0);
    /// 2: user profile config.
    pub const USER_PROFILE: Self = Self(2);
    /// 3: contacts config.
    pub const CONTACTS: Self = Self(3);
    /// 4: conversation-info-volatile config.
    pub const CONVO_INFO_VOLATILE: Self = Self(4);
    /// 5: user groups config.
    pub const USER_GROUPS: Self = Self(5);
    /// 11: group (`03`) messages.
    pub const GROUP_MESSAGES: Self = Self(11);
    /// 12: group keys.
    pub const GROUP_KEYS: Self = Self(12);
    /// 13: group info.
    pub const GROUP_INFO: Self = Self(13);
    /// 14: group members.
    pub const GROUP_MEMBERS: Self = Self(14);
    /// −10: legacy closed groups (deprecated): unauthenticated store *and* retrieve.
    pub const LEGACY_CLOSED_GROUP: Self = Self(-10);
    /// −11: group messages that revoked subaccounts may still retrieve (removal notices).
    pub const GROUP_REVOKED_RETRIEVABLE: Self = Self(-11);

    /// True for namespace 0, which signatures write as the empty string.
    pub fn is_default(self) -> bool {
        self.0 == 0
    }

    /// Public inbox (`ns % 10 == 0`): anyone may store without a signature, and the storage
    /// server ignores a signature if one is supplied.
    pub fn is_public_inbox(self) -> bool {
        self.0 % 10 == 0
    }

    /// A store into this namespace needs a valid signature (every non-public-inbox namespace).
    pub fn store_requires_auth(self) -> bool {
        !self.is_public_inbox()
    }

    /// Public outbox: negative namespaces with `(-ns) % 20 == 1` (−1, −21, −41, …). Anyone may
    /// retrieve; a store needs auth and first deletes the owner's other messages there, so a
    /// subaccount needs Write and Delete.
    pub fn is_public_outbox(self) -> bool {
        let n = i32::from(self.0);
        n < 0 && (-n) % 20 == 1
    }

    /// Unrevocable: negative namespaces with `(-ns) % 100 == 11` (−11, −111, …). A revoked
    /// subaccount may still retrieve from them.
    pub fn is_unrevocable(self) -> bool {
        let n = i32::from(self.0);
        n < 0 && (-n) % 100 == 11
    }

    /// A retrieve from this namespace needs a signature: everything except −10 and the public
    /// outboxes. Note that namespace 0 **does** need one.
    pub fn retrieve_requires_auth(self) -> bool {
        !(self == Self::LEGACY_CLOSED_GROUP || self.is_public_outbox())
    }

    /// Namespaces −30..=30 are reserved for Session itself.
    pub fn is_reserved_for_session(self) -> bool {
        (-30..=30).contains(&self.0)
    }

    /// Appends the namespace as request signatures and message hashes write it: nothing for
    /// namespace 0, otherwise the ASCII decimal number (network §3.2, §3.3).
    pub fn write_signature_component(self, out: &mut Vec<u8>) {
        if !self.is_default() {
            write_signed_decimal(out, i64::from(self.0));
        }
    }
}

impl From<i16> for Namespace {
    fn from(value: i16) -> Self {
        Self(value)
    }
}

impl TryFrom<i64> for Namespace {
    type Error = NamespaceOutOfRange;

    /// Accepts −32768..=32767, as the storage server does (network §2.4).
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        i16::try_from(value).map(Self).map_err(|_| NamespaceOutOfRange)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A namespace number outside −32768..=32767.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("namespace out of range (must fit in a signed 16-bit integer)")]
pub struct NamespaceOutOfRange;

/// The hash that identifies a stored message: 43 characters of unpadded standard base64
/// (network §3.2). Stored as its ASCII bytes, which is also how it is signed and bt-encoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHash([u8; MessageHash::LEN]);

impl MessageHash {
    /// The length of a hash in characters.
    pub const LEN: usize = 43;

    /// `base64_no_padding(BLAKE2b-256(pubkey33 || NS || data))`, where NS is empty for namespace
    /// 0 and the ASCII decimal namespace otherwise, and `data` is the raw message bytes
    /// (SS `computeMessageHash`).
    pub fn compute(pubkey: &[u8; 33], namespace: Namespace, data: &[u8]) -> Self {
        let mut ns_buf = [0u8; 21];
        let ns: &[u8] = if namespace.is_default() {
            &[]
        } else {
            decimal_ascii(u64::from(namespace.0.unsigned_abs()), namespace.0 < 0, &mut ns_buf)
        };
        let digest = blake2b_simd::Params::new()
            .hash_length(32)
            .to_state()
            .update(pubkey)
            .update(ns)
            .update(data)
            .finalize();
        let mut out = [0u8; Self::LEN];
        let written = STANDARD_NO_PAD
            .encode_slice(digest.as_bytes(), &mut out)
            .expect("32 bytes encode to exactly 43 base64 characters");
        debug_assert_eq!(written, Self::LEN);
        Self(out)
    }

    /// Accepts 43 characters of the standard base64 alphabet (`A–Z a–z 0–9 + /`), the shape the
    /// storage server requires of `last_hash` and of hash lists. Hashes from other sources are not
    /// otherwise checked (the trailing bits need not be zero).
    pub fn from_ascii(text: &[u8]) -> Result<Self, InvalidMessageHash> {
        let bytes: [u8; Self::LEN] = text.try_into().map_err(|_| InvalidMessageHash)?;
        if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/') {
            return Err(InvalidMessageHash);
        }
        Ok(Self(bytes))
    }

    /// The hash as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("constructors only admit ASCII base64 characters")
    }

    /// The hash's ASCII bytes.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl FromStr for MessageHash {
    type Err = InvalidMessageHash;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_ascii(text.as_bytes())
    }
}

impl fmt::Display for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageHash({})", self.as_str())
    }
}

impl AsRef<[u8]> for MessageHash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A message hash is not 43 standard-base64 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a message hash must be 43 characters of unpadded standard base64")]
pub struct InvalidMessageHash;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        let ns = Namespace;
        assert!(ns(0).is_public_inbox() && ns(-10).is_public_inbox() && ns(60).is_public_inbox());
        assert!(!ns(2).is_public_inbox() && !ns(-15).is_public_inbox());
        assert!(ns(-1).is_public_outbox() && ns(-21).is_public_outbox() && ns(-981).is_public_outbox());
        assert!(!ns(1).is_public_outbox() && !ns(-11).is_public_outbox());
        assert!(ns(-11).is_unrevocable() && ns(-111).is_unrevocable() && ns(-12311).is_unrevocable());
        assert!(!ns(11).is_unrevocable() && !ns(-12).is_unrevocable());
        assert!(ns(0).retrieve_requires_auth());
        assert!(!ns(-10).retrieve_requires_auth() && !ns(-21).retrieve_requires_auth());
        assert!(ns(i16::MIN).retrieve_requires_auth() && !ns(i16::MIN).is_unrevocable());
        assert_eq!(Namespace::try_from(40_000i64), Err(NamespaceOutOfRange));
        assert_eq!(Namespace::try_from(-32_768i64), Ok(ns(i16::MIN)));
    }

    #[test]
    fn signature_component() {
        let mut out = Vec::new();
        Namespace(0).write_signature_component(&mut out);
        assert!(out.is_empty());
        Namespace(-10).write_signature_component(&mut out);
        assert_eq!(out, b"-10");
    }

    #[test]
    fn hash_parsing() {
        let h = MessageHash::compute(&[5u8; 33], Namespace(3), b"hi");
        assert_eq!(h.as_str().parse::<MessageHash>(), Ok(h));
        assert!("abc".parse::<MessageHash>().is_err());
        assert!("=".repeat(43).parse::<MessageHash>().is_err());
    }
}
