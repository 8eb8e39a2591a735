//! The read pool: a few threads, each owning one read connection, taking jobs from a shared
//! queue. In WAL mode readers never wait for the writer; each job sees one consistent snapshot.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

/// A read operation; it sends its own reply.
pub(super) type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A reader thread's loop: runs until every sender is gone.
pub(super) fn run_reader(conn: Connection, queue: Arc<Mutex<Receiver<ReadJob>>>) {
    loop {
        // The lock is released before the job runs, so the other readers can take the next one.
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(&conn),
            Err(_) => break,
        }
    }
}
