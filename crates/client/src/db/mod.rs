//! The client's local database: SQLCipher (SQLite encrypted page by page), one file per account.
//!
//! * Key: from a passphrase through Argon2id, or a random key in a 0600 file ([`key`], README
//!   "Database key"), given to SQLCipher in raw form.
//! * Schema: ordered migrations on `PRAGMA user_version` ([`LATEST_VERSION`]).
//! * Journal: WAL with `synchronous=FULL`: a commit returns only after the WAL is fsynced, so an
//!   acknowledged write (a message marked seen, an outgoing message stored) survives a power
//!   loss too, not only a process crash. A client writes a few rows per message, so the extra
//!   fsync per commit costs nothing a user notices; `NORMAL` could lose the last commits on power
//!   loss and re-show or re-send messages.
//! * Concurrency: one connection, exclusively locked, behind a `Mutex`. [`Db`] is the async
//!   handle: [`Db::run`] takes the lock and runs a closure on [`Store`] inside
//!   `tokio::task::spawn_blocking`, so SQLite's blocking I/O never stalls the async runtime.
//!   Operations are short, so one connection is enough; a closure that needs several steps
//!   atomically uses [`Store::transaction`].
//!
//! All SQL of the crate lives in this module; callers see only typed values ([`model`]).

pub mod key;
mod migrations;
pub mod model;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use key::{KdfParams, KeySource};
pub use migrations::LATEST_VERSION;
pub use model::{
    Account, Contact, Conversation, ConversationKind, ConversationState, Direction, LastHash, Message,
    MessageId, MessageState, NewMessage, Settings,
};
pub use store::Store;

/// A database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The passphrase or key file does not decrypt this database (SQLite reported "file is not a
    /// database" on the first read).
    #[error("wrong passphrase or key for this database")]
    WrongKey,
    /// Another process (or another handle in this one) has the database open.
    #[error("the database is in use by another client")]
    Locked,
    /// The key file or passphrase header is missing: the database was created with the other
    /// kind of key, or the file was removed.
    #[error("no key material at {}: was the database created with the other key source?", path.display())]
    MissingKeyMaterial {
        /// The file looked for.
        path: PathBuf,
    },
    /// The key file is not 64 hex characters.
    #[error("key file {} is malformed", path.display())]
    MalformedKeyFile {
        /// The file.
        path: PathBuf,
    },
    /// The passphrase header is malformed or has unusable parameters.
    #[error("passphrase header: {0}")]
    KdfHeader(String),
    /// Reading or writing a file beside the database failed.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite library is not SQLCipher, so the database would be written unencrypted.
    #[error("SQLite was built without SQLCipher; refusing to store data unencrypted")]
    NoSqlcipher,
    /// SQLite refused to switch the database to WAL (names the journal mode it kept).
    #[error("cannot enable WAL; journal mode is {0}")]
    NoWal(String),
    /// The database was written by a newer version of this client.
    #[error("database schema version {found} is newer than this client supports ({supported})")]
    SchemaTooNew {
        /// The file's version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// [`Store::create_account`] on a database that has one.
    #[error("the database already holds an account")]
    AccountExists,
    /// An account operation on a database without an account.
    #[error("the database holds no account")]
    NoAccount,
    /// No conversation with that peer.
    #[error("no such conversation")]
    NoConversation,
    /// No message with that id.
    #[error("no such message")]
    NoMessage,
    /// The node pool could not be serialised or parsed.
    #[error("node pool JSON: {0}")]
    NodePool(String),
    /// A stored value is invalid (names which).
    #[error("corrupt database value: {0}")]
    Corrupt(&'static str),
    /// Any other SQLite error.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the operation panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

/// Async handle to the database; cheap to clone. See the module docs for the threading model.
#[derive(Debug, Clone)]
pub struct Db {
    store: Arc<Mutex<Store>>,
}

impl Db {
    /// Opens or creates the database at `path` (Argon2id and SQLite run on a blocking thread).
    pub async fn open(path: impl AsRef<Path>, source: KeySource) -> Result<Self, DbError> {
        Self::open_with(path, source, KdfParams::DEFAULT).await
    }

    /// [`Db::open`] with the Argon2id parameters for a new passphrase database.
    pub async fn open_with(
        path: impl AsRef<Path>,
        source: KeySource,
        kdf: KdfParams,
    ) -> Result<Self, DbError> {
        let path = path.as_ref().to_owned();
        let store = tokio::task::spawn_blocking(move || {
            let store = Store::open_with(&path, &source, kdf)?;
            // The database is ours alone now (one process at a time), so nothing is being sent.
            let interrupted = store.fail_interrupted_sends()?;
            if interrupted > 0 {
                tracing::info!(count = interrupted, "sends interrupted by the last exit marked failed");
            }
            Ok::<_, DbError>(store)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
        Ok(Self::from_store(store))
    }

    /// Wraps an opened [`Store`].
    pub fn from_store(store: Store) -> Self {
        Self { store: Arc::new(Mutex::new(store)) }
    }

    /// Runs `f` on the store on a blocking thread, holding the connection for its duration.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, DbError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            // A panic inside an earlier closure poisons the mutex; `Store::transaction` rolled
            // back whatever that closure had open while unwinding, so the connection is still
            // consistent and usable.
            let mut guard = store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests;
