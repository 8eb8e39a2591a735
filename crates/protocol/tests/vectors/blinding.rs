//! Blinding, blinded signatures, SOGS headers, version key and blinded DMs (crypto §3.4, §5).

use serde_json::{Map, Value};
use session_protocol::blinded_dm::{self, BlindedDmError};
use session_protocol::blinding::{
    self, Blinding, NonceStyle, VersionBlindedKey, blind15_key_pair, blind25_key_pair, blinded_key_pair,
};
use session_protocol::keys::verify_ed25519;
use session_protocol::sogs::{self, SogsKey, SogsRequest};
use session_protocol::{IdentityKey, SessionId};

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("blind15_id", blind15_id),
        ("blind25_id", blind25_id),
        ("blind15_sign", blind15_sign),
        ("blind25_sign", blind25_sign),
        ("version_blinded_sign", version_blinded_sign),
        ("sogs_auth_headers", sogs_auth_headers),
        ("blinded_dm_encrypt_fixed_nonce", blinded_dm_encrypt_fixed_nonce),
        ("blinded_dm_decrypt", blinded_dm_decrypt),
        ("blinded_dm_decrypt_reject", blinded_dm_decrypt_reject),
    ]
}

fn session_id(case: &Case<'_>, field: &str) -> Result<SessionId, String> {
    SessionId::from_bytes(&case.hex(field)?).or_fail(field)
}

fn identity_from_sk(case: &Case<'_>) -> Result<IdentityKey, String> {
    IdentityKey::from_secret_key(&case.hex_n::<64>("ed25519_secret_key")?).or_fail("ed25519_secret_key")
}

/// The known account (from any vector) whose blinded id on `server_pk` is `blinded`, if any.
fn known_blinded_owner(case: &Case<'_>, server_pk: &[u8; 32], blinded: &SessionId) -> Option<IdentityKey> {
    let blinding = Blinding::from_prefix(blinded.prefix())?;
    case.ctx
        .ed25519_seeds
        .iter()
        .map(IdentityKey::from_seed_bytes)
        .find(|k| blinded_key_pair(k, server_pk, blinding).is_ok_and(|kp| kp.id() == *blinded))
}

fn blind15_id(case: &Case<'_>) -> Result<(), String> {
    let sid = session_id(case, "session_id")?;
    let server_pk = case.hex_n::<32>("server_pk")?;
    case.check_hex("blinding_factor", &blinding::blind15_factor(&server_pk))?;
    let (id, flipped) = blinding::blind15_id(&sid, &server_pk).or_fail("blind15_id")?;
    case.check_hex("blinded_id", &id.to_bytes())?;
    case.check_hex("blinded_id_sign_flipped", &flipped.to_bytes())?;
    if let Some(owner) = case.ctx.known_account(&sid) {
        let kp = blind15_key_pair(&owner, &server_pk).or_fail("key pair")?;
        if kp.id() != id && kp.id() != flipped {
            return Err(format!("owner's key pair id {} is neither form", kp.id()));
        }
    }
    Ok(())
}

fn blind25_id(case: &Case<'_>) -> Result<(), String> {
    let sid = session_id(case, "session_id")?;
    let server_pk = case.hex_n::<32>("server_pk")?;
    case.check_hex("blinding_factor", &blinding::blind25_factor(&sid, &server_pk).or_fail("factor")?)?;
    let id = blinding::blind25_id(&sid, &server_pk).or_fail("blind25_id")?;
    case.check_hex("blinded_id", &id.to_bytes())?;
    if let Some(owner) = case.ctx.known_account(&sid) {
        let kp = blind25_key_pair(&owner, &server_pk).or_fail("key pair")?;
        if kp.id() != id {
            return Err(format!("owner's key pair id {} differs", kp.id()));
        }
    }
    Ok(())
}

fn blind15_sign(case: &Case<'_>) -> Result<(), String> {
    let identity = identity_from_sk(case)?;
    let server_pk = case.hex_n::<32>("server_pk")?;
    let message = case.hex("message")?;
    let kp = blind15_key_pair(&identity, &server_pk).or_fail("key pair")?;
    case.check_hex("blinded_pubkey", kp.public_key())?;
    let sig =
        blinding::blind15_sign(&identity, &server_pk, &message, NonceStyle::Libsession).or_fail("sign")?;
    case.check_hex("signature", &sig)?;
    if !verify_ed25519(kp.public_key(), &message, &sig) {
        return Err("signature does not verify as plain Ed25519 under kA".into());
    }
    let desktop =
        blinding::blind15_sign(&identity, &server_pk, &message, NonceStyle::Desktop).or_fail("sign")?;
    if !verify_ed25519(kp.public_key(), &message, &desktop) {
        return Err("desktop-nonce signature does not verify under kA".into());
    }
    Ok(())
}

fn blind25_sign(case: &Case<'_>) -> Result<(), String> {
    let identity = identity_from_sk(case)?;
    let server_pk = case.hex_n::<32>("server_pk")?;
    let message = case.hex("message")?;
    let kp = blind25_key_pair(&identity, &server_pk).or_fail("key pair")?;
    case.check_hex("blinded_pubkey", kp.public_key())?;
    let sig = blinding::blind25_sign(&identity, &server_pk, &message).or_fail("sign")?;
    case.check_hex("signature", &sig)?;
    if !verify_ed25519(kp.public_key(), &message, &sig) {
        return Err("signature does not verify as plain Ed25519 under kA".into());
    }
    Ok(())
}

