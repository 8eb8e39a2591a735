//! Store tests against real SQLite files in temporary directories.

use std::sync::mpsc as std_mpsc;

use super::*;

const NOW: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;
const BIG_CAP: u64 = 1 << 30;

fn options(max_db_bytes: u64) -> StoreOptions {
    StoreOptions { max_db_bytes, read_connections: 2 }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), options(BIG_CAP)).unwrap()
}

fn account(n: u8) -> AccountKey {
    let mut bytes = [n; 33];
    bytes[0] = 0x05;
    AccountKey::from_bytes(bytes)
}

fn message(account: &AccountKey, ns: i16, data: &[u8], timestamp_ms: i64, expiry_ms: i64) -> StoredMessage {
    let namespace = Namespace(ns);
    StoredMessage {
        hash: MessageHash::compute(account.as_bytes(), namespace, data),
        namespace,
        timestamp_ms,
        expiry_ms,
        data: data.to_vec(),
    }
}

/// Message `i` of a numbered series: distinct data, timestamps increasing with `i`.
fn nth(account: &AccountKey, ns: i16, i: usize) -> StoredMessage {
    let offset = i64::try_from(i).unwrap();
    message(account, ns, format!("message {i}").as_bytes(), NOW + offset, NOW + DAY + offset)
}

const UNLIMITED: RetrieveLimits = RetrieveLimits { max_count: None, max_size: usize::MAX };

async fn all(store: &Store, account: &AccountKey, ns: i16) -> Vec<StoredMessage> {
    let got = store.retrieve(*account, Namespace(ns), None, UNLIMITED, NOW).await.unwrap();
    assert!(!got.more);
    got.messages
}

fn hashes(messages: &[StoredMessage]) -> Vec<MessageHash> {
    messages.iter().map(|m| m.hash).collect()
}

fn sorted_pairs(messages: &[&StoredMessage]) -> Vec<(Namespace, MessageHash)> {
    let mut pairs: Vec<_> = messages.iter().map(|m| (m.namespace, m.hash)).collect();
    pairs.sort_unstable();
    pairs
}

fn token(n: u8) -> [u8; 36] {
    [n; 36]
}

/// Counts rows with a separate connection.
fn count_rows(dir: &tempfile::TempDir, table: &str) -> i64 {
    let conn = Connection::open(dir.path().join(schema::DB_FILE)).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn store_then_retrieve_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let msg = message(&alice, 0, b"hello", NOW, NOW + DAY);
    let outcome = store.store(alice, msg.clone()).await.unwrap();
    assert_eq!(outcome, StoreOutcome { new: true, expiry_ms: NOW + DAY });
    assert_eq!(all(&store, &alice, 0).await, vec![msg]);
    // Other namespaces and accounts see nothing.
    assert!(all(&store, &alice, 1).await.is_empty());
    assert!(all(&store, &account(2), 0).await.is_empty());
    // Empty data is a valid message.
    let empty = message(&alice, 0, b"", NOW, NOW + DAY);
    assert!(store.store(alice, empty.clone()).await.unwrap().new);
    assert_eq!(all(&store, &alice, 0).await[1], empty);
}

#[tokio::test]
async fn duplicate_store_only_raises_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let msg = message(&alice, 0, b"hello", NOW, NOW + DAY);
    store.store(alice, msg.clone()).await.unwrap();

    // An earlier expiry keeps the stored one.
    let earlier = StoredMessage { expiry_ms: NOW + 1000, ..msg.clone() };
    assert_eq!(store.store(alice, earlier).await.unwrap(), StoreOutcome { new: false, expiry_ms: NOW + DAY });
    // The same expiry changes nothing.
    assert_eq!(
        store.store(alice, msg.clone()).await.unwrap(),
        StoreOutcome { new: false, expiry_ms: NOW + DAY }
    );
    // A later one is applied.
    let later = StoredMessage { expiry_ms: NOW + 2 * DAY, ..msg.clone() };
    assert_eq!(
        store.store(alice, later).await.unwrap(),
        StoreOutcome { new: false, expiry_ms: NOW + 2 * DAY }
    );

    let stored = all(&store, &alice, 0).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].expiry_ms, NOW + 2 * DAY);
    assert_eq!(stored[0].data, b"hello");
}

