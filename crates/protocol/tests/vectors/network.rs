use serde_json::{Map, Value};
use session_protocol::IdentityKey;
use session_protocol::bencode::{
    MonitorNotification, QuicMessage, SnDataMessage, SnOnionRequest, encode_sn_data,
};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{
    ExpireMode, NamespaceSelector, SignableRequest, SubaccountToken, monitor_message, verify_request,
};
use session_protocol::swarm::{SwarmId, new_swarm_id, swarm_for_pubkey, swarm_space};

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("message_hash", message_hash),
        ("swarm_space", swarm_space_case),
        ("swarm_lookup", swarm_lookup),
        ("new_swarm_id", new_swarm_id_case),
        ("storage_rpc_signature", storage_rpc_signature),
        ("monitor_signature", monitor_signature),
        ("quic_bt_frame", quic_bt_frame),
        ("omq_sn_onion_request", omq_sn_onion_request),
        ("monitor_notification", monitor_notification),
        ("sn_data_batch", sn_data_batch),
    ]
}

fn namespace(case: &Case<'_>, field: &str) -> Result<Namespace, String> {
    Namespace::try_from(case.int(field)?).or_fail(field)
}

fn message_hash(case: &Case<'_>) -> Result<(), String> {
    let pubkey = case.hex_n::<33>("pubkey")?;
    let ns = namespace(case, "namespace")?;
    let data = case.b64("data_b64")?;
    let hash = MessageHash::compute(&pubkey, ns, &data);
    case.check_str("hash", hash.as_str())
}

fn swarm_space_case(case: &Case<'_>) -> Result<(), String> {
    let pubkey = case.hex_n::<33>("pubkey")?;
    case.check_u64("space", swarm_space(&pubkey))
}

fn swarm_lookup(case: &Case<'_>) -> Result<(), String> {
    let ids: Vec<SwarmId> = case.list_u64("swarm_ids")?.into_iter().map(SwarmId).collect();
    let pubkey = case.hex_n::<33>("pubkey")?;
    let found = swarm_for_pubkey(&pubkey, &ids).or_fail("swarm lookup")?;
    // The answer must not depend on the order of the list.
    let mut reversed = ids.clone();
    reversed.reverse();
    if swarm_for_pubkey(&pubkey, &reversed) != Some(found) {
        return Err("lookup depends on list order".into());
    }
    case.check_u64("swarm_id", found.0)
}

fn new_swarm_id_case(case: &Case<'_>) -> Result<(), String> {
    let ids: Vec<SwarmId> = case.list_u64("existing_swarm_ids")?.into_iter().map(SwarmId).collect();
    case.check_u64("swarm_id", new_swarm_id(&ids).0)
}

fn param_u64(params: &Map<String, Value>, key: &str) -> Result<u64, String> {
    params.get(key).and_then(Value::as_u64).ok_or_else(|| format!("params.{key}: missing or not u64"))
}

fn param_hashes(params: &Map<String, Value>) -> Result<Vec<MessageHash>, String> {
    let list = params.get("messages").and_then(Value::as_array).ok_or("params.messages: not a list")?;
    list.iter()
        .map(|v| v.as_str().ok_or("params.messages: not a string")?.parse::<MessageHash>().or_fail("hash"))
        .collect()
}

/// `namespace` as the storage server parses it: absent = 0, an integer, or (if allowed) "all".
fn param_namespace(params: &Map<String, Value>) -> Result<NamespaceSelector, String> {
    match params.get("namespace") {
        None | Some(Value::Null) => Ok(NamespaceSelector::default()),
        Some(Value::String(s)) if s == "all" => Ok(NamespaceSelector::All),
        Some(v) => {
            let n = v.as_i64().ok_or("params.namespace: not an integer")?;
            Ok(NamespaceSelector::One(Namespace::try_from(n).or_fail("namespace")?))
        }
    }
}

fn param_single_namespace(params: &Map<String, Value>) -> Result<Namespace, String> {
    match param_namespace(params)? {
        NamespaceSelector::One(ns) => Ok(ns),
        NamespaceSelector::All => Err("\"all\" not allowed here".into()),
    }
}

fn param_tokens(params: &Map<String, Value>, key: &str) -> Result<Vec<SubaccountToken>, String> {
    let texts: Vec<&str> = match params.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or(format!("params.{key}: not a string")))
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("params.{key}: missing")),
    };
    texts.into_iter().map(|t| SubaccountToken::from_text(t).or_fail("token")).collect()
}

