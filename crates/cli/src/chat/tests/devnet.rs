//! The chat end to end on a real devnet (registry and node processes on loopback): Alice types a
//! line and presses Enter in her chat; Bob's chat, fed by his client's events, shows it as a
//! request; he accepts and answers; Alice unsends. Both screens are rendered on a `TestBackend`.
//!
//! The `session-node` and `session-registry` binaries are built into this target directory by
//! the test itself (`Binaries::build_for_tests`). Every wait is bounded.

use std::time::Duration;

use crossterm::event::KeyCode;
use session_client::db::{ConversationState, KeySource, MessageState};
use session_client::{Client, NetworkConfig};
use session_devnet::{Binaries, Devnet, DevnetOptions, Timing};

use super::{press, render, row_with};
use crate::chat::app::App;
use crate::chat::{POLL_INTERVAL, Runner, TICK};

/// Bound of the whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(900);

/// Bound of one wait for something to show.
const WAIT: Duration = Duration::from_secs(90);

/// Feeds `runner` its client's events, the outcomes and ticks until `cond` holds on its app, at
/// most [`WAIT`].
async fn drive(runner: &mut Runner, what: &str, cond: impl Fn(&App) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(TICK);
    while !cond(runner.app()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; status: {:?}; messages: {:?}",
            runner.app().notice(),
            runner.app().messages().iter().map(|m| (m.body.clone(), m.state, m.deleted)).collect::<Vec<_>>()
        );
        tokio::select! {
            () = runner.next() => {}
            _ = tick.tick() => runner.tick(),
        }
    }
}

/// Types `text` into the runner's app and presses Enter.
fn type_line(runner: &mut Runner, text: &str) {
    for c in text.chars() {
        runner.key(press(KeyCode::Char(c)));
    }
    runner.key(press(KeyCode::Enter));
}

fn shows(app: &App, body: &str, state: Option<MessageState>) -> bool {
    app.messages().iter().any(|m| m.body.as_deref() == Some(body) && state.is_none_or(|s| m.state == s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_line_reaches_the_other_chat_and_back() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let mut options = DevnetOptions::new(dir.path().join("devnet"), 5);
        options.binaries =
            Some(Binaries::build_for_tests().expect("building session-node and session-registry"));
        options.timing = Timing { heartbeat_secs: 1, decommission_after_secs: 3600.0, ..Timing::default() };
        options.stop_grace = Duration::from_secs(5);
        let devnet = Devnet::up(options).await.unwrap();
        let config = || {
            let mut c = NetworkConfig::new([devnet.registry_url().unwrap()]);
            c.min_pool_size = 5;
            c.request_timeout = Duration::from_secs(20);
            c
        };
        let (alice, _) =
            Client::create(dir.path().join("alice"), KeySource::KeyFile, config(), Some("Alice"))
                .await
                .unwrap();
        let (bob, _) =
            Client::create(dir.path().join("bob"), KeySource::KeyFile, config(), Some("Bob")).await.unwrap();

        // Alice opens a chat with Bob's ID (a new conversation) and writes.
        let mut a = Runner::new(alice.clone(), Some(bob.session_id()));
        type_line(&mut a, "hello bob");
        assert_eq!(a.app().input(), "", "Enter took the line");
        drive(&mut a, "alice's message to be sent", |app| shows(app, "hello bob", Some(MessageState::Sent)))
            .await;
        let screen = render(a.app(), 100, 16);
        assert!(row_with(&screen, "hello bob").contains("me: hello bob ✓"), "{screen}");

        // Bob's chat, with the poller the real chat runs, gets it as a message request.
        let _bob_poller = bob.spawn_poller(POLL_INTERVAL);
        let mut b = Runner::new(bob.clone(), None);
        drive(&mut b, "bob to see alice's message under her name", |app| {
            shows(app, "hello bob", None)
                && row_with(&render(app, 100, 16), "hello bob").contains("Alice: hello bob")
        })
        .await;
        assert_eq!(b.app().selected(), Some(alice.session_id()));
        let screen = render(b.app(), 100, 16);
        assert!(row_with(&screen, "[request]").contains("Alice"), "{screen}");
        assert!(row_with(&screen, "hello bob").contains("Alice: hello bob"), "{screen}");

        // Bob accepts and answers.
        type_line(&mut b, "/accept");
        drive(&mut b, "the request to be accepted", |app| {
            app.selected_entry().is_some_and(|e| e.state == ConversationState::Accepted)
        })
        .await;
        type_line(&mut b, "hi alice");
        drive(&mut b, "bob's answer to be sent", |app| shows(app, "hi alice", Some(MessageState::Sent)))
            .await;

        // Alice's chat shows the answer (and that Bob accepted).
        let _alice_poller = alice.spawn_poller(POLL_INTERVAL);
        // The name comes with the contact list, which the chat reloads when an unknown sender
        // writes: wait for the line as the user ends up seeing it.
        drive(&mut a, "alice to see bob's answer under his name", |app| {
            shows(app, "hi alice", None)
                && row_with(&render(app, 100, 16), "hi alice").contains("Bob: hi alice")
        })
        .await;
        let screen = render(a.app(), 100, 16);
        assert!(row_with(&screen, "hi alice").contains("Bob: hi alice"), "{screen}");
        assert!(!screen.contains("[request]"), "{screen}");

        // Alice unsends her message: gone on both screens.
        type_line(&mut a, "/unsend");
        drive(&mut a, "alice's message to be unsent", |app| app.messages().iter().any(|m| m.deleted)).await;
        assert!(render(a.app(), 100, 16).contains("me: (unsent)"));
        drive(&mut b, "bob to see the unsend", |app| !shows(app, "hello bob", None)).await;
        let screen = render(b.app(), 100, 16);
        assert!(screen.contains("Alice: (unsent)"), "{screen}");
        assert!(screen.contains("me: hi alice"), "{screen}");

        drop((a, b));
        devnet.down().await.unwrap();
    })
    .await
    .expect("test timed out");
}
