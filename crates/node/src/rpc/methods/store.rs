//! `store` (network §4.1).

use std::time::Instant;

use base64::Engine;
use serde_json::{Map, Value, json};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{NodeResultToSign, SignableRequest};

use super::sign_result;
use crate::AccountKey;
use crate::context::NodeContext;
use crate::metrics::Timed;
use crate::rpc::auth::{self, Auth, AuthFields};
use crate::rpc::params::{self, LENIENT_B64, Params};
use crate::rpc::{Method, Origin, RpcError, RpcReply, check_swarm, fan_out, observe, recursive_reply};
use crate::store::StoredMessage;

/// Largest message body in raw bytes (76 800; 102 400 base64 characters).
pub const MAX_MESSAGE_BODY: usize = 76_800;
/// Shortest TTL, ms (10 s).
pub const TTL_MINIMUM_MS: i64 = 10_000;
/// Longest TTL for public-inbox namespaces, ms (14 days).
pub const TTL_MAXIMUM_MS: i64 = 14 * 24 * 3600 * 1000;
/// Longest TTL for every other namespace and the cap for `expire`, ms (30 days).
pub const TTL_MAXIMUM_PRIVATE_MS: i64 = 30 * 24 * 3600 * 1000;
/// How far `timestamp` may be ahead and `expiry` behind our clock, ms (10 s).
pub const STORE_TOLERANCE_MS: i64 = 10_000;
/// How far a signature timestamp may be from our clock, ms (60 s).
pub const SIGNATURE_TOLERANCE_MS: i64 = 60_000;

/// A parsed store request.
#[derive(Debug)]
pub(crate) struct Store<'a> {
    raw: &'a Value,
    account: AccountKey,
    namespace: Namespace,
    timestamp: i64,
    expiry: i64,
    data: Vec<u8>,
    /// Auth fields and the signature timestamp (`sig_timestamp`, default `timestamp`).
    auth: Option<(Auth, i64)>,
}

impl<'a> Store<'a> {
    /// Parses the params in SS order (alphabetical type checks, then requirements).
    pub(crate) fn parse(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        let data = params::string(p, "data")?;
        let expiry = params::timestamp(p, "expiry")?;
        let namespace = params::namespace(p, "namespace")?;
        let pubkey = params::pubkey_with_alias(p)?;
        let auth_fields =
            AuthFields { pubkey_ed25519: params::string(p, "pubkey_ed25519")?, ..AuthFields::default() };
        let sig_timestamp = params::timestamp(p, "sig_timestamp")?;
        let auth_fields = AuthFields {
            signature: params::string(p, "signature")?,
            subaccount: params::string(p, "subaccount")?,
            subaccount_sig: params::string(p, "subaccount_sig")?,
            ..auth_fields
        };
        let timestamp = params::stringified_i64(p, "timestamp")?;
        let ttl = params::stringified_u64(p, "ttl")?;

        let timestamp = params::require("timestamp", timestamp)?;
        let expiry = match (expiry, ttl) {
            (Some(_), Some(_)) => return Err(RpcError::parse("Cannot specify both 'expiry' and 'ttl'")),
            (None, None) => return Err(RpcError::parse("Required field 'expiry' or 'ttl' missing")),
            (Some(e), None) => i64::try_from(e).unwrap_or(i64::MAX),
            (None, Some(ttl)) => timestamp.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        };
        let pubkey = params::require("pubkey", pubkey)?;
        let (account, auth) = if auth_fields.signature.is_some() {
            let (account, auth) = auth::load_signed(Some(pubkey), &auth_fields)?;
            let sig_ts = sig_timestamp.map_or(timestamp, |t| i64::try_from(t).unwrap_or(i64::MAX));
            (account, Some((auth, sig_ts)))
        } else {
            (params::account(pubkey)?, None)
        };

        let data = params::require("data", data)?;
        if data.len() > MAX_MESSAGE_BODY / 3 * 4 {
            return Err(RpcError::parse(format!(
                "Message body exceeds maximum allowed length of {MAX_MESSAGE_BODY} bytes"
            )));
        }
        let data = LENIENT_B64
            .decode(data)
            .map_err(|_| RpcError::parse("Invalid 'data' value: not base64 encoded"))?;
        Ok(Self { raw, account, namespace: namespace.unwrap_or_default(), timestamp, expiry, data, auth })
    }

