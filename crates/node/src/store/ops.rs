//! The SQL of each store operation, as plain functions of a connection (network §4, §5).
//!
//! Write operations run on the writer thread inside a group transaction (see `writer.rs`); read
//! operations run on a read connection. Every statement goes through `prepare_cached`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rusqlite::types::{Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{ExpireMode, NamespaceSelector};

use super::{ExpireOutcome, RetrieveLimits, Retrieved, StoreError, StoreOutcome, StoreStats, StoredMessage};
use crate::AccountKey;

/// Fixed per-message overhead in retrieve's size estimate (network §4.2).
const RETRIEVE_OVERHEAD: usize = 100;

/// Most rows one expiry-cleanup step deletes, so that cleanup of a large backlog interleaves
/// with client writes instead of holding the writer for seconds.
pub(super) const CLEAN_CHUNK: usize = 2000;

// ---------------------------------------------------------------------------------------------
// Writes (writer thread)
// ---------------------------------------------------------------------------------------------

/// Stores one message; a duplicate hash only raises the expiry (network §4.1). A store into a
/// public-outbox namespace first deletes the owner's other messages there (network §3.1).
pub(super) fn store(
    conn: &Connection,
    account: &AccountKey,
    msg: &StoredMessage,
) -> Result<StoreOutcome, StoreError> {
    let existing: Option<(i64, i64)> = conn
        .prepare_cached("SELECT id, expiry FROM messages WHERE hash = ?1")?
        .query_row([msg.hash.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((id, expiry)) = existing {
        if expiry >= msg.expiry_ms {
            return Ok(StoreOutcome { new: false, expiry_ms: expiry });
        }
        conn.prepare_cached("UPDATE messages SET expiry = ?1 WHERE id = ?2")?.execute((msg.expiry_ms, id))?;
        return Ok(StoreOutcome { new: false, expiry_ms: msg.expiry_ms });
    }

    // Before the owner lookup: deleting the owner's last message removes the owner row.
    if msg.namespace.is_public_outbox()
        && let Some(owner) = owner_id(conn, account)?
    {
        conn.prepare_cached("DELETE FROM messages WHERE owner = ?1 AND namespace = ?2")?
            .execute((owner, msg.namespace.0))?;
    }
    ensure_room(conn, msg.data.len())?;
    let owner = owner_id_or_create(conn, account)?;
    conn.prepare_cached(
        "INSERT INTO messages (hash, owner, namespace, timestamp, expiry, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((msg.hash.as_str(), owner, msg.namespace.0, msg.timestamp_ms, msg.expiry_ms, &msg.data[..]))?;
    // A client storing a message again overrides its earlier deletion.
    conn.prepare_cached("DELETE FROM deleted_messages WHERE hash = ?1")?.execute([msg.hash.as_str()])?;
    Ok(StoreOutcome { new: true, expiry_ms: msg.expiry_ms })
}

/// Inserts messages from a peer, skipping hashes already stored (`ON CONFLICT DO NOTHING`) and
/// hashes their owner deleted here (tombstones). A public-outbox message is kept only when it is
/// newer than the one already there, so the outbox keeps holding a single message. Returns how
/// many were inserted.
pub(super) fn bulk_insert(
    conn: &Connection,
    messages: &[(AccountKey, StoredMessage)],
) -> Result<usize, StoreError> {
    let mut inserted = 0;
    for (account, msg) in messages {
        if is_tombstoned(conn, &msg.hash)? {
            continue;
        }
        if msg.namespace.is_public_outbox()
            && let Some(owner) = owner_id(conn, account)?
        {
            let newest: Option<i64> = conn
                .prepare_cached("SELECT max(timestamp) FROM messages WHERE owner = ?1 AND namespace = ?2")?
                .query_row((owner, msg.namespace.0), |row| row.get(0))?;
            if newest.is_some_and(|ts| ts >= msg.timestamp_ms) {
                continue;
            }
            conn.prepare_cached("DELETE FROM messages WHERE owner = ?1 AND namespace = ?2")?
                .execute((owner, msg.namespace.0))?;
        }
        ensure_room(conn, msg.data.len())?;
        let owner = owner_id_or_create(conn, account)?;
        inserted += conn
            .prepare_cached(
                "INSERT INTO messages (hash, owner, namespace, timestamp, expiry, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (hash) DO NOTHING",
            )?
            .execute((
                msg.hash.as_str(),
                owner,
                msg.namespace.0,
                msg.timestamp_ms,
                msg.expiry_ms,
                &msg.data[..],
            ))?;
    }
    Ok(inserted)
}

/// Deletes the given hashes of the owner, in any namespace; returns the deleted ones, sorted.
pub(super) fn delete_hashes(
    conn: &Connection,
    account: &AccountKey,
    hashes: &[MessageHash],
) -> Result<Vec<MessageHash>, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(Vec::new());
    };
    // One statement per hash through the unique hash index; `hash IN (…)` could be planned as a
    // scan of every message the owner has.
    let mut stmt =
        conn.prepare_cached("DELETE FROM messages WHERE hash = ?1 AND owner = ?2 RETURNING expiry")?;
    let mut deleted = BTreeSet::new();
    for hash in hashes {
        if let Some(expiry) = stmt.query_row((hash.as_str(), owner), |row| row.get::<_, i64>(0)).optional()? {
            tombstone(conn, account, hash, expiry)?;
            deleted.insert(*hash);
        }
    }
    Ok(deleted.into_iter().collect())
}

/// Deletes the given hashes of the owner without leaving tombstones (they were handed over to
/// the swarm that now owns the account); returns how many were deleted.
pub(super) fn drop_handed_off(
    conn: &Connection,
    account: &AccountKey,
    hashes: &[MessageHash],
) -> Result<usize, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(0);
    };
    let mut stmt = conn.prepare_cached("DELETE FROM messages WHERE hash = ?1 AND owner = ?2")?;
    let mut deleted = 0;
    for hash in hashes {
        deleted += stmt.execute((hash.as_str(), owner))?;
    }
    Ok(deleted)
}

