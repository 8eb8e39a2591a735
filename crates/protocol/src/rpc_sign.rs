//! Signed strings of storage RPC methods, monitor signatures and subaccount tokens (network §3.3,
//! §3.4, §4.16).
//!
//! One description of what each method signs, [`SignableRequest`], serves both sides: the client
//! builds the message and signs it ([`SignableRequest::sign`]); the node rebuilds it from the
//! parsed request and checks it ([`verify_request`]), including the `05` Ed25519 → X25519 binding
//! and subaccount tokens. Revocation lists live in the node's database and are checked there.

use std::ops::{BitAnd, BitOr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::bencode::{BtDictWriter, BtError, BtReader};
use crate::keys::{IdentityKey, ed25519_to_x25519, verify_ed25519};
use crate::message_hash::{MessageHash, Namespace};
use crate::primitives::{write_decimal, write_signed_decimal};

/// The namespace parameter of the delete/expire-all family: one namespace or `"all"`
/// (network §3.3 "NSV").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceSelector {
    /// A single namespace (the default when the parameter is omitted is namespace 0).
    One(Namespace),
    /// Every namespace of the account.
    All,
}

impl NamespaceSelector {
    /// Appends the signature component: empty for namespace 0, `all`, or the decimal number.
    pub fn write_signature_component(self, out: &mut Vec<u8>) {
        match self {
            Self::One(ns) => ns.write_signature_component(out),
            Self::All => out.extend_from_slice(b"all"),
        }
    }
}

impl Default for NamespaceSelector {
    fn default() -> Self {
        Self::One(Namespace::DEFAULT)
    }
}

impl From<Namespace> for NamespaceSelector {
    fn from(ns: Namespace) -> Self {
        Self::One(ns)
    }
}

/// The `shorten` / `extend` flag of an `expire` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExpireMode {
    /// Neither flag: set the expiry, whichever direction.
    #[default]
    Set,
    /// `shorten: true`: only ever make expiries earlier.
    Shorten,
    /// `extend: true`: only ever make expiries later.
    Extend,
}

impl ExpireMode {
    /// The word in the signed message: `shorten`, `extend` or empty.
    pub fn signature_word(self) -> &'static str {
        match self {
            Self::Set => "",
            Self::Shorten => "shorten",
            Self::Extend => "extend",
        }
    }
}

/// What a signed storage RPC request signs (network §3.3). Timestamps are Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignableRequest<'a> {
    /// `"store" || NS || sig_timestamp` — only for namespaces that need auth; `sig_timestamp` is
    /// the request's `sig_timestamp`, or its `timestamp` when that is absent.
    Store {
        /// Target namespace.
        namespace: Namespace,
        /// `sig_timestamp`, defaulting to `timestamp`.
        sig_timestamp: u64,
    },
    /// `"retrieve" || NS || timestamp`.
    Retrieve {
        /// Namespace read from.
        namespace: Namespace,
        /// Signature timestamp.
        timestamp: u64,
    },
    /// `"delete" || hash_1 || … || hash_n`, request order, **no timestamp**.
    Delete {
        /// Hashes to delete, as sent.
        messages: &'a [MessageHash],
    },
    /// `"delete_all" || NSV || timestamp`.
    DeleteAll {
        /// Namespace or all.
        namespace: NamespaceSelector,
        /// Signature timestamp.
        timestamp: u64,
    },
    /// `"delete_before" || NSV || before`.
    DeleteBefore {
        /// Namespace or all.
        namespace: NamespaceSelector,
        /// Deletes messages with `timestamp <= before`.
        before: u64,
    },
    /// `"expire_all" || NSV || expiry`.
    ExpireAll {
        /// Namespace or all.
        namespace: NamespaceSelector,
        /// New (earlier) expiry.
        expiry: u64,
    },
    /// `"expire" || MODE || expiry_1 … || hash_1 || … || hash_n` with the requested (not the
    /// applied) expiries; one expiry, or one per hash.
    Expire {
        /// `shorten` / `extend` / neither.
        mode: ExpireMode,
        /// The requested expiries, in request order.
        expiries: &'a [u64],
        /// Hashes, in request order.
        messages: &'a [MessageHash],
    },
    /// `"get_expiries" || timestamp || hash_1 || … || hash_n`.
    GetExpiries {
        /// Signature timestamp.
        timestamp: u64,
        /// Hashes, in request order.
        messages: &'a [MessageHash],
    },
    /// `"revoke_subaccount" || timestamp || token_1 || …` (raw 36-byte tokens).
    RevokeSubaccount {
        /// Signature timestamp.
        timestamp: u64,
        /// Tokens to revoke.
        tokens: &'a [SubaccountToken],
    },
    /// `"unrevoke_subaccount" || timestamp || token_1 || …`.
    UnrevokeSubaccount {
        /// Signature timestamp.
        timestamp: u64,
        /// Tokens to unrevoke.
        tokens: &'a [SubaccountToken],
    },
}

