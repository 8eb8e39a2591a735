//! The account and messaging commands: `init`, `restore`, `id`, `send`, `sync`, `watch`,
//! `conversations`, `messages`, `requests`, `contacts`.
//!
//! Each command returns an [`Output`]: a JSON document (printed with `--json`) and the same
//! data as text. Commands that only read or edit local data open the database alone
//! ([`context::open_db`]), so they work without a network; the others connect
//! ([`context::open_client`]).

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};
use session_client::client::Event;
use session_client::db::{
    Contact, Conversation, ConversationKind, ConversationState, Db, DbError, Direction, Message, MessageState,
};
use session_client::{Client, ClientError};
use session_protocol::id::{IdPrefix, SessionId};
use session_protocol::mnemonic;
use tokio::sync::broadcast::error::RecvError;

use crate::context::{self, CliError, Global};
use crate::resolve;

/// What a command printed: JSON for `--json`, text otherwise; and a failure to report after
/// printing it (a message that was stored but not delivered).
#[derive(Debug)]
pub struct Output {
    /// The JSON document.
    pub json: Value,
    /// The same, for people (may be empty).
    pub text: String,
    /// The command printed its result but failed.
    pub failure: Option<CliError>,
}

impl Output {
    fn new(json: Value, text: impl Into<String>) -> Self {
        Self { json, text: text.into(), failure: None }
    }
}

/// Most rounds of `poll_once` in one `session sync`.
const MAX_SYNC_ROUNDS: usize = 20;

