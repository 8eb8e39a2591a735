//! `revoke_subaccount` / `unrevoke_subaccount` (network §4.11, §4.12).

use serde_json::{Map, Value, json};
use session_protocol::rpc_sign::{NodeResultToSign, SignableRequest, SubaccountToken};

use super::delete::as_ms;
use super::sign_result;
use super::store::SIGNATURE_TOLERANCE_MS;
use crate::AccountKey;
use crate::context::NodeContext;
use crate::rpc::auth::{self, Auth, AuthFields};
use crate::rpc::params::{self, Params};
use crate::rpc::{
    Method, Origin, OurSwarm, RpcError, RpcReply, check_swarm, fan_out, query_failure, recursive_reply,
};

/// Most tokens one revoke request may carry.
pub const MAX_SUBACCOUNT_TOKENS: usize = 50;

/// A parsed revoke or unrevoke (same fields, different list name).
#[derive(Debug)]
pub(crate) struct Revoke<'a> {
    raw: &'a Value,
    account: AccountKey,
    auth: Auth,
    tokens: Vec<SubaccountToken>,
    timestamp: u64,
}

impl<'a> Revoke<'a> {
    /// `revoke_subaccount`: `pubkey`, `pubkey_ed25519`, `revoke` (≤ 50 tokens), `signature`,
    /// `timestamp`. Subaccount fields are not read: only the owner may revoke.
    pub(crate) fn parse_revoke(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        let pubkey = params::string(p, "pubkey")?;
        let pubkey_ed25519 = params::string(p, "pubkey_ed25519")?;
        let revoke = params::string_array(p, "revoke")?;
        let fields = AuthFields { pubkey_ed25519, ..AuthFields::read_owner_only(p)? };
        let timestamp = params::timestamp(p, "timestamp")?;
        let (account, auth) = auth::load_signed(pubkey, &fields)?;
        let revoke = params::require("revoke", revoke)?;
        if revoke.len() > MAX_SUBACCOUNT_TOKENS {
            return Err(RpcError::parse(format!(
                "invalid revoke: cannot revoke more than {MAX_SUBACCOUNT_TOKENS} subaccounts at once"
            )));
        }
        let tokens = parse_tokens(&revoke, "invalid revoke: expected base64 or hex-encoded subaccount tag")?;
        let timestamp = params::require("timestamp", timestamp)?;
        Ok(Self { raw, account, auth, tokens, timestamp })
    }

    /// `unrevoke_subaccount`: `pubkey`, `pubkey_ed25519`, `signature`, `timestamp`, `unrevoke`.
    pub(crate) fn parse_unrevoke(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        let pubkey = params::string(p, "pubkey")?;
        let fields = AuthFields::read_owner_only(p)?;
        let timestamp = params::timestamp(p, "timestamp")?;
        let unrevoke = params::string_array(p, "unrevoke")?;
        let (account, auth) = auth::load_signed(pubkey, &fields)?;
        let timestamp = params::require("timestamp", timestamp)?;
        let unrevoke = params::require("unrevoke", unrevoke)?;
        let tokens =
            parse_tokens(&unrevoke, "invalid unrevoke: expected base64 or hex-encoded subaccount tag")?;
        Ok(Self { raw, account, auth, tokens, timestamp })
    }

    /// Swarm (421), timestamp ±60 s (406), owner signature (401), then revokes on every member.
    /// The per-node result has only the signature (upstream sends no `count` for revoke).
    pub(crate) async fn run_revoke(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let (swarm, now) = match self.check(ctx, "revoke_subaccount", true).await {
            Ok(checked) => checked,
            Err(reply) => return reply,
        };
        let local = async {
            let tokens: Vec<[u8; 36]> = self.tokens.iter().map(|t| *t.as_bytes()).collect();
            match ctx.store.revoke(self.account, tokens, now).await {
                Ok(()) => self.signed(ctx, Map::new()),
                Err(e) => query_failure(&e),
            }
        };
        let (local, peers) = fan_out(ctx, &swarm, origin, Method::RevokeSubaccount, self.raw, local).await;
        recursive_reply(ctx, origin, now, local, peers, |_| {})
    }

    /// As [`Revoke::run_revoke`]; the per-node result also has `count`, the number of tokens
    /// that were on the list.
    pub(crate) async fn run_unrevoke(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let (swarm, now) = match self.check(ctx, "unrevoke_subaccount", false).await {
            Ok(checked) => checked,
            Err(reply) => return reply,
        };
        let local = async {
            let tokens: Vec<[u8; 36]> = self.tokens.iter().map(|t| *t.as_bytes()).collect();
            match ctx.store.unrevoke(self.account, tokens).await {
                Ok(count) => {
                    let mut mine = Map::new();
                    mine.insert("count".into(), json!(count));
                    self.signed(ctx, mine)
                }
                Err(e) => query_failure(&e),
            }
        };
        let (local, peers) = fan_out(ctx, &swarm, origin, Method::UnrevokeSubaccount, self.raw, local).await;
        recursive_reply(ctx, origin, now, local, peers, |_| {})
    }

    /// Swarm, timestamp and signature checks; returns our swarm and time.
    async fn check(
        &self,
        ctx: &NodeContext,
        method: &'static str,
        revoke: bool,
    ) -> Result<(OurSwarm, i64), RpcReply> {
        let swarm = check_swarm(ctx, &self.account)?;
        let now = ctx.now_ms();
        if (as_ms(self.timestamp).saturating_sub(now)).abs() > SIGNATURE_TOLERANCE_MS {
            return Err(RpcReply::text(406, format!("{method} timestamp too far from current time")));
        }
        let request = if revoke {
            SignableRequest::RevokeSubaccount { timestamp: self.timestamp, tokens: &self.tokens }
        } else {
            SignableRequest::UnrevokeSubaccount { timestamp: self.timestamp, tokens: &self.tokens }
        };
        let failure = if revoke {
            "revoke_subaccount signature verification failed"
        } else {
            "unrevoke_subaccount signature verification failed"
        };
        auth::verify(ctx, &self.account, &self.auth, &request, failure).await.map_err(RpcReply::from)?;
        Ok((swarm, now))
    }

    /// Adds `signature` = Sign(pubkey_hex || timestamp || tokens…).
    fn signed(&self, ctx: &NodeContext, mut mine: Map<String, Value>) -> Value {
        let signature = sign_result(
            ctx,
            &NodeResultToSign::Revocation {
                pubkey: self.account.as_bytes(),
                timestamp: self.timestamp,
                tokens: &self.tokens,
            },
        );
        mine.insert("signature".into(), json!(signature));
        Value::Object(mine)
    }
}

fn parse_tokens(texts: &[&str], error: &'static str) -> Result<Vec<SubaccountToken>, RpcError> {
    texts.iter().map(|t| SubaccountToken::from_text(t).map_err(|_| RpcError::parse(error))).collect()
}