impl SignableRequest<'_> {
    /// The RPC method name, which is also the first word of the signed message.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Store { .. } => "store",
            Self::Retrieve { .. } => "retrieve",
            Self::Delete { .. } => "delete",
            Self::DeleteAll { .. } => "delete_all",
            Self::DeleteBefore { .. } => "delete_before",
            Self::ExpireAll { .. } => "expire_all",
            Self::Expire { .. } => "expire",
            Self::GetExpiries { .. } => "get_expiries",
            Self::RevokeSubaccount { .. } => "revoke_subaccount",
            Self::UnrevokeSubaccount { .. } => "unrevoke_subaccount",
        }
    }

    /// Appends the exact bytes that are signed.
    pub fn write_message(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method().as_bytes());
        match *self {
            Self::Store { namespace, sig_timestamp: t } | Self::Retrieve { namespace, timestamp: t } => {
                namespace.write_signature_component(out);
                write_decimal(out, t);
            }
            Self::Delete { messages } => push_hashes(out, messages),
            Self::DeleteAll { namespace, timestamp: t }
            | Self::DeleteBefore { namespace, before: t }
            | Self::ExpireAll { namespace, expiry: t } => {
                namespace.write_signature_component(out);
                write_decimal(out, t);
            }
            Self::Expire { mode, expiries, messages } => {
                out.extend_from_slice(mode.signature_word().as_bytes());
                for &expiry in expiries {
                    write_decimal(out, expiry);
                }
                push_hashes(out, messages);
            }
            Self::GetExpiries { timestamp, messages } => {
                write_decimal(out, timestamp);
                push_hashes(out, messages);
            }
            Self::RevokeSubaccount { timestamp, tokens } | Self::UnrevokeSubaccount { timestamp, tokens } => {
                write_decimal(out, timestamp);
                for token in tokens {
                    out.extend_from_slice(token.as_bytes());
                }
            }
        }
    }

    /// The exact bytes that are signed.
    pub fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_message(&mut out);
        out
    }

    /// Signs with the account's own key (for `05` accounts the Ed25519 key behind the Session ID).
    /// Subaccount and group-member signatures use [`SignableRequest::message`] with their own key.
    pub fn sign(&self, key: &IdentityKey) -> [u8; 64] {
        key.sign(&self.message())
    }

    /// Whether the storage server demands a signature: a store only for namespaces that are not
    /// public inboxes, a retrieve unless the namespace allows unauthenticated reads (a retrieve
    /// carrying any auth field is checked anyway), every other method always.
    pub fn requires_signature(&self) -> bool {
        match self {
            Self::Store { namespace, .. } => namespace.store_requires_auth(),
            Self::Retrieve { namespace, .. } => namespace.retrieve_requires_auth(),
            _ => true,
        }
    }

    /// The flags a subaccount token must carry for this request (network §3.4), or `None` if
    /// subaccounts are not accepted at all (revoke/unrevoke). An `expire` needs Write; a
    /// `shorten` also needs Delete (upstream answers 400 rather than 401 for that case), and
    /// without Delete the node must treat a plain expire as extend-only.
    pub fn required_subaccount_flags(&self) -> Option<SubaccountFlags> {
        use SubaccountFlags as F;
        Some(match self {
            Self::Store { namespace, .. } if namespace.is_public_outbox() => F::WRITE | F::DELETE,
            Self::Store { .. } => F::WRITE,
            Self::Retrieve { .. } | Self::GetExpiries { .. } => F::READ,
            Self::Delete { .. }
            | Self::DeleteAll { .. }
            | Self::DeleteBefore { .. }
            | Self::ExpireAll { .. } => F::DELETE,
            Self::Expire { mode: ExpireMode::Shorten, .. } => F::WRITE | F::DELETE,
            Self::Expire { .. } => F::WRITE,
            Self::RevokeSubaccount { .. } | Self::UnrevokeSubaccount { .. } => return None,
        })
    }

    /// True when a subaccount's revocation must be checked: always, except for a retrieve from an
    /// unrevocable namespace.
    pub fn checks_revocation(&self) -> bool {
        !matches!(self, Self::Retrieve { namespace, .. } if namespace.is_unrevocable())
    }
}

/// Subaccount permission bits (network §3.4). Unknown (reserved) bits are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubaccountFlags(pub u8);

impl SubaccountFlags {
    /// No permissions.
    pub const NONE: Self = Self(0);
    /// Read access (retrieve, get_expiries, monitor).
    pub const READ: Self = Self(0x01);
    /// Store, and extend expiries.
    pub const WRITE: Self = Self(0x02);
    /// Delete, and shorten expiries.
    pub const DELETE: Self = Self(0x04);
    /// The token is valid for any account prefix with the same key.
    pub const ANY_PREFIX: Self = Self(0x08);

