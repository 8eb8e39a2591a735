#![doc = include_str!("../README.md")]

pub mod account;
pub mod config;
pub mod context;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod nodelist;
pub mod onion;
pub mod peer;
pub mod registry;
pub mod rpc;
pub mod server;
pub mod store;
pub mod sync;

pub use account::AccountKey;
pub use context::NodeContext;
