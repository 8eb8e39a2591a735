//! The chat's state, without I/O: keys and client events go in, [`Action`]s for the runner come
//! out. Everything here is plain data, so tests drive it directly.

use std::cell::Cell;
use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use session_client::client::{Event, TYPING_TTL};
use session_client::content::DisappearingMode;
use session_client::db::{
    Contact, Conversation, ConversationKind, ConversationState, Direction, Message, MessageId, MessageState,
};
use session_protocol::SessionId;

use super::command::{self, Command};

/// How many messages of the open conversation are loaded.
pub const MESSAGE_LIMIT: u32 = 500;

/// The conversation list is reloaded every this many ticks (names and activity change with
/// messages we do not see as events, e.g. a profile name).
const RELOAD_EVERY_TICKS: u64 = 20;

/// Lines one PageUp/PageDown scrolls.
const PAGE: usize = 10;

/// While we keep typing, the typing indicator is sent again this often (ms), well within the
/// time a receiver shows it ([`TYPING_TTL`]).
pub const TYPING_REFRESH_MS: u64 = 10_000;

/// Something the runner does against the client for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Reload the conversation list and contacts ([`App::set_conversations`]).
    LoadConversations,
    /// Load the messages of this conversation ([`App::set_messages`]).
    LoadMessages(SessionId),
    /// Mark the conversation read.
    MarkRead(SessionId),
    /// Send a text message (in a task of its own).
    Send {
        /// The recipient.
        to: SessionId,
        /// The text.
        text: String,
    },
    /// Accept the message request.
    Accept(SessionId),
    /// Decline (delete) the message request.
    Decline(SessionId),
    /// Block the peer.
    Block(SessionId),
    /// Unblock the peer.
    Unblock(SessionId),
    /// Send our failed messages of this conversation again.
    Resend(SessionId),
    /// Tell the peer we started or stopped typing (the client sends it only if the typing
    /// indicators setting is on).
    Typing {
        /// The peer.
        to: SessionId,
        /// Started (true) or stopped.
        started: bool,
    },
    /// Unsend one of our messages.
    Unsend(MessageId),
    /// Set our disappearing-messages setting for the conversation.
    SetDisappearing {
        /// The conversation.
        peer: SessionId,
        /// The new setting.
        mode: DisappearingMode,
    },
    /// Set our display name.
    SetDisplayName(String),
    /// Turn a setting on or off.
    SetSetting(command::Setting, bool),
    /// Leave the chat.
    Quit,
}

/// What the runner reports back after an [`Action`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The conversation list and the contacts (for names and blocked flags).
    Conversations(Vec<Conversation>, Vec<Contact>),
    /// The messages of a conversation, oldest first.
    Messages(SessionId, Vec<Message>),
    /// Something done, to show in the status line.
    Info(String),
    /// Something failed, to show in the status line.
    Error(String),
}

/// Which part of the screen gets the keys that are not global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The conversation list.
    List,
    /// The input line.
    Input,
}

/// One line of the conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The peer (ours for Note to Self).
    pub peer: SessionId,
    /// Nickname or display name, when known.
    pub name: Option<String>,
    /// Direct or Note to Self.
    pub kind: ConversationKind,
    /// Request or accepted.
    pub state: ConversationState,
    /// Incoming messages not read.
    pub unread: u64,
    /// Our disappearing setting.
    pub disappearing: DisappearingMode,
    /// Newest activity (ms), for the order.
    pub last_activity_ms: u64,
    /// Opened with `/new` and not yet stored: the first message creates it.
    pub draft: bool,
}

impl Entry {
    /// What the list shows for this conversation.
    pub fn label(&self) -> String {
        match (self.kind, &self.name) {
            (ConversationKind::NoteToSelf, _) => "Note to Self".to_owned(),
            (_, Some(name)) => name.clone(),
            (_, None) => self.peer.short(),
        }
    }

