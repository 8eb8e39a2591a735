//! The chat's state (keys, commands, events), its rendering on a `TestBackend`, and one run on a
//! real devnet with two clients.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use session_client::client::Event;
use session_client::content::DisappearingMode;
use session_client::db::{
    Contact, Conversation, ConversationKind, ConversationState, Direction, Message, MessageId, MessageState,
};
use session_protocol::{IdPrefix, SessionId};

use super::app::{Action, App, Focus, Outcome};
use super::command::{self, Command, CommandError};
use super::ui;

fn id(n: u8) -> SessionId {
    SessionId::new(IdPrefix::Standard, [n; 32])
}

const ME: u8 = 1;
const BOB: u8 = 2;
const CAROL: u8 = 3;
const DAVE: u8 = 4;

fn conversation(peer: SessionId, state: ConversationState, unread: u64, activity: u64) -> Conversation {
    Conversation {
        peer,
        kind: ConversationKind::Direct,
        state,
        disappearing: DisappearingMode::Off,
        unread,
        last_activity_ms: activity,
        created_ms: 0,
    }
}

fn contact(peer: SessionId, name: &str, blocked: bool) -> Contact {
    Contact {
        session_id: peer,
        display_name: Some(name.to_owned()),
        nickname: None,
        approved: true,
        approved_me: true,
        blocked,
        created_ms: 0,
    }
}

fn message(row: i64, peer: SessionId, ours: bool, body: &str, state: MessageState) -> Message {
    Message {
        id: MessageId(row),
        conversation: peer,
        author: if ours { id(ME) } else { peer },
        // 12:34 UTC on some day, one minute per row.
        sent_ms: (45_240 + 60 * u64::try_from(row).unwrap()) * 1000,
        server_hash: None,
        body: Some(body.to_owned()),
        direction: if ours { Direction::Outgoing } else { Direction::Incoming },
        state,
        disappearing: DisappearingMode::Off,
        expires_at_ms: None,
        read_at_ms: None,
        deleted: false,
    }
}

fn press(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Types `text` and presses Enter; returns the actions of the Enter. Typing a message may only
/// produce typing indicators.
fn enter_line(app: &mut App, text: &str) -> Vec<Action> {
    for c in text.chars() {
        let actions = app.handle_key(press(KeyCode::Char(c)));
        assert!(actions.iter().all(|a| matches!(a, Action::Typing { .. })), "{actions:?}");
    }
    app.handle_key(press(KeyCode::Enter))
}

/// An app with Bob (accepted, 2 unread, newest), Carol (a request) and Dave (blocked); Bob's
/// conversation is open and loaded.
fn app_with_three() -> App {
    let (mut app, actions) = App::new(id(ME), None);
    assert_eq!(actions, vec![Action::LoadConversations]);
    let actions = app.set_conversations(
        vec![
            conversation(id(CAROL), ConversationState::Request, 1, 300),
            conversation(id(BOB), ConversationState::Accepted, 2, 200),
            conversation(id(DAVE), ConversationState::Accepted, 0, 100),
        ],
        vec![
            contact(id(BOB), "Bob", false),
            contact(id(CAROL), "Carol", false),
            contact(id(DAVE), "Dave", true),
        ],
    );
    // Bob is first (accepted before requests), so it opens: loaded and marked read.
    assert_eq!(actions, vec![Action::LoadMessages(id(BOB)), Action::MarkRead(id(BOB))]);
    app.set_messages(
        id(BOB),
        vec![
            message(1, id(BOB), false, "hi there", MessageState::Received),
            message(2, id(BOB), true, "hello bob", MessageState::Sent),
        ],
    );
    app
}

/// Renders `app` on a `width` × `height` test terminal; the screen's rows joined by newlines.
fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The screen row that contains `needle`.
fn row_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"))
}

// ---- commands ----

#[test]
fn durations_parse_with_units_and_reject_nonsense() {
    assert_eq!(command::parse_duration("30s"), Ok(30));
    assert_eq!(command::parse_duration("45"), Ok(45));
    assert_eq!(command::parse_duration("5m"), Ok(300));
    assert_eq!(command::parse_duration("1h"), Ok(3600));
    assert_eq!(command::parse_duration("1d"), Ok(86_400));
    assert_eq!(command::parse_duration("2w"), Ok(1_209_600));
    for bad in ["", "m", "0s", "0", "5x", "5 m", "-5m", "1.5h", "99999999999999999999s", "50000d"] {
        assert!(
            matches!(command::parse_duration(bad), Err(CommandError::BadDuration { .. })),
            "{bad:?} accepted"
        );
    }
    assert_eq!(command::format_duration(300), "5m");
    assert_eq!(command::format_duration(90), "90s");
    assert_eq!(command::format_duration(86_400), "1d");
}

