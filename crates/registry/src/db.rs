//! `registry.db`: the epochs and the liveness table (SQLite, WAL, `synchronous=FULL`). The only
//! module that writes SQL. Calls block; async callers run them on the blocking pool.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::chain::{Epoch, NodeRecord};

/// Schema migrations, in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &["CREATE TABLE epochs (
         height INTEGER PRIMARY KEY,
         prev_hash BLOB NOT NULL,
         timestamp INTEGER NOT NULL,
         events TEXT NOT NULL,
         hash BLOB NOT NULL,
         signature BLOB NOT NULL
     );
     CREATE TABLE liveness (
         pubkey BLOB PRIMARY KEY,
         record TEXT NOT NULL,
         registered_at INTEGER NOT NULL,
         last_heartbeat INTEGER,
         last_reachable INTEGER
     );"];

/// What the registry knows about a node's liveness, kept across restarts. Pending nodes (not yet
/// in the chain) live only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessRow {
    /// The record from the node's latest registration.
    pub record: NodeRecord,
    /// When it first registered (ms).
    pub registered_at: u64,
    /// Its last accepted heartbeat (ms).
    pub last_heartbeat: Option<u64>,
    /// Its last passed reachability test (ms).
    pub last_reachable: Option<u64>,
}

/// A database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite reported an error.
    #[error("registry database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not decode (the file was changed by something else).
    #[error("registry database is corrupt: {0}")]
    Corrupt(String),
}

