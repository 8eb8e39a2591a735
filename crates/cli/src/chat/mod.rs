//! `session chat`: a terminal chat on a [`Client`].
//!
//! [`app::App`] is the state, without I/O: keys and client events go in, [`app::Action`]s come
//! out. [`Runner`] executes the actions against the client (each on a task of its own, so a slow
//! send never blocks the screen) and feeds their [`app::Outcome`]s and the client's events back.
//! [`run`] puts a real terminal around it: raw mode and the alternate screen (restored on every
//! way out, a panic included), a key-reader thread, the background poller and a tick.

use std::io::{Stdout, stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste, KeyEvent};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{event, execute};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use session_client::Client;
use session_client::client::Event;
use session_protocol::SessionId;
use tokio::sync::{broadcast, mpsc};

pub mod app;
pub mod command;
pub mod ui;

#[cfg(test)]
mod tests;

use app::{Action, App, MESSAGE_LIMIT, Outcome};

/// How often the background poller asks our swarm for new messages.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often the screen's timers move (typing indicators, disappearing countdowns).
pub const TICK: Duration = Duration::from_millis(250);

/// How long the key reader waits for a key before it checks whether to stop.
const KEY_POLL: Duration = Duration::from_millis(100);

/// The chat could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The terminal could not be set up, drawn on or restored.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// Reading keys from the terminal failed.
    #[error("reading the keyboard: {0}")]
    Input(std::io::Error),
    /// The key reader stopped unexpectedly.
    #[error("the keyboard reader stopped")]
    InputClosed,
}

/// Runs the chat on the terminal until the user quits (Esc or Ctrl-C): the conversation list,
/// the open conversation (`open`, or a new one with that Session ID), an input line. Polls the
/// network in the background. The terminal is restored however this returns, and on a panic.
pub async fn run(client: Client, open: Option<SessionId>) -> Result<(), ChatError> {
    let _poller = client.spawn_poller(POLL_INTERVAL);
    let mut runner = Runner::new(client, open);
    let mut screen = Screen::enter()?;
    let mut keys = KeyReader::spawn();
    let result = event_loop(&mut screen.terminal, &mut runner, &mut keys.rx).await;
    keys.stop();
    let restored = screen.leave();
    result.and(restored)
}

async fn event_loop<B: Backend<Error = std::io::Error>>(
    terminal: &mut Terminal<B>,
    runner: &mut Runner,
    keys: &mut mpsc::UnboundedReceiver<std::io::Result<event::Event>>,
) -> Result<(), ChatError> {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        terminal.draw(|frame| ui::draw(frame, runner.app()))?;
        if runner.app().should_quit() {
            return Ok(());
        }
        tokio::select! {
            input = keys.recv() => match input {
                Some(Ok(event::Event::Key(key))) => runner.key(key),
                Some(Ok(event::Event::Paste(text))) => runner.paste(&text),
                // Resizes and the rest: the next draw adapts.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ChatError::Input(e)),
                None => return Err(ChatError::InputClosed),
            },
            () = runner.next() => {}
            _ = tick.tick() => runner.tick(),
        }
    }
}

/// Executes an [`App`]'s actions against a [`Client`] and feeds back the client's events and
/// the actions' outcomes. No terminal: [`run`] draws it, tests drive it directly.
#[derive(Debug)]
pub struct Runner {
    client: Client,
    app: App,
    events: broadcast::Receiver<Event>,
    outcomes_tx: mpsc::UnboundedSender<Outcome>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
}

impl Runner {
    /// A runner for `client`, opening `open`; subscribes to the client's events and starts
    /// loading the conversation list.
    pub fn new(client: Client, open: Option<SessionId>) -> Self {
        let events = client.subscribe();
        let (mut app, actions) = App::new(client.session_id(), open);
        app.set_time_zone(jiff::tz::TimeZone::system());
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        let mut runner = Self { client, app, events, outcomes_tx, outcomes };
        runner.tick();
        runner.execute(actions);
        runner
    }

