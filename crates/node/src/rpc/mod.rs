//! The client RPC of `POST /storage_rpc/v1` (network §3, §4).
//!
//! A request is parsed completely first (every parse error is a 400 `invalid request: …`, as SS
//! `client_rpc_endpoints.cpp` does), then run: swarm check (421), time tolerances (406/401),
//! signature (401), and the store operation. Recursive methods (§3.8) entered by a client are
//! forwarded to every other member of our swarm while they run locally; the reply gathers every
//! member's signed result under `swarm`.
//!
//! Entry points: [`handle_request`] (raw body), [`handle_method`] (parsed), [`method_label`]
//! (metrics).
//!
//! Where this differs from the upstream storage server (SS 2.8.0):
//! - `delete_before` with `namespace: "all"` returns the documented `{ns: [hashes]}` shape
//!   (upstream's query is broken, network §4.7).
//! - `delete` with `required: true` applies the 404 rule at the entry node only; forwarded copies
//!   ignore the flag (upstream does not forward it at all).
//! - `get_expiries` rejects malformed hashes with 400 (upstream signs and looks them up as given;
//!   they can never match).
//! - `ifelse` nesting is limited to 8 levels.
//! - `get_service_nodes` (aliases `get_n_service_nodes`, `get_all_service_nodes`, and
//!   `oxend_request` with that endpoint) is answered from our node list; `ons_resolve` is not
//!   available (400). There is no blockchain: `height` is 0 and `hf` is [`HARDFORK`].
//! - A retrieve whose signature path lacks `timestamp` is a 400 "Required field 'timestamp'
//!   missing" (upstream dereferences an empty value).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use serde_json::{Map, Value, json};
use session_protocol::swarm::SwarmId;

use crate::AccountKey;
use crate::context::NodeContext;
use crate::nodelist::NodeList;
use crate::peer::PeerReply;

mod auth;
mod methods;
mod params;
#[cfg(test)]
mod tests;

/// The body of an RPC reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// `application/json`.
    Json(Value),
    /// `text/plain` (error strings).
    Text(String),
}

/// An RPC reply: an HTTP status code and a body.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcReply {
    /// HTTP status (network §3.6).
    pub status: u16,
    /// The body.
    pub body: ReplyBody,
}

/// Where a request came from: a client (entry node: forward recursive methods to the swarm, add
/// `t`/`hf`) or another swarm member that forwarded it (run locally only, forwarded time
/// tolerances).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client, directly or through an onion request.
    Client,
    /// A member of our swarm forwarding a recursive request (network §3.8).
    Forwarded,
}

/// The storage-server version this node reports (`info.version`, `ifelse.v`, and
/// `storage_server_version` in `get_service_nodes`).
pub const VERSION: [u16; 3] = [2, 8, 0];

/// The `[hardfork, snode_revision]` this node reports in `hf` (network §3.7). There is no
/// blockchain here; the value is the newest hardfork whose behaviour this node implements
/// (19.4: multi-expiry `expire`).
pub const HARDFORK: [u16; 2] = [19, 4];

/// The block height reported by `ifelse` and `get_service_nodes`. There is no blockchain, so it
/// is always 0.
pub const HEIGHT: u64 = 0;

/// Parses `{"method": ..., "params": {...}}` (400 on bad JSON / non-object params / non-string
/// method) and runs it.
pub async fn handle_request(ctx: &NodeContext, body: &[u8], origin: Origin) -> RpcReply {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return record_invalid(ctx, RpcReply::text(400, "invalid json")),
    };
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return record_invalid(ctx, RpcReply::text(400, "invalid json: no `method` field"));
    };
    match request.get("params") {
        Some(params @ Value::Object(_)) => handle_method(ctx, method, params, origin).await,
        _ => {
            let reply = RpcReply::text(400, "invalid json: no `params` field");
            ctx.metrics.record_request(method_label(method), reply.status);
            reply
        }
    }
}

/// Runs one method with already-parsed params.
pub async fn handle_method(ctx: &NodeContext, method: &str, params: &Value, origin: Origin) -> RpcReply {
    let reply = match Method::from_name(method) {
        None => RpcReply::text(400, format!("no method {method}")),
        Some(m) if origin == Origin::Forwarded && !m.is_recursive() => {
            RpcError::parse("received invalid forwarded non-forwardable request").into()
        }
        Some(m) => match parse_call(m, params, 0) {
            Ok(call) => run(ctx, call, origin).await,
            Err(e) => e.into(),
        },
    };
    ctx.metrics.record_request(method_label(method), reply.status);
    reply
}

/// Label for metrics: the method name if known, else "unknown" (never echo client text).
pub fn method_label(method: &str) -> &'static str {
    Method::from_name(method).map_or("unknown", Method::name)
}

// ---------------------------------------------------------------------------------------------