#[tokio::test]
async fn retrieve_pages_with_last_hash_and_max_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let msgs: Vec<_> = (0..10).map(|i| nth(&alice, 0, i)).collect();
    for (i, msg) in msgs.iter().enumerate() {
        store.store(alice, msg.clone()).await.unwrap();
        // Noise in another namespace and another account, interleaved.
        store.store(alice, nth(&alice, 5, i)).await.unwrap();
        store.store(account(2), nth(&account(2), 0, i)).await.unwrap();
    }

    // Insertion order, not hash order.
    assert_eq!(all(&store, &alice, 0).await, msgs);

    let limits = RetrieveLimits { max_count: Some(3), max_size: usize::MAX };
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let page = store.retrieve(alice, Namespace(0), cursor, limits, NOW).await.unwrap();
        cursor = page.messages.last().map(|m| m.hash);
        pages.push((hashes(&page.messages), page.more));
        if !page.more {
            break;
        }
    }
    let expected: Vec<_> = msgs.chunks(3).map(hashes).collect();
    assert_eq!(pages.len(), 4);
    for (i, (page, more)) in pages.iter().enumerate() {
        assert_eq!(page, &expected[i]);
        assert_eq!(*more, i < 3);
    }

    // Exactly max_count left: no `more`.
    let ten = RetrieveLimits { max_count: Some(10), max_size: usize::MAX };
    let page = store.retrieve(alice, Namespace(0), None, ten, NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (10, false));
    // The cursor at the last message: nothing left.
    let page = store.retrieve(alice, Namespace(0), Some(msgs[9].hash), UNLIMITED, NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (0, false));

    // An unknown cursor starts from the beginning; so does one from another namespace or account.
    let unknown = MessageHash::compute(alice.as_bytes(), Namespace(0), b"never stored");
    let other_ns = nth(&alice, 5, 0).hash;
    let other_account = nth(&account(2), 0, 0).hash;
    for cursor in [unknown, other_ns, other_account] {
        let page = store.retrieve(alice, Namespace(0), Some(cursor), limits, NOW).await.unwrap();
        assert_eq!(hashes(&page.messages), hashes(&msgs[..3]));
        assert!(page.more);
    }
    // max_count 0 is treated as 1.
    let zero = RetrieveLimits { max_count: Some(0), max_size: usize::MAX };
    let page = store.retrieve(alice, Namespace(0), None, zero, NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (1, true));
}

#[tokio::test]
async fn retrieve_respects_max_size_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    // Each message: 100 + 43 + 300·4/3 = 543 estimated bytes.
    let msgs: Vec<_> = (0..4u8).map(|i| message(&alice, 0, &[i; 300], NOW, NOW + DAY)).collect();
    for msg in &msgs {
        store.store(alice, msg.clone()).await.unwrap();
    }
    let with_size = |max_size| RetrieveLimits { max_count: None, max_size };

    let page = store.retrieve(alice, Namespace(0), None, with_size(1086), NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (2, true));
    let page = store.retrieve(alice, Namespace(0), None, with_size(1085), NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (1, true));
    // At least one message, even over the limit.
    let page = store.retrieve(alice, Namespace(0), None, with_size(10), NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (1, true));
    // Everything fits exactly.
    let page = store.retrieve(alice, Namespace(0), None, with_size(4 * 543), NOW).await.unwrap();
    assert_eq!((page.messages.len(), page.more), (4, false));
    // Both limits: the count cuts first here.
    let both = RetrieveLimits { max_count: Some(1), max_size: 4 * 543 };
    let page = store.retrieve(alice, Namespace(0), Some(msgs[0].hash), both, NOW).await.unwrap();
    assert_eq!((hashes(&page.messages), page.more), (vec![msgs[1].hash], true));
}

#[tokio::test]
async fn retrieve_skips_expired_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let at_now = message(&alice, 0, b"expires now", NOW - 1000, NOW);
    let past = message(&alice, 0, b"expired", NOW - 2000, NOW - 1);
    let live = message(&alice, 0, b"live", NOW - 1000, NOW + 1);
    for msg in [&at_now, &past, &live] {
        store.store(alice, msg.clone()).await.unwrap();
    }
    assert_eq!(hashes(&all(&store, &alice, 0).await), vec![live.hash]);
    // Still there (until cleanup) for other operations.
    let expiries = store.expiries(alice, vec![past.hash, at_now.hash]).await.unwrap();
    assert_eq!(expiries.len(), 2);
    // A cursor at an expired message still works.
    let page = store.retrieve(alice, Namespace(0), Some(at_now.hash), UNLIMITED, NOW).await.unwrap();
    assert_eq!(hashes(&page.messages), vec![live.hash]);
}

