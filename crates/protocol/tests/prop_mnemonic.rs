//! Property tests for the recovery phrase (crypto §2).
use proptest::prelude::*;
use session_protocol::mnemonic::{self, MnemonicError};

/// Byte strings whose length is a non-zero multiple of 4 (up to 64 bytes).
fn chunked_data() -> impl Strategy<Value = Vec<u8>> {
    (1usize..=16).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 4))
}

/// The word-list entry at `index` (< 1626), via the public API: a value v < 1626 encodes to a
/// first word of index v.
fn word(index: u16) -> String {
    let phrase = mnemonic::encode_without_checksum(&u32::from(index).to_le_bytes()).unwrap();
    assert_eq!(phrase.word_indices()[0], index);
    phrase.words().next().unwrap().to_owned()
}

proptest! {
    #[test]
    fn round_trip_with_checksum(data in chunked_data()) {
        let phrase = mnemonic::encode(&data).unwrap();
        prop_assert_eq!(phrase.word_count(), data.len() / 4 * 3 + 1);
        let decoded = mnemonic::decode(&phrase.to_text()).unwrap();
        prop_assert_eq!(decoded.as_slice(), data.as_slice());
    }

    #[test]
    fn round_trip_without_checksum(data in chunked_data()) {
        let phrase = mnemonic::encode_without_checksum(&data).unwrap();
        prop_assert_eq!(phrase.word_count(), data.len() / 4 * 3);
        prop_assert_eq!(phrase.checksum_position(), None);
        let decoded = mnemonic::decode(&phrase.to_string()).unwrap();
        prop_assert_eq!(decoded.as_slice(), data.as_slice());
    }

    #[test]
    fn round_trip_account_sizes(seed16 in any::<[u8; 16]>(), seed32 in any::<[u8; 32]>()) {
        for data in [&seed16[..], &seed32[..]] {
            let phrase = mnemonic::encode(data).unwrap();
            prop_assert_eq!(phrase.word_count(), if data.len() == 16 { 13 } else { 25 });
            let decoded = mnemonic::decode(&phrase.to_text()).unwrap();
            prop_assert_eq!(decoded.as_slice(), data);
        }
    }

    #[test]
    fn case_and_suffix_insensitive(data in chunked_data(), flips in any::<u64>(), cut in any::<u64>()) {
        let phrase = mnemonic::encode(&data).unwrap();
        // Randomly upper-case letters and truncate words to their 3-letter prefix.
        let mangled: Vec<String> = phrase
            .words()
            .enumerate()
            .map(|(i, w)| {
                let w = if (cut >> (i % 64)) & 1 == 1 { &w[..3] } else { w };
                w.chars()
                    .enumerate()
                    .map(|(j, c)| if (flips >> ((i + j) % 64)) & 1 == 1 { c.to_ascii_uppercase() } else { c })
                    .collect()
            })
            .collect();
        let decoded = mnemonic::decode(&mangled.join(" \t")).unwrap();
        prop_assert_eq!(decoded.as_slice(), data.as_slice());
    }

    #[test]
    fn changed_checksum_word_is_rejected(data in chunked_data(), other in 0u16..1626) {
        let phrase = mnemonic::encode(&data).unwrap();
        let mut words: Vec<String> = phrase.words().map(str::to_owned).collect();
        let replacement = word(other);
        prop_assume!(words.last() != Some(&replacement));
        *words.last_mut().unwrap() = replacement;
        prop_assert_eq!(mnemonic::decode(&words.join(" ")).unwrap_err(), MnemonicError::ChecksumMismatch);
    }

    #[test]
    fn decode_never_panics(text in "\\PC{0,200}") {
        let _ = mnemonic::decode(&text);
    }

    #[test]
    fn decode_never_panics_on_word_like_input(
        words in proptest::collection::vec("[a-zA-Z]{0,6}", 0..30)
    ) {
        match mnemonic::decode(&words.join(" ")) {
            Ok(data) => {
                let n = words.iter().filter(|w| !w.is_empty()).count();
                prop_assert_eq!(data.len(), n / 3 * 4);
            }
            Err(
                MnemonicError::WordCount(_)
                | MnemonicError::UnknownWord { .. }
                | MnemonicError::InvalidValue { .. }
                | MnemonicError::ChecksumMismatch,
            ) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn encode_rejects_bad_lengths(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let ok = !data.is_empty() && data.len() % 4 == 0;
        prop_assert_eq!(mnemonic::encode(&data).is_ok(), ok);
        prop_assert_eq!(mnemonic::encode_without_checksum(&data).is_ok(), ok);
    }
}
