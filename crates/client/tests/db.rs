//! The local database on real files in temp dirs: keys, locking, encryption at rest, dedupe,
//! conversation states, expiry.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use session_client::content::DisappearingMode;
use session_client::db::key::{kdf_header_path, key_file_path};
use session_client::db::{
    ConversationKind, ConversationState, Db, DbError, Direction, KdfParams, KeySource, LastHash,
    MessageState, NewMessage, Settings, Store,
};
use session_protocol::id::{IdPrefix, SessionId};
use session_protocol::keys::{AccountSeed, IdentityKey};
use session_protocol::message_hash::Namespace;

/// Cheap Argon2id parameters for tests that open many passphrase databases; one test below uses
/// the defaults.
const FAST_KDF: KdfParams = KdfParams { memory_kib: 1024, iterations: 1, parallelism: 1 };

fn peer(n: u8) -> SessionId {
    SessionId::new(IdPrefix::Standard, [n; 32])
}

fn text(
    conversation: SessionId,
    author: SessionId,
    sent_ms: u64,
    hash: Option<&str>,
    body: &str,
) -> NewMessage {
    NewMessage {
        conversation,
        author,
        sent_ms,
        server_hash: hash.map(str::to_owned),
        body: body.to_owned(),
        direction: Direction::Incoming,
        state: MessageState::Received,
        disappearing: DisappearingMode::Off,
    }
}

fn header(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()[..16].to_vec()
}

#[test]
fn create_reopen_with_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let seed = AccountSeed::from_bytes([3; 32]);
    {
        let mut store = Store::open(&path, &KeySource::KeyFile).unwrap();
        assert!(store.account().unwrap().is_none());
        store.create_account(&seed, 1_700_000_000_000).unwrap();
        store.set_display_name(Some("Alice")).unwrap();
        store.set_settings(Settings { read_receipts: true, typing_indicators: false }).unwrap();
        assert!(matches!(store.create_account(&seed, 1), Err(DbError::AccountExists)));
    }
    let store = Store::open(&path, &KeySource::KeyFile).unwrap();
    let account = store.account().unwrap().unwrap();
    assert_eq!(account.seed.as_bytes(), seed.as_bytes());
    assert_eq!(account.created_ms, 1_700_000_000_000);
    assert_eq!(account.display_name.as_deref(), Some("Alice"));
    assert_eq!(account.settings, Settings { read_receipts: true, typing_indicators: false });
    assert_eq!(store.own_session_id(), Some(IdentityKey::from_seed(&seed).session_id()));
}

#[test]
fn key_file_is_0600_and_the_database_is_not_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    {
        let mut store = Store::open(&path, &KeySource::KeyFile).unwrap();
        store.create_account(&AccountSeed::from_bytes([4; 32]), 5).unwrap();
        store.set_display_name(Some("findable-plaintext-marker")).unwrap();
    }
    let key_file = key_file_path(&path);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode is {mode:o}");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key_text.len(), 64);
    assert!(key_text.bytes().all(|b| b.is_ascii_hexdigit()));

    let bytes = std::fs::read(&path).unwrap();
    assert_ne!(&bytes[..16], b"SQLite format 3\0");
    assert!(!bytes.windows(25).any(|w| w == b"findable-plaintext-marker"));
}

#[test]
fn passphrase_database_wrong_passphrase_is_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    {
        let mut store = Store::open_with(&path, &KeySource::passphrase("correct horse"), FAST_KDF).unwrap();
        store.create_account(&AccountSeed::from_bytes([5; 32]), 7).unwrap();
    }
    assert_ne!(header(&path), b"SQLite format 3\0");
    let kdf = std::fs::read(kdf_header_path(&path)).unwrap();
    assert_eq!(kdf.len(), 36);
    assert_eq!(&kdf[..8], b"SSNKDF01");
    assert!(!key_file_path(&path).exists());

    assert!(matches!(Store::open(&path, &KeySource::passphrase("wrong horse")), Err(DbError::WrongKey)));
    assert!(matches!(Store::open(&path, &KeySource::passphrase("")), Err(DbError::WrongKey)));
    // The header's parameters are used, not the ones passed for new databases.
    let store = Store::open_with(&path, &KeySource::passphrase("correct horse"), KdfParams::DEFAULT).unwrap();
    assert_eq!(store.account().unwrap().unwrap().created_ms, 7);
}

