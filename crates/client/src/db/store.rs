//! [`Store`]: the open database and its typed API. The only place in the crate that writes SQL
//! (with `migrations.rs`).

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use session_protocol::id::SessionId;
use session_protocol::keys::{AccountSeed, IdentityKey};
use session_protocol::message_hash::Namespace;

use super::DbError;
use super::key::{KdfParams, KeySource, database_key, raw_key_pragma};
use super::migrations::{self, LATEST_VERSION};
use super::model::{
    Account, Contact, Conversation, ConversationKind, ConversationState, Direction, LastHash, Message,
    MessageId, MessageState, NewMessage, Settings,
};
use crate::content::DisappearingMode;

/// The open, unlocked database. Blocking; from async code use [`super::Db`].
///
/// The connection holds an exclusive lock on the file for its whole life
/// (`locking_mode=EXCLUSIVE`): a second client on the same database gets [`DbError::Locked`]
/// instead of both polling and storing the same messages.
pub struct Store {
    conn: Connection,
    own_id: Option<SessionId>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("own_id", &self.own_id).finish_non_exhaustive()
    }
}

const MESSAGE_COLUMNS: &str = "m.id, c.peer, m.author, m.sent_ms, m.server_hash, m.body, m.direction, m.state, \
     m.expire_mode, m.expire_timer_s, m.expires_at_ms, m.read_at_ms, m.deleted";

const CONVERSATION_COLUMNS: &str = "c.peer, c.kind, c.state, c.dm_mode, c.dm_timer_s, c.last_activity_ms, c.created_ms, \
     (SELECT count(*) FROM messages u WHERE u.conversation_id = c.id AND u.direction = 0 \
      AND u.read_at_ms IS NULL AND u.deleted = 0)";

impl Store {
    /// Opens (or creates) the database at `path`, unlocking it with `source`, and migrates it to
    /// the latest schema. New passphrase databases use [`KdfParams::DEFAULT`].
    pub fn open(path: &Path, source: &KeySource) -> Result<Self, DbError> {
        Self::open_with(path, source, KdfParams::DEFAULT)
    }

    /// [`Store::open`] with the Argon2id parameters for a new passphrase database (an existing
    /// one keeps the parameters in its header).
    pub fn open_with(path: &Path, source: &KeySource, kdf: KdfParams) -> Result<Self, DbError> {
        Self::open_at_version(path, source, kdf, LATEST_VERSION)
    }