    /// Checks in order: swarm (421), TTL (403), clock (406), then for non-public namespaces the
    /// signature (401 missing, 406 stale, 401 invalid); then stores on every swarm member.
    pub(crate) async fn run(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let swarm = match check_swarm(ctx, &self.account) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let public_inbox = self.namespace.is_public_inbox();
        let ttl = i128::from(self.expiry) - i128::from(self.timestamp);
        let max_ttl = if public_inbox { TTL_MAXIMUM_MS } else { TTL_MAXIMUM_PRIVATE_MS };
        if ttl < i128::from(TTL_MINIMUM_MS) || ttl > i128::from(max_ttl) {
            return RpcReply::text(403, "Provided expiry/TTL is not valid.");
        }
        let now = ctx.now_ms();
        if self.timestamp > now.saturating_add(STORE_TOLERANCE_MS)
            || self.expiry < now.saturating_sub(STORE_TOLERANCE_MS)
        {
            return RpcReply::text(406, "Timestamp error: check your clock");
        }
        if !public_inbox {
            let Some((auth, sig_ts)) = &self.auth else {
                return RpcReply::text(
                    401,
                    format!("store: signature required to store to namespace {}", self.namespace),
                );
            };
            if (sig_ts.saturating_sub(now)).abs() > SIGNATURE_TOLERANCE_MS {
                return RpcReply::text(406, "store signature timestamp too far from current time");
            }
            let request = SignableRequest::Store {
                namespace: self.namespace,
                sig_timestamp: crate::rpc::ms_u64(*sig_ts),
            };
            if let Err(e) =
                auth::verify(ctx, &self.account, auth, &request, "store signature verification failed").await
            {
                return e.into();
            }
        }

        let hash = MessageHash::compute(self.account.as_bytes(), self.namespace, &self.data);
        let message = StoredMessage {
            hash,
            namespace: self.namespace,
            timestamp_ms: self.timestamp,
            expiry_ms: self.expiry,
            data: self.data,
        };
        let local = store_locally(ctx, self.account, message, origin, now);
        let (local, peers) = fan_out(ctx, &swarm, origin, Method::Store, self.raw, local).await;
        let stored = local.get("hash").is_some();
        recursive_reply(ctx, origin, now, local, peers, |top: &mut Map<String, Value>| {
            if stored {
                // Backwards compatibility: the hash also at top level.
                top.insert("hash".into(), json!(hash.as_str()));
            }
        })
    }
}

/// Our own per-node result. (A public-outbox store deletes the owner's other messages in that
/// namespace first, network §3.1; the store does that in the same transaction.)
async fn store_locally(
    ctx: &NodeContext,
    account: AccountKey,
    message: StoredMessage,
    origin: Origin,
    now: i64,
) -> Value {
    let started = Instant::now();
    let hash = message.hash;
    let outcome = ctx.store.store(account, message).await;
    observe(ctx, Timed::Store, started);
    let mut mine = Map::new();
    match outcome {
        Ok(outcome) => {
            mine.insert("hash".into(), json!(hash.as_str()));
            mine.insert(
                "signature".into(),
                json!(sign_result(ctx, &NodeResultToSign::Store { hash: &hash })),
            );
            if !outcome.new {
                mine.insert("already".into(), json!(true));
            }
            mine.insert("expiry".into(), json!(outcome.expiry_ms));
        }
        Err(e) => {
            tracing::warn!(error = %e, "store failed");
            mine.insert("failed".into(), json!(true));
            mine.insert("query_failure".into(), json!(true));
        }
    }
    if origin == Origin::Client {
        // Upstream also puts `t` inside the entry node's own result; kept for compatibility.
        mine.insert("t".into(), json!(now));
    }
    Value::Object(mine)
}
