//! `retrieve` (network §4.2).

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::SignableRequest;

use super::store::SIGNATURE_TOLERANCE_MS;
use crate::AccountKey;
use crate::context::NodeContext;
use crate::metrics::Timed;
use crate::rpc::auth::{self, Auth, AuthFields};
use crate::rpc::params::{self, Params};
use crate::rpc::{RpcError, RpcReply, add_t_hf, check_swarm, observe};
use crate::store::RetrieveLimits;

/// Largest retrieve response before base64 (7 800 000 bytes).
pub const RETRIEVE_MAX_SIZE: usize = 7_800_000;

/// A parsed retrieve request.
#[derive(Debug)]
pub(crate) struct Retrieve {
    account: AccountKey,
    namespace: Namespace,
    last_hash: Option<MessageHash>,
    max_count: Option<i64>,
    max_size: Option<i64>,
    /// Present when the request is signed (any auth field given, or an auth namespace named).
    auth: Option<(Auth, u64)>,
}

impl Retrieve {
    /// Parses the params in SS order.
    pub(crate) fn parse(p: &Params) -> Result<Self, RpcError> {
        let last_hash_alias = params::string(p, "lastHash")?;
        let last_hash = params::string(p, "last_hash")?;
        let max_count = params::integer(p, "max_count")?;
        let max_size = params::integer(p, "max_size")?;
        let namespace = params::namespace(p, "namespace")?;
        let pubkey = params::pubkey_with_alias(p)?;
        let fields = AuthFields::read(p)?;
        let timestamp = params::timestamp(p, "timestamp")?;

        let pubkey = params::require("pubkey", pubkey)?;
        let needs_auth = fields.pubkey_ed25519.is_some()
            || fields.signature.is_some()
            || timestamp.is_some()
            || namespace.is_some_and(Namespace::retrieve_requires_auth);
        let (account, auth) = if needs_auth {
            let (account, auth) = auth::load_signed(Some(pubkey), &fields)?;
            (account, Some((auth, params::require("timestamp", timestamp)?)))
        } else {
            (params::account(pubkey)?, None)
        };

        let last_hash = match params::at_most_one_of("last_hash", last_hash, "lastHash", last_hash_alias)? {
            None | Some("") => None,
            Some(h) if h.len() == MessageHash::LEN => Some(
                MessageHash::from_ascii(h.as_bytes())
                    .map_err(|_| RpcError::parse("Invalid last_hash: not base64"))?,
            ),
            Some(_) => return Err(RpcError::parse("Invalid last_hash: expected base64 (43 chars)")),
        };
        Ok(Self { account, namespace: namespace.unwrap_or_default(), last_hash, max_count, max_size, auth })
    }

    /// Swarm (421), signature required (401), timestamp (406), signature (401), then reads.
    pub(crate) async fn run(self, ctx: &NodeContext) -> RpcReply {
        if let Err(reply) = check_swarm(ctx, &self.account) {
            return reply;
        }
        let now = ctx.now_ms();
        match &self.auth {
            None if self.namespace.retrieve_requires_auth() => {
                return RpcReply::text(401, "retrieve: request signature required");
            }
            None => {}
            Some((auth, timestamp)) => {
                if (i64::try_from(*timestamp).unwrap_or(i64::MAX).saturating_sub(now)).abs()
                    > SIGNATURE_TOLERANCE_MS
                {
                    return RpcReply::text(406, "retrieve timestamp too far from current time");
                }
                let request = SignableRequest::Retrieve { namespace: self.namespace, timestamp: *timestamp };
                if let Err(e) =
                    auth::verify(ctx, &self.account, auth, &request, "retrieve signature verification failed")
                        .await
                {
                    return e.into();
                }
            }
        }

        let started = Instant::now();
        let limits = resolve_limits(self.max_count, self.max_size);
        let result = ctx.store.retrieve(self.account, self.namespace, self.last_hash, limits, now).await;
        observe(ctx, Timed::Retrieve, started);
        let retrieved = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(account = %self.account.short(), error = %e, "retrieve failed");
                return RpcReply::text(500, "Internal Server Error. Could not retrieve messages");
            }
        };
        let messages: Vec<Value> = retrieved
            .messages
            .iter()
            .map(|m| {
                json!({
                    "hash": m.hash.as_str(),
                    "timestamp": m.timestamp_ms,
                    "expiration": m.expiry_ms,
                    "data": STANDARD.encode(&m.data),
                })
            })
            .collect();
        let mut body = Map::new();
        body.insert("messages".into(), Value::Array(messages));
        body.insert("more".into(), json!(retrieved.more));
        add_t_hf(&mut body, now);
        RpcReply::json(200, Value::Object(body))
    }
}

/// Paging limits (network §4.2): 0 means unset; both unset → `max_size = -5`; a negative size
/// `-k` is RETRIEVE_MAX_SIZE / k; a positive size (or none, with a count) is capped at
/// RETRIEVE_MAX_SIZE. A negative count means no count limit.
pub(crate) fn resolve_limits(max_count: Option<i64>, max_size: Option<i64>) -> RetrieveLimits {
    let max_count = max_count.filter(|&c| c != 0);
    let mut max_size = max_size.filter(|&s| s != 0);
    if max_count.is_none() && max_size.is_none() {
        max_size = Some(-5);
    }
    let max_size = match max_size {
        Some(s) if s < 0 => RETRIEVE_MAX_SIZE / usize::try_from(s.unsigned_abs()).unwrap_or(usize::MAX),
        Some(s) => usize::try_from(s).unwrap_or(usize::MAX).min(RETRIEVE_MAX_SIZE),
        None => RETRIEVE_MAX_SIZE,
    };
    let max_count = max_count.and_then(|c| usize::try_from(c).ok());
    RetrieveLimits { max_count, max_size }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(resolve_limits(None, None), RetrieveLimits { max_count: None, max_size: 1_560_000 });
        assert_eq!(resolve_limits(Some(0), Some(0)).max_size, 1_560_000);
        assert_eq!(
            resolve_limits(Some(3), None),
            RetrieveLimits { max_count: Some(3), max_size: RETRIEVE_MAX_SIZE }
        );
        assert_eq!(resolve_limits(None, Some(-1)).max_size, RETRIEVE_MAX_SIZE);
        assert_eq!(resolve_limits(None, Some(i64::MIN)).max_size, 0);
        assert_eq!(resolve_limits(None, Some(i64::MAX)).max_size, RETRIEVE_MAX_SIZE);
        assert_eq!(resolve_limits(Some(-4), Some(100)), RetrieveLimits { max_count: None, max_size: 100 });
    }
}
