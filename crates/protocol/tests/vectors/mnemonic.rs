//! Recovery phrase (crypto §2): 13/25-word encode and decode with the checksum word.
use session_protocol::IdentityKey;
use session_protocol::mnemonic::{
    self, MnemonicError, account_phrase, account_seed_from_phrase, identity_from_phrase,
};

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("mnemonic_encode", mnemonic_encode),
        ("mnemonic_decode", mnemonic_decode),
        ("mnemonic_decode_reject", mnemonic_decode_reject),
        ("mnemonic_to_account", mnemonic_to_account),
    ]
}

fn error_class(error: &MnemonicError) -> &'static str {
    match error {
        MnemonicError::WordCount(_) | MnemonicError::AccountSeedLength(_) => "invalid_word_count",
        MnemonicError::UnknownWord { .. } => "unknown_word",
        MnemonicError::InvalidValue { .. } => "invalid_value",
        MnemonicError::ChecksumMismatch => "checksum_mismatch",
        _ => "other",
    }
}

fn mnemonic_encode(case: &Case<'_>) -> Result<(), String> {
    let data = case.hex("data")?;
    let phrase = if case.bool("checksum")? {
        mnemonic::encode(&data)
    } else {
        mnemonic::encode_without_checksum(&data)
    }
    .or_fail("encode")?;
    case.check_str("words", &phrase.to_text())?;
    case.check_str("words", &phrase.to_string())?;
    let indices: Vec<serde_json::Value> = phrase.word_indices().iter().map(|&i| i.into()).collect();
    case.check_value("word_indices", &indices.into())?;
    let position = phrase.checksum_position().map(|p| p as i64);
    case.check_value("checksum_index", &position.into())?;
    // Also: the checksum word repeats the word at checksum_index, and the words decode to data.
    if let Some(p) = phrase.checksum_position() {
        let words: Vec<&str> = phrase.words().collect();
        if words.get(p) != words.last() {
            return Err("checksum word is not a copy of the word at checksum_index".into());
        }
    }
    let decoded = mnemonic::decode(&phrase.to_text()).or_fail("decode")?;
    if decoded.as_slice() != data {
        return Err(format!("decoding the words gives {}", hex::encode(&decoded)));
    }
    Ok(())
}

fn mnemonic_decode(case: &Case<'_>) -> Result<(), String> {
    let phrase = case.str("phrase")?;
    let data = mnemonic::decode(phrase).or_fail("decode")?;
    case.check_hex("data", &data)?;
    // Also: the same words given one by one decode the same way.
    let words: Vec<&str> = phrase.split_whitespace().collect();
    let again = mnemonic::decode_words(&words).or_fail("decode_words")?;
    if again != data {
        return Err("decode_words disagrees with decode".into());
    }
    Ok(())
}

fn mnemonic_decode_reject(case: &Case<'_>) -> Result<(), String> {
    let phrase = case.str("phrase")?;
    case.check_error(mnemonic::decode(phrase), error_class)
}

fn mnemonic_to_account(case: &Case<'_>) -> Result<(), String> {
    let phrase = case.str("phrase")?;
    let data = mnemonic::decode(phrase).or_fail("decode")?;
    case.check_hex("data", &data)?;
    let seed = account_seed_from_phrase(phrase).or_fail("account_seed_from_phrase")?;
    case.check_hex("ed25519_seed", seed.as_bytes())?;
    let key = identity_from_phrase(phrase).or_fail("identity_from_phrase")?;
    case.check_hex("session_id", &key.session_id().to_bytes())?;
    // Also: the identity is the seed's, and the account's canonical phrase decodes to the seed.
    if IdentityKey::from_seed(&seed).session_id() != key.session_id() {
        return Err("identity_from_phrase disagrees with IdentityKey::from_seed".into());
    }
    let canonical = account_phrase(&seed);
    let restored = account_seed_from_phrase(&canonical.to_text()).or_fail("re-decode")?;
    if restored != seed {
        return Err("account_phrase does not round-trip".into());
    }
    Ok(())
}
