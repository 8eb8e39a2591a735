//! Property tests for Protocol v1 (crypto §3), padding (§4.1), the protobufs (§4.2) and the 1:1
//! pipeline (§4.3): round trips, and no decoder of untrusted bytes panics.

use proptest::prelude::*;
use prost::Message;
use rand::SeedableRng;
use rand::rngs::StdRng;
use session_protocol::IdentityKey;
use session_protocol::envelope::{
    DecodeError, decode_1o1, decode_envelope_1o1, encode_for_1o1, unwrap_websocket_message,
    wrap_in_websocket_message,
};
use session_protocol::padding::{PaddingVariant, pad, padded_len, unpad};
use session_protocol::proto::{Content, DataMessage, Envelope, LokiProfile, WebSocketMessage, content};
use session_protocol::v1::{
    DecryptError, V1_OVERHEAD, decrypt_incoming, encrypt_for_recipient, encrypt_for_recipient_deterministic,
};

/// Public-key operations are slow in unoptimised test builds: fewer cases for those.
fn crypto_config() -> ProptestConfig {
    ProptestConfig { cases: 48, ..ProptestConfig::default() }
}

fn variant() -> impl Strategy<Value = PaddingVariant> {
    prop_oneof![Just(PaddingVariant::Libsession), Just(PaddingVariant::DesktopLegacy)]
}

fn content_strategy() -> impl Strategy<Value = Content> {
    (
        proptest::option::of(".{0,200}"),
        proptest::option::of(any::<u64>()),
        proptest::option::of(0i32..3),
        proptest::option::of(any::<u32>()),
        proptest::option::of("[a-zA-Z ]{0,20}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 32)),
    )
        .prop_map(|(body, sig_timestamp, expiration_type, expiration_timer, name, profile_key)| {
            Content {
                data_message: Some(DataMessage {
                    body,
                    profile_key,
                    profile: name.map(|display_name| LokiProfile {
                        display_name: Some(display_name),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                expiration_type: expiration_type
                    .map(|t| content::ExpirationType::try_from(t).unwrap_or_default() as i32),
                expiration_timer,
                sig_timestamp,
                ..Default::default()
            }
        })
}

proptest! {
    #[test]
    fn pad_unpad_roundtrip(content in proptest::collection::vec(any::<u8>(), 0..700), variant in variant()) {
        let padded = pad(&content, variant);
        prop_assert_eq!(padded.len(), padded_len(content.len(), variant));
        prop_assert_eq!(unpad(&padded).unwrap(), content.as_slice());
        match variant {
            PaddingVariant::Libsession => prop_assert_eq!(padded.len() % 160, 0),
            _ => prop_assert_eq!(padded.len() % 160, 159),
        }
    }

    #[test]
    fn unpad_never_panics(bytes in proptest::collection::vec(prop_oneof![Just(0u8), Just(0x80u8), any::<u8>()], 0..400)) {
        if let Ok(content) = unpad(&bytes) {
            prop_assert!(content.len() <= bytes.len());
            prop_assert_eq!(content, &bytes[..content.len()]);
        }
    }

    #[test]
    fn protobuf_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = WebSocketMessage::decode(bytes.as_slice());
        let _ = Envelope::decode(bytes.as_slice());
        let _ = Content::decode(bytes.as_slice());
        let _ = unwrap_websocket_message(&bytes);
    }

    #[test]
    fn protobuf_roundtrip(content in content_strategy()) {
        let bytes = content.encode_to_vec();
        prop_assert_eq!(Content::decode(bytes.as_slice()).unwrap(), content);
    }
}

proptest! {
    #![proptest_config(crypto_config())]

    #[test]
    fn decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), seed in any::<[u8; 32]>()) {
        let recipient = IdentityKey::from_seed_bytes(&seed);
        match decrypt_incoming(&recipient, &bytes) {
            Err(DecryptError::TooShort { len }) => prop_assert!(len < V1_OVERHEAD),
            Err(_) => prop_assert!(bytes.len() >= V1_OVERHEAD),
            Ok(_) => prop_assert!(false, "random bytes decrypted"),
        }
    }

    #[test]
    fn pipeline_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), seed in any::<[u8; 32]>()) {
        let recipient = IdentityKey::from_seed_bytes(&seed);
        // Arbitrary bytes at every layer: outer, as the Envelope, as the Envelope content.
        prop_assert!(decode_1o1(&recipient, &bytes).is_err());
        prop_assert!(decode_1o1(&recipient, &wrap_in_websocket_message(bytes.clone())).is_err());
        let envelope = Envelope { r#type: 6, timestamp: 1, content: Some(bytes), ..Default::default() };
        prop_assert!(decode_envelope_1o1(&recipient, &envelope.encode_to_vec()).is_err());
    }

    #[test]
    fn encrypt_decrypt_roundtrip(
        sender_seed in any::<[u8; 32]>(),
        recipient_seed in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..1200),
        rng_seed in any::<u64>(),
        flip in any::<(usize, u8)>(),
    ) {
        let sender = IdentityKey::from_seed_bytes(&sender_seed);
        let recipient = IdentityKey::from_seed_bytes(&recipient_seed);
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let ciphertext = encrypt_for_recipient(&sender, &recipient.session_id().to_bytes(), &message, &mut rng).unwrap();
        prop_assert_eq!(ciphertext.len(), message.len() + V1_OVERHEAD);
        let got = decrypt_incoming(&recipient, &ciphertext).unwrap();
        prop_assert_eq!(&got.message, &message);
        prop_assert_eq!(got.sender_ed25519, sender.ed25519_public());
        prop_assert_eq!(got.sender, sender.session_id());

        let deterministic = encrypt_for_recipient_deterministic(&sender, recipient.x25519_public(), &message).unwrap();
        prop_assert_eq!(decrypt_incoming(&recipient, &deterministic).unwrap().message, message);

        // Any single-bit change is rejected.
        let mut tampered = ciphertext;
        let index = flip.0 % tampered.len();
        tampered[index] ^= 1 << (flip.1 % 8);
        prop_assert!(decrypt_incoming(&recipient, &tampered).is_err());
    }

    #[test]
    fn pipeline_roundtrip(
        sender_seed in any::<[u8; 32]>(),
        recipient_seed in any::<[u8; 32]>(),
        content in content_strategy(),
        timestamp in any::<u64>(),
        rng_seed in any::<u64>(),
    ) {
        let sender = IdentityKey::from_seed_bytes(&sender_seed);
        let recipient = IdentityKey::from_seed_bytes(&recipient_seed);
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let wire = encode_for_1o1(&sender, &recipient.session_id(), &content, timestamp, None, &mut rng).unwrap();
        let got = decode_1o1(&recipient, &wire).unwrap();
        prop_assert_eq!(&got.content, &content);
        prop_assert_eq!(got.sender, sender.session_id());
        prop_assert_eq!(got.envelope_timestamp_ms, timestamp);
        prop_assert_eq!(got.source_device, Some(1));
        if sender_seed != recipient_seed {
            let other = decode_1o1(&sender, &wire);
            prop_assert_eq!(other, Err(DecodeError::Decrypt(DecryptError::DecryptionFailed)));
        }
    }
}