    pub(crate) fn open_at_version(
        path: &Path,
        source: &KeySource,
        kdf: KdfParams,
        target_version: u32,
    ) -> Result<Self, DbError> {
        let create = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
        let key = database_key(path, source, create, kdf)?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(classify)?;
        // Refuse to run on plain SQLite: `PRAGMA key` would be ignored and the file written in
        // clear (see README "SQLCipher and the node").
        let cipher: Option<String> =
            conn.query_row("PRAGMA cipher_version", [], |row| row.get(0)).optional().map_err(classify)?;
        if cipher.is_none() {
            return Err(DbError::NoSqlcipher);
        }
        // SQLCipher logs failed page decryption (a wrong key) to stderr by default; the error is
        // reported as `DbError::WrongKey` instead.
        let _: Option<String> = conn
            .query_row("PRAGMA cipher_log_level = NONE", [], |row| row.get(0))
            .optional()
            .map_err(classify)?;
        conn.execute_batch(&raw_key_pragma(&key)).map_err(classify)?;
        drop(key);
        conn.busy_timeout(std::time::Duration::ZERO)?;
        let _: String = conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |row| row.get(0))?;
        // The first read: fails with SQLITE_NOTADB when the key is wrong.
        let _: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0)).map_err(classify)?;
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(classify)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::NoWal(mode));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;").map_err(classify)?;
        // Take the write lock now, so a second opener fails here rather than on its first write.
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(classify)?;
        migrations::migrate_to(&mut conn, target_version).map_err(|e| match e {
            DbError::Sqlite(e) => classify(e),
            other => other,
        })?;
        let mut store = Self { conn, own_id: None };
        store.own_id = store.account()?.map(|a| IdentityKey::from_seed(&a.seed).session_id());
        Ok(store)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, DbError> {
        migrations::version(&self.conn)
    }

    /// Runs `f` in one write transaction: all of its changes are kept, or none (when `f` fails).
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Store) -> Result<T, DbError>) -> Result<T, DbError> {
        let this: &Store = self;
        this.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut guard = RollbackGuard { conn: &this.conn, armed: true };
        let value = f(this)?;
        guard.armed = false;
        this.conn.execute_batch("COMMIT")?;
        Ok(value)
    }

    // ---- account ----

    /// Stores the account. Fails with [`DbError::AccountExists`] if there is one already.
    pub fn create_account(&mut self, seed: &AccountSeed, created_ms: u64) -> Result<(), DbError> {
        let inserted = self.conn.execute(
            "INSERT INTO account (id, seed, created_ms) VALUES (1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
            params![&seed.as_bytes()[..], to_i64(created_ms)],
        )?;
        if inserted == 0 {
            return Err(DbError::AccountExists);
        }
        self.own_id = Some(IdentityKey::from_seed(seed).session_id());
        Ok(())
    }

    /// The account, if one was created.
    pub fn account(&self) -> Result<Option<Account>, DbError> {
        self.conn
            .query_row(
                "SELECT seed, created_ms, display_name, read_receipts, typing_indicators FROM account WHERE id = 1",
                [],
                |row| {
                    let seed: Vec<u8> = row.get(0)?;
                    Ok((seed, row.get::<_, i64>(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                },
            )
            .optional()?
            .map(|(seed, created, display_name, read_receipts, typing_indicators)| {
                let seed = zeroize::Zeroizing::new(seed);
                Ok(Account {
                    seed: AccountSeed::from_slice(&seed).map_err(|_| DbError::Corrupt("account seed length"))?,
                    created_ms: created as u64,
                    display_name,
                    settings: Settings { read_receipts, typing_indicators },
                })
            })
            .transpose()
    }

    /// Our Session ID, once the account exists.
    pub fn own_session_id(&self) -> Option<SessionId> {
        self.own_id
    }

    /// Sets our display name.
    pub fn set_display_name(&self, name: Option<&str>) -> Result<(), DbError> {
        self.update_account("UPDATE account SET display_name = ?1 WHERE id = 1", params![name])
    }

    /// Replaces the account settings.
    pub fn set_settings(&self, settings: Settings) -> Result<(), DbError> {
        self.update_account(
            "UPDATE account SET read_receipts = ?1, typing_indicators = ?2 WHERE id = 1",
            params![settings.read_receipts, settings.typing_indicators],
        )
    }

    fn update_account(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), DbError> {
        match self.conn.execute(sql, params)? {
            0 => Err(DbError::NoAccount),
            _ => Ok(()),
        }
    }

    // ---- contacts ----

    /// The contact with this Session ID.
    pub fn contact(&self, id: &SessionId) -> Result<Option<Contact>, DbError> {
        self.conn
            .query_row(
                "SELECT session_id, display_name, nickname, approved, approved_me, blocked, created_ms
                 FROM contacts WHERE session_id = ?1",
                [&id.to_bytes()[..]],
                |row| Ok(contact_from_row(row)),
            )
            .optional()?
            .transpose()
    }

    /// All contacts, in Session ID order.
    pub fn contacts(&self) -> Result<Vec<Contact>, DbError> {
        let mut stmt = self.conn.prepare(
            "SELECT session_id, display_name, nickname, approved, approved_me, blocked, created_ms
             FROM contacts ORDER BY session_id",
        )?;
        let rows = stmt.query_map([], |row| Ok(contact_from_row(row)))?;
        rows.map(|r| r?).collect()
    }

    /// Inserts or replaces a contact (read it with [`Store::contact`], change it, save it; use
    /// [`Store::transaction`] when another task could change it in between).
    pub fn save_contact(&self, contact: &Contact) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO contacts (session_id, display_name, nickname, approved, approved_me, blocked, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (session_id) DO UPDATE SET display_name = ?2, nickname = ?3, approved = ?4,
                 approved_me = ?5, blocked = ?6",
            params![
                &contact.session_id.to_bytes()[..],
                contact.display_name,
                contact.nickname,
                contact.approved,
                contact.approved_me,
                contact.blocked,
                to_i64(contact.created_ms)
            ],
        )?;
        Ok(())
    }

    /// The contact, or a new one (not approved, not blocked) if there is none.
    pub fn contact_or_new(&self, id: &SessionId, now_ms: u64) -> Result<Contact, DbError> {
        Ok(self.contact(id)?.unwrap_or(Contact {
            session_id: *id,
            display_name: None,
            nickname: None,
            approved: false,
            approved_me: false,
            blocked: false,
            created_ms: now_ms,
        }))
    }

    // ---- conversations ----

    /// The conversation with `peer`, created in state `initial` if there is none (an existing
    /// conversation is returned unchanged). Note to Self (our own ID, recognised once the account
    /// exists) is always accepted.
    pub fn ensure_conversation(
        &self,
        peer: &SessionId,
        initial: ConversationState,
        now_ms: u64,
    ) -> Result<Conversation, DbError> {
        let note_to_self = self.own_id == Some(*peer);
        let (kind, state) = if note_to_self {
            (ConversationKind::NoteToSelf, ConversationState::Accepted)
        } else {
            (ConversationKind::Direct, initial)
        };
        self.conn.execute(
            "INSERT INTO conversations (peer, kind, state, last_activity_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (peer) DO NOTHING",
            params![&peer.to_bytes()[..], kind_code(kind), state_code(state), to_i64(now_ms)],
        )?;
        self.conversation(peer)?.ok_or(DbError::Corrupt("conversation vanished after insert"))
    }

    /// The conversation with `peer`.
    pub fn conversation(&self, peer: &SessionId) -> Result<Option<Conversation>, DbError> {
        self.conn
            .query_row(
                &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.peer = ?1"),
                [&peer.to_bytes()[..]],
                |row| Ok(conversation_from_row(row)),
            )
            .optional()?
            .transpose()
    }

    /// All conversations (accepted and requests), most recent activity first.
    pub fn conversations(&self) -> Result<Vec<Conversation>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c ORDER BY c.last_activity_ms DESC, c.id DESC"
        ))?;
        let rows = stmt.query_map([], |row| Ok(conversation_from_row(row)))?;
        rows.map(|r| r?).collect()
    }

    /// Accepts a message request: the conversation becomes [`ConversationState::Accepted`] and
    /// the contact approved. Accepting an accepted conversation changes nothing.
    pub fn accept_conversation(&mut self, peer: &SessionId, now_ms: u64) -> Result<Conversation, DbError> {
        self.transaction(|s| {
            let changed = s.conn.execute(
                "UPDATE conversations SET state = ?2, last_activity_ms = max(last_activity_ms, ?3)
                 WHERE peer = ?1 AND state = ?4",
                params![
                    &peer.to_bytes()[..],
                    state_code(ConversationState::Accepted),
                    to_i64(now_ms),
                    state_code(ConversationState::Request)
                ],
            )?;
            let conversation = s.conversation(peer)?.ok_or(DbError::NoConversation)?;
            if changed > 0 && conversation.kind == ConversationKind::Direct {
                let mut contact = s.contact_or_new(peer, now_ms)?;
                contact.approved = true;
                s.save_contact(&contact)?;
            }
            Ok(conversation)
        })
    }

    /// Deletes the conversation and its messages (declining a request, or deleting a chat).
    /// Returns whether it existed.
    pub fn delete_conversation(&self, peer: &SessionId) -> Result<bool, DbError> {
        Ok(self.conn.execute("DELETE FROM conversations WHERE peer = ?1", [&peer.to_bytes()[..]])? > 0)
    }

    /// Sets our disappearing-messages setting for the conversation.
    pub fn set_disappearing(&self, peer: &SessionId, mode: DisappearingMode) -> Result<(), DbError> {
        let changed = self.conn.execute(
            "UPDATE conversations SET dm_mode = ?2, dm_timer_s = ?3 WHERE peer = ?1",
            params![&peer.to_bytes()[..], mode_code(mode), mode.seconds()],
        )?;
        if changed == 0 {
            return Err(DbError::NoConversation);
        }
        Ok(())
    }

    // ---- messages ----

    /// Stores a message in its conversation (which must exist). Returns `None`, storing nothing,
    /// when it is already stored: same server hash, or same (conversation, author, sent time).
    ///
    /// Timers: an outgoing message counts as read when sent, so both modes start its timer at
    /// `sent_ms`; an incoming after-send message expires at `sent_ms + timer`; an incoming
    /// after-read message gets its expiry when [`Store::mark_read`] reads it.
    pub fn insert_message(&self, message: &NewMessage) -> Result<Option<MessageId>, DbError> {
        let conversation_id = self.conversation_id(&message.conversation)?;
        let timer_ms = u64::from(message.disappearing.seconds()) * 1000;
        let read_at = match message.direction {
            Direction::Outgoing => Some(message.sent_ms),
            Direction::Incoming => None,
        };
        let expires_at = match (message.disappearing, message.direction) {
            (DisappearingMode::Off, _) => None,
            (DisappearingMode::AfterSend { .. }, _)
            | (DisappearingMode::AfterRead { .. }, Direction::Outgoing) => {
                Some(message.sent_ms.saturating_add(timer_ms))
            }
            (DisappearingMode::AfterRead { .. }, Direction::Incoming) => None,
        };
        let inserted = self.conn.execute(
            "INSERT INTO messages (conversation_id, author, sent_ms, server_hash, body, direction, state,
                 expire_mode, expire_timer_s, expires_at_ms, read_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT DO NOTHING",
            params![
                conversation_id,
                &message.author.to_bytes()[..],
                to_i64(message.sent_ms),
                message.server_hash,
                message.body,
                direction_code(message.direction),
                message_state_code(message.state),
                mode_code(message.disappearing),
                message.disappearing.seconds(),
                expires_at.map(to_i64),
                read_at.map(to_i64),
            ],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let id = MessageId(self.conn.last_insert_rowid());
        self.conn.execute(
            "UPDATE conversations SET last_activity_ms = max(last_activity_ms, ?2) WHERE id = ?1",
            params![conversation_id, to_i64(message.sent_ms)],
        )?;
        Ok(Some(id))
    }

    /// The message with this id.
    pub fn message(&self, id: MessageId) -> Result<Option<Message>, DbError> {
        self.conn
            .query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1"),
                [id.0],
                |row| Ok(message_from_row(row)),
            )
            .optional()?
            .transpose()
    }

    /// The message `(author, sent_ms)` in the conversation with `peer`.
    pub fn find_message(
        &self,
        peer: &SessionId,
        author: &SessionId,
        sent_ms: u64,
    ) -> Result<Option<Message>, DbError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                     WHERE c.peer = ?1 AND m.author = ?2 AND m.sent_ms = ?3"
                ),
                params![&peer.to_bytes()[..], &author.to_bytes()[..], to_i64(sent_ms)],
                |row| Ok(message_from_row(row)),
            )
            .optional()?
            .transpose()
    }

    /// The message `(author, sent_ms)` in whichever conversation holds it (an unsend synced
    /// from our other device names only the author and time). The lowest row id if several do.
    pub fn find_message_by_author(
        &self,
        author: &SessionId,
        sent_ms: u64,
    ) -> Result<Option<Message>, DbError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                     WHERE m.author = ?1 AND m.sent_ms = ?2 ORDER BY m.id LIMIT 1"
                ),
                params![&author.to_bytes()[..], to_i64(sent_ms)],
                |row| Ok(message_from_row(row)),
            )
            .optional()?
            .transpose()
    }

    /// The newest `limit` messages of the conversation with `peer`, oldest first.
    pub fn messages(&self, peer: &SessionId, limit: u32) -> Result<Vec<Message>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT * FROM (SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE c.peer = ?1 ORDER BY m.sent_ms DESC, m.id DESC LIMIT ?2)
             ORDER BY sent_ms ASC, id ASC"
        ))?;
        let rows = stmt.query_map(params![&peer.to_bytes()[..], limit], |row| Ok(message_from_row(row)))?;
        rows.map(|r| r?).collect()
    }

    /// Sets the delivery state of a message.
    pub fn set_message_state(&self, id: MessageId, state: MessageState) -> Result<(), DbError> {
        self.update_message(
            "UPDATE messages SET state = ?2 WHERE id = ?1",
            params![id.0, message_state_code(state)],
        )
    }

    /// Marks every outgoing message still [`MessageState::Sending`] as failed: [`super::Db::open`]
    /// calls it, as nothing can still be sending then (the database is locked to one
    /// process, and a send in progress when that process died never got its answer). Returns
    /// how many there were.
    pub fn fail_interrupted_sends(&self) -> Result<usize, DbError> {
        Ok(self.conn.execute(
            "UPDATE messages SET state = ?1 WHERE state = ?2 AND direction = ?3",
            params![
                message_state_code(MessageState::Failed),
                message_state_code(MessageState::Sending),
                direction_code(Direction::Outgoing)
            ],
        )?)
    }

    /// Records the swarm hash of a sent message.
    pub fn set_server_hash(&self, id: MessageId, hash: &str) -> Result<(), DbError> {
        self.update_message("UPDATE messages SET server_hash = ?2 WHERE id = ?1", params![id.0, hash])
    }

    /// Marks every unread incoming message of the conversation read at `now_ms`, starting the
    /// timers of after-read messages. Returns the sent timestamps of the messages it marked (what
    /// a read receipt lists).
    pub fn mark_read(&self, peer: &SessionId, now_ms: u64) -> Result<Vec<u64>, DbError> {
        let conversation_id = self.conversation_id(peer)?;
        let mut stmt = self.conn.prepare(
            "UPDATE messages SET read_at_ms = ?2,
                 expires_at_ms = CASE WHEN expire_mode = 2 THEN ?2 + expire_timer_s * 1000 ELSE expires_at_ms END
             WHERE conversation_id = ?1 AND direction = 0 AND read_at_ms IS NULL AND deleted = 0
             RETURNING sent_ms",
        )?;
        let rows = stmt.query_map(params![conversation_id, to_i64(now_ms)], |row| row.get::<_, i64>(0))?;
        let mut out = rows.map(|r| r.map(|t| t as u64)).collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        Ok(out)
    }

    /// The peer sent a read receipt for these sent timestamps: our outgoing messages among them
    /// become [`MessageState::Read`]. Returns how many changed.
    pub fn mark_read_by_peer(&self, peer: &SessionId, timestamps: &[u64]) -> Result<usize, DbError> {
        let conversation_id = self.conversation_id(peer)?;
        let mut stmt = self.conn.prepare(
            "UPDATE messages SET state = ?3 WHERE conversation_id = ?1 AND direction = 1 AND sent_ms = ?2
                 AND state IN (0, 1)",
        )?;
        let mut changed = 0;
        for &ts in timestamps {
            changed +=
                stmt.execute(params![conversation_id, to_i64(ts), message_state_code(MessageState::Read)])?;
        }
        Ok(changed)
    }

    /// Unsend / delete for everyone: the message `(author, sent_ms)` in the conversation with
    /// `peer` loses its body and is flagged deleted. Returns the message as it was, or `None` if
    /// there is no such message (yet).
    pub fn mark_unsent(
        &self,
        peer: &SessionId,
        author: &SessionId,
        sent_ms: u64,
    ) -> Result<Option<Message>, DbError> {
        let Some(message) = self.find_message(peer, author, sent_ms)? else {
            return Ok(None);
        };
        self.update_message(
            "UPDATE messages SET body = NULL, deleted = 1 WHERE id = ?1",
            params![message.id.0],
        )?;
        Ok(Some(message))
    }

    /// Messages whose disappearing timer has run out (`expires_at_ms <= now_ms`), soonest first.
    pub fn messages_due_for_deletion(&self, now_ms: u64) -> Result<Vec<Message>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.expires_at_ms IS NOT NULL AND m.expires_at_ms <= ?1 ORDER BY m.expires_at_ms, m.id"
        ))?;
        let rows = stmt.query_map([to_i64(now_ms)], |row| Ok(message_from_row(row)))?;
        rows.map(|r| r?).collect()
    }

    /// Removes messages for good. Returns how many existed.
    pub fn delete_messages(&self, ids: &[MessageId]) -> Result<usize, DbError> {
        let mut stmt = self.conn.prepare("DELETE FROM messages WHERE id = ?1")?;
        let mut deleted = 0;
        for id in ids {
            deleted += stmt.execute([id.0])?;
        }
        Ok(deleted)
    }

    // ---- poll state ----

    /// Records the newest hash polled from `namespace` on the node with this Ed25519 key.
    pub fn set_last_hash(
        &self,
        node_ed25519: &[u8; 32],
        namespace: Namespace,
        last: &LastHash,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO last_hashes (node_ed25519, namespace, hash, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_ed25519, namespace) DO UPDATE SET hash = ?3, expires_ms = ?4",
            params![&node_ed25519[..], namespace.0, last.hash, to_i64(last.expires_ms)],
        )?;
        Ok(())
    }

    /// The last hash for (node, namespace), unless it has expired by `now_ms` (then the node no
    /// longer knows it, and polling must start from the beginning).
    pub fn last_hash(
        &self,
        node_ed25519: &[u8; 32],
        namespace: Namespace,
        now_ms: u64,
    ) -> Result<Option<LastHash>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT hash, expires_ms FROM last_hashes WHERE node_ed25519 = ?1 AND namespace = ?2 AND expires_ms > ?3",
                params![&node_ed25519[..], namespace.0, to_i64(now_ms)],
                |row| Ok(LastHash { hash: row.get(0)?, expires_ms: row.get::<_, i64>(1)? as u64 }),
            )
            .optional()?)
    }

    /// Forgets last hashes that expired by `now_ms`. Returns how many.
    pub fn prune_last_hashes(&self, now_ms: u64) -> Result<usize, DbError> {
        Ok(self.conn.execute("DELETE FROM last_hashes WHERE expires_ms <= ?1", [to_i64(now_ms)])?)
    }

    /// Stores the node pool (the network layer's type, as JSON), replacing the previous one.
    pub fn save_node_pool<T: Serialize>(&self, pool: &T, now_ms: u64) -> Result<(), DbError> {
        let json = serde_json::to_string(pool).map_err(|e| DbError::NodePool(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO node_pool (id, json, updated_ms) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET json = ?1, updated_ms = ?2",
            params![json, to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// The stored node pool and when it was saved (ms), if any.
    pub fn node_pool<T: DeserializeOwned>(&self) -> Result<Option<(T, u64)>, DbError> {
        let row: Option<(String, i64)> = self
            .conn
            .query_row("SELECT json, updated_ms FROM node_pool WHERE id = 1", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        row.map(|(json, updated)| {
            serde_json::from_str(&json)
                .map(|pool| (pool, updated as u64))
                .map_err(|e| DbError::NodePool(e.to_string()))
        })
        .transpose()
    }

    /// Records an incoming message hash as handled until `expires_ms` (when the swarm drops the
    /// message, so it can no longer come back). Returns `false` if it was already recorded: the
    /// message was handled before (maybe by an earlier run) and must be skipped.
    ///
    /// Call it in the same [`Store::transaction`] as storing what the message caused, so a crash
    /// cannot record one without the other.
    pub fn mark_seen(&self, hash: &str, expires_ms: u64) -> Result<bool, DbError> {
        let inserted = self.conn.execute(
            "INSERT INTO seen_hashes (hash, expires_ms) VALUES (?1, ?2) ON CONFLICT (hash) DO NOTHING",
            params![hash, to_i64(expires_ms)],
        )?;
        if inserted == 0 {
            self.conn.execute(
                "UPDATE seen_hashes SET expires_ms = max(expires_ms, ?2) WHERE hash = ?1",
                params![hash, to_i64(expires_ms)],
            )?;
        }
        Ok(inserted == 1)
    }

    /// Whether the hash was recorded by [`Store::mark_seen`].
    pub fn is_seen(&self, hash: &str) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM seen_hashes WHERE hash = ?1", [hash], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Forgets seen hashes that expired by `now_ms`. Returns how many.
    pub fn prune_seen(&self, now_ms: u64) -> Result<usize, DbError> {
        Ok(self.conn.execute("DELETE FROM seen_hashes WHERE expires_ms <= ?1", [to_i64(now_ms)])?)
    }

    // ---- helpers ----

    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    fn conversation_id(&self, peer: &SessionId) -> Result<i64, DbError> {
        self.conn
            .query_row("SELECT id FROM conversations WHERE peer = ?1", [&peer.to_bytes()[..]], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or(DbError::NoConversation)
    }

    fn update_message(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), DbError> {
        match self.conn.execute(sql, params)? {
            0 => Err(DbError::NoMessage),
            _ => Ok(()),
        }
    }
}

/// Rolls an open transaction back when dropped armed: on an error from the closure, or while
/// unwinding from a panic in it (so the connection is usable again afterwards).
struct RollbackGuard<'c> {
    conn: &'c Connection,
    armed: bool,
}

impl Drop for RollbackGuard<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "rollback failed");
        }
    }
}