/// The registry database.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let applied =
            usize::try_from(version).map_err(|_| DbError::Corrupt("negative schema version".into()))?;
        if applied > MIGRATIONS.len() {
            return Err(DbError::Corrupt(format!("schema version {applied} is newer than this program")));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (index + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-applied transaction (SQLite rolls back),
        // so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every stored epoch, by height.
    pub fn epochs(&self) -> Result<Vec<Epoch>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT height, prev_hash, timestamp, events, hash, signature FROM epochs ORDER BY height",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Vec<u8>>(4)?,
                row.get::<_, Vec<u8>>(5)?,
            ))
        })?;
        let mut epochs = Vec::new();
        for row in rows {
            let (height, prev_hash, timestamp, events, hash, signature) = row?;
            let corrupt = || DbError::Corrupt(format!("epoch row {height}"));
            epochs.push(Epoch {
                height: u64::try_from(height).map_err(|_| corrupt())?,
                prev_hash: prev_hash.try_into().map_err(|_| corrupt())?,
                timestamp: u64::try_from(timestamp).map_err(|_| corrupt())?,
                events,
                hash: hash.try_into().map_err(|_| corrupt())?,
                signature: signature.try_into().map_err(|_| corrupt())?,
            });
        }
        Ok(epochs)
    }

    /// Stores `epoch` and forgets the liveness of the nodes it removes, in one transaction.
    pub fn append_epoch(&self, epoch: &Epoch, removed: &[[u8; 32]]) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO epochs (height, prev_hash, timestamp, events, hash, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                to_i64(epoch.height)?,
                &epoch.prev_hash[..],
                to_i64(epoch.timestamp)?,
                epoch.events,
                &epoch.hash[..],
                &epoch.signature[..]
            ],
        )?;
        for key in removed {
            tx.execute("DELETE FROM liveness WHERE pubkey = ?1", [&key[..]])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every liveness row.
    pub fn liveness(&self) -> Result<Vec<LivenessRow>, DbError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT record, registered_at, last_heartbeat, last_reachable FROM liveness")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (record, registered_at, last_heartbeat, last_reachable) = row?;
            let corrupt = |what: &str| DbError::Corrupt(format!("liveness row: {what}"));
            let record: NodeRecord = serde_json::from_str(&record).map_err(|_| corrupt("record"))?;
            let ms = |v: i64| u64::try_from(v).map_err(|_| corrupt("negative time"));
            out.push(LivenessRow {
                record,
                registered_at: ms(registered_at)?,
                last_heartbeat: last_heartbeat.map(ms).transpose()?,
                last_reachable: last_reachable.map(ms).transpose()?,
            });
        }
        Ok(out)
    }

    /// Inserts or replaces the liveness rows of these nodes, in one transaction.
    pub fn save_liveness(&self, rows: &[LivenessRow]) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for row in rows {
            let record = serde_json::to_string(&row.record).expect("a record serializes to JSON");
            tx.execute(
                "INSERT OR REPLACE INTO liveness (pubkey, record, registered_at, last_heartbeat, last_reachable)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &row.record.pubkey_ed25519[..],
                    record,
                    to_i64(row.registered_at)?,
                    row.last_heartbeat.map(to_i64).transpose()?,
                    row.last_reachable.map(to_i64).transpose()?
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets the liveness of these nodes.
    pub fn delete_liveness(&self, keys: &[[u8; 32]]) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for key in keys {
            tx.execute("DELETE FROM liveness WHERE pubkey = ?1", [&key[..]])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored height, if any epoch is stored.
    pub fn height(&self) -> Result<Option<u64>, DbError> {
        let conn = self.conn();
        let height: Option<i64> =
            conn.query_row("SELECT MAX(height) FROM epochs", [], |row| row.get(0)).optional()?.flatten();
        height.map(|h| u64::try_from(h).map_err(|_| DbError::Corrupt("negative height".into()))).transpose()
    }
}

fn to_i64(v: u64) -> Result<i64, DbError> {
    i64::try_from(v).map_err(|_| DbError::Corrupt(format!("value {v} does not fit SQLite's integer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Event;
    use session_protocol::IdentityKey;

    fn record(n: u8) -> NodeRecord {
        let key = IdentityKey::from_seed_bytes(&[n; 32]);
        NodeRecord {
            pubkey_ed25519: key.ed25519_public(),
            pubkey_x25519: *key.x25519_public(),
            public_ip: std::net::Ipv4Addr::LOCALHOST,
            storage_port: 1,
            storage_lmq_port: 0,
            tls: true,
            version: [1, 2, 3],
        }
    }

    #[test]
    fn epochs_and_liveness_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let key = IdentityKey::from_seed_bytes(&[1; 32]);
        let genesis = Epoch::genesis(&key, 5);
        let next = Epoch::create(&key, genesis.hash, 1, 6, &[Event::Register { node: record(2) }]);
        let row = LivenessRow {
            record: record(2),
            registered_at: 3,
            last_heartbeat: Some(4),
            last_reachable: None,
        };
        let pending = LivenessRow {
            record: record(3),
            registered_at: 3,
            last_heartbeat: None,
            last_reachable: Some(9),
        };
        {
            let db = Db::open(&path).unwrap();
            assert_eq!(db.height().unwrap(), None);
            db.append_epoch(&genesis, &[]).unwrap();
            db.append_epoch(&next, &[]).unwrap();
            db.save_liveness(&[row.clone(), pending.clone()]).unwrap();
            // The same height twice is refused.
            assert!(db.append_epoch(&next, &[]).is_err());
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.epochs().unwrap(), [genesis, next.clone()]);
        assert_eq!(db.height().unwrap(), Some(1));
        let mut rows = db.liveness().unwrap();
        rows.sort_by_key(|r| r.record.pubkey_ed25519);
        let mut expected = vec![row, pending.clone()];
        expected.sort_by_key(|r| r.record.pubkey_ed25519);
        assert_eq!(rows, expected);
        let removal = Epoch::create(&key, next.hash, 2, 7, &[]);
        db.append_epoch(&removal, &[record(2).pubkey_ed25519]).unwrap();
        assert_eq!(db.liveness().unwrap(), [pending]);
        db.delete_liveness(&[record(3).pubkey_ed25519]).unwrap();
        assert!(db.liveness().unwrap().is_empty());
    }
}
