//! `delete` (network §4.5), `delete_all` (§4.6) and `delete_before` (§4.7).

use serde_json::{Map, Value, json};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{NamespaceSelector, NodeResultToSign, SignableRequest};

use super::sign_result;
use super::store::SIGNATURE_TOLERANCE_MS;
use crate::AccountKey;
use crate::context::NodeContext;
use crate::rpc::auth::{self, Auth, AuthFields};
use crate::rpc::params::{self, Params};
use crate::rpc::{Method, Origin, RpcError, RpcReply, check_swarm, fan_out, query_failure, recursive_reply};
use crate::store::StoreError;

/// How far a forwarded `delete_all` / `expire_all` timestamp may be from our clock, ms (70 s).
pub const SIGNATURE_TOLERANCE_FORWARDED_MS: i64 = 70_000;

/// The signature tolerance for a request from `origin` (delete_all, expire_all).
pub(crate) fn tolerance(origin: Origin) -> i64 {
    match origin {
        Origin::Client => SIGNATURE_TOLERANCE_MS,
        Origin::Forwarded => SIGNATURE_TOLERANCE_FORWARDED_MS,
    }
}

/// A parsed `delete`.
#[derive(Debug)]
pub(crate) struct Delete<'a> {
    raw: &'a Value,
    account: AccountKey,
    auth: Auth,
    messages: Vec<MessageHash>,
    required: bool,
}

impl<'a> Delete<'a> {
    /// Parses `messages`, `pubkey`, auth fields and `required`.
    pub(crate) fn parse(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        let messages = params::string_array(p, "messages")?;
        let pubkey = params::string(p, "pubkey")?;
        let pubkey_ed25519 = params::string(p, "pubkey_ed25519")?;
        let required = params::boolean(p, "required")?;
        let fields = AuthFields {
            pubkey_ed25519,
            signature: params::string(p, "signature")?,
            subaccount: params::string(p, "subaccount")?,
            subaccount_sig: params::string(p, "subaccount_sig")?,
        };
        let (account, auth) = auth::load_signed(pubkey, &fields)?;
        let messages = params::require("messages", messages)?;
        if messages.is_empty() {
            return Err(RpcError::parse("messages does not contain any message hashes"));
        }
        let messages = params::message_hashes(&messages)?;
        Ok(Self { raw, account, auth, messages, required: required.unwrap_or(false) })
    }

    /// Swarm (421), signature (401; no timestamp, so the request is replayable), then deletes
    /// on every member. With `required`, 404 if no member deleted anything.
    ///
    /// `required` only applies at the entry node: a forwarded copy ignores it (upstream does not
    /// forward the flag at all), so that a peer with nothing to delete still reports success.
    pub(crate) async fn run(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let swarm = match check_swarm(ctx, &self.account) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let request = SignableRequest::Delete { messages: &self.messages };
        if let Err(e) = auth::verify(
            ctx,
            &self.account,
            &self.auth,
            &request,
            "delete_msgs signature verification failed",
        )
        .await
        {
            return e.into();
        }
        let now = ctx.now_ms();
        let local = async {
            match ctx.store.delete_hashes(self.account, self.messages.clone()).await {
                Ok(mut deleted) => {
                    deleted.sort();
                    let signature = sign_result(
                        ctx,
                        &NodeResultToSign::Delete {
                            pubkey: self.account.as_bytes(),
                            requested: &self.messages,
                            deleted: &deleted,
                        },
                    );
                    json!({"deleted": hash_strings(&deleted), "signature": signature})
                }
                Err(e) => query_failure(&e),
            }
        };
        let (local, peers) = fan_out(ctx, &swarm, origin, Method::Delete, self.raw, local).await;
        let mut reply = recursive_reply(ctx, origin, now, local, peers, |_| {});
        if self.required && origin == Origin::Client && reply.status == 200 && !deleted_any(&reply) {
            reply.status = 404;
        }
        reply
    }
}