#[test]
fn slash_commands_parse_and_errors_say_what_is_wrong() {
    let bob = id(BOB);
    assert_eq!(command::parse(&format!("/new {bob}")), Ok(Command::New(bob)));
    assert_eq!(command::parse("/accept"), Ok(Command::Accept));
    assert_eq!(command::parse("/decline"), Ok(Command::Decline));
    assert_eq!(command::parse("/block"), Ok(Command::Block));
    assert_eq!(command::parse("/unsend"), Ok(Command::Unsend));
    assert_eq!(command::parse("/help"), Ok(Command::Help));
    assert_eq!(command::parse("/name  Alice Smith "), Ok(Command::Name("Alice Smith".to_owned())));
    assert_eq!(command::parse("/disappear off"), Ok(Command::Disappear(DisappearingMode::Off)));
    assert_eq!(
        command::parse("/disappear send 5m"),
        Ok(Command::Disappear(DisappearingMode::AfterSend { seconds: 300 }))
    );
    assert_eq!(
        command::parse("/disappear read 1d"),
        Ok(Command::Disappear(DisappearingMode::AfterRead { seconds: 86_400 }))
    );

    assert_eq!(command::parse("/frobnicate"), Err(CommandError::Unknown("frobnicate".to_owned())));
    assert!(matches!(command::parse("/new"), Err(CommandError::Usage(_))));
    assert!(matches!(command::parse("/new 05abc"), Err(CommandError::BadId(_))));
    assert!(matches!(command::parse("/accept now"), Err(CommandError::Usage(_))));
    assert!(matches!(command::parse("/name"), Err(CommandError::Usage(_))));
    assert!(matches!(command::parse("/disappear"), Err(CommandError::Usage(_))));
    assert!(matches!(command::parse("/disappear sometimes"), Err(CommandError::Usage(_))));
    assert!(matches!(command::parse("/disappear send"), Err(CommandError::Usage(_))));
    assert!(matches!(command::parse("/disappear send 0s"), Err(CommandError::BadDuration { .. })));
    assert!(matches!(command::parse("/disappear read soon"), Err(CommandError::BadDuration { .. })));
}

// ---- keys ----

#[test]
fn list_hides_blocked_and_puts_requests_last() {
    let app = app_with_three();
    let peers: Vec<SessionId> = app.entries().iter().map(|e| e.peer).collect();
    assert_eq!(peers, vec![id(BOB), id(CAROL)]);
    assert_eq!(app.entries()[0].label(), "Bob");
    // Bob's unread count was cleared when it opened.
    assert_eq!(app.entries()[0].unread, 0);
    assert_eq!(app.entries()[1].unread, 1);
}

#[test]
fn arrows_and_ctrl_p_n_choose_a_conversation_and_mark_it_read() {
    let mut app = app_with_three();
    assert_eq!(
        app.handle_key(press(KeyCode::Down)),
        vec![Action::LoadMessages(id(CAROL)), Action::MarkRead(id(CAROL))]
    );
    assert_eq!(app.selected(), Some(id(CAROL)));
    assert!(app.messages().is_empty(), "the old conversation's messages are not shown");
    // At the end: nothing happens.
    assert_eq!(app.handle_key(press(KeyCode::Down)), vec![]);
    // Back up with Ctrl-P: Bob has no unread now, so no mark-read.
    assert_eq!(app.handle_key(ctrl('p')), vec![Action::LoadMessages(id(BOB))]);
    assert_eq!(app.handle_key(ctrl('n')), vec![Action::LoadMessages(id(CAROL))]);
    assert_eq!(app.selected(), Some(id(CAROL)));
}

