//! Session client library.
//!
//! - [`net`]: the network layer. A [`net::Network`] bootstraps its node pool from a registry,
//!   keeps onion paths with pinned guards, resolves swarms locally, and offers the storage RPC
//!   methods a messenger needs (store, retrieve, delete, expire, …) signed with the account's
//!   key, with the retry and failure rules of upstream Session clients.
//! - [`db`]: the encrypted local database (SQLCipher): account, contacts, conversations,
//!   messages, poll state, node pool.
//! - [`client`]: the messaging engine: a [`Client`] owns one account (database + network),
//!   sends and receives 1:1 messages, and reports [`Event`]s.
//! - [`content`]: the 1:1 message kinds a client sends and receives, to and from the protobuf
//!   `Content`, and the full encode/decode pipeline for swarm-stored 1:1 messages.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod content;
pub mod db;
pub mod net;

pub use client::{Client, ClientError, Event, PollSummary};
pub use net::{Network, NetworkConfig, NetworkError};
