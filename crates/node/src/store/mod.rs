//! The SQLite message store (network §5).
//!
//! One writer thread owns the only write connection and groups queued writes into one
//! transaction under load (`writer.rs`); a small pool of read connections serves reads
//! (`read.rs`). Every async write completes only after its effect is durable: the WAL runs with
//! `synchronous = FULL` and replies are sent after `COMMIT` (see "Storage" in the crate README).
//! The schema and its migrations are in `schema.rs`, the SQL of each operation in `ops.rs`.
//!
//! Deviations from upstream's schema (network §5), all deliberate:
//! - `messages_owner` is `(owner, namespace)`: index entries end in the rowid, so retrieve pages
//!   in insertion order straight off the index (upstream's current schema does the same);
//!   `messages_hash` is not created since `UNIQUE(hash)` already indexes the hash.
//! - `owner_autoclean` keeps an owner that still has revocations, so that a revoked subaccount
//!   stays revoked after the account's messages have all expired; a second trigger removes such
//!   an owner once its last revocation goes.
//! - `revoke` creates the owner row when needed (upstream silently drops the revocation of an
//!   account that has no messages).
//! - Messages deleted by their owner (delete, delete_all, delete_before) leave a tombstone until
//!   they would have expired; transfers from peers never bring a tombstoned hash back, a client
//!   store of it does (`docs/node-channel.md` §8).
//! - `retrieve` never returns a message with `expiry <= now` (upstream returns expired messages
//!   until the next cleanup, up to 10 s later).

mod ops;
mod read;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use tokio::sync::oneshot;

use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{ExpireMode, NamespaceSelector};

use crate::AccountKey;
pub use crate::sync::digest::AccountDigest;

/// A stored message as retrieve returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message hash (network §3.2).
    pub hash: MessageHash,
    /// Namespace.
    pub namespace: Namespace,
    /// Sender's timestamp, ms.
    pub timestamp_ms: i64,
    /// Expiry, ms.
    pub expiry_ms: i64,
    /// The raw data.
    pub data: Vec<u8>,
}

/// Result of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOutcome {
    /// True when the hash was not stored before.
    pub new: bool,
    /// The expiry now stored (an existing later expiry wins).
    pub expiry_ms: i64,
}

/// Paging limits for retrieve, already resolved by the RPC layer (network §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrieveLimits {
    /// At most this many messages (None: no count limit).
    pub max_count: Option<usize>,
    /// At most about this many bytes, estimated as 100 + hash length + ⌊len(data)·4/3⌋ per
    /// message; at least one message is always returned.
    pub max_size: usize,
}

/// What retrieve found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    /// Messages in insertion order.
    pub messages: Vec<StoredMessage>,
    /// True when a limit cut the list short.
    pub more: bool,
}

/// Result of expire (network §4.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpireOutcome {
    /// Hashes whose expiry changed, with the expiry applied, sorted by hash.
    pub updated: Vec<(MessageHash, i64)>,
    /// Hashes that exist but did not change (shorten/extend modes), with their expiry.
    pub unchanged: Vec<(MessageHash, i64)>,
}

/// Size and count figures for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Messages stored.
    pub messages: u64,
    /// Database size in bytes (pages in use × page size).
    pub db_bytes: u64,
}

/// Store options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Cap on the database size; stores fail with `StoreError::Full` past it.
    pub max_db_bytes: u64,
    /// Read connections in the pool.
    pub read_connections: usize,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reached its size cap (`SQLITE_FULL`); the RPC layer answers with upstream's
    /// store failure shape.
    #[error("database is full")]
    Full,
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// The writer thread is gone (the node is shutting down).
    #[error("database writer stopped")]
    Closed,
    /// The database could not be set up (WAL unavailable, or a schema newer than this build).
    #[error("database setup failed: {0}")]
    Setup(String),
    /// Creating the data directory or a database thread failed.
    #[error("database setup failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            Self::Full
        } else {
            Self::Sqlite(err)
        }
    }
}

