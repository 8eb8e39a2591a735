//! `expire_all` (network §4.8), `expire` (§4.9) and `get_expiries` (§4.10).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use session_protocol::message_hash::MessageHash;
use session_protocol::rpc_sign::{ExpireMode, NodeResultToSign, SignableRequest, SubaccountFlags};

use super::delete::{BulkMethod, BulkRequest, as_ms, hash_strings, tolerance};
use super::sign_result;
use super::store::{SIGNATURE_TOLERANCE_MS, TTL_MAXIMUM_PRIVATE_MS};
use crate::AccountKey;
use crate::context::NodeContext;
use crate::rpc::auth::{self, Auth, AuthFields};
use crate::rpc::params::{self, Params};
use crate::rpc::{
    Method, Origin, RpcError, RpcReply, check_swarm, fan_out, ms_u64, query_failure, recursive_reply,
};

/// A parsed `expire_all`.
#[derive(Debug)]
pub(crate) struct ExpireAll<'a>(BulkRequest<'a>);

impl<'a> ExpireAll<'a> {
    /// Parses `expiry`, `namespace`, `pubkey` and auth fields.
    pub(crate) fn parse(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        BulkRequest::parse(p, raw, "expiry").map(Self)
    }

    /// Swarm (421), expiry ≥ now − 60 s (forwarded 70 s; 406), signature (401), then shortens
    /// every later expiry to `expiry`.
    pub(crate) async fn run(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let request = SignableRequest::ExpireAll { namespace: self.0.namespace, expiry: self.0.value };
        let too_far = |now: i64, expiry: i64| {
            (expiry < now.saturating_sub(tolerance(origin)))
                .then(|| RpcReply::text(406, "expire_all timestamp should be >= current time"))
        };
        self.0
            .run(
                ctx,
                origin,
                &BulkMethod {
                    method: Method::ExpireAll,
                    failure: "expire_all signature verification failed",
                    key: "updated",
                },
                request,
                too_far,
                |ctx, account, namespace, expiry| Box::pin(ctx.store.expire_all(account, namespace, expiry)),
            )
            .await
    }
}

/// A parsed `expire`.
#[derive(Debug)]
pub(crate) struct Expire<'a> {
    raw: &'a Value,
    account: AccountKey,
    auth: Auth,
    messages: Vec<MessageHash>,
    /// Requested expiries: one, or one per message.
    expiries: Vec<u64>,
    mode: ExpireMode,
}

impl<'a> Expire<'a> {
    /// Parses in SS order: types, auth, then expiry / shorten+extend / messages checks.
    pub(crate) fn parse(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        let expiries = params::timestamp_array(p, "expiry")?;
        let extend = params::boolean(p, "extend")?.unwrap_or(false);
        let messages = params::string_array(p, "messages")?;
        let pubkey = params::string(p, "pubkey")?;
        let pubkey_ed25519 = params::string(p, "pubkey_ed25519")?;
        let shorten = params::boolean(p, "shorten")?.unwrap_or(false);
        let fields = AuthFields {
            pubkey_ed25519,
            signature: params::string(p, "signature")?,
            subaccount: params::string(p, "subaccount")?,
            subaccount_sig: params::string(p, "subaccount_sig")?,
        };
        let (account, auth) = auth::load_signed(pubkey, &fields)?;
        let expiries = params::require("expiry", expiries)?;
        if expiries.is_empty() {
            return Err(RpcError::parse("'expiry' does not contain any expiration timestamps"));
        }
        let mode = match (shorten, extend) {
            (true, true) => return Err(RpcError::parse("cannot specify both 'shorten' and 'extend'")),
            (true, false) => ExpireMode::Shorten,
            (false, true) => ExpireMode::Extend,
            (false, false) => ExpireMode::Set,
        };
        let messages = params::require("messages", messages)?;
        if messages.is_empty() {
            return Err(RpcError::parse("messages does not contain any message hashes"));
        }
        if expiries.len() > 1 && expiries.len() != messages.len() {
            return Err(RpcError::parse(
                "'expiry' must be a single expiry, or the same length as 'messages'",
            ));
        }
        let messages = params::message_hashes(&messages)?;
        Ok(Self { raw, account, auth, messages, expiries, mode })
    }

    /// Swarm (421), every expiry ≥ now − 60 s (else **401**, as upstream), signature over the
    /// requested expiries (401), subaccount without Delete: `shorten` → 400, otherwise
    /// extend-only. Applied expiries are capped at now + 30 days.
    pub(crate) async fn run(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let swarm = match check_swarm(ctx, &self.account) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let now = ctx.now_ms();
        if self.expiries.iter().any(|&e| as_ms(e) < now.saturating_sub(SIGNATURE_TOLERANCE_MS)) {
            return RpcReply::text(401, "expire: timestamp should be >= current time");
        }
        let cap = now.saturating_add(TTL_MAXIMUM_PRIVATE_MS);
        let applied: Vec<i64> = self.expiries.iter().map(|&e| as_ms(e).min(cap)).collect();

        let request =
            SignableRequest::Expire { mode: self.mode, expiries: &self.expiries, messages: &self.messages };
        let failure = "expire: signature verification failed";
        let can_delete =
            self.auth.subaccount.as_ref().is_none_or(|s| s.token.flags().contains(SubaccountFlags::DELETE));
        let verified = if can_delete {
            auth::verify(ctx, &self.account, &self.auth, &request, failure).await
        } else {
            auth::verify_with_flags(ctx, &self.account, &self.auth, &request, SubaccountFlags::WRITE, failure)
                .await
        };
        if let Err(e) = verified {
            return e.into();
        }
        let store_mode = match self.mode {
            ExpireMode::Shorten if !can_delete => {
                return RpcReply::text(
                    400,
                    "expire: shorten parameter cannot be used with this subaccount token (missing delete access)",
                );
            }
            // A subaccount that cannot delete may only extend (shortening is nearly deleting).
            ExpireMode::Set if !can_delete => ExpireMode::Extend,
            mode => mode,
        };

        let local = self.expire_locally(ctx, &applied, store_mode);
        let (local, peers) = fan_out(ctx, &swarm, origin, Method::Expire, self.raw, local).await;
        recursive_reply(ctx, origin, now, local, peers, |_| {})
    }

