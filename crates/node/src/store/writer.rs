//! The writer thread: owns the only write connection and commits queued writes in groups.
//!
//! Async callers send a [`WriteJob`] over a channel and await a tokio oneshot. The thread takes
//! the first queued job, drains whatever else is queued (up to [`MAX_GROUP`]) and runs the lot in
//! one `BEGIN IMMEDIATE … COMMIT`, each job inside its own savepoint so a failing job (say
//! `SQLITE_FULL`) is rolled back alone and the others still commit. Replies go out only after
//! `COMMIT` returned, i.e. after the WAL was synced (synchronous = FULL). Under light load a group
//! is one job; under heavy load one fsync covers many writes.
//!
//! If SQLite aborts the whole transaction or `COMMIT` fails, everything is rolled back and each
//! job is re-run in its own transaction, so one job's failure is never reported for another.
//! SQLite does abort the whole transaction on `SQLITE_FULL` from a single-row INSERT (it keeps
//! no statement journal for those), so `ops` checks for room before inserting and reports
//! `Full` without touching the transaction; this fallback is the backstop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

/// Most jobs committed in one transaction; bounds the latency a large group adds.
pub(super) const MAX_GROUP: usize = 1024;

/// A queued write. `run` may be called more than once (after a rolled-back group); each call
/// must start from scratch and overwrite the previous result.
pub(super) trait WriteJob: Send {
    /// Executes the job's statements; returns whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the result of the last `run` (called after COMMIT, or after a failed run).
    fn complete(self: Box<Self>);
    /// Sends `error` instead (the job's transaction could not be committed).
    fn fail(self: Box<Self>, error: StoreError);
}

/// A write operation with its reply channel.
pub(super) struct Job<T, F> {
    op: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    /// Wraps `op`; the result is sent on `reply`.
    pub(super) fn new(op: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        Self { op, result: None, reply }
    }
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.op)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn complete(self: Box<Self>) {
        let result = self.result.unwrap_or(Err(StoreError::Closed));
        // The caller may have gone away (request cancelled); the write still happened.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Counters of the writer's work (for tests and diagnostics).
#[derive(Debug, Default)]
pub(super) struct WriterCounters {
    /// Transactions committed or attempted (one per group).
    pub(super) groups: AtomicU64,
    /// Jobs processed.
    pub(super) jobs: AtomicU64,
}

/// The writer thread's loop: runs until every sender is gone and the queue is drained.
pub(super) fn run_writer(
    conn: Connection,
    queue: Receiver<Box<dyn WriteJob>>,
    counters: Arc<WriterCounters>,
) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::with_capacity(16);
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        counters.groups.fetch_add(1, Ordering::Relaxed);
        counters.jobs.fetch_add(group.len() as u64, Ordering::Relaxed);
        run_group(&conn, group);
    }
    // Dropping the connection checkpoints the WAL when it is the last one open.
    if let Err((_, err)) = conn.close() {
        tracing::warn!(error = %err, "closing the database writer failed");
    }
}

/// Runs `group` in one transaction, a savepoint per job; replies after COMMIT.
pub(super) fn run_group(conn: &Connection, mut group: Vec<Box<dyn WriteJob>>) {
    if group.len() == 1 {
        if let Some(job) = group.pop() {
            run_alone(conn, job);
        }
        return;
    }
    if exec(conn, "BEGIN IMMEDIATE").is_ok()
        && run_all_in_savepoints(conn, &mut group)
        && exec(conn, "COMMIT").is_ok()
    {
        for job in group {
            job.complete();
        }
        return;
    }
    rollback(conn);
    tracing::debug!(jobs = group.len(), "group transaction failed; running its jobs one by one");
    for job in group {
        run_alone(conn, job);
    }
}

/// Runs each job in its own savepoint inside the open transaction. False when the transaction
/// itself is lost (SQLite rolled it back, or a savepoint statement failed).
fn run_all_in_savepoints(conn: &Connection, group: &mut [Box<dyn WriteJob>]) -> bool {
    for job in group.iter_mut() {
        if exec(conn, "SAVEPOINT job").is_err() {
            return false;
        }
        let ok = job.run(conn);
        if conn.is_autocommit() {
            return false;
        }
        if !ok && exec(conn, "ROLLBACK TO job").is_err() {
            return false;
        }
        if exec(conn, "RELEASE job").is_err() {
            return false;
        }
    }
    true
}

/// Runs one job in its own transaction and replies.
fn run_alone(conn: &Connection, mut job: Box<dyn WriteJob>) {
    if let Err(err) = exec(conn, "BEGIN IMMEDIATE") {
        job.fail(err);
        return;
    }
    if !job.run(conn) {
        rollback(conn);
        job.complete();
        return;
    }
    match exec(conn, "COMMIT") {
        Ok(()) => job.complete(),
        Err(err) => {
            rollback(conn);
            job.fail(err);
        }
    }
}

/// Executes a transaction-control statement (cached).
fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Rolls back the open transaction, if any.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(err) = exec(conn, "ROLLBACK")
    {
        tracing::error!(error = %err, "database rollback failed");
    }
}
