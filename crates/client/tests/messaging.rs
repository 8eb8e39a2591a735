//! The messaging engine end to end on a real devnet (registry and node processes on loopback):
//! two accounts exchange messages through onion paths, message requests, unsend, disappearing
//! messages, restore from the recovery phrase, restart without duplicates, and delivery with two
//! swarm members stopped.
//!
//! The `session-node` and `session-registry` binaries, and the echo bot example, are built into
//! this target directory by the tests themselves (`Binaries::build_for_tests`, `cargo build
//! --example echo_bot`). One devnet at a time; every test and every wait is bounded in time.

use std::path::Path;
use std::time::Duration;

use session_client::client::Event;
use session_client::content::DisappearingMode;
use session_client::db::{ConversationState, Direction, KeySource, MessageState};
use session_client::{Client, ClientError};
use session_devnet::Devnet;
use session_protocol::SessionId;

mod support;
use support::{bounded, config, options};

/// Stopped nodes stay listed: the clients have to route around them by themselves.
const STOPPED_STAY_LISTED: f64 = 3600.0;

/// Bound of a whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(900);

/// Bound of one wait for something to arrive.
const WAIT: Duration = Duration::from_secs(90);

/// Polls (and prunes) `$client` until `$cond` holds, at most [`WAIT`].
macro_rules! poll_until {
    ($client:expr, $what:expr, $cond:expr) => {{
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            $client.poll_once().await.expect("poll");
            $client.prune_expired().await.expect("prune");
            if $cond {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }};
}

/// The bodies of the conversation with `peer`, oldest first (`None` for unsent ones).
async fn bodies(client: &Client, peer: &SessionId) -> Vec<Option<String>> {
    client.messages(peer, 1000).await.unwrap().into_iter().map(|m| m.body).collect()
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(event) = rx.try_recv() {
        out.push(event);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_talk_requests_unsend_and_disappearing() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let devnet = Devnet::up(options(&dir.path().join("devnet"), 6, STOPPED_STAY_LISTED)).await.unwrap();
        let alice_dir = dir.path().join("alice");
        let bob_dir = dir.path().join("bob");
        let (alice, phrase) =
            Client::create(&alice_dir, KeySource::KeyFile, config(&devnet), Some("Alice")).await.unwrap();
        assert_eq!(phrase.word_count(), 13);
        let (bob, _) =
            Client::create(&bob_dir, KeySource::KeyFile, config(&devnet), Some("Bob")).await.unwrap();
        let (a, b) = (alice.session_id(), bob.session_id());
        // A second create in the same directory is refused.
        let again = Client::create(&alice_dir, KeySource::KeyFile, config(&devnet), None).await;
        assert!(matches!(again, Err(ClientError::Db(_)) | Err(ClientError::AccountExists)), "{again:?}");

        // Bob is offline (no client) while Alice writes.
        drop(bob);
        let mut alice_events = alice.subscribe();
        let first = alice.send_text(&b, "hello bob").await.unwrap();
        let second = alice.send_text(&b, "are you there?").await.unwrap();
        let sent = alice.messages(&b, 10).await.unwrap();
        assert_eq!(sent.iter().map(|m| m.id).collect::<Vec<_>>(), vec![first, second]);
        assert!(sent.iter().all(|m| m.state == MessageState::Sent && m.direction == Direction::Outgoing));
        let events = drain(&mut alice_events);
        assert!(events.contains(&Event::DeliveryState {
            conversation: b,
            message: first,
            state: MessageState::Sent
        }));

        // Bob comes back: both messages wait in a message request.
        let bob = Client::open(&bob_dir, KeySource::KeyFile, config(&devnet)).await.unwrap();
        let mut bob_events = bob.subscribe();
        poll_until!(bob, "bob to get both messages", bodies(&bob, &a).await.len() == 2);
        assert_eq!(bodies(&bob, &a).await, vec![Some("hello bob".into()), Some("are you there?".into())]);
        let conversation = bob.conversation(&a).await.unwrap().unwrap();
        assert_eq!(conversation.state, ConversationState::Request);
        assert_eq!(conversation.unread, 2);
        assert_eq!(bob.contact(&a).await.unwrap().unwrap().display_name.as_deref(), Some("Alice"));
        let events = drain(&mut bob_events);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Request { conversation } if *conversation == a))
                .count(),
            1
        );
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Message { .. })).count(), 2);

        // Bob accepts; Alice sees it accepted.
        bob.accept_request(&a).await.unwrap();
        assert_eq!(bob.conversation(&a).await.unwrap().unwrap().state, ConversationState::Accepted);
        poll_until!(
            alice,
            "alice to see the request accepted",
            alice.contact(&b).await.unwrap().unwrap().approved_me
        );
        assert!(drain(&mut alice_events).contains(&Event::Accepted { conversation: b }));

        // Both ways.
        bob.send_text(&a, "hi alice").await.unwrap();
        poll_until!(alice, "alice to get bob's reply", bodies(&alice, &b).await.len() == 3);
        let alice_view = alice.messages(&b, 10).await.unwrap();
        assert_eq!(alice_view[2].body.as_deref(), Some("hi alice"));
        assert_eq!(alice_view[2].direction, Direction::Incoming);
        assert_eq!(alice.conversation(&b).await.unwrap().unwrap().state, ConversationState::Accepted);

        // Read receipts (opt in on Alice's side to send them).
        let mut settings = alice.settings().await.unwrap();
        settings.read_receipts = true;
        alice.set_settings(settings).await.unwrap();
        assert_eq!(alice.mark_read(&b).await.unwrap(), 1);
        assert_eq!(alice.conversation(&b).await.unwrap().unwrap().unread, 0);
        let reply_id = bob.messages(&a, 10).await.unwrap().last().unwrap().id;
        poll_until!(
            bob,
            "bob to see his reply read",
            bob.message(reply_id).await.unwrap().unwrap().state == MessageState::Read
        );

        // Typing indicators are off by default, then sent and seen as events only.
        assert!(!alice.send_typing(&b, true).await.unwrap());
        let mut settings = alice.settings().await.unwrap();
        settings.typing_indicators = true;
        alice.set_settings(settings).await.unwrap();
        drain(&mut bob_events);
        assert!(alice.send_typing(&b, true).await.unwrap());
        poll_until!(
            bob,
            "bob to see alice typing",
            drain(&mut bob_events).contains(&Event::Typing { conversation: a, started: true })
        );

        // Unsend: gone on both sides.
        let oops = alice.send_text(&b, "oops, wrong chat").await.unwrap();
        poll_until!(bob, "bob to get the message to unsend", bodies(&bob, &a).await.len() == 4);
        alice.unsend(oops).await.unwrap();
        let mine = alice.message(oops).await.unwrap().unwrap();
        assert!(mine.deleted && mine.body.is_none());
        poll_until!(bob, "bob to see the message unsent", bodies(&bob, &a).await.last() == Some(&None));
        assert!(!bodies(&bob, &a).await.contains(&Some("oops, wrong chat".into())));
        assert!(matches!(alice.unsend(oops).await, Err(ClientError::AlreadyDeleted)));
        let from_bob = alice.messages(&b, 10).await.unwrap()[2].id;
        assert!(matches!(alice.unsend(from_bob).await, Err(ClientError::NotOurMessage)));

        // Disappearing after send, 20 s: vanishes on both sides.
        alice.set_disappearing(&b, DisappearingMode::AfterSend { seconds: 20 }).await.unwrap();
        let ephemeral = alice.send_text(&b, "this will self-destruct").await.unwrap();
        let stored = alice.message(ephemeral).await.unwrap().unwrap();
        assert_eq!(stored.expires_at_ms, Some(stored.sent_ms + 20_000));
        poll_until!(
            bob,
            "bob to get the disappearing message",
            bodies(&bob, &a).await.contains(&Some("this will self-destruct".into()))
        );
        let on_bob = bob.messages(&a, 10).await.unwrap().into_iter().last().unwrap();
        assert_eq!(on_bob.disappearing, DisappearingMode::AfterSend { seconds: 20 });
        assert_eq!(on_bob.expires_at_ms, Some(stored.sent_ms + 20_000));
        let mut bob_events = bob.subscribe();
        poll_until!(
            bob,
            "the message to vanish on bob's side",
            !bodies(&bob, &a).await.contains(&Some("this will self-destruct".into()))
        );
        assert!(drain(&mut bob_events).contains(&Event::Expired { conversation: a, message: on_bob.id }));
        poll_until!(
            alice,
            "the message to vanish on alice's side",
            alice.message(ephemeral).await.unwrap().is_none()
        );

        // Disappearing after read (Bob's setting): the timer starts when Alice reads it.
        bob.set_disappearing(&a, DisappearingMode::AfterRead { seconds: 3600 }).await.unwrap();
        bob.send_text(&a, "read me").await.unwrap();
        poll_until!(
            alice,
            "the after-read message",
            bodies(&alice, &b).await.contains(&Some("read me".into()))
        );
        let unread = alice.messages(&b, 10).await.unwrap().pop().unwrap();
        assert_eq!(unread.disappearing, DisappearingMode::AfterRead { seconds: 3600 });
        assert_eq!(unread.expires_at_ms, None);
        assert_eq!(alice.mark_read(&b).await.unwrap(), 1);
        let read = alice.message(unread.id).await.unwrap().unwrap();
        assert_eq!(read.expires_at_ms, Some(read.read_at_ms.unwrap() + 3_600_000));

        // Note to Self: stored once, shown once.
        alice.set_disappearing(&b, DisappearingMode::Off).await.unwrap();
        alice.send_text(&a, "remember the milk").await.unwrap();
        let before = alice.stats();
        alice.poll_once().await.unwrap();
        assert_eq!(bodies(&alice, &a).await, vec![Some("remember the milk".into())]);
        assert_eq!(alice.stats().handled, before.handled, "our own copy is not handled again");

        // Unknown senders can be blocked: their messages are dropped.
        let (carol, _) =
            Client::create(dir.path().join("carol"), KeySource::KeyFile, config(&devnet), Some("Carol"))
                .await
                .unwrap();
        bob.block(&carol.session_id()).await.unwrap();
        carol.send_text(&b, "spam").await.unwrap();
        let dropped_before = bob.stats().dropped;
        poll_until!(bob, "bob to drop carol's message", bob.stats().dropped > dropped_before);
        assert!(bob.conversation(&carol.session_id()).await.unwrap().is_none());
        // Unblocked, the next one lands in requests; declining deletes it.
        bob.unblock(&carol.session_id()).await.unwrap();
        carol.send_text(&b, "sorry").await.unwrap();
        poll_until!(bob, "carol's request", bob.conversation(&carol.session_id()).await.unwrap().is_some());
        assert!(bob.decline_request(&carol.session_id()).await.unwrap());
        assert!(bob.conversation(&carol.session_id()).await.unwrap().is_none());

        // A restore from the phrase in a second directory: same ID, the history the swarm holds.
        let restored = Client::restore(
            dir.path().join("alice2"),
            KeySource::KeyFile,
            config(&devnet),
            &phrase.to_text(),
        )
        .await
        .unwrap();
        assert_eq!(restored.session_id(), a);
        poll_until!(restored, "the restored history", bodies(&restored, &b).await.len() >= 4);
        // The unsent message was deleted from the swarm and the disappearing one has expired.
        let history = bodies(&restored, &b).await;
        assert_eq!(
            history,
            vec![
                Some("hello bob".into()),
                Some("are you there?".into()),
                Some("hi alice".into()),
                Some("read me".into())
            ]
        );
        assert_eq!(restored.conversation(&b).await.unwrap().unwrap().state, ConversationState::Accepted);
        let restored_msgs = restored.messages(&b, 10).await.unwrap();
        assert_eq!(restored_msgs[0].direction, Direction::Outgoing);
        assert_eq!(restored_msgs[2].direction, Direction::Incoming);
        assert_eq!(bodies(&restored, &a).await, vec![Some("remember the milk".into())]);

        devnet.down().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_duplicates_and_delivery_with_two_swarm_members_stopped() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let mut devnet =
            Devnet::up(options(&dir.path().join("devnet"), 7, STOPPED_STAY_LISTED)).await.unwrap();
        let alice_dir = dir.path().join("alice");
        let bob_dir = dir.path().join("bob");
        let key = || KeySource::passphrase("correct horse");
        let (alice, _) = Client::create(&alice_dir, key(), config(&devnet), Some("Alice")).await.unwrap();
        let (bob, _) = Client::create(&bob_dir, key(), config(&devnet), None).await.unwrap();
        let (a, b) = (alice.session_id(), bob.session_id());

        // A background poller delivers.
        let poller = bob.spawn_poller(Duration::from_millis(500));
        let mut events = bob.subscribe();
        // Three sends at once (they may fall in the same millisecond: each still gets its own
        // sent timestamp, which is the message's identity).
        let (m0, m1, m2) = tokio::join!(
            alice.send_text(&b, "message 0"),
            alice.send_text(&b, "message 1"),
            alice.send_text(&b, "message 2"),
        );
        let sent = [m0.unwrap(), m1.unwrap(), m2.unwrap()];
        let mut stamps = Vec::new();
        for id in sent {
            let m = alice.message(id).await.unwrap().unwrap();
            assert_eq!(m.state, MessageState::Sent);
            stamps.push(m.sent_ms);
        }
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), 3, "distinct sent timestamps");
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut got = 0;
        while got < 3 {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, events.recv()).await.expect("timed out waiting for messages") {
                Ok(Event::Message { conversation, .. }) if conversation == a => got += 1,
                Ok(_) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
        drop(poller);
        let before = bodies(&bob, &a).await;
        let mut sorted = before.clone();
        sorted.sort();
        assert_eq!(sorted, (0..3).map(|i| Some(format!("message {i}"))).collect::<Vec<_>>());

        // Restart: drop and open again (the saved pool is used); a poll handles nothing again
        // (seen hashes and poll positions are in the database).
        drop(events);
        drop(bob);
        let bob = Client::open(&bob_dir, key(), config(&devnet)).await.unwrap();
        assert_eq!(bob.network().stats().registry_fetches, 0, "the saved pool is imported");
        let summary = bob.poll_once().await.unwrap();
        assert_eq!(summary.handled, 0, "{summary:?}");
        assert_eq!(bodies(&bob, &a).await, before);
        // A wrong passphrase does not open it; creating over it is refused.
        drop(bob);
        let again = Client::create(&bob_dir, key(), config(&devnet), None).await;
        assert!(matches!(again, Err(ClientError::AccountExists)), "{again:?}");
        let wrong = Client::open(&bob_dir, KeySource::passphrase("wrong"), config(&devnet)).await;
        assert!(matches!(wrong, Err(ClientError::Db(_))), "{wrong:?}");
        let bob = Client::open(&bob_dir, key(), config(&devnet)).await.unwrap();

        // Two members of Bob's swarm stopped (still listed): messages still get through.
        let members = bob.network().swarm_of(&b).unwrap();
        assert!(members.len() >= 4, "swarm of {}", members.len());
        let nodes = devnet.nodes().unwrap();
        for member in members.iter().take(2) {
            let index = nodes
                .iter()
                .find(|n| n.pubkey_ed25519 == hex::encode(member.ed25519))
                .map(|n| n.index)
                .expect("devnet node");
            assert!(devnet.stop_node(index).await.unwrap());
        }
        for i in 3..6 {
            alice.send_text(&b, &format!("message {i}")).await.unwrap();
        }
        poll_until!(bob, "messages with two members down", bodies(&bob, &a).await.len() == 6);
        let expected: Vec<Option<String>> = (3..6).map(|i| Some(format!("message {i}"))).collect();
        assert_eq!(bodies(&bob, &a).await[3..], expected[..]);
        // Bob answers; Alice gets it too.
        bob.send_text(&a, "got them all").await.unwrap();
        poll_until!(alice, "bob's answer", bodies(&alice, &b).await.len() == 7);

        // With the whole network gone, a message is kept as failed.
        devnet.down().await.unwrap();
        let mut events = alice.subscribe();
        let Err(ClientError::SendFailed { message, .. }) = alice.send_text(&b, "into the void").await else {
            panic!("sending without a network did not fail");
        };
        let failed = alice.message(message).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.body.as_deref()), (MessageState::Failed, Some("into the void")));
        assert!(drain(&mut events).contains(&Event::DeliveryState {
            conversation: b,
            message,
            state: MessageState::Failed
        }));
        // The network comes back (same directory, same nodes): the failed message is sent again
        // with its timestamp, and Bob gets it once.
        let devnet = Devnet::up(options(&dir.path().join("devnet"), 7, STOPPED_STAY_LISTED)).await.unwrap();
        assert!(matches!(alice.resend(sent[0]).await, Err(ClientError::NotFailed)));
        let delivered = alice.resend_failed(&b).await.unwrap();
        assert_eq!(delivered, vec![message]);
        let resent = alice.message(message).await.unwrap().unwrap();
        assert_eq!((resent.state, resent.sent_ms), (MessageState::Sent, failed.sent_ms));
        assert!(drain(&mut events).contains(&Event::DeliveryState {
            conversation: b,
            message,
            state: MessageState::Sent
        }));
        poll_until!(bob, "the resent message", bodies(&bob, &a).await.len() == 8);
        assert_eq!(bodies(&bob, &a).await.last().cloned().flatten().as_deref(), Some("into the void"));
        drop(devnet);
    })
    .await;
}

