//! Fuzzes the 1:1 receive pipeline (crypto §4.3) and the protobuf decoders under it.
//!
//! The recipient is the vectors' seed A (`0123…ef` + 16 zero bytes), the account of the
//! `legacy_config_wrap` vector, so that vector's WebSocketMessage among the seeds decodes fully.
//! Properties:
//! - `unwrap_websocket_message`, `decode_1o1`, `decode_envelope_1o1`, `unwrap_legacy_config` and
//!   prost decoding of `WebSocketMessage` / `Envelope` / `Content` never panic on arbitrary bytes;
//! - `decode_1o1` = `unwrap_websocket_message` then `decode_envelope_1o1` (same result, same error);
//! - whatever prost decodes re-encodes to bytes that decode to the same message, and encoding
//!   is stable (encode ∘ decode ∘ encode = encode);
//! - structured: when the input is a valid `Content`, padding it, v1-encrypting it from sender B
//!   and wrapping it in an `Envelope` and a `WebSocketMessage` gives bytes `decode_1o1` turns
//!   back into that `Content` from B (with a Pro signature when the first byte is odd, which
//!   requires `sigTimestamp` when the content carries a `proMessage`).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use session_protocol::IdentityKey;
use session_protocol::envelope::{
    DecodeError, ProSigned, decode_1o1, decode_envelope_1o1, unwrap_legacy_config, unwrap_websocket_message,
    wrap_in_websocket_message,
};
use session_protocol::padding::pad_message;
use session_protocol::proto::{Content, Envelope, WebSocketMessage, envelope};
use session_protocol::v1::encrypt_for_recipient_deterministic;

static RECIPIENT: LazyLock<IdentityKey> = LazyLock::new(|| {
    IdentityKey::from_seed_bytes(&seed("0123456789abcdef0123456789abcdef00000000000000000000000000000000"))
});
static SENDER: LazyLock<IdentityKey> = LazyLock::new(|| {
    IdentityKey::from_seed_bytes(&seed("00112233445566778899aabbccddeeff00000000000000000000000000000000"))
});

const PRO_SIG: [u8; 64] = [0x5a; 64];

fuzz_target!(|data: &[u8]| {
    let recipient = &*RECIPIENT;

    // The pipeline stages on arbitrary bytes.
    let unwrapped = unwrap_websocket_message(data);
    let decoded = decode_1o1(recipient, data);
    match &unwrapped {
        Ok(envelope) => {
            let message = WebSocketMessage::decode(data).expect("unwrap succeeded, so it decodes");
            let body = message.request.and_then(|r| r.body);
            assert_eq!(body.as_ref(), Some(envelope), "unwrap returned another body");
            assert_eq!(
                decoded,
                decode_envelope_1o1(recipient, envelope),
                "decode_1o1 is not unwrap + decode"
            );
        }
        Err(e) => assert_eq!(decoded.as_ref().err(), Some(e), "decode_1o1 failed differently from unwrap"),
    }
    let _ = decode_envelope_1o1(recipient, data);
    let _ = unwrap_legacy_config(recipient, data);

    // Protobuf decoders: decode → encode → decode is the identity, encoding is stable.
    round_trip::<WebSocketMessage>(data);
    round_trip::<Envelope>(data);
    let Some(content) = round_trip::<Content>(data) else { return };

    // Structured: the input is a valid Content; send it from SENDER to RECIPIENT.
    let sender = &*SENDER;
    let ciphertext =
        encrypt_for_recipient_deterministic(sender, recipient.x25519_public(), &pad_message(data))
            .expect("the recipient key is valid");
    let with_pro = data.first().is_some_and(|b| b & 1 == 1);
    let envelope = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        timestamp: 1_700_000_000_000,
        source_device: Some(1),
        content: Some(ciphertext.clone()),
        pro_sig: with_pro.then(|| PRO_SIG.to_vec()),
        ..Envelope::default()
    };
    let websocket_message = wrap_in_websocket_message(envelope.encode_to_vec());
    let result = decode_1o1(recipient, &websocket_message);
    if with_pro && content.pro_message.is_some() && content.sig_timestamp.unwrap_or(0) == 0 {
        assert_eq!(result.err(), Some(DecodeError::MissingSigTimestamp));
        return;
    }
    let decoded = result.expect("a well-formed message from a valid sender decodes");
    assert_eq!(decoded.content, content, "the pipeline changed the Content");
    assert_eq!(decoded.sender, sender.session_id());
    assert_eq!(decoded.sender_ed25519, sender.ed25519_public());
    assert_eq!(decoded.envelope_timestamp_ms, 1_700_000_000_000);
    assert_eq!(decoded.source_device, Some(1));
    assert_eq!(decoded.server_timestamp, None);
    let expected_pro = (with_pro && content.pro_message.is_some())
        .then_some(ProSigned { signature: PRO_SIG, signed_content: ciphertext });
    assert_eq!(decoded.pro, expected_pro);
    // Only the account itself may send legacy config.
    assert!(unwrap_legacy_config(recipient, &websocket_message).is_err());
});

/// Decodes `data` as `M`; on success checks the re-encoding round trip and returns the message.
fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len());
    let again = M::decode(encoded.as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, message, "decode → encode → decode changed the message");
    assert_eq!(again.encode_to_vec(), encoded, "encoding is not stable");
    Some(message)
}

fn seed(hex: &str) -> [u8; 32] {
    session_protocol::primitives::hex_array(hex).expect("fixed 64-digit hex seed")
}