#[test]
fn tab_moves_focus_and_typing_in_the_list_starts_writing() {
    let mut app = app_with_three();
    assert_eq!(app.focus(), Focus::List);
    app.handle_key(press(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Input);
    app.handle_key(press(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::List);
    app.handle_key(press(KeyCode::Char('h')));
    assert_eq!(app.focus(), Focus::Input);
    assert_eq!(app.input(), "h");
    app.handle_key(press(KeyCode::Backspace));
    assert_eq!(app.input(), "");
}

#[test]
fn enter_sends_the_line_to_the_selected_conversation() {
    let mut app = app_with_three();
    let actions = enter_line(&mut app, "see you at 8");
    assert_eq!(actions, vec![Action::Send { to: id(BOB), text: "see you at 8".to_owned() }]);
    assert_eq!(app.input(), "", "the input line is cleared");
    // An empty line sends nothing.
    assert_eq!(app.handle_key(press(KeyCode::Enter)), vec![]);
}

#[test]
fn esc_and_ctrl_c_quit_but_esc_closes_the_help_first() {
    let mut app = app_with_three();
    assert_eq!(enter_line(&mut app, "/help"), vec![]);
    assert!(app.help_shown());
    assert_eq!(app.handle_key(press(KeyCode::Esc)), vec![]);
    assert!(!app.help_shown());
    assert!(!app.should_quit());
    assert_eq!(app.handle_key(press(KeyCode::Esc)), vec![Action::Quit]);
    assert!(app.should_quit());

    let mut app = app_with_three();
    assert_eq!(app.handle_key(ctrl('c')), vec![Action::Quit]);
    assert!(app.should_quit());
}

#[test]
fn bad_commands_end_in_the_status_line_and_keep_the_line() {
    let mut app = app_with_three();
    assert_eq!(enter_line(&mut app, "/frobnicate"), vec![]);
    let notice = app.notice().expect("a notice");
    assert!(notice.error);
    assert!(notice.text.contains("unknown command /frobnicate"), "{}", notice.text);
    assert_eq!(app.input(), "/frobnicate");

    app.handle_key(ctrl('u'));
    assert_eq!(enter_line(&mut app, "/disappear send 5 minutes"), vec![]);
    assert!(app.notice().unwrap().text.contains("usage: /disappear"), "{}", app.notice().unwrap().text);

    // Bob's conversation is no request.
    app.handle_key(ctrl('u'));
    assert_eq!(enter_line(&mut app, "/accept"), vec![]);
    assert!(app.notice().unwrap().text.contains("not a message request"));
}

#[test]
fn commands_become_actions_on_the_selected_conversation() {
    let mut app = app_with_three();
    assert_eq!(
        enter_line(&mut app, "/disappear read 1h"),
        vec![Action::SetDisappearing { peer: id(BOB), mode: DisappearingMode::AfterRead { seconds: 3600 } }]
    );
    assert_eq!(enter_line(&mut app, "/unsend"), vec![Action::Unsend(MessageId(2))]);
    assert_eq!(enter_line(&mut app, "/block"), vec![Action::Block(id(BOB))]);
    assert_eq!(enter_line(&mut app, "/name Alice A."), vec![Action::SetDisplayName("Alice A.".to_owned())]);
    app.handle_key(press(KeyCode::Down));
    assert_eq!(enter_line(&mut app, "/accept"), vec![Action::Accept(id(CAROL))]);
    assert_eq!(enter_line(&mut app, "/decline"), vec![Action::Decline(id(CAROL))]);
    // Nothing of ours in Carol's conversation.
    assert_eq!(enter_line(&mut app, "/unsend"), vec![]);
    assert!(app.notice().unwrap().error);
}

#[test]
fn new_opens_a_draft_that_the_first_message_makes_real() {
    let mut app = app_with_three();
    let erin = id(5);
    assert_eq!(enter_line(&mut app, &format!("/new {erin}")), vec![]);
    assert_eq!(app.selected(), Some(erin));
    assert!(app.selected_entry().unwrap().draft);
    assert_eq!(
        enter_line(&mut app, "hello erin"),
        vec![Action::Send { to: erin, text: "hello erin".to_owned() }]
    );
    // The client stores the message and says so: shown at once as sending; the list reloads.
    let sent = message(7, erin, true, "hello erin", MessageState::Sending);
    let actions = app.apply(Event::Message { conversation: erin, message: sent });
    assert_eq!(actions, vec![Action::LoadConversations]);
    assert_eq!(app.messages().len(), 1);
    assert_eq!(app.messages()[0].state, MessageState::Sending);
    // The reloaded list has Erin's conversation: no longer a draft, and loaded.
    let actions = app.set_conversations(
        vec![
            conversation(id(BOB), ConversationState::Accepted, 0, 200),
            conversation(erin, ConversationState::Accepted, 0, 900),
        ],
        vec![contact(id(BOB), "Bob", false)],
    );
    assert_eq!(actions, vec![Action::LoadMessages(erin)]);
    assert!(!app.selected_entry().unwrap().draft);
    assert_eq!(app.entries()[0].peer, erin, "newest activity first");
}

#[test]
fn opening_with_an_id_selects_it() {
    let (mut app, _) = App::new(id(ME), Some(id(BOB)));
    assert_eq!(app.selected(), Some(id(BOB)));
    assert_eq!(app.focus(), Focus::Input);
    let actions = app.set_conversations(
        vec![conversation(id(BOB), ConversationState::Accepted, 3, 200)],
        vec![contact(id(BOB), "Bob", false)],
    );
    assert_eq!(actions, vec![Action::LoadMessages(id(BOB)), Action::MarkRead(id(BOB))]);
}

// ---- events ----

#[test]
fn a_message_for_another_conversation_bumps_its_unread_marker() {
    let mut app = app_with_three();
    let actions = app.apply(Event::Message {
        conversation: id(CAROL),
        message: message(10, id(CAROL), false, "are you there?", MessageState::Received),
    });
    assert_eq!(actions, vec![]);
    let carol = app.entries().iter().find(|e| e.peer == id(CAROL)).unwrap();
    assert_eq!(carol.unread, 2);
    assert_eq!(app.messages().len(), 2, "the open conversation is unchanged");
    // From someone not in the list: reload it.
    let stranger = id(9);
    let actions = app.apply(Event::Message {
        conversation: stranger,
        message: message(11, stranger, false, "hi", MessageState::Received),
    });
    assert_eq!(actions, vec![Action::LoadConversations]);
}

#[test]
fn a_message_for_the_open_conversation_shows_and_is_marked_read() {
    let mut app = app_with_three();
    let actions = app.apply(Event::Message {
        conversation: id(BOB),
        message: message(10, id(BOB), false, "new one", MessageState::Received),
    });
    assert_eq!(actions, vec![Action::MarkRead(id(BOB))]);
    assert_eq!(app.messages().last().unwrap().body.as_deref(), Some("new one"));
    assert_eq!(app.entries()[0].unread, 0);
}

#[test]
fn delivery_state_unsent_and_expired_update_the_shown_messages() {
    let mut app = app_with_three();
    app.apply(Event::DeliveryState {
        conversation: id(BOB),
        message: MessageId(2),
        state: MessageState::Read,
    });
    assert_eq!(app.messages()[1].state, MessageState::Read);
    app.apply(Event::Unsent { conversation: id(BOB), message: MessageId(1) });
    assert!(app.messages()[0].deleted);
    assert_eq!(app.messages()[0].body, None);
    assert!(render(&app, 100, 12).contains("(unsent)"));
    app.apply(Event::Expired { conversation: id(BOB), message: MessageId(2) });
    assert_eq!(app.messages().len(), 1);
    app.apply(Event::DeliveryState {
        conversation: id(BOB),
        message: MessageId(1),
        state: MessageState::Failed,
    });
    assert!(app.notice().unwrap().error, "a failed delivery is reported");
}

#[test]
fn typing_shows_until_stopped_or_timed_out() {
    let mut app = app_with_three();
    app.tick(1_000_000);
    app.apply(Event::Typing { conversation: id(BOB), started: true });
    assert!(app.peer_typing());
    assert!(render(&app, 100, 12).contains("Bob is typing"));
    app.apply(Event::Typing { conversation: id(BOB), started: false });
    assert!(!app.peer_typing());
    app.apply(Event::Typing { conversation: id(BOB), started: true });
    app.tick(1_000_000 + 21_000);
    assert!(!app.peer_typing(), "typing runs out after the typing TTL");
    // A typing peer that is not the open conversation is not shown.
    app.apply(Event::Typing { conversation: id(CAROL), started: true });
    assert!(!app.peer_typing());
}

#[test]
fn a_load_that_raced_an_event_keeps_the_newer_message() {
    let mut app = app_with_three();
    app.apply(Event::Message {
        conversation: id(BOB),
        message: message(3, id(BOB), true, "just sent", MessageState::Sending),
    });
    // A load that read the database before message 3 was stored (and after message 2 lost its
    // body).
    let mut unsent = message(2, id(BOB), true, "hello bob", MessageState::Sent);
    unsent.body = None;
    unsent.deleted = true;
    app.apply_outcome(Outcome::Messages(
        id(BOB),
        vec![message(1, id(BOB), false, "hi there", MessageState::Received), unsent],
    ));
    let bodies: Vec<_> = app.messages().iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, [Some("hi there".to_owned()), None, Some("just sent".to_owned())]);
}

// ---- rendering ----

#[test]
fn screen_shows_list_messages_states_and_status() {
    let mut app = app_with_three();
    app.apply(Event::Message {
        conversation: id(BOB),
        message: message(3, id(BOB), true, "on my way", MessageState::Sending),
    });
    app.apply(Event::Message {
        conversation: id(BOB),
        message: message(4, id(BOB), true, "lost one", MessageState::Failed),
    });
    app.apply(Event::Message {
        conversation: id(BOB),
        message: message(5, id(BOB), true, "read one", MessageState::Read),
    });
    app.apply(Event::Message {
        conversation: id(CAROL),
        message: message(6, id(CAROL), false, "hey", MessageState::Received),
    });
    app.set_network("net: 6 nodes, 2 paths");
    let screen = render(&app, 110, 16);
    // The list: names, the request tag, Carol's unread count; Dave (blocked) is hidden.
    assert!(row_with(&screen, "Carol").contains("(2)"), "{screen}");
    assert!(row_with(&screen, "Carol").contains("[request]"), "{screen}");
    assert!(!screen.contains("Dave"), "{screen}");
    // The messages: time, author, text, state marks.
    assert!(row_with(&screen, "hi there").contains("12:35 Bob: hi there"), "{screen}");
    assert!(row_with(&screen, "hello bob").contains("12:36 me: hello bob ✓"), "{screen}");
    assert!(row_with(&screen, "on my way").contains("me: on my way sending"), "{screen}");
    assert!(row_with(&screen, "lost one").contains("✗ failed"), "{screen}");
    assert!(row_with(&screen, "read one").contains("read one ✓✓"), "{screen}");
    // The status line: our short ID and the network.
    let status = screen.lines().last().unwrap();
    assert!(status.contains(&id(ME).short()), "{status}");
    assert!(status.contains("net: 6 nodes, 2 paths"), "{status}");
    assert!(status.contains("/help"), "{status}");
}

#[test]
fn screen_shows_disappearing_timers_errors_and_the_input_line() {
    let mut app = app_with_three();
    let mut m = message(3, id(BOB), false, "secret", MessageState::Received);
    m.disappearing = DisappearingMode::AfterRead { seconds: 300 };
    m.expires_at_ms = Some(1_000_000 + 240_000);
    app.tick(1_000_000);
    app.apply(Event::Message { conversation: id(BOB), message: m });
    for c in "draft text".chars() {
        app.handle_key(press(KeyCode::Char(c)));
    }
    let screen = render(&app, 100, 14);
    assert!(row_with(&screen, "secret").contains("secret ⏱4m"), "{screen}");
    assert!(row_with(&screen, "> draft text").contains("> draft text"), "{screen}");
    app.handle_key(ctrl('u'));
    enter_line(&mut app, "/bogus");
    let screen = render(&app, 100, 14);
    assert!(screen.lines().last().unwrap().contains("unknown command /bogus"), "{screen}");
}

#[test]
fn long_messages_wrap_and_page_up_scrolls_back() {
    let (mut app, _) = App::new(id(ME), None);
    app.set_conversations(vec![conversation(id(BOB), ConversationState::Accepted, 0, 1)], vec![]);
    let long = "word ".repeat(40);
    let mut messages = vec![message(1, id(BOB), false, "the very first", MessageState::Received)];
    messages
        .extend((2..40).map(|i| message(i, id(BOB), false, &format!("line {i}"), MessageState::Received)));
    messages.push(message(40, id(BOB), false, &long, MessageState::Received));
    app.set_messages(id(BOB), messages);
    let screen = render(&app, 80, 20);
    assert!(!screen.contains("the very first"), "{screen}");
    // The long message takes several rows; the newest is at the bottom.
    assert!(screen.lines().filter(|l| l.contains("word word")).count() >= 3, "{screen}");
    // The peer is unnamed: its short ID is the label.
    assert!(screen.contains(&id(BOB).short()), "{screen}");
    for _ in 0..10 {
        app.handle_key(press(KeyCode::PageUp));
    }
    let screen = render(&app, 80, 20);
    assert!(screen.contains("the very first"), "{screen}");
    // Scrolling stopped at the top: one PageDown moves away from it again.
    app.handle_key(press(KeyCode::PageDown));
    let screen = render(&app, 80, 20);
    assert!(!screen.contains("the very first"), "{screen}");
    assert!(screen.contains("line 12"), "{screen}");
}

#[test]
fn help_lists_keys_commands_and_our_full_id() {
    let mut app = app_with_three();
    enter_line(&mut app, "/help");
    let screen = render(&app, 120, 30);
    assert!(screen.contains("/disappear off | send DUR | read DUR"), "{screen}");
    assert!(screen.contains("PageUp/PageDown"), "{screen}");
    assert!(screen.contains(&id(ME).to_hex()), "{screen}");
}

mod devnet;

#[test]
fn typing_indicators_follow_the_input_line() {
    let mut app = app_with_three();
    app.tick(1_000);
    let typing = |to: u8, started| Action::Typing { to: id(to), started };
    // The first letter of a message to Bob starts it; more letters do not repeat it...
    assert_eq!(app.handle_key(press(KeyCode::Char('h'))), vec![typing(BOB, true)]);
    assert_eq!(app.handle_key(press(KeyCode::Char('i'))), vec![]);
    // ...until the refresh interval has passed.
    app.tick(1_000 + super::app::TYPING_REFRESH_MS);
    assert_eq!(app.handle_key(press(KeyCode::Char('!'))), vec![typing(BOB, true)]);
    // Emptying the line stops it.
    app.handle_key(press(KeyCode::Backspace));
    app.handle_key(press(KeyCode::Backspace));
    assert_eq!(app.handle_key(press(KeyCode::Backspace)), vec![typing(BOB, false)]);
    // A slash command is not typing to anyone.
    assert_eq!(app.handle_key(press(KeyCode::Char('/'))), vec![]);
    assert_eq!(app.handle_key(ctrl('u')), vec![]);
    // Sending ends it without a "stopped" (the message does that at the peer).
    assert_eq!(app.paste("see you"), vec![typing(BOB, true)]);
    assert_eq!(
        app.handle_key(press(KeyCode::Enter)),
        vec![Action::Send { to: id(BOB), text: "see you".into() }]
    );
    // Moving to another conversation while writing stops it for the first. Carol's is a
    // request: no indicator goes to her until it is accepted.
    app.paste("draft");
    let actions = app.handle_key(press(KeyCode::Down));
    assert!(actions.contains(&typing(BOB, false)), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Typing { started: true, .. })), "{actions:?}");
}

