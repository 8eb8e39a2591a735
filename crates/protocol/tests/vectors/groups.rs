//! Multi-recipient encryption (crypto §6.2), config encryption (§8.2), ONS, push notifications
//! and the xchacha20 helpers (§8.3).

use session_protocol::config_crypto::{self, ConfigCryptoError};
use session_protocol::multi::{self, MultiDecryptError};
use session_protocol::ons;

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("multi_encrypt", multi_encrypt),
        ("multi_decrypt", multi_decrypt),
        ("multi_decrypt_reject", multi_decrypt_reject),
        ("config_encrypt", config_encrypt),
        ("config_padded_size", config_padded_size),
        ("ons_decrypt_xchacha20", ons_decrypt_xchacha20),
        ("ons_decrypt_legacy_argon2", ons_decrypt_legacy_argon2),
        ("push_notification_decrypt", push_notification_decrypt),
        ("xchacha20_decrypt", xchacha20_decrypt),
    ]
}

fn multi_encrypt(case: &Case<'_>) -> Result<(), String> {
    let sender = case.identity("sender_ed25519_seed")?;
    let recipients = case.list_hex_n::<32>("recipient_x25519_pubkeys")?;
    let domain = case.str("domain")?;
    let nonce = case.hex_n::<24>("nonce")?;
    let messages = case.list_hex("messages")?;
    let ciphertexts =
        multi::encrypt_for_recipients(&sender, &recipients, &messages, domain, &nonce).or_fail("encrypt")?;
    case.check_list_hex("ciphertexts", &ciphertexts)
}

fn multi_decrypt_inputs(case: &Case<'_>) -> Result<Result<Vec<u8>, MultiDecryptError>, String> {
    let ours = case.identity("recipient_ed25519_seed")?;
    let sender = case.hex_n::<32>("sender_x25519_pubkey")?;
    let domain = case.str("domain")?;
    let nonce = case.hex_n::<24>("nonce")?;
    let ciphertexts = case.list_hex("ciphertexts")?;
    Ok(multi::decrypt_for_recipient(&ours, &sender, domain, &nonce, &ciphertexts))
}

fn multi_decrypt(case: &Case<'_>) -> Result<(), String> {
    let message = multi_decrypt_inputs(case)?.or_fail("decrypt")?;
    case.check_hex("message", &message)
}

fn multi_decrypt_reject(case: &Case<'_>) -> Result<(), String> {
    case.check_error(multi_decrypt_inputs(case)?, |e| match e {
        MultiDecryptError::NoEntryDecrypts => "no_entry_decrypts",
        _ => "other",
    })
}

fn config_encrypt(case: &Case<'_>) -> Result<(), String> {
    let key_base = case.hex_n::<32>("key_base")?;
    let domain = case.str("domain")?;
    let message = case.hex("message")?;
    let key = config_crypto::derive_key(&key_base, domain, message.len()).or_fail("derive key")?;
    case.check_hex("derived_key", &key[..])?;
    case.check_hex("nonce", &config_crypto::nonce(domain, &message).or_fail("nonce")?)?;
    let ciphertext = config_crypto::encrypt(&key_base, domain, &message).or_fail("encrypt")?;
    case.check_hex("ciphertext", &ciphertext)?;
    // also: decrypting gives the message.
    let decrypted = config_crypto::decrypt(&key_base, domain, &ciphertext).or_fail("decrypt")?;
    if decrypted != message {
        return Err("decrypting the ciphertext did not give the message".into());
    }
    // A flipped bit must not decrypt.
    let mut tampered = ciphertext;
    tampered[0] ^= 1;
    match config_crypto::decrypt(&key_base, domain, &tampered) {
        Err(ConfigCryptoError::DecryptionFailed) => Ok(()),
        other => Err(format!("tampered ciphertext: {other:?}")),
    }
}

fn config_padded_size(case: &Case<'_>) -> Result<(), String> {
    let size = usize::try_from(case.int("size")?).or_fail("size")?;
    let overhead = usize::try_from(case.int("overhead")?).or_fail("overhead")?;
    let padded = config_crypto::padded_size(size, overhead);
    case.check_int("padded_size", i64::try_from(padded).or_fail("padded size")?)
}

fn ons_decrypt_xchacha20(case: &Case<'_>) -> Result<(), String> {
    let name = case.str("name")?;
    let ciphertext = case.hex("ciphertext")?;
    let nonce = case.hex_n::<24>("nonce")?;
    case.check_hex("name_hash", &ons::name_hash(name))?;
    case.check_hex("key", &ons::xchacha20_key(name))?;
    let id = ons::decrypt_xchacha20(name, &ciphertext, &nonce).or_fail("decrypt")?;
    case.check_hex("session_id", &id.to_bytes())
}

fn ons_decrypt_legacy_argon2(case: &Case<'_>) -> Result<(), String> {
    let name = case.str("name")?;
    let ciphertext = case.hex("ciphertext")?;
    // Argon2id with 256 MiB: derive the key once and reuse it.
    let key = ons::legacy_key(name).or_fail("argon2")?;
    case.check_hex("key", &key)?;
    let id = ons::decrypt_legacy_with_key(&key, &ciphertext).or_fail("decrypt")?;
    case.check_hex("session_id", &id.to_bytes())
}

fn push_notification_decrypt(case: &Case<'_>) -> Result<(), String> {
    let key = case.hex_n::<32>("enc_key")?;
    let payload = case.hex("payload")?;
    let plaintext = ons::decrypt_push_notification(&key, &payload).or_fail("decrypt")?;
    case.check_hex("plaintext", &plaintext)
}

fn xchacha20_decrypt(case: &Case<'_>) -> Result<(), String> {
    let key = case.hex_n::<32>("key")?;
    let ciphertext = case.hex("ciphertext")?;
    let plaintext = ons::xchacha20_decrypt(&key, &ciphertext).or_fail("decrypt")?;
    case.check_hex("plaintext", &plaintext)?;
    // Round trip through the encrypt helper with the vector's own nonce reproduces the input.
    let nonce: [u8; 24] = ciphertext.get(..24).and_then(|n| n.try_into().ok()).or_fail("nonce")?;
    if ons::xchacha20_encrypt(&key, &plaintext, &nonce) != ciphertext {
        return Err("re-encrypting with the same nonce did not reproduce the ciphertext".into());
    }
    Ok(())
}
