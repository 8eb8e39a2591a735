//! The messaging engine: a [`Client`] an application drives (issue 5).
//!
//! A client owns one account: its encrypted database ([`crate::db`]) in a data directory, and a
//! [`Network`] handle. It sends 1:1 messages ([`crate::content`]) into the recipient's swarm,
//! polls its own swarm, and reports what happened as [`Event`]s on a broadcast channel.
//!
//! * **Data directory**: `session.db` (SQLCipher) plus its `session.db.key` or `session.db.kdf`
//!   ([`KeySource`]). The node pool is saved in the database after bootstrap and after every
//!   poll, and imported at the next start (no registry round trip when it is fresh).
//! * **Time**: message timestamps, expiries and the disappearing timers use the network time
//!   ([`Network::network_time_ms`]), not the local clock.
//! * **Sending** ([`Client::send_text`]): the message is stored locally as
//!   [`MessageState::Sending`], stored in namespace 0 of the recipient's swarm (TTL 14 days, or
//!   the timer for after-send), then a copy with `syncTarget` = the recipient goes to our own
//!   swarm for our other devices. The state becomes [`MessageState::Sent`] or
//!   [`MessageState::Failed`] ([`Event::DeliveryState`]). The message's `server_hash` is the
//!   hash of the copy in **our** swarm (the one we may delete). Note to Self is stored once.
//! * **Receiving** ([`Client::poll_once`]): namespace 0 of our swarm, with a `last_hash` per
//!   swarm member from the database. Every message hash is recorded as seen in the same
//!   transaction as what the message caused, so a restarted client handles nothing twice.
//!   Undecryptable or unsupported messages are counted and skipped ([`PollSummary`]).
//! * **Requests**: a message from a sender we have not approved opens a conversation in
//!   [`ConversationState::Request`] ([`Event::Request`]); [`Client::accept_request`] sends a
//!   `MessageRequestResponse`. Blocked senders' messages are dropped.
//! * **Disappearing messages**: a message carries its conversation's mode. After-send messages
//!   expire `timer` after their sent time (swarm TTL and local timer); after-read ones when read
//!   here ([`Client::mark_read`] also shortens their expiry on our swarm). [`Client::prune_expired`]
//!   deletes what ran out ([`Event::Expired`]).
//!
//! Nothing here logs keys, message text or full Session IDs.

mod receive;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_protocol::envelope::EncodeError;
use session_protocol::id::SessionId;
use session_protocol::keys::{AccountSeed, IdentityKey};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::mnemonic::{self, MnemonicError, Phrase};
use session_protocol::rpc_sign::ExpireMode;
use tokio::sync::broadcast;

use crate::content::{self, DisappearingMode, MessageKind, Profile, TextMessage, TypingAction};
use crate::db::{
    Contact, Conversation, ConversationKind, ConversationState, Db, DbError, Direction, KeySource, Message,
    MessageId, MessageState, NewMessage, Settings,
};
use crate::net::{PoolSnapshot, RetrieveRequest, StoreRequest, StoreResult};
use crate::{Network, NetworkConfig, NetworkError};

pub use receive::PollSummary;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "session.db";

/// TTL of visible messages, receipts and request responses in a 1:1 inbox: 14 days.
pub const MESSAGE_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// TTL of typing indicators: 20 s.
pub const TYPING_TTL: Duration = Duration::from_secs(20);

/// Capacity of the event channel; a subscriber that falls further behind gets
/// `RecvError::Lagged` and should reload its view from the database.
pub const EVENT_CAPACITY: usize = 1024;

/// Sends in the same millisecond get consecutive timestamps, at most this many apart.
const MAX_TIMESTAMP_BUMP_MS: u64 = 1000;

/// A resend needs at least this much of the message's lifetime left: nodes refuse a store that
/// expires within 10 s.
const RESEND_MARGIN_MS: u64 = 15_000;

/// At most this many retrieve pages per poll (a page is the node's size limit).
const MAX_PAGES_PER_POLL: usize = 20;

