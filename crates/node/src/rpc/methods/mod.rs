//! One module per method family (network §4).

pub(crate) mod delete;
pub(crate) mod expire;
pub(crate) mod info;
pub(crate) mod meta;
pub(crate) mod nodes;
pub(crate) mod retrieve;
pub(crate) mod revoke;
pub(crate) mod store;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::context::NodeContext;
use session_protocol::rpc_sign::NodeResultToSign;

/// Our Ed25519 signature over a per-node result, base64 (network §4).
pub(crate) fn sign_result(ctx: &NodeContext, what: &NodeResultToSign<'_>) -> String {
    STANDARD.encode(ctx.identity.sign(&what.message()))
}
