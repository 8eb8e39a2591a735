//! Migration tests (they need [`Store::open_at_version`], which is crate-private).

use session_protocol::id::{IdPrefix, SessionId};
use session_protocol::keys::AccountSeed;
use session_protocol::message_hash::Namespace;

use super::*;
use crate::content::DisappearingMode;

fn peer(n: u8) -> SessionId {
    SessionId::new(IdPrefix::Standard, [n; 32])
}

#[test]
fn open_at_v1_then_migrate_to_latest_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    {
        let mut store = Store::open_at_version(&path, &KeySource::KeyFile, KdfParams::DEFAULT, 1).unwrap();
        assert_eq!(store.schema_version().unwrap(), 1);
        store.create_account(&AccountSeed::from_bytes([1; 32]), 1_000).unwrap();
        store.ensure_conversation(&peer(2), ConversationState::Accepted, 2_000).unwrap();
        store
            .insert_message(&NewMessage {
                conversation: peer(2),
                author: peer(2),
                sent_ms: 3_000,
                server_hash: Some("h1".into()),
                body: "from v1".into(),
                direction: Direction::Incoming,
                state: MessageState::Received,
                disappearing: DisappearingMode::Off,
            })
            .unwrap()
            .unwrap();
        // The v2 tables do not exist yet.
        assert!(matches!(store.mark_seen("h1", 10_000), Err(DbError::Sqlite(_))));
    }

    let store = Store::open(&path, &KeySource::KeyFile).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    const { assert!(LATEST_VERSION >= 2) };
    // v1 data survived.
    assert_eq!(store.account().unwrap().unwrap().created_ms, 1_000);
    let messages = store.messages(&peer(2), 10).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body.as_deref(), Some("from v1"));
    // v2 tables work.
    assert!(store.mark_seen("h1", 10_000).unwrap());
    let node = [9u8; 32];
    store
        .set_last_hash(&node, Namespace::DEFAULT, &LastHash { hash: "x".into(), expires_ms: 5_000 })
        .unwrap();
    assert_eq!(store.last_hash(&node, Namespace::DEFAULT, 4_000).unwrap().unwrap().hash, "x");
}

#[test]
fn migrating_twice_is_a_no_op_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    drop(Store::open(&path, &KeySource::KeyFile).unwrap());
    let store = Store::open(&path, &KeySource::KeyFile).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    store.conn_for_tests().pragma_update(None, "user_version", LATEST_VERSION + 1).unwrap();
    drop(store);
    match Store::open(&path, &KeySource::KeyFile) {
        Err(DbError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (LATEST_VERSION + 1, LATEST_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn sends_left_sending_by_a_dead_process_become_failed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let me = peer(1);
    let outgoing = |sent_ms, state| NewMessage {
        conversation: peer(2),
        author: me,
        sent_ms,
        server_hash: None,
        body: format!("at {sent_ms}"),
        direction: Direction::Outgoing,
        state,
        disappearing: DisappearingMode::Off,
    };
    let (sending, sent, incoming) = {
        let mut store = Store::open(&path, &KeySource::KeyFile).unwrap();
        store.create_account(&AccountSeed::from_bytes([1; 32]), 1_000).unwrap();
        store.ensure_conversation(&peer(2), ConversationState::Accepted, 2_000).unwrap();
        let sending = store.insert_message(&outgoing(3_000, MessageState::Sending)).unwrap().unwrap();
        let sent = store.insert_message(&outgoing(3_001, MessageState::Sent)).unwrap().unwrap();
        let incoming = store
            .insert_message(&NewMessage {
                author: peer(2),
                direction: Direction::Incoming,
                state: MessageState::Received,
                ..outgoing(3_002, MessageState::Received)
            })
            .unwrap()
            .unwrap();
        (sending, sent, incoming)
    };
    let store = Store::open(&path, &KeySource::KeyFile).unwrap();
    assert_eq!(store.fail_interrupted_sends().unwrap(), 1);
    let state = |id| store.message(id).unwrap().unwrap().state;
    assert_eq!(state(sending), MessageState::Failed);
    assert_eq!(state(sent), MessageState::Sent);
    assert_eq!(state(incoming), MessageState::Received);
    assert_eq!(store.fail_interrupted_sends().unwrap(), 0);
}