/// A known method. Aliases map onto the canonical method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Store,
    Retrieve,
    Info,
    GetSwarm,
    Delete,
    DeleteAll,
    DeleteBefore,
    ExpireAll,
    Expire,
    GetExpiries,
    RevokeSubaccount,
    UnrevokeSubaccount,
    GetServiceNodes,
    OxendRequest,
    Batch,
    Sequence,
    IfElse,
}

impl Method {
    /// The method for a `method` value (aliases included).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "store" => Self::Store,
            "retrieve" => Self::Retrieve,
            "info" => Self::Info,
            "get_swarm" | "get_snodes_for_pubkey" => Self::GetSwarm,
            "delete" => Self::Delete,
            "delete_all" => Self::DeleteAll,
            "delete_before" => Self::DeleteBefore,
            "expire_all" => Self::ExpireAll,
            "expire" => Self::Expire,
            "get_expiries" => Self::GetExpiries,
            "revoke_subaccount" => Self::RevokeSubaccount,
            "unrevoke_subaccount" => Self::UnrevokeSubaccount,
            "get_service_nodes" | "get_n_service_nodes" | "get_all_service_nodes" => Self::GetServiceNodes,
            "oxend_request" => Self::OxendRequest,
            "batch" => Self::Batch,
            "sequence" => Self::Sequence,
            "ifelse" => Self::IfElse,
            _ => return None,
        })
    }

    /// The canonical name (what is forwarded to peers and counted in metrics).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Retrieve => "retrieve",
            Self::Info => "info",
            Self::GetSwarm => "get_swarm",
            Self::Delete => "delete",
            Self::DeleteAll => "delete_all",
            Self::DeleteBefore => "delete_before",
            Self::ExpireAll => "expire_all",
            Self::Expire => "expire",
            Self::GetExpiries => "get_expiries",
            Self::RevokeSubaccount => "revoke_subaccount",
            Self::UnrevokeSubaccount => "unrevoke_subaccount",
            Self::GetServiceNodes => "get_service_nodes",
            Self::OxendRequest => "oxend_request",
            Self::Batch => "batch",
            Self::Sequence => "sequence",
            Self::IfElse => "ifelse",
        }
    }

    /// The swarm-wide methods of network §3.8.
    pub(crate) fn is_recursive(self) -> bool {
        matches!(
            self,
            Self::Store
                | Self::Delete
                | Self::DeleteAll
                | Self::DeleteBefore
                | Self::ExpireAll
                | Self::Expire
                | Self::RevokeSubaccount
                | Self::UnrevokeSubaccount
        )
    }

    /// batch, sequence and ifelse, which may not be batch subrequests.
    pub(crate) fn is_meta(self) -> bool {
        matches!(self, Self::Batch | Self::Sequence | Self::IfElse)
    }
}