    /// True if every bit of `other` is set here.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for SubaccountFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitAnd for SubaccountFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

/// A 36-byte subaccount token: `prefix(1) || flags(1) || reserved 00 00 (2) || Ed25519 pubkey
/// (32)` (network §3.4). It is signed by the account owner and names the key that then signs
/// requests.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubaccountToken([u8; SubaccountToken::LEN]);

impl SubaccountToken {
    /// Token length in bytes.
    pub const LEN: usize = 36;

    /// Builds a token for `prefix` granting `flags` to `subaccount_ed25519`.
    pub fn new(prefix: u8, flags: SubaccountFlags, subaccount_ed25519: &[u8; 32]) -> Self {
        let mut token = [0u8; Self::LEN];
        token[0] = prefix;
        token[1] = flags.0;
        token[4..].copy_from_slice(subaccount_ed25519);
        Self(token)
    }

    /// The raw token. The reserved bytes are not checked (the storage server does not either).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidSubaccountToken> {
        bytes.try_into().map(Self).map_err(|_| InvalidSubaccountToken)
    }

    /// The JSON form: 48 base64 characters or 72 hex characters (network §2.4).
    pub fn from_text(text: &str) -> Result<Self, InvalidSubaccountToken> {
        let mut token = [0u8; Self::LEN];
        match text.len() {
            48 => {
                let n = STANDARD.decode_slice(text, &mut token).map_err(|_| InvalidSubaccountToken)?;
                if n != Self::LEN {
                    return Err(InvalidSubaccountToken);
                }
            }
            72 => hex::decode_to_slice(text, &mut token).map_err(|_| InvalidSubaccountToken)?,
            _ => return Err(InvalidSubaccountToken),
        }
        Ok(Self(token))
    }

    /// The token bytes (what the owner signs and what revocation lists store).
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The account prefix byte the token is for.
    pub fn prefix(&self) -> u8 {
        self.0[0]
    }

    /// The permission bits.
    pub fn flags(&self) -> SubaccountFlags {
        SubaccountFlags(self.0[1])
    }

    /// The subaccount's Ed25519 key, which verifies the request signature.
    pub fn ed25519_pubkey(&self) -> &[u8; 32] {
        self.0[4..].try_into().expect("bytes 4..36 of a 36-byte token are 32 bytes")
    }

    /// True if the token may be used for an account with this prefix (same prefix, or AnyPrefix).
    pub fn allows_prefix(&self, prefix: u8) -> bool {
        self.prefix() == prefix || self.flags().contains(SubaccountFlags::ANY_PREFIX)
    }

    /// The owner's signature over the 36 token bytes (`subaccount_sig`). Group owners sign with
    /// the group key; `05` owners with their Ed25519 key.
    pub fn sign(&self, owner: &IdentityKey) -> [u8; 64] {
        owner.sign(&self.0)
    }
}

impl std::fmt::Debug for SubaccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubaccountToken({})", hex::encode(self.0))
    }
}

/// A subaccount token is not 36 bytes (48 base64 / 72 hex characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a subaccount token is 36 bytes (48 base64 or 72 hex characters)")]
pub struct InvalidSubaccountToken;

/// The subaccount part of a request: the token and the owner's signature over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubaccountAuth {
    /// `subaccount`.
    pub token: SubaccountToken,
    /// `subaccount_sig`: the owner's signature over the token bytes.
    pub signature: [u8; 64],
}

/// Why a request signature was not accepted. Every variant is a 401 for the storage server,
/// except where noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A `05` account must name its Ed25519 key (`pubkey_ed25519`).
    #[error("a 05 account needs pubkey_ed25519 to verify signatures")]
    MissingEd25519Key,
    /// `pubkey_ed25519` was given for an account that is not `05` (upstream: 400 parse error).
    #[error("pubkey_ed25519 is only permitted for 05 accounts")]
    Ed25519KeyNotAllowed,
    /// `pubkey_ed25519` does not convert to the account's X25519 key.
    #[error("pubkey_ed25519 does not match the account's X25519 key")]
    Ed25519KeyMismatch,
    /// The method does not accept subaccounts (revoke/unrevoke).
    #[error("this method does not accept subaccount authentication")]
    SubaccountNotAllowed,
    /// The token is for another account prefix and lacks AnyPrefix.
    #[error("subaccount token prefix does not match the account")]
    SubaccountPrefix,
    /// The token lacks a required permission.
    #[error("subaccount token lacks required permissions")]
    SubaccountPermissions,
    /// The owner's signature over the token does not verify.
    #[error("subaccount token signature is invalid")]
    SubaccountSignature,
    /// The request signature does not verify.
    #[error("request signature is invalid")]
    SignatureInvalid,
}