/// Maps SQLite's codes for "wrong key" and "someone else has the file" to their own variants.
pub(crate) fn classify(e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => DbError::WrongKey,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbError::Locked,
        _ => DbError::Sqlite(e),
    }
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn session_id(row: &Row<'_>, index: usize) -> Result<SessionId, DbError> {
    let bytes: Vec<u8> = row.get(index)?;
    SessionId::from_bytes(&bytes).map_err(|_| DbError::Corrupt("stored Session ID"))
}

fn contact_from_row(row: &Row<'_>) -> Result<Contact, DbError> {
    Ok(Contact {
        session_id: session_id(row, 0)?,
        display_name: row.get(1)?,
        nickname: row.get(2)?,
        approved: row.get(3)?,
        approved_me: row.get(4)?,
        blocked: row.get(5)?,
        created_ms: row.get::<_, i64>(6)? as u64,
    })
}

fn conversation_from_row(row: &Row<'_>) -> Result<Conversation, DbError> {
    Ok(Conversation {
        peer: session_id(row, 0)?,
        kind: match row.get::<_, i64>(1)? {
            0 => ConversationKind::Direct,
            1 => ConversationKind::NoteToSelf,
            _ => return Err(DbError::Corrupt("conversation kind")),
        },
        state: match row.get::<_, i64>(2)? {
            0 => ConversationState::Request,
            1 => ConversationState::Accepted,
            _ => return Err(DbError::Corrupt("conversation state")),
        },
        disappearing: mode_from(row.get(3)?, row.get(4)?)?,
        last_activity_ms: row.get::<_, i64>(5)? as u64,
        created_ms: row.get::<_, i64>(6)? as u64,
        unread: row.get::<_, i64>(7)? as u64,
    })
}

