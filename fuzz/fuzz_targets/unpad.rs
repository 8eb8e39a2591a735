//! Fuzzes content unpadding (crypto §4.1) on arbitrary bytes, and padding round trips.
//!
//! Properties:
//! - `unpad` and `unpad_in_place` never panic and agree with each other;
//! - `unpad` fails exactly on empty or all-zero input; otherwise it returns a prefix of the input
//!   that is either the whole input (no `0x80` before the trailing zeros) or everything before
//!   the last non-zero byte, which is `0x80` and followed only by zeros;
//! - for both sender variants, `pad` (and `pad_in_place`) give `padded_len` bytes ending in
//!   `0x80 00…`, and unpadding them gives the input back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use session_protocol::padding::{
    PADDING_MARKER, PaddingVariant, pad, pad_in_place, pad_message, padded_len, unpad, unpad_in_place,
};

fuzz_target!(|data: &[u8]| {
    let unpadded = unpad(data);
    let mut buffer = data.to_vec();
    let in_place = unpad_in_place(&mut buffer);
    assert_eq!(unpadded.map(|_| ()), in_place, "unpad and unpad_in_place disagree on success");

    match unpadded {
        Ok(content) => {
            assert_eq!(&buffer[..], content, "unpad_in_place kept other bytes than unpad");
            assert!(data.starts_with(content), "unpad result is not a prefix of the input");
            let rest = &data[content.len()..];
            match rest.split_first() {
                None => {}
                Some((&marker, zeros)) => {
                    assert_eq!(marker, PADDING_MARKER, "unpad stripped a non-marker byte");
                    assert!(zeros.iter().all(|&b| b == 0), "unpad stripped non-zero padding");
                }
            }
            if rest.is_empty() {
                // Returned whole: the last non-zero byte is not the marker.
                let last = data.iter().rev().find(|&&b| b != 0).expect("Ok means a non-zero byte exists");
                assert_ne!(*last, PADDING_MARKER, "unpad ignored a padding marker");
            }
        }
        Err(_) => {
            assert!(data.iter().all(|&b| b == 0), "unpad rejected input with a non-zero byte");
            assert_eq!(buffer, data, "a failed unpad_in_place changed the buffer");
        }
    }

    for variant in [PaddingVariant::Libsession, PaddingVariant::DesktopLegacy] {
        let padded = pad(data, variant);
        let total = padded_len(data.len(), variant);
        assert_eq!(padded.len(), total, "pad gave a length other than padded_len ({variant:?})");
        assert!(total > data.len(), "padding added no marker ({variant:?})");
        assert!(padded.starts_with(data));
        assert_eq!(padded[data.len()], PADDING_MARKER);
        assert!(padded[data.len() + 1..].iter().all(|&b| b == 0));
        match variant {
            PaddingVariant::Libsession => {
                assert_eq!(total % 160, 0);
                assert!(total - data.len() >= 2, "libsession padding has at least one zero byte");
                assert_eq!(pad_message(data), padded);
            }
            _ => assert_eq!((total + 1) % 160, 0),
        }

        let mut in_place = data.to_vec();
        pad_in_place(&mut in_place, variant);
        assert_eq!(in_place, padded, "pad_in_place differs from pad ({variant:?})");

        assert_eq!(unpad(&padded), Ok(data), "pad → unpad changed the content ({variant:?})");
        unpad_in_place(&mut in_place).expect("padded content always unpads");
        assert_eq!(in_place, data, "pad → unpad_in_place changed the content ({variant:?})");
    }
});