#[tokio::test]
async fn public_outbox_store_replaces_previous() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let ns = -21;
    assert!(Namespace(ns).is_public_outbox());
    let first = message(&alice, ns, b"first", NOW, NOW + DAY);
    let second = message(&alice, ns, b"second", NOW + 1, NOW + DAY);
    let elsewhere = message(&alice, 3, b"elsewhere", NOW, NOW + DAY);
    store.store(alice, elsewhere.clone()).await.unwrap();
    store.store(alice, first).await.unwrap();
    store.store(alice, second.clone()).await.unwrap();
    assert_eq!(all(&store, &alice, ns).await, vec![second]);
    assert_eq!(all(&store, &alice, 3).await, vec![elsewhere]);
}

#[tokio::test]
async fn bulk_insert_skips_known_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (alice, bob) = (account(1), account(2));
    let known = nth(&alice, 0, 0);
    store.store(alice, known.clone()).await.unwrap();
    let batch = vec![
        (alice, StoredMessage { expiry_ms: known.expiry_ms + DAY, ..known.clone() }),
        (alice, nth(&alice, 0, 1)),
        (bob, nth(&bob, 2, 0)),
        (bob, nth(&bob, 2, 0)),
    ];
    assert_eq!(store.bulk_insert(batch).await.unwrap(), 2);
    let stored = all(&store, &alice, 0).await;
    assert_eq!(hashes(&stored), vec![known.hash, nth(&alice, 0, 1).hash]);
    // DO NOTHING: the expiry of the known message is unchanged.
    assert_eq!(stored[0].expiry_ms, known.expiry_ms);
    assert_eq!(all(&store, &bob, 2).await.len(), 1);

    // Public outbox: an older message does not replace a newer one; a newer one does.
    let newer = message(&alice, -1, b"newer", NOW + 10, NOW + DAY);
    let older = message(&alice, -1, b"older", NOW, NOW + DAY);
    let newest = message(&alice, -1, b"newest", NOW + 20, NOW + DAY);
    assert_eq!(store.bulk_insert(vec![(alice, newer.clone()), (alice, older)]).await.unwrap(), 1);
    assert_eq!(all(&store, &alice, -1).await, vec![newer]);
    assert_eq!(store.bulk_insert(vec![(alice, newest.clone())]).await.unwrap(), 1);
    assert_eq!(all(&store, &alice, -1).await, vec![newest]);
}

#[tokio::test]
async fn delete_hashes_returns_sorted_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (alice, bob) = (account(1), account(2));
    let a: Vec<_> = (0..4).map(|i| nth(&alice, if i % 2 == 0 { 0 } else { 3 }, i)).collect();
    for msg in &a {
        store.store(alice, msg.clone()).await.unwrap();
    }
    let bobs = nth(&bob, 0, 0);
    store.store(bob, bobs.clone()).await.unwrap();

    let unknown = MessageHash::compute(alice.as_bytes(), Namespace(0), b"nope");
    let request = vec![a[3].hash, unknown, a[0].hash, bobs.hash, a[0].hash, a[1].hash];
    let deleted = store.delete_hashes(alice, request).await.unwrap();
    let mut expected = vec![a[0].hash, a[1].hash, a[3].hash];
    expected.sort_unstable();
    assert_eq!(deleted, expected);
    assert_eq!(hashes(&all(&store, &alice, 0).await), vec![a[2].hash]);
    assert!(all(&store, &alice, 3).await.is_empty());
    // Bob's message is untouched; an unknown account deletes nothing.
    assert_eq!(all(&store, &bob, 0).await.len(), 1);
    assert!(store.delete_hashes(account(9), vec![bobs.hash]).await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_all_by_namespace_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (alice, bob) = (account(1), account(2));
    let in0: Vec<_> = (0..3).map(|i| nth(&alice, 0, i)).collect();
    let in2: Vec<_> = (0..2).map(|i| nth(&alice, 2, i)).collect();
    let in_neg: Vec<_> = (0..2).map(|i| nth(&alice, -10, i)).collect();
    for msg in in0.iter().chain(&in2).chain(&in_neg) {
        store.store(alice, msg.clone()).await.unwrap();
    }
    store.store(bob, nth(&bob, 0, 0)).await.unwrap();

    let deleted = store.delete_all(alice, NamespaceSelector::One(Namespace(2))).await.unwrap();
    assert_eq!(deleted, sorted_pairs(&in2.iter().collect::<Vec<_>>()));
    assert_eq!(all(&store, &alice, 0).await.len(), 3);

    let deleted = store.delete_all(alice, NamespaceSelector::All).await.unwrap();
    let rest: Vec<_> = in0.iter().chain(&in_neg).collect();
    assert_eq!(deleted, sorted_pairs(&rest));
    assert_eq!(deleted[0].0, Namespace(-10), "sorted by namespace first");
    assert!(all(&store, &alice, 0).await.is_empty());
    assert!(store.delete_all(alice, NamespaceSelector::All).await.unwrap().is_empty());
    assert_eq!(all(&store, &bob, 0).await.len(), 1);
    // The owner row went with the last message.
    assert_eq!(count_rows(&dir, "owners"), 1);
}