#[test]
fn default_argon2_parameters_open_and_reject() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    drop(Store::open(&path, &KeySource::passphrase("pass")).unwrap());
    let kdf = std::fs::read(kdf_header_path(&path)).unwrap();
    assert_eq!(u32::from_le_bytes(kdf[8..12].try_into().unwrap()), 64 * 1024);
    assert!(matches!(Store::open(&path, &KeySource::passphrase("Pass")), Err(DbError::WrongKey)));
    drop(Store::open(&path, &KeySource::passphrase("pass")).unwrap());
}

#[test]
fn wrong_key_file_and_wrong_key_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    drop(Store::open(&path, &KeySource::KeyFile).unwrap());
    // Opened with a passphrase: there is no passphrase header.
    assert!(matches!(
        Store::open(&path, &KeySource::passphrase("x")),
        Err(DbError::MissingKeyMaterial { .. })
    ));
    // Another random key in the key file.
    std::fs::write(key_file_path(&path), "ab".repeat(32)).unwrap();
    assert!(matches!(Store::open(&path, &KeySource::KeyFile), Err(DbError::WrongKey)));
    // Garbage in the key file.
    std::fs::write(key_file_path(&path), "not hex").unwrap();
    assert!(matches!(Store::open(&path, &KeySource::KeyFile), Err(DbError::MalformedKeyFile { .. })));
    std::fs::remove_file(key_file_path(&path)).unwrap();
    assert!(matches!(Store::open(&path, &KeySource::KeyFile), Err(DbError::MissingKeyMaterial { .. })));
}

#[test]
fn a_plain_sqlite_file_is_wrong_key_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    std::fs::write(&path, b"SQLite format 3\0 and then nothing that makes sense, repeated ".repeat(100))
        .unwrap();
    std::fs::write(key_file_path(&path), "cd".repeat(32)).unwrap();
    assert!(matches!(Store::open(&path, &KeySource::KeyFile), Err(DbError::WrongKey)));
}

#[test]
fn second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let first = Store::open(&path, &KeySource::KeyFile).unwrap();
    assert!(matches!(Store::open(&path, &KeySource::KeyFile), Err(DbError::Locked)));
    drop(first);
    drop(Store::open(&path, &KeySource::KeyFile).unwrap());
}

#[test]
fn incoming_dedupe_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let bob = peer(0xb0);
    // What a poll loop does with each fetched message: one transaction records the hash and
    // stores what the message caused.
    let handle = |store: &mut Store, hash: &str, sent_ms: u64| -> bool {
        store
            .transaction(|s| {
                if !s.mark_seen(hash, 2_000_000)? {
                    return Ok(false);
                }
                s.ensure_conversation(&bob, ConversationState::Request, sent_ms)?;
                Ok(s.insert_message(&text(bob, bob, sent_ms, Some(hash), "hello"))?.is_some())
            })
            .unwrap()
    };
    {
        let mut store = Store::open(&path, &KeySource::KeyFile).unwrap();
        assert!(handle(&mut store, "hash-1", 1_000));
        assert!(!handle(&mut store, "hash-1", 1_000));
    }
    let mut store = Store::open(&path, &KeySource::KeyFile).unwrap();
    assert!(store.is_seen("hash-1").unwrap());
    assert!(!handle(&mut store, "hash-1", 1_000));
    assert!(handle(&mut store, "hash-2", 1_001));
    assert_eq!(store.messages(&bob, 100).unwrap().len(), 2);

    // Without the seen table, the message table itself refuses duplicates: same server hash, or
    // same (author, sent time) under another hash (a message re-sent to another node).
    assert_eq!(store.insert_message(&text(bob, bob, 9_999, Some("hash-1"), "again")).unwrap(), None);
    assert_eq!(store.insert_message(&text(bob, bob, 1_000, Some("hash-3"), "again")).unwrap(), None);
    assert_eq!(store.messages(&bob, 100).unwrap().len(), 2);

    // Seen hashes are pruned once the swarm has dropped the message.
    assert_eq!(store.prune_seen(1_999_999).unwrap(), 0);
    assert_eq!(store.prune_seen(2_000_000).unwrap(), 2);
    assert!(!store.is_seen("hash-1").unwrap());
}

