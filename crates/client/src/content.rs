//! The 1:1 message kinds a Session client sends and receives (features §1.3), to and from the
//! protobuf `Content` (crypto §4.2), and the full pipeline to and from the bytes stored in a
//! swarm (crypto §4.3: pad, v1 encrypt, `Envelope`, `WebSocketMessage`).
//!
//! What goes on the wire follows current session-desktop (`ts/session/messages/outgoing/`):
//!
//! * every `Content` carries `sigTimestamp` = the send time in ms (the authenticated send time;
//!   the envelope timestamp is not signed);
//! * visible messages and disappearing-messages updates carry `Content.expirationType` and
//!   `Content.expirationTimer` (`UNKNOWN`/0 when off); receipts, typing indicators and message
//!   request responses never do;
//! * a visible message is a `DataMessage{body, timestamp, profile, syncTarget}`; the copy a client
//!   stores in its own swarm for its other devices has `syncTarget` = the recipient's Session ID;
//! * a disappearing-messages update is a `DataMessage{flags = EXPIRATION_TIMER_UPDATE}` (plus
//!   `syncTarget` on the own-swarm copy) with the new setting in the `Content` fields.
//!
//! Receiving never panics on untrusted bytes: bytes that fail to decode or decrypt give a
//! [`IncomingError`]; a well-formed message of a kind this client does not handle (calls,
//! attachments, reactions, …) decodes to [`IncomingContent::Unsupported`], which a poll loop
//! skips.

use session_protocol::envelope::{self, DecodeError, EncodeError};
use session_protocol::id::{IdPrefix, SessionId};
use session_protocol::keys::IdentityKey;
use session_protocol::proto::{
    Content, DataMessage, LokiProfile, MessageRequestResponse, ReceiptMessage, TypingMessage, UnsendRequest,
    content, data_message, receipt_message, typing_message,
};

/// Disappearing-messages setting of a conversation or of one message (features §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DisappearingMode {
    /// Messages do not disappear.
    #[default]
    Off,
    /// A message disappears `seconds` after it was sent.
    AfterSend {
        /// The timer in seconds (never 0).
        seconds: u32,
    },
    /// A message disappears `seconds` after the recipient read it.
    AfterRead {
        /// The timer in seconds (never 0).
        seconds: u32,
    },
}

impl DisappearingMode {
    /// The timer in seconds, 0 when off.
    pub fn seconds(self) -> u32 {
        match self {
            Self::Off => 0,
            Self::AfterSend { seconds } | Self::AfterRead { seconds } => seconds,
        }
    }

    /// `(Content.expirationType, Content.expirationTimer)` as upstream sends them.
    pub fn to_wire(self) -> (content::ExpirationType, u32) {
        match self {
            Self::Off => (content::ExpirationType::Unknown, 0),
            Self::AfterSend { seconds } => (content::ExpirationType::DeleteAfterSend, seconds),
            Self::AfterRead { seconds } => (content::ExpirationType::DeleteAfterRead, seconds),
        }
    }

    /// Reads `Content.expirationType` / `expirationTimer`. A missing or unknown type, or a zero
    /// timer, means off (as upstream treats them).
    pub fn from_wire(expiration_type: Option<i32>, timer: Option<u32>) -> Self {
        let seconds = timer.unwrap_or(0);
        if seconds == 0 {
            return Self::Off;
        }
        match expiration_type.and_then(|t| content::ExpirationType::try_from(t).ok()) {
            Some(content::ExpirationType::DeleteAfterSend) => Self::AfterSend { seconds },
            Some(content::ExpirationType::DeleteAfterRead) => Self::AfterRead { seconds },
            Some(content::ExpirationType::Unknown) | None => Self::Off,
        }
    }
}

/// The profile details a message carries (`LokiProfile`). The avatar is not handled yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The display name the sender chose.
    pub display_name: Option<String>,
    /// When the sender last changed the profile (seconds since the epoch), if sent.
    pub updated_s: Option<u64>,
}

/// A visible text message.
#[derive(Clone, PartialEq, Eq)]
pub struct TextMessage {
    /// The text.
    pub body: String,
    /// The sender's profile, if attached.
    pub profile: Option<Profile>,
    /// Set on the copy stored in the sender's own swarm: whom the message was sent to.
    pub sync_target: Option<SessionId>,
    /// The message's disappearing-messages setting.
    pub disappearing: DisappearingMode,
}