#[tokio::test]
async fn delete_before_is_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    // Timestamps NOW+0..NOW+3 in namespace 0 and in namespace 4.
    let in0: Vec<_> = (0..4).map(|i| nth(&alice, 0, i)).collect();
    let in4: Vec<_> = (0..4).map(|i| nth(&alice, 4, i)).collect();
    for msg in in0.iter().chain(&in4) {
        store.store(alice, msg.clone()).await.unwrap();
    }
    let deleted = store.delete_before(alice, NamespaceSelector::One(Namespace(0)), NOW + 1).await.unwrap();
    assert_eq!(deleted, sorted_pairs(&[&in0[0], &in0[1]]));
    let deleted = store.delete_before(alice, NamespaceSelector::All, NOW + 2).await.unwrap();
    assert_eq!(deleted, sorted_pairs(&[&in0[2], &in4[0], &in4[1], &in4[2]]));
    assert_eq!(hashes(&all(&store, &alice, 0).await), vec![in0[3].hash]);
    assert_eq!(hashes(&all(&store, &alice, 4).await), vec![in4[3].hash]);
    assert!(store.delete_before(account(7), NamespaceSelector::All, NOW + 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn expire_all_only_shortens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let short = message(&alice, 0, b"short", NOW, NOW + 1000);
    let long0 = message(&alice, 0, b"long", NOW, NOW + DAY);
    let long3 = message(&alice, 3, b"long3", NOW, NOW + DAY);
    for msg in [&short, &long0, &long3] {
        store.store(alice, msg.clone()).await.unwrap();
    }
    let new_expiry = NOW + 5000;
    let updated = store.expire_all(alice, NamespaceSelector::One(Namespace(0)), new_expiry).await.unwrap();
    assert_eq!(updated, vec![(Namespace(0), long0.hash)]);
    let updated = store.expire_all(alice, NamespaceSelector::All, new_expiry).await.unwrap();
    assert_eq!(updated, vec![(Namespace(3), long3.hash)]);
    let expiries = store.expiries(alice, vec![short.hash, long0.hash, long3.hash]).await.unwrap();
    let mut expected = vec![(short.hash, NOW + 1000), (long0.hash, new_expiry), (long3.hash, new_expiry)];
    expected.sort_unstable();
    assert_eq!(expiries, expected);
}

#[tokio::test]
async fn expire_modes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (alice, bob) = (account(1), account(2));
    let a = message(&alice, 0, b"a", NOW, NOW + 10_000);
    let b = message(&alice, 2, b"b", NOW, NOW + 20_000);
    let bobs = message(&bob, 0, b"bob", NOW, NOW + 10_000);
    for (acct, msg) in [(alice, &a), (alice, &b), (bob, &bobs)] {
        store.store(acct, msg.clone()).await.unwrap();
    }
    let unknown = MessageHash::compute(alice.as_bytes(), Namespace(0), b"unknown");
    let sorted = |mut v: Vec<(MessageHash, i64)>| {
        v.sort_unstable();
        v
    };

    // Shorten to 15 s: only b changes; a is unchanged with its current expiry.
    let t = NOW + 15_000;
    let outcome = store
        .expire(alice, vec![(a.hash, t), (b.hash, t), (unknown, t), (bobs.hash, t)], ExpireMode::Shorten)
        .await
        .unwrap();
    assert_eq!(outcome.updated, vec![(b.hash, t)]);
    assert_eq!(outcome.unchanged, vec![(a.hash, NOW + 10_000)]);

    // Extend to 12 s: a changes (10 → 12); b (15) is unchanged.
    let t = NOW + 12_000;
    let outcome = store.expire(alice, vec![(a.hash, t), (b.hash, t)], ExpireMode::Extend).await.unwrap();
    assert_eq!(outcome.updated, vec![(a.hash, t)]);
    assert_eq!(outcome.unchanged, vec![(b.hash, NOW + 15_000)]);

    // Set, per-hash values, either direction; no `unchanged` list.
    let outcome = store
        .expire(alice, vec![(a.hash, NOW + 5_000), (b.hash, NOW + 50_000), (unknown, NOW)], ExpireMode::Set)
        .await
        .unwrap();
    assert_eq!(outcome.updated, sorted(vec![(a.hash, NOW + 5_000), (b.hash, NOW + 50_000)]));
    assert!(outcome.unchanged.is_empty());
    // Set to the current value still counts as updated; a repeated hash appears once.
    let outcome = store
        .expire(alice, vec![(a.hash, NOW + 5_000), (a.hash, NOW + 5_000)], ExpireMode::Set)
        .await
        .unwrap();
    assert_eq!(outcome.updated, vec![(a.hash, NOW + 5_000)]);

    assert_eq!(
        store.expiries(alice, vec![a.hash, b.hash, unknown, bobs.hash]).await.unwrap(),
        sorted(vec![(a.hash, NOW + 5_000), (b.hash, NOW + 50_000)])
    );
    // Bob's message was never touched.
    assert_eq!(store.expiries(bob, vec![bobs.hash]).await.unwrap(), vec![(bobs.hash, NOW + 10_000)]);
    // Unknown account.
    assert_eq!(
        store.expire(account(9), vec![(a.hash, NOW)], ExpireMode::Set).await.unwrap(),
        ExpireOutcome::default()
    );
}