/// Something the client did or received. Conversations are named by the peer's Session ID (ours
/// for Note to Self).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message was stored: received, synced from our other device, or sent from here.
    Message {
        /// The conversation.
        conversation: SessionId,
        /// The message as stored.
        message: Message,
    },
    /// A sender we have not approved opened a conversation: it waits in message requests.
    Request {
        /// The conversation (the sender).
        conversation: SessionId,
    },
    /// The peer accepted our message request (`MessageRequestResponse`).
    Accepted {
        /// The conversation.
        conversation: SessionId,
    },
    /// An outgoing message changed state (sent, failed, read by the peer).
    DeliveryState {
        /// The conversation.
        conversation: SessionId,
        /// The message.
        message: MessageId,
        /// Its new state.
        state: MessageState,
    },
    /// The peer started or stopped typing (only events; nothing is stored).
    Typing {
        /// The conversation.
        conversation: SessionId,
        /// Started (`true`) or stopped.
        started: bool,
    },
    /// A message was unsent by its author (here or on the other side): its body is gone.
    Unsent {
        /// The conversation.
        conversation: SessionId,
        /// The message.
        message: MessageId,
    },
    /// A disappearing message ran out and was deleted.
    Expired {
        /// The conversation.
        conversation: SessionId,
        /// The message (no longer in the database).
        message: MessageId,
    },
    /// The peer changed its disappearing-messages setting for this conversation (in 1:1 chats
    /// each side has its own; an application may offer to follow it).
    PeerDisappearing {
        /// The conversation.
        conversation: SessionId,
        /// The peer's new setting.
        mode: DisappearingMode,
    },
}

/// A client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The local database failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The network failed.
    #[error("network: {0}")]
    Network(#[from] NetworkError),
    /// The recovery phrase is not valid.
    #[error("recovery phrase: {0}")]
    Phrase(#[from] MnemonicError),
    /// A message could not be encrypted.
    #[error("cannot encode the message: {0}")]
    Encode(#[from] EncodeError),
    /// `create`/`restore` on a data directory that already holds an account.
    #[error("the data directory already holds an account")]
    AccountExists,
    /// `open` on a data directory without an account.
    #[error("the data directory holds no account")]
    NoAccount,
    /// The data directory cannot be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The message was saved locally but could not be stored in the recipient's swarm; it is
    /// now [`MessageState::Failed`].
    #[error("message {message:?} was not delivered: {source}")]
    SendFailed {
        /// The failed message.
        message: MessageId,
        /// Why (usually [`ClientError::Network`]).
        #[source]
        source: Box<ClientError>,
    },
    /// No conversation with that peer.
    #[error("no such conversation")]
    NoConversation,
    /// No message with that id.
    #[error("no such message")]
    NoMessage,
    /// Only our own messages can be unsent.
    #[error("only messages we wrote can be unsent")]
    NotOurMessage,
    /// The message was already unsent or deleted.
    #[error("the message is already deleted")]
    AlreadyDeleted,
    /// The disappearing timer is zero for a mode that needs one.
    #[error("a disappearing-messages timer must be at least one second")]
    ZeroTimer,
    /// Only a message whose sending failed can be sent again.
    #[error("the message was not a failed send")]
    NotFailed,
    /// The message's disappearing timer ran out (or nearly): sending it again is pointless.
    #[error("the message has expired")]
    Expired,
}

/// A Session account, connected: send, poll, events. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("session_id", &self.inner.id.short()).finish_non_exhaustive()
    }
}

struct Inner {
    db: Db,
    net: Network,
    identity: IdentityKey,
    id: SessionId,
    events: broadcast::Sender<Event>,
    /// One poll at a time (two would race on the last hashes).
    poll: tokio::sync::Mutex<()>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    skipped: AtomicU64,
    dropped: AtomicU64,
    duplicates: AtomicU64,
}

/// Totals since the client started ([`Client::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// Messages handled (stored, or acted on).
    pub handled: u64,
    /// Messages skipped: undecryptable, invalid, or of a kind this client does not handle.
    pub skipped: u64,
    /// Messages dropped: from blocked senders, or acting on things they may not act on.
    pub dropped: u64,
    /// Messages already handled before (seen hash).
    pub duplicates: u64,
}

