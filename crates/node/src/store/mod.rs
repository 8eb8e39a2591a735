//! The SQLite message store (network §5).
//!
//! INTERFACE SKETCH — the bodies are being written (helper N1). Signatures are the contract the
//! RPC layer codes against; change them only together with `rpc/`.
//!
//! One writer thread owns the only write connection and groups queued writes into one
//! transaction under load; a small pool of read connections serves reads. Every async method
//! completes only after its effect is durable (see the crate README for the synchronous mode).

use std::path::Path;

use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{ExpireMode, NamespaceSelector};

use crate::AccountKey;

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
    /// The database reached its size cap.
    #[error("database is full")]
    Full,
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread is gone (the node is shutting down).
    #[error("database writer stopped")]
    Closed,
}

/// Handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {}

#[allow(unused_variables, clippy::unused_async)]
impl Store {
    /// Opens (creating if needed) `dir/storage.db`, runs migrations, starts the writer thread
    /// and the read pool.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        unimplemented!()
    }

    /// Stores a message; a duplicate hash only raises the stored expiry.
    pub async fn store(
        &self,
        account: AccountKey,
        message: StoredMessage,
    ) -> Result<StoreOutcome, StoreError> {
        unimplemented!()
    }

    /// Inserts messages received from a peer (`ON CONFLICT DO NOTHING`); returns how many were
    /// new.
    pub async fn bulk_insert(&self, messages: Vec<(AccountKey, StoredMessage)>) -> Result<usize, StoreError> {
        unimplemented!()
    }

    /// Messages of `account` in `namespace` after `last_hash` (from the start when the hash is
    /// unknown or absent), not expired at `now_ms`, within `limits`.
    pub async fn retrieve(
        &self,
        account: AccountKey,
        namespace: Namespace,
        last_hash: Option<MessageHash>,
        limits: RetrieveLimits,
        now_ms: i64,
    ) -> Result<Retrieved, StoreError> {
        unimplemented!()
    }

    /// Deletes these hashes of `account` (any namespace); returns the deleted ones, sorted.
    pub async fn delete_hashes(
        &self,
        account: AccountKey,
        hashes: Vec<MessageHash>,
    ) -> Result<Vec<MessageHash>, StoreError> {
        unimplemented!()
    }

    /// Deletes every message of `account` in the selected namespace(s); returns what was
    /// deleted, sorted by (namespace, hash).
    pub async fn delete_all(
        &self,
        account: AccountKey,
        namespaces: NamespaceSelector,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        unimplemented!()
    }

    /// Deletes messages with `timestamp <= before_ms`; returns them sorted by (namespace, hash).
    pub async fn delete_before(
        &self,
        account: AccountKey,
        namespaces: NamespaceSelector,
        before_ms: i64,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        unimplemented!()
    }

    /// Shortens to `expiry_ms` every selected message whose expiry is later; returns the updated
    /// ones sorted by (namespace, hash).
    pub async fn expire_all(
        &self,
        account: AccountKey,
        namespaces: NamespaceSelector,
        expiry_ms: i64,
    ) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
        unimplemented!()
    }

    /// Sets per-hash expiries under `mode` (Set: any direction; Shorten: only earlier; Extend:
    /// only later). Hashes that do not exist for `account` are ignored.
    pub async fn expire(
        &self,
        account: AccountKey,
        expiries: Vec<(MessageHash, i64)>,
        mode: ExpireMode,
    ) -> Result<ExpireOutcome, StoreError> {
        unimplemented!()
    }

    /// Current expiries of the hashes that exist for `account`.
    pub async fn expiries(
        &self,
        account: AccountKey,
        hashes: Vec<MessageHash>,
    ) -> Result<Vec<(MessageHash, i64)>, StoreError> {
        unimplemented!()
    }

    /// Adds tokens to the account's revocation list (keeps the 50 newest).
    pub async fn revoke(&self, account: AccountKey, tokens: Vec<[u8; 36]>, now_ms: i64) -> Result<(), StoreError> {
        unimplemented!()
    }

    /// Removes tokens from the revocation list; returns how many were removed.
    pub async fn unrevoke(&self, account: AccountKey, tokens: Vec<[u8; 36]>) -> Result<usize, StoreError> {
        unimplemented!()
    }

    /// True when the token is revoked for the account.
    pub async fn is_revoked(&self, account: AccountKey, token: [u8; 36]) -> Result<bool, StoreError> {
        unimplemented!()
    }

    /// Deletes messages with `expiry <= now_ms`; returns how many.
    pub async fn clean_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        unimplemented!()
    }

    /// Counts and sizes.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        unimplemented!()
    }
}
