//! The 1:1 message pipeline (crypto §4.3) and legacy config wrapping (§4.4).
//!
//! Send: `Content` → pad (§4.1) → v1 encrypt (§3.1) → `Envelope` → `WebSocketMessage` bytes, which
//! are what is stored in namespace 0 of the recipient's swarm. Receive runs the same stages
//! backwards; each stage has its own [`DecodeError`] variant.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use zeroize::Zeroizing;

use crate::id::{IdPrefix, SessionId};
use crate::keys::IdentityKey;
use crate::padding::{PADDING_MARKER, PaddingVariant, UnpadError, pad_in_place, padded_len, unpad_in_place};
use crate::proto::{
    Content, Envelope, SharedConfigMessage, WebSocketMessage, WebSocketRequestMessage, envelope,
    shared_config_message, web_socket_message,
};
use crate::v1::{self, DecryptError, EncryptError};

/// `Envelope.sourceDevice` that libsession sets on 1:1 messages (crypto §4.3).
pub const SOURCE_DEVICE: u32 = 1;
/// `Envelope.timestamp` of a legacy self-config message (crypto §4.4).
pub const LEGACY_CONFIG_TIMESTAMP: u64 = 1;
/// Length of `Envelope.proSig` (an Ed25519 signature, real or decoy).
pub const PRO_SIG_LEN: usize = 64;

/// A message could not be built (crypto §4.3, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The recipient key is unusable for v1 encryption.
    #[error("cannot encrypt for this recipient: {0}")]
    Encrypt(#[from] EncryptError),
}

/// A received 1:1 message was rejected; the variant names the stage that failed (crypto §4.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The outer bytes are not a `WebSocketMessage` protobuf.
    #[error("message is not a valid WebSocketMessage protobuf: {0}")]
    WebSocketMessage(prost::DecodeError),
    /// The `WebSocketMessage` has no `request`.
    #[error("WebSocketMessage has no request")]
    MissingRequest,
    /// The `WebSocketRequestMessage` has no `body` (where the Envelope goes).
    #[error("WebSocketMessage request has no body")]
    MissingBody,
    /// The request body is not an `Envelope` protobuf.
    #[error("request body is not a valid Envelope protobuf: {0}")]
    Envelope(prost::DecodeError),
    /// `Envelope.source` is set but is neither empty nor 66 characters (libsession rejects it).
    #[error("Envelope source has {0} characters; expected 0 or 66")]
    SourceLength(usize),
    /// The `Envelope` has no `content`.
    #[error("Envelope has no content")]
    MissingContent,
    /// `Envelope.proSig` is present but not 64 bytes.
    #[error("Envelope proSig is {0} bytes; expected 64")]
    ProSigLength(usize),
    /// The v1 ciphertext in `Envelope.content` was rejected.
    #[error("Envelope content: {0}")]
    Decrypt(#[from] DecryptError),
    /// The decrypted content has no padding-delimited content.
    #[error("decrypted content: {0}")]
    Unpad(#[from] UnpadError),
    /// The unpadded plaintext is not a `Content` protobuf.
    #[error("decrypted content is not a valid Content protobuf: {0}")]
    Content(prost::DecodeError),
    /// `Content.proMessage` is present without `Content.sigTimestamp`, so the Pro proof's expiry
    /// cannot be checked (libsession rejects this).
    #[error("Content has a Pro message but no sigTimestamp")]
    MissingSigTimestamp,
    /// [`unwrap_legacy_config`]: the message holds no `sharedConfigMessage`.
    #[error("message holds no SharedConfigMessage")]
    NotLegacyConfig,
    /// [`unwrap_legacy_config`]: the config was signed by another account.
    #[error("legacy config message was sent by {0}, not by this account")]
    ForeignLegacyConfig(String),
}

/// A decoded 1:1 message (crypto §4.3).
#[derive(Clone, PartialEq)]
pub struct Decoded1o1 {
    /// The message content.
    pub content: Content,
    /// The sender's Session ID (`05…`), authenticated by the v1 signature.
    pub sender: SessionId,
    /// The sender's Ed25519 public key.
    pub sender_ed25519: [u8; 32],
    /// `Envelope.timestamp` in ms. Not authenticated for 1:1; prefer `content.sig_timestamp`.
    pub envelope_timestamp_ms: u64,
    /// `Envelope.serverTimestamp`, if set.
    pub server_timestamp: Option<u64>,
    /// `Envelope.sourceDevice`, if set.
    pub source_device: Option<u32>,
    /// Set when the content carries a `proMessage`: the envelope's Pro signature and the bytes it
    /// signs. Verifying the Pro proof is left to the caller (it needs the Pro backend key).
    pub pro: Option<ProSigned>,
}

/// The Pro signature of an envelope and the bytes it covers (`Envelope.content`, crypto §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProSigned {
    /// `Envelope.proSig`, by the sender's Pro rotating key.
    pub signature: [u8; PRO_SIG_LEN],
    /// `Envelope.content` (the v1 ciphertext), which the signature covers.
    pub signed_content: Vec<u8>,
}

