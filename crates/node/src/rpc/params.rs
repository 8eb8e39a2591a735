//! JSON parameter parsing with the storage server's type rules and error texts (network §2.4).
//!
//! Every helper returns `Ok(None)` when the field is absent or `null`, and a [`RpcError`] (400,
//! `invalid request: …`) when it is present with the wrong type, exactly as SS
//! `client_rpc_endpoints.cpp parse_field` does. Methods read their fields in alphabetical order
//! first (type errors are reported in that order), then apply `require`-style checks.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::NamespaceSelector;

use super::RpcError;
use crate::AccountKey;

/// A method's `params` object.
pub(crate) type Params = Map<String, Value>;

/// Timestamps below this many milliseconds (10^6 seconds) were almost certainly sent in seconds.
const MIN_TIMESTAMP_MS: u64 = 1_000_000_000;

/// Standard-alphabet base64 that, like oxenc, accepts input with or without padding and
/// non-canonical trailing bits.
pub(crate) const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The field if it is present and not null.
pub(crate) fn field<'a>(params: &'a Params, name: &str) -> Option<&'a Value> {
    params.get(name).filter(|v| !v.is_null())
}

fn wrong_type(name: &str, expected: &str) -> RpcError {
    RpcError::parse(format!("Invalid value given for '{name}': expected {expected}"))
}

/// A string field.
pub(crate) fn string<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(name, "string")),
    }
}

/// A boolean field.
pub(crate) fn boolean(params: &Params, name: &str) -> Result<Option<bool>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(name, "boolean")),
    }
}

/// A JSON integer as i64 (values above `i64::MAX` saturate).
fn as_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_u64().map(|_| i64::MAX))
}

/// A signed integer field.
pub(crate) fn integer(params: &Params, name: &str) -> Result<Option<i64>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(v) => as_integer(v).map(Some).ok_or_else(|| wrong_type(name, "integer")),
    }
}

/// An unsigned integer field.
pub(crate) fn unsigned(params: &Params, name: &str) -> Result<Option<u64>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| wrong_type(name, "positive integer")),
    }
}

/// An unsigned JSON integer that fits in an i64 (SS converts timestamps through int64).
fn as_timestamp(value: &Value) -> Option<u64> {
    value.as_u64().filter(|&t| i64::try_from(t).is_ok())
}

/// A millisecond timestamp field: an unsigned integer of at least 10^9 (network §2.4).
pub(crate) fn timestamp(params: &Params, name: &str) -> Result<Option<u64>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(v) => {
            let t = as_timestamp(v).ok_or_else(|| wrong_type(name, "integer timestamp (in milliseconds)"))?;
            if t < MIN_TIMESTAMP_MS {
                return Err(RpcError::parse(format!(
                    "Invalid timestamp for '{name}': timestamp must be in milliseconds"
                )));
            }
            Ok(Some(t))
        }
    }
}

/// `store.timestamp`: a signed integer, or a string holding one (backwards compatibility).
pub(crate) fn stringified_i64(params: &Params, name: &str) -> Result<Option<i64>, RpcError> {
    match field(params, name) {
        Some(v @ Value::String(s)) => s.parse().map(Some).map_err(|_| stringified_error(name, v)),
        _ => integer(params, name),
    }
}

/// `store.ttl`: an unsigned integer, or a string holding one.
pub(crate) fn stringified_u64(params: &Params, name: &str) -> Result<Option<u64>, RpcError> {
    match field(params, name) {
        Some(v @ Value::String(s)) => s.parse().map(Some).map_err(|_| stringified_error(name, v)),
        _ => unsigned(params, name),
    }
}

fn stringified_error(name: &str, value: &Value) -> RpcError {
    RpcError::parse(format!("Invalid value given for '{name}': {value}"))
}

/// A single namespace (−32768..=32767).
pub(crate) fn namespace(params: &Params, name: &str) -> Result<Option<Namespace>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(v) => {
            let n = as_integer(v).ok_or_else(|| wrong_type(name, "16-bit integer"))?;
            namespace_in_range(name, n).map(Some)
        }
    }
}

fn namespace_in_range(name: &str, n: i64) -> Result<Namespace, RpcError> {
    Namespace::try_from(n)
        .map_err(|_| RpcError::parse(format!("Invalid value given for '{name}': value out of range")))
}

/// A namespace or `"all"` (the delete/expire-all family).
pub(crate) fn namespace_selector(params: &Params, name: &str) -> Result<Option<NamespaceSelector>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::String(s)) if s == "all" => Ok(Some(NamespaceSelector::All)),
        Some(v) => match as_integer(v) {
            Some(n) => namespace_in_range(name, n).map(|ns| Some(NamespaceSelector::One(ns))),
            None => Err(wrong_type(name, "integer or \"all\"")),
        },
    }
}

/// A string array; a single string counts as a one-element array.
pub(crate) fn string_array<'a>(params: &'a Params, name: &str) -> Result<Option<Vec<&'a str>>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.as_str()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| wrong_type(name, "string array")),
        Some(_) => Err(wrong_type(name, "string array")),
    }
}