    fn draft(peer: SessionId, me: SessionId) -> Self {
        Self {
            peer,
            name: None,
            kind: if peer == me { ConversationKind::NoteToSelf } else { ConversationKind::Direct },
            state: ConversationState::Accepted,
            unread: 0,
            disappearing: DisappearingMode::Off,
            last_activity_ms: u64::MAX,
            draft: true,
        }
    }
}

/// A line in the status bar: information or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// An error (shown in red).
    pub error: bool,
}

/// The chat's whole state.
#[derive(Debug)]
pub struct App {
    me: SessionId,
    /// Accepted conversations first (newest activity first), then requests.
    entries: Vec<Entry>,
    /// Contacts by Session ID (names, blocked).
    contacts: HashMap<SessionId, Contact>,
    selected: Option<SessionId>,
    /// Messages of the selected conversation, oldest first.
    messages: Vec<Message>,
    focus: Focus,
    input: String,
    /// Lines scrolled up from the bottom of the message pane.
    scroll: usize,
    /// How far the message pane can scroll, as of the last draw (the app does not know the
    /// pane's size or line wrapping; the renderer tells it).
    scroll_limit: Cell<usize>,
    notice: Option<Notice>,
    /// Peers typing, until when (ms).
    typing: HashMap<SessionId, u64>,
    /// The peer we last told we are typing, and when (ms).
    typing_sent: Option<(SessionId, u64)>,
    /// The peer's disappearing setting when it differs from ours (told by an event).
    peer_disappearing: HashMap<SessionId, DisappearingMode>,
    now_ms: u64,
    /// The zone message times are shown in.
    time_zone: jiff::tz::TimeZone,
    ticks: u64,
    network: String,
    help: bool,
    quit: bool,
}

impl App {
    /// A new app for the account `me`, opening `open` (a conversation or a new one) if given.
    /// Returns the actions that load the first state.
    pub fn new(me: SessionId, open: Option<SessionId>) -> (Self, Vec<Action>) {
        let mut app = Self {
            me,
            entries: Vec::new(),
            contacts: HashMap::new(),
            selected: None,
            messages: Vec::new(),
            focus: Focus::List,
            input: String::new(),
            scroll: 0,
            scroll_limit: Cell::new(usize::MAX),
            notice: None,
            typing: HashMap::new(),
            typing_sent: None,
            peer_disappearing: HashMap::new(),
            now_ms: 0,
            time_zone: jiff::tz::TimeZone::UTC,
            ticks: 0,
            network: "connecting".to_owned(),
            help: false,
            quit: false,
        };
        if let Some(peer) = open {
            // A draft until the list says it exists (then it is loaded: `set_conversations`).
            app.entries.push(Entry::draft(peer, me));
            app.selected = Some(peer);
            app.focus = Focus::Input;
        }
        (app, vec![Action::LoadConversations])
    }

    // ---- read access (rendering, tests) ----

    /// Our Session ID.
    pub fn me(&self) -> SessionId {
        self.me
    }

    /// The conversation list, in display order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The selected conversation.
    pub fn selected(&self) -> Option<SessionId> {
        self.selected
    }

    /// The selected conversation's list entry.
    pub fn selected_entry(&self) -> Option<&Entry> {
        let peer = self.selected?;
        self.entries.iter().find(|e| e.peer == peer)
    }

    /// Messages of the selected conversation, oldest first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Which part has the focus.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// The input line.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Lines scrolled up from the bottom of the message pane.
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// The renderer tells how far the message pane can scroll (lines above the visible ones).
    pub fn set_scroll_limit(&self, limit: usize) {
        self.scroll_limit.set(limit);
    }

    /// The status-line notice, if any.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    /// The network state text.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The current time (ms) as last told by [`App::tick`].
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The zone message times are shown in (UTC unless [`App::set_time_zone`]).
    pub fn time_zone(&self) -> &jiff::tz::TimeZone {
        &self.time_zone
    }