fn version_blinded_sign(case: &Case<'_>) -> Result<(), String> {
    let identity = identity_from_sk(case)?;
    let timestamp = u64::try_from(case.int("timestamp")?).or_fail("timestamp")?;
    let method = case.str("method")?;
    let path = case.str("path")?;
    let body = case.opt_hex("body")?;
    let key = VersionBlindedKey::from_identity(&identity);
    case.check_hex("seed", &key.seed()[..])?;
    case.check_hex("secret_key", &key.secret_key_bytes()[..])?;
    case.check_hex("pubkey", &key.public_key())?;
    let signed = blinding::version_request_message(timestamp, method, path, body.as_deref());
    case.check_hex("signed_message", &signed)?;
    let sig = key.sign_request(timestamp, method, path, body.as_deref());
    case.check_hex("signature", &sig)?;
    if !verify_ed25519(&key.public_key(), &signed, &sig) {
        return Err("signature does not verify".into());
    }
    Ok(())
}

fn sogs_auth_headers(case: &Case<'_>) -> Result<(), String> {
    let identity = case.identity("ed25519_seed")?;
    let server_pk = case.hex_n::<32>("server_pk")?;
    let nonce = case.hex_n::<16>("nonce")?;
    let timestamp = u64::try_from(case.int("timestamp")?).or_fail("timestamp")?;
    let body = case.opt_hex("body")?;
    let request = SogsRequest { method: case.str("method")?, path: case.str("path")?, body: body.as_deref() };
    let key = if case.bool("blinded")? { SogsKey::Blinded15 } else { SogsKey::Unblinded };
    let auth = sogs::auth_headers(&identity, &server_pk, &nonce, timestamp, &request, key).or_fail("auth")?;
    case.check_hex("signed_message", &auth.signed_message)?;
    let headers: Map<String, Value> =
        auth.headers().iter().map(|(name, value)| ((*name).to_owned(), Value::from(*value))).collect();
    case.check_value("headers", &Value::Object(headers))?;
    let signer: [u8; 32] = hex::decode(&auth.pubkey_header[2..])
        .or_fail("pubkey header")?
        .try_into()
        .map_err(|_| "pubkey header length".to_owned())?;
    let signature = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &auth.signature_b64)
        .or_fail("signature header")?;
    if !verify_ed25519(&signer, &auth.signed_message, &signature) {
        return Err("signature does not verify under the X-SOGS-Pubkey key".into());
    }
    Ok(())
}

fn blinded_dm_encrypt_fixed_nonce(case: &Case<'_>) -> Result<(), String> {
    let sender = case.identity("sender_ed25519_seed")?;
    let server_pk = case.hex_n::<32>("server_pk")?;
    let recipient = session_id(case, "recipient_blinded_id")?;
    let message = case.hex("message")?;
    let nonce = case.hex_n::<24>("nonce")?;
    let blinding = Blinding::from_prefix(recipient.prefix()).or_fail("recipient prefix")?;
    let sender_id = blinded_key_pair(&sender, &server_pk, blinding).or_fail("key pair")?.id();
    case.check_hex("sender_blinded_id", &sender_id.to_bytes())?;
    let key = blinded_dm::shared_key(&sender, &server_pk, &sender_id, &recipient).or_fail("shared key")?;
    case.check_hex("shared_key", &key[..])?;
    let ct = blinded_dm::encrypt_with_nonce(&sender, &server_pk, &recipient, &message, &nonce)
        .or_fail("encrypt")?;
    case.check_hex("ciphertext", &ct)?;

    // The sender can always read its own copy; the recipient when its seed is known.
    let mut readers = vec![sender.clone()];
    readers.extend(known_blinded_owner(case, &server_pk, &recipient));
    if readers.len() < 2 {
        return Err("recipient's seed not found among the vectors".into());
    }
    for reader in &readers {
        let (got, from) =
            blinded_dm::decrypt(reader, &server_pk, &sender_id, &recipient, &ct).or_fail("decrypt")?;
        if got != message || from != sender.session_id() {
            return Err("round trip gave a different message or sender".into());
        }
    }
    Ok(())
}

/// The shared inputs of `blinded_dm_decrypt` and `blinded_dm_decrypt_reject`.
struct DecryptInputs {
    ours: IdentityKey,
    server_pk: [u8; 32],
    sender: SessionId,
    recipient: SessionId,
    ciphertext: Vec<u8>,
}

impl DecryptInputs {
    fn read(case: &Case<'_>) -> Result<Self, String> {
        Ok(Self {
            ours: case.identity("ed25519_seed")?,
            server_pk: case.hex_n::<32>("server_pk")?,
            sender: session_id(case, "sender_blinded_id")?,
            recipient: session_id(case, "recipient_blinded_id")?,
            ciphertext: case.hex("ciphertext")?,
        })
    }

    fn decrypt(&self) -> Result<(Vec<u8>, SessionId), BlindedDmError> {
        blinded_dm::decrypt(&self.ours, &self.server_pk, &self.sender, &self.recipient, &self.ciphertext)
    }
}

fn blinded_dm_decrypt(case: &Case<'_>) -> Result<(), String> {
    let (message, from) = DecryptInputs::read(case)?.decrypt().or_fail("decrypt")?;
    case.check_hex("message", &message)?;
    case.check_hex("sender_session_id", &from.to_bytes())?;
    Ok(())
}

fn blinded_dm_decrypt_reject(case: &Case<'_>) -> Result<(), String> {
    case.check_error(DecryptInputs::read(case)?.decrypt(), |e| match e {
        BlindedDmError::TooShort => "too_short",
        BlindedDmError::UnsupportedVersion(_) => "unsupported_version",
        BlindedDmError::DecryptionFailed | BlindedDmError::InvalidKey => "decryption_failed",
        BlindedDmError::SenderMismatch => "sender_mismatch",
        _ => "other",
    })
}
