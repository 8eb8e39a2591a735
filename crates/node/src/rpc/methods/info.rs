//! `info` (network §4.3) and `get_swarm` / `get_snodes_for_pubkey` (§4.4), whose body is also
//! the body of a 421.

use serde_json::{Map, Value, json};
use session_protocol::swarm::SwarmId;

use crate::AccountKey;
use crate::context::NodeContext;
use crate::nodelist::{NodeList, NodeRecord};
use crate::rpc::params::{self, Params};
use crate::rpc::{RpcError, RpcReply, VERSION, add_t_hf};

/// `{"version": [2,8,0], "timestamp": now, "t": now, "hf": [..]}`.
pub(crate) fn info(ctx: &NodeContext) -> RpcReply {
    let now = ctx.now_ms();
    let mut body = Map::new();
    body.insert("version".into(), json!(VERSION));
    body.insert("timestamp".into(), json!(now));
    add_t_hf(&mut body, now);
    RpcReply::json(200, Value::Object(body))
}

/// `pubkey` (alias `pubKey`), required.
pub(crate) fn parse_get_swarm(p: &Params) -> Result<AccountKey, RpcError> {
    let pubkey = params::require("pubkey", params::pubkey_with_alias(p)?)?;
    pubkey.parse().map_err(|_| RpcError::parse("Pubkey must be 66 hex digits/33 bytes long"))
}

/// The swarm serving `account`, with `t` and `hf`. Not swarm-checked: any node answers.
pub(crate) fn get_swarm(ctx: &NodeContext, account: &AccountKey) -> RpcReply {
    let list = ctx.node_list();
    let mut body = swarm_json(&list, list.swarm_of(account));
    add_t_hf(&mut body, ctx.now_ms());
    RpcReply::json(200, Value::Object(body))
}

/// `{"snodes": [...], "swarm": "<hex id>"}` for a swarm (SS `swarm_to_json`): every member not
/// decommissioned; no swarm gives `snodes: []` and `ffffffffffffffff`.
pub(crate) fn swarm_json(list: &NodeList, swarm: Option<SwarmId>) -> Map<String, Value> {
    let snodes: Vec<Value> = swarm.map(|s| list.members(s).map(snode_json).collect()).unwrap_or_default();
    let mut body = Map::new();
    body.insert("snodes".into(), Value::Array(snodes));
    body.insert("swarm".into(), json!(format!("{:x}", swarm.unwrap_or(SwarmId::INVALID).0)));
    body
}

/// One member in the `get_swarm` shape. The legacy key is the Ed25519 key (newer
/// registrations; network §1.1).
fn snode_json(node: &NodeRecord) -> Value {
    let address = node.ed25519().map(|ed| format!("{}.snode", base32z(&ed))).unwrap_or_default();
    json!({
        "address": address,
        "ip": node.public_ip.to_string(),
        "port": node.storage_port.to_string(),
        "port_https": node.storage_port,
        "port_omq": node.storage_lmq_port,
        "port_quic": node.storage_lmq_port,
        "pubkey_ed25519": node.pubkey_ed25519,
        "pubkey_legacy": node.pubkey_ed25519,
        "pubkey_x25519": node.pubkey_x25519,
    })
}

/// z-base-32 (oxenc `to_base32z`): 5 bits per character, most significant first, the last
/// character zero-padded.
pub(crate) fn base32z(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32z_known() {
        // oxenc test vectors: "\0\0\0\0\0" → "yyyyyyyy", "\xff\xff\xff\xff\xff" → "99999999".
        assert_eq!(base32z(&[0; 5]), "yyyyyyyy");
        assert_eq!(base32z(&[0xff; 5]), "99999999");
        assert_eq!(base32z(&[0xff]), "9h");
        assert_eq!(base32z(&[0u8; 32]).len(), 52);
    }
}