    /// The state, to draw or inspect.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// A key press.
    pub fn key(&mut self, key: KeyEvent) {
        let actions = self.app.handle_key(key);
        self.execute(actions);
    }

    /// Pasted text.
    pub fn paste(&mut self, text: &str) {
        let actions = self.app.paste(text);
        self.execute(actions);
    }

    /// The clock moved: timers, and the network state in the status line.
    pub fn tick(&mut self) {
        let net = self.client.network();
        let nodes = net.pool_snapshot().nodes.len();
        let paths = net.paths().len();
        self.app.set_network(format!("net: {nodes} nodes, {paths} paths"));
        let actions = self.app.tick(net.network_time_ms());
        self.execute(actions);
    }

    /// Waits for the next client event or action outcome and applies it. Cancel-safe.
    pub async fn next(&mut self) {
        let actions = tokio::select! {
            event = self.events.recv() => match event {
                Ok(event) => self.app.apply(event),
                Err(broadcast::error::RecvError::Lagged(_)) => self.app.resync(),
                // The client (which we hold) owns the sender: cannot happen; wait for outcomes.
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            },
            Some(outcome) = self.outcomes.recv() => self.app.apply_outcome(outcome),
        };
        self.execute(actions);
    }

    /// Starts each action on a task of its own; results come back through [`Runner::next`].
    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            if action == Action::Quit {
                continue;
            }
            let client = self.client.clone();
            let tx = self.outcomes_tx.clone();
            tokio::spawn(async move {
                for outcome in perform(&client, action).await {
                    // The runner is gone: nobody to tell.
                    let _ = tx.send(outcome);
                }
            });
        }
    }
}

/// Does one action; returns what to tell the app.
async fn perform(client: &Client, action: Action) -> Vec<Outcome> {
    let result: Result<Vec<Outcome>, String> = async {
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        match action {
            Action::LoadConversations => Ok(vec![load_conversations(client).await?]),
            Action::LoadMessages(peer) => {
                let messages =
                    client.messages(&peer, MESSAGE_LIMIT).await.map_err(|e| fail("loading messages", &e))?;
                Ok(vec![Outcome::Messages(peer, messages)])
            }
            Action::MarkRead(peer) => {
                client.mark_read(&peer).await.map_err(|e| fail("marking read", &e))?;
                Ok(Vec::new())
            }
            Action::Send { to, text } => {
                // The message shows at once (the client's Message event, `Sending`); the state
                // follows as a DeliveryState event.
                client.send_text(&to, &text).await.map_err(|e| fail("not delivered", &e))?;
                Ok(Vec::new())
            }
            Action::Accept(peer) => {
                client.accept_request(&peer).await.map_err(|e| fail("accepting", &e))?;
                done_and_reload(client, format!("accepted {}", peer.short())).await
            }
            Action::Decline(peer) => {
                client.decline_request(&peer).await.map_err(|e| fail("declining", &e))?;
                done_and_reload(client, format!("declined {}", peer.short())).await
            }
            Action::Block(peer) => {
                client.block(&peer).await.map_err(|e| fail("blocking", &e))?;
                done_and_reload(client, format!("blocked {}", peer.short())).await
            }
            Action::Unblock(peer) => {
                client.unblock(&peer).await.map_err(|e| fail("unblocking", &e))?;
                done_and_reload(client, format!("unblocked {}", peer.short())).await
            }
            Action::Resend(peer) => {
                // Each message's state follows as DeliveryState events.
                let sent = client.resend_failed(&peer).await.map_err(|e| fail("still not delivered", &e))?;
                Ok(vec![Outcome::Info(match sent.len() {
                    1 => "1 message sent again".to_owned(),
                    n => format!("{n} messages sent again"),
                })])
            }
            Action::Typing { to, started } => {
                // Best effort: a lost typing indicator is not worth a notice.
                if let Err(e) = client.send_typing(&to, started).await {
                    tracing::debug!(error = %e, "typing indicator not sent");
                }
                Ok(Vec::new())
            }
            Action::Unsend(id) => {
                client.unsend(id).await.map_err(|e| fail("unsend", &e))?;
                Ok(vec![Outcome::Info("message unsent".to_owned())])
            }
            Action::SetDisappearing { peer, mode } => {
                client.set_disappearing(&peer, mode).await.map_err(|e| fail("disappearing messages", &e))?;
                done_and_reload(client, format!("disappearing messages: {}", app::describe_mode(mode))).await
            }
            Action::SetDisplayName(name) => {
                client.set_display_name(Some(&name)).await.map_err(|e| fail("setting the name", &e))?;
                Ok(vec![Outcome::Info(format!("display name set to {name:?}"))])
            }
            Action::SetSetting(setting, on) => {
                let mut settings = client.settings().await.map_err(|e| fail("reading settings", &e))?;
                let what = match setting {
                    command::Setting::ReadReceipts => {
                        settings.read_receipts = on;
                        "read receipts"
                    }
                    command::Setting::TypingIndicators => {
                        settings.typing_indicators = on;
                        "typing indicators"
                    }
                };
                client.set_settings(settings).await.map_err(|e| fail("saving settings", &e))?;
                Ok(vec![Outcome::Info(format!("{what} {}", if on { "on" } else { "off" }))])
            }
            Action::Quit => Ok(Vec::new()),
        }
    }
    .await;
    result.unwrap_or_else(|e| vec![Outcome::Error(e)])
}

