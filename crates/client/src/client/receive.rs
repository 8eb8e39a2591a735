//! Receiving: [`Client::poll_once`] and what each incoming message does to the database.

use std::collections::BTreeMap;

use session_protocol::id::SessionId;
use session_protocol::message_hash::{MessageHash, Namespace};

use super::{Client, ClientError, Event, MAX_PAGES_PER_POLL};
use crate::content::{self, DisappearingMode, Incoming, IncomingContent, IncomingError, MessageKind};
use crate::db::{ConversationState, DbError, Direction, LastHash, MessageState, NewMessage, Store};
use crate::net::RetrievedMessage;

/// What one [`Client::poll_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollSummary {
    /// Messages the swarm returned.
    pub fetched: usize,
    /// Messages handled (stored, or acted on).
    pub handled: usize,
    /// Messages handled before (seen hash): skipped.
    pub duplicates: usize,
    /// Undecryptable, invalid, or of a kind this client does not handle: skipped.
    pub skipped: usize,
    /// From blocked senders, or acting on what the sender may not (unsending someone else's
    /// message): dropped.
    pub dropped: usize,
}

/// How one message was dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Handled,
    Duplicate,
    Skipped,
    Dropped,
}

/// The result of applying one message inside its transaction.
struct Applied {
    outcome: Outcome,
    events: Vec<Event>,
    /// Hashes in our swarm to delete (copies of messages their author unsent).
    delete: Vec<String>,
}

impl Applied {
    fn just(outcome: Outcome) -> Self {
        Self { outcome, events: Vec::new(), delete: Vec::new() }
    }
}

