//! Multi-recipient encryption (crypto §6.2, libsession `multi_encrypt.cpp`).
//!
//! One message (or one message per recipient) is encrypted separately for every recipient with
//! XChaCha20-Poly1305 under a shared nonce and a per-recipient key
//! `BLAKE2b-32(X25519(a, B) || A || B; key = domain)`, where `a`/`A` is the sender's X25519 pair
//! and `B` the recipient's X25519 public key (always sender public first). A recipient does not
//! know which entry is theirs and trial-decrypts every entry. Groups v2 use this for the key
//! distribution lists (domain `SessionGroupKeyMemberKey`, sender = the group's converted key).
//!
//! The domain string is the BLAKE2b key, so it is at most 64 bytes (an empty domain means
//! unkeyed BLAKE2b).

use zeroize::Zeroizing;

use crate::keys::IdentityKey;
use crate::primitives::{
    WeakPublicKey, XCHACHA20_TAG_LEN, blake2b_32, x25519, xchacha20_open_into, xchacha20_seal_append,
};

/// Longest domain string: BLAKE2b keys are at most 64 bytes.
pub const MAX_DOMAIN_LEN: usize = 64;
/// Bytes added to each message: the Poly1305 tag.
pub const ENTRY_OVERHEAD: usize = XCHACHA20_TAG_LEN;

/// Why [`encrypt_for_recipients`] refused its inputs (crypto §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultiEncryptError {
    /// The domain is longer than [`MAX_DOMAIN_LEN`] bytes.
    #[error("domain of {len} bytes is longer than 64 bytes")]
    DomainTooLong {
        /// Length of the domain in bytes.
        len: usize,
    },
    /// There must be one message for all recipients or one message per recipient.
    #[error("{messages} messages for {recipients} recipients (need 1 or one per recipient)")]
    MessageCount {
        /// Number of messages given.
        messages: usize,
        /// Number of recipients given.
        recipients: usize,
    },
    /// A recipient public key is a small-order point (X25519 gives all zero).
    #[error("recipient {index} has an invalid (small-order) X25519 public key")]
    InvalidRecipientKey {
        /// Position of the recipient in the input list.
        index: usize,
    },
}

/// Why [`decrypt_for_recipient`] found no message for us (crypto §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultiDecryptError {
    /// The domain is longer than [`MAX_DOMAIN_LEN`] bytes.
    #[error("domain of {len} bytes is longer than 64 bytes")]
    DomainTooLong {
        /// Length of the domain in bytes.
        len: usize,
    },
    /// The sender public key is a small-order point (X25519 gives all zero).
    #[error("sender has an invalid (small-order) X25519 public key")]
    InvalidSenderKey,
    /// No entry authenticates under our key: we are not a recipient, or the sender, domain or
    /// nonce is wrong.
    #[error("no entry decrypts with our key")]
    NoEntryDecrypts,
}

/// Encrypts for several recipients from `sender`'s X25519 pair (the conversion of its Ed25519
/// key; crypto §6.2). `messages` holds either one message for everybody or one message per
/// recipient (message i goes to recipient i). Entry i is `XChaCha20-Poly1305(message_i, nonce,
/// key_i)`, `ENTRY_OVERHEAD` bytes longer than the message, in recipient order.
///
/// The nonce must be fresh for every call with the same sender (it is shared by all entries).
pub fn encrypt_for_recipients<M: AsRef<[u8]>>(
    sender: &IdentityKey,
    recipients: &[[u8; 32]],
    messages: &[M],
    domain: &str,
    nonce: &[u8; 24],
) -> Result<Vec<Vec<u8>>, MultiEncryptError> {
    encrypt_for_recipients_x25519(
        sender.x25519_secret(),
        sender.x25519_public(),
        recipients,
        messages,
        domain,
        nonce,
    )
}

/// [`encrypt_for_recipients`] from a raw X25519 key pair (`sender_public` must be the public key
/// of `sender_secret`; it enters the key hash as given).
pub fn encrypt_for_recipients_x25519<M: AsRef<[u8]>>(
    sender_secret: &[u8; 32],
    sender_public: &[u8; 32],
    recipients: &[[u8; 32]],
    messages: &[M],
    domain: &str,
    nonce: &[u8; 24],
) -> Result<Vec<Vec<u8>>, MultiEncryptError> {
    check_domain(domain).map_err(|len| MultiEncryptError::DomainTooLong { len })?;
    let one_for_all = match messages.len() {
        1 => true,
        n if n == recipients.len() => false,
        n => return Err(MultiEncryptError::MessageCount { messages: n, recipients: recipients.len() }),
    };
    let mut out = Vec::with_capacity(recipients.len());
    for (index, recipient) in recipients.iter().enumerate() {
        let key = entry_key(sender_secret, recipient, sender_public, recipient, domain)
            .map_err(|_| MultiEncryptError::InvalidRecipientKey { index })?;
        let message = if one_for_all { messages.first() } else { messages.get(index) }
            .expect("message count checked above")
            .as_ref();
        let mut entry = Vec::with_capacity(message.len() + ENTRY_OVERHEAD);
        xchacha20_seal_append(&key, nonce, message, &mut entry);
        out.push(entry);
    }
    Ok(out)
}