impl std::fmt::Debug for TextMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextMessage")
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("sync_target", &self.sync_target)
            .field("disappearing", &self.disappearing)
            .finish_non_exhaustive()
    }
}

/// Typing indicator action (`TypingMessage.Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypingAction {
    /// The sender started typing.
    Started,
    /// The sender stopped typing.
    Stopped,
}

/// A 1:1 message kind this client sends and understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// A visible text message (`DataMessage.body`).
    Text(TextMessage),
    /// The recipient read the messages sent at these timestamps (`ReceiptMessage{READ}`).
    ReadReceipt {
        /// Sent timestamps (ms) of the messages read.
        timestamps: Vec<u64>,
    },
    /// Typing indicator (`TypingMessage`).
    Typing(TypingAction),
    /// "Delete for everyone" of the message `(author, timestamp)` (`UnsendRequest`).
    Unsend {
        /// Sent timestamp (ms) of the message to delete.
        timestamp: u64,
        /// Its author.
        author: SessionId,
    },
    /// Answer to a message request (`MessageRequestResponse`); upstream sends only approvals.
    RequestResponse {
        /// Whether the request was accepted.
        approved: bool,
        /// The responder's profile, if attached.
        profile: Option<Profile>,
    },
    /// The sender changed the conversation's disappearing-messages setting
    /// (`DataMessage.flags = EXPIRATION_TIMER_UPDATE` plus the `Content` expiration fields).
    DisappearingSettings {
        /// The new setting.
        mode: DisappearingMode,
        /// Set on the copy stored in the sender's own swarm: the conversation it applies to.
        sync_target: Option<SessionId>,
    },
}

/// Well-formed content of a kind this client does not handle; the message is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unsupported {
    /// `Content` with none of the fields this client knows.
    Empty,
    /// A call signalling message.
    Call,
    /// A delivery receipt (upstream no longer sends them).
    DeliveryReceipt,
    /// A screenshot / media-saved notification.
    DataExtractionNotification,
    /// A legacy config message (crypto §4.4).
    LegacyConfig,
    /// A data message with attachments.
    Attachments,
    /// An emoji reaction.
    Reaction,
    /// A community invitation.
    CommunityInvitation,
    /// A groups v2 control message.
    GroupUpdate,
    /// A data message without text or any other known payload.
    EmptyDataMessage,
    /// An enum value this client does not know (a newer client sent it).
    UnknownEnumValue,
}

/// What a received `Content` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingContent {
    /// A message kind this client handles.
    Kind(MessageKind),
    /// Something this client does not handle; skip it.
    Unsupported(Unsupported),
}

/// A decrypted, authenticated incoming 1:1 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender, authenticated by the v1 signature.
    pub sender: SessionId,
    /// The send time in ms: `Content.sigTimestamp` if set, else `DataMessage.timestamp`, else the
    /// (unauthenticated) envelope timestamp. With the author, the protocol's message id.
    pub sent_ms: u64,
    /// What the message holds.
    pub content: IncomingContent,
}

/// A received `Content` has a field this client cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// `syncTarget`, `UnsendRequest.author`, … is not a 05 Session ID.
    #[error("{field} is not a valid Session ID")]
    BadSessionId {
        /// Which field.
        field: &'static str,
    },
    /// `UnsendRequest.timestamp` is 0.
    #[error("unsend request has timestamp 0")]
    ZeroUnsendTimestamp,
}