#[tokio::test]
async fn revocations_keep_the_50_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    // An account with no messages can revoke.
    for n in 0..60u8 {
        store.revoke(alice, vec![token(n)], NOW + i64::from(n)).await.unwrap();
    }
    for n in 0..60u8 {
        assert_eq!(store.is_revoked(alice, token(n)).await.unwrap(), n >= 10, "token {n}");
    }
    assert_eq!(count_rows(&dir, "revoked_subaccounts"), 50);
    // Another account's list is separate.
    assert!(!store.is_revoked(account(2), token(59)).await.unwrap());

    // A batch of 50 at one timestamp replaces all older ones.
    let batch: Vec<_> = (100..150u8).map(token).collect();
    store.revoke(alice, batch, NOW + 1000).await.unwrap();
    assert!(!store.is_revoked(alice, token(59)).await.unwrap());
    for n in 100..150u8 {
        assert!(store.is_revoked(alice, token(n)).await.unwrap());
    }
    // Revoking an existing token again refreshes it instead of adding a row.
    store.revoke(alice, vec![token(100)], NOW + 2000).await.unwrap();
    store.revoke(alice, vec![token(200)], NOW + 2000).await.unwrap();
    assert!(store.is_revoked(alice, token(100)).await.unwrap());
    assert!(!store.is_revoked(alice, token(101)).await.unwrap(), "oldest dropped");
    assert_eq!(count_rows(&dir, "revoked_subaccounts"), 50);
}

#[tokio::test]
async fn unrevoke_counts_removed_and_revocations_outlive_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let msg = nth(&alice, 0, 0);
    store.store(alice, msg.clone()).await.unwrap();
    store.revoke(alice, vec![token(1), token(2), token(3)], NOW).await.unwrap();

    // Deleting every message keeps the revocations (and the owner row).
    store.delete_all(alice, NamespaceSelector::All).await.unwrap();
    assert!(store.is_revoked(alice, token(1)).await.unwrap());
    assert_eq!(count_rows(&dir, "owners"), 1);

    assert_eq!(store.unrevoke(alice, vec![token(1), token(9), token(2), token(1)]).await.unwrap(), 2);
    assert!(!store.is_revoked(alice, token(1)).await.unwrap());
    assert!(store.is_revoked(alice, token(3)).await.unwrap());
    assert_eq!(store.unrevoke(account(8), vec![token(3)]).await.unwrap(), 0);
    // The last revocation of a message-less owner takes the owner row with it.
    assert_eq!(store.unrevoke(alice, vec![token(3)]).await.unwrap(), 1);
    assert_eq!(count_rows(&dir, "owners"), 0);
    // Empty lists are fine.
    store.revoke(alice, Vec::new(), NOW).await.unwrap();
    assert_eq!(store.unrevoke(alice, Vec::new()).await.unwrap(), 0);
}

#[tokio::test]
async fn clean_expired_deletes_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (alice, bob) = (account(1), account(2));
    store.store(alice, message(&alice, 0, b"1", NOW - 10, NOW - 1)).await.unwrap();
    store.store(alice, message(&alice, 0, b"2", NOW - 10, NOW)).await.unwrap();
    store.store(alice, message(&alice, 0, b"3", NOW - 10, NOW + 1)).await.unwrap();
    store.store(bob, message(&bob, 0, b"4", NOW - 10, NOW - 5)).await.unwrap();
    assert_eq!(store.stats().await.unwrap().messages, 4);

    assert_eq!(store.clean_expired(NOW).await.unwrap(), 3);
    assert_eq!(store.clean_expired(NOW).await.unwrap(), 0);
    assert_eq!(store.stats().await.unwrap().messages, 1);
    assert_eq!(count_rows(&dir, "owners"), 1, "bob's owner row is gone");

    // More than one chunk.
    let many: Vec<_> = (0..ops::CLEAN_CHUNK + 5)
        .map(|i| (alice, message(&alice, 1, format!("{i}").as_bytes(), NOW - 10, NOW - 1)))
        .collect();
    store.bulk_insert(many).await.unwrap();
    assert_eq!(store.clean_expired(NOW).await.unwrap(), ops::CLEAN_CHUNK + 5);
    assert_eq!(store.stats().await.unwrap().messages, 1);
}