/// The account owner's verifying key (network §3.3): for `05`, `pubkey_ed25519`, which must
/// convert to the X25519 key in `pubkey`; for any other prefix, the pubkey's own 32 bytes.
pub fn owner_verifying_key(
    pubkey: &[u8; 33],
    pubkey_ed25519: Option<&[u8; 32]>,
) -> Result<[u8; 32], AuthError> {
    let key: &[u8; 32] = pubkey[1..].try_into().expect("bytes 1..33 are 32 bytes");
    if pubkey[0] != 0x05 {
        return match pubkey_ed25519 {
            Some(_) => Err(AuthError::Ed25519KeyNotAllowed),
            None => Ok(*key),
        };
    }
    let ed = pubkey_ed25519.ok_or(AuthError::MissingEd25519Key)?;
    match ed25519_to_x25519(ed) {
        Ok(x) if x == *key => Ok(*ed),
        _ => Err(AuthError::Ed25519KeyMismatch),
    }
}

/// Verifies a storage RPC request signature as the storage server does (network §3.3, §3.4).
///
/// Without a subaccount, `signature` must verify under the owner's key. With one, the token
/// must fit the account prefix, carry [`SignableRequest::required_subaccount_flags`], and be
/// signed by the owner; `signature` must then verify under the token's key. **The caller still
/// checks revocation** when [`SignableRequest::checks_revocation`] says so. Timestamp windows
/// are also the caller's (network §3.5).
pub fn verify_request(
    request: &SignableRequest<'_>,
    pubkey: &[u8; 33],
    pubkey_ed25519: Option<&[u8; 32]>,
    subaccount: Option<&SubaccountAuth>,
    signature: &[u8; 64],
) -> Result<(), AuthError> {
    let owner = owner_verifying_key(pubkey, pubkey_ed25519)?;
    let verify_key = match subaccount {
        None => owner,
        Some(sub) => {
            let required = request.required_subaccount_flags().ok_or(AuthError::SubaccountNotAllowed)?;
            verify_subaccount(&sub.token, &sub.signature, pubkey[0], &owner, required)?;
            *sub.token.ed25519_pubkey()
        }
    };
    let mut message = Vec::with_capacity(64);
    request.write_message(&mut message);
    if verify_ed25519(&verify_key, &message, signature) { Ok(()) } else { Err(AuthError::SignatureInvalid) }
}

/// Checks a subaccount token for an account (network §3.4 steps 1–3): the prefix fits, the
/// `required` flags are present, and `token_signature` is the owner's signature over the token.
pub fn verify_subaccount(
    token: &SubaccountToken,
    token_signature: &[u8; 64],
    account_prefix: u8,
    owner_key: &[u8; 32],
    required: SubaccountFlags,
) -> Result<(), AuthError> {
    if !token.allows_prefix(account_prefix) {
        return Err(AuthError::SubaccountPrefix);
    }
    if !token.flags().contains(required) {
        return Err(AuthError::SubaccountPermissions);
    }
    if !verify_ed25519(owner_key, token.as_bytes(), token_signature) {
        return Err(AuthError::SubaccountSignature);
    }
    Ok(())
}

/// Appends the monitor (push subscription) signed message (network §4.16):
/// `"MONITOR" || pubkey hex (66) || decimal t (seconds) || "1"/"0" || namespaces joined by ","`.
pub fn write_monitor_message(
    out: &mut Vec<u8>,
    pubkey: &[u8; 33],
    timestamp_s: u64,
    want_data: bool,
    namespaces: &[Namespace],
) {
    out.extend_from_slice(b"MONITOR");
    push_pubkey_hex(out, pubkey);
    write_decimal(out, timestamp_s);
    out.push(if want_data { b'1' } else { b'0' });
    for (i, ns) in namespaces.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_signed_decimal(out, i64::from(ns.0));
    }
}

/// The monitor signed message as a new buffer; see [`write_monitor_message`].
pub fn monitor_message(
    pubkey: &[u8; 33],
    timestamp_s: u64,
    want_data: bool,
    namespaces: &[Namespace],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    write_monitor_message(&mut out, pubkey, timestamp_s, want_data, namespaces);
    out
}

/// What a service node signs in its per-node result of a recursive request (network §4.1,
/// §4.5–§4.9, §4.11), so that clients can check every replica. `pubkey_hex` parts are the
/// account's 66-character hex pubkey. Lists must already be in the order the method defines
/// (sorted where the spec says so); this type only concatenates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeResultToSign<'a> {
    /// store: the ASCII hash.
    Store {
        /// The stored message's hash.
        hash: &'a MessageHash,
    },
    /// delete: `pubkey_hex || requested hashes || deleted hashes (sorted)`.
    Delete {
        /// The account.
        pubkey: &'a [u8; 33],
        /// Hashes as requested.
        requested: &'a [MessageHash],
        /// Hashes deleted, sorted.
        deleted: &'a [MessageHash],
    },
    /// delete_all / delete_before / expire_all: `pubkey_hex || value || affected hashes`, where
    /// value is the request's timestamp / `before` / `expiry` and the hashes are sorted (across
    /// all namespaces for `"all"`).
    Bulk {
        /// The account.
        pubkey: &'a [u8; 33],
        /// timestamp, before or expiry.
        value: u64,
        /// Deleted or updated hashes, sorted.
        affected: &'a [MessageHash],
    },
    /// expire: `pubkey_hex || applied expiries || requested hashes || updated hashes (sorted) ||
    /// for each unchanged (sorted by hash): hash || decimal expiry`. `applied` is the single
    /// applied expiry, or the per-updated-hash expiries in array mode.
    Expire {
        /// The account.
        pubkey: &'a [u8; 33],
        /// Applied expiries.
        applied: &'a [u64],
        /// Hashes as requested.
        requested: &'a [MessageHash],
        /// Updated hashes, sorted.
        updated: &'a [MessageHash],
        /// Unchanged hashes with their current expiry, sorted by hash (shorten/extend only).
        unchanged: &'a [(MessageHash, u64)],
    },
    /// revoke_subaccount / unrevoke_subaccount: `pubkey_hex || timestamp || token bytes…`.
    Revocation {
        /// The account.
        pubkey: &'a [u8; 33],
        /// The request timestamp.
        timestamp: u64,
        /// The tokens, as requested.
        tokens: &'a [SubaccountToken],
    },
}