impl std::fmt::Debug for Decoded1o1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded1o1")
            .field("sender", &self.sender.short())
            .field("envelope_timestamp_ms", &self.envelope_timestamp_ms)
            .field("server_timestamp", &self.server_timestamp)
            .field("source_device", &self.source_device)
            .field("pro", &self.pro.is_some())
            .finish_non_exhaustive()
    }
}

/// libsession `encode_for_1o1` (crypto §4.3): pads and encrypts `content` for `recipient` (a
/// `05` Session ID), wraps it in `Envelope{type=SESSION_MESSAGE, sourceDevice=1,
/// timestamp=sent_timestamp_ms, content, proSig}` and that in a `WebSocketMessage` request.
/// `proSig` is signed by `pro_rotating_key` if given, else it is a random decoy.
pub fn encode_for_1o1<R: rand_core::CryptoRng + ?Sized>(
    sender: &IdentityKey,
    recipient: &SessionId,
    content: &Content,
    sent_timestamp_ms: u64,
    pro_rotating_key: Option<&SigningKey>,
    rng: &mut R,
) -> Result<Vec<u8>, EncodeError> {
    if recipient.prefix() != IdPrefix::Standard {
        return Err(EncryptError::RecipientPrefix(recipient.prefix().byte()).into());
    }
    let content_len = content.encoded_len();
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len(content_len, PaddingVariant::Libsession)));
    content.encode(&mut *padded).expect("a Vec grows to fit");
    pad_in_place(&mut padded, PaddingVariant::Libsession);
    let ciphertext = v1::encrypt_for_recipient(sender, recipient.key(), &padded, rng)?;

    let pro_sig = match pro_rotating_key {
        Some(key) => key.sign(&ciphertext).to_bytes(),
        None => decoy_pro_signature(rng),
    };
    let envelope = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        source: None,
        timestamp: sent_timestamp_ms,
        source_device: Some(SOURCE_DEVICE),
        content: Some(ciphertext),
        server_timestamp: None,
        pro_sig: Some(pro_sig.to_vec()),
    };
    Ok(wrap_in_websocket_message(envelope.encode_to_vec()))
}

/// Step 4 of crypto §4.3: `WebSocketMessage{type=REQUEST, request={verb="", path="",
/// body=envelope, requestId=0}}`, with the empty strings and the zero explicitly serialised.
pub fn wrap_in_websocket_message(envelope: Vec<u8>) -> Vec<u8> {
    WebSocketMessage {
        r#type: Some(web_socket_message::Type::Request as i32),
        request: Some(WebSocketRequestMessage {
            verb: Some(String::new()),
            path: Some(String::new()),
            body: Some(envelope),
            request_id: Some(0),
            headers: Vec::new(),
        }),
        response: None,
    }
    .encode_to_vec()
}

/// A decoy `proSig` for senders without Pro (crypto §4.3): `R = r·B` for a random scalar `r`,
/// then another random scalar `S`. Indistinguishable from a real signature; never verified.
pub fn decoy_pro_signature<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> [u8; PRO_SIG_LEN] {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(&mut wide[..]);
    let r = Scalar::from_bytes_mod_order_wide(&wide);
    rng.fill_bytes(&mut wide[..]);
    let s = Scalar::from_bytes_mod_order_wide(&wide);
    let mut out = [0u8; PRO_SIG_LEN];
    out[..32].copy_from_slice(EdwardsPoint::mul_base(&r).compress().as_bytes());
    out[32..].copy_from_slice(s.as_bytes());
    out
}

/// libsession `decode_envelope` for 1:1 messages (crypto §4.3): `WebSocketMessage` bytes →
/// `Envelope` → v1 decrypt with `recipient` → unpad → `Content`.
pub fn decode_1o1(recipient: &IdentityKey, websocket_message: &[u8]) -> Result<Decoded1o1, DecodeError> {
    let envelope = unwrap_websocket_message(websocket_message)?;
    decode_envelope_1o1(recipient, &envelope)
}

