//! Fuzzes the recovery-phrase decoder (crypto §2.3) on arbitrary text.
//!
//! Input bytes are taken as UTF-8 when valid, else lossily converted, so both well-formed and
//! replacement-character-laden phrases reach `mnemonic::decode`. Properties:
//! - `decode` and `decode_words` never panic and agree with each other;
//! - a successful decode yields a non-zero multiple of 4 bytes, which re-encodes (with and
//!   without the checksum word) to a phrase that decodes to the same bytes.

#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use session_protocol::mnemonic;

fuzz_target!(|data: &[u8]| {
    let text: Cow<'_, str> = String::from_utf8_lossy(data);

    let decoded = mnemonic::decode(&text);
    let words: Vec<&str> = text.split_whitespace().collect();
    let decoded_words = mnemonic::decode_words(&words);
    assert_eq!(
        decoded.as_ref().map(|d| &d[..]),
        decoded_words.as_ref().map(|d| &d[..]),
        "decode and decode_words disagree"
    );

    // Account restore must not panic either, whatever the length.
    let _ = mnemonic::account_seed_from_phrase(&text);

    let Ok(bytes) = decoded else { return };
    assert!(!bytes.is_empty() && bytes.len() % 4 == 0, "decoded length {}", bytes.len());

    let with_checksum = mnemonic::encode(&bytes).expect("decoded bytes are a multiple of 4");
    assert_eq!(with_checksum.word_count(), bytes.len() / 4 * 3 + 1);
    let again = mnemonic::decode(&with_checksum.to_text()).expect("re-encoded phrase decodes");
    assert_eq!(&again[..], &bytes[..], "round trip with checksum changed the bytes");

    let without_checksum =
        mnemonic::encode_without_checksum(&bytes).expect("decoded bytes are a multiple of 4");
    let again = mnemonic::decode(&without_checksum.to_text()).expect("re-encoded phrase decodes");
    assert_eq!(&again[..], &bytes[..], "round trip without checksum changed the bytes");
});