#[tokio::test]
async fn expiry_task_cleans_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let now = unix_now_ms();
    store.store(alice, message(&alice, 0, b"old", now - 20_000, now - 10_000)).await.unwrap();
    store.store(alice, message(&alice, 0, b"live", now, now + DAY)).await.unwrap();
    let task = spawn_expiry_task(store.clone());
    let mut remaining = 2;
    for _ in 0..200 {
        remaining = store.stats().await.unwrap().messages;
        if remaining == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert_eq!(remaining, 1);
}

#[tokio::test]
async fn stats_report_messages_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let empty = store.stats().await.unwrap();
    assert_eq!(empty.messages, 0);
    assert!(empty.db_bytes > 0);
    let alice = account(1);
    for i in 0..20u8 {
        store.store(alice, message(&alice, 0, &[i; 5000], NOW, NOW + DAY)).await.unwrap();
    }
    let full = store.stats().await.unwrap();
    assert_eq!(full.messages, 20);
    assert!(full.db_bytes >= empty.db_bytes + 100_000, "{full:?}");
}

#[tokio::test]
async fn size_cap_gives_full_and_the_store_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    // A few dozen pages: the schema takes about ten.
    let store = Store::open(dir.path(), options(48 * 4096)).unwrap();
    let alice = account(1);
    let mut stored = Vec::new();
    let mut full = false;
    for i in 0..100u8 {
        let msg = message(&alice, 0, &[i; 8000], NOW, NOW + DAY);
        match store.store(alice, msg.clone()).await {
            Ok(_) => stored.push(msg),
            Err(StoreError::Full) => {
                full = true;
                break;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(full, "the cap was never reached");
    assert!(!stored.is_empty());

    // Everything acknowledged is there; reads, deletes and metadata updates still work.
    assert_eq!(all(&store, &alice, 0).await, stored);
    assert!(store.stats().await.unwrap().db_bytes <= 48 * 4096);
    let extended =
        store.expire(alice, vec![(stored[0].hash, NOW + 2 * DAY)], ExpireMode::Extend).await.unwrap();
    assert_eq!(extended.updated.len(), 1);
    let deleted = store.delete_hashes(alice, hashes(&stored[..2])).await.unwrap();
    assert_eq!(deleted.len(), 2);
    // The freed pages are reused.
    let again = message(&alice, 0, &[200; 8000], NOW, NOW + DAY);
    assert!(store.store(alice, again).await.unwrap().new);
    assert!(matches!(
        store.store(alice, message(&alice, 0, &[201; 100_000], NOW, NOW + DAY)).await,
        Err(StoreError::Full)
    ));
}

#[tokio::test]
async fn reopen_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let alice = account(1);
    let msgs: Vec<_> = (0..5).map(|i| nth(&alice, 0, i)).collect();
    {
        let store = open(&dir);
        for msg in &msgs {
            store.store(alice, msg.clone()).await.unwrap();
        }
        store.revoke(alice, vec![token(1)], NOW).await.unwrap();
    }
    let store = open(&dir);
    assert_eq!(all(&store, &alice, 0).await, msgs);
    assert!(store.is_revoked(alice, token(1)).await.unwrap());
    drop(store);

    let conn = Connection::open(dir.path().join(schema::DB_FILE)).unwrap();
    let version: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(version, schema::latest_version());
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
    // A database from a newer build is refused.
    conn.pragma_update(None, "user_version", version + 1).unwrap();
    drop(conn);
    assert!(matches!(Store::open(dir.path(), options(BIG_CAP)), Err(StoreError::Setup(_))));
}

#[tokio::test]
async fn open_creates_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let store = Store::open(&nested, options(BIG_CAP)).unwrap();
    assert_eq!(store.stats().await.unwrap().messages, 0);
    assert!(nested.join(schema::DB_FILE).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stores_are_all_acknowledged_and_retrievable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..8u8 {
        for i in 0..50usize {
            let store = store.clone();
            tasks.spawn(async move {
                let acct = account(a);
                let msg = nth(&acct, 0, i);
                let outcome = store.store(acct, msg.clone()).await.unwrap();
                assert!(outcome.new);
                // Reads interleave with the writes.
                let page = store
                    .retrieve(
                        acct,
                        Namespace(0),
                        None,
                        RetrieveLimits { max_count: Some(1), max_size: 1000 },
                        NOW,
                    )
                    .await
                    .unwrap();
                assert_eq!(page.messages.len(), 1);
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    for a in 0..8u8 {
        let acct = account(a);
        let stored = all(&store, &acct, 0).await;
        let mut got = hashes(&stored);
        let mut expected: Vec<_> = (0..50).map(|i| nth(&acct, 0, i).hash).collect();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }
    assert_eq!(store.stats().await.unwrap().messages, 400);
    let (groups, jobs) = store.writer_counts();
    assert_eq!(jobs, 400);
    assert!(groups <= jobs);
}

#[tokio::test]
async fn queued_writes_commit_as_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);

    // Hold the writer inside a job until every store below is queued.
    let (release, hold) = std_mpsc::channel::<()>();
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |_conn| {
                    let _ = hold.recv();
                    Ok(())
                })
                .await
        })
    };
    while store.writer_counts().1 == 0 {
        tokio::task::yield_now().await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let store = store.clone();
        tasks.spawn(async move { store.store(alice, nth(&alice, 0, i)).await });
    }
    // On this current-thread runtime, yielding lets every spawned task run up to its await,
    // which is after its command was queued.
    tokio::task::yield_now().await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    while let Some(result) = tasks.join_next().await {
        assert!(result.unwrap().unwrap().new);
    }
    assert_eq!(store.writer_counts(), (2, 31));
    assert_eq!(all(&store, &alice, 0).await.len(), 30);
}