/// Handle to the store; cheap to clone. The writer and reader threads stop (after finishing the
/// queued work) when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating if needed) `dir/storage.db`, runs migrations, starts the writer thread
    /// and the read pool.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let (write_conn, page_size) = schema::open_writer(dir, options.max_db_bytes)?;
        let readers = (0..options.read_connections.max(1))
            .map(|_| schema::open_reader(dir))
            .collect::<Result<Vec<_>, _>>()?;

        let mut inner = Inner {
            writer: None,
            readers: None,
            threads: Vec::with_capacity(readers.len() + 1),
            page_size,
            counters: Arc::new(writer::WriterCounters::default()),
        };
        // From here on, dropping `inner` on an error stops the threads already started.
        let (write_tx, write_rx) = mpsc::channel();
        let counters = Arc::clone(&inner.counters);
        inner.threads.push(
            std::thread::Builder::new()
                .name("db-writer".into())
                .spawn(move || writer::run_writer(write_conn, write_rx, counters))?,
        );
        inner.writer = Some(write_tx);

        let (read_tx, read_rx) = mpsc::channel();
        inner.readers = Some(read_tx);
        let read_rx = Arc::new(Mutex::new(read_rx));
        for (index, conn) in readers.into_iter().enumerate() {
            let queue = Arc::clone(&read_rx);
            inner.threads.push(
                std::thread::Builder::new()
                    .name(format!("db-reader-{index}"))
                    .spawn(move || read::run_reader(conn, queue))?,
            );
        }
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Stores a message; a duplicate hash only raises the stored expiry. A store into a public
    /// outbox namespace first deletes the account's other messages there (network §3.1).
    pub async fn store(
        &self,
        account: AccountKey,
        message: StoredMessage,
    ) -> Result<StoreOutcome, StoreError> {
        self.write(move |conn| ops::store(conn, &account, &message)).await
    }

    /// Inserts messages received from a peer (`ON CONFLICT DO NOTHING`); returns how many were
    /// new. A public-outbox message replaces the stored one only when it is newer.
    pub async fn bulk_insert(&self, messages: Vec<(AccountKey, StoredMessage)>) -> Result<usize, StoreError> {
        self.write(move |conn| ops::bulk_insert(conn, &messages)).await
    }

    /// Messages of `account` in `namespace` after `last_hash` (from the start when the hash is
    /// unknown or absent), not expired at `now_ms` (`expiry > now_ms`), within `limits`.
    pub async fn retrieve(
        &self,
        account: AccountKey,
        namespace: Namespace,
        last_hash: Option<MessageHash>,
        limits: RetrieveLimits,
        now_ms: i64,
    ) -> Result<Retrieved, StoreError> {
        self.read(move |conn| ops::retrieve(conn, &account, namespace, last_hash.as_ref(), limits, now_ms))
            .await
    }

    /// Deletes these hashes of `account` (any namespace); returns the deleted ones, sorted.
    pub async fn delete_hashes(
        &self,
        account: AccountKey,
        hashes: Vec<MessageHash>,
    ) -> Result<Vec<MessageHash>, StoreError> {
        self.write(move |conn| ops::delete_hashes(conn, &account, &hashes)).await
    }

    /// Deletes every message of `account` in the selected namespace(s); returns what was
    /// deleted, sorted by (namespace, hash).
    pub async fn delete_all(
        &self,
        account: AccountKey,
        namespaces: NamespaceSelector,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        self.write(move |conn| ops::delete_all(conn, &account, namespaces)).await
    }

    /// Deletes messages with `timestamp <= before_ms`; returns them sorted by (namespace, hash).
    pub async fn delete_before(
        &self,
        account: AccountKey,
        namespaces: NamespaceSelector,
        before_ms: i64,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        self.write(move |conn| ops::delete_before(conn, &account, namespaces, before_ms)).await
    }

    /// Shortens to `expiry_ms` every selected message whose expiry is later; returns the updated
    /// ones sorted by (namespace, hash).
    pub async fn expire_all(
        &self,
        account: AccountKey,
        namespaces: NamespaceSelector,
        expiry_ms: i64,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        self.write(move |conn| ops::expire_all(conn, &account, namespaces, expiry_ms)).await
    }

    /// Sets per-hash expiries under `mode` (Set: any direction; Shorten: only earlier; Extend:
    /// only later). Hashes that do not exist for `account` are ignored. `updated` holds each
    /// changed hash once with the expiry applied (the last one given, if a hash repeats);
    /// `unchanged` (Shorten/Extend only) the other existing hashes with their current expiry.
    pub async fn expire(
        &self,
        account: AccountKey,
        expiries: Vec<(MessageHash, i64)>,
        mode: ExpireMode,
    ) -> Result<ExpireOutcome, StoreError> {
        self.write(move |conn| ops::expire(conn, &account, &expiries, mode)).await
    }

    /// Current expiries of the hashes that exist for `account`, sorted by hash.
    pub async fn expiries(
        &self,
        account: AccountKey,
        hashes: Vec<MessageHash>,
    ) -> Result<Vec<(MessageHash, i64)>, StoreError> {
        self.read(move |conn| ops::expiries(conn, &account, &hashes)).await
    }

    /// Adds tokens to the account's revocation list (keeps the 50 newest; a token revoked again
    /// counts as revoked at `now_ms`).
    pub async fn revoke(
        &self,
        account: AccountKey,
        tokens: Vec<[u8; 36]>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| ops::revoke(conn, &account, &tokens, now_ms)).await
    }

    /// Removes tokens from the revocation list; returns how many were removed.
    pub async fn unrevoke(&self, account: AccountKey, tokens: Vec<[u8; 36]>) -> Result<usize, StoreError> {
        self.write(move |conn| ops::unrevoke(conn, &account, &tokens)).await
    }

    /// True when the token is revoked for the account.
    pub async fn is_revoked(&self, account: AccountKey, token: [u8; 36]) -> Result<bool, StoreError> {
        self.read(move |conn| ops::is_revoked(conn, &account, &token)).await
    }

    /// Deletes messages with `expiry <= now_ms` (and the tombstones of deleted messages that
    /// would have expired by then); returns how many messages. Works in chunks, each its own
    /// writer job, so that client writes interleave with the cleanup of a large backlog.
    pub async fn clean_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self.write(move |conn| ops::clean_expired_chunk(conn, now_ms)).await?;
            total += deleted;
            if deleted < ops::CLEAN_CHUNK {
                break;
            }
        }
        while self.write(move |conn| ops::clean_tombstones_chunk(conn, now_ms)).await? >= ops::CLEAN_CHUNK {}
        Ok(total)
    }

    /// Deletes these hashes of `account` without leaving tombstones: the messages were handed
    /// over to the swarm that now owns the account, not deleted by their owner. Returns how many
    /// were deleted.
    pub async fn drop_handed_off(
        &self,
        account: AccountKey,
        hashes: Vec<MessageHash>,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| ops::drop_handed_off(conn, &account, &hashes)).await
    }

    /// Every account with stored messages (or revocations), in byte order.
    pub async fn accounts(&self) -> Result<Vec<AccountKey>, StoreError> {
        self.read(ops::accounts).await
    }

    /// The account's messages in every namespace, not expired at `now_ms`, in insertion order.
    pub async fn account_messages(
        &self,
        account: AccountKey,
        now_ms: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.read(move |conn| ops::account_messages(conn, &account, now_ms)).await
    }

    /// The digest (count and hash over the sorted message hashes) of every account with messages
    /// not expired at `now_ms` and for which `keep` is true, in account byte order.
    pub async fn account_digests(
        &self,
        now_ms: i64,
        keep: impl Fn(&AccountKey) -> bool + Send + 'static,
    ) -> Result<Vec<AccountDigest>, StoreError> {
        self.read(move |conn| {
            let mut builder = crate::sync::digest::DigestBuilder::default();
            ops::visit_hashes(conn, now_ms, &mut |account, hash| {
                if keep(&account) {
                    builder.add(account, &hash);
                }
            })?;
            Ok(builder.finish())
        })
        .await
    }

    /// For each `(account, skip)` in order, the account's messages not expired at `now_ms` whose
    /// hashes are not in `skip`, while their estimated transfer size stays within `budget` bytes
    /// (at least one message is returned if any is missing). The flag is true when the budget cut
    /// the list short.
    pub async fn messages_except(
        &self,
        wanted: Vec<(AccountKey, HashSet<MessageHash>)>,
        now_ms: i64,
        budget: usize,
    ) -> Result<(Vec<(AccountKey, StoredMessage)>, bool), StoreError> {
        self.read(move |conn| {
            let mut out = Vec::new();
            let mut budget = budget;
            for (account, skip) in &wanted {
                if !ops::messages_except(conn, account, skip, now_ms, &mut budget, &mut out)? {
                    return Ok((out, true));
                }
            }
            Ok((out, false))
        })
        .await
    }

    /// Hashes of the account's messages that its owner deleted here and whose tombstones are
    /// still kept (until the message would have expired).
    pub async fn tombstones(&self, account: AccountKey) -> Result<Vec<MessageHash>, StoreError> {
        self.read(move |conn| ops::tombstones(conn, &account)).await
    }

    /// Counts and sizes.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let page_size = self.inner.page_size;
        self.read(move |conn| ops::stats(conn, page_size)).await
    }

    /// Queues a write on the writer thread and waits until it is committed.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, response) = oneshot::channel();
        let queue = self.inner.writer.as_ref().ok_or(StoreError::Closed)?;
        queue.send(Box::new(writer::Job::new(op, reply))).map_err(|_| StoreError::Closed)?;
        response.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on the read pool.
    async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, response) = oneshot::channel();
        let queue = self.inner.readers.as_ref().ok_or(StoreError::Closed)?;
        queue
            .send(Box::new(move |conn: &Connection| {
                let _ = reply.send(op(conn));
            }))
            .map_err(|_| StoreError::Closed)?;
        response.await.map_err(|_| StoreError::Closed)?
    }

    /// (groups, jobs) the writer has processed so far.
    #[cfg(test)]
    fn writer_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        let counters = &self.inner.counters;
        (counters.groups.load(Ordering::Relaxed), counters.jobs.load(Ordering::Relaxed))
    }
}