/// True if some member's `deleted` list is non-empty.
fn deleted_any(reply: &RpcReply) -> bool {
    let crate::rpc::ReplyBody::Json(body) = &reply.body else { return false };
    body.get("swarm").and_then(Value::as_object).is_some_and(|swarm| {
        swarm.values().any(|r| r.get("deleted").and_then(Value::as_array).is_some_and(|d| !d.is_empty()))
    })
}

/// The shape shared by `delete_all`, `delete_before` and `expire_all`: a signed request for one
/// account, a namespace selector (default 0) and one timestamp-valued field.
#[derive(Debug)]
pub(crate) struct BulkRequest<'a> {
    raw: &'a Value,
    account: AccountKey,
    auth: Auth,
    /// The selected namespace(s).
    pub(crate) namespace: NamespaceSelector,
    /// The method's timestamp field (`timestamp`, `before` or `expiry`), ms.
    pub(crate) value: u64,
}

/// What distinguishes one bulk method's handling from another's.
pub(crate) struct BulkMethod {
    /// The method, for forwarding.
    pub(crate) method: Method,
    /// The 401 text when the signature fails.
    pub(crate) failure: &'static str,
    /// The key of the affected hashes in each member's result.
    pub(crate) key: &'static str,
}

/// What a bulk method does to the store: delete or shorten the account's messages in the
/// namespace(s), given the validated value in ms; returns the affected messages.
type BulkOp<'s> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<(Namespace, MessageHash)>, StoreError>> + Send + 's>,
>;

impl<'a> BulkRequest<'a> {
    /// Parses `field`, `namespace`, `pubkey` and the auth fields.
    pub(crate) fn parse(p: &'a Params, raw: &'a Value, field: &'static str) -> Result<Self, RpcError> {
        let value = params::timestamp(p, field)?;
        let namespace = params::namespace_selector(p, "namespace")?;
        let pubkey = params::string(p, "pubkey")?;
        let fields = AuthFields::read(p)?;
        let (account, auth) = auth::load_signed(pubkey, &fields)?;
        let value = params::require(field, value)?;
        Ok(Self { raw, account, auth, namespace: namespace.unwrap_or_default(), value })
    }

    /// Swarm (421), then `too_far(now, value)` (the method's clock rule, a refusal or `None`),
    /// signature over `request` (401), then `op` on every member.
    pub(crate) async fn run(
        self,
        ctx: &NodeContext,
        origin: Origin,
        method: &BulkMethod,
        request: SignableRequest<'_>,
        too_far: impl FnOnce(i64, i64) -> Option<RpcReply>,
        op: impl for<'s> FnOnce(&'s NodeContext, AccountKey, NamespaceSelector, i64) -> BulkOp<'s> + Send,
    ) -> RpcReply {
        let swarm = match check_swarm(ctx, &self.account) {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let now = ctx.now_ms();
        if let Some(refusal) = too_far(now, as_ms(self.value)) {
            return refusal;
        }
        if let Err(e) = auth::verify(ctx, &self.account, &self.auth, &request, method.failure).await {
            return e.into();
        }
        let local = async {
            let result = op(ctx, self.account, self.namespace, as_ms(self.value)).await;
            bulk_result(ctx, &self.account, self.namespace, self.value, method.key, result)
        };
        let (local, peers) = fan_out(ctx, &swarm, origin, method.method, self.raw, local).await;
        recursive_reply(ctx, origin, now, local, peers, |_| {})
    }
}

/// A parsed `delete_all`.
#[derive(Debug)]
pub(crate) struct DeleteAll<'a>(BulkRequest<'a>);

impl<'a> DeleteAll<'a> {
    /// Parses `timestamp`, `namespace`, `pubkey` and auth fields.
    pub(crate) fn parse(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        BulkRequest::parse(p, raw, "timestamp").map(Self)
    }

