//! Connection setup and the versioned schema (network §5).
//!
//! The schema is an ordered list of migrations; `PRAGMA user_version` records how many have been
//! applied. Each migration runs in its own transaction together with the version bump, so a crash
//! mid-upgrade leaves the database at the previous version, and the next start retries.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// The database file inside the data directory (upstream's name).
pub(super) const DB_FILE: &str = "storage.db";

/// How long a connection waits for a lock before failing with SQLITE_BUSY (upstream: 15 s).
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Prepared statements kept per connection. Each connection uses well under this many distinct
/// statements, so every statement stays cached.
const STATEMENT_CACHE: usize = 64;

/// Page cache of the write connection, KiB.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// Page cache of each read connection, KiB.
const READER_CACHE_KIB: i64 = 8 * 1024;

/// The migrations, in order. Entry `i` takes the schema from version `i` to `i + 1`. Never edit
/// an entry once released; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
CREATE TABLE owners (
    id INTEGER PRIMARY KEY,
    type INTEGER NOT NULL,
    pubkey BLOB NOT NULL,
    UNIQUE(pubkey, type)
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    owner INTEGER NOT NULL REFERENCES owners(id),
    namespace INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    expiry INTEGER NOT NULL,
    data BLOB NOT NULL
);

CREATE TABLE revoked_subaccounts (
    owner INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE,
    token BLOB NOT NULL,
    timestamp INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    PRIMARY KEY(owner, token)
);

-- Keep only the 50 newest revocations of an owner (ties: the later insert is newer).
CREATE TRIGGER revoked_autoclean
    AFTER INSERT ON revoked_subaccounts
    WHEN (SELECT COUNT(*) FROM revoked_subaccounts WHERE owner = NEW.owner) > 50
BEGIN
    DELETE FROM revoked_subaccounts
    WHERE owner = NEW.owner AND rowid NOT IN (
        SELECT rowid FROM revoked_subaccounts WHERE owner = NEW.owner
        ORDER BY timestamp DESC, rowid DESC LIMIT 50
    );
END;

-- An owner row goes when its last message goes, unless it still has revocations: upstream
-- cascades those away with the owner, which would un-revoke a subaccount once the account's
-- messages have all expired.
CREATE TRIGGER owner_autoclean
    AFTER DELETE ON messages
    WHEN NOT EXISTS (SELECT 1 FROM messages WHERE owner = OLD.owner)
     AND NOT EXISTS (SELECT 1 FROM revoked_subaccounts WHERE owner = OLD.owner)
BEGIN
    DELETE FROM owners WHERE id = OLD.owner;
END;

-- The same when the last revocation of a message-less owner is removed.
CREATE TRIGGER owner_autoclean_revoked
    AFTER DELETE ON revoked_subaccounts
    WHEN NOT EXISTS (SELECT 1 FROM messages WHERE owner = OLD.owner)
     AND NOT EXISTS (SELECT 1 FROM revoked_subaccounts WHERE owner = OLD.owner)
BEGIN
    DELETE FROM owners WHERE id = OLD.owner;
END;

-- Expiry cleanup.
CREATE INDEX messages_expiry ON messages(expiry);

-- Retrieve, delete_all, delete_before, expire_all. Index entries end in the rowid, so within one
-- (owner, namespace) this index is in insertion order and retrieve pages straight off it
-- without a sort (upstream's current schema made the same change from (owner, namespace,
-- timestamp)).
CREATE INDEX messages_owner ON messages(owner, namespace);

-- Hash lookups use the automatic index of UNIQUE(hash); a separate messages_hash index (older
-- upstream schemas) would only duplicate it.

CREATE VIEW owned_messages AS
    SELECT owners.id AS oid, type, pubkey, messages.id AS mid, hash, namespace, timestamp,
           expiry, data
    FROM messages JOIN owners ON messages.owner = owners.id;
",
    // 2: tombstones of messages deleted by their owner (delete, delete_all, delete_before), kept
    // until the deleted message would have expired, so that a peer that missed the delete
    // cannot bring the message back through a transfer or catch-up (docs/node-channel.md §8).
    r"
CREATE TABLE deleted_messages (
    hash TEXT PRIMARY KEY,
    account BLOB NOT NULL,
    expiry INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX deleted_messages_account ON deleted_messages(account);
CREATE INDEX deleted_messages_expiry ON deleted_messages(expiry);
",
];

/// Opens the single write connection: creates the file if needed, applies the pragmas, runs
/// pending migrations and sets the size cap. Returns the connection and the page size.
pub(super) fn open_writer(dir: &Path, max_db_bytes: u64) -> Result<(Connection, u64), StoreError> {
    let conn = Connection::open_with_flags(
        dir.join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    common_setup(&conn)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Setup(format!("could not enable WAL (journal mode is {mode})")));
    }
    // FULL: every COMMIT fsyncs the WAL, so an acknowledged write survives a crash of the node
    // and of the machine; the group commit pays one fsync per group. See the crate README.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A larger page cache for the connection that touches every index on each insert.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // Keep the WAL file from staying large after a burst (it is reset at each checkpoint).
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    migrate(&conn)?;

    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    let page_size = u64::try_from(page_size).unwrap_or(4096).max(1);
    let max_pages = i64::try_from(max_db_bytes / page_size).unwrap_or(i64::MAX).max(1);
    conn.pragma_update(None, "max_page_count", max_pages)?;
    Ok((conn, page_size))
}

/// Opens one read connection (after the writer has created the database).
pub(super) fn open_reader(dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        dir.join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    common_setup(&conn)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    Ok(conn)
}

/// The schema version this build writes.
#[cfg(test)]
pub(super) fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).expect("a handful of migrations")
}

/// Settings every connection shares.
fn common_setup(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Statement journals (savepoints) and temporary b-trees stay in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Applies every migration past the stored `user_version`.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Setup(format!(
            "database schema version {current} is newer than this build ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        tracing::info!(version, "applying database migration");
        conn.execute_batch(&format!("BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"))
            .inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            })?;
    }
    Ok(())
}