impl Client {
    /// Retrieves new messages from namespace 0 of our swarm (authenticated; continuing from the
    /// last hash stored for the member asked) and handles them: see the module docs. Messages
    /// that cannot be decoded are skipped and counted, never an error; an error means the
    /// swarm or the database could not be reached (messages handled before it stay handled).
    pub async fn poll_once(&self) -> Result<PollSummary, ClientError> {
        let _one_at_a_time = self.inner.poll.lock().await;
        let me = self.inner.id;
        let now = self.now();
        let members: Vec<[u8; 32]> = self.inner.net.swarm_of(&me)?.into_iter().map(|n| n.ed25519).collect();
        let mut last: BTreeMap<[u8; 32], MessageHash> = self
            .inner
            .db
            .run(move |s| {
                let mut out = BTreeMap::new();
                for node in members {
                    if let Some(h) = s.last_hash(&node, Namespace(0), now)?
                        && let Ok(hash) = h.hash.parse::<MessageHash>()
                    {
                        out.insert(node, hash);
                    }
                }
                Ok(out)
            })
            .await?;
        let mut summary = PollSummary::default();
        for _ in 0..MAX_PAGES_PER_POLL {
            let got =
                self.inner.net.retrieve(&self.inner.identity, &Self::retrieve_request(last.clone())).await?;
            summary.fetched += got.messages.len();
            for message in &got.messages {
                let outcome = self.handle(message).await?;
                let (counter, total) = match outcome {
                    Outcome::Handled => (&self.inner.counters.handled, &mut summary.handled),
                    Outcome::Duplicate => (&self.inner.counters.duplicates, &mut summary.duplicates),
                    Outcome::Skipped => (&self.inner.counters.skipped, &mut summary.skipped),
                    Outcome::Dropped => (&self.inner.counters.dropped, &mut summary.dropped),
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *total += 1;
            }
            let Some(newest) = got.messages.last() else { break };
            let position = LastHash { hash: newest.hash.as_str().to_owned(), expires_ms: newest.expiry_ms };
            let node = got.node;
            self.inner.db.run(move |s| s.set_last_hash(&node, Namespace(0), &position)).await?;
            last.insert(node, newest.hash);
            if !got.more {
                break;
            }
        }
        if summary.fetched > 0 {
            tracing::debug!(?summary, "polled");
        }
        Ok(summary)
    }

    /// Decodes and applies one retrieved message, then emits its events and deletes what it
    /// asks to delete from our swarm.
    async fn handle(&self, message: &RetrievedMessage) -> Result<Outcome, ClientError> {
        let decoded = content::decode_incoming(&self.inner.identity, &message.data);
        let me = self.inner.id;
        let now = self.now();
        let hash = message.hash.as_str().to_owned();
        let expiry = message.expiry_ms;
        let applied =
            self.inner.db.run(move |s| s.transaction(|s| apply(s, &me, &hash, expiry, decoded, now))).await?;
        for event in applied.events {
            self.emit(event);
        }
        let hashes: Vec<MessageHash> = applied.delete.iter().filter_map(|h| h.parse().ok()).collect();
        if !hashes.is_empty()
            && let Err(e) = self.inner.net.delete(&self.inner.identity, &hashes).await
        {
            tracing::warn!(error = %e, "could not delete an unsent message from our swarm");
        }
        Ok(applied.outcome)
    }
}

/// Applies one message: records its hash as seen and does what it says, in the caller's
/// transaction.
fn apply(
    s: &Store,
    me: &SessionId,
    hash: &str,
    expiry: u64,
    decoded: Result<Incoming, IncomingError>,
    now: u64,
) -> Result<Applied, DbError> {
    if !s.mark_seen(hash, expiry)? {
        return Ok(Applied::just(Outcome::Duplicate));
    }
    let incoming = match decoded {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::debug!(error = %e, "skipping a message that does not decode");
            return Ok(Applied::just(Outcome::Skipped));
        }
    };
    let kind = match incoming.content {
        IncomingContent::Kind(kind) => kind,
        IncomingContent::Unsupported(what) => {
            tracing::debug!(?what, "skipping a message of a kind this client does not handle");
            return Ok(Applied::just(Outcome::Skipped));
        }
    };
    if incoming.sender == *me {
        return apply_own(s, me, hash, incoming.sent_ms, kind, now);
    }
    let sender = incoming.sender;
    let sent_ms = incoming.sent_ms;
    let contact = s.contact(&sender)?;
    if contact.as_ref().is_some_and(|c| c.blocked) {
        return Ok(Applied::just(Outcome::Dropped));
    }
    let mut out = Applied::just(Outcome::Handled);
    match kind {
        MessageKind::Text(text) => {
            let existing = s.conversation(&sender)?;
            let mut contact = s.contact_or_new(&sender, now)?;
            if let Some(name) = text.profile.and_then(|p| p.display_name) {
                contact.display_name = Some(name);
            }
            // Writing to us approves us.
            contact.approved_me = true;
            s.save_contact(&contact)?;
            let state =
                if contact.approved { ConversationState::Accepted } else { ConversationState::Request };
            let conversation = s.ensure_conversation(&sender, state, now)?;
            if existing.is_none() && conversation.state == ConversationState::Request {
                out.events.push(Event::Request { conversation: sender });
            }
            if already_expired(text.disappearing, sent_ms, now) {
                return Ok(out);
            }
            let stored = s.insert_message(&NewMessage {
                conversation: sender,
                author: sender,
                sent_ms,
                server_hash: Some(hash.to_owned()),
                body: text.body,
                direction: Direction::Incoming,
                state: MessageState::Received,
                disappearing: text.disappearing,
            })?;
            if let Some(id) = stored
                && let Some(message) = s.message(id)?
            {
                out.events.push(Event::Message { conversation: sender, message });
            }
        }
        MessageKind::ReadReceipt { timestamps } => {
            if s.conversation(&sender)?.is_none() {
                return Ok(Applied::just(Outcome::Dropped));
            }
            for ts in timestamps {
                if let Some(m) = s.find_message(&sender, me, ts)?
                    && m.direction == Direction::Outgoing
                    && matches!(m.state, MessageState::Sending | MessageState::Sent)
                {
                    s.set_message_state(m.id, MessageState::Read)?;
                    out.events.push(Event::DeliveryState {
                        conversation: sender,
                        message: m.id,
                        state: MessageState::Read,
                    });
                }
            }
        }
        MessageKind::Typing(action) => {
            if s.conversation(&sender)?.is_none() {
                return Ok(Applied::just(Outcome::Dropped));
            }
            out.events.push(Event::Typing {
                conversation: sender,
                started: action == content::TypingAction::Started,
            });
        }
        MessageKind::Unsend { timestamp, author } => {
            // Only the author may unsend.
            if author != sender {
                return Ok(Applied::just(Outcome::Dropped));
            }
            if let Some(m) = s.mark_unsent(&sender, &author, timestamp)?
                && !m.deleted
            {
                out.events.push(Event::Unsent { conversation: sender, message: m.id });
                out.delete.extend(m.server_hash);
            }
        }
        MessageKind::RequestResponse { approved, profile } => {
            let Some(conversation) = s.conversation(&sender)? else {
                return Ok(Applied::just(Outcome::Dropped));
            };
            if approved {
                let mut contact = s.contact_or_new(&sender, now)?;
                if let Some(name) = profile.and_then(|p| p.display_name) {
                    contact.display_name = Some(name);
                }
                contact.approved_me = true;
                s.save_contact(&contact)?;
                out.events.push(Event::Accepted { conversation: conversation.peer });
            }
        }
        MessageKind::DisappearingSettings { mode, .. } => {
            if s.conversation(&sender)?.is_none() {
                return Ok(Applied::just(Outcome::Dropped));
            }
            out.events.push(Event::PeerDisappearing { conversation: sender, mode });
        }
    }
    Ok(out)
}