/// Deletes every message of the owner in the selected namespace(s).
pub(super) fn delete_all(
    conn: &Connection,
    account: &AccountKey,
    namespaces: NamespaceSelector,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    owner_bulk(conn, account, namespaces, "DELETE FROM messages WHERE owner = ?1{NS}", None)
}

/// Deletes the owner's messages with `timestamp <= before_ms` in the selected namespace(s).
pub(super) fn delete_before(
    conn: &Connection,
    account: &AccountKey,
    namespaces: NamespaceSelector,
    before_ms: i64,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    owner_bulk(
        conn,
        account,
        namespaces,
        "DELETE FROM messages WHERE owner = ?1{NS} AND timestamp <= ?3",
        Some(before_ms),
    )
}

/// Shortens to `expiry_ms` every selected message that expires later.
pub(super) fn expire_all(
    conn: &Connection,
    account: &AccountKey,
    namespaces: NamespaceSelector,
    expiry_ms: i64,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    owner_bulk(
        conn,
        account,
        namespaces,
        "UPDATE messages SET expiry = ?3 WHERE owner = ?1{NS} AND expiry > ?3",
        Some(expiry_ms),
    )
}

/// Runs a bulk statement over one owner's messages and returns the rows it touched, leaving a
/// tombstone for each message a `DELETE` removed. In `sql`,
/// `?1` is the owner, `{NS}` becomes ` AND namespace = ?2` for one namespace (nothing for all),
/// and `?3` is `value`.
fn owner_bulk(
    conn: &Connection,
    account: &AccountKey,
    namespaces: NamespaceSelector,
    sql: &str,
    value: Option<i64>,
) -> Result<Vec<(Namespace, MessageHash)>, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(Vec::new());
    };
    let (filter, namespace) = match namespaces {
        NamespaceSelector::One(ns) => (" AND namespace = ?2", Some(ns.0)),
        NamespaceSelector::All => ("", None),
    };
    let sql = format!("{} RETURNING namespace, hash, expiry", sql.replace("{NS}", filter));
    let mut stmt = conn.prepare_cached(&sql)?;
    // Every numbered parameter must be bound: an unused `?2`/`?3` is simply absent from `sql`.
    let mut args: Vec<(usize, i64)> = vec![(1, owner)];
    args.extend(namespace.map(|ns| (2, i64::from(ns))));
    args.extend(value.map(|v| (3, v)));
    for (index, arg) in args {
        stmt.raw_bind_parameter(index, arg)?;
    }
    let mut rows = stmt.raw_query();
    let mut touched = Vec::new();
    while let Some(row) = rows.next()? {
        touched.push((Namespace(row.get(0)?), hash_from_row(row, 1)?, row.get::<_, i64>(2)?));
    }
    drop(rows);
    let deletes = sql.starts_with("DELETE");
    let mut out = Vec::with_capacity(touched.len());
    for (namespace, hash, expiry) in touched {
        if deletes {
            tombstone(conn, account, &hash, expiry)?;
        }
        out.push((namespace, hash));
    }
    out.sort_unstable();
    Ok(out)
}