impl NodeResultToSign<'_> {
    /// The exact bytes the service node signs with its Ed25519 key.
    pub fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match *self {
            Self::Store { hash } => out.extend_from_slice(hash.as_bytes()),
            Self::Delete { pubkey, requested, deleted } => {
                push_pubkey_hex(&mut out, pubkey);
                push_hashes(&mut out, requested);
                push_hashes(&mut out, deleted);
            }
            Self::Bulk { pubkey, value, affected } => {
                push_pubkey_hex(&mut out, pubkey);
                write_decimal(&mut out, value);
                push_hashes(&mut out, affected);
            }
            Self::Expire { pubkey, applied, requested, updated, unchanged } => {
                push_pubkey_hex(&mut out, pubkey);
                for &expiry in applied {
                    write_decimal(&mut out, expiry);
                }
                push_hashes(&mut out, requested);
                push_hashes(&mut out, updated);
                for (hash, expiry) in unchanged {
                    out.extend_from_slice(hash.as_bytes());
                    write_decimal(&mut out, *expiry);
                }
            }
            Self::Revocation { pubkey, timestamp, tokens } => {
                push_pubkey_hex(&mut out, pubkey);
                write_decimal(&mut out, timestamp);
                for token in tokens {
                    out.extend_from_slice(token.as_bytes());
                }
            }
        }
        out
    }
}

/// A monitor (push) subscription request (network §4.16): one bt-dict of the `monitor.messages`
/// / QUIC `monitor` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSubscription {
    /// The account. For `05` accounts it is sent as its Ed25519 key (`P`), otherwise as `p`.
    pub pubkey: [u8; 33],
    /// `P`: the Ed25519 key of a `05` account (the Session ID is derived from it).
    pub pubkey_ed25519: Option<[u8; 32]>,
    /// `S`/`T`: subaccount authentication (needs the Read flag).
    pub subaccount: Option<SubaccountAuth>,
    /// `d`: also push the message data.
    pub want_data: bool,
    /// `n`: strictly ascending, non-empty.
    pub namespaces: Vec<Namespace>,
    /// `s`: signature over [`monitor_message`].
    pub signature: [u8; 64],
    /// `t`: signature timestamp in **seconds**.
    pub timestamp_s: u64,
}

/// Oldest and newest accepted monitor timestamps relative to now: 14 days back, 24 hours ahead.
pub const MONITOR_TIMESTAMP_WINDOW_S: (u64, u64) = (14 * 24 * 3600, 24 * 3600);

impl MonitorSubscription {
    /// Builds and signs a subscription for an owner key. For a `05` account pass the account's
    /// identity key (the request then carries `P`); for other accounts `pubkey_ed25519` is None
    /// and `key` must be the key behind `pubkey` (e.g. a group key).
    pub fn sign(
        key: &IdentityKey,
        pubkey: [u8; 33],
        timestamp_s: u64,
        want_data: bool,
        namespaces: Vec<Namespace>,
    ) -> Self {
        let signature = key.sign(&monitor_message(&pubkey, timestamp_s, want_data, &namespaces));
        let pubkey_ed25519 = (pubkey[0] == 0x05).then(|| key.ed25519_public());
        Self { pubkey, pubkey_ed25519, subaccount: None, want_data, namespaces, signature, timestamp_s }
    }

    /// The signed message of this subscription.
    pub fn signed_message(&self) -> Vec<u8> {
        monitor_message(&self.pubkey, self.timestamp_s, self.want_data, &self.namespaces)
    }

    /// Appends the bt-dict request (keys `P`/`S`/`T`/`d`/`n`/`p`/`s`/`t`, sorted).
    pub fn write_bt(&self, out: &mut Vec<u8>) {
        let mut d = BtDictWriter::new(out);
        if let Some(ed) = &self.pubkey_ed25519 {
            d.bytes(b"P", ed);
        }
        if let Some(sub) = &self.subaccount {
            d.bytes(b"S", &sub.signature);
            d.bytes(b"T", sub.token.as_bytes());
        }
        if self.want_data {
            d.int(b"d", 1);
        }
        {
            let mut n = d.list(b"n");
            for ns in &self.namespaces {
                n.int(i64::from(ns.0));
            }
        }
        if self.pubkey_ed25519.is_none() {
            d.bytes(b"p", &self.pubkey);
        }
        d.bytes(b"s", &self.signature);
        d.uint(b"t", self.timestamp_s);
    }