#[test]
fn unblock_lists_and_unblocks_by_name_or_id_and_retry_needs_a_failed_message() {
    let mut app = app_with_three();
    assert_eq!(command::parse("/unblock"), Ok(Command::Unblock(None)));
    assert_eq!(command::parse("/unblock  Dave "), Ok(Command::Unblock(Some("Dave".into()))));
    assert_eq!(command::parse("/retry"), Ok(Command::Retry));
    assert_eq!(command::parse("/receipts on"), Ok(Command::Setting(command::Setting::ReadReceipts, true)));
    assert_eq!(
        command::parse("/Typing OFF"),
        Ok(Command::Setting(command::Setting::TypingIndicators, false))
    );
    assert!(matches!(command::parse("/typing maybe"), Err(CommandError::Usage(_))));
    assert_eq!(
        enter_line(&mut app, "/typing on"),
        vec![Action::SetSetting(command::Setting::TypingIndicators, true)]
    );
    // Alone: the list of blocked people, in the status line.
    assert_eq!(enter_line(&mut app, "/unblock"), vec![]);
    let notice = app.notice().unwrap();
    assert!(!notice.error && notice.text.contains("Dave"), "{notice:?}");
    // By name (any case) or by Session ID.
    assert_eq!(enter_line(&mut app, "/unblock dave"), vec![Action::Unblock(id(DAVE))]);
    assert_eq!(enter_line(&mut app, &format!("/unblock {}", id(DAVE))), vec![Action::Unblock(id(DAVE))]);
    // Someone not blocked: an error, and the line stays to be corrected.
    assert_eq!(enter_line(&mut app, "/unblock Bob"), vec![]);
    assert!(app.notice().unwrap().error);
    assert_eq!(app.input(), "/unblock Bob");
    app.handle_key(ctrl('u'));
    // Nothing failed in Bob's conversation yet.
    assert_eq!(enter_line(&mut app, "/retry"), vec![]);
    assert!(app.notice().unwrap().text.contains("no failed message"), "{:?}", app.notice());
    app.handle_key(ctrl('u'));
    app.apply(Event::DeliveryState {
        conversation: id(BOB),
        message: MessageId(2),
        state: MessageState::Failed,
    });
    assert_eq!(enter_line(&mut app, "/retry"), vec![Action::Resend(id(BOB))]);
}