/// Per-hash expiry update under `mode` (network §4.9).
pub(super) fn expire(
    conn: &Connection,
    account: &AccountKey,
    expiries: &[(MessageHash, i64)],
    mode: ExpireMode,
) -> Result<ExpireOutcome, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(ExpireOutcome::default());
    };
    let sql = match mode {
        ExpireMode::Set => "UPDATE messages SET expiry = ?1 WHERE hash = ?2 AND owner = ?3",
        ExpireMode::Shorten => {
            "UPDATE messages SET expiry = ?1 WHERE hash = ?2 AND owner = ?3 AND expiry > ?1"
        }
        ExpireMode::Extend => {
            "UPDATE messages SET expiry = ?1 WHERE hash = ?2 AND owner = ?3 AND expiry < ?1"
        }
    };
    let mut updated = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(sql)?;
        for (hash, expiry) in expiries {
            if stmt.execute((*expiry, hash.as_str(), owner))? > 0 {
                updated.insert(*hash, *expiry);
            }
        }
    }
    let mut unchanged = BTreeMap::new();
    if mode != ExpireMode::Set {
        let mut stmt = conn.prepare_cached("SELECT expiry FROM messages WHERE hash = ?1 AND owner = ?2")?;
        for (hash, _) in expiries {
            if updated.contains_key(hash) || unchanged.contains_key(hash) {
                continue;
            }
            if let Some(current) =
                stmt.query_row((hash.as_str(), owner), |row| row.get::<_, i64>(0)).optional()?
            {
                unchanged.insert(*hash, current);
            }
        }
    }
    Ok(ExpireOutcome { updated: updated.into_iter().collect(), unchanged: unchanged.into_iter().collect() })
}

/// Adds revocations (creating the owner row if needed); a token revoked again gets the newer
/// timestamp. The `revoked_autoclean` trigger keeps the 50 newest.
pub(super) fn revoke(
    conn: &Connection,
    account: &AccountKey,
    tokens: &[[u8; 36]],
    now_ms: i64,
) -> Result<(), StoreError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let owner = owner_id_or_create(conn, account)?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO revoked_subaccounts (owner, token, timestamp) VALUES (?1, ?2, ?3) \
         ON CONFLICT (owner, token) DO UPDATE SET timestamp = excluded.timestamp \
         WHERE revoked_subaccounts.timestamp < excluded.timestamp",
    )?;
    for token in tokens {
        stmt.execute((owner, &token[..], now_ms))?;
    }
    Ok(())
}

/// Removes revocations; returns how many existed.
pub(super) fn unrevoke(
    conn: &Connection,
    account: &AccountKey,
    tokens: &[[u8; 36]],
) -> Result<usize, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(0);
    };
    let mut stmt = conn.prepare_cached("DELETE FROM revoked_subaccounts WHERE owner = ?1 AND token = ?2")?;
    let mut removed = 0;
    for token in tokens {
        removed += stmt.execute((owner, &token[..]))?;
    }
    Ok(removed)
}