#[test]
fn failing_job_in_a_group_does_not_fail_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, _) = schema::open_writer(dir.path(), 40 * 4096).unwrap();
    let alice = account(1);
    let small_a = nth(&alice, 0, 1);
    let huge = message(&alice, 0, &[7; 400_000], NOW, NOW + DAY);
    let small_b = nth(&alice, 0, 2);

    let mut replies = Vec::new();
    let mut group: Vec<Box<dyn writer::WriteJob>> = Vec::new();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for msg in [small_a.clone(), huge, small_b.clone()] {
        let (tx, rx) = oneshot::channel();
        let runs = Arc::clone(&runs);
        group.push(Box::new(writer::Job::new(
            move |conn: &Connection| {
                runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ops::store(conn, &alice, &msg)
            },
            tx,
        )));
        replies.push(rx);
    }
    writer::run_group(&conn, group);
    // One pass: the failure was contained by its savepoint, with no fallback re-run.
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 3);
    let results: Vec<_> = replies.into_iter().map(|mut rx| rx.try_recv().unwrap()).collect();
    assert!(results[0].as_ref().unwrap().new);
    assert!(matches!(results[1], Err(StoreError::Full)));
    assert!(results[2].as_ref().unwrap().new);

    let got = ops::retrieve(&conn, &alice, Namespace(0), None, UNLIMITED, NOW).unwrap();
    assert_eq!(got.messages, vec![small_a, small_b]);
    assert!(conn.is_autocommit(), "no transaction left open");
}

#[test]
fn retrieve_query_uses_the_owner_index_without_sorting() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, _) = schema::open_writer(dir.path(), BIG_CAP).unwrap();
    let mut stmt = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT hash, timestamp, expiry, data FROM messages \
             WHERE owner = ?1 AND namespace = ?2 AND id > ?3 AND expiry > ?4 ORDER BY id LIMIT ?5",
        )
        .unwrap();
    let plan: Vec<String> =
        stmt.query_map((1, 0, 0, NOW, 10), |row| row.get(3)).unwrap().collect::<Result<_, _>>().unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("messages_owner"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}

