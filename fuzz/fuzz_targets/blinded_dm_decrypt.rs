//! Fuzzes community blinded-DM decryption (crypto §3.4) with fixed keys.
//!
//! Keys are the vectors': server key `1d7e…3f17`, sender A (`0123…ef` + 16 zero bytes) and
//! recipient B (`0011…ff` + 16 zero bytes), so the `blinded_dm_*` ciphertexts among the seeds
//! open. The first byte of the input chooses:
//! - bit 0: 15- or 25-blinded ids;
//! - bit 1: decrypt as the recipient B or as the sender A (reading its own outbox copy);
//! - bit 2: take the next 33 bytes as an arbitrary sender id (any prefix, any point) instead of
//!   A's blinded id;
//! - bit 3: also encrypt the rest from A to B and check that both A and B decrypt it back.
//!
//! Properties: `decrypt` never panics; inputs shorter than version + tag + nonce are `TooShort`,
//! a non-zero version byte is `UnsupportedVersion`; an accepted message is 73 bytes shorter than
//! its ciphertext; the round trip gives back the message and A's Session ID.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use session_protocol::blinded_dm::{
    BlindedDmError, NONCE_LEN, OVERHEAD, TAG_LEN, VERSION, decrypt, encrypt_with_nonce,
};
use session_protocol::blinding::{Blinding, blinded_key_pair};
use session_protocol::primitives::hex_array;
use session_protocol::{IdPrefix, IdentityKey, SessionId};

struct Fixed {
    server_pk: [u8; 32],
    sender: IdentityKey,
    recipient: IdentityKey,
    /// (sender id, recipient id) for 15- and 25-blinding.
    ids: [(SessionId, SessionId); 2],
}

static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let server_pk = key("1d7e7f92b1ed3643855c98ecac02fc7274033a3467653f047d6e433540c03f17");
    let sender = IdentityKey::from_seed_bytes(&key(
        "0123456789abcdef0123456789abcdef00000000000000000000000000000000",
    ));
    let recipient = IdentityKey::from_seed_bytes(&key(
        "00112233445566778899aabbccddeeff00000000000000000000000000000000",
    ));
    let ids = [Blinding::Blind15, Blinding::Blind25].map(|blinding| {
        let id = |k: &IdentityKey| blinded_key_pair(k, &server_pk, blinding).expect("fixed keys blind").id();
        (id(&sender), id(&recipient))
    });
    Fixed { server_pk, sender, recipient, ids }
});

const NONCE: [u8; NONCE_LEN] = [0x24; NONCE_LEN];

fuzz_target!(|data: &[u8]| {
    let fixed = &*FIXED;
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let (mut sender_id, recipient_id) = fixed.ids[usize::from(mode & 1)];
    let ours = if mode & 2 == 0 { &fixed.recipient } else { &fixed.sender };
    if mode & 4 != 0 {
        let Some((id, tail)) = rest.split_first_chunk::<33>() else { return };
        let Ok(id) = SessionId::from_bytes(id) else { return };
        sender_id = id;
        rest = tail;
    }

    let result = decrypt(ours, &fixed.server_pk, &sender_id, &recipient_id, rest);
    match &result {
        Err(BlindedDmError::TooShort) => {}
        Err(BlindedDmError::UnsupportedVersion(v)) => assert_eq!(Some(v), rest.first()),
        _ => {
            assert!(rest.len() >= 1 + TAG_LEN + NONCE_LEN, "short ciphertext not reported as TooShort");
            assert_eq!(rest.first(), Some(&VERSION), "bad version not reported");
        }
    }
    if rest.len() < 1 + TAG_LEN + NONCE_LEN {
        assert_eq!(result, Err(BlindedDmError::TooShort));
    }
    if let Ok((message, sender)) = &result {
        assert_eq!(message.len() + OVERHEAD, rest.len());
        assert_eq!(sender.prefix(), IdPrefix::Standard);
    }

    if mode & 8 == 0 {
        return;
    }
    let (a_id, b_id) = fixed.ids[usize::from(mode & 1)];
    let ciphertext =
        encrypt_with_nonce(&fixed.sender, &fixed.server_pk, &b_id, rest, &NONCE).expect("fixed keys encrypt");
    assert_eq!(ciphertext.len(), rest.len() + OVERHEAD);
    for reader in [&fixed.recipient, &fixed.sender] {
        let (message, from) = decrypt(reader, &fixed.server_pk, &a_id, &b_id, &ciphertext)
            .expect("a message from A to B decrypts for both");
        assert_eq!(message, rest, "blinded DM round trip changed the message");
        assert_eq!(from, fixed.sender.session_id(), "blinded DM round trip changed the sender");
    }
});

fn key(hex: &str) -> [u8; 32] {
    hex_array(hex).expect("fixed 64-digit hex key")
}
