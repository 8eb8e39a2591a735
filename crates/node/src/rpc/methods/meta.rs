//! `batch` / `sequence` (network §4.14) and `ifelse` (§4.15).

use serde_json::{Map, Value, json};

use crate::context::NodeContext;
use crate::rpc::params::{self, Params};
use crate::rpc::{
    Call, HARDFORK, HEIGHT, Method, Origin, RpcError, RpcReply, VERSION, join_all, parse_call, run,
};

/// Most subrequests in one batch or sequence.
pub const BATCH_REQUEST_MAX: usize = 20;

/// Deepest nesting of ifelse requests accepted (upstream has no limit; JSON depth bounds it
/// anyway, this keeps the work per request small).
pub const IFELSE_MAX_DEPTH: usize = 8;

/// Parses `{"requests": [{"method", "params"}, …]}`: 1 to 20 plain (non-meta) subrequests, each
/// fully parsed up front so that any invalid one fails the whole request with 400.
pub(crate) fn parse_subrequests(p: &Params) -> Result<Vec<Call<'_>>, RpcError> {
    let requests = match p.get("requests") {
        Some(Value::Array(r)) if !r.is_empty() => r,
        _ => return Err(RpcError::parse("Invalid batch request: no valid \"requests\" field")),
    };
    if requests.len() > BATCH_REQUEST_MAX {
        return Err(RpcError::parse("Invalid batch request: subrequest limit exceeded"));
    }
    requests
        .iter()
        .map(|request| {
            let Value::Object(request) = request else {
                return Err(RpcError::parse("Invalid batch request: requests must be objects"));
            };
            let (Some(Value::String(method)), Some(params @ Value::Object(_))) =
                (request.get("method"), request.get("params"))
            else {
                return Err(RpcError::parse(
                    "Invalid batch request: subrequests must have method/params keys",
                ));
            };
            let method = Method::from_name(method).ok_or_else(|| {
                RpcError::parse(format!("Invalid batch subrequest: invalid method \"{method}\""))
            })?;
            if method.is_meta() {
                return Err(RpcError::parse(
                    "Invalid batch subrequest: subrequests may not contain meta-requests",
                ));
            }
            parse_call(method, params, 0)
        })
        .collect()
}

/// Runs every subrequest concurrently; 200 with `{"results": [{code, body}, …]}` in request
/// order, whatever the subrequests answered.
pub(crate) async fn batch<'a>(ctx: &'a NodeContext, calls: Vec<Call<'a>>, origin: Origin) -> RpcReply {
    let replies = join_all(calls.into_iter().map(|call| run(ctx, call, origin)).collect()).await;
    results_reply(replies)
}

/// Runs subrequests in order, stopping after the first non-2xx one.
pub(crate) async fn sequence<'a>(ctx: &'a NodeContext, calls: Vec<Call<'a>>, origin: Origin) -> RpcReply {
    let mut replies = Vec::with_capacity(calls.len());
    for call in calls {
        let reply = run(ctx, call, origin).await;
        let ok = (200..300).contains(&reply.status);
        replies.push(reply);
        if !ok {
            break;
        }
    }
    results_reply(replies)
}

fn results_reply(replies: Vec<RpcReply>) -> RpcReply {
    let results: Vec<Value> = replies.into_iter().map(subresult).collect();
    RpcReply::json(200, json!({ "results": results }))
}

/// `{"code": status, "body": json-or-string}`.
fn subresult(reply: RpcReply) -> Value {
    let code = reply.status;
    json!({"code": code, "body": reply.body_value()})
}

/// The `if` conditions; all given ones must hold.
#[derive(Debug, Clone, Default)]
struct Condition {
    height_at_least: Option<i64>,
    height_before: Option<i64>,
    hf_at_least: Option<[i64; 2]>,
    hf_before: Option<[i64; 2]>,
    v_at_least: Option<[i64; 3]>,
    v_before: Option<[i64; 3]>,
}