    /// The bt-dict request as a new buffer.
    pub fn to_bt(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_bt(&mut out);
        out
    }

    /// Parses one bt-dict request (as SS `handle_monitor_message_single`; unknown keys skipped).
    /// For `P` the Session ID is derived from the Ed25519 key.
    pub fn from_bt(encoded: &[u8]) -> Result<Self, MonitorError> {
        let mut r = BtReader::new(encoded);
        let sub = Self::read(&mut r)?;
        r.finish().map_err(MonitorError::Bencode)?;
        Ok(sub)
    }

    /// Parses a request that is either one dict or a list of dicts.
    pub fn list_from_bt(encoded: &[u8]) -> Result<Vec<Self>, MonitorError> {
        let mut r = BtReader::new(encoded);
        let subs = if encoded.first() == Some(&b'l') {
            let mut l = r.list().map_err(MonitorError::Bencode)?;
            let mut subs = Vec::new();
            while !l.is_finished().map_err(MonitorError::Bencode)? {
                subs.push(Self::read(l.reader())?);
            }
            l.end().map_err(MonitorError::Bencode)?;
            subs
        } else {
            vec![Self::read(&mut r)?]
        };
        r.finish().map_err(MonitorError::Bencode)?;
        Ok(subs)
    }

    fn read(r: &mut BtReader<'_>) -> Result<Self, MonitorError> {
        use MonitorError as E;
        let bt = E::Bencode;
        let mut d = r.dict().map_err(bt)?;
        let mut pubkey_ed25519 = None;
        if d.skip_until(b"P").map_err(bt)? {
            let ed: [u8; 32] = d.bytes().map_err(bt)?.try_into().map_err(|_| E::BadPubkey)?;
            pubkey_ed25519 = Some(ed);
        }
        let mut subaccount = None;
        if d.skip_until(b"S").map_err(bt)? {
            let signature: [u8; 64] = d.bytes().map_err(bt)?.try_into().map_err(|_| E::BadPubkey)?;
            if !d.skip_until(b"T").map_err(bt)? {
                return Err(E::BadArgs("T is required with S"));
            }
            let token = SubaccountToken::from_bytes(d.bytes().map_err(bt)?).map_err(|_| E::BadPubkey)?;
            subaccount = Some(SubaccountAuth { token, signature });
        }
        let want_data = d.skip_until(b"d").map_err(bt)? && d.int().map_err(bt)? != 0;
        if !d.skip_until(b"n").map_err(bt)? {
            return Err(E::BadArgs("n is required"));
        }
        let mut namespaces: Vec<Namespace> = Vec::new();
        {
            let mut l = d.list().map_err(bt)?;
            while !l.is_finished().map_err(bt)? {
                let ns =
                    Namespace::try_from(l.int().map_err(bt)?).map_err(|_| E::BadArgs("namespace range"))?;
                if namespaces.last().is_some_and(|last| ns <= *last) {
                    return Err(E::BadNamespace);
                }
                namespaces.push(ns);
            }
            l.end().map_err(bt)?;
        }
        if namespaces.is_empty() {
            return Err(E::BadArgs("n must not be empty"));
        }
        let pubkey = if d.skip_until(b"p").map_err(bt)? {
            if pubkey_ed25519.is_some() {
                return Err(E::BadArgs("cannot give both p and P"));
            }
            d.bytes().map_err(bt)?.try_into().map_err(|_| E::BadPubkey)?
        } else {
            let ed = pubkey_ed25519.as_ref().ok_or(E::BadArgs("p or P is required"))?;
            let x = ed25519_to_x25519(ed).map_err(|_| E::BadPubkey)?;
            let mut pk = [0u8; 33];
            pk[0] = 0x05;
            pk[1..].copy_from_slice(&x);
            pk
        };
        if !d.skip_until(b"s").map_err(bt)? {
            return Err(E::BadArgs("s is required"));
        }
        let signature: [u8; 64] = d.bytes().map_err(bt)?.try_into().map_err(|_| E::BadSignature)?;
        if !d.skip_until(b"t").map_err(bt)? {
            return Err(E::BadArgs("t is required"));
        }
        let timestamp_s = u64::try_from(d.int().map_err(bt)?).map_err(|_| E::BadTimestamp)?;
        d.end().map_err(bt)?;
        Ok(Self { pubkey, pubkey_ed25519, subaccount, want_data, namespaces, signature, timestamp_s })
    }

