//! Fuzzes Session v1 1:1 decryption (crypto §3.2) for a fixed recipient, and the v1 round trip.
//!
//! The recipient is the vectors' seed B (`00112233…ff` + 16 zero bytes), so the
//! `session_v1_decrypt` ciphertexts among the seeds open. Properties:
//! - `decrypt_incoming` never panics on arbitrary bytes and rejects anything shorter than the
//!   144-byte overhead as `TooShort`; `decrypt_incoming_with_x25519` with the same key pair agrees;
//! - an accepted ciphertext gives a message 144 bytes shorter, and a sender Session ID `05 ||
//!   X25519(sender Ed25519)`;
//! - `recipient_x25519` never panics and accepts exactly 32 bytes or `05` + 32 bytes;
//! - round trip: `encrypt_for_recipient_deterministic` of the input from the fixed sender A
//!   (`0123…ef` + 16 zero bytes) to B decrypts to the same message and sender.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use session_protocol::keys::ed25519_to_x25519;
use session_protocol::v1::{
    DecryptError, V1_OVERHEAD, decrypt_incoming, decrypt_incoming_with_x25519,
    encrypt_for_recipient_deterministic, recipient_x25519,
};
use session_protocol::{IdPrefix, IdentityKey};

static RECIPIENT: LazyLock<IdentityKey> = LazyLock::new(|| {
    IdentityKey::from_seed_bytes(&seed("00112233445566778899aabbccddeeff00000000000000000000000000000000"))
});
static SENDER: LazyLock<IdentityKey> = LazyLock::new(|| {
    IdentityKey::from_seed_bytes(&seed("0123456789abcdef0123456789abcdef00000000000000000000000000000000"))
});

fuzz_target!(|data: &[u8]| {
    let recipient = &*RECIPIENT;

    // Arbitrary bytes as a ciphertext.
    let result = decrypt_incoming(recipient, data);
    let explicit = decrypt_incoming_with_x25519(recipient.x25519_public(), recipient.x25519_secret(), data);
    assert_eq!(result, explicit, "decrypt_incoming and decrypt_incoming_with_x25519 disagree");
    match &result {
        Err(DecryptError::TooShort { len }) => {
            assert_eq!(*len, data.len());
            assert!(data.len() < V1_OVERHEAD);
        }
        Err(_) => assert!(data.len() >= V1_OVERHEAD, "short input not reported as TooShort"),
        Ok(decrypted) => {
            assert_eq!(decrypted.message.len() + V1_OVERHEAD, data.len());
            assert_eq!(decrypted.sender.prefix(), IdPrefix::Standard);
            let x = ed25519_to_x25519(&decrypted.sender_ed25519).expect("accepted sender key converts");
            assert_eq!(decrypted.sender.key(), &x);
        }
    }

    // Recipient key parsing on the raw bytes.
    match recipient_x25519(data) {
        Ok(key) => {
            assert!(data.len() == 32 || (data.len() == 33 && data[0] == 0x05));
            assert_eq!(&key[..], &data[data.len() - 32..]);
        }
        Err(_) => assert!(!(data.len() == 32 || (data.len() == 33 && data[0] == 0x05))),
    }

    // Round trip of the input as a message from the fixed sender.
    let sender = &*SENDER;
    let ciphertext = encrypt_for_recipient_deterministic(sender, recipient.x25519_public(), data)
        .expect("the recipient key is valid");
    assert_eq!(ciphertext.len(), data.len() + V1_OVERHEAD);
    let decrypted = decrypt_incoming(recipient, &ciphertext).expect("own ciphertext decrypts");
    assert_eq!(decrypted.message, data, "round trip changed the message");
    assert_eq!(decrypted.sender, sender.session_id(), "round trip changed the sender");
    assert_eq!(decrypted.sender_ed25519, sender.ed25519_public());
    assert_eq!(
        recipient_x25519(&recipient.session_id().to_bytes()).as_ref(),
        Ok(recipient.x25519_public()),
        "a 05 Session ID names its X25519 key"
    );
});

fn seed(hex: &str) -> [u8; 32] {
    session_protocol::primitives::hex_array(hex).expect("fixed 64-digit hex seed")
}