/// An incoming message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IncomingError {
    /// The bytes are not a 1:1 message for us: malformed framing, not encrypted to our key, bad
    /// signature, bad padding or not a `Content` protobuf.
    #[error("cannot decode 1:1 message: {0}")]
    Decode(#[from] DecodeError),
    /// The `Content` decoded but a field is invalid (the sender misbehaved).
    #[error("invalid message content: {0}")]
    Content(#[from] ContentError),
}

/// Builds the `Content` of `kind` sent at `sent_ms`, as upstream clients build it.
pub fn to_content(kind: &MessageKind, sent_ms: u64) -> Content {
    let mut out = Content { sig_timestamp: Some(sent_ms), ..Content::default() };
    match kind {
        MessageKind::Text(text) => {
            set_expiration(&mut out, text.disappearing);
            out.data_message = Some(DataMessage {
                body: Some(text.body.clone()),
                timestamp: Some(sent_ms),
                profile: text.profile.as_ref().map(to_loki_profile),
                sync_target: text.sync_target.map(|id| id.to_hex()),
                ..DataMessage::default()
            });
        }
        MessageKind::ReadReceipt { timestamps } => {
            out.receipt_message = Some(ReceiptMessage {
                r#type: receipt_message::Type::Read as i32,
                timestamp: timestamps.clone(),
            });
        }
        MessageKind::Typing(action) => {
            let action = match action {
                TypingAction::Started => typing_message::Action::Started,
                TypingAction::Stopped => typing_message::Action::Stopped,
            };
            out.typing_message = Some(TypingMessage { timestamp: sent_ms, action: action as i32 });
        }
        MessageKind::Unsend { timestamp, author } => {
            out.unsend_request = Some(UnsendRequest { timestamp: *timestamp, author: author.to_hex() });
        }
        MessageKind::RequestResponse { approved, profile } => {
            out.message_request_response = Some(MessageRequestResponse {
                is_approved: *approved,
                profile_key: None,
                profile: profile.as_ref().map(to_loki_profile),
            });
        }
        MessageKind::DisappearingSettings { mode, sync_target } => {
            set_expiration(&mut out, *mode);
            out.data_message = Some(DataMessage {
                flags: Some(data_message::Flags::ExpirationTimerUpdate as u32),
                timestamp: Some(sent_ms),
                sync_target: sync_target.map(|id| id.to_hex()),
                ..DataMessage::default()
            });
        }
    }
    out
}

/// Reads a received `Content`. Unknown or unhandled content is [`IncomingContent::Unsupported`];
/// only invalid fields of a known kind are errors.
pub fn from_content(content: &Content) -> Result<IncomingContent, ContentError> {
    use IncomingContent::{Kind, Unsupported as Skip};
    if let Some(data) = &content.data_message {
        return from_data_message(content, data);
    }
    if let Some(receipt) = &content.receipt_message {
        return Ok(match receipt_message::Type::try_from(receipt.r#type) {
            Ok(receipt_message::Type::Read) => {
                Kind(MessageKind::ReadReceipt { timestamps: receipt.timestamp.clone() })
            }
            Ok(receipt_message::Type::Delivery) => Skip(Unsupported::DeliveryReceipt),
            Err(_) => Skip(Unsupported::UnknownEnumValue),
        });
    }
    if let Some(typing) = &content.typing_message {
        return Ok(match typing_message::Action::try_from(typing.action) {
            Ok(typing_message::Action::Started) => Kind(MessageKind::Typing(TypingAction::Started)),
            Ok(typing_message::Action::Stopped) => Kind(MessageKind::Typing(TypingAction::Stopped)),
            Err(_) => Skip(Unsupported::UnknownEnumValue),
        });
    }
    if let Some(unsend) = &content.unsend_request {
        if unsend.timestamp == 0 {
            return Err(ContentError::ZeroUnsendTimestamp);
        }
        let author = parse_standard_id(&unsend.author, "UnsendRequest.author")?;
        return Ok(Kind(MessageKind::Unsend { timestamp: unsend.timestamp, author }));
    }
    if let Some(response) = &content.message_request_response {
        return Ok(Kind(MessageKind::RequestResponse {
            approved: response.is_approved,
            profile: response.profile.as_ref().map(from_loki_profile),
        }));
    }
    Ok(Skip(if content.call_message.is_some() {
        Unsupported::Call
    } else if content.data_extraction_notification.is_some() {
        Unsupported::DataExtractionNotification
    } else if content.shared_config_message.is_some() {
        Unsupported::LegacyConfig
    } else {
        Unsupported::Empty
    }))
}

/// Encodes `kind` from `sender` to `recipient` (a 05 Session ID; our own for Note to Self and for
/// sync copies), sent at `sent_ms`: the bytes to store in namespace 0 of the recipient's swarm.
pub fn encode_outgoing<R: rand_core::CryptoRng + ?Sized>(
    sender: &IdentityKey,
    recipient: &SessionId,
    kind: &MessageKind,
    sent_ms: u64,
    rng: &mut R,
) -> Result<Vec<u8>, EncodeError> {
    envelope::encode_for_1o1(sender, recipient, &to_content(kind, sent_ms), sent_ms, None, rng)
}

/// Decodes bytes fetched from namespace 0 of our swarm. Never panics on any input.
pub fn decode_incoming(me: &IdentityKey, data: &[u8]) -> Result<Incoming, IncomingError> {
    let decoded = envelope::decode_1o1(me, data)?;
    let content = from_content(&decoded.content)?;
    let sent_ms = decoded
        .content
        .sig_timestamp
        .filter(|&t| t != 0)
        .or_else(|| decoded.content.data_message.as_ref().and_then(|d| d.timestamp).filter(|&t| t != 0))
        .unwrap_or(decoded.envelope_timestamp_ms);
    Ok(Incoming { sender: decoded.sender, sent_ms, content })
}

fn from_data_message(content: &Content, data: &DataMessage) -> Result<IncomingContent, ContentError> {
    use IncomingContent::{Kind, Unsupported as Skip};
    let disappearing = DisappearingMode::from_wire(content.expiration_type, content.expiration_timer);
    let sync_target = match &data.sync_target {
        Some(hex) if !hex.is_empty() => Some(parse_standard_id(hex, "DataMessage.syncTarget")?),
        _ => None,
    };
    let flags = data.flags.unwrap_or(0);
    if flags & data_message::Flags::ExpirationTimerUpdate as u32 != 0 {
        return Ok(Kind(MessageKind::DisappearingSettings { mode: disappearing, sync_target }));
    }
    if data.group_update_message.is_some() {
        return Ok(Skip(Unsupported::GroupUpdate));
    }
    if !data.attachments.is_empty() {
        return Ok(Skip(Unsupported::Attachments));
    }
    if data.reaction.is_some() {
        return Ok(Skip(Unsupported::Reaction));
    }
    if data.open_group_invitation.is_some() {
        return Ok(Skip(Unsupported::CommunityInvitation));
    }
    match &data.body {
        Some(body) if !body.is_empty() => Ok(Kind(MessageKind::Text(TextMessage {
            body: body.clone(),
            profile: data.profile.as_ref().map(from_loki_profile),
            sync_target,
            disappearing,
        }))),
        _ => Ok(Skip(Unsupported::EmptyDataMessage)),
    }
}

fn set_expiration(content: &mut Content, mode: DisappearingMode) {
    let (expiration_type, timer) = mode.to_wire();
    content.expiration_type = Some(expiration_type as i32);
    content.expiration_timer = Some(timer);
}

fn to_loki_profile(profile: &Profile) -> LokiProfile {
    LokiProfile {
        display_name: profile.display_name.clone(),
        profile_picture: None,
        last_update_seconds: profile.updated_s,
    }
}

fn from_loki_profile(profile: &LokiProfile) -> Profile {
    Profile { display_name: profile.display_name.clone(), updated_s: profile.last_update_seconds }
}

fn parse_standard_id(hex: &str, field: &'static str) -> Result<SessionId, ContentError> {
    SessionId::parse_with_prefix(hex, IdPrefix::Standard).map_err(|_| ContentError::BadSessionId { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disappearing_mode_wire_round_trip() {
        for mode in [
            DisappearingMode::Off,
            DisappearingMode::AfterSend { seconds: 86_400 },
            DisappearingMode::AfterRead { seconds: 300 },
        ] {
            let (t, s) = mode.to_wire();
            assert_eq!(DisappearingMode::from_wire(Some(t as i32), Some(s)), mode);
        }
        // A type with a zero timer, an unknown type, or nothing at all: off.
        assert_eq!(DisappearingMode::from_wire(Some(2), Some(0)), DisappearingMode::Off);
        assert_eq!(DisappearingMode::from_wire(Some(99), Some(60)), DisappearingMode::Off);
        assert_eq!(DisappearingMode::from_wire(None, None), DisappearingMode::Off);
    }

    #[test]
    fn text_debug_hides_the_body() {
        let text = TextMessage {
            body: "secret words".into(),
            profile: None,
            sync_target: None,
            disappearing: DisappearingMode::Off,
        };
        assert!(!format!("{text:?}").contains("secret"));
    }
}