fn storage_rpc_signature(case: &Case<'_>) -> Result<(), String> {
    let seed = case.hex_n::<32>("ed25519_seed")?;
    let method = case.str("method")?;
    let params = case.object("params")?;
    let key = IdentityKey::from_seed_bytes(&seed);

    let hashes;
    let expiries;
    let tokens;
    let request = match method {
        "store" => SignableRequest::Store {
            namespace: param_single_namespace(params)?,
            sig_timestamp: param_u64(params, "sig_timestamp").or_else(|_| param_u64(params, "timestamp"))?,
        },
        "retrieve" => SignableRequest::Retrieve {
            namespace: param_single_namespace(params)?,
            timestamp: param_u64(params, "timestamp")?,
        },
        "delete" => {
            hashes = param_hashes(params)?;
            SignableRequest::Delete { messages: &hashes }
        }
        "delete_all" => SignableRequest::DeleteAll {
            namespace: param_namespace(params)?,
            timestamp: param_u64(params, "timestamp")?,
        },
        "delete_before" => SignableRequest::DeleteBefore {
            namespace: param_namespace(params)?,
            before: param_u64(params, "before")?,
        },
        "expire_all" => SignableRequest::ExpireAll {
            namespace: param_namespace(params)?,
            expiry: param_u64(params, "expiry")?,
        },
        "expire" => {
            hashes = param_hashes(params)?;
            expiries = match params.get("expiry") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_u64().ok_or("params.expiry: not u64"))
                    .collect::<Result<_, _>>()?,
                _ => vec![param_u64(params, "expiry")?],
            };
            let flag = |k: &str| params.get(k).and_then(Value::as_bool).unwrap_or(false);
            let mode = match (flag("shorten"), flag("extend")) {
                (true, false) => ExpireMode::Shorten,
                (false, true) => ExpireMode::Extend,
                (false, false) => ExpireMode::Set,
                (true, true) => return Err("shorten and extend together".into()),
            };
            SignableRequest::Expire { mode, expiries: &expiries, messages: &hashes }
        }
        "get_expiries" => {
            hashes = param_hashes(params)?;
            SignableRequest::GetExpiries { timestamp: param_u64(params, "timestamp")?, messages: &hashes }
        }
        "revoke_subaccount" => {
            tokens = param_tokens(params, "revoke")?;
            SignableRequest::RevokeSubaccount { timestamp: param_u64(params, "timestamp")?, tokens: &tokens }
        }
        "unrevoke_subaccount" => {
            tokens = param_tokens(params, "unrevoke")?;
            SignableRequest::UnrevokeSubaccount {
                timestamp: param_u64(params, "timestamp")?,
                tokens: &tokens,
            }
        }
        other => return Err(format!("unknown method {other}")),
    };
    if request.method() != method {
        return Err(format!("method name mismatch: {}", request.method()));
    }

    let message = request.message();
    let signature = request.sign(&key);

    // Also: a 05 pubkey is the seed's Session ID and pubkey_ed25519 its Ed25519 key; the node-side
    // verification accepts the signature.
    let pubkey_text = params.get("pubkey").and_then(Value::as_str).ok_or("params.pubkey missing")?;
    let pubkey: [u8; 33] =
        hex::decode(pubkey_text).or_fail("pubkey hex")?.try_into().map_err(|_| "pubkey length")?;
    let pubkey_ed25519: Option<[u8; 32]> = match params.get("pubkey_ed25519").and_then(Value::as_str) {
        Some(t) => {
            Some(hex::decode(t).or_fail("pubkey_ed25519 hex")?.try_into().map_err(|_| "ed25519 length")?)
        }
        None => None,
    };
    if pubkey[0] == 0x05 {
        if pubkey != key.session_id().to_bytes() {
            return Err("params.pubkey is not the seed's Session ID".into());
        }
        if pubkey_ed25519 != Some(key.ed25519_public()) {
            return Err("params.pubkey_ed25519 is not the seed's Ed25519 key".into());
        }
    }
    verify_request(&request, &pubkey, pubkey_ed25519.as_ref(), None, &signature).or_fail("verify")?;

    case.check_hex("signed_message", &message)?;
    case.check_b64("signature_b64", &signature)
}