/// A timestamp array; a single timestamp counts as a one-element array. (SS applies the
/// "must be in milliseconds" check only to single timestamps, not to these.)
pub(crate) fn timestamp_array(params: &Params, name: &str) -> Result<Option<Vec<u64>>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(as_timestamp)
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| wrong_type(name, "timestamp array")),
        Some(v) => as_timestamp(v).map(|t| Some(vec![t])).ok_or_else(|| wrong_type(name, "timestamp array")),
    }
}

/// An integer array; a single integer counts as a one-element array.
pub(crate) fn integer_array(params: &Params, name: &str) -> Result<Option<Vec<i64>>, RpcError> {
    match field(params, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(as_integer)
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| wrong_type(name, "integer array")),
        Some(v) => as_integer(v).map(|n| Some(vec![n])).ok_or_else(|| wrong_type(name, "integer array")),
    }
}

/// "Required field '…' missing".
pub(crate) fn require<T>(name: &str, value: Option<T>) -> Result<T, RpcError> {
    value.ok_or_else(|| RpcError::parse(format!("Required field '{name}' missing")))
}

/// At most one of two fields (e.g. `last_hash` / `lastHash`).
pub(crate) fn at_most_one_of<T>(
    first: &str,
    a: Option<T>,
    second: &str,
    b: Option<T>,
) -> Result<Option<T>, RpcError> {
    match (a, b) {
        (Some(_), Some(_)) => Err(RpcError::parse(format!("Cannot specify both '{first}' and '{second}'"))),
        (a, b) => Ok(a.or(b)),
    }
}

/// The `pubkey` field with its `pubKey` alias: exactly one is required.
pub(crate) fn pubkey_with_alias(params: &Params) -> Result<Option<&str>, RpcError> {
    let alias = string(params, "pubKey")?;
    let pubkey = string(params, "pubkey")?;
    at_most_one_of("pubkey", pubkey, "pubKey", alias)
}

/// Parses an account pubkey (66 hex characters; network §1.2).
pub(crate) fn account(text: &str) -> Result<AccountKey, RpcError> {
    text.parse().map_err(|_| RpcError::parse("Pubkey must be 66 hex digits (33 bytes) long"))
}

/// A base64 Ed25519 signature: exactly 86 characters, or 88 ending in `==` (network §2.4).
pub(crate) fn signature(text: &str) -> Option<[u8; 64]> {
    let body = match text.len() {
        86 => text,
        88 if text.ends_with("==") => &text[..86],
        _ => return None,
    };
    let mut out = [0u8; 64];
    match LENIENT_B64.decode_slice(body, &mut out) {
        Ok(64) => Some(out),
        _ => None,
    }
}

/// Message hashes: each must be 43 base64 characters ("invalid message hash: …").
pub(crate) fn message_hashes(texts: &[&str]) -> Result<Vec<MessageHash>, RpcError> {
    texts
        .iter()
        .map(|m| {
            MessageHash::from_ascii(m.as_bytes())
                .map_err(|_| RpcError::parse(format!("invalid message hash: {m}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Params {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn types_and_texts() {
        let p =
            obj(json!({"a": "x", "n": 5, "neg": -3, "f": 1.5, "b": true, "nul": null, "t": 999_999_999u64}));
        assert_eq!(string(&p, "a").unwrap(), Some("x"));
        assert_eq!(string(&p, "nul").unwrap(), None);
        assert_eq!(
            string(&p, "n").unwrap_err().text,
            "invalid request: Invalid value given for 'n': expected string"
        );
        assert_eq!(unsigned(&p, "n").unwrap(), Some(5));
        assert!(unsigned(&p, "neg").is_err());
        assert!(integer(&p, "f").is_err());
        assert_eq!(boolean(&p, "b").unwrap(), Some(true));
        assert_eq!(
            timestamp(&p, "t").unwrap_err().text,
            "invalid request: Invalid timestamp for 't': timestamp must be in milliseconds"
        );
        assert_eq!(string_array(&p, "a").unwrap(), Some(vec!["x"]));
        assert_eq!(integer_array(&p, "neg").unwrap(), Some(vec![-3]));
    }

    #[test]
    fn stringified_and_namespaces() {
        let p = obj(json!({"ts": "1700000000000", "bad": "12x", "ns": 40000, "all": "all", "none": "any"}));
        assert_eq!(stringified_i64(&p, "ts").unwrap(), Some(1_700_000_000_000));
        assert_eq!(
            stringified_u64(&p, "bad").unwrap_err().text,
            "invalid request: Invalid value given for 'bad': \"12x\""
        );
        assert_eq!(
            namespace(&p, "ns").unwrap_err().text,
            "invalid request: Invalid value given for 'ns': value out of range"
        );
        assert_eq!(namespace_selector(&p, "all").unwrap(), Some(NamespaceSelector::All));
        assert!(namespace_selector(&p, "none").is_err());
        assert!(namespace(&p, "all").is_err());
    }

    #[test]
    fn signatures() {
        let sig = [7u8; 64];
        let padded = base64::engine::general_purpose::STANDARD.encode(sig);
        assert_eq!(padded.len(), 88);
        assert_eq!(signature(&padded), Some(sig));
        assert_eq!(signature(&padded[..86]), Some(sig));
        assert_eq!(signature(&padded[..85]), None);
        assert_eq!(signature(&"!".repeat(86)), None);
    }
}