/// Deletes up to [`CLEAN_CHUNK`] messages with `expiry <= now_ms`; returns how many.
pub(super) fn clean_expired_chunk(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE expiry <= ?1 LIMIT ?2)",
        )?
        .execute((now_ms, i64::try_from(CLEAN_CHUNK).unwrap_or(i64::MAX)))?)
}

/// Deletes up to [`CLEAN_CHUNK`] tombstones of messages that would have expired by `now_ms`.
pub(super) fn clean_tombstones_chunk(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM deleted_messages WHERE hash IN \
             (SELECT hash FROM deleted_messages WHERE expiry <= ?1 LIMIT ?2)",
        )?
        .execute((now_ms, i64::try_from(CLEAN_CHUNK).unwrap_or(i64::MAX)))?)
}

// ---------------------------------------------------------------------------------------------
// Reads (read pool)
// ---------------------------------------------------------------------------------------------

/// Every account with an owner row, in byte order (prefix byte, then key).
pub(super) fn accounts(conn: &Connection) -> Result<Vec<AccountKey>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT type, pubkey FROM owners ORDER BY type, pubkey")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if let Some(account) = account_from_row(row, 0, 1)? {
            out.push(account);
        }
    }
    Ok(out)
}

/// The account's messages in every namespace, not expired at `now_ms`, in insertion order.
pub(super) fn account_messages(
    conn: &Connection,
    account: &AccountKey,
    now_ms: i64,
) -> Result<Vec<StoredMessage>, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT hash, namespace, timestamp, expiry, data FROM messages \
         WHERE owner = ?1 AND expiry > ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query((owner, now_ms))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(StoredMessage {
            hash: hash_from_row(row, 0)?,
            namespace: Namespace(row.get(1)?),
            timestamp_ms: row.get(2)?,
            expiry_ms: row.get(3)?,
            data: blob_ref(row, 4)?.to_vec(),
        });
    }
    Ok(out)
}

/// Calls `visit(account, hash)` for every message not expired at `now_ms`, ordered by account
/// (byte order) and then by hash, for digests.
pub(super) fn visit_hashes(
    conn: &Connection,
    now_ms: i64,
    visit: &mut dyn FnMut(AccountKey, MessageHash),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT owners.type, owners.pubkey, messages.hash FROM messages \
         JOIN owners ON messages.owner = owners.id WHERE messages.expiry > ?1 \
         ORDER BY owners.type, owners.pubkey, messages.hash",
    )?;
    let mut rows = stmt.query([now_ms])?;
    while let Some(row) = rows.next()? {
        if let Some(account) = account_from_row(row, 0, 1)? {
            visit(account, hash_from_row(row, 2)?);
        }
    }
    Ok(())
}

/// Appends to `out` the account's messages (not expired at `now_ms`) whose hashes are not in
/// `skip`, while the estimated size stays within `budget` (the first message always fits).
/// Returns false when the budget cut the list short.
pub(super) fn messages_except(
    conn: &Connection,
    account: &AccountKey,
    skip: &HashSet<MessageHash>,
    now_ms: i64,
    budget: &mut usize,
    out: &mut Vec<(AccountKey, StoredMessage)>,
) -> Result<bool, StoreError> {
    for message in account_messages(conn, account, now_ms)? {
        if skip.contains(&message.hash) {
            continue;
        }
        let size = crate::peer::wire::WireMessage::estimated_len(&message);
        if !out.is_empty() && size > *budget {
            return Ok(false);
        }
        *budget = budget.saturating_sub(size);
        out.push((*account, message));
    }
    Ok(true)
}

/// Hashes of the account's messages that its owner deleted here (tombstones still kept).
pub(super) fn tombstones(conn: &Connection, account: &AccountKey) -> Result<Vec<MessageHash>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM deleted_messages WHERE account = ?1")?;
    let mut rows = stmt.query([&account.as_bytes()[..]])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(hash_from_row(row, 0)?);
    }
    Ok(out)
}

