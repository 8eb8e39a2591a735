//! Session client library.
//!
//! * [`db`]: the encrypted local database (SQLCipher): account, contacts, conversations,
//!   messages, poll state, node pool.
//! * [`content`]: the 1:1 message kinds a client sends and receives, to and from the protobuf
//!   `Content`, and the full encode/decode pipeline for swarm-stored 1:1 messages.

pub mod content;
pub mod db;
