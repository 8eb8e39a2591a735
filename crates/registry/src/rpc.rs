//! `get_service_nodes` parameters and the per-node field selection (`docs/registry.md` §5,
//! network §8.3). Pure, so that a node serving its own copy of the list answers the same way.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::seq::SliceRandom as _;
use serde_json::{Map, Value};

use crate::chain::ServiceNodeState;

/// Every per-node field, in output order.
pub const ALL_FIELDS: &[&str] = &[
    "service_node_pubkey",
    "pubkey_ed25519",
    "pubkey_x25519",
    "public_ip",
    "storage_port",
    "storage_lmq_port",
    "swarm_id",
    "swarm",
    "active",
    "funded",
    "storage_server_version",
    "requested_unlock_height",
    "last_uptime_proof",
    "storage_server_reachable",
    "tls",
];

/// Longest `poll_wait` honoured.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(60);

/// Parsed `get_service_nodes` / `get_n_service_nodes` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceNodesQuery {
    /// Fields to include per node (known names only).
    pub fields: BTreeSet<&'static str>,
    /// Only these nodes (Ed25519 keys), when given.
    pub pubkeys: Option<Vec<[u8; 32]>>,
    /// Only active nodes.
    pub active_only: bool,
    /// `> 0`: a random subset of that many; `< 0`: all, shuffled; `0`: all, by key.
    pub limit: i64,
    /// Reply `unchanged` when the current block hash equals this (lowercase hex).
    pub poll_block_hash: Option<String>,
    /// With `poll_block_hash`: wait up to this long for a change (at most [`MAX_POLL_WAIT`]).
    pub poll_wait: Option<Duration>,
}

/// Invalid `params` (JSON-RPC `-32602`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid params: {0}")]
pub struct ParamsError(pub String);

impl ServiceNodesQuery {
    /// Parses `params` (an object, or absent/null for the defaults).
    pub fn parse(params: Option<&Value>) -> Result<Self, ParamsError> {
        let empty = Map::new();
        let params = match params {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(map)) => map,
            Some(_) => return Err(ParamsError("params must be an object".into())),
        };
        let bad = |what: &str| ParamsError(what.to_string());
        let fields = parse_fields(params.get("fields"))?;
        let pubkeys = match params.get("service_node_pubkeys") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|v| {
                        v.as_str()
                            .and_then(session_protocol::primitives::hex_array::<32>)
                            .ok_or_else(|| bad("service_node_pubkeys must be 64-hex-digit keys"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(bad("service_node_pubkeys must be a list")),
        };
        let active_only = match params.get("active_only") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("active_only must be a boolean")),
        };
        let limit = match params.get("limit") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().ok_or_else(|| bad("limit must be an integer"))?,
        };
        let poll_block_hash = match params.get("poll_block_hash") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
            Some(_) => return Err(bad("poll_block_hash must be a string")),
        };
        let poll_wait = match params.get("poll_wait") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let secs = v.as_f64().filter(|s| s.is_finite() && *s >= 0.0);
                let secs = secs.ok_or_else(|| bad("poll_wait must be a non-negative number of seconds"))?;
                Some(Duration::from_secs_f64(secs.min(MAX_POLL_WAIT.as_secs_f64())))
            }
        };
        Ok(Self { fields, pubkeys, active_only, limit, poll_block_hash, poll_wait })
    }

    /// Filters, orders and limits `nodes` (sorted by key) and renders the selected fields.
    pub fn select<R: rand::Rng + ?Sized>(&self, nodes: &[ServiceNodeState], rng: &mut R) -> Vec<Value> {
        let wanted: Option<BTreeSet<String>> =
            self.pubkeys.as_ref().map(|keys| keys.iter().map(hex::encode).collect());
        let mut chosen: Vec<&ServiceNodeState> = nodes
            .iter()
            .filter(|n| !self.active_only || n.active)
            .filter(|n| wanted.as_ref().is_none_or(|w| w.contains(&n.pubkey_ed25519)))
            .collect();
        if self.limit != 0 {
            chosen.shuffle(rng);
        }
        if self.limit > 0 {
            chosen.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        }
        chosen.into_iter().map(|n| self.render(n)).collect()
    }

    /// One node with the selected fields.
    pub fn render(&self, node: &ServiceNodeState) -> Value {
        let Ok(Value::Object(full)) = serde_json::to_value(node) else {
            return Value::Object(Map::new());
        };
        let out: Map<String, Value> =
            full.into_iter().filter(|(name, _)| self.fields.contains(name.as_str())).collect();
        Value::Object(out)
    }
}

