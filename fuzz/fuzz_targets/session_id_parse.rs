//! Fuzzes Session ID parsing: `SessionId::from_str` on arbitrary (lossy UTF-8) text and
//! `SessionId::from_bytes` on the raw bytes. Properties:
//! - neither parser panics;
//! - an accepted id round-trips: `to_hex` parses back to the same id, `to_bytes` goes through
//!   `from_bytes` to the same id, and `to_hex` is 66 lower-case hex characters;
//! - `from_bytes` accepts exactly 33 bytes with a known prefix, and then gives back those bytes;
//! - `short()` (used in logs) never panics on a parsed id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use session_protocol::{IdPrefix, SessionId};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = text.parse::<SessionId>() {
        check_round_trip(&id);
        // The hex form parsed is the trimmed input, up to case.
        assert_eq!(id.to_hex(), text.trim().to_ascii_lowercase());
        // parse_with_prefix agrees with the parsed prefix.
        assert_eq!(SessionId::parse_with_prefix(&text, id.prefix()), Ok(id));
    }

    match SessionId::from_bytes(data) {
        Ok(id) => {
            assert_eq!(&id.to_bytes()[..], data, "from_bytes/to_bytes changed the bytes");
            check_round_trip(&id);
        }
        Err(_) => assert!(
            data.len() != 33 || IdPrefix::from_byte(data[0]).is_none(),
            "from_bytes rejected 33 bytes with a known prefix"
        ),
    }
});

fn check_round_trip(id: &SessionId) {
    let hex = id.to_hex();
    assert_eq!(hex.len(), 66);
    assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(hex.parse::<SessionId>().as_ref(), Ok(id), "to_hex does not parse back");
    assert_eq!(SessionId::from_bytes(&id.to_bytes()).as_ref(), Ok(id), "to_bytes does not parse back");
    assert_eq!(id.key()[..], id.to_bytes()[1..]);
    assert_eq!(id.prefix().byte(), id.to_bytes()[0]);
    let _ = id.short();
}