    /// Checks the timestamp window against `now_s` (Unix seconds) and the signature, with the
    /// subaccount (Read flag) if present (network §4.16).
    pub fn verify(&self, now_s: u64) -> Result<(), MonitorError> {
        let (back, ahead) = MONITOR_TIMESTAMP_WINDOW_S;
        if self.timestamp_s < now_s.saturating_sub(back) || self.timestamp_s > now_s.saturating_add(ahead) {
            return Err(MonitorError::BadTimestamp);
        }
        let owner: [u8; 32] = match &self.pubkey_ed25519 {
            // `P` must be the Ed25519 key behind the 05 account it stands for.
            Some(ed) => match ed25519_to_x25519(ed) {
                Ok(x) if self.pubkey[0] == 0x05 && x[..] == self.pubkey[1..] => *ed,
                _ => return Err(MonitorError::BadPubkey),
            },
            None => self.pubkey[1..].try_into().expect("bytes 1..33 are 32 bytes"),
        };
        let verify_key = match &self.subaccount {
            None => owner,
            Some(sub) => {
                verify_subaccount(&sub.token, &sub.signature, self.pubkey[0], &owner, SubaccountFlags::READ)
                    .map_err(|_| MonitorError::BadSignature)?;
                *sub.token.ed25519_pubkey()
            }
        };
        if verify_ed25519(&verify_key, &self.signed_message(), &self.signature) {
            Ok(())
        } else {
            Err(MonitorError::BadSignature)
        }
    }
}

/// A monitor subscription was rejected; [`MonitorError::errcode`] gives the reply's `errcode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// Not a well-formed bt-dict (errcode 1).
    #[error("invalid monitor request encoding: {0}")]
    Bencode(BtError),
    /// A required field is missing or malformed (errcode 1).
    #[error("invalid monitor request: {0}")]
    BadArgs(&'static str),
    /// `P`, `p`, `S` or `T` has the wrong size, or `P` is not a valid key (errcode 2).
    #[error("invalid monitor pubkey or subaccount")]
    BadPubkey,
    /// Namespaces are not strictly ascending (errcode 3).
    #[error("monitor namespaces must be strictly ascending")]
    BadNamespace,
    /// `t` is outside [now − 14 d, now + 24 h] (errcode 4).
    #[error("monitor timestamp out of range")]
    BadTimestamp,
    /// The signature (or subaccount) does not verify (errcode 5).
    #[error("monitor signature verification failed")]
    BadSignature,
}

impl MonitorError {
    /// The `errcode` of the monitor reply dict.
    pub fn errcode(&self) -> i64 {
        match self {
            Self::Bencode(_) | Self::BadArgs(_) => 1,
            Self::BadPubkey => 2,
            Self::BadNamespace => 3,
            Self::BadTimestamp => 4,
            Self::BadSignature => 5,
        }
    }
}

/// Appends the 66-character lowercase hex of an account pubkey, without allocating.
fn push_pubkey_hex(out: &mut Vec<u8>, pubkey: &[u8; 33]) {
    let mut hex_buf = [0u8; 66];
    hex::encode_to_slice(pubkey, &mut hex_buf).expect("33 bytes are 66 hex digits");
    out.extend_from_slice(&hex_buf);
}

