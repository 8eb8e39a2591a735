//! Session Protocol v1 kinds (crypto.md §3.1–3.3, §4.1, §4.4).

use prost::Message;
use rand::RngExt;
use rand::rngs::StdRng;
use session_protocol::envelope::{
    LEGACY_CONFIG_TIMESTAMP, legacy_config_content, unwrap_legacy_config, wrap_in_websocket_message,
    wrap_legacy_config,
};
use session_protocol::padding::{PaddingVariant, pad, unpad};
use session_protocol::primitives::{box_open, box_seed_keypair, seal_nonce};
use session_protocol::proto::{Envelope, envelope, shared_config_message};
use session_protocol::v1::{
    DecryptError, decrypt_incoming, deterministic_ephemeral_seed, encrypt_for_recipient,
    encrypt_for_recipient_deterministic, recipient_x25519,
};
use session_protocol::{IdentityKey, SessionId};

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("session_v1_encrypt_deterministic", encrypt_deterministic),
        ("session_v1_decrypt", decrypt),
        ("session_v1_decrypt_reject", decrypt_reject),
        ("v1_content_padding", content_padding),
        ("legacy_config_wrap", legacy_config_wrap),
    ]
}

fn encrypt_deterministic(case: &Case<'_>) -> Result<(), String> {
    let sender = case.identity("sender_ed25519_seed")?;
    let recipient_id = case.hex_n::<33>("recipient_session_id")?;
    let message = case.hex("message")?;

    let ciphertext =
        encrypt_for_recipient_deterministic(&sender, &recipient_id, &message).or_fail("encrypt")?;
    case.check_hex("ciphertext", &ciphertext)?;

    // Intermediates, recovered from the ciphertext with the ephemeral secret.
    let y = recipient_x25519(&recipient_id).or_fail("recipient key")?;
    let ephemeral_seed = deterministic_ephemeral_seed(&sender, &y, &message);
    case.check_hex("ephemeral_seed", &ephemeral_seed[..])?;
    let (ephemeral_secret, ephemeral_public) = box_seed_keypair(&ephemeral_seed);
    case.check_hex("ephemeral_x25519_pubkey", &ephemeral_public)?;
    if ciphertext.get(..32) != Some(&ephemeral_public[..]) {
        return Err("ciphertext does not start with the ephemeral public key".into());
    }
    let nonce = seal_nonce(&ephemeral_public, &y);
    case.check_hex("nonce", &nonce)?;
    let inner =
        box_open(&ciphertext[32..], &nonce, &y, &ephemeral_secret).or_fail("open with ephemeral key")?;
    case.check_hex("inner_plaintext", &inner)?;
    let signature = &inner[inner.len() - 64..];
    case.check_hex("signature", signature)?;
    let mut signed = message.clone();
    signed.extend_from_slice(&sender.ed25519_public());
    signed.extend_from_slice(&y);
    if sender.sign(&signed)[..] != *signature {
        return Err("signature is not Ed25519(message || A || Y)".into());
    }

    // also: the recipient, if its seed is known, decrypts it.
    if let Some(recipient) =
        SessionId::from_bytes(&recipient_id).ok().and_then(|id| case.ctx.known_account(&id))
    {
        let got = decrypt_incoming(&recipient, &ciphertext).or_fail("recipient decrypt")?;
        if got.message != message
            || got.sender_ed25519 != sender.ed25519_public()
            || got.sender != sender.session_id()
        {
            return Err("recipient decrypt gave a different message or sender".into());
        }
    }
    Ok(())
}

fn decrypt(case: &Case<'_>) -> Result<(), String> {
    let recipient = case.identity("recipient_ed25519_seed")?;
    let ciphertext = case.hex("ciphertext")?;
    let got = decrypt_incoming(&recipient, &ciphertext).or_fail("decrypt")?;
    case.check_hex("message", &got.message)?;
    case.check_hex("sender_ed25519_pubkey", &got.sender_ed25519)?;
    case.check_hex("sender_session_id", &got.sender.to_bytes())?;

    // also: a fresh random sender and ephemeral key, then decrypt again.
    let mut rng: StdRng = rand::make_rng();
    let sender = IdentityKey::from_seed_bytes(&rng.random::<[u8; 32]>());
    let again = encrypt_for_recipient(&sender, &recipient.session_id().to_bytes(), &got.message, &mut rng)
        .or_fail("re-encrypt")?;
    let back = decrypt_incoming(&recipient, &again).or_fail("decrypt re-encrypted")?;
    if back.message != got.message || back.sender != sender.session_id() {
        return Err("re-encrypted message did not round-trip".into());
    }
    Ok(())
}

fn decrypt_reject(case: &Case<'_>) -> Result<(), String> {
    let recipient = case.identity("recipient_ed25519_seed")?;
    let ciphertext = case.hex("ciphertext")?;
    case.check_error(decrypt_incoming(&recipient, &ciphertext), |e| match e {
        DecryptError::TooShort { .. } => "too_short",
        DecryptError::DecryptionFailed => "decryption_failed",
        DecryptError::SignatureInvalid => "signature_invalid",
        DecryptError::InvalidSenderKey => "invalid_sender_key",
        _ => "unknown",
    })
}

fn content_padding(case: &Case<'_>) -> Result<(), String> {
    let content = case.hex("content")?;
    let variant = match case.str("variant")? {
        "libsession" => PaddingVariant::Libsession,
        "desktop_legacy" => PaddingVariant::DesktopLegacy,
        other => return Err(format!("unknown padding variant {other}")),
    };
    let padded = pad(&content, variant);
    case.check_hex("padded", &padded)?;
    // also: unpadding gives the content back.
    if unpad(&padded).or_fail("unpad")? != content.as_slice() {
        return Err("unpad did not return the content".into());
    }
    Ok(())
}

fn legacy_config_wrap(case: &Case<'_>) -> Result<(), String> {
    let identity = case.identity("ed25519_seed")?;
    let kind_number = i32::try_from(case.int("kind")?).or_fail("kind")?;
    let kind = shared_config_message::Kind::try_from(kind_number).or_fail("kind")?;
    let seqno = case.int("seqno")?;
    let data = case.hex("data")?;

    let content = legacy_config_content(kind, seqno, &data).encode_to_vec();
    case.check_hex("content", &content)?;
    let mut inner = content.clone();
    inner.push(0x80);
    case.check_hex("inner_plaintext", &inner)?;
    let ciphertext = encrypt_for_recipient_deterministic(&identity, identity.x25519_public(), &inner)
        .or_fail("encrypt")?;
    case.check_hex("ciphertext", &ciphertext)?;
    let envelope = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        timestamp: LEGACY_CONFIG_TIMESTAMP,
        content: Some(ciphertext),
        ..Envelope::default()
    }
    .encode_to_vec();
    case.check_hex("envelope", &envelope)?;
    let websocket_message = wrap_in_websocket_message(envelope);
    case.check_hex("websocket_message", &websocket_message)?;

    // The one-call API gives the same bytes, and they read back.
    let wrapped = wrap_legacy_config(&identity, kind, seqno, &data).or_fail("wrap_legacy_config")?;
    if wrapped != websocket_message {
        return Err("wrap_legacy_config differs from the step-by-step bytes".into());
    }
    let config = unwrap_legacy_config(&identity, &wrapped).or_fail("unwrap_legacy_config")?;
    if config.kind != kind_number || config.seqno != seqno || config.data != data {
        return Err("unwrap_legacy_config did not give the config back".into());
    }
    Ok(())
}