/// `fields`: absent, `"all"`, a list (`"name"` adds, `"-name"` removes, `"all"` adds every field;
/// a list of removals only starts from every field) or a `{name: bool}` dict. Unknown names are
/// ignored (desktop asks for `"height"`).
fn parse_fields(value: Option<&Value>) -> Result<BTreeSet<&'static str>, ParamsError> {
    let all: BTreeSet<&'static str> = ALL_FIELDS.iter().copied().collect();
    let known = |name: &str| ALL_FIELDS.iter().copied().find(|f| *f == name);
    match value {
        None | Some(Value::Null) => Ok(all),
        Some(Value::String(s)) if s == "all" => Ok(all),
        Some(Value::Array(list)) => {
            let names: Vec<&str> = list
                .iter()
                .map(|v| v.as_str().ok_or_else(|| ParamsError("fields must be strings".into())))
                .collect::<Result<_, _>>()?;
            let mut set = if names.iter().all(|n| n.starts_with('-')) && !names.is_empty() {
                all.clone()
            } else {
                BTreeSet::new()
            };
            for name in names {
                if name == "all" {
                    set.extend(all.iter().copied());
                } else if let Some(removed) = name.strip_prefix('-') {
                    if let Some(f) = known(removed) {
                        set.remove(f);
                    }
                } else if let Some(f) = known(name) {
                    set.insert(f);
                }
            }
            Ok(set)
        }
        Some(Value::Object(map)) => {
            let mut set = BTreeSet::new();
            for (name, on) in map {
                let on = on.as_bool().ok_or_else(|| ParamsError("fields values must be booleans".into()))?;
                if !on {
                    continue;
                }
                if name == "all" {
                    set.extend(all.iter().copied());
                } else if let Some(f) = known(name) {
                    set.insert(f);
                }
            }
            Ok(set)
        }
        Some(_) => Err(ParamsError("fields must be \"all\", a list or a dict".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(n: u8, active: bool) -> ServiceNodeState {
        ServiceNodeState {
            service_node_pubkey: hex::encode([n; 32]),
            pubkey_ed25519: hex::encode([n; 32]),
            pubkey_x25519: hex::encode([n + 100; 32]),
            public_ip: format!("127.0.0.{n}"),
            storage_port: 1000 + u16::from(n),
            storage_lmq_port: 0,
            swarm_id: if active { 0 } else { u64::MAX },
            swarm: if active { "0000000000000000".into() } else { "ffffffffffffffff".into() },
            active,
            funded: true,
            storage_server_version: [0, 1, 0],
            requested_unlock_height: 0,
            last_uptime_proof: 0,
            storage_server_reachable: active,
            tls: false,
        }
    }

    #[test]
    fn fields_forms() {
        let q = |p: Value| ServiceNodesQuery::parse(Some(&p)).unwrap().fields;
        assert_eq!(q(json!({})).len(), ALL_FIELDS.len());
        assert_eq!(q(json!({"fields": "all"})).len(), ALL_FIELDS.len());
        assert_eq!(
            q(json!({"fields": {"public_ip": true, "height": true, "swarm": false}})),
            BTreeSet::from(["public_ip"])
        );
        assert_eq!(q(json!({"fields": ["swarm_id", "bogus"]})), BTreeSet::from(["swarm_id"]));
        let without = q(json!({"fields": ["-swarm", "-tls"]}));
        assert_eq!(without.len(), ALL_FIELDS.len() - 2);
        assert!(!without.contains("swarm"));
        assert_eq!(q(json!({"fields": ["all", "-swarm"]})).len(), ALL_FIELDS.len() - 1);
        for bad in [json!({"fields": 3}), json!({"fields": [1]}), json!({"fields": {"a": 1}}), json!([1])] {
            assert!(ServiceNodesQuery::parse(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_params() {
        let q = ServiceNodesQuery::parse(Some(&json!({
            "active_only": true, "limit": -1, "poll_block_hash": "AB", "poll_wait": 500,
            "service_node_pubkeys": [hex::encode([1u8; 32])]
        })))
        .unwrap();
        assert!(q.active_only);
        assert_eq!(q.limit, -1);
        assert_eq!(q.poll_block_hash.as_deref(), Some("ab"));
        assert_eq!(q.poll_wait, Some(MAX_POLL_WAIT));
        assert_eq!(q.pubkeys, Some(vec![[1u8; 32]]));
        for bad in [
            json!({"limit": "x"}),
            json!({"active_only": 1}),
            json!({"poll_wait": -1}),
            json!({"service_node_pubkeys": ["zz"]}),
            json!({"poll_block_hash": 5}),
        ] {
            assert!(ServiceNodesQuery::parse(Some(&bad)).is_err(), "{bad}");
        }
        assert!(ServiceNodesQuery::parse(None).is_ok());
    }

    #[test]
    fn select_filters_and_limits() {
        let nodes: Vec<ServiceNodeState> = (1..=6).map(|n| node(n, n != 3)).collect();
        let mut rng = rand::rng();
        let query = |p: Value| ServiceNodesQuery::parse(Some(&p)).unwrap();
        let all = query(json!({})).select(&nodes, &mut rng);
        assert_eq!(all.len(), 6);
        assert_eq!(all[0]["pubkey_ed25519"], hex::encode([1u8; 32]));
        assert_eq!(all[0].as_object().unwrap().len(), ALL_FIELDS.len());
        assert_eq!(query(json!({"active_only": true})).select(&nodes, &mut rng).len(), 5);
        let some = query(json!({"limit": 2, "fields": ["public_ip"]})).select(&nodes, &mut rng);
        assert_eq!(some.len(), 2);
        assert_eq!(some[0].as_object().unwrap().len(), 1);
        assert_eq!(query(json!({"limit": -1})).select(&nodes, &mut rng).len(), 6);
        let one = query(json!({"service_node_pubkeys": [hex::encode([3u8; 32])]})).select(&nodes, &mut rng);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0]["active"], false);
        assert_eq!(one[0]["swarm_id"], u64::MAX);
    }
}