/// The commands that need an account.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create a new account: prints its Session ID and its recovery password (once).
    Init {
        /// Your display name, sent with your messages.
        #[arg(long)]
        name: Option<String>,
    },
    /// Restore an account from its recovery password (13 or 25 words; read from stdin unless
    /// --phrase is given).
    Restore {
        /// The recovery password (prefer stdin: arguments show up in process lists and shell
        /// history).
        #[arg(long)]
        phrase: Option<String>,
        /// Your display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print your Session ID.
    Id,
    /// Send a text message.
    Send {
        /// The recipient: a Session ID (05…, 66 hex characters) or a contact's name.
        to: String,
        /// The text (several words are joined with spaces; put `--` before a text that starts
        /// with `-`).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Fetch new messages once and print them.
    Sync,
    /// Print new messages and requests as they arrive, until Ctrl-C.
    Watch {
        /// Seconds between polls.
        #[arg(long, default_value_t = 3)]
        interval: u64,
    },
    /// List conversations, newest first.
    Conversations,
    /// Show the messages of a conversation, oldest first.
    Messages {
        /// The peer: a Session ID or a contact's name.
        who: String,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Leave unread messages unread (by default, showing them marks them read: that starts
        /// after-read disappearing timers and sends a read receipt if you turned those on).
        #[arg(long)]
        peek: bool,
    },
    /// Send your failed messages to someone again (`messages` marks them `[failed]`).
    Resend {
        /// The recipient: a Session ID or a contact's name.
        who: String,
    },
    /// List message requests, or accept or decline one.
    Requests {
        /// Accept or decline (no subcommand: list them).
        #[command(subcommand)]
        action: Option<RequestAction>,
    },
    /// List contacts, or add, rename, block or unblock one.
    Contacts {
        /// What to do (no subcommand: list them).
        #[command(subcommand)]
        action: Option<ContactAction>,
    },
    /// Show your settings, or change them: read receipts and typing indicators (both off until
    /// you turn them on), your display name.
    Settings {
        /// Send read receipts when you read messages.
        #[arg(long, value_name = "on|off")]
        read_receipts: Option<Toggle>,
        /// Tell people when you are typing to them (in `session chat`).
        #[arg(long, value_name = "on|off")]
        typing_indicators: Option<Toggle>,
        /// Your display name, sent with your next messages.
        #[arg(long)]
        name: Option<String>,
    },
    /// The chat screen: conversations, messages, an input line (`/help` inside lists the keys
    /// and commands; Esc or Ctrl-C quits).
    Chat {
        /// Open this conversation first: a Session ID or a contact's name.
        who: Option<String>,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Toggle {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

/// `session requests …`.
#[derive(Debug, Subcommand)]
pub enum RequestAction {
    /// Accept a request: the conversation moves to your conversations and the sender is told.
    Accept {
        /// The sender: a Session ID or name.
        who: String,
    },
    /// Decline a request: deletes it and its messages (the sender is not told).
    Decline {
        /// The sender: a Session ID or name.
        who: String,
    },
}

/// `session contacts …`.
#[derive(Debug, Subcommand)]
pub enum ContactAction {
    /// Add someone by Session ID (approves them: their messages skip the requests inbox).
    Add {
        /// Their Session ID.
        id: String,
        /// Your name for them.
        #[arg(long)]
        name: Option<String>,
    },
    /// Give a contact your own name for them.
    Rename {
        /// The contact: a Session ID or name.
        who: String,
        /// The new name.
        name: String,
    },
    /// Block a contact: their messages are dropped.
    Block {
        /// The contact: a Session ID or name.
        who: String,
    },
    /// Unblock a contact.
    Unblock {
        /// The contact: a Session ID or name.
        who: String,
    },
}

/// Runs an account command.
pub async fn run(global: &Global, command: AccountCommand) -> Result<Output, CliError> {
    match command {
        AccountCommand::Init { name } => init(global, name.as_deref()).await,
        AccountCommand::Restore { phrase, name } => restore(global, phrase, name.as_deref()).await,
        AccountCommand::Id => id(global).await,
        AccountCommand::Send { to, text } => send(global, &to, &text.join(" ")).await,
        AccountCommand::Sync => sync(global).await,
        AccountCommand::Watch { interval } => watch(global, Duration::from_secs(interval.max(1))).await,
        AccountCommand::Conversations => conversations(global).await,
        AccountCommand::Messages { who, limit, peek } => messages(global, &who, limit, peek).await,
        AccountCommand::Resend { who } => resend(global, &who).await,
        AccountCommand::Requests { action: None } => requests(global).await,
        AccountCommand::Requests { action: Some(RequestAction::Accept { who }) } => {
            accept(global, &who).await
        }
        AccountCommand::Requests { action: Some(RequestAction::Decline { who }) } => {
            decline(global, &who).await
        }
        AccountCommand::Contacts { action: None } => contacts(global).await,
        AccountCommand::Contacts { action: Some(action) } => edit_contact(global, action).await,
        AccountCommand::Chat { who } => chat(global, who.as_deref()).await,
        AccountCommand::Settings { read_receipts, typing_indicators, name } => {
            settings(global, read_receipts, typing_indicators, name).await
        }
    }
}

/// `session chat [WHO]`: resolves WHO, connects, and hands the terminal to the chat screen.
async fn chat(global: &Global, who: Option<&str>) -> Result<Output, CliError> {
    if global.json {
        return Err(CliError::Usage("`session chat` is interactive; --json does not apply".into()));
    }
    let dir = global.data_dir()?;
    let open = match who {
        Some(who) => {
            let (_, db) = context::open_db(global).await?;
            Some(resolve::recipient(who, &all_contacts(&dir, &db).await?)?)
        }
        None => None,
    };
    let client = context::open_client(global).await?;
    crate::chat::run(client.clone(), open).await.map_err(|e| CliError::Other(format!("chat: {e}")))?;
    let _ = client.save_pool().await;
    Ok(Output::new(Value::Null, ""))
}

// ---- account ----

/// Creates (`phrase` = `None`) or restores an account, with the network checked first so a
/// failure leaves no half-made account behind. Saves the network in `config.toml`.
async fn new_account(
    global: &Global,
    phrase: Option<&str>,
    name: Option<&str>,
) -> Result<(Client, Option<mnemonic::Phrase>, context::Network), CliError> {
    let dir = global.data_dir()?;
    if context::has_account(&dir) {
        return Err(CliError::AccountExists(dir));
    }
    let network = global.network()?;
    // Reach the network before writing anything.
    let net = session_client::Network::bootstrap(network.config())
        .await
        .map_err(|e| CliError::from_network(Some(&network), e))?;
    let mut config = network.config();
    config.pool = Some(net.pool_snapshot());
    drop(net);
    let result = match phrase {
        None => Client::create(&dir, context::key_source(), config, name).await.map(|(c, p)| (c, Some(p))),
        Some(phrase) => Client::restore(&dir, context::key_source(), config, phrase).await.map(|c| (c, None)),
    };
    let (client, phrase) = match result {
        Ok(made) => made,
        Err(e) => {
            let e = CliError::from_client(&dir, Some(&network), e);
            if !matches!(e, CliError::AccountExists(_) | CliError::Locked(_)) {
                context::remove_partial_account(&dir);
            }
            return Err(e);
        }
    };
    let mut saved = context::load_config(&dir).unwrap_or_default();
    saved.network = Some(network.spec.clone());
    context::save_config(&dir, &saved)?;
    Ok((client, phrase, network))
}

async fn init(global: &Global, name: Option<&str>) -> Result<Output, CliError> {
    let (client, phrase, network) = new_account(global, None, name).await?;
    let phrase = phrase.ok_or_else(|| CliError::Other("no recovery password was made".into()))?;
    let words = phrase.to_text();
    let id = client.session_id();
    let dir = global.data_dir()?;
    let text = format!(
        "Account created in {}\nSession ID:         {id}\nRecovery password:  {}\n\n\
         Write these {} words down and keep them somewhere safe: they are the only way to get \
         this account back, and they will not be shown again. Anyone who has them can read your \
         messages.\n",
        dir.display(),
        words.as_str(),
        phrase.word_count(),
    );
    let json = json!({
        "session_id": id.to_hex(),
        "display_name": name,
        "recovery_password": words.as_str(),
        "data_dir": dir.display().to_string(),
        "network": network.spec,
    });
    Ok(Output::new(json, text))
}

async fn restore(global: &Global, phrase: Option<String>, name: Option<&str>) -> Result<Output, CliError> {
    let phrase = zeroize::Zeroizing::new(match phrase {
        Some(phrase) => phrase,
        None => read_phrase()?,
    });
    let words = phrase.split_whitespace().count();
    if words == 0 {
        return Err(CliError::Phrase("no words given (pass them on stdin or with --phrase)".into()));
    }
    // Check the words before touching the data directory or the network.
    mnemonic::account_seed_from_phrase(&phrase).map_err(phrase_error)?;
    let (client, _, network) = new_account(global, Some(&phrase), name).await?;
    let dir = global.data_dir()?;
    if let Some(name) = name {
        client
            .set_display_name(Some(name))
            .await
            .map_err(|e| CliError::from_client(&dir, Some(&network), e))?;
    }
    let id = client.session_id();
    let text = format!(
        "Account restored in {}\nSession ID:  {id}\n\nRun `session sync` to fetch the messages the network still holds (up to 14 days).\n",
        dir.display()
    );
    Ok(Output::new(json!({ "session_id": id.to_hex(), "data_dir": dir.display().to_string() }), text))
}

/// What is wrong with a recovery password, with words counted from 1 (never the words).
fn phrase_error(e: mnemonic::MnemonicError) -> CliError {
    use mnemonic::MnemonicError as E;
    CliError::Phrase(match e {
        E::UnknownWord { position } => {
            format!("word {} is not in the word list (check its spelling)", position + 1)
        }
        E::InvalidValue { position } => {
            format!(
                "words {} to {} do not form a valid group (one of them is wrong)",
                position + 1,
                position + 3
            )
        }
        E::ChecksumMismatch => {
            "the checksum word does not match: a word is wrong or the order is mixed up".into()
        }
        E::WordCount(n) => format!("a recovery password has 13 words (or 25), got {n}"),
        E::AccountSeedLength(_) => "a recovery password has 13 words (or 25)".into(),
        other => other.to_string(),
    })
}

/// The recovery password from stdin (a prompt on stderr when stdin is a terminal).
fn read_phrase() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Enter your recovery password (13 or 25 words), then press Enter:");
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .map_err(|source| CliError::Io { what: "cannot read the recovery password".into(), source })?;
        return Ok(line);
    }
    let mut text = String::new();
    stdin.lock().take(64 * 1024).read_to_string(&mut text).map_err(|source| CliError::Io {
        what: "cannot read the recovery password from stdin".into(),
        source,
    })?;
    Ok(text)
}

async fn id(global: &Global) -> Result<Output, CliError> {
    let (dir, db) = context::open_db(global).await?;
    let account = db.run(|s| Ok(s.account()?.map(|a| (s.own_session_id(), a.display_name)))).await;
    let (id, name) = match account.map_err(|e| CliError::from_db(&dir, e))? {
        Some((Some(id), name)) => (id, name),
        _ => return Err(CliError::NoAccount(dir)),
    };
    Ok(Output::new(json!({ "session_id": id.to_hex(), "display_name": name }), format!("{id}\n")))
}

// ---- messaging ----

async fn all_contacts(dir: &std::path::Path, db: &Db) -> Result<Vec<Contact>, CliError> {
    db.run(|s| s.contacts()).await.map_err(|e| CliError::from_db(dir, e))
}

async fn send(global: &Global, to: &str, text: &str) -> Result<Output, CliError> {
    if text.trim().is_empty() {
        return Err(CliError::Usage("the message is empty".into()));
    }
    // Resolve before connecting: a typo should not wait for the network.
    let dir = global.data_dir()?;
    let peer = {
        let (_, db) = context::open_db(global).await?;
        resolve::recipient(to, &all_contacts(&dir, &db).await?)?
    };
    let (client, network) = context::connect(global).await?;
    let contacts = all_contacts(&dir, client.db()).await?;
    let name = resolve::label(&peer, &contacts);
    let result = client.send_text(&peer, text).await;
    let _ = client.save_pool().await;
    let (state, failure) = match result {
        Ok(_) => ("sent", None),
        Err(e @ ClientError::SendFailed { .. }) => {
            ("failed", Some(CliError::from_client(&dir, Some(&network), e)))
        }
        Err(e) => return Err(CliError::from_client(&dir, Some(&network), e)),
    };
    let json = json!({ "to": peer.to_hex(), "to_name": resolve::contact_name(contacts.iter().find(|c| c.session_id == peer)), "state": state });
    let mut out = Output::new(json, format!("{state}: to {name}\n"));
    out.failure = failure;
    Ok(out)
}

/// Names and states for printing messages and events.
struct View {
    me: SessionId,
    contacts: Vec<Contact>,
    conversations: Vec<Conversation>,
}

impl View {
    async fn load(dir: &std::path::Path, client: &Client) -> Result<Self, CliError> {
        let db = client.db();
        let (contacts, conversations) = db
            .run(|s| Ok((s.contacts()?, s.conversations()?)))
            .await
            .map_err(|e| CliError::from_db(dir, e))?;
        Ok(Self { me: client.session_id(), contacts, conversations })
    }

    fn name(&self, id: &SessionId) -> Option<String> {
        if *id == self.me {
            return Some("Note to Self".into());
        }
        resolve::contact_name(self.contacts.iter().find(|c| c.session_id == *id))
    }

    fn label(&self, id: &SessionId) -> String {
        self.name(id).unwrap_or_else(|| id.short())
    }

    fn is_request(&self, id: &SessionId) -> bool {
        self.conversations.iter().any(|c| c.peer == *id && c.state == ConversationState::Request)
    }

    fn message_json(&self, m: &Message) -> Value {
        json!({
            "id": m.id.0,
            "conversation": m.conversation.to_hex(),
            "conversation_name": self.name(&m.conversation),
            "author": m.author.to_hex(),
            "author_name": if m.author == self.me { Some("me".to_owned()) } else { self.name(&m.author) },
            "direction": direction(m.direction),
            "state": state(m.state),
            "sent_ms": m.sent_ms,
            "time": resolve::time(m.sent_ms),
            "text": m.body,
            "deleted": m.deleted,
            "request": self.is_request(&m.conversation),
        })
    }

    fn message_line(&self, m: &Message, with_conversation: bool) -> String {
        let who = if m.direction == Direction::Outgoing || m.author == self.me {
            "me".to_owned()
        } else {
            self.label(&m.author)
        };
        let body = match (&m.body, m.deleted) {
            (Some(body), false) => body.clone(),
            _ => "(unsent)".to_owned(),
        };
        let mut line = format!("[{}] ", resolve::time(m.sent_ms));
        if with_conversation {
            let flag = if self.is_request(&m.conversation) { " (request)" } else { "" };
            line.push_str(&format!("{}{flag} | ", self.label(&m.conversation)));
        }
        line.push_str(&format!("{who}: {body}"));
        if m.direction == Direction::Outgoing && m.state != MessageState::Sent {
            line.push_str(&format!("  [{}]", state(m.state)));
        }
        line
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "incoming",
        Direction::Outgoing => "outgoing",
    }
}

fn state(s: MessageState) -> &'static str {
    match s {
        MessageState::Sending => "sending",
        MessageState::Sent => "sent",
        MessageState::Failed => "failed",
        MessageState::Read => "read",
        MessageState::Received => "received",
    }
}

/// What a sync or watch saw.
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<Message>,
    requests: Vec<SessionId>,
    accepted: Vec<SessionId>,
    unsent: Vec<(SessionId, i64)>,
    expired: Vec<(SessionId, i64)>,
}

impl Seen {
    fn add(&mut self, event: Event) {
        match event {
            Event::Message { message, .. } => self.messages.push(message),
            Event::Request { conversation } => self.requests.push(conversation),
            Event::Accepted { conversation } => self.accepted.push(conversation),
            Event::Unsent { conversation, message } => self.unsent.push((conversation, message.0)),
            Event::Expired { conversation, message } => self.expired.push((conversation, message.0)),
            _ => {}
        }
    }
}

async fn sync(global: &Global) -> Result<Output, CliError> {
    let (client, network) = context::connect(global).await?;
    let dir = global.data_dir()?;
    let err = |e: ClientError| CliError::from_client(&dir, Some(&network), e);
    let first = client.conversations().await.map_err(err)?.is_empty();
    let progress = if first && !global.json && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("first sync: fetching messages…");
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut events = client.subscribe();
    let mut seen = Seen::default();
    let mut totals = session_client::PollSummary::default();
    for _ in 0..MAX_SYNC_ROUNDS {
        let summary = client.poll_once().await.map_err(err)?;
        totals.fetched += summary.fetched;
        totals.handled += summary.handled;
        totals.skipped += summary.skipped;
        totals.dropped += summary.dropped;
        while let Ok(event) = events.try_recv() {
            seen.add(event);
        }
        progress.set_message(format!("first sync: {} messages", totals.handled));
        if summary.fetched == summary.duplicates {
            break;
        }
    }
    client.prune_expired().await.map_err(err)?;
    let _ = client.save_pool().await;
    loop {
        match events.try_recv() {
            Ok(event) => seen.add(event),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    progress.finish_and_clear();
    let view = View::load(&dir, &client).await?;
    let mut text = String::new();
    for m in &seen.messages {
        text.push_str(&view.message_line(m, true));
        text.push('\n');
    }
    for peer in &seen.requests {
        text.push_str(&format!(
            "new message request from {} (session requests accept {})\n",
            view.label(peer),
            peer
        ));
    }
    for peer in &seen.accepted {
        text.push_str(&format!("{} accepted your message request\n", view.label(peer)));
    }
    if !seen.unsent.is_empty() {
        text.push_str(&format!("{} message(s) were unsent\n", seen.unsent.len()));
    }
    if !seen.expired.is_empty() {
        text.push_str(&format!("{} message(s) disappeared\n", seen.expired.len()));
    }
    if text.is_empty() {
        text.push_str("nothing new\n");
    }
    let ids = |v: &[SessionId]| -> Vec<Value> {
        v.iter().map(|p| json!({ "peer": p.to_hex(), "name": view.name(p) })).collect()
    };
    let pairs = |v: &[(SessionId, i64)]| -> Vec<Value> {
        v.iter().map(|(p, m)| json!({ "conversation": p.to_hex(), "message": m })).collect()
    };
    let json = json!({
        "messages": seen.messages.iter().map(|m| view.message_json(m)).collect::<Vec<_>>(),
        "requests": Value::Array(ids(&seen.requests)),
        "accepted": Value::Array(ids(&seen.accepted)),
        "unsent": Value::Array(pairs(&seen.unsent)),
        "expired": Value::Array(pairs(&seen.expired)),
        "fetched": totals.fetched,
        "skipped": totals.skipped,
    });
    Ok(Output::new(json, text))
}

async fn watch(global: &Global, interval: Duration) -> Result<Output, CliError> {
    let client = context::open_client(global).await?;
    let dir = global.data_dir()?;
    let mut events = client.subscribe();
    let _poller = client.spawn_poller(interval);
    // On stderr also with --json: scripts can wait for it to know the account is open.
    eprintln!("watching for messages as {} (Ctrl-C to stop)", client.session_id().short());
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tokio::signal::ctrl_c() => break,
        };
        let event = match event {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                eprintln!(
                    "session: fell behind, {n} events missed; `session sync` or `session messages` shows them"
                );
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let view = View::load(&dir, &client).await?;
        let (json, line) = match &event {
            Event::Message { message, .. } => {
                let mut j = view.message_json(message);
                j["event"] = json!("message");
                (j, view.message_line(message, true))
            }
            Event::Request { conversation } => (
                json!({ "event": "request", "peer": conversation.to_hex(), "name": view.name(conversation) }),
                format!("new message request from {} ({conversation})", view.label(conversation)),
            ),
            Event::Accepted { conversation } => (
                json!({ "event": "accepted", "peer": conversation.to_hex(), "name": view.name(conversation) }),
                format!("{} accepted your message request", view.label(conversation)),
            ),
            Event::Unsent { conversation, message } => (
                json!({ "event": "unsent", "conversation": conversation.to_hex(), "message": message.0 }),
                format!("{}: a message was unsent", view.label(conversation)),
            ),
            Event::Expired { conversation, message } => (
                json!({ "event": "expired", "conversation": conversation.to_hex(), "message": message.0 }),
                format!("{}: a message disappeared", view.label(conversation)),
            ),
            _ => continue,
        };
        if global.json {
            println!("{json}");
        } else {
            println!("{line}");
        }
    }
    Ok(Output::new(Value::Null, ""))
}

// ---- local views ----

fn conversation_state(c: &Conversation, contacts: &[Contact]) -> &'static str {
    if contacts.iter().any(|k| k.session_id == c.peer && k.blocked) {
        "blocked"
    } else if c.state == ConversationState::Request {
        "request"
    } else {
        "approved"
    }
}

/// Conversations (all, or the requests only) with their newest message.
async fn conversation_list(global: &Global, requests_only: bool) -> Result<Output, CliError> {
    let (dir, db) = context::open_db(global).await?;
    let (me, contacts, list) = db
        .run(move |s| {
            let me = s.own_session_id();
            let contacts = s.contacts()?;
            let mut list = Vec::new();
            for c in s.conversations()? {
                if requests_only && c.state != ConversationState::Request {
                    continue;
                }
                let last = s.messages(&c.peer, 1)?.pop();
                list.push((c, last));
            }
            Ok((me, contacts, list))
        })
        .await
        .map_err(|e| CliError::from_db(&dir, e))?;
    let name = |c: &Conversation| {
        if c.kind == ConversationKind::NoteToSelf || Some(c.peer) == me {
            Some("Note to Self".to_owned())
        } else {
            resolve::contact_name(contacts.iter().find(|k| k.session_id == c.peer))
        }
    };
    let mut text = String::new();
    let mut items = Vec::new();
    for (c, last) in &list {
        let state = conversation_state(c, &contacts);
        let preview = last.as_ref().map(|m| match (&m.body, m.deleted) {
            (Some(b), false) => b.clone(),
            _ => "(unsent)".into(),
        });
        let from_me = last.as_ref().is_some_and(|m| m.direction == Direction::Outgoing);
        items.push(json!({
            "peer": c.peer.to_hex(),
            "name": name(c),
            "state": state,
            "unread": c.unread,
            "last_message": preview,
            "last_message_outgoing": last.as_ref().map(|_| from_me),
            "last_activity_ms": c.last_activity_ms,
            "time": resolve::time(c.last_activity_ms),
        }));
        let label = name(c).unwrap_or_else(|| c.peer.short());
        let unread = if c.unread > 0 { format!(" ({} unread)", c.unread) } else { String::new() };
        let flag = if state == "approved" { String::new() } else { format!(" [{state}]") };
        let preview = preview
            .map(|p| format!("{}{}", if from_me { "me: " } else { "" }, resolve::preview(&p, 60)))
            .unwrap_or_default();
        text.push_str(&format!(
            "{}  {label}{flag}{unread}\n    {}  {preview}\n",
            resolve::time(c.last_activity_ms),
            c.peer
        ));
    }
    if list.is_empty() {
        text.push_str(if requests_only { "no message requests\n" } else { "no conversations yet\n" });
    }
    let key = if requests_only { "requests" } else { "conversations" };
    let mut json = serde_json::Map::new();
    json.insert(key.to_owned(), Value::Array(items));
    Ok(Output::new(Value::Object(json), text))
}

async fn conversations(global: &Global) -> Result<Output, CliError> {
    conversation_list(global, false).await
}

async fn requests(global: &Global) -> Result<Output, CliError> {
    conversation_list(global, true).await
}

async fn messages(global: &Global, who: &str, limit: u32, peek: bool) -> Result<Output, CliError> {
    let (dir, db) = context::open_db(global).await?;
    let peer = resolve::recipient(who, &all_contacts(&dir, &db).await?)?;
    let (me, contacts, conversations, list) = db
        .run(move |s| {
            let list = match s.conversation(&peer)? {
                Some(conversation) => Some((s.messages(&peer, limit)?, conversation.unread)),
                None => None,
            };
            Ok((s.own_session_id(), s.contacts()?, s.conversations()?, list))
        })
        .await
        .map_err(|e| CliError::from_db(&dir, e))?;
    let me = me.ok_or_else(|| CliError::NoAccount(dir.clone()))?;
    let Some((list, unread)) = list else {
        return Err(CliError::Recipient(format!(
            "no conversation with {}",
            resolve::label(&peer, &contacts)
        )));
    };
    let view = View { me, contacts, conversations };
    let mut text = String::new();
    for m in &list {
        text.push_str(&view.message_line(m, false));
        text.push('\n');
    }
    if list.is_empty() {
        text.push_str("no messages\n");
    }
    let json = json!({
        "peer": peer.to_hex(),
        "name": view.name(&peer),
        "messages": list.iter().map(|m| view.message_json(m)).collect::<Vec<_>>(),
    });
    if unread > 0 && !peek {
        // Shown, so read. That may need the network (timers on the swarm, a receipt); without
        // one they stay unread, and the listing still stands.
        drop(db);
        let marked = async {
            let (client, network) = context::connect(global).await?;
            let result = client.mark_read(&peer).await;
            let _ = client.save_pool().await;
            result.map_err(|e| CliError::from_client(&dir, Some(&network), e))
        };
        if let Err(e) = marked.await {
            eprintln!("session: messages left unread: {e}");
        }
    }
    Ok(Output::new(json, text))
}

async fn resend(global: &Global, who: &str) -> Result<Output, CliError> {
    let dir = global.data_dir()?;
    let peer = {
        let (_, db) = context::open_db(global).await?;
        resolve::recipient(who, &all_contacts(&dir, &db).await?)?
    };
    let (client, network) = context::connect(global).await?;
    let failed: Vec<Message> = client
        .messages(&peer, u32::MAX)
        .await
        .map_err(|e| CliError::from_client(&dir, Some(&network), e))?
        .into_iter()
        .filter(Message::can_resend)
        .collect();
    let failure =
        client.resend_failed(&peer).await.err().map(|e| CliError::from_client(&dir, Some(&network), e));
    let _ = client.save_pool().await;
    let name = resolve::label(&peer, &all_contacts(&dir, client.db()).await?);
    // Some may have gone before one failed again: count what the database says now.
    let mut delivered = 0;
    for m in &failed {
        if client.message(m.id).await.ok().flatten().is_some_and(|m| m.state != MessageState::Failed) {
            delivered += 1;
        }
    }
    let left = failed.len() - delivered;
    let json = json!({ "to": peer.to_hex(), "failed_before": failed.len(), "sent": delivered, "still_failed": left });
    let text = if failed.is_empty() {
        format!("no failed messages to {name}\n")
    } else {
        format!("sent again: {delivered} of {} to {name}\n", failed.len())
    };
    let mut out = Output::new(json, text);
    out.failure = failure;
    Ok(out)
}

async fn accept(global: &Global, who: &str) -> Result<Output, CliError> {
    let dir = global.data_dir()?;
    let peer = {
        let (_, db) = context::open_db(global).await?;
        let peer = resolve::recipient(who, &all_contacts(&dir, &db).await?)?;
        request_state(&dir, &db, &peer).await?;
        peer
    };
    let (client, network) = context::connect(global).await?;
    client.accept_request(&peer).await.map_err(|e| CliError::from_client(&dir, Some(&network), e))?;
    let _ = client.save_pool().await;
    let name = resolve::label(&peer, &all_contacts(&dir, client.db()).await?);
    Ok(Output::new(
        json!({ "peer": peer.to_hex(), "accepted": true }),
        format!("accepted the request from {name}\n"),
    ))
}

/// Fails unless the conversation with `peer` is a pending request.
async fn request_state(dir: &std::path::Path, db: &Db, peer: &SessionId) -> Result<(), CliError> {
    let p = *peer;
    let conversation = db.run(move |s| s.conversation(&p)).await.map_err(|e| CliError::from_db(dir, e))?;
    match conversation {
        Some(c) if c.state == ConversationState::Request => Ok(()),
        Some(_) => {
            Err(CliError::Recipient(format!("{} is not a message request (already accepted)", peer.short())))
        }
        None => Err(CliError::Recipient(format!("no message request from {}", peer.short()))),
    }
}

async fn decline(global: &Global, who: &str) -> Result<Output, CliError> {
    let (dir, db) = context::open_db(global).await?;
    let peer = resolve::recipient(who, &all_contacts(&dir, &db).await?)?;
    request_state(&dir, &db, &peer).await?;
    db.run(move |s| s.delete_conversation(&peer)).await.map_err(|e| CliError::from_db(&dir, e))?;
    Ok(Output::new(
        json!({ "peer": peer.to_hex(), "declined": true }),
        format!("declined the request from {} (deleted)\n", peer.short()),
    ))
}

fn contact_json(c: &Contact) -> Value {
    json!({
        "session_id": c.session_id.to_hex(),
        "name": resolve::contact_name(Some(c)),
        "nickname": c.nickname,
        "display_name": c.display_name,
        "approved": c.approved,
        "approved_me": c.approved_me,
        "blocked": c.blocked,
    })
}

async fn contacts(global: &Global) -> Result<Output, CliError> {
    let (dir, db) = context::open_db(global).await?;
    let mut list = all_contacts(&dir, &db).await?;
    list.sort_by_key(|c| resolve::contact_name(Some(c)).map(|n| n.to_lowercase()));
    let mut text = String::new();
    for c in &list {
        let mut flags = Vec::new();
        if c.blocked {
            flags.push("blocked");
        }
        if !c.approved {
            flags.push("not approved");
        }
        let name = resolve::contact_name(Some(c)).unwrap_or_else(|| "(no name)".into());
        let also = match (&c.nickname, &c.display_name) {
            (Some(_), Some(d)) => format!(" (calls themselves {d:?})"),
            _ => String::new(),
        };
        let flags = if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(", ")) };
        text.push_str(&format!("{}  {name}{also}{flags}\n", c.session_id));
    }
    if list.is_empty() {
        text.push_str("no contacts\n");
    }
    Ok(Output::new(json!({ "contacts": list.iter().map(contact_json).collect::<Vec<_>>() }), text))
}