#[test]
fn a_failed_transaction_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("client.db"), &KeySource::KeyFile).unwrap();
    let result: Result<(), DbError> = store.transaction(|s| {
        assert!(s.mark_seen("h", 10)?);
        Err(DbError::NoConversation)
    });
    assert!(matches!(result, Err(DbError::NoConversation)));
    assert!(!store.is_seen("h").unwrap());
    // The connection is usable afterwards.
    store.transaction(|s| s.mark_seen("h", 10)).unwrap();
    assert!(store.is_seen("h").unwrap());
}

#[test]
fn conversation_request_state_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("client.db"), &KeySource::KeyFile).unwrap();
    let seed = AccountSeed::from_bytes([6; 32]);
    store.create_account(&seed, 1).unwrap();
    let me = IdentityKey::from_seed(&seed).session_id();
    let (bob, carol) = (peer(0xb0), peer(0xc0));

    // A first message from a stranger: a request.
    let conversation = store.ensure_conversation(&bob, ConversationState::Request, 100).unwrap();
    assert_eq!(conversation.state, ConversationState::Request);
    assert_eq!(conversation.kind, ConversationKind::Direct);
    // Seeing it again does not change it, even if asked for Accepted.
    assert_eq!(
        store.ensure_conversation(&bob, ConversationState::Accepted, 200).unwrap().state,
        ConversationState::Request
    );

    // Accepting: accepted and the contact approved.
    let accepted = store.accept_conversation(&bob, 300).unwrap();
    assert_eq!(accepted.state, ConversationState::Accepted);
    assert_eq!(accepted.last_activity_ms, 300);
    assert!(store.contact(&bob).unwrap().unwrap().approved);
    // An accepted conversation never becomes a request again.
    assert_eq!(
        store.ensure_conversation(&bob, ConversationState::Request, 400).unwrap().state,
        ConversationState::Accepted
    );
    assert_eq!(store.accept_conversation(&bob, 500).unwrap().state, ConversationState::Accepted);

    // Declining a request deletes it and its messages.
    store.ensure_conversation(&carol, ConversationState::Request, 600).unwrap();
    store.insert_message(&text(carol, carol, 600, None, "hi")).unwrap().unwrap();
    assert!(store.delete_conversation(&carol).unwrap());
    assert!(store.conversation(&carol).unwrap().is_none());
    assert!(matches!(store.accept_conversation(&carol, 700), Err(DbError::NoConversation)));
    assert!(matches!(
        store.insert_message(&text(carol, carol, 700, None, "x")),
        Err(DbError::NoConversation)
    ));

    // Note to Self: always accepted, its own kind.
    let note = store.ensure_conversation(&me, ConversationState::Request, 800).unwrap();
    assert_eq!((note.kind, note.state), (ConversationKind::NoteToSelf, ConversationState::Accepted));

    // Listing: most recent activity first.
    let peers: Vec<_> = store.conversations().unwrap().into_iter().map(|c| c.peer).collect();
    assert_eq!(peers, vec![me, bob]);
}

#[test]
fn contacts_nickname_block_and_disappearing_setting() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("client.db"), &KeySource::KeyFile).unwrap();
    let bob = peer(0xb0);
    let mut contact = store.contact_or_new(&bob, 10).unwrap();
    assert!(store.contact(&bob).unwrap().is_none());
    contact.display_name = Some("Bob".into());
    contact.nickname = Some("Bobby".into());
    contact.blocked = true;
    store.save_contact(&contact).unwrap();
    contact.approved_me = true;
    store.save_contact(&contact).unwrap();
    assert_eq!(store.contact(&bob).unwrap().unwrap(), contact);
    assert_eq!(store.contacts().unwrap(), vec![contact]);

    store.ensure_conversation(&bob, ConversationState::Accepted, 10).unwrap();
    let mode = DisappearingMode::AfterRead { seconds: 3600 };
    store.set_disappearing(&bob, mode).unwrap();
    assert_eq!(store.conversation(&bob).unwrap().unwrap().disappearing, mode);
    assert!(matches!(store.set_disappearing(&peer(1), mode), Err(DbError::NoConversation)));
}

