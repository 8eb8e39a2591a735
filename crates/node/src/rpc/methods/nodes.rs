//! `get_service_nodes` (network §8.3), answered from the node list this node holds, and
//! `oxend_request` (§4.13), which upstream forwards to oxend and which is kept for clients that
//! bootstrap through it (endpoint `get_service_nodes` only).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::context::NodeContext;
use crate::nodelist::{NodeList, NodeRecord};
use crate::rpc::params::{self, Params};
use crate::rpc::{Call, HARDFORK, HEIGHT, RpcError, RpcReply, VERSION, add_t_hf};

/// Every per-node field this node can report.
const NODE_FIELDS: [&str; 14] = [
    "active",
    "funded",
    "last_uptime_proof",
    "public_ip",
    "pubkey_ed25519",
    "pubkey_x25519",
    "requested_unlock_height",
    "service_node_pubkey",
    "storage_lmq_port",
    "storage_port",
    "storage_server_reachable",
    "storage_server_version",
    "swarm",
    "swarm_id",
];

/// A parsed `get_service_nodes` request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceNodes {
    /// Selected per-node fields (None: all).
    fields: Option<BTreeSet<String>>,
    /// Only these nodes (Ed25519 hex), if given.
    pubkeys: Option<Vec<String>>,
    active_only: bool,
    limit: Option<i64>,
    poll_block_hash: Option<String>,
}

impl ServiceNodes {
    /// Parses `fields` (list, `{name: bool}` dict, or `"all"`; `-name` removes a field),
    /// `service_node_pubkeys`, `active_only`, `limit` and `poll_block_hash`.
    pub(crate) fn parse(p: &Params) -> Result<Self, RpcError> {
        let active_only = params::boolean(p, "active_only")?.unwrap_or(false);
        let fields = parse_fields(params::field(p, "fields"))?;
        let limit = params::integer(p, "limit")?;
        let poll_block_hash = params::string(p, "poll_block_hash")?.map(str::to_owned);
        let pubkeys = params::string_array(p, "service_node_pubkeys")?
            .map(|keys| keys.into_iter().map(str::to_ascii_lowercase).collect());
        Ok(Self { fields, pubkeys, active_only, limit, poll_block_hash })
    }

    /// `{"result": {service_node_states, height, …}, "t", "hf"}`.
    pub(crate) fn run(&self, ctx: &NodeContext) -> RpcReply {
        let now = ctx.now_ms();
        let mut body = Map::new();
        body.insert("result".into(), Value::Object(self.result(&ctx.node_list(), now)));
        add_t_hf(&mut body, now);
        RpcReply::json(200, Value::Object(body))
    }

    /// The oxend-shaped result object.
    fn result(&self, list: &NodeList, now_ms: i64) -> Map<String, Value> {
        let block_hash = list_hash(list);
        let mut result = Map::new();
        result.insert("height".into(), json!(HEIGHT));
        result.insert("target_height".into(), json!(HEIGHT));
        result.insert("block_hash".into(), json!(block_hash));
        result.insert("hardfork".into(), json!(HARDFORK[0]));
        result.insert("snode_revision".into(), json!(HARDFORK[1]));
        result.insert("status".into(), json!("OK"));
        if self.poll_block_hash.as_deref() == Some(block_hash.as_str()) {
            result.insert("unchanged".into(), json!(true));
            return result;
        }
        result.insert("unchanged".into(), json!(false));

        let mut nodes: Vec<&NodeRecord> = list
            .nodes()
            .iter()
            .filter(|n| !self.active_only || n.swarm().is_some())
            .filter(|n| self.pubkeys.as_ref().is_none_or(|keys| keys.contains(&n.pubkey_ed25519)))
            .collect();
        if let Some(limit) = self.limit.filter(|&l| l != 0) {
            use rand::seq::SliceRandom;
            nodes.shuffle(&mut rand::rng());
            if let Ok(limit) = usize::try_from(limit) {
                nodes.truncate(limit);
            }
        }
        let states: Vec<Value> = nodes.into_iter().map(|n| self.node_json(n, now_ms)).collect();
        result.insert("service_node_states".into(), Value::Array(states));
        result
    }