fn message_from_row(row: &Row<'_>) -> Result<Message, DbError> {
    Ok(Message {
        id: MessageId(row.get(0)?),
        conversation: session_id(row, 1)?,
        author: session_id(row, 2)?,
        sent_ms: row.get::<_, i64>(3)? as u64,
        server_hash: row.get(4)?,
        body: row.get(5)?,
        direction: match row.get::<_, i64>(6)? {
            0 => Direction::Incoming,
            1 => Direction::Outgoing,
            _ => return Err(DbError::Corrupt("message direction")),
        },
        state: match row.get::<_, i64>(7)? {
            0 => MessageState::Sending,
            1 => MessageState::Sent,
            2 => MessageState::Failed,
            3 => MessageState::Read,
            4 => MessageState::Received,
            _ => return Err(DbError::Corrupt("message state")),
        },
        disappearing: mode_from(row.get(8)?, row.get(9)?)?,
        expires_at_ms: row.get::<_, Option<i64>>(10)?.map(|t| t as u64),
        read_at_ms: row.get::<_, Option<i64>>(11)?.map(|t| t as u64),
        deleted: row.get(12)?,
    })
}

fn kind_code(kind: ConversationKind) -> i64 {
    match kind {
        ConversationKind::Direct => 0,
        ConversationKind::NoteToSelf => 1,
    }
}