/// Builds the echo bot example into this test's target directory (`target/<profile>`), returns
/// its path.
fn build_echo_bot() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).expect("test executable in target/<profile>/deps");
    let built = profile.join("examples/echo_bot");
    // `cargo test` builds the examples before running tests; `.ci/run` says so.
    if std::env::var_os(session_devnet::PREBUILT_ENV).is_some() && built.is_file() {
        return built;
    }
    let target = profile.parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "-p", "session-client", "--example", "echo_bot", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
        .arg("--target-dir")
        .arg(target);
    if profile.file_name() == Some(std::ffi::OsStr::new("release")) {
        command.arg("--release");
    }
    assert!(command.status().unwrap().success(), "building the echo bot example");
    built
}

/// The echo bot example against a devnet's `devnet.json`: it accepts our request and answers
/// with our text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_bot_answers() {
    bounded(TEST_TIMEOUT, async {
        let bot_exe = tokio::task::spawn_blocking(build_echo_bot).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let devnet_dir = dir.path().join("devnet");
        let devnet = Devnet::up(options(&devnet_dir, 5, STOPPED_STAY_LISTED)).await.unwrap();
        let mut bot = tokio::process::Command::new(&bot_exe)
            .arg(dir.path().join("bot"))
            .arg(devnet_dir.join("devnet.json"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = bot.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the bot printed no Session ID in time")
            .unwrap()
            .expect("the bot exited");
        let bot_id: SessionId = line.trim().parse().expect("a Session ID");

        let (alice, _) = Client::create(dir.path().join("alice"), KeySource::KeyFile, config(&devnet), None)
            .await
            .unwrap();
        alice.send_text(&bot_id, "ping 1").await.unwrap();
        poll_until!(alice, "the echo", bodies(&alice, &bot_id).await.len() == 2);
        assert_eq!(bodies(&alice, &bot_id).await, vec![Some("ping 1".into()), Some("ping 1".into())]);
        let echo = alice.messages(&bot_id, 10).await.unwrap().pop().unwrap();
        assert_eq!((echo.author, echo.direction), (bot_id, Direction::Incoming));
        assert!(alice.contact(&bot_id).await.unwrap().unwrap().approved_me, "the bot accepted the request");

        bot.kill().await.unwrap();
        devnet.down().await.unwrap();
    })
    .await;
}
