//! The Session node registry (`docs/registry.md`): admission of service nodes, liveness, the
//! swarm assignment of network §6.1, and the signed, hash-chained epoch log that lets any node
//! recompute every published assignment.
//!
//! Pure parts that nodes use to follow the registry: [`assign`] (swarm assignment) and [`chain`]
//! (epochs, verification, replay). The server parts ([`db`], [`server`], [`config`]) run the
//! `session-registry` binary.

pub mod api;
pub mod assign;
pub mod chain;
pub mod config;
pub mod db;
pub mod rpc;
pub mod server;

pub use server::{RegistryError, RunningRegistry, run, start};