#[test]
fn unread_read_receipts_states_and_unsend() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("client.db"), &KeySource::KeyFile).unwrap();
    let (me, bob) = (peer(0xa0), peer(0xb0));
    store.ensure_conversation(&bob, ConversationState::Accepted, 0).unwrap();
    store.insert_message(&text(bob, bob, 1_000, Some("a"), "one")).unwrap();
    store.insert_message(&text(bob, bob, 2_000, Some("b"), "two")).unwrap();
    let outgoing = store
        .insert_message(&NewMessage {
            direction: Direction::Outgoing,
            state: MessageState::Sending,
            ..text(bob, me, 3_000, None, "three")
        })
        .unwrap()
        .unwrap();
    let conversation = store.conversation(&bob).unwrap().unwrap();
    assert_eq!(conversation.unread, 2);
    assert_eq!(conversation.last_activity_ms, 3_000);

    assert_eq!(store.mark_read(&bob, 5_000).unwrap(), vec![1_000, 2_000]);
    assert_eq!(store.mark_read(&bob, 6_000).unwrap(), Vec::<u64>::new());
    assert_eq!(store.conversation(&bob).unwrap().unwrap().unread, 0);

    store.set_server_hash(outgoing, "c").unwrap();
    store.set_message_state(outgoing, MessageState::Sent).unwrap();
    assert_eq!(store.mark_read_by_peer(&bob, &[3_000, 1_000, 42]).unwrap(), 1);
    let sent = store.message(outgoing).unwrap().unwrap();
    assert_eq!((sent.state, sent.server_hash.as_deref()), (MessageState::Read, Some("c")));

    let before = store.mark_unsent(&bob, &bob, 2_000).unwrap().unwrap();
    assert_eq!(before.body.as_deref(), Some("two"));
    let after = store.find_message(&bob, &bob, 2_000).unwrap().unwrap();
    assert!(after.deleted);
    assert_eq!(after.body, None);
    assert!(store.mark_unsent(&bob, &bob, 9_999).unwrap().is_none());

    let bodies: Vec<_> = store.messages(&bob, 2).unwrap().into_iter().map(|m| m.sent_ms).collect();
    assert_eq!(bodies, vec![2_000, 3_000]);
}

#[test]
fn expiry_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("client.db"), &KeySource::KeyFile).unwrap();
    let (me, bob) = (peer(0xa0), peer(0xb0));
    store.ensure_conversation(&bob, ConversationState::Accepted, 0).unwrap();
    let after_send = DisappearingMode::AfterSend { seconds: 60 };
    let after_read = DisappearingMode::AfterRead { seconds: 30 };
    let das = store
        .insert_message(&NewMessage { disappearing: after_send, ..text(bob, bob, 1_000, None, "das") })
        .unwrap()
        .unwrap();
    let dar = store
        .insert_message(&NewMessage { disappearing: after_read, ..text(bob, bob, 2_000, None, "dar") })
        .unwrap()
        .unwrap();
    let keep = store.insert_message(&text(bob, bob, 3_000, None, "keep")).unwrap().unwrap();
    let out = store
        .insert_message(&NewMessage {
            direction: Direction::Outgoing,
            state: MessageState::Sent,
            disappearing: after_read,
            ..text(bob, me, 4_000, None, "out")
        })
        .unwrap()
        .unwrap();

    assert_eq!(store.message(das).unwrap().unwrap().expires_at_ms, Some(61_000));
    // After-read: no timer until read; outgoing counts as read when sent.
    assert_eq!(store.message(dar).unwrap().unwrap().expires_at_ms, None);
    assert_eq!(store.message(out).unwrap().unwrap().expires_at_ms, Some(34_000));
    assert!(
        store.messages_due_for_deletion(u64::MAX / 2).unwrap().iter().all(|m| m.id != dar && m.id != keep)
    );

    store.mark_read(&bob, 10_000).unwrap();
    assert_eq!(store.message(dar).unwrap().unwrap().expires_at_ms, Some(40_000));

    let due =
        |now| store.messages_due_for_deletion(now).unwrap().into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(due(33_999), vec![]);
    assert_eq!(due(34_000), vec![out]);
    assert_eq!(due(61_000), vec![out, dar, das]);
    assert_eq!(store.delete_messages(&due(61_000)).unwrap(), 3);
    assert_eq!(due(u64::MAX / 2), vec![]);
    let left: Vec<_> = store.messages(&bob, 10).unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(left, vec![keep]);
}