impl Condition {
    fn parse(p: &Params) -> Result<Self, RpcError> {
        let condition = Self {
            height_at_least: params::integer(p, "height_at_least")?,
            height_before: params::integer(p, "height_before")?,
            hf_at_least: fixed(params::integer_array(p, "hf_at_least")?),
            hf_before: fixed(params::integer_array(p, "hf_before")?),
            v_at_least: fixed(params::integer_array(p, "v_at_least")?),
            v_before: fixed(params::integer_array(p, "v_before")?),
        };
        let c = &condition;
        if c.height_at_least.is_none()
            && c.height_before.is_none()
            && c.hf_at_least.is_none()
            && c.hf_before.is_none()
            && c.v_at_least.is_none()
            && c.v_before.is_none()
        {
            return Err(RpcError::parse(
                "Invalid ifelse request: must specify at least one \"if\" condition",
            ));
        }
        Ok(condition)
    }

    fn holds(&self) -> bool {
        let hf = HARDFORK.map(i64::from);
        let v = VERSION.map(i64::from);
        let height = i64::try_from(HEIGHT).unwrap_or(i64::MAX);
        self.hf_at_least.is_none_or(|x| hf >= x)
            && self.hf_before.is_none_or(|x| hf < x)
            && self.v_at_least.is_none_or(|x| v >= x)
            && self.v_before.is_none_or(|x| v < x)
            && self.height_at_least.is_none_or(|x| height >= x)
            && self.height_before.is_none_or(|x| height < x)
    }
}

/// A list as a fixed-size array: missing elements are 0, extra ones ignored, empty is absent.
fn fixed<const N: usize>(list: Option<Vec<i64>>) -> Option<[i64; N]> {
    let list = list.filter(|l| !l.is_empty())?;
    let mut out = [0; N];
    for (slot, v) in out.iter_mut().zip(list) {
        *slot = v;
    }
    Some(out)
}

/// A parsed ifelse request.
#[derive(Debug)]
pub(crate) struct IfElse<'a> {
    condition: Condition,
    then: Option<Call<'a>>,
    otherwise: Option<Call<'a>>,
}

impl<'a> IfElse<'a> {
    /// Parses `if`, `then` and `else` (branches may be any method, including meta-requests).
    pub(crate) fn parse(p: &'a Params, depth: usize) -> Result<Self, RpcError> {
        if depth >= IFELSE_MAX_DEPTH {
            return Err(RpcError::parse("Invalid ifelse request: nested too deeply"));
        }
        let condition = match p.get("if") {
            Some(Value::Object(cond)) => Condition::parse(cond)?,
            _ => return Err(RpcError::parse("Invalid ifelse request: no valid \"if\" field")),
        };
        let then = branch(p, "then", depth)?;
        let otherwise = branch(p, "else", depth)?;
        if then.is_none() && otherwise.is_none() {
            return Err(RpcError::parse(
                "Invalid ifelse request: at least one of \"then\"/\"else\" required",
            ));
        }
        Ok(Self { condition, then, otherwise })
    }

    /// `{"hf", "v", "height", "condition", "result": {code, body}}`; `result` is omitted when the
    /// chosen branch is absent.
    pub(crate) async fn run(self, ctx: &'a NodeContext, origin: Origin) -> RpcReply {
        let condition = self.condition.holds();
        let mut body = Map::new();
        body.insert("hf".into(), json!(HARDFORK));
        body.insert("v".into(), json!(VERSION));
        body.insert("height".into(), json!(HEIGHT));
        body.insert("condition".into(), json!(condition));
        if let Some(call) = if condition { self.then } else { self.otherwise } {
            let reply = run(ctx, call, origin).await;
            body.insert("result".into(), subresult(reply));
        }
        RpcReply::json(200, Value::Object(body))
    }
}

fn branch<'a>(p: &'a Params, key: &str, depth: usize) -> Result<Option<Call<'a>>, RpcError> {
    let Some(request) = p.get(key) else { return Ok(None) };
    let Value::Object(request) = request else {
        return Err(RpcError::parse(format!("Invalid ifelse request: {key} must be an object")));
    };
    let (Some(Value::String(method)), Some(params @ Value::Object(_))) =
        (request.get("method"), request.get("params"))
    else {
        return Err(RpcError::parse(format!("Invalid ifelse request: {key} must have method/params keys")));
    };
    let method = Method::from_name(method)
        .ok_or_else(|| RpcError::parse(format!("Invalid ifelse request method \"{key}\"")))?;
    parse_call(method, params, depth + 1).map(Some)
}