/// A change to one contact, applied in a database transaction.
type ContactChange = Box<dyn FnOnce(&mut Contact) + Send>;

async fn edit_contact(global: &Global, action: ContactAction) -> Result<Output, CliError> {
    let (dir, db) = context::open_db(global).await?;
    let known = all_contacts(&dir, &db).await?;
    let (peer, change): (SessionId, ContactChange) = match action {
        ContactAction::Add { id, name } => {
            let peer = SessionId::parse_with_prefix(id.trim(), IdPrefix::Standard)
                .map_err(|e| CliError::Recipient(format!("not a Session ID: {} ({e})", id.trim())))?;
            let name = clean_name(name)?;
            (
                peer,
                Box::new(move |c: &mut Contact| {
                    c.approved = true;
                    if name.is_some() {
                        c.nickname = name;
                    }
                }),
            )
        }
        ContactAction::Rename { who, name } => {
            let name = clean_name(Some(name))?;
            (resolve::recipient(&who, &known)?, Box::new(move |c: &mut Contact| c.nickname = name))
        }
        ContactAction::Block { who } => {
            (resolve::recipient(&who, &known)?, Box::new(|c: &mut Contact| c.blocked = true))
        }
        ContactAction::Unblock { who } => {
            (resolve::recipient(&who, &known)?, Box::new(|c: &mut Contact| c.blocked = false))
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let contact = db
        .run(move |s| {
            s.transaction(|s| {
                let mut contact = s.contact_or_new(&peer, now)?;
                change(&mut contact);
                s.save_contact(&contact)?;
                Ok(contact)
            })
        })
        .await
        .map_err(|e| CliError::from_db(&dir, e))?;
    let name = resolve::contact_name(Some(&contact)).unwrap_or_else(|| peer.short());
    let state = if contact.blocked { " (blocked)" } else { "" };
    Ok(Output::new(contact_json(&contact), format!("{name}: {}{state}\n", contact.session_id)))
}

/// A contact name: trimmed, not empty, and not something that reads as a Session ID.
async fn settings(
    global: &Global,
    read_receipts: Option<Toggle>,
    typing_indicators: Option<Toggle>,
    name: Option<String>,
) -> Result<Output, CliError> {
    let name = match name.map(|n| n.trim().to_owned()) {
        Some(n) if n.is_empty() => return Err(CliError::Usage("a display name cannot be empty".into())),
        other => other,
    };
    let (dir, db) = context::open_db(global).await?;
    let account = db
        .run(move |s| {
            s.transaction(|s| {
                let mut account = s.account()?.ok_or(DbError::NoAccount)?;
                if let Some(t) = read_receipts {
                    account.settings.read_receipts = t == Toggle::On;
                }
                if let Some(t) = typing_indicators {
                    account.settings.typing_indicators = t == Toggle::On;
                }
                s.set_settings(account.settings)?;
                if let Some(name) = name {
                    s.set_display_name(Some(&name))?;
                    account.display_name = Some(name);
                }
                Ok(account)
            })
        })
        .await
        .map_err(|e| CliError::from_db(&dir, e))?;
    let on = |b: bool| if b { "on" } else { "off" };
    let json = json!({
        "read_receipts": account.settings.read_receipts,
        "typing_indicators": account.settings.typing_indicators,
        "display_name": account.display_name,
    });
    let text = format!(
        "read receipts:      {}\ntyping indicators:  {}\ndisplay name:       {}\n",
        on(account.settings.read_receipts),
        on(account.settings.typing_indicators),
        account.display_name.as_deref().unwrap_or("(none)"),
    );
    Ok(Output::new(json, text))
}

fn clean_name(name: Option<String>) -> Result<Option<String>, CliError> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(CliError::Usage("a contact name cannot be empty".into()));
    }
    if name.len() >= 20 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CliError::Usage("a contact name cannot look like a Session ID".into()));
    }
    Ok(Some(name))
}