/// A message from our own account: a sync copy from another device (or this one, before a
/// restore), or Note to Self.
fn apply_own(
    s: &Store,
    me: &SessionId,
    hash: &str,
    sent_ms: u64,
    kind: MessageKind,
    now: u64,
) -> Result<Applied, DbError> {
    let mut out = Applied::just(Outcome::Handled);
    match kind {
        MessageKind::Text(text) => {
            let target = text.sync_target.unwrap_or(*me);
            s.ensure_conversation(&target, ConversationState::Accepted, now)?;
            if target != *me {
                let mut contact = s.contact_or_new(&target, now)?;
                if !contact.approved {
                    contact.approved = true;
                    s.save_contact(&contact)?;
                }
            }
            if already_expired(text.disappearing, sent_ms, now) {
                return Ok(out);
            }
            let stored = s.insert_message(&NewMessage {
                conversation: target,
                author: *me,
                sent_ms,
                server_hash: Some(hash.to_owned()),
                body: text.body,
                direction: Direction::Outgoing,
                state: MessageState::Sent,
                disappearing: text.disappearing,
            })?;
            if let Some(id) = stored
                && let Some(message) = s.message(id)?
            {
                out.events.push(Event::Message { conversation: target, message });
            }
        }
        MessageKind::Unsend { timestamp, author } => {
            if author != *me {
                return Ok(Applied::just(Outcome::Dropped));
            }
            if let Some(m) = s.find_message_by_author(me, timestamp)?
                && !m.deleted
                && s.mark_unsent(&m.conversation, me, timestamp)?.is_some()
            {
                out.events.push(Event::Unsent { conversation: m.conversation, message: m.id });
            }
        }
        MessageKind::DisappearingSettings { mode, sync_target } => {
            let target = sync_target.unwrap_or(*me);
            if s.conversation(&target)?.is_some() {
                s.set_disappearing(&target, mode)?;
            }
        }
        // Receipts, typing and request responses are never sent to ourselves.
        MessageKind::ReadReceipt { .. } | MessageKind::Typing(_) | MessageKind::RequestResponse { .. } => {}
    }
    Ok(out)
}

/// An after-send message whose timer ran out before it arrived is not stored.
fn already_expired(mode: DisappearingMode, sent_ms: u64, now: u64) -> bool {
    match mode {
        DisappearingMode::AfterSend { seconds } => sent_ms.saturating_add(u64::from(seconds) * 1000) <= now,
        _ => false,
    }
}