/// The inverse of [`wrap_in_websocket_message`]: the `request.body` of a `WebSocketMessage`.
pub fn unwrap_websocket_message(websocket_message: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let message = WebSocketMessage::decode(websocket_message).map_err(DecodeError::WebSocketMessage)?;
    let request = message.request.ok_or(DecodeError::MissingRequest)?;
    request.body.ok_or(DecodeError::MissingBody)
}

/// The 1:1 receive pipeline from the `Envelope` bytes on (crypto §4.3).
pub fn decode_envelope_1o1(recipient: &IdentityKey, envelope: &[u8]) -> Result<Decoded1o1, DecodeError> {
    let envelope = Envelope::decode(envelope).map_err(DecodeError::Envelope)?;
    if let Some(source) = &envelope.source
        && !source.is_empty()
        && source.len() != 66
    {
        return Err(DecodeError::SourceLength(source.len()));
    }
    let ciphertext = envelope.content.ok_or(DecodeError::MissingContent)?;
    let pro_sig: Option<[u8; PRO_SIG_LEN]> = match &envelope.pro_sig {
        Some(sig) => Some(sig.as_slice().try_into().map_err(|_| DecodeError::ProSigLength(sig.len()))?),
        None => None,
    };

    let decrypted = v1::decrypt_incoming(recipient, &ciphertext)?;
    let mut plaintext = Zeroizing::new(decrypted.message);
    unpad_in_place(&mut plaintext)?;
    let content = Content::decode(plaintext.as_slice()).map_err(DecodeError::Content)?;

    let pro = match (&content.pro_message, pro_sig) {
        (Some(_), Some(signature)) => {
            if content.sig_timestamp.unwrap_or(0) == 0 {
                return Err(DecodeError::MissingSigTimestamp);
            }
            Some(ProSigned { signature, signed_content: ciphertext })
        }
        _ => None,
    };
    Ok(Decoded1o1 {
        content,
        sender: decrypted.sender,
        sender_ed25519: decrypted.sender_ed25519,
        envelope_timestamp_ms: envelope.timestamp,
        server_timestamp: envelope.server_timestamp,
        source_device: envelope.source_device,
        pro,
    })
}

/// `Content{sharedConfigMessage{kind, seqno, data}}` of a legacy config message (crypto §4.4).
pub fn legacy_config_content(kind: shared_config_message::Kind, seqno: i64, data: &[u8]) -> Content {
    Content {
        shared_config_message: Some(SharedConfigMessage { kind: kind as i32, seqno, data: data.to_vec() }),
        ..Content::default()
    }
}

/// libsession `wrap_config` (crypto §4.4): `legacy_config_content || 0x80` (no zero padding),
/// deterministically encrypted (§3.3) to the account's own X25519 key, in
/// `Envelope{type=SESSION_MESSAGE, timestamp=1, content}` (no sourceDevice, no proSig), in a
/// `WebSocketMessage`. Deterministic: the same inputs give the same bytes.
pub fn wrap_legacy_config(
    identity: &IdentityKey,
    kind: shared_config_message::Kind,
    seqno: i64,
    data: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let content = legacy_config_content(kind, seqno, data);
    let mut inner = Zeroizing::new(Vec::with_capacity(content.encoded_len() + 1));
    content.encode(&mut *inner).expect("a Vec grows to fit");
    inner.push(PADDING_MARKER);
    let ciphertext = v1::encrypt_for_recipient_deterministic(identity, identity.x25519_public(), &inner)?;
    let envelope = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        timestamp: LEGACY_CONFIG_TIMESTAMP,
        content: Some(ciphertext),
        ..Envelope::default()
    };
    Ok(wrap_in_websocket_message(envelope.encode_to_vec()))
}