#[test]
fn last_hashes_and_node_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let node = [7u8; 32];
    {
        let store = Store::open(&path, &KeySource::KeyFile).unwrap();
        assert!(store.last_hash(&node, Namespace::DEFAULT, 0).unwrap().is_none());
        store
            .set_last_hash(&node, Namespace::DEFAULT, &LastHash { hash: "h1".into(), expires_ms: 1_000 })
            .unwrap();
        store
            .set_last_hash(&node, Namespace::DEFAULT, &LastHash { hash: "h2".into(), expires_ms: 2_000 })
            .unwrap();
        store
            .set_last_hash(&node, Namespace::USER_PROFILE, &LastHash { hash: "p".into(), expires_ms: 500 })
            .unwrap();
        let pool = vec!["node-a".to_owned(), "node-b".to_owned()];
        store.save_node_pool(&pool, 42).unwrap();
    }
    let store = Store::open(&path, &KeySource::KeyFile).unwrap();
    assert_eq!(store.last_hash(&node, Namespace::DEFAULT, 1_500).unwrap().unwrap().hash, "h2");
    assert!(
        store.last_hash(&node, Namespace::DEFAULT, 2_000).unwrap().is_none(),
        "expired hash is not returned"
    );
    assert!(store.last_hash(&[8; 32], Namespace::DEFAULT, 0).unwrap().is_none());
    assert_eq!(store.prune_last_hashes(1_000).unwrap(), 1);
    let (pool, updated): (Vec<String>, u64) = store.node_pool().unwrap().unwrap();
    assert_eq!((pool, updated), (vec!["node-a".to_owned(), "node-b".to_owned()], 42));
    assert!(matches!(store.node_pool::<u32>(), Err(DbError::NodePool(_))));
}

#[tokio::test]
async fn async_handle_runs_on_blocking_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let db = Db::open_with(&path, KeySource::passphrase("pw"), FAST_KDF).await.unwrap();
    let seed = AccountSeed::from_bytes([9; 32]);
    let seed2 = seed.clone();
    db.run(move |s| s.create_account(&seed2, 1)).await.unwrap();
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.run(move |s| s.mark_seen(&format!("h{i}"), 100)).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap());
    }
    assert!(db.run(|s| s.is_seen("h7")).await.unwrap());
    drop(db);
    let reopened = Db::open(&path, KeySource::passphrase("pw")).await.unwrap();
    let own = reopened.run(|s| Ok(s.own_session_id())).await.unwrap();
    assert_eq!(own, Some(IdentityKey::from_seed(&seed).session_id()));
    assert!(matches!(Db::open(&path, KeySource::passphrase("pw")).await, Err(DbError::Locked)));
    drop(reopened);
    assert!(matches!(Db::open(&path, KeySource::passphrase("nope")).await, Err(DbError::WrongKey)));
}

/// Child side of [`locked_by_another_process`]: when started by it (the variable is set), holds
/// the database open until its stdin closes. Otherwise does nothing.
#[test]
fn lock_holder_child() {
    let Some(path) = std::env::var_os("SESSION_CLIENT_LOCK_HOLDER") else {
        return;
    };
    let _store = Store::open(Path::new(&path), &KeySource::KeyFile).unwrap();
    println!("lock-holder-ready");
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}

#[test]
fn locked_by_another_process() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    drop(Store::open(&path, &KeySource::KeyFile).unwrap());

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["lock_holder_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("SESSION_CLIENT_LOCK_HOLDER", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            // Keep draining after "ready", so the child never writes into a closed pipe.
            if line.is_ok_and(|l| l.contains("lock-holder-ready")) {
                let _ = ready_tx.send(());
            }
        }
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(60));
    if ready.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the lock-holding child did not open the database within 60 s");
    }

    let second = Store::open(&path, &KeySource::KeyFile);
    // Release the child before asserting, so a failure does not leave it running.
    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the lock-holding child did not exit within 60 s of its stdin closing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(matches!(second, Err(DbError::Locked)), "expected Locked, got {second:?}");
    assert!(status.success());
    // The child exited, so the lock is gone.
    drop(Store::open(&path, &KeySource::KeyFile).unwrap());
}