    /// Swarm (421), timestamp ±60 s (forwarded ±70 s; 406), signature (401), then deletes.
    pub(crate) async fn run(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let request = SignableRequest::DeleteAll { namespace: self.0.namespace, timestamp: self.0.value };
        let too_far = |now: i64, timestamp: i64| {
            ((timestamp.saturating_sub(now)).abs() > tolerance(origin))
                .then(|| RpcReply::text(406, "delete_all timestamp too far from current time"))
        };
        self.0
            .run(
                ctx,
                origin,
                &BulkMethod {
                    method: Method::DeleteAll,
                    failure: "delete_all signature verification failed",
                    key: "deleted",
                },
                request,
                too_far,
                |ctx, account, namespace, _| Box::pin(ctx.store.delete_all(account, namespace)),
            )
            .await
    }
}

/// A parsed `delete_before`.
#[derive(Debug)]
pub(crate) struct DeleteBefore<'a>(BulkRequest<'a>);

impl<'a> DeleteBefore<'a> {
    /// Parses `before`, `namespace`, `pubkey` and auth fields.
    pub(crate) fn parse(p: &'a Params, raw: &'a Value) -> Result<Self, RpcError> {
        BulkRequest::parse(p, raw, "before").map(Self)
    }

    /// Swarm (421), `before` at most 60 s ahead (else **401**, as upstream), signature (401),
    /// then deletes messages with `timestamp <= before`.
    ///
    /// Upstream bug (network §4.7): with `namespace: "all"` the SS query returns the wrong
    /// columns and the request most likely fails after deleting. This implements the documented
    /// intent: `deleted` is `{ns: [hashes]}` and the signature covers every deleted hash.
    pub(crate) async fn run(self, ctx: &NodeContext, origin: Origin) -> RpcReply {
        let request = SignableRequest::DeleteBefore { namespace: self.0.namespace, before: self.0.value };
        let too_far = |now: i64, before: i64| {
            (before > now.saturating_add(SIGNATURE_TOLERANCE_MS))
                .then(|| RpcReply::text(401, "delete_before timestamp too far in the future"))
        };
        self.0
            .run(
                ctx,
                origin,
                &BulkMethod {
                    method: Method::DeleteBefore,
                    failure: "delete_before signature verification failed",
                    key: "deleted",
                },
                request,
                too_far,
                |ctx, account, namespace, before| {
                    Box::pin(ctx.store.delete_before(account, namespace, before))
                },
            )
            .await
    }
}

/// A validated timestamp (≤ i64::MAX by parsing) as i64.
pub(crate) fn as_ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The per-node result of delete_all / delete_before / expire_all: `key` is a sorted hash list
/// for one namespace, or `{"<ns>": [sorted hashes], …}` for `"all"`; `signature` signs
/// `pubkey_hex || value || every affected hash in one global sort`.
pub(crate) fn bulk_result(
    ctx: &NodeContext,
    account: &AccountKey,
    namespace: NamespaceSelector,
    value: u64,
    key: &str,
    affected: Result<Vec<(Namespace, MessageHash)>, StoreError>,
) -> Value {
    let mut affected = match affected {
        Ok(a) => a,
        Err(e) => return query_failure(&e),
    };
    affected.sort_by_key(|a| a.1);
    let hashes: Vec<MessageHash> = affected.iter().map(|(_, h)| *h).collect();
    let signature =
        sign_result(ctx, &NodeResultToSign::Bulk { pubkey: account.as_bytes(), value, affected: &hashes });
    let list = match namespace {
        NamespaceSelector::One(_) => Value::Array(hash_strings(&hashes)),
        NamespaceSelector::All => {
            let mut by_ns: Map<String, Value> = Map::new();
            for (ns, hash) in &affected {
                if let Value::Array(list) =
                    by_ns.entry(ns.to_string()).or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(json!(hash.as_str()));
                }
            }
            Value::Object(by_ns)
        }
    };
    let mut mine = Map::new();
    mine.insert(key.into(), list);
    mine.insert("signature".into(), json!(signature));
    Value::Object(mine)
}

/// Hashes as JSON strings.
pub(crate) fn hash_strings(hashes: &[MessageHash]) -> Vec<Value> {
    hashes.iter().map(|h| json!(h.as_str())).collect()
}