    /// Our per-node result: `expiry` (the applied single value, or the applied values of the
    /// updated hashes in array mode), `updated`, `unchanged` (only when `shorten`/`extend` was
    /// requested) and the signature over all of it (network §4.9).
    async fn expire_locally(&self, ctx: &NodeContext, applied: &[i64], store_mode: ExpireMode) -> Value {
        // Parsing guarantees one expiry, or one per message.
        let first = applied.first().copied().unwrap_or_default();
        let single = applied.len() == 1;
        let pairs: Vec<(MessageHash, i64)> = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, h)| (*h, if single { first } else { applied.get(i).copied().unwrap_or(first) }))
            .collect();
        let mut outcome = match ctx.store.expire(self.account, pairs, store_mode).await {
            Ok(o) => o,
            Err(e) => return query_failure(&e),
        };
        outcome.updated.sort_by_key(|a| a.0);
        let updated: Vec<MessageHash> = outcome.updated.iter().map(|(h, _)| *h).collect();
        let signed_expiries: Vec<u64> = if single {
            vec![ms_u64(first)]
        } else {
            outcome.updated.iter().map(|(_, e)| ms_u64(*e)).collect()
        };
        let explicit_mode = self.mode != ExpireMode::Set;
        let unchanged: BTreeMap<MessageHash, i64> =
            if explicit_mode { outcome.unchanged.iter().copied().collect() } else { BTreeMap::new() };
        let unchanged_signed: Vec<(MessageHash, u64)> =
            unchanged.iter().map(|(h, e)| (*h, ms_u64(*e))).collect();
        let signature = sign_result(
            ctx,
            &NodeResultToSign::Expire {
                pubkey: self.account.as_bytes(),
                applied: &signed_expiries,
                requested: &self.messages,
                updated: &updated,
                unchanged: &unchanged_signed,
            },
        );
        let mut mine = Map::new();
        if single {
            mine.insert("expiry".into(), json!(first));
        } else {
            mine.insert("expiry".into(), json!(outcome.updated.iter().map(|(_, e)| *e).collect::<Vec<_>>()));
        }
        mine.insert("updated".into(), Value::Array(hash_strings(&updated)));
        if explicit_mode {
            let unchanged: Map<String, Value> =
                unchanged.iter().map(|(h, e)| (h.as_str().to_owned(), json!(e))).collect();
            mine.insert("unchanged".into(), Value::Object(unchanged));
        }
        mine.insert("signature".into(), json!(signature));
        Value::Object(mine)
    }
}

/// A parsed `get_expiries`.
#[derive(Debug)]
pub(crate) struct GetExpiries {
    account: AccountKey,
    auth: Auth,
    messages: Vec<MessageHash>,
    timestamp: u64,
}

impl GetExpiries {
    /// Parses `messages`, `pubkey`, auth fields and `timestamp`.
    ///
    /// Unlike upstream, malformed hashes are rejected with 400 (they could never match a stored
    /// message, and the signed string is built from validated hashes).
    pub(crate) fn parse(p: &Params) -> Result<Self, RpcError> {
        let messages = params::string_array(p, "messages")?;
        let pubkey = params::string(p, "pubkey")?;
        let fields = AuthFields::read(p)?;
        let timestamp = params::timestamp(p, "timestamp")?;
        let (account, auth) = auth::load_signed(pubkey, &fields)?;
        let timestamp = params::require("timestamp", timestamp)?;
        let messages = params::require("messages", messages)?;
        if messages.is_empty() {
            return Err(RpcError::parse("messages does not contain any message hashes"));
        }
        let messages = params::message_hashes(&messages)?;
        Ok(Self { account, auth, messages, timestamp })
    }

    /// Swarm (421), timestamp ±60 s (406), signature (401); `{"expiries": {hash: ms}}` with only
    /// the hashes that exist. Not recursive, no `t`/`hf` (network §3.7).
    pub(crate) async fn run(self, ctx: &NodeContext) -> RpcReply {
        if let Err(reply) = check_swarm(ctx, &self.account) {
            return reply;
        }
        let now = ctx.now_ms();
        if (as_ms(self.timestamp).saturating_sub(now)).abs() > SIGNATURE_TOLERANCE_MS {
            return RpcReply::text(406, "get_expiries timestamp too far from current time");
        }
        let request = SignableRequest::GetExpiries { timestamp: self.timestamp, messages: &self.messages };
        if let Err(e) = auth::verify(
            ctx,
            &self.account,
            &self.auth,
            &request,
            "get_expiries signature verification failed",
        )
        .await
        {
            return e.into();
        }
        match ctx.store.expiries(self.account, self.messages).await {
            Ok(found) => {
                let expiries: Map<String, Value> =
                    found.into_iter().map(|(h, e)| (h.as_str().to_owned(), json!(e))).collect();
                RpcReply::json(200, json!({ "expiries": expiries }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "get_expiries failed");
                RpcReply::text(500, "request failed")
            }
        }
    }
}
