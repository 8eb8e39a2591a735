//! Recovery phrase (crypto §2): the Monero/Electrum-style English word encoding of the account
//! seed, with the CRC-32 checksum word.
//!
//! Every 4 bytes become 3 words (16 bytes → 12 words, 32 bytes → 24 words); the checksum word
//! repeats one of them (13th / 25th word). Decoding follows libsession: words are separated by
//! whitespace, only the first three letters of each word count (ASCII case-insensitive), and the
//! checksum word is optional (3k or 3k + 1 words).
//!
//! ```
//! use session_protocol::mnemonic;
//!
//! let phrase = mnemonic::encode(&[0u8; 16]).unwrap();
//! assert_eq!(phrase.word_count(), 13);
//! let data = mnemonic::decode(&phrase.to_text()).unwrap();
//! assert_eq!(&data[..], &[0u8; 16]);
//! ```

use std::fmt;
use std::sync::LazyLock;

use zeroize::Zeroizing;

use crate::keys::{AccountSeed, IdentityKey};

/// Number of words in the English list (crypto §2.1).
pub const WORD_LIST_LEN: usize = 1626;

/// Number of leading characters that identify a word (crypto §2.1).
pub const PREFIX_LEN: usize = 3;

/// A recovery phrase could not be encoded or decoded (crypto §2.3). Error text never contains
/// the words themselves, only positions: the phrase is the account secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MnemonicError {
    /// Encoding: the data length is zero or not a multiple of 4.
    #[error("data to encode must be a non-zero multiple of 4 bytes, got {0}")]
    DataLength(usize),
    /// Decoding: the phrase must have 3k or 3k + 1 words, k ≥ 1 (vector class
    /// `invalid_word_count`).
    #[error("a recovery phrase has 3k or 3k+1 words, got {0}")]
    WordCount(usize),
    /// Decoding: the word at this position (0-based) matches no word-list prefix (vector class
    /// `unknown_word`).
    #[error("word {position} of the recovery phrase is not in the word list")]
    UnknownWord {
        /// 0-based position of the word in the phrase.
        position: usize,
    },
    /// Decoding: the three words starting at this position encode a value ≥ 2³² (vector class
    /// `invalid_value`).
    #[error("words {position}..{} of the recovery phrase encode an invalid value", position + 3)]
    InvalidValue {
        /// 0-based position of the first word of the triple.
        position: usize,
    },
    /// Decoding: the checksum word is not the one the other words call for (vector class
    /// `checksum_mismatch`).
    #[error("the recovery phrase checksum word does not match")]
    ChecksumMismatch,
    /// Account restore: the phrase decodes to a length that is not an account seed (16 or 32
    /// bytes, i.e. 12/13 or 24/25 words).
    #[error("a recovery phrase for an account encodes 16 or 32 bytes, this one encodes {0}")]
    AccountSeedLength(usize),
}

/// An encoded recovery phrase: word indices into the English list, checksum word included.
///
/// `Display` writes the words joined by single spaces; prefer [`Phrase::to_text`], which returns
/// the text in zeroizing memory. `Debug` does not show the words.
#[derive(Clone, PartialEq, Eq)]
pub struct Phrase {
    indices: Zeroizing<Vec<u16>>,
    checksum_position: Option<usize>,
}

impl Phrase {
    /// The words, in order (checksum word last, if any).
    pub fn words(&self) -> impl ExactSizeIterator<Item = &'static str> + '_ {
        let list = &ENGLISH.words;
        self.indices.iter().map(move |&i| list[usize::from(i)])
    }

    /// The index in the English word list of every word, checksum word included.
    pub fn word_indices(&self) -> &[u16] {
        &self.indices
    }

    /// Number of words, checksum word included.
    pub fn word_count(&self) -> usize {
        self.indices.len()
    }

    /// Position, among the data words, of the word repeated as checksum; `None` without a
    /// checksum word.
    pub fn checksum_position(&self) -> Option<usize> {
        self.checksum_position
    }