fn push_hashes(out: &mut Vec<u8>, hashes: &[MessageHash]) {
    for hash in hashes {
        out.extend_from_slice(hash.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> IdentityKey {
        IdentityKey::from_seed_bytes(&[7u8; 32])
    }

    #[test]
    fn owner_signature_round_trip() {
        let key = owner();
        let pubkey = key.session_id().to_bytes();
        let ed = key.ed25519_public();
        let req =
            SignableRequest::DeleteAll { namespace: NamespaceSelector::All, timestamp: 1_700_000_000_000 };
        let sig = req.sign(&key);
        assert_eq!(verify_request(&req, &pubkey, Some(&ed), None, &sig), Ok(()));
        assert_eq!(verify_request(&req, &pubkey, None, None, &sig), Err(AuthError::MissingEd25519Key));
        let other = IdentityKey::from_seed_bytes(&[8u8; 32]).ed25519_public();
        assert_eq!(
            verify_request(&req, &pubkey, Some(&other), None, &sig),
            Err(AuthError::Ed25519KeyMismatch)
        );
        let req2 = SignableRequest::DeleteAll { namespace: NamespaceSelector::default(), timestamp: 1 };
        assert_eq!(verify_request(&req2, &pubkey, Some(&ed), None, &sig), Err(AuthError::SignatureInvalid));
    }

    #[test]
    fn subaccount_rules() {
        let group = owner();
        let mut pubkey = [0x03u8; 33];
        pubkey[1..].copy_from_slice(&group.ed25519_public());
        let member = IdentityKey::from_seed_bytes(&[9u8; 32]);
        let token = SubaccountToken::new(
            0x03,
            SubaccountFlags::READ | SubaccountFlags::WRITE,
            &member.ed25519_public(),
        );
        let auth = SubaccountAuth { token, signature: token.sign(&group) };

        let retrieve = SignableRequest::Retrieve { namespace: Namespace(11), timestamp: 5 };
        let sig = member.sign(&retrieve.message());
        assert_eq!(verify_request(&retrieve, &pubkey, None, Some(&auth), &sig), Ok(()));

        let delete = SignableRequest::DeleteAll { namespace: NamespaceSelector::All, timestamp: 5 };
        let sig = member.sign(&delete.message());
        assert_eq!(
            verify_request(&delete, &pubkey, None, Some(&auth), &sig),
            Err(AuthError::SubaccountPermissions)
        );

        let revoke = SignableRequest::RevokeSubaccount { timestamp: 5, tokens: &[token] };
        assert_eq!(
            verify_request(&revoke, &pubkey, None, Some(&auth), &member.sign(&revoke.message())),
            Err(AuthError::SubaccountNotAllowed)
        );

        let mut other_prefix = pubkey;
        other_prefix[0] = 0x04;
        assert_eq!(
            verify_request(&retrieve, &other_prefix, None, Some(&auth), &member.sign(&retrieve.message())),
            Err(AuthError::SubaccountPrefix)
        );
        let bad = SubaccountAuth { token, signature: [0u8; 64] };
        assert_eq!(
            verify_request(&retrieve, &pubkey, None, Some(&bad), &member.sign(&retrieve.message())),
            Err(AuthError::SubaccountSignature)
        );
    }

    #[test]
    fn token_text_forms() {
        let token = SubaccountToken::new(0x05, SubaccountFlags::ANY_PREFIX, &[0x22; 32]);
        assert_eq!(SubaccountToken::from_text(&hex::encode(token.as_bytes())), Ok(token));
        assert_eq!(SubaccountToken::from_text(&STANDARD.encode(token.as_bytes())), Ok(token));
        assert!(SubaccountToken::from_text("abc").is_err());
        assert!(token.allows_prefix(0x03));
    }

    #[test]
    fn required_flags_and_revocation() {
        let store_outbox = SignableRequest::Store { namespace: Namespace(-21), sig_timestamp: 1 };
        assert_eq!(
            store_outbox.required_subaccount_flags(),
            Some(SubaccountFlags::WRITE | SubaccountFlags::DELETE)
        );
        assert!(!SignableRequest::Retrieve { namespace: Namespace(-11), timestamp: 1 }.checks_revocation());
        assert!(SignableRequest::Retrieve { namespace: Namespace(11), timestamp: 1 }.checks_revocation());
        assert!(!SignableRequest::Store { namespace: Namespace(0), sig_timestamp: 1 }.requires_signature());
    }

    #[test]
    fn node_result_messages() {
        let pk = [0x05u8; 33];
        let h = MessageHash::compute(&pk, Namespace(0), b"a");
        let m = NodeResultToSign::Bulk { pubkey: &pk, value: 42, affected: &[h] }.message();
        let mut want = hex::encode(pk).into_bytes();
        want.extend_from_slice(b"42");
        want.extend_from_slice(h.as_bytes());
        assert_eq!(m, want);
        let e = NodeResultToSign::Expire {
            pubkey: &pk,
            applied: &[7],
            requested: &[h],
            updated: &[],
            unchanged: &[(h, 9)],
        };
        let mut want = hex::encode(pk).into_bytes();
        want.extend_from_slice(b"7");
        want.extend_from_slice(h.as_bytes());
        want.extend_from_slice(h.as_bytes());
        want.extend_from_slice(b"9");
        assert_eq!(e.message(), want);
        assert_eq!(NodeResultToSign::Store { hash: &h }.message(), h.as_bytes());
    }

    #[test]
    fn monitor_round_trip() {
        let key = owner();
        let sub = MonitorSubscription::sign(
            &key,
            key.session_id().to_bytes(),
            1_700_000_000,
            true,
            vec![Namespace(-10), Namespace(0), Namespace(2)],
        );
        let bt = sub.to_bt();
        let parsed = MonitorSubscription::from_bt(&bt).unwrap();
        assert_eq!(parsed, sub);
        assert_eq!(parsed.verify(1_700_000_100), Ok(()));
        assert_eq!(parsed.verify(1_700_000_000 + 15 * 24 * 3600), Err(MonitorError::BadTimestamp));
        let mut list = b"l".to_vec();
        list.extend_from_slice(&bt);
        list.extend_from_slice(&bt);
        list.push(b'e');
        assert_eq!(MonitorSubscription::list_from_bt(&list).unwrap().len(), 2);
        let mut tampered = sub.clone();
        tampered.want_data = false;
        assert_eq!(tampered.verify(1_700_000_000), Err(MonitorError::BadSignature));
    }

    #[test]
    fn monitor_rejects_unsorted_namespaces() {
        let key = owner();
        let mut sub =
            MonitorSubscription::sign(&key, key.session_id().to_bytes(), 1, false, vec![Namespace(0)]);
        sub.namespaces = vec![Namespace(3), Namespace(3)];
        assert_eq!(MonitorSubscription::from_bt(&sub.to_bt()), Err(MonitorError::BadNamespace));
    }
}