/// Reads a legacy config message back (crypto §4.4): decodes it with [`decode_1o1`] and requires
/// a `sharedConfigMessage` signed by the account itself.
pub fn unwrap_legacy_config(
    identity: &IdentityKey,
    websocket_message: &[u8],
) -> Result<SharedConfigMessage, DecodeError> {
    let decoded = decode_1o1(identity, websocket_message)?;
    if decoded.sender != identity.session_id() {
        return Err(DecodeError::ForeignLegacyConfig(decoded.sender.short()));
    }
    decoded.content.shared_config_message.ok_or(DecodeError::NotLegacyConfig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::verify_ed25519;
    use crate::primitives::testing::CountingRng;
    use crate::proto::DataMessage;

    fn text(body: &str) -> Content {
        Content {
            data_message: Some(DataMessage { body: Some(body.to_owned()), ..Default::default() }),
            sig_timestamp: Some(1_700_000_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn pipeline_roundtrip() {
        let alice = IdentityKey::from_seed_bytes(&[1u8; 32]);
        let bob = IdentityKey::from_seed_bytes(&[2u8; 32]);
        let content = text("hello bob");
        let wire =
            encode_for_1o1(&alice, &bob.session_id(), &content, 1234, None, &mut CountingRng(0)).unwrap();

        let envelope = Envelope::decode(unwrap_websocket_message(&wire).unwrap().as_slice()).unwrap();
        assert_eq!(envelope.r#type, 6);
        assert_eq!(envelope.source_device, Some(1));
        assert_eq!(envelope.pro_sig.as_ref().map(Vec::len), Some(64));
        // libsession padding: the ciphertext is a multiple of 160 plus the 144-byte overhead.
        assert_eq!((envelope.content.as_ref().unwrap().len() - 144) % 160, 0);

        let got = decode_1o1(&bob, &wire).unwrap();
        assert_eq!(got.content, content);
        assert_eq!(got.sender, alice.session_id());
        assert_eq!(got.envelope_timestamp_ms, 1234);
        assert_eq!(got.pro, None);
        assert!(matches!(
            decode_1o1(&alice, &wire),
            Err(DecodeError::Decrypt(DecryptError::DecryptionFailed))
        ));
    }

    #[test]
    fn pro_signature_is_over_the_ciphertext() {
        let alice = IdentityKey::from_seed_bytes(&[1u8; 32]);
        let bob = IdentityKey::from_seed_bytes(&[2u8; 32]);
        let pro_key = SigningKey::from_bytes(&[9u8; 32]);
        let mut content = text("pro");
        content.pro_message = Some(Default::default());
        let wire =
            encode_for_1o1(&alice, &bob.session_id(), &content, 5, Some(&pro_key), &mut CountingRng(0))
                .unwrap();
        let pro = decode_1o1(&bob, &wire).unwrap().pro.unwrap();
        assert!(verify_ed25519(&pro_key.verifying_key().to_bytes(), &pro.signed_content, &pro.signature));

        content.sig_timestamp = None;
        let wire =
            encode_for_1o1(&alice, &bob.session_id(), &content, 5, Some(&pro_key), &mut CountingRng(0))
                .unwrap();
        assert_eq!(decode_1o1(&bob, &wire), Err(DecodeError::MissingSigTimestamp));
    }

    #[test]
    fn stage_errors() {
        let bob = IdentityKey::from_seed_bytes(&[2u8; 32]);
        assert!(matches!(decode_1o1(&bob, &[0xff]), Err(DecodeError::WebSocketMessage(_))));
        assert_eq!(decode_1o1(&bob, &[0x08, 0x01]), Err(DecodeError::MissingRequest));
        assert_eq!(decode_1o1(&bob, &[0x12, 0x00]), Err(DecodeError::MissingBody));
        let no_content = Envelope { r#type: 6, timestamp: 1, ..Default::default() }.encode_to_vec();
        assert_eq!(
            decode_1o1(&bob, &wrap_in_websocket_message(no_content)),
            Err(DecodeError::MissingContent)
        );
        let short = Envelope { r#type: 6, timestamp: 1, content: Some(vec![1; 10]), ..Default::default() }
            .encode_to_vec();
        assert_eq!(
            decode_1o1(&bob, &wrap_in_websocket_message(short)),
            Err(DecodeError::Decrypt(DecryptError::TooShort { len: 10 }))
        );
        let group = SessionId::new(IdPrefix::Group, [7u8; 32]);
        assert!(matches!(
            encode_for_1o1(&bob, &group, &Content::default(), 1, None, &mut CountingRng(0)),
            Err(EncodeError::Encrypt(EncryptError::RecipientPrefix(0x03)))
        ));
    }

    #[test]
    fn legacy_config_roundtrip() {
        let me = IdentityKey::from_seed_bytes(&[3u8; 32]);
        let kind = shared_config_message::Kind::Contacts;
        let wire = wrap_legacy_config(&me, kind, 7, b"config").unwrap();
        assert_eq!(wire, wrap_legacy_config(&me, kind, 7, b"config").unwrap());
        let config = unwrap_legacy_config(&me, &wire).unwrap();
        assert_eq!((config.kind, config.seqno, config.data.as_slice()), (kind as i32, 7, &b"config"[..]));
    }
}
