//! Session client library.
//!
//! - [`net`]: the network layer. A [`net::Network`] bootstraps its node pool from a registry,
//!   keeps onion paths with pinned guards, resolves swarms locally, and offers the storage RPC
//!   methods a messenger needs (store, retrieve, delete, expire, …) signed with the account's
//!   key, with the retry and failure rules of upstream Session clients.

#![forbid(unsafe_code)]

pub mod net;

pub use net::{Network, NetworkConfig, NetworkError};