#[test]
fn aborted_group_transaction_reruns_jobs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (conn, _) = schema::open_writer(dir.path(), 40 * 4096).unwrap();
    let alice = account(1);
    let small_a = nth(&alice, 0, 1);
    let small_b = nth(&alice, 0, 2);

    let (tx_a, mut rx_a) = oneshot::channel();
    let (tx_raw, mut rx_raw) = oneshot::channel();
    let (tx_b, mut rx_b) = oneshot::channel();
    let store_a = small_a.clone();
    let store_b = small_b.clone();
    // A raw insert past the cap: SQLite answers SQLITE_FULL and rolls back the whole group
    // transaction, so the writer must re-run every job in a transaction of its own.
    let raw_insert = move |conn: &Connection| -> Result<usize, StoreError> {
        Ok(conn.execute(
            "INSERT INTO messages (hash, owner, namespace, timestamp, expiry, data) \
             VALUES ('x', (SELECT id FROM owners LIMIT 1), 0, 0, 0, zeroblob(400000))",
            [],
        )?)
    };
    let group: Vec<Box<dyn writer::WriteJob>> = vec![
        Box::new(writer::Job::new(move |conn: &Connection| ops::store(conn, &alice, &store_a), tx_a)),
        Box::new(writer::Job::new(raw_insert, tx_raw)),
        Box::new(writer::Job::new(move |conn: &Connection| ops::store(conn, &alice, &store_b), tx_b)),
    ];
    writer::run_group(&conn, group);
    assert!(rx_a.try_recv().unwrap().unwrap().new);
    assert!(matches!(rx_raw.try_recv().unwrap(), Err(StoreError::Full)));
    assert!(rx_b.try_recv().unwrap().unwrap().new);
    let got = ops::retrieve(&conn, &alice, Namespace(0), None, UNLIMITED, NOW).unwrap();
    assert_eq!(got.messages, vec![small_a, small_b]);
    assert!(conn.is_autocommit());
}

#[tokio::test]
async fn owner_deletes_leave_tombstones_that_block_peer_inserts_until_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let alice = account(1);
    let (a, b, c) = (nth(&alice, 0, 0), nth(&alice, 2, 1), nth(&alice, 0, 2));
    for m in [&a, &b, &c] {
        store.store(alice, m.clone()).await.unwrap();
    }
    store.delete_hashes(alice, vec![a.hash]).await.unwrap();
    store.delete_all(alice, NamespaceSelector::One(Namespace(2))).await.unwrap();
    let mut tombstones = store.tombstones(alice).await.unwrap();
    tombstones.sort_unstable();
    let mut expected = vec![a.hash, b.hash];
    expected.sort_unstable();
    assert_eq!(tombstones, expected);
    // A peer cannot bring them back.
    assert_eq!(store.bulk_insert(vec![(alice, a.clone()), (alice, b.clone())]).await.unwrap(), 0);
    assert_eq!(all(&store, &alice, 0).await, vec![c.clone()]);
    // A hand-off drop leaves no tombstone.
    assert_eq!(store.drop_handed_off(alice, vec![c.hash]).await.unwrap(), 1);
    assert_eq!(store.tombstones(alice).await.unwrap().len(), 2);
    assert_eq!(store.bulk_insert(vec![(alice, c.clone())]).await.unwrap(), 1);
    // The owner storing it again wins over the tombstone.
    assert!(store.store(alice, a.clone()).await.unwrap().new);
    assert_eq!(store.tombstones(alice).await.unwrap(), vec![b.hash]);
    // Tombstones go once the deleted message would have expired.
    store.clean_expired(b.expiry_ms).await.unwrap();
    assert!(store.tombstones(alice).await.unwrap().is_empty());
}

#[tokio::test]
async fn digests_and_fetch_selection() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (alice, bob) = (account(1), account(2));
    let msgs: Vec<_> = (0..4).map(|i| nth(&alice, if i % 2 == 0 { 0 } else { -11 }, i)).collect();
    for m in &msgs {
        store.store(alice, m.clone()).await.unwrap();
    }
    store.store(bob, nth(&bob, 0, 9)).await.unwrap();
    assert_eq!(store.accounts().await.unwrap(), vec![alice, bob]);
    let digests = store.account_digests(NOW, move |a| *a == alice).await.unwrap();
    assert_eq!(digests, vec![crate::sync::digest::digest_of(alice, &hashes(&msgs))]);
    // Expired messages are not part of the digest.
    let later = store.account_digests(NOW + DAY + 1, |_| true).await.unwrap();
    assert_eq!(later.iter().map(|d| d.count).collect::<Vec<_>>(), vec![2, 1]);

    let skip: HashSet<MessageHash> = [msgs[0].hash].into_iter().collect();
    let (got, more) = store.messages_except(vec![(alice, skip.clone())], NOW, usize::MAX).await.unwrap();
    assert!(!more);
    assert_eq!(got.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(), msgs[1..].to_vec());
    // A tiny budget still returns one message, and says there is more.
    let (got, more) =
        store.messages_except(vec![(alice, skip), (bob, HashSet::new())], NOW, 1).await.unwrap();
    assert!(more);
    assert_eq!(got.len(), 1);
    assert_eq!(store.account_messages(alice, NOW).await.unwrap(), msgs);
}