/// Finds and decrypts our entry among `ciphertexts` (crypto §6.2): the key is
/// `BLAKE2b-32(X25519(b, A) || A || B; key = domain)` with our X25519 pair `b`/`B` (from our
/// Ed25519 key) and the sender's X25519 public key `A`; returns the first entry that
/// authenticates.
pub fn decrypt_for_recipient<C: AsRef<[u8]>>(
    ours: &IdentityKey,
    sender_x25519: &[u8; 32],
    domain: &str,
    nonce: &[u8; 24],
    ciphertexts: &[C],
) -> Result<Vec<u8>, MultiDecryptError> {
    decrypt_for_recipient_x25519(
        ours.x25519_secret(),
        ours.x25519_public(),
        sender_x25519,
        domain,
        nonce,
        ciphertexts,
    )
}

/// [`decrypt_for_recipient`] with a raw X25519 key pair (`our_public` must be the public key of
/// `our_secret`; it enters the key hash as given).
pub fn decrypt_for_recipient_x25519<C: AsRef<[u8]>>(
    our_secret: &[u8; 32],
    our_public: &[u8; 32],
    sender_x25519: &[u8; 32],
    domain: &str,
    nonce: &[u8; 24],
    ciphertexts: &[C],
) -> Result<Vec<u8>, MultiDecryptError> {
    check_domain(domain).map_err(|len| MultiDecryptError::DomainTooLong { len })?;
    let key = entry_key(our_secret, sender_x25519, sender_x25519, our_public, domain)
        .map_err(|_| MultiDecryptError::InvalidSenderKey)?;
    let mut buffer = Vec::new();
    for ciphertext in ciphertexts {
        if xchacha20_open_into(&key, nonce, ciphertext.as_ref(), &mut buffer).is_ok() {
            return Ok(buffer);
        }
    }
    Err(MultiDecryptError::NoEntryDecrypts)
}

// ---- helpers ----

/// `Err(len)` if the domain cannot be a BLAKE2b key.
fn check_domain(domain: &str) -> Result<(), usize> {
    if domain.len() > MAX_DOMAIN_LEN { Err(domain.len()) } else { Ok(()) }
}

/// `BLAKE2b-32(X25519(our_secret, their_public) || sender_public || recipient_public; key =
/// domain)`. The caller has checked the domain length.
fn entry_key(
    our_secret: &[u8; 32],
    their_public: &[u8; 32],
    sender_public: &[u8; 32],
    recipient_public: &[u8; 32],
    domain: &str,
) -> Result<Zeroizing<[u8; 32]>, WeakPublicKey> {
    let shared = x25519(our_secret, their_public)?;
    Ok(Zeroizing::new(blake2b_32(domain.as_bytes(), &[&shared[..], sender_public, recipient_public])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> IdentityKey {
        IdentityKey::from_seed_bytes(&[n; 32])
    }

    #[test]
    fn each_recipient_gets_its_message() {
        let sender = key(1);
        let (r1, r2) = (key(2), key(3));
        let recipients = [*r1.x25519_public(), *r2.x25519_public()];
        let nonce = [5u8; 24];
        let out = encrypt_for_recipients(&sender, &recipients, &[b"one", b"two"], "d", &nonce).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 3 + ENTRY_OVERHEAD);
        let from = sender.x25519_public();
        assert_eq!(decrypt_for_recipient(&r1, from, "d", &nonce, &out).unwrap(), b"one");
        assert_eq!(decrypt_for_recipient(&r2, from, "d", &nonce, &out).unwrap(), b"two");
        assert_eq!(
            decrypt_for_recipient(&key(4), from, "d", &nonce, &out),
            Err(MultiDecryptError::NoEntryDecrypts)
        );
        assert_eq!(
            decrypt_for_recipient(&r1, from, "e", &nonce, &out),
            Err(MultiDecryptError::NoEntryDecrypts)
        );
    }

    #[test]
    fn one_message_for_all_and_count_mismatch() {
        let sender = key(1);
        let recipients = [*key(2).x25519_public(), *key(3).x25519_public()];
        let nonce = [0u8; 24];
        let out = encrypt_for_recipients(&sender, &recipients, &[b"x"], "", &nonce).unwrap();
        let got = decrypt_for_recipient(&key(3), sender.x25519_public(), "", &nonce, &out).unwrap();
        assert_eq!(got, b"x");
        let three: [&[u8]; 3] = [b"a", b"b", b"c"];
        assert_eq!(
            encrypt_for_recipients(&sender, &recipients, &three, "", &nonce),
            Err(MultiEncryptError::MessageCount { messages: 3, recipients: 2 })
        );
    }

    #[test]
    fn rejects_bad_keys_and_domains() {
        let sender = key(1);
        let nonce = [0u8; 24];
        let long = "x".repeat(65);
        assert_eq!(
            encrypt_for_recipients(&sender, &[[9u8; 32]], &[b"m"], &long, &nonce),
            Err(MultiEncryptError::DomainTooLong { len: 65 })
        );
        assert_eq!(
            encrypt_for_recipients(&sender, &[[9u8; 32], [0u8; 32]], &[b"m"], "d", &nonce),
            Err(MultiEncryptError::InvalidRecipientKey { index: 1 })
        );
        let none: [&[u8]; 0] = [];
        assert_eq!(
            decrypt_for_recipient(&sender, &[0u8; 32], "d", &nonce, &none),
            Err(MultiDecryptError::InvalidSenderKey)
        );
        assert_eq!(
            decrypt_for_recipient(&sender, &[9u8; 32], &long, &nonce, &none),
            Err(MultiDecryptError::DomainTooLong { len: 65 })
        );
    }
}
