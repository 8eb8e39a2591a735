//! Fuzzes bt-encoding (network §2.3; crypto §0.2) and the frames built on it (network §2.3,
//! §4.16, §6.5, §7.5) on arbitrary bytes.
//!
//! Properties:
//! - `bencode::decode` never panics; it accepts only canonical encodings, so `encode` of what it
//!   accepts reproduces the input exactly; `BtReader::skip` + `finish` validates exactly the same
//!   inputs; `signed_dict` finds a signature only in a valid dict and its signed bytes are a
//!   prefix of the input;
//! - `QuicMessage::parse_frame` / `parse_payload`: an accepted frame is re-framed (`to_frame`)
//!   to exactly the bytes it consumed;
//! - `decode_sn_data`: an accepted payload is re-encoded (`encode_sn_data`) to exactly the input;
//! - `SnOnionRequest::decode`, `MonitorNotification::decode`, `MonitorSubscription::from_bt` /
//!   `list_from_bt` (which skip unknown keys): what they accept re-encodes to bytes that decode
//!   to the same value; `MonitorSubscription::verify` does not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use session_protocol::bencode::{
    self, BtReader, MonitorNotification, QuicMessage, SnOnionRequest, decode_sn_data, encode_sn_data,
    signed_dict,
};
use session_protocol::rpc_sign::MonitorSubscription;

/// A fixed "now" for `MonitorSubscription::verify` (2026-01-01T00:00:00Z).
const NOW_S: u64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    check_value(data);
    check_quic(data);
    check_parts(data);
    check_monitor(data);
});

fn check_value(data: &[u8]) {
    let decoded = bencode::decode(data);
    let mut reader = BtReader::new(data);
    let skipped = reader.skip().and_then(|()| reader.finish());
    assert_eq!(decoded.is_ok(), skipped.is_ok(), "decode and skip disagree: {decoded:?} vs {skipped:?}");
    if let Ok(value) = &decoded {
        assert_eq!(bencode::encode(value), data, "decode → encode is not the identity");
    }

    for key in [&b"s"[..], b"signature", b"~"] {
        if let Ok(Some(signed)) = signed_dict(data, key) {
            assert!(decoded.is_ok(), "signed_dict accepted what decode rejects");
            assert!(data.starts_with(signed.signed), "signed bytes are not a prefix");
            assert_eq!(signed.signed.first(), Some(&b'd'));
            let value = decoded.as_ref().ok().and_then(|v| v.get(key)).and_then(|v| v.as_bytes());
            assert_eq!(value, Some(signed.signature), "signed_dict found another signature");
        }
    }
}

fn check_quic(data: &[u8]) {
    if let Ok(Some((message, used))) = QuicMessage::parse_frame(data) {
        assert!(used <= data.len());
        assert_eq!(message.to_frame(), &data[..used], "frame round trip changed the bytes");
        assert_eq!(QuicMessage::parse_frame(&data[..used]), Ok(Some((message, used))));
    }
    if let Ok(message) = QuicMessage::parse_payload(data) {
        let frame = message.to_frame();
        assert!(frame.ends_with(data), "payload round trip changed the bytes");
        assert_eq!(&frame[..frame.len() - data.len()], format!("{}:", data.len()).as_bytes());
        let _ = message.rid();
    }
}

fn check_parts(data: &[u8]) {
    if let Ok(request) = SnOnionRequest::decode(data) {
        let encoded = request.encode();
        assert_eq!(SnOnionRequest::decode(&encoded), Ok(request), "sn.onion_request round trip");
    }
    if let Ok(notification) = MonitorNotification::decode(data) {
        let encoded = notification.encode();
        assert_eq!(MonitorNotification::decode(&encoded), Ok(notification), "notification round trip");
    }
    if let Ok(messages) = decode_sn_data(data) {
        let payloads = encode_sn_data(&messages);
        if messages.is_empty() {
            assert_eq!(data, b"\x01le");
            assert!(payloads.is_empty());
        } else {
            assert_eq!(payloads, [data], "sn.data round trip changed the bytes");
        }
    }
}

fn check_monitor(data: &[u8]) {
    let single = MonitorSubscription::from_bt(data);
    let list = MonitorSubscription::list_from_bt(data);
    if data.first() != Some(&b'l') {
        assert_eq!(
            list.clone().map(|mut l| l.pop()),
            single.clone().map(Some),
            "from_bt and list_from_bt disagree"
        );
    }
    for subscription in list.iter().flatten() {
        let encoded = subscription.to_bt();
        assert_eq!(MonitorSubscription::from_bt(&encoded).as_ref(), Ok(subscription), "monitor round trip");
        let _ = subscription.verify(NOW_S);
    }
}