    /// The words joined by single spaces, in memory that is wiped on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        let len = self.words().map(|w| w.len() + 1).sum::<usize>().saturating_sub(1);
        let mut text = Zeroizing::new(String::with_capacity(len));
        for (i, word) in self.words().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(word);
        }
        text
    }
}

impl fmt::Display for Phrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in self.words().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Phrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phrase(<{} words redacted>)", self.indices.len())
    }
}

/// Encodes `data` (a non-zero multiple of 4 bytes) as words plus the checksum word (crypto §2.2).
pub fn encode(data: &[u8]) -> Result<Phrase, MnemonicError> {
    encode_words(data, true)
}

/// Encodes `data` (a non-zero multiple of 4 bytes) as words without a checksum word
/// (crypto §2.2; libsession `bytes_to_words(…, checksum=false)`).
pub fn encode_without_checksum(data: &[u8]) -> Result<Phrase, MnemonicError> {
    encode_words(data, false)
}

/// The recovery phrase of an account: 13 words for a legacy seed (upper 16 bytes zero), else 25
/// (crypto §1.1, §2.2).
pub fn account_phrase(seed: &AccountSeed) -> Phrase {
    encode(seed.phrase_bytes()).expect("16 or 32 bytes is a non-zero multiple of 4")
}

/// Decodes a whitespace-separated phrase of 3k words, or 3k + 1 with the checksum word
/// (crypto §2.3). Words match by their first three letters, ASCII case-insensitively.
pub fn decode(phrase: &str) -> Result<Zeroizing<Vec<u8>>, MnemonicError> {
    let count = phrase.split_whitespace().count();
    decode_iter(phrase.split_whitespace(), count)
}

/// Like [`decode`], for words already split (e.g. one input field per word).
pub fn decode_words<S: AsRef<str>>(words: &[S]) -> Result<Zeroizing<Vec<u8>>, MnemonicError> {
    decode_iter(words.iter().map(AsRef::as_ref), words.len())
}

/// Restores an account seed from its phrase: 12/13 words give a 16-byte legacy seed
/// (zero-padded), 24/25 words the full 32-byte seed (crypto §1.1).
pub fn account_seed_from_phrase(phrase: &str) -> Result<AccountSeed, MnemonicError> {
    let data = decode(phrase)?;
    AccountSeed::from_slice(&data).map_err(|_| MnemonicError::AccountSeedLength(data.len()))
}

/// Restores an account's identity key from its recovery phrase (crypto §1.1, §2).
pub fn identity_from_phrase(phrase: &str) -> Result<IdentityKey, MnemonicError> {
    Ok(IdentityKey::from_seed(&account_seed_from_phrase(phrase)?))
}

// ---- word list ----

/// Number of 3-letter lower-case ASCII prefixes.
const PREFIX_SPACE: usize = 26 * 26 * 26;
/// Marks a prefix that is not in the word list.
const NO_WORD: u16 = u16::MAX;