/// How often expired messages are deleted (upstream: every 10 s).
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(10);

/// Spawns the cleanup task: deletes expired messages now and then every [`EXPIRY_INTERVAL`],
/// until the store is closed. Needs a tokio runtime.
pub fn spawn_expiry_task(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(EXPIRY_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match store.clean_expired(unix_now_ms()).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "expired messages removed"),
                Err(StoreError::Closed) => break,
                Err(err) => tracing::warn!(error = %err, "expiry cleanup failed"),
            }
        }
    })
}

/// The wall clock in ms since the Unix epoch.
fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Shared state behind the handles.
#[derive(Debug)]
struct Inner {
    /// Queue of the writer thread (None only while opening or closing).
    writer: Option<mpsc::Sender<Box<dyn writer::WriteJob>>>,
    /// Queue of the reader threads.
    readers: Option<mpsc::Sender<read::ReadJob>>,
    /// The writer and reader threads.
    threads: Vec<JoinHandle<()>>,
    /// The database page size in bytes.
    page_size: u64,
    /// The writer's counters.
    counters: Arc<writer::WriterCounters>,
}

impl Drop for Inner {
    /// Closes the queues and waits for the threads to finish the queued work, so that the
    /// database is closed (and checkpointed) when the last handle is gone.
    fn drop(&mut self) {
        self.writer = None;
        self.readers = None;
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a database thread panicked");
            }
        }
    }
}