fn monitor_signature(case: &Case<'_>) -> Result<(), String> {
    let seed = case.hex_n::<32>("ed25519_seed")?;
    let pubkey = case.hex_n::<33>("pubkey")?;
    let timestamp = u64::try_from(case.int("timestamp_s")?).or_fail("timestamp_s")?;
    let want_data = case.bool("want_data")?;
    let namespaces: Vec<Namespace> = case
        .list_int("namespaces")?
        .into_iter()
        .map(|n| Namespace::try_from(n).or_fail("namespace"))
        .collect::<Result<_, _>>()?;
    let key = IdentityKey::from_seed_bytes(&seed);
    let message = monitor_message(&pubkey, timestamp, want_data, &namespaces);
    let signature = key.sign(&message);
    case.check_hex("signed_message", &message)?;
    case.check_b64("signature_b64", &signature)
}

fn quic_bt_frame(case: &Case<'_>) -> Result<(), String> {
    let kind = case.str("type")?;
    let rid = case.int("rid")?;
    let endpoint = case.opt_str("endpoint")?;
    let body = case.hex("body")?;
    let message = match (kind, endpoint) {
        ("C", Some(endpoint)) => QuicMessage::Command { rid, endpoint, body: &body },
        ("R", None) => QuicMessage::Reply { rid, body: &body },
        ("E", None) => QuicMessage::Error { rid, body: &body },
        _ => return Err(format!("bad type/endpoint combination {kind}")),
    };
    let frame = message.to_frame();
    let (parsed, used) = QuicMessage::parse_frame(&frame).or_fail("parse")?.or_fail("complete frame")?;
    if parsed != message || used != frame.len() {
        return Err("frame does not parse back".into());
    }
    case.check_hex("frame", &frame)
}

fn omq_sn_onion_request(case: &Case<'_>) -> Result<(), String> {
    let data = case.hex("data")?;
    let enc_type = case.enc_type("enc_type")?;
    let ephemeral_key = case.hex_n::<32>("ephemeral_key")?;
    let hop_no = case.int("hop_no")?;
    let request = SnOnionRequest { data: &data, enc_type: Some(enc_type), ephemeral_key, hop_no };
    let part = request.encode();
    if SnOnionRequest::decode(&part).or_fail("decode")? != request {
        return Err("part does not decode back".into());
    }
    case.check_hex("part", &part)
}

fn monitor_notification(case: &Case<'_>) -> Result<(), String> {
    let pubkey = case.hex_n::<33>("pubkey")?;
    let hash: MessageHash = case.str("hash")?.parse().or_fail("hash")?;
    let namespace = namespace(case, "namespace")?;
    let timestamp = case.int("timestamp")?;
    let expiry = case.int("expiry")?;
    let data = case.opt_hex("data")?;
    let notification =
        MonitorNotification { pubkey: &pubkey, hash, namespace, timestamp, expiry, data: data.as_deref() };
    let encoded = notification.encode();
    if MonitorNotification::decode(&encoded).or_fail("decode")? != notification {
        return Err("notification does not decode back".into());
    }
    case.check_hex("notification", &encoded)
}

fn sn_data_batch(case: &Case<'_>) -> Result<(), String> {
    struct Owned {
        pubkey: [u8; 33],
        hash: MessageHash,
        timestamp: i64,
        expiry: i64,
        data: Vec<u8>,
    }
    let mut owned = Vec::new();
    for m in case.list_object("messages")? {
        let field = |k: &str| m.get(k).ok_or_else(|| format!("messages[].{k} missing"));
        let hex_field = |k: &str| -> Result<Vec<u8>, String> {
            hex::decode(field(k)?.as_str().ok_or(format!("{k}: not a string"))?).or_fail(k)
        };
        owned.push(Owned {
            pubkey: hex_field("pubkey")?.try_into().map_err(|_| "pubkey length")?,
            hash: field("hash")?.as_str().ok_or("hash: not a string")?.parse().or_fail("hash")?,
            timestamp: field("timestamp")?.as_i64().ok_or("timestamp: not an integer")?,
            expiry: field("expiry")?.as_i64().ok_or("expiry: not an integer")?,
            data: hex_field("data")?,
        });
    }
    let messages: Vec<SnDataMessage<'_>> = owned
        .iter()
        .map(|m| SnDataMessage {
            pubkey: &m.pubkey,
            hash: m.hash,
            timestamp: m.timestamp,
            expiry: m.expiry,
            data: &m.data,
            namespace: None,
        })
        .collect();
    let payloads = encode_sn_data(&messages);
    let [payload] = payloads.as_slice() else {
        return Err(format!("expected one payload, got {}", payloads.len()));
    };
    let decoded = session_protocol::bencode::decode_sn_data(payload).or_fail("decode")?;
    if decoded != messages {
        return Err("payload does not decode back".into());
    }
    case.check_hex("payload", payload)
}