struct WordList {
    words: Box<[&'static str]>,
    /// Word index for each 3-letter prefix `(a·26 + b)·26 + c`, or [`NO_WORD`].
    by_prefix: Box<[u16]>,
}

static ENGLISH: LazyLock<WordList> = LazyLock::new(|| {
    let words: Box<[&'static str]> = include_str!("mnemonic-english.txt").lines().collect();
    assert_eq!(words.len(), WORD_LIST_LEN, "embedded word list has 1626 words");
    let mut by_prefix = vec![NO_WORD; PREFIX_SPACE].into_boxed_slice();
    for (index, word) in words.iter().enumerate() {
        let slot = prefix_slot(word).expect("every listed word starts with 3 ASCII letters");
        assert_eq!(by_prefix[slot], NO_WORD, "3-letter prefixes of the word list are unique");
        by_prefix[slot] = u16::try_from(index).expect("1626 fits in u16");
    }
    WordList { words, by_prefix }
});

/// The table slot of a word's prefix: its first three characters, ASCII lower-cased. `None` if
/// the word is shorter or they are not ASCII letters (libsession keeps non-ASCII characters
/// as they are, so they can never match the all-ASCII English list).
fn prefix_slot(word: &str) -> Option<usize> {
    let mut slot = 0usize;
    for &byte in word.as_bytes().get(..PREFIX_LEN)? {
        let letter = byte.to_ascii_lowercase();
        if !letter.is_ascii_lowercase() {
            return None;
        }
        slot = slot * 26 + usize::from(letter - b'a');
    }
    Some(slot)
}

/// The word-list index of a word, by prefix.
fn lookup(word: &str) -> Option<u16> {
    let index = *ENGLISH.by_prefix.get(prefix_slot(word)?)?;
    (index != NO_WORD).then_some(index)
}

/// The canonical 3-letter prefix of a listed word.
fn prefix_of(index: u16) -> &'static [u8] {
    &ENGLISH.words[usize::from(index)].as_bytes()[..PREFIX_LEN]
}

// ---- encoding and decoding ----

const N: u32 = WORD_LIST_LEN as u32;

fn encode_words(data: &[u8], checksum: bool) -> Result<Phrase, MnemonicError> {
    if data.is_empty() || !data.len().is_multiple_of(4) {
        return Err(MnemonicError::DataLength(data.len()));
    }
    let data_words = data.len() / 4 * 3;
    let mut indices = Zeroizing::new(Vec::with_capacity(data_words + usize::from(checksum)));
    for chunk in data.chunks_exact(4) {
        let v = u32::from_le_bytes(chunk.try_into().expect("chunks of 4"));
        let w1 = v % N;
        let w2 = (v / N + w1) % N;
        let w3 = (v / N / N + w2) % N;
        for w in [w1, w2, w3] {
            indices.push(u16::try_from(w).expect("below 1626"));
        }
    }
    let checksum_position = checksum.then(|| {
        let position = checksum_position(&indices);
        let repeated = indices[position];
        indices.push(repeated);
        position
    });
    Ok(Phrase { indices, checksum_position })
}

/// Which data word the checksum repeats: CRC-32 of the concatenated prefixes mod the count.
/// `indices` is non-empty.
fn checksum_position(indices: &[u16]) -> usize {
    let mut crc = Crc32::new();
    for &index in indices {
        crc.update(prefix_of(index));
    }
    crc.finish() as usize % indices.len()
}

fn decode_iter<'a>(
    mut words: impl Iterator<Item = &'a str>,
    count: usize,
) -> Result<Zeroizing<Vec<u8>>, MnemonicError> {
    let has_checksum = count % 3 == 1;
    let data_words = count - usize::from(has_checksum);
    if data_words == 0 || !data_words.is_multiple_of(3) {
        return Err(MnemonicError::WordCount(count));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(data_words / 3 * 4));
    // Indices are kept only to find the word the checksum must repeat.
    let mut indices = Zeroizing::new(Vec::with_capacity(data_words));
    let mut next_index =
        |position: usize| words.next().and_then(lookup).ok_or(MnemonicError::UnknownWord { position });
    for position in (0..data_words).step_by(3) {
        let a = next_index(position)?;
        let b = next_index(position + 1)?;
        let c = next_index(position + 2)?;
        indices.extend_from_slice(&[a, b, c]);
        let (a, b, c) = (u64::from(a), u64::from(b), u64::from(c));
        let n = u64::from(N);
        let x = a + n * ((n - a + b) % n) + n * n * ((n - b + c) % n);
        let x = u32::try_from(x).map_err(|_| MnemonicError::InvalidValue { position })?;
        out.extend_from_slice(&x.to_le_bytes());
    }
    if has_checksum {
        let supplied = next_index(data_words)?;
        if indices[checksum_position(&indices)] != supplied {
            return Err(MnemonicError::ChecksumMismatch);
        }
    }
    Ok(out)
}