    /// Shows message times in `zone` (the runner sets the local one).
    pub fn set_time_zone(&mut self, zone: jiff::tz::TimeZone) {
        self.time_zone = zone;
    }

    /// Whether the help is shown.
    pub fn help_shown(&self) -> bool {
        self.help
    }

    /// Whether the user asked to leave.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether the peer of the selected conversation is typing.
    pub fn peer_typing(&self) -> bool {
        self.selected.and_then(|p| self.typing.get(&p)).is_some_and(|until| *until > self.now_ms)
    }

    /// The peer's disappearing setting for the selected conversation, when it told us one that
    /// differs from ours.
    pub fn peer_disappearing(&self) -> Option<DisappearingMode> {
        let peer = self.selected?;
        let ours = self.selected_entry().map(|e| e.disappearing);
        self.peer_disappearing.get(&peer).copied().filter(|m| Some(*m) != ours)
    }

    /// The name to show for an author.
    pub fn author_name(&self, author: &SessionId) -> String {
        if *author == self.me {
            return "me".to_owned();
        }
        self.contacts
            .get(author)
            .and_then(|c| c.nickname.clone().or_else(|| c.display_name.clone()))
            .unwrap_or_else(|| author.short())
    }

    // ---- state from the runner ----

    /// Replaces the conversation list (blocked peers are hidden). Keeps the selection when it
    /// still exists, else selects the first conversation.
    pub fn set_conversations(
        &mut self,
        conversations: Vec<Conversation>,
        contacts: Vec<Contact>,
    ) -> Vec<Action> {
        self.contacts = contacts.into_iter().map(|c| (c.session_id, c)).collect();
        let selected_was_draft = self.selected_entry().is_some_and(|e| e.draft);
        let drafts: Vec<Entry> = self
            .entries
            .drain(..)
            .filter(|e| e.draft && !conversations.iter().any(|c| c.peer == e.peer))
            .collect();
        let mut entries: Vec<Entry> = conversations
            .into_iter()
            .filter(|c| !self.contacts.get(&c.peer).is_some_and(|k| k.blocked))
            .map(|c| Entry {
                peer: c.peer,
                name: self
                    .contacts
                    .get(&c.peer)
                    .and_then(|k| k.nickname.clone().or_else(|| k.display_name.clone())),
                kind: c.kind,
                state: c.state,
                unread: c.unread,
                disappearing: c.disappearing,
                last_activity_ms: c.last_activity_ms,
                draft: false,
            })
            .collect();
        entries.extend(drafts);
        self.entries = entries;
        self.sort_entries();
        let mut actions = Vec::new();
        match self.selected {
            Some(peer) if self.entries.iter().any(|e| e.peer == peer) => {
                if selected_was_draft && self.selected_entry().is_some_and(|e| !e.draft) {
                    // The draft was stored (first message sent, or it existed): load it.
                    actions.push(Action::LoadMessages(peer));
                }
                // The open conversation is read.
                if let Some(entry) = self.entries.iter_mut().find(|e| e.peer == peer)
                    && entry.unread > 0
                {
                    entry.unread = 0;
                    actions.push(Action::MarkRead(peer));
                }
            }
            _ => {
                self.selected = None;
                self.messages.clear();
                if let Some(first) = self.entries.first().map(|e| e.peer) {
                    actions.extend(self.select(first));
                }
            }
        }
        actions
    }

    /// Replaces the messages of `peer` (ignored unless it is the selected conversation). Messages
    /// shown that are newer than everything loaded stay: they came as events after the load read
    /// the database.
    pub fn set_messages(&mut self, peer: SessionId, messages: Vec<Message>) {
        if self.selected != Some(peer) {
            return;
        }
        let newest = messages.iter().map(|m| m.id).max();
        let newer: Vec<Message> =
            self.messages.drain(..).filter(|m| newest.is_none_or(|n| m.id > n)).collect();
        self.messages = messages;
        for message in newer {
            self.upsert_message(message);
        }
    }