/// Retrieve with cursor, expiry filter and limits (network §4.2).
pub(super) fn retrieve(
    conn: &Connection,
    account: &AccountKey,
    namespace: Namespace,
    last_hash: Option<&MessageHash>,
    limits: RetrieveLimits,
    now_ms: i64,
) -> Result<Retrieved, StoreError> {
    let mut out = Retrieved { messages: Vec::new(), more: false };
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(out);
    };
    // An unknown cursor (or one of another owner or namespace) starts from the beginning.
    let after_id: i64 = match last_hash {
        Some(hash) => conn
            .prepare_cached("SELECT id FROM messages WHERE hash = ?1 AND owner = ?2 AND namespace = ?3")?
            .query_row((hash.as_str(), owner, namespace.0), |row| row.get(0))
            .optional()?
            .unwrap_or(0),
        None => 0,
    };
    let max_count = limits.max_count.map(|count| count.max(1));
    // One extra row tells whether the count limit cut the list short.
    let sql_limit =
        max_count.map_or(-1, |count| i64::try_from(count).unwrap_or(i64::MAX - 1).saturating_add(1));

    let mut stmt = conn.prepare_cached(
        "SELECT hash, timestamp, expiry, data FROM messages \
         WHERE owner = ?1 AND namespace = ?2 AND id > ?3 AND expiry > ?4 ORDER BY id LIMIT ?5",
    )?;
    let mut rows = stmt.query((owner, namespace.0, after_id, now_ms, sql_limit))?;
    let mut total_size = 0usize;
    while let Some(row) = rows.next()? {
        if max_count.is_some_and(|count| out.messages.len() >= count) {
            out.more = true;
            break;
        }
        let data = blob_ref(row, 3)?;
        total_size = total_size
            .saturating_add(RETRIEVE_OVERHEAD + MessageHash::LEN)
            .saturating_add(data.len().saturating_mul(4) / 3);
        if !out.messages.is_empty() && total_size > limits.max_size {
            out.more = true;
            break;
        }
        let data = data.to_vec();
        out.messages.push(StoredMessage {
            hash: hash_from_row(row, 0)?,
            namespace,
            timestamp_ms: row.get(1)?,
            expiry_ms: row.get(2)?,
            data,
        });
    }
    Ok(out)
}

/// Current expiries of the owner's hashes that exist, sorted by hash.
pub(super) fn expiries(
    conn: &Connection,
    account: &AccountKey,
    hashes: &[MessageHash],
) -> Result<Vec<(MessageHash, i64)>, StoreError> {
    let Some(owner) = owner_id(conn, account)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached("SELECT expiry FROM messages WHERE hash = ?1 AND owner = ?2")?;
    let mut found = BTreeMap::new();
    for hash in hashes {
        if let Some(expiry) = stmt.query_row((hash.as_str(), owner), |row| row.get::<_, i64>(0)).optional()? {
            found.insert(*hash, expiry);
        }
    }
    Ok(found.into_iter().collect())
}

/// True when `token` is in the owner's revocation list.
pub(super) fn is_revoked(
    conn: &Connection,
    account: &AccountKey,
    token: &[u8; 36],
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM revoked_subaccounts JOIN owners ON revoked_subaccounts.owner = owners.id \
             WHERE owners.pubkey = ?1 AND owners.type = ?2 AND revoked_subaccounts.token = ?3",
        )?
        .query_row((&account.key()[..], account.prefix(), &token[..]), |_| Ok(()))
        .optional()?
        .is_some())
}