/// CRC-32/ISO-HDLC (zlib `crc32`): reflected polynomial 0xEDB88320, init and xorout 0xFFFFFFFF.
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Self {
        Self(0xFFFF_FFFF)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }

    fn finish(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xCBF4_3926);
    }

    #[test]
    fn word_list_shape() {
        assert_eq!(ENGLISH.words.len(), WORD_LIST_LEN);
        assert_eq!(ENGLISH.words[0], "abbey");
        assert_eq!(ENGLISH.words[WORD_LIST_LEN - 1], "zoom");
        assert_eq!(ENGLISH.by_prefix.iter().filter(|&&i| i != NO_WORD).count(), WORD_LIST_LEN);
    }

    #[test]
    fn lookup_by_prefix() {
        assert_eq!(lookup("abbey"), Some(0));
        assert_eq!(lookup("ABB"), Some(0));
        assert_eq!(lookup("Zoomed"), Some(1625));
        assert_eq!(lookup("ab"), None);
        assert_eq!(lookup("zzz"), None);
        assert_eq!(lookup("ab1"), None);
        assert_eq!(lookup("äbbey"), None);
        assert_eq!(lookup(""), None);
    }

    #[test]
    fn four_bytes() {
        let phrase = encode_without_checksum(&[1, 2, 3, 4]).unwrap();
        assert_eq!(phrase.word_indices(), &[967, 84, 109]);
        assert_eq!(phrase.to_string(), "object anxiety asked");
        assert_eq!(phrase.checksum_position(), None);
        let phrase = encode(&[1, 2, 3, 4]).unwrap();
        assert_eq!(&*phrase.to_text(), "object anxiety asked object");
        assert_eq!(phrase.checksum_position(), Some(0));
    }

    #[test]
    fn account_round_trip() {
        let legacy = AccountSeed::from_slice(&[7u8; 16]).unwrap();
        let phrase = account_phrase(&legacy);
        assert_eq!(phrase.word_count(), 13);
        assert_eq!(account_seed_from_phrase(&phrase.to_text()).unwrap(), legacy);
        let full = AccountSeed::from_bytes([9u8; 32]);
        let phrase = account_phrase(&full);
        assert_eq!(phrase.word_count(), 25);
        assert_eq!(account_seed_from_phrase(&phrase.to_text()).unwrap(), full);
        let key = identity_from_phrase(&phrase.to_text()).unwrap();
        assert_eq!(*key.seed(), [9u8; 32]);
    }

    #[test]
    fn errors() {
        assert_eq!(encode(&[]).unwrap_err(), MnemonicError::DataLength(0));
        assert_eq!(encode(&[1, 2, 3]).unwrap_err(), MnemonicError::DataLength(3));
        assert_eq!(decode("").unwrap_err(), MnemonicError::WordCount(0));
        assert_eq!(decode(" abbey ").unwrap_err(), MnemonicError::WordCount(1));
        assert_eq!(decode("abbey abbey").unwrap_err(), MnemonicError::WordCount(2));
        assert_eq!(decode("abbey xyz abbey").unwrap_err(), MnemonicError::UnknownWord { position: 1 });
        assert_eq!(
            decode("abbey abbey abbey abbey abbey zoom").unwrap_err(),
            MnemonicError::InvalidValue { position: 3 }
        );
        assert_eq!(
            decode("object anxiety asked xyz").unwrap_err(),
            MnemonicError::UnknownWord { position: 3 }
        );
        assert_eq!(decode("object anxiety asked asked").unwrap_err(), MnemonicError::ChecksumMismatch);
        assert_eq!(
            account_seed_from_phrase("object anxiety asked").unwrap_err(),
            MnemonicError::AccountSeedLength(4)
        );
        // The largest value 2^32 - 1 still decodes.
        let max = encode_without_checksum(&[0xff; 4]).unwrap();
        assert_eq!(&decode(&max.to_text()).unwrap()[..], &[0xff; 4]);
    }

    #[test]
    fn tabs_newlines_and_words_api() {
        let data = decode("object\tanxiety\n asked  ").unwrap();
        assert_eq!(&data[..], &[1, 2, 3, 4]);
        assert_eq!(&decode_words(&["OBJ", "anx", "Ask", "obj"]).unwrap()[..], &[1, 2, 3, 4]);
    }

    #[test]
    fn debug_hides_words() {
        let phrase = encode(&[1, 2, 3, 4]).unwrap();
        let text = format!("{phrase:?}");
        assert!(!text.contains("object"), "{text}");
        let err = decode("amaze buffet qqsecret").unwrap_err();
        assert!(!err.to_string().contains("qqsecret"));
    }
}