/// A fully parsed request, ready to run.
#[derive(Debug)]
pub(crate) enum Call<'a> {
    Store(methods::store::Store<'a>),
    Retrieve(methods::retrieve::Retrieve),
    Info,
    GetSwarm(AccountKey),
    Delete(methods::delete::Delete<'a>),
    DeleteAll(methods::delete::DeleteAll<'a>),
    DeleteBefore(methods::delete::DeleteBefore<'a>),
    ExpireAll(methods::expire::ExpireAll<'a>),
    Expire(methods::expire::Expire<'a>),
    GetExpiries(methods::expire::GetExpiries),
    Revoke(methods::revoke::Revoke<'a>),
    Unrevoke(methods::revoke::Revoke<'a>),
    ServiceNodes(methods::nodes::ServiceNodes),
    OxendUnsupported(&'a str),
    Batch(Vec<Call<'a>>),
    Sequence(Vec<Call<'a>>),
    IfElse(Box<methods::meta::IfElse<'a>>),
}

/// Parses the params of a known method. `depth` counts enclosing ifelse requests.
pub(crate) fn parse_call<'a>(method: Method, params: &'a Value, depth: usize) -> Result<Call<'a>, RpcError> {
    use methods::*;
    let Value::Object(p) = params else { return Err(RpcError::text(400, "invalid json: no `params` field")) };
    Ok(match method {
        Method::Store => Call::Store(store::Store::parse(p, params)?),
        Method::Retrieve => Call::Retrieve(retrieve::Retrieve::parse(p)?),
        Method::Info => Call::Info,
        Method::GetSwarm => Call::GetSwarm(info::parse_get_swarm(p)?),
        Method::Delete => Call::Delete(delete::Delete::parse(p, params)?),
        Method::DeleteAll => Call::DeleteAll(delete::DeleteAll::parse(p, params)?),
        Method::DeleteBefore => Call::DeleteBefore(delete::DeleteBefore::parse(p, params)?),
        Method::ExpireAll => Call::ExpireAll(expire::ExpireAll::parse(p, params)?),
        Method::Expire => Call::Expire(expire::Expire::parse(p, params)?),
        Method::GetExpiries => Call::GetExpiries(expire::GetExpiries::parse(p)?),
        Method::RevokeSubaccount => Call::Revoke(revoke::Revoke::parse_revoke(p, params)?),
        Method::UnrevokeSubaccount => Call::Unrevoke(revoke::Revoke::parse_unrevoke(p, params)?),
        Method::GetServiceNodes => Call::ServiceNodes(nodes::ServiceNodes::parse(p)?),
        Method::OxendRequest => nodes::parse_oxend_request(p)?,
        Method::Batch => Call::Batch(meta::parse_subrequests(p)?),
        Method::Sequence => Call::Sequence(meta::parse_subrequests(p)?),
        Method::IfElse => Call::IfElse(Box::new(meta::IfElse::parse(p, depth)?)),
    })
}

/// A boxed, sendable future (for the recursion through batch and ifelse).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs a parsed request.
pub(crate) fn run<'a>(ctx: &'a NodeContext, call: Call<'a>, origin: Origin) -> BoxFuture<'a, RpcReply> {
    use methods::*;
    Box::pin(async move {
        match call {
            Call::Store(r) => r.run(ctx, origin).await,
            Call::Retrieve(r) => r.run(ctx).await,
            Call::Info => info::info(ctx),
            Call::GetSwarm(account) => info::get_swarm(ctx, &account),
            Call::Delete(r) => r.run(ctx, origin).await,
            Call::DeleteAll(r) => r.run(ctx, origin).await,
            Call::DeleteBefore(r) => r.run(ctx, origin).await,
            Call::ExpireAll(r) => r.run(ctx, origin).await,
            Call::Expire(r) => r.run(ctx, origin).await,
            Call::GetExpiries(r) => r.run(ctx).await,
            Call::Revoke(r) => r.run_revoke(ctx, origin).await,
            Call::Unrevoke(r) => r.run_unrevoke(ctx, origin).await,
            Call::ServiceNodes(r) => r.run(ctx),
            Call::OxendUnsupported(endpoint) => nodes::oxend_unsupported(endpoint),
            Call::Batch(calls) => meta::batch(ctx, calls, origin).await,
            Call::Sequence(calls) => meta::sequence(ctx, calls, origin).await,
            Call::IfElse(r) => r.run(ctx, origin).await,
        }
    })
}

// ---------------------------------------------------------------------------------------------

/// A failed request: status and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RpcError {
    pub status: u16,
    pub text: String,
}

impl RpcError {
    /// Any status with a text.
    pub(crate) fn new(status: u16, text: impl Into<String>) -> Self {
        Self { status, text: text.into() }
    }

    /// Alias of [`RpcError::new`] for texts that are not parse errors.
    pub(crate) fn text(status: u16, text: impl Into<String>) -> Self {
        Self::new(status, text)
    }

    /// A parse error: 400 `invalid request: <what>`.
    pub(crate) fn parse(what: impl AsRef<str>) -> Self {
        Self { status: 400, text: format!("invalid request: {}", what.as_ref()) }
    }
}

impl From<RpcError> for RpcReply {
    fn from(e: RpcError) -> Self {
        RpcReply::text(e.status, e.text)
    }
}

impl RpcReply {
    /// A JSON reply.
    pub fn json(status: u16, body: Value) -> Self {
        Self { status, body: ReplyBody::Json(body) }
    }

    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, body: ReplyBody::Text(body.into()) }
    }

    /// The body as a JSON value (text bodies become JSON strings), as batch results and peers
    /// carry it.
    pub fn body_value(self) -> Value {
        match self.body {
            ReplyBody::Json(v) => v,
            ReplyBody::Text(s) => Value::String(s),
        }
    }
}

fn record_invalid(ctx: &NodeContext, reply: RpcReply) -> RpcReply {
    ctx.metrics.record_request("unknown", reply.status);
    reply
}

/// Adds the common response fields `t` (our time, ms) and `hf` (network §3.7).
pub(crate) fn add_t_hf(obj: &mut Map<String, Value>, now_ms: i64) {
    obj.insert("t".into(), json!(now_ms));
    obj.insert("hf".into(), json!(HARDFORK));
}

/// Millisecond count as the u64 that signed strings use (negative values cannot occur for
/// validated timestamps; they clamp to 0).
pub(crate) fn ms_u64(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// Records the time a store or retrieve took.
pub(crate) fn observe(ctx: &NodeContext, op: crate::metrics::Timed, started: Instant) {
    ctx.metrics.observe(op, started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Swarm membership and recursive requests (network §3.8, §4.4).

/// Our swarm, as established by [`check_swarm`].
#[derive(Debug)]
pub(crate) struct OurSwarm {
    list: Arc<NodeList>,
    id: SwarmId,
}

/// Checks that `account` belongs to our swarm; otherwise the reply is 421 with the right swarm
/// (and `t`, `hf`), or 500 "No swarms known!" if the node list has no swarm at all.
pub(crate) fn check_swarm(ctx: &NodeContext, account: &AccountKey) -> Result<OurSwarm, RpcReply> {
    let list = ctx.node_list();
    let target = list.swarm_of(account);
    let ours = list.by_ed25519(ctx.identity.ed25519_hex()).and_then(|n| n.swarm());
    match (target, ours) {
        (Some(t), Some(o)) if t == o => Ok(OurSwarm { list, id: o }),
        (Some(t), _) => {
            tracing::trace!(account = %account.short(), "request for another swarm");
            let mut body = methods::info::swarm_json(&list, Some(t));
            add_t_hf(&mut body, ctx.now_ms());
            Err(RpcReply::json(421, Value::Object(body)))
        }
        (None, _) => Err(RpcReply::text(500, "No swarms known!")),
    }
}

/// One member's part of a recursive request (keyed by its Ed25519 hex).
pub(crate) type MemberResults = Vec<(String, Value)>;

/// Runs `local` and, for a client request, forwards `params` as `method` to every other member
/// of our swarm at the same time (5 s timeout in the peer channel). Returns our own result and
/// the peers' (empty when forwarded).
pub(crate) async fn fan_out<F>(
    ctx: &NodeContext,
    swarm: &OurSwarm,
    origin: Origin,
    method: Method,
    params: &Value,
    local: F,
) -> (Value, MemberResults)
where
    F: Future<Output = Value> + Send,
{
    if origin == Origin::Forwarded {
        return (local.await, Vec::new());
    }
    let own = ctx.identity.ed25519_hex();
    let peers: Vec<_> = swarm.list.members(swarm.id).filter(|n| n.pubkey_ed25519 != own).collect();
    let forwards = peers.iter().map(|peer| async move {
        let reply = ctx.peers.forward_rpc(peer, method.name(), params).await;
        (peer.pubkey_ed25519.clone(), peer_result(reply))
    });
    let (local, peers) = tokio::join!(local, join_all(forwards.collect()));
    (local, peers)
}

/// Turns a peer's answer into its per-node result (network §3.8 failure shapes).
fn peer_result(reply: PeerReply) -> Value {
    match reply {
        PeerReply::Answered { status: 200, body: body @ Value::Object(_) } => body,
        // A forwarded request whose local store failed answers 500 with the failure shape.
        PeerReply::Answered { body: Value::Object(m), .. } if m.get("failed") == Some(&Value::Bool(true)) => {
            Value::Object(m)
        }
        PeerReply::Answered { status, body } => {
            let reason = match body {
                Value::String(s) => s,
                other => other.to_string(),
            };
            json!({"failed": true, "code": status, "reason": reason})
        }
        PeerReply::Timeout => json!({"failed": true, "timeout": true}),
        PeerReply::BadResponse => json!({"failed": true, "bad_peer_response": true}),
    }
}

/// True if a per-node result is a failure.
pub(crate) fn is_failed(result: &Value) -> bool {
    result.get("failed").is_some()
}

/// Builds the reply of a recursive request.
///
/// - Forwarded: our own result at top level; 500 if it failed, else 200.
/// - Client: `{"swarm": {member: result, …}, "t", "hf", …extra}`; 200 if at least one member
///   succeeded, else 500.
pub(crate) fn recursive_reply(
    ctx: &NodeContext,
    origin: Origin,
    now_ms: i64,
    local: Value,
    peers: MemberResults,
    extra: impl FnOnce(&mut Map<String, Value>),
) -> RpcReply {
    if origin == Origin::Forwarded {
        let status = if is_failed(&local) { 500 } else { 200 };
        return RpcReply::json(status, local);
    }
    let mut swarm = Map::new();
    let mut any_ok = !is_failed(&local);
    swarm.insert(ctx.identity.ed25519_hex().to_owned(), local);
    for (member, result) in peers {
        any_ok |= !is_failed(&result);
        swarm.insert(member, result);
    }
    let mut top = Map::new();
    top.insert("swarm".into(), Value::Object(swarm));
    extra(&mut top);
    add_t_hf(&mut top, now_ms);
    RpcReply::json(if any_ok { 200 } else { 500 }, Value::Object(top))
}

/// The per-node result of a failed database operation (network §3.8 `query_failure`).
pub(crate) fn query_failure(e: &crate::store::StoreError) -> Value {
    tracing::warn!(error = %e, "database operation failed");
    json!({"failed": true, "query_failure": true})
}

/// Awaits every future concurrently (on this task) and returns their outputs in order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