/// Tells what was done, and reloads the conversation list it changed.
async fn done_and_reload(client: &Client, text: String) -> Result<Vec<Outcome>, String> {
    Ok(vec![Outcome::Info(text), load_conversations(client).await?])
}

async fn load_conversations(client: &Client) -> Result<Outcome, String> {
    let conversations = client.conversations().await.map_err(|e| format!("loading conversations: {e}"))?;
    let contacts = client.db().run(|s| s.contacts()).await.map_err(|e| format!("loading contacts: {e}"))?;
    Ok(Outcome::Conversations(conversations, contacts))
}

/// The real terminal, in raw mode on the alternate screen while this lives.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    restored: bool,
}

impl Screen {
    /// Raw mode, alternate screen, bracketed paste; a panic hook that restores the terminal
    /// before the panic message is printed.
    fn enter() -> Result<Self, ChatError> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        enable_raw_mode()?;
        let screen = Self { terminal: Terminal::new(CrosstermBackend::new(stdout()))?, restored: false };
        // A plain clear: ratatui's `Terminal::clear` asks the terminal where its cursor is, and
        // a terminal that does not answer in time would stop the chat.
        execute!(stdout(), EnterAlternateScreen, EnableBracketedPaste, Clear(ClearType::All))?;
        Ok(screen)
    }

    /// Restores the terminal, reporting a failure.
    fn leave(mut self) -> Result<(), ChatError> {
        self.restored = true;
        let raw = disable_raw_mode();
        let screen = execute!(self.terminal.backend_mut(), DisableBracketedPaste, LeaveAlternateScreen);
        let cursor = self.terminal.show_cursor();
        raw.and(screen).and(cursor).map_err(ChatError::Terminal)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Error paths: restore without reporting (there is already an error on its way).
        if !self.restored {
            restore_terminal();
        }
    }
}

/// Best effort: cooked mode, main screen, cursor shown.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), DisableBracketedPaste, LeaveAlternateScreen, crossterm::cursor::Show);
}

/// A thread reading terminal events (crossterm's reads block) into a channel.
struct KeyReader {
    rx: mpsc::UnboundedReceiver<std::io::Result<event::Event>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl KeyReader {
    fn spawn() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let next = match event::poll(KEY_POLL) {
                    Ok(false) => continue,
                    Ok(true) => event::read(),
                    Err(e) => Err(e),
                };
                let failed = next.is_err();
                if tx.send(next).is_err() || failed {
                    return;
                }
            }
        });
        Self { rx, stop, thread }
    }

    /// Stops the thread (within [`KEY_POLL`]) and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx);
        let _ = self.thread.join();
    }
}