    /// One node with the selected fields.
    fn node_json(&self, node: &NodeRecord, now_ms: i64) -> Value {
        let wanted = |name: &str| self.fields.as_ref().is_none_or(|f| f.contains(name));
        let active = node.swarm().is_some();
        let mut out = Map::new();
        for name in NODE_FIELDS {
            if !wanted(name) {
                continue;
            }
            let value = match name {
                "active" => json!(active),
                "funded" => json!(true),
                "last_uptime_proof" => json!(now_ms / 1000),
                "public_ip" => json!(node.public_ip.to_string()),
                "pubkey_ed25519" | "service_node_pubkey" => json!(node.pubkey_ed25519),
                "pubkey_x25519" => json!(node.pubkey_x25519),
                "requested_unlock_height" => json!(0),
                "storage_lmq_port" => json!(node.storage_lmq_port),
                "storage_port" => json!(node.storage_port),
                "storage_server_reachable" => json!(true),
                "storage_server_version" => json!(VERSION),
                "swarm" => json!(format!("{:x}", node.swarm_id)),
                "swarm_id" => json!(node.swarm_id),
                _ => continue,
            };
            out.insert(name.into(), value);
        }
        Value::Object(out)
    }
}

/// `fields`: absent → all; a list of names (`"all"` adds every field, `-name` removes one; a
/// list of removals only starts from all); or a `{name: bool}` dict.
fn parse_fields(value: Option<&Value>) -> Result<Option<BTreeSet<String>>, RpcError> {
    let all = || NODE_FIELDS.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    let entries: Vec<(&str, bool)> = match value {
        None => return Ok(None),
        Some(Value::String(s)) => vec![(s.as_str(), true)],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(|s| (s, true)))
            .collect::<Option<_>>()
            .ok_or_else(|| RpcError::parse("Invalid value given for 'fields': expected string array"))?,
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| v.as_bool().map(|b| (k.as_str(), b)))
            .collect::<Option<_>>()
            .ok_or_else(|| RpcError::parse("Invalid value given for 'fields': expected boolean values"))?,
        Some(_) => return Err(RpcError::parse("Invalid value given for 'fields': expected list or object")),
    };
    let only_removals = entries.iter().all(|(name, on)| name.starts_with('-') || !on);
    let mut selected = if only_removals { all() } else { BTreeSet::new() };
    for (name, on) in entries {
        match (name, on) {
            ("all", true) => selected.extend(all()),
            (name, true) if name.starts_with('-') => {
                selected.remove(&name[1..]);
            }
            (name, true) => {
                selected.insert(name.to_owned());
            }
            (name, false) => {
                selected.remove(name);
            }
        }
    }
    Ok(Some(selected))
}

/// A stand-in for oxend's block hash: changes whenever the node list changes, so that
/// `poll_block_hash` works as clients expect.
fn list_hash(list: &NodeList) -> String {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(list.nodes().len());
    for n in list.nodes() {
        parts.push(
            format!(
                "{}|{}|{}|{}|{}|{}\n",
                n.pubkey_ed25519,
                n.pubkey_x25519,
                n.public_ip,
                n.storage_port,
                n.storage_lmq_port,
                n.swarm_id
            )
            .into_bytes(),
        );
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    hex::encode(session_protocol::primitives::blake2b_32(b"", &refs))
}

/// `oxend_request`: `endpoint` (required; `get_service_nodes` or `ons_resolve`) and optional
/// `params` (a JSON object).
pub(crate) fn parse_oxend_request(p: &Params) -> Result<Call<'_>, RpcError> {
    let endpoint = params::require("endpoint", params::string(p, "endpoint")?)?;
    match endpoint {
        "get_service_nodes" => {
            let request = match params::field(p, "params") {
                None => ServiceNodes::default(),
                Some(Value::Object(inner)) => ServiceNodes::parse(inner)?,
                Some(_) => {
                    return Err(RpcError::parse("oxend_request params field does not contain valid json"));
                }
            };
            Ok(Call::ServiceNodes(request))
        }
        "ons_resolve" => Ok(Call::OxendUnsupported(endpoint)),
        other => Err(RpcError::parse(format!("Invalid oxend endpoint '{other}'"))),
    }
}

/// The reply for an oxend endpoint this node cannot serve (there is no oxend): 400, as upstream
/// answers oxend errors.
pub(crate) fn oxend_unsupported(endpoint: &str) -> RpcReply {
    RpcReply::text(400, format!("oxend endpoint '{endpoint}' is not available on this node"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_selection() {
        assert_eq!(parse_fields(None).unwrap(), None);
        let f = parse_fields(Some(&json!(["public_ip", "swarm_id"]))).unwrap().unwrap();
        assert_eq!(f.len(), 2);
        let f = parse_fields(Some(&json!(["-public_ip"]))).unwrap().unwrap();
        assert_eq!(f.len(), NODE_FIELDS.len() - 1);
        let f = parse_fields(Some(&json!({"public_ip": true, "height": true}))).unwrap().unwrap();
        assert!(f.contains("public_ip"));
        let f = parse_fields(Some(&json!(["all", "-swarm"]))).unwrap().unwrap();
        assert_eq!(f.len(), NODE_FIELDS.len() - 1);
        assert!(parse_fields(Some(&json!(5))).is_err());
    }
}
