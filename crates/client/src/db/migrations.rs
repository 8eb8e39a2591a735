//! Schema migrations: an ordered list of steps; `PRAGMA user_version` is the number applied.
//!
//! Append new steps at the end; never edit a step that has shipped. Each step runs in its own
//! transaction together with the `user_version` bump, so a crash leaves the database at a whole
//! version.

use rusqlite::Connection;

use super::DbError;

/// The migration steps; step `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // v1: account, contacts, conversations, messages.
    "
    CREATE TABLE account (
        id                INTEGER PRIMARY KEY CHECK (id = 1),
        seed              BLOB    NOT NULL,
        created_ms        INTEGER NOT NULL,
        display_name      TEXT,
        read_receipts     INTEGER NOT NULL DEFAULT 0,
        typing_indicators INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    CREATE TABLE contacts (
        session_id   BLOB    PRIMARY KEY,
        display_name TEXT,
        nickname     TEXT,
        approved     INTEGER NOT NULL DEFAULT 0,
        approved_me  INTEGER NOT NULL DEFAULT 0,
        blocked      INTEGER NOT NULL DEFAULT 0,
        created_ms   INTEGER NOT NULL
    ) STRICT;

    -- kind: 0 direct, 1 note to self. state: 0 request, 1 accepted.
    -- dm_mode: 0 off, 1 after send, 2 after read; dm_timer_s: seconds.
    CREATE TABLE conversations (
        id               INTEGER PRIMARY KEY,
        peer             BLOB    NOT NULL UNIQUE,
        kind             INTEGER NOT NULL,
        state            INTEGER NOT NULL,
        dm_mode          INTEGER NOT NULL DEFAULT 0,
        dm_timer_s       INTEGER NOT NULL DEFAULT 0,
        last_activity_ms INTEGER NOT NULL,
        created_ms       INTEGER NOT NULL
    ) STRICT;

    -- direction: 0 incoming, 1 outgoing.
    -- state: 0 sending, 1 sent, 2 failed, 3 read, 4 received.
    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        author          BLOB    NOT NULL,
        sent_ms         INTEGER NOT NULL,
        server_hash     TEXT    UNIQUE,
        body            TEXT,
        direction       INTEGER NOT NULL,
        state           INTEGER NOT NULL,
        expire_mode     INTEGER NOT NULL DEFAULT 0,
        expire_timer_s  INTEGER NOT NULL DEFAULT 0,
        expires_at_ms   INTEGER,
        read_at_ms      INTEGER,
        deleted         INTEGER NOT NULL DEFAULT 0,
        UNIQUE (conversation_id, author, sent_ms)
    ) STRICT;
    CREATE INDEX messages_by_conversation ON messages (conversation_id, sent_ms);
    CREATE INDEX messages_by_expiry ON messages (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
    ",
    // v2: poll state: last hashes, node pool, seen hashes.
    "
    CREATE TABLE last_hashes (
        node_ed25519 BLOB    NOT NULL,
        namespace    INTEGER NOT NULL,
        hash         TEXT    NOT NULL,
        expires_ms   INTEGER NOT NULL,
        PRIMARY KEY (node_ed25519, namespace)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE node_pool (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        json       TEXT    NOT NULL,
        updated_ms INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE seen_hashes (
        hash       TEXT    PRIMARY KEY,
        expires_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX seen_hashes_by_expiry ON seen_hashes (expires_ms);
    ",
];

/// The schema version this build writes.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// The schema version of `conn`.
pub(crate) fn version(conn: &Connection) -> Result<u32, DbError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies the steps after the current version up to `target`. A database newer than this build
/// is refused rather than opened with a schema it does not know.
pub(crate) fn migrate_to(conn: &mut Connection, target: u32) -> Result<(), DbError> {
    let current = version(conn)?;
    if current > LATEST_VERSION {
        return Err(DbError::SchemaTooNew { found: current, supported: LATEST_VERSION });
    }
    for step in current..target.min(LATEST_VERSION) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATIONS[step as usize])?;
        tx.pragma_update(None, "user_version", step + 1)?;
        tx.commit()?;
        tracing::info!(version = step + 1, "database migrated");
    }
    Ok(())
}