/// Message count and bytes in use.
pub(super) fn stats(conn: &Connection, page_size: u64) -> Result<StoreStats, StoreError> {
    let messages: i64 =
        conn.prepare_cached("SELECT COUNT(*) FROM messages")?.query_row([], |row| row.get(0))?;
    let pages: i64 = conn.prepare_cached("PRAGMA page_count")?.query_row([], |row| row.get(0))?;
    let free: i64 = conn.prepare_cached("PRAGMA freelist_count")?.query_row([], |row| row.get(0))?;
    let used_pages = u64::try_from(pages.saturating_sub(free)).unwrap_or(0);
    Ok(StoreStats {
        messages: u64::try_from(messages).unwrap_or(0),
        db_bytes: used_pages.saturating_mul(page_size),
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Pages a new message may need besides its payload: a leaf split in the table and in each of
/// the three indexes on messages, plus an owner row and its index entry.
const INSERT_SPARE_PAGES: i64 = 6;

/// Fails with [`StoreError::Full`] when inserting a message of `data_len` bytes might push the
/// database past `max_page_count`. SQLite would report that as `SQLITE_FULL` too, but it rolls
/// back the whole transaction for it, and with it every other write of the group; checking first
/// keeps the failure to this one write. The estimate is conservative (each page holds somewhat
/// less than `page_size` bytes of payload).
fn ensure_room(conn: &Connection, data_len: usize) -> Result<(), StoreError> {
    let (used_pages, max_pages, page_size): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT page_count - freelist_count, max_page_count, page_size \
             FROM pragma_page_count, pragma_freelist_count, pragma_max_page_count, pragma_page_size",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let row_bytes = i64::try_from(data_len).unwrap_or(i64::MAX).saturating_add(128);
    // Overflow pages carry page_size − 4 bytes each.
    let payload_pages = row_bytes / (page_size.max(512) - 4) + 1;
    if used_pages.saturating_add(payload_pages).saturating_add(INSERT_SPARE_PAGES) > max_pages {
        return Err(StoreError::Full);
    }
    Ok(())
}

/// The owner row id of an account, if it has one.
fn owner_id(conn: &Connection, account: &AccountKey) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM owners WHERE pubkey = ?1 AND type = ?2")?
        .query_row((&account.key()[..], account.prefix()), |row| row.get(0))
        .optional()
}

/// The owner row id of an account, inserting the row if needed.
fn owner_id_or_create(conn: &Connection, account: &AccountKey) -> rusqlite::Result<i64> {
    if let Some(id) = owner_id(conn, account)? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO owners (type, pubkey) VALUES (?1, ?2) RETURNING id")?
        .query_row((account.prefix(), &account.key()[..]), |row| row.get(0))
}

/// Records that the owner deleted `hash`, until `expiry` (when the message would have expired
/// anyway and no peer can hand it back).
fn tombstone(
    conn: &Connection,
    account: &AccountKey,
    hash: &MessageHash,
    expiry: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO deleted_messages (hash, account, expiry) VALUES (?1, ?2, ?3) \
         ON CONFLICT (hash) DO UPDATE SET expiry = max(expiry, excluded.expiry)",
    )?
    .execute((hash.as_str(), &account.as_bytes()[..], expiry))?;
    Ok(())
}

/// True when the owner deleted `hash` here and its tombstone is still kept.
fn is_tombstoned(conn: &Connection, hash: &MessageHash) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM deleted_messages WHERE hash = ?1")?
        .query_row([hash.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Reads an account from its `type` and `pubkey` columns; None for a malformed row.
fn account_from_row(
    row: &Row<'_>,
    type_index: usize,
    key_index: usize,
) -> rusqlite::Result<Option<AccountKey>> {
    let prefix: i64 = row.get(type_index)?;
    let key = row.get_ref(key_index)?.as_blob()?;
    let (Ok(prefix), Ok(key)) = (u8::try_from(prefix), <[u8; 32]>::try_from(key)) else {
        return Ok(None);
    };
    let mut bytes = [0u8; 33];
    bytes[0] = prefix;
    bytes[1..].copy_from_slice(&key);
    Ok(Some(AccountKey::from_bytes(bytes)))
}

/// Reads a stored hash column.
fn hash_from_row(row: &Row<'_>, index: usize) -> rusqlite::Result<MessageHash> {
    let text = row.get_ref(index)?.as_bytes()?;
    MessageHash::from_ascii(text)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

/// Borrows a blob column without copying.
fn blob_ref<'row>(row: &'row Row<'_>, index: usize) -> rusqlite::Result<&'row [u8]> {
    match row.get_ref(index)? {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Ok(bytes),
        other => Err(rusqlite::Error::InvalidColumnType(index, "data".into(), other.data_type())),
    }
}