    /// Shows what an action did.
    pub fn apply_outcome(&mut self, outcome: Outcome) -> Vec<Action> {
        match outcome {
            Outcome::Conversations(conversations, contacts) => {
                return self.set_conversations(conversations, contacts);
            }
            Outcome::Messages(peer, messages) => self.set_messages(peer, messages),
            Outcome::Info(text) => self.notice = Some(Notice { text, error: false }),
            Outcome::Error(text) => self.notice = Some(Notice { text, error: true }),
        }
        Vec::new()
    }

    /// Sets the network state text.
    pub fn set_network(&mut self, text: impl Into<String>) {
        self.network = text.into();
    }

    /// The clock moved on (network time, ms): typing indicators run out, and now and then the
    /// conversation list is reloaded.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        self.typing.retain(|_, until| *until > now_ms);
        self.ticks += 1;
        if self.ticks.is_multiple_of(RELOAD_EVERY_TICKS) {
            vec![Action::LoadConversations]
        } else {
            Vec::new()
        }
    }

    /// The client's events may have been missed (a lagging subscriber): reload everything.
    pub fn resync(&self) -> Vec<Action> {
        let mut actions = vec![Action::LoadConversations];
        if let Some(peer) = self.selected {
            actions.push(Action::LoadMessages(peer));
        }
        actions
    }

    /// Applies a client event.
    pub fn apply(&mut self, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Message { conversation, message } => {
                let incoming = message.direction == Direction::Incoming && !message.deleted;
                if incoming {
                    // A message ends the peer's typing.
                    self.typing.remove(&conversation);
                }
                let known = match self.entries.iter_mut().find(|e| e.peer == conversation) {
                    Some(entry) => {
                        entry.last_activity_ms = entry.last_activity_ms.max(message.sent_ms);
                        if entry.draft {
                            // Stored now: reload to get the real conversation.
                            actions.push(Action::LoadConversations);
                        }
                        if incoming && self.selected != Some(conversation) {
                            entry.unread += 1;
                        }
                        true
                    }
                    None => false,
                };
                // A new conversation, or a sender whose name we do not know yet (the message
                // may have brought it): reload the list and contacts.
                let nameless = !self
                    .contacts
                    .get(&message.author)
                    .is_some_and(|c| c.display_name.is_some() || c.nickname.is_some());
                if (!known || (incoming && nameless)) && !actions.contains(&Action::LoadConversations) {
                    actions.push(Action::LoadConversations);
                }
                if self.selected == Some(conversation) {
                    self.upsert_message(message);
                    if incoming {
                        actions.push(Action::MarkRead(conversation));
                    }
                }
                self.sort_entries();
            }
            Event::Request { .. } => actions.push(Action::LoadConversations),
            Event::Accepted { conversation } => {
                self.notice = Some(Notice {
                    text: format!("{} accepted your request", self.peer_label(&conversation)),
                    error: false,
                });
                actions.push(Action::LoadConversations);
            }
            Event::DeliveryState { conversation, message, state } => {
                if self.selected == Some(conversation)
                    && let Some(m) = self.messages.iter_mut().find(|m| m.id == message)
                {
                    m.state = state;
                }
                if state == MessageState::Failed {
                    self.notice = Some(Notice {
                        text: format!("a message to {} was not delivered", self.peer_label(&conversation)),
                        error: true,
                    });
                }
            }
            Event::Typing { conversation, started } => {
                if started {
                    let ms = u64::try_from(TYPING_TTL.as_millis()).unwrap_or(u64::MAX);
                    self.typing.insert(conversation, self.now_ms.saturating_add(ms));
                } else {
                    self.typing.remove(&conversation);
                }
            }
            Event::Unsent { conversation, message } => {
                if self.selected == Some(conversation)
                    && let Some(m) = self.messages.iter_mut().find(|m| m.id == message)
                {
                    m.body = None;
                    m.deleted = true;
                }
            }
            Event::Expired { conversation, message } if self.selected == Some(conversation) => {
                self.messages.retain(|m| m.id != message);
            }
            Event::PeerDisappearing { conversation, mode } => {
                self.peer_disappearing.insert(conversation, mode);
                self.notice = Some(Notice {
                    text: format!(
                        "{} set disappearing messages to {} (yours stays; /disappear to change it)",
                        self.peer_label(&conversation),
                        describe_mode(mode)
                    ),
                    error: false,
                });
            }
            // Events this version of the chat does not know.
            _ => {}
        }
        actions
    }

    // ---- keys ----

    /// Handles a key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let mut actions = self.handle_key_inner(key);
        if !self.quit {
            actions.extend(self.typing_update());
        }
        actions
    }

    fn handle_key_inner(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return self.quit(),
            KeyCode::Esc if self.help => {
                self.help = false;
                return Vec::new();
            }
            KeyCode::Esc => return self.quit(),
            KeyCode::Up => return self.move_selection(-1),
            KeyCode::Down => return self.move_selection(1),
            KeyCode::Char('p') if ctrl => return self.move_selection(-1),
            KeyCode::Char('n') if ctrl => return self.move_selection(1),
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_add(PAGE).min(self.scroll_limit.get());
                return Vec::new();
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(PAGE);
                return Vec::new();
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::List => Focus::Input,
                    Focus::Input => Focus::List,
                };
                return Vec::new();
            }
            _ => {}
        }
        match self.focus {
            Focus::List => match key.code {
                KeyCode::Char('k') if !ctrl => self.move_selection(-1),
                KeyCode::Char('j') if !ctrl => self.move_selection(1),
                KeyCode::Enter => {
                    self.focus = Focus::Input;
                    Vec::new()
                }
                KeyCode::Char(c) if !ctrl => {
                    // Typing starts writing.
                    self.focus = Focus::Input;
                    self.input.push(c);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Focus::Input => match key.code {
                KeyCode::Enter => self.submit(),
                KeyCode::Backspace => {
                    self.input.pop();
                    Vec::new()
                }
                KeyCode::Char('u') if ctrl => {
                    self.input.clear();
                    Vec::new()
                }
                KeyCode::Char(c) if !ctrl => {
                    self.input.push(c);
                    Vec::new()
                }
                _ => Vec::new(),
            },
        }
    }

    /// Typed text (a paste): appended to the input line, line breaks as spaces.
    pub fn paste(&mut self, text: &str) -> Vec<Action> {
        self.focus = Focus::Input;
        self.input.extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
        self.typing_update()
    }

    /// Typing indicators for what the input line now holds: "started" when we begin writing a
    /// message in an accepted 1:1 conversation (again every [`TYPING_REFRESH_MS`] while we go
    /// on), "stopped" when the line is emptied or we move to another conversation. A sent
    /// message ends it by itself at the peer.
    fn typing_update(&mut self) -> Vec<Action> {
        let composing = self.selected_entry().filter(|e| {
            !e.draft
                && e.kind == ConversationKind::Direct
                && e.state == ConversationState::Accepted
                && !self.input.trim().is_empty()
                && !self.input.starts_with('/')
        });
        let mut actions = Vec::new();
        match (composing.map(|e| e.peer), self.typing_sent) {
            (Some(peer), Some((sent_to, at)))
                if sent_to == peer && self.now_ms.saturating_sub(at) < TYPING_REFRESH_MS => {}
            (Some(peer), previous) => {
                if let Some((other, _)) = previous.filter(|(other, _)| *other != peer) {
                    actions.push(Action::Typing { to: other, started: false });
                }
                self.typing_sent = Some((peer, self.now_ms));
                actions.push(Action::Typing { to: peer, started: true });
            }
            (None, Some((sent_to, _))) => {
                self.typing_sent = None;
                actions.push(Action::Typing { to: sent_to, started: false });
            }
            (None, None) => {}
        }
        actions
    }

    fn quit(&mut self) -> Vec<Action> {
        self.quit = true;
        vec![Action::Quit]
    }

    fn move_selection(&mut self, delta: isize) -> Vec<Action> {
        if self.entries.is_empty() {
            return Vec::new();
        }
        let current = self.selected.and_then(|p| self.entries.iter().position(|e| e.peer == p));
        let next = match current {
            None => 0,
            Some(i) => i.saturating_add_signed(delta).min(self.entries.len() - 1),
        };
        if Some(next) == current {
            return Vec::new();
        }
        let peer = self.entries[next].peer;
        self.select(peer)
    }

    /// Opens `peer`'s conversation: loads it, marks it read.
    fn select(&mut self, peer: SessionId) -> Vec<Action> {
        self.selected = Some(peer);
        self.messages.clear();
        self.scroll = 0;
        let mut actions = Vec::new();
        if let Some(entry) = self.entries.iter_mut().find(|e| e.peer == peer) {
            if entry.draft {
                return actions;
            }
            actions.push(Action::LoadMessages(peer));
            if entry.unread > 0 {
                entry.unread = 0;
                actions.push(Action::MarkRead(peer));
            }
        }
        actions
    }

    /// Enter in the input line: a slash command, or a message to the selected conversation.
    fn submit(&mut self) -> Vec<Action> {
        let line = self.input.trim().to_owned();
        if line.is_empty() {
            return Vec::new();
        }
        if line.starts_with('/') {
            let actions = match command::parse(&line) {
                Ok(cmd) => self.run_command(cmd),
                Err(e) => Err(e.to_string()),
            };
            return match actions {
                Ok(actions) => {
                    self.input.clear();
                    actions
                }
                Err(text) => {
                    // The line stays, so it can be corrected.
                    self.notice = Some(Notice { text, error: true });
                    Vec::new()
                }
            };
        }
        let Some(to) = self.selected else {
            self.notice =
                Some(Notice { text: "no conversation selected (/new SESSION_ID)".to_owned(), error: true });
            return Vec::new();
        };
        self.input.clear();
        self.scroll = 0;
        if self.typing_sent.is_some_and(|(peer, _)| peer == to) {
            // The message ends our typing at the peer.
            self.typing_sent = None;
        }
        vec![Action::Send { to, text: line }]
    }

    fn run_command(&mut self, cmd: Command) -> Result<Vec<Action>, String> {
        match cmd {
            Command::Help => {
                self.help = !self.help;
                Ok(Vec::new())
            }
            Command::New(peer) => {
                if self.contacts.get(&peer).is_some_and(|c| c.blocked) {
                    return Err(format!("{} is blocked", peer.short()));
                }
                if !self.entries.iter().any(|e| e.peer == peer) {
                    self.entries.insert(0, Entry::draft(peer, self.me));
                }
                self.focus = Focus::Input;
                self.notice =
                    Some(Notice { text: format!("conversation with {}", peer.short()), error: false });
                Ok(self.select(peer))
            }
            Command::Name(name) => Ok(vec![Action::SetDisplayName(name)]),
            Command::Setting(setting, on) => Ok(vec![Action::SetSetting(setting, on)]),
            Command::Accept => {
                let entry = self.selected_entry().ok_or("no conversation selected")?;
                if entry.state != ConversationState::Request {
                    return Err("this conversation is not a message request".to_owned());
                }
                Ok(vec![Action::Accept(entry.peer)])
            }
            Command::Decline => {
                let entry = self.selected_entry().ok_or("no conversation selected")?;
                if entry.state != ConversationState::Request {
                    return Err("this conversation is not a message request (/block to stop it)".to_owned());
                }
                Ok(vec![Action::Decline(entry.peer)])
            }
            Command::Block => {
                let entry = self.selected_entry().ok_or("no conversation selected")?;
                if entry.kind == ConversationKind::NoteToSelf {
                    return Err("cannot block yourself".to_owned());
                }
                Ok(vec![Action::Block(entry.peer)])
            }
            Command::Unblock(None) => {
                let mut blocked: Vec<String> = self
                    .contacts
                    .values()
                    .filter(|c| c.blocked)
                    .map(|c| {
                        c.nickname
                            .clone()
                            .or_else(|| c.display_name.clone())
                            .unwrap_or_else(|| c.session_id.short())
                    })
                    .collect();
                if blocked.is_empty() {
                    return Err("nobody is blocked".to_owned());
                }
                blocked.sort();
                self.notice = Some(Notice {
                    text: format!("blocked: {} (/unblock NAME or SESSION_ID)", blocked.join(", ")),
                    error: false,
                });
                Ok(Vec::new())
            }
            Command::Unblock(Some(who)) => {
                let peer = self.blocked_contact(&who)?;
                Ok(vec![Action::Unblock(peer)])
            }
            Command::Retry => {
                let peer = self.selected.ok_or("no conversation selected")?;
                if !self.messages.iter().any(Message::can_resend) {
                    return Err("no failed message here".to_owned());
                }
                Ok(vec![Action::Resend(peer)])
            }
            Command::Unsend => {
                self.selected.ok_or("no conversation selected")?;
                let last = self
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.author == self.me && !m.deleted)
                    .ok_or("no message of ours to unsend here")?;
                if last.state == MessageState::Sending {
                    return Err("the last message is still being sent".to_owned());
                }
                Ok(vec![Action::Unsend(last.id)])
            }
            Command::Disappear(mode) => {
                let entry = self.selected_entry().ok_or("no conversation selected")?;
                if entry.draft {
                    return Err("send a first message before setting disappearing messages".to_owned());
                }
                Ok(vec![Action::SetDisappearing { peer: entry.peer, mode }])
            }
        }
    }

    // ---- helpers ----

    /// The blocked contact named `who`: a Session ID, or a name (nickname or display name,
    /// case-insensitive) that only one blocked contact has.
    fn blocked_contact(&self, who: &str) -> Result<SessionId, String> {
        let blocked = self.contacts.values().filter(|c| c.blocked);
        if let Ok(id) = who.parse::<SessionId>() {
            return blocked
                .map(|c| c.session_id)
                .find(|p| *p == id)
                .ok_or_else(|| format!("{} is not blocked", id.short()));
        }
        let named = |c: &&Contact| {
            [&c.nickname, &c.display_name].into_iter().flatten().any(|n| n.eq_ignore_ascii_case(who))
        };
        let matches: Vec<SessionId> = blocked.filter(named).map(|c| c.session_id).collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("no blocked contact named {who:?} (/unblock lists them)")),
            _ => Err(format!("{} blocked contacts are named {who:?}: use the Session ID", matches.len())),
        }
    }

    fn upsert_message(&mut self, message: Message) {
        match self.messages.iter_mut().find(|m| m.id == message.id) {
            Some(existing) => *existing = message,
            None => {
                let at =
                    self.messages.partition_point(|m| (m.sent_ms, m.id) <= (message.sent_ms, message.id));
                self.messages.insert(at, message);
            }
        }
    }

    fn sort_entries(&mut self) {
        // Accepted before requests, then newest activity first; stable for equal keys.
        self.entries
            .sort_by_key(|e| (e.state == ConversationState::Request, std::cmp::Reverse(e.last_activity_ms)));
    }

    fn peer_label(&self, peer: &SessionId) -> String {
        self.entries.iter().find(|e| e.peer == *peer).map(Entry::label).unwrap_or_else(|| peer.short())
    }
}

/// A disappearing setting in words: "off", "5m after send", "1h after read".
pub fn describe_mode(mode: DisappearingMode) -> String {
    match mode {
        DisappearingMode::Off => "off".to_owned(),
        DisappearingMode::AfterSend { seconds } => {
            format!("{} after send", command::format_duration(seconds))
        }
        DisappearingMode::AfterRead { seconds } => {
            format!("{} after read", command::format_duration(seconds))
        }
    }
}
