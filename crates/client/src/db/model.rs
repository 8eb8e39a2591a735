//! The values the database stores and returns.

use session_protocol::id::SessionId;
use session_protocol::keys::AccountSeed;

use crate::content::DisappearingMode;

/// The local account (one per database).
#[derive(Clone)]
pub struct Account {
    /// The identity seed; everything else about the keys derives from it.
    pub seed: AccountSeed,
    /// When the account was created here (ms since the epoch).
    pub created_ms: u64,
    /// Our display name, if set.
    pub display_name: Option<String>,
    /// The account's settings.
    pub settings: Settings,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("created_ms", &self.created_ms)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Per-account settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// Send read receipts (off by default, as upstream).
    pub read_receipts: bool,
    /// Send typing indicators (off by default here; upstream asks on first use).
    pub typing_indicators: bool,
}

/// Someone we know of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Their Session ID.
    pub session_id: SessionId,
    /// The display name they sent in their profile.
    pub display_name: Option<String>,
    /// The name we gave them.
    pub nickname: Option<String>,
    /// We approved them (accepted their request or wrote to them first).
    pub approved: bool,
    /// They approved us (sent a message request response, or replied).
    pub approved_me: bool,
    /// We blocked them: their messages are dropped.
    pub blocked: bool,
    /// When the contact was created here (ms).
    pub created_ms: u64,
}

/// What kind of conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    /// 1:1 with another account.
    Direct,
    /// With our own Session ID.
    NoteToSelf,
}

/// Whether a conversation is a pending message request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationState {
    /// Started by someone we have not approved: shown in "Message requests".
    Request,
    /// Accepted (or started by us). Never goes back to [`ConversationState::Request`].
    Accepted,
}

/// A conversation, keyed by the other side's Session ID (ours for Note to Self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The other side (ours for Note to Self).
    pub peer: SessionId,
    /// Direct or Note to Self.
    pub kind: ConversationKind,
    /// Request or accepted.
    pub state: ConversationState,
    /// Our disappearing-messages setting for this conversation.
    pub disappearing: DisappearingMode,
    /// Incoming messages not yet read (and not deleted).
    pub unread: u64,
    /// Time of the newest message or state change (ms).
    pub last_activity_ms: u64,
    /// When the conversation was created here (ms).
    pub created_ms: u64,
}

/// Row id of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the peer (or a sync copy of our own from another device).
    Incoming,
    /// Sent from this device.
    Outgoing,
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Outgoing, not yet stored by the recipient's swarm.
    Sending,
    /// Outgoing, stored by the recipient's swarm.
    Sent,
    /// Outgoing, sending failed.
    Failed,
    /// Outgoing, the recipient sent a read receipt.
    Read,
    /// Incoming.
    Received,
}

/// A message to store.
#[derive(Clone)]
pub struct NewMessage {
    /// The conversation's peer (must exist: see `Store::ensure_conversation`).
    pub conversation: SessionId,
    /// Who wrote it.
    pub author: SessionId,
    /// Sent timestamp (ms); with the author, the protocol's message id.
    pub sent_ms: u64,
    /// The swarm's hash of the stored message, when known (unique: dedupe).
    pub server_hash: Option<String>,
    /// The text.
    pub body: String,
    /// Which way it went.
    pub direction: Direction,
    /// Initial state.
    pub state: MessageState,
    /// Its disappearing-messages setting.
    pub disappearing: DisappearingMode,
}

impl std::fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMessage")
            .field("conversation", &self.conversation)
            .field("author", &self.author)
            .field("sent_ms", &self.sent_ms)
            .field("direction", &self.direction)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A stored message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Row id.
    pub id: MessageId,
    /// The conversation's peer.
    pub conversation: SessionId,
    /// Who wrote it.
    pub author: SessionId,
    /// Sent timestamp (ms).
    pub sent_ms: u64,
    /// The swarm's hash, when known.
    pub server_hash: Option<String>,
    /// The text; `None` once unsent or deleted.
    pub body: Option<String>,
    /// Which way it went.
    pub direction: Direction,
    /// Delivery state.
    pub state: MessageState,
    /// Its disappearing-messages setting.
    pub disappearing: DisappearingMode,
    /// When it disappears (ms), once its timer runs.
    pub expires_at_ms: Option<u64>,
    /// When we read it (ms); outgoing messages count as read when sent.
    pub read_at_ms: Option<u64>,
    /// Unsent by its author or deleted by us: the body is gone, a placeholder remains.
    pub deleted: bool,
}

impl Message {
    /// One of our sends that failed and can be sent again ([`crate::Client::resend`]).
    pub fn can_resend(&self) -> bool {
        self.state == MessageState::Failed && self.direction == Direction::Outgoing && !self.deleted
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("conversation", &self.conversation)
            .field("author", &self.author)
            .field("sent_ms", &self.sent_ms)
            .field("direction", &self.direction)
            .field("state", &self.state)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// Poll position in one namespace on one node: the newest hash seen there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastHash {
    /// The message hash.
    pub hash: String,
    /// When the message expires on the swarm (ms); past that the node no longer knows the hash.
    pub expires_ms: u64,
}
