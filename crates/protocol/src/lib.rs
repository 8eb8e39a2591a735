#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod primitives;

pub mod id;
pub mod keys;
pub mod mnemonic;

pub mod envelope;
pub mod padding;
pub mod proto;
pub mod v1;

pub mod blinded_dm;
pub mod blinding;
pub mod sogs;

pub mod config_crypto;
pub mod multi;
pub mod ons;

pub mod bencode;
pub mod message_hash;
pub mod rpc_sign;
pub mod swarm;

pub mod onion;

pub use id::{IdError, IdPrefix, SessionId};
pub use keys::{AccountSeed, IdentityKey, KeyError};