/// A running background poller ([`Client::spawn_poller`]). Dropping it stops the loop.
#[derive(Debug)]
pub struct Poller {
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    /// Stops the loop (also done on drop).
    pub fn stop(self) {}
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Creates a new account in `data_dir` (which must not hold one): a random 128-bit seed
    /// (the 13-word recovery phrase upstream clients use), the display name, then connects.
    /// Returns the client and the recovery phrase: show it to the user once; it is not stored
    /// anywhere else than as the seed in the encrypted database.
    pub async fn create(
        data_dir: impl AsRef<Path>,
        key_source: KeySource,
        network_config: NetworkConfig,
        display_name: Option<&str>,
    ) -> Result<(Self, Phrase), ClientError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
        rand::fill(&mut bytes[..]);
        let seed = AccountSeed::from_slice(&bytes[..]).map_err(|_| DbError::Corrupt("seed length"))?;
        let phrase = mnemonic::account_phrase(&seed);
        let client =
            Self::new_account(data_dir.as_ref(), key_source, network_config, seed, display_name).await?;
        Ok((client, phrase))
    }

    /// Restores an account from its recovery phrase (12/13 words for the usual 128-bit seed,
    /// 24/25 for a 256-bit one) into `data_dir` (which must not hold an account), then connects.
    /// History comes back from what the swarm still holds, at the first polls.
    pub async fn restore(
        data_dir: impl AsRef<Path>,
        key_source: KeySource,
        network_config: NetworkConfig,
        phrase: &str,
    ) -> Result<Self, ClientError> {
        let seed = mnemonic::account_seed_from_phrase(phrase)?;
        Self::new_account(data_dir.as_ref(), key_source, network_config, seed, None).await
    }

    /// Opens the account in `data_dir` and connects (importing the saved node pool unless
    /// `network_config.pool` is set).
    pub async fn open(
        data_dir: impl AsRef<Path>,
        key_source: KeySource,
        network_config: NetworkConfig,
    ) -> Result<Self, ClientError> {
        let db = Db::open(data_dir.as_ref().join(DB_FILE), key_source).await?;
        let account = db.run(|s| s.account()).await?.ok_or(ClientError::NoAccount)?;
        Self::connect(db, IdentityKey::from_seed(&account.seed), network_config).await
    }

    async fn new_account(
        data_dir: &Path,
        key_source: KeySource,
        network_config: NetworkConfig,
        seed: AccountSeed,
        display_name: Option<&str>,
    ) -> Result<Self, ClientError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| ClientError::DataDir { path: data_dir.to_owned(), source })?;
        let db = Db::open(data_dir.join(DB_FILE), key_source).await?;
        let identity = IdentityKey::from_seed(&seed);
        let name = display_name.map(str::to_owned);
        let created = now_local_ms();
        db.run(move |s| {
            match s.create_account(&seed, created) {
                Err(DbError::AccountExists) => return Ok(Err(ClientError::AccountExists)),
                other => other?,
            }
            s.set_display_name(name.as_deref())?;
            Ok(Ok(()))
        })
        .await??;
        Self::connect(db, identity, network_config).await
    }

    async fn connect(db: Db, identity: IdentityKey, mut config: NetworkConfig) -> Result<Self, ClientError> {
        if config.pool.is_none() {
            config.pool = db.run(|s| s.node_pool::<PoolSnapshot>()).await?.map(|(pool, _)| pool);
        }
        let net = Network::bootstrap(config).await?;
        let id = identity.session_id();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let client = Self {
            inner: Arc::new(Inner {
                db,
                net,
                identity,
                id,
                events,
                poll: tokio::sync::Mutex::new(()),
                counters: Counters::default(),
            }),
        };
        client.save_pool().await?;
        tracing::info!(account = %id.short(), "client connected");
        Ok(client)
    }

    // ---- accessors ----

    /// Our Session ID.
    pub fn session_id(&self) -> SessionId {
        self.inner.id
    }

    /// The network handle (stats, pool, network time).
    pub fn network(&self) -> &Network {
        &self.inner.net
    }

    /// The database handle, for reads an application needs beyond the methods here.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// A new receiver of [`Event`]s (events from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Totals of the poll loop since this client started.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            handled: c.handled.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
        }
    }

    /// All conversations (accepted and requests), most recent first.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, ClientError> {
        Ok(self.inner.db.run(|s| s.conversations()).await?)
    }

    /// The conversation with `peer`, if any.
    pub async fn conversation(&self, peer: &SessionId) -> Result<Option<Conversation>, ClientError> {
        let peer = *peer;
        Ok(self.inner.db.run(move |s| s.conversation(&peer)).await?)
    }

    /// The newest `limit` messages of the conversation with `peer`, oldest first.
    pub async fn messages(&self, peer: &SessionId, limit: u32) -> Result<Vec<Message>, ClientError> {
        let peer = *peer;
        Ok(self.inner.db.run(move |s| s.messages(&peer, limit)).await?)
    }

    /// The message with this id.
    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, ClientError> {
        Ok(self.inner.db.run(move |s| s.message(id)).await?)
    }

    /// The contact with this Session ID, if known.
    pub async fn contact(&self, id: &SessionId) -> Result<Option<Contact>, ClientError> {
        let id = *id;
        Ok(self.inner.db.run(move |s| s.contact(&id)).await?)
    }

    /// Our display name.
    pub async fn display_name(&self) -> Result<Option<String>, ClientError> {
        Ok(self.inner.db.run(|s| s.account()).await?.and_then(|a| a.display_name))
    }

    /// Sets our display name (sent with our next messages).
    pub async fn set_display_name(&self, name: Option<&str>) -> Result<(), ClientError> {
        let name = name.map(str::to_owned);
        Ok(self.inner.db.run(move |s| s.set_display_name(name.as_deref())).await?)
    }

    /// The account settings (read receipts, typing indicators).
    pub async fn settings(&self) -> Result<Settings, ClientError> {
        let account = self.inner.db.run(|s| s.account()).await?.ok_or(ClientError::NoAccount)?;
        Ok(account.settings)
    }

    /// Replaces the account settings.
    pub async fn set_settings(&self, settings: Settings) -> Result<(), ClientError> {
        Ok(self.inner.db.run(move |s| s.set_settings(settings)).await?)
    }

    // ---- sending ----

    /// Sends a text message to `to` (our own ID: Note to Self). The message is stored locally
    /// first; on a network failure it stays as [`MessageState::Failed`] and the error is
    /// [`ClientError::SendFailed`] naming it. Sending to someone whose request we have not
    /// accepted accepts it.
    pub async fn send_text(&self, to: &SessionId, text: &str) -> Result<MessageId, ClientError> {
        let to = *to;
        let me = self.inner.id;
        let now = self.now();
        if let Some(conversation) = self.conversation(&to).await?
            && conversation.state == ConversationState::Request
        {
            self.accept_request(&to).await?;
        }
        let body = text.to_owned();
        let (id, now, disappearing, name) = self
            .inner
            .db
            .run(move |s| {
                s.transaction(|s| {
                    let account = s.account()?.ok_or(DbError::NoAccount)?;
                    let conversation = s.ensure_conversation(&to, ConversationState::Accepted, now)?;
                    if conversation.kind == ConversationKind::Direct {
                        let mut contact = s.contact_or_new(&to, now)?;
                        if !contact.approved {
                            contact.approved = true;
                            s.save_contact(&contact)?;
                        }
                    }
                    // A message is known by its author and sent timestamp (receipts and unsend
                    // name it so), so two sends in the same millisecond take the next free one.
                    for sent_ms in now..now + MAX_TIMESTAMP_BUMP_MS {
                        let inserted = s.insert_message(&NewMessage {
                            conversation: to,
                            author: me,
                            sent_ms,
                            server_hash: None,
                            body: body.clone(),
                            direction: Direction::Outgoing,
                            state: MessageState::Sending,
                            disappearing: conversation.disappearing,
                        })?;
                        if let Some(id) = inserted {
                            return Ok((id, sent_ms, conversation.disappearing, account.display_name));
                        }
                    }
                    Err(DbError::Corrupt("no free sent timestamp for an outgoing message"))
                })
            })
            .await?;
        self.emit_stored(id).await;
        self.deliver(id, to, text.to_owned(), now, disappearing, name).await
    }

    /// Sends one of our messages again that was not delivered ([`MessageState::Failed`]), with
    /// its original sent timestamp (receipts and unsend name it by that; a recipient that got
    /// the first attempt after all keeps one copy). Returns the same errors as
    /// [`Client::send_text`]; a message that is not ours, not failed, unsent or already past its
    /// disappearing timer is refused.
    pub async fn resend(&self, message: MessageId) -> Result<MessageId, ClientError> {
        let found = self.message(message).await?.ok_or(ClientError::NoMessage)?;
        if found.author != self.inner.id || found.direction != Direction::Outgoing {
            return Err(ClientError::NotOurMessage);
        }
        if found.state != MessageState::Failed {
            return Err(ClientError::NotFailed);
        }
        let Some(body) = found.body.filter(|_| !found.deleted) else {
            return Err(ClientError::AlreadyDeleted);
        };
        let now = self.now();
        let expiry = found.sent_ms.saturating_add(ttl_ms(ttl_for(found.disappearing)));
        if expiry <= now.saturating_add(RESEND_MARGIN_MS) {
            return Err(ClientError::Expired);
        }
        let name = self.display_name().await?;
        self.inner.db.run(move |s| s.set_message_state(message, MessageState::Sending)).await?;
        self.emit(Event::DeliveryState {
            conversation: found.conversation,
            message,
            state: MessageState::Sending,
        });
        self.deliver(message, found.conversation, body, found.sent_ms, found.disappearing, name).await
    }

    /// Resends every failed message of the conversation with `peer`, oldest first, stopping at
    /// the first that fails again (the network is likely still down). Returns the messages
    /// delivered.
    pub async fn resend_failed(&self, peer: &SessionId) -> Result<Vec<MessageId>, ClientError> {
        let failed: Vec<MessageId> = self
            .messages(peer, u32::MAX)
            .await?
            .into_iter()
            .filter(Message::can_resend)
            .map(|m| m.id)
            .collect();
        let mut delivered = Vec::with_capacity(failed.len());
        for id in failed {
            match self.resend(id).await {
                Ok(id) => delivered.push(id),
                Err(ClientError::Expired) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(delivered)
    }

    /// Stores a text message already saved locally as `id` into the recipient's swarm, then its
    /// sync copy into ours, and records the outcome.
    async fn deliver(
        &self,
        id: MessageId,
        to: SessionId,
        body: String,
        sent_ms: u64,
        disappearing: DisappearingMode,
        name: Option<String>,
    ) -> Result<MessageId, ClientError> {
        let me = self.inner.id;
        let text = TextMessage {
            body,
            profile: Some(Profile { display_name: name, updated_s: None }),
            sync_target: None,
            disappearing,
        };
        let ttl = ttl_for(disappearing);
        // Note to Self: one copy, in our swarm.
        if to == me {
            let result = self.store(&me, &MessageKind::Text(text), sent_ms, ttl).await;
            return self.finish_send(id, &to, result, Some(sent_ms + ttl_ms(ttl))).await;
        }
        let result = self.store(&to, &MessageKind::Text(text.clone()), sent_ms, ttl).await;
        let id = self.finish_send(id, &to, result, None).await?;
        // The copy for our other devices (and for a restore).
        let sync = MessageKind::Text(TextMessage { sync_target: Some(to), ..text });
        match self.store(&me, &sync, sent_ms, ttl).await {
            Ok(stored) => {
                let hash = stored.hash.as_str().to_owned();
                let expiry = stored.expiry_ms.unwrap_or(sent_ms + ttl_ms(ttl));
                self.inner
                    .db
                    .run(move |s| {
                        s.transaction(|s| {
                            s.mark_seen(&hash, expiry)?;
                            s.set_server_hash(id, &hash)
                        })
                    })
                    .await?;
            }
            Err(e) => tracing::warn!(error = %e, "sync copy of a sent message not stored"),
        }
        Ok(id)
    }

    /// Records the outcome of the main store of a sent message. `own_swarm`: the store went
    /// to our own swarm (Note to Self), with this expiry unless the swarm reports one.
    async fn finish_send(
        &self,
        id: MessageId,
        to: &SessionId,
        result: Result<StoreResult, ClientError>,
        own_swarm: Option<u64>,
    ) -> Result<MessageId, ClientError> {
        let (state, outcome) = match result {
            Ok(stored) => {
                let hash = stored.hash.as_str().to_owned();
                self.inner
                    .db
                    .run(move |s| {
                        s.transaction(|s| {
                            if let Some(fallback) = own_swarm {
                                let expiry = stored.expiry_ms.unwrap_or(fallback);
                                s.mark_seen(&hash, expiry)?;
                                s.set_server_hash(id, &hash)?;
                            }
                            s.set_message_state(id, MessageState::Sent)
                        })
                    })
                    .await?;
                (MessageState::Sent, Ok(id))
            }
            Err(e) => {
                tracing::warn!(error = %e, to = %to.short(), "message not delivered");
                self.inner.db.run(move |s| s.set_message_state(id, MessageState::Failed)).await?;
                (MessageState::Failed, Err(ClientError::SendFailed { message: id, source: Box::new(e) }))
            }
        };
        self.emit(Event::DeliveryState { conversation: *to, message: id, state });
        outcome
    }

    /// Sends a typing indicator to `to` if the typing-indicators setting is on. Returns whether
    /// it was sent.
    pub async fn send_typing(&self, to: &SessionId, started: bool) -> Result<bool, ClientError> {
        if !self.settings().await?.typing_indicators || *to == self.inner.id {
            return Ok(false);
        }
        let action = if started { TypingAction::Started } else { TypingAction::Stopped };
        self.store(to, &MessageKind::Typing(action), self.now(), TYPING_TTL).await?;
        Ok(true)
    }

    /// Marks every unread incoming message of the conversation read: starts the timers of
    /// after-read messages (locally and on our swarm), and sends a read receipt if that setting
    /// is on (and the conversation is an accepted 1:1). Returns how many messages were marked.
    pub async fn mark_read(&self, peer: &SessionId) -> Result<usize, ClientError> {
        let peer = *peer;
        let now = self.now();
        let (timestamps, after_read, settings, conversation) = self
            .inner
            .db
            .run(move |s| {
                s.transaction(|s| {
                    let conversation = s.conversation(&peer)?.ok_or(DbError::NoConversation)?;
                    let after_read: Vec<(String, u32)> = s
                        .messages(&peer, u32::MAX)?
                        .into_iter()
                        .filter(|m| {
                            m.direction == Direction::Incoming && m.read_at_ms.is_none() && !m.deleted
                        })
                        .filter_map(|m| match m.disappearing {
                            DisappearingMode::AfterRead { seconds } => m.server_hash.map(|h| (h, seconds)),
                            _ => None,
                        })
                        .collect();
                    let timestamps = s.mark_read(&peer, now)?;
                    let settings = s.account()?.ok_or(DbError::NoAccount)?.settings;
                    Ok((timestamps, after_read, settings, conversation))
                })
            })
            .await?;
        // Shorten the swarm expiry of after-read messages, one request per timer.
        let mut by_timer: BTreeMap<u32, Vec<MessageHash>> = BTreeMap::new();
        for (hash, seconds) in after_read {
            if let Ok(hash) = hash.parse::<MessageHash>() {
                by_timer.entry(seconds).or_default().push(hash);
            }
        }
        for (seconds, hashes) in by_timer {
            let expiry = now + u64::from(seconds) * 1000;
            if let Err(e) =
                self.inner.net.expire(&self.inner.identity, &hashes, expiry, ExpireMode::Shorten).await
            {
                tracing::warn!(error = %e, "could not shorten the swarm expiry of read messages");
            }
        }
        if settings.read_receipts
            && !timestamps.is_empty()
            && conversation.kind == ConversationKind::Direct
            && conversation.state == ConversationState::Accepted
        {
            let receipt = MessageKind::ReadReceipt { timestamps: timestamps.clone() };
            if let Err(e) = self.store(&peer, &receipt, now, MESSAGE_TTL).await {
                tracing::warn!(error = %e, "read receipt not sent");
            }
        }
        Ok(timestamps.len())
    }

    /// Accepts the message request from `peer`: the conversation becomes accepted and a
    /// `MessageRequestResponse` (with our display name) is sent to them.
    pub async fn accept_request(&self, peer: &SessionId) -> Result<(), ClientError> {
        let peer = *peer;
        let now = self.now();
        let name = self
            .inner
            .db
            .run(move |s| {
                s.accept_conversation(&peer, now)?;
                Ok(s.account()?.and_then(|a| a.display_name))
            })
            .await
            .map_err(|e| match e {
                DbError::NoConversation => ClientError::NoConversation,
                other => other.into(),
            })?;
        if peer == self.inner.id {
            return Ok(());
        }
        let response = MessageKind::RequestResponse {
            approved: true,
            profile: Some(Profile { display_name: name, updated_s: None }),
        };
        self.store(&peer, &response, now, MESSAGE_TTL).await?;
        Ok(())
    }

    /// Declines the message request from `peer`: deletes the conversation and its messages
    /// (nothing is sent). Returns whether there was one.
    pub async fn decline_request(&self, peer: &SessionId) -> Result<bool, ClientError> {
        let peer = *peer;
        Ok(self.inner.db.run(move |s| s.delete_conversation(&peer)).await?)
    }

    /// Blocks (or unblocks) `peer`: their messages are dropped while blocked (client-side; the
    /// network cannot block anyone).
    pub async fn set_blocked(&self, peer: &SessionId, blocked: bool) -> Result<(), ClientError> {
        let peer = *peer;
        let now = self.now();
        self.inner
            .db
            .run(move |s| {
                s.transaction(|s| {
                    let mut contact = s.contact_or_new(&peer, now)?;
                    contact.blocked = blocked;
                    s.save_contact(&contact)
                })
            })
            .await?;
        Ok(())
    }

    /// Blocks `peer` ([`Client::set_blocked`]).
    pub async fn block(&self, peer: &SessionId) -> Result<(), ClientError> {
        self.set_blocked(peer, true).await
    }

    /// Unblocks `peer` ([`Client::set_blocked`]).
    pub async fn unblock(&self, peer: &SessionId) -> Result<(), ClientError> {
        self.set_blocked(peer, false).await
    }

    /// Unsends one of our messages ("delete for everyone"): our copy loses its body, an
    /// `UnsendRequest` goes to the recipient and to our own swarm (our other devices), and the
    /// stored copy in our swarm is deleted by hash. Network failures after the local delete are
    /// returned, but the local delete stays.
    pub async fn unsend(&self, message: MessageId) -> Result<(), ClientError> {
        let me = self.inner.id;
        let found = self.message(message).await?.ok_or(ClientError::NoMessage)?;
        if found.author != me {
            return Err(ClientError::NotOurMessage);
        }
        if found.deleted {
            return Err(ClientError::AlreadyDeleted);
        }
        let (peer, sent_ms) = (found.conversation, found.sent_ms);
        self.inner.db.run(move |s| s.mark_unsent(&peer, &me, sent_ms)).await?;
        self.emit(Event::Unsent { conversation: peer, message });
        let now = self.now();
        let request = MessageKind::Unsend { timestamp: sent_ms, author: me };
        let mut first_error = None;
        if peer != me
            && let Err(e) = self.store(&peer, &request, now, MESSAGE_TTL).await
        {
            first_error.get_or_insert(e);
        }
        match self.store(&me, &request, now, MESSAGE_TTL).await {
            Ok(stored) => {
                let hash = stored.hash.as_str().to_owned();
                let expiry = stored.expiry_ms.unwrap_or(now + ttl_ms(MESSAGE_TTL));
                self.inner.db.run(move |s| s.mark_seen(&hash, expiry)).await?;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        if let Some(hash) = found.server_hash.as_deref().and_then(|h| h.parse::<MessageHash>().ok())
            && let Err(e) = self.inner.net.delete(&self.inner.identity, &[hash]).await
        {
            first_error.get_or_insert(e.into());
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sets our disappearing-messages setting for the conversation with `peer` (it applies to
    /// messages we send from now on) and tells the peer and our other devices.
    pub async fn set_disappearing(
        &self,
        peer: &SessionId,
        mode: DisappearingMode,
    ) -> Result<(), ClientError> {
        if mode != DisappearingMode::Off && mode.seconds() == 0 {
            return Err(ClientError::ZeroTimer);
        }
        let peer = *peer;
        let me = self.inner.id;
        self.inner.db.run(move |s| s.set_disappearing(&peer, mode)).await.map_err(|e| match e {
            DbError::NoConversation => ClientError::NoConversation,
            other => other.into(),
        })?;
        let now = self.now();
        if peer != me {
            let update = MessageKind::DisappearingSettings { mode, sync_target: None };
            self.store(&peer, &update, now, MESSAGE_TTL).await?;
        }
        let sync = MessageKind::DisappearingSettings { mode, sync_target: Some(peer) };
        let stored = self.store(&me, &sync, now, MESSAGE_TTL).await?;
        let hash = stored.hash.as_str().to_owned();
        let expiry = stored.expiry_ms.unwrap_or(now + ttl_ms(MESSAGE_TTL));
        self.inner.db.run(move |s| s.mark_seen(&hash, expiry)).await?;
        Ok(())
    }

    // ---- background ----

    /// Deletes the messages whose disappearing timer ran out (network time), and forgets expired
    /// seen hashes and poll positions. Returns how many messages were deleted.
    pub async fn prune_expired(&self) -> Result<usize, ClientError> {
        let now = self.now();
        let due = self
            .inner
            .db
            .run(move |s| {
                s.transaction(|s| {
                    let due = s.messages_due_for_deletion(now)?;
                    let ids: Vec<MessageId> = due.iter().map(|m| m.id).collect();
                    s.delete_messages(&ids)?;
                    s.prune_seen(now)?;
                    s.prune_last_hashes(now)?;
                    Ok(due)
                })
            })
            .await?;
        for message in &due {
            self.emit(Event::Expired { conversation: message.conversation, message: message.id });
        }
        Ok(due.len())
    }

    /// Polls, prunes and saves the node pool every `interval`, forever (errors are logged and
    /// the loop goes on).
    pub async fn run(&self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = self.poll_once().await {
                tracing::warn!(error = %e, "poll failed");
            }
            if let Err(e) = self.prune_expired().await {
                tracing::warn!(error = %e, "pruning expired messages failed");
            }
            if let Err(e) = self.save_pool().await {
                tracing::warn!(error = %e, "saving the node pool failed");
            }
        }
    }

    /// [`Client::run`] on a tokio task; stops when the returned [`Poller`] is dropped.
    pub fn spawn_poller(&self, interval: Duration) -> Poller {
        let client = self.clone();
        Poller { task: tokio::spawn(async move { client.run(interval).await }) }
    }

    /// Saves the network layer's node pool in the database.
    pub async fn save_pool(&self) -> Result<(), ClientError> {
        let snapshot = self.inner.net.pool_snapshot();
        let now = self.now();
        if snapshot.nodes.is_empty() {
            return Ok(());
        }
        Ok(self.inner.db.run(move |s| s.save_node_pool(&snapshot, now)).await?)
    }

    // ---- helpers ----

    /// The network time, ms.
    fn now(&self) -> u64 {
        self.inner.net.network_time_ms()
    }

    fn emit(&self, event: Event) {
        // No subscriber is not an error.
        let _ = self.inner.events.send(event);
    }

    async fn emit_stored(&self, id: MessageId) {
        if let Ok(Some(message)) = self.message(id).await {
            self.emit(Event::Message { conversation: message.conversation, message });
        }
    }

    /// Encodes `kind` for `to` and stores it in namespace 0 of `to`'s swarm (signed when it is
    /// our own).
    async fn store(
        &self,
        to: &SessionId,
        kind: &MessageKind,
        sent_ms: u64,
        ttl: Duration,
    ) -> Result<StoreResult, ClientError> {
        let data = content::encode_outgoing(&self.inner.identity, to, kind, sent_ms, &mut rand::rng())?;
        let request = StoreRequest { namespace: Namespace(0), data, ttl, timestamp_ms: Some(sent_ms) };
        let result = if *to == self.inner.id {
            self.inner.net.store(&self.inner.identity, &request).await?
        } else {
            self.inner.net.store_unsigned(to, &request).await?
        };
        Ok(result)
    }

    /// Page through namespace 0 of our swarm: see [`receive`].
    fn retrieve_request(last: BTreeMap<[u8; 32], MessageHash>) -> RetrieveRequest {
        RetrieveRequest { last_hash_by_node: last, ..RetrieveRequest::new(Namespace(0)) }
    }
}

/// The swarm TTL of a message with this disappearing setting: the timer for after-send, else 14
/// days.
pub fn ttl_for(mode: DisappearingMode) -> Duration {
    match mode {
        DisappearingMode::AfterSend { seconds } => Duration::from_secs(u64::from(seconds)).min(MESSAGE_TTL),
        _ => MESSAGE_TTL,
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

fn now_local_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
