//! Errors of the network layer.

/// What went wrong talking to the Session network. Texts never carry keys, message data or full
/// Session IDs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The configuration cannot work (e.g. no registry URL and no imported pool).
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// No registry gave a usable node list (all unreachable, or they answered with garbage).
    #[error("could not get the node list from any registry: {0}")]
    Bootstrap(String),
    /// Too few usable nodes are known to build onion paths; check the network connection or
    /// bootstrap again.
    #[error("not enough usable nodes to build onion paths ({usable} usable of {known} known)")]
    NotEnoughNodes {
        /// Nodes not excluded for failures.
        usable: usize,
        /// Nodes in the pool.
        known: usize,
    },
    /// The pool names no swarm for the account (empty pool).
    #[error("no swarm is known for this account")]
    NoSwarm,
    /// Every attempt failed (nodes down, paths broken, or no network); the last cause is given.
    #[error("the request failed on every node tried ({attempts} attempts); last error: {last}")]
    AllNodesFailed {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Nodes kept answering that the account is not in their swarm, even after the node list
    /// was refreshed.
    #[error("the swarm of this account could not be found (wrong swarm after a node list refresh)")]
    WrongSwarm,
    /// The nodes rejected the request's timestamp even after the client took the network time
    /// from them.
    #[error("clock out of sync: the nodes reject our timestamps even after resynchronising")]
    ClockOutOfSync,
    /// The node refused the request (bad signature, TTL out of range, malformed, …): retrying the
    /// same request will not help.
    #[error("the node rejected the request with status {status}: {reason}")]
    Rejected {
        /// The RPC status (400, 401, 403, 404, 413, …).
        status: u16,
        /// The node's explanation.
        reason: String,
    },
    /// The account's Session ID prefix has no swarm storage (e.g. a blinded `15`/`25` id).
    #[error("Session IDs with prefix {prefix:02x} cannot be used with the storage network")]
    UnsupportedAccount {
        /// The prefix byte.
        prefix: u8,
    },
    /// Storing without a signature into a namespace that needs one.
    #[error("namespace {namespace} needs a signed request: use the account's key")]
    SignatureRequired {
        /// The namespace.
        namespace: i16,
    },
    /// A node answered 200 with a body that is not what the method returns.
    #[error("a node sent an unexpected response: {0}")]
    InvalidResponse(String),
}