fn state_code(state: ConversationState) -> i64 {
    match state {
        ConversationState::Request => 0,
        ConversationState::Accepted => 1,
    }
}

fn direction_code(direction: Direction) -> i64 {
    match direction {
        Direction::Incoming => 0,
        Direction::Outgoing => 1,
    }
}

fn message_state_code(state: MessageState) -> i64 {
    match state {
        MessageState::Sending => 0,
        MessageState::Sent => 1,
        MessageState::Failed => 2,
        MessageState::Read => 3,
        MessageState::Received => 4,
    }
}

fn mode_code(mode: DisappearingMode) -> i64 {
    match mode {
        DisappearingMode::Off => 0,
        DisappearingMode::AfterSend { .. } => 1,
        DisappearingMode::AfterRead { .. } => 2,
    }
}

fn mode_from(code: i64, seconds: i64) -> Result<DisappearingMode, DbError> {
    let seconds = u32::try_from(seconds).map_err(|_| DbError::Corrupt("disappearing timer"))?;
    match code {
        0 => Ok(DisappearingMode::Off),
        1 => Ok(DisappearingMode::AfterSend { seconds }),
        2 => Ok(DisappearingMode::AfterRead { seconds }),
        _ => Err(DbError::Corrupt("disappearing mode")),
    }
}
