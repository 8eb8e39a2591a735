//! v4 request and response bodies for servers (network §7.7; pysogs `onion_request.py`,
//! libsession `generate_payload`, desktop `onionv4.ts`).
//!
//! * Request: a bencoded list of 1 or 2 strings, `[json{"method","endpoint","headers"}, body?]`.
//! * Response: `[json{"code","headers"}, body]`.
//!
//! The list is read and written with the crate's [`crate::bencode`] module; only a list of byte
//! strings is accepted.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::payload::MAX_PAYLOAD_LEN;
use super::write_json_str;
use crate::bencode::{BtError, BtListWriter, BtReader};
use crate::primitives::write_decimal;

/// A v4 body could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum V4Error {
    /// Not a bencoded list of byte strings (bad prefix, length, or terminator).
    #[error("v4 body is not a bencoded list of strings")]
    Malformed,
    /// Bytes follow the list's end.
    #[error("v4 body has trailing bytes")]
    TrailingData,
    /// The list has 0 or more than 2 elements.
    #[error("v4 body must have 1 or 2 elements, got {0}")]
    ElementCount(usize),
    /// The first element is not the expected JSON object.
    #[error("v4 metadata is not valid JSON of the expected shape")]
    InvalidJson,
    /// Larger than 10 MiB.
    #[error("v4 body larger than 10 MiB")]
    TooLarge,
}

/// A v4 body split into its parts, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Body<'a> {
    /// The first element: the JSON metadata text.
    pub json: &'a [u8],
    /// The second element, if present.
    pub body: Option<&'a [u8]>,
}

impl V4Body<'_> {
    /// Parses the metadata generically; it must be a JSON object.
    pub fn json_object(&self) -> Result<Map<String, Value>, V4Error> {
        match serde_json::from_slice::<Value>(self.json) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(V4Error::InvalidJson),
        }
    }
}

/// A v4 request to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Request<'a> {
    /// HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// Path and query, e.g. `/room/abc/messages/recent?limit=25`.
    pub endpoint: &'a str,
    /// Request headers (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, if any.
    pub body: Option<&'a [u8]>,
}

/// A parsed v4 request (what a server sees after decrypting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4RequestParts<'a> {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub endpoint: String,
    /// Headers, sorted by name.
    pub headers: BTreeMap<String, String>,
    /// The body, if present.
    pub body: Option<&'a [u8]>,
}

/// A parsed v4 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Response<'a> {
    /// HTTP status code.
    pub code: u16,
    /// Response headers (lowercase names), sorted.
    pub headers: BTreeMap<String, String>,
    /// The body, if present.
    pub body: Option<&'a [u8]>,
}

/// Splits a v4 request or response body into its JSON part and optional body (§7.7).
pub fn parse_v4(encoded: &[u8]) -> Result<V4Body<'_>, V4Error> {
    if encoded.len() > MAX_PAYLOAD_LEN {
        return Err(V4Error::TooLarge);
    }
    let mut items: [&[u8]; 2] = [&[], &[]];
    let count = parse_string_list(encoded, &mut items)?;
    match count {
        1 => Ok(V4Body { json: items[0], body: None }),
        2 => Ok(V4Body { json: items[0], body: Some(items[1]) }),
        n => Err(V4Error::ElementCount(n)),
    }
}

/// Parses a v4 request: metadata `{"method","endpoint","headers"?}` and optional body.
pub fn parse_v4_request(encoded: &[u8]) -> Result<V4RequestParts<'_>, V4Error> {
    #[derive(Deserialize)]
    struct Meta {
        method: String,
        endpoint: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    }
    let parts = parse_v4(encoded)?;
    let meta: Meta = serde_json::from_slice(parts.json).map_err(|_| V4Error::InvalidJson)?;
    Ok(V4RequestParts {
        method: meta.method,
        endpoint: meta.endpoint,
        headers: meta.headers,
        body: parts.body,
    })
}

/// Parses a v4 response: metadata `{"code","headers"?}` and optional body.
pub fn parse_v4_response(encoded: &[u8]) -> Result<V4Response<'_>, V4Error> {
    #[derive(Deserialize)]
    struct Meta {
        code: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    }
    let parts = parse_v4(encoded)?;
    let meta: Meta = serde_json::from_slice(parts.json).map_err(|_| V4Error::InvalidJson)?;
    Ok(V4Response { code: meta.code, headers: meta.headers, body: parts.body })
}

/// Encodes a v4 request as libsession does: JSON with sorted keys and no whitespace; any
/// `User-Agent` header dropped; `Content-Type: application/json` added when there is a body and
/// no content type was given.
pub fn encode_v4_request(request: &V4Request<'_>) -> Vec<u8> {
    let mut headers: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in request.headers {
        if !name.eq_ignore_ascii_case("user-agent") {
            headers.insert(name, value);
        }
    }
    if request.body.is_some() && !headers.keys().any(|name| name.eq_ignore_ascii_case("content-type")) {
        headers.insert("Content-Type", "application/json");
    }
    let mut json = Vec::with_capacity(64 + request.endpoint.len());
    json.extend_from_slice(br#"{"endpoint":"#);
    write_json_str(&mut json, request.endpoint);
    json.extend_from_slice(br#","headers":"#);
    write_headers(&mut json, &headers);
    json.extend_from_slice(br#","method":"#);
    write_json_str(&mut json, request.method);
    json.push(b'}');
    encode_list(&json, request.body)
}

/// Encodes a v4 response `[{"code":c,"headers":{…}}, body]` (server side; header names are
/// written as given, so pass them lowercase).
pub fn encode_v4_response(code: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let headers: BTreeMap<&str, &str> = headers.iter().copied().collect();
    let mut json = Vec::with_capacity(64);
    json.extend_from_slice(br#"{"code":"#);
    write_decimal(&mut json, u64::from(code));
    json.extend_from_slice(br#","headers":"#);
    write_headers(&mut json, &headers);
    json.push(b'}');
    encode_list(&json, Some(body))
}

// ---- internals ----

fn write_headers(out: &mut Vec<u8>, headers: &BTreeMap<&str, &str>) {
    out.push(b'{');
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, name);
        out.push(b':');
        write_json_str(out, value);
    }
    out.push(b'}');
}

/// `l<len>:<first>[<len>:<second>]e`.
fn encode_list(first: &[u8], second: Option<&[u8]>) -> Vec<u8> {
    let extra = second.map_or(0, |s| s.len() + 12);
    let mut out = Vec::with_capacity(first.len() + extra + 14);
    let mut list = BtListWriter::new(&mut out);
    list.bytes(first);
    if let Some(second) = second {
        list.bytes(second);
    }
    list.finish();
    out
}

/// Parses a bt-list of byte strings spanning all of `input`, keeping at most `items.len()`
/// elements but counting them all.
fn parse_string_list<'a>(input: &'a [u8], items: &mut [&'a [u8]]) -> Result<usize, V4Error> {
    let malformed = |_: BtError| V4Error::Malformed;
    let mut reader = BtReader::new(input);
    let mut count = 0usize;
    {
        let mut list = reader.list().map_err(malformed)?;
        while !list.is_finished().map_err(malformed)? {
            let item = list.bytes().map_err(malformed)?;
            if let Some(slot) = items.get_mut(count) {
                *slot = item;
            }
            count += 1;
        }
        list.end().map_err(malformed)?;
    }
    reader.finish().map_err(|_| V4Error::TrailingData)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip() {
        let req = V4Request {
            method: "POST",
            endpoint: "/room/x/message",
            headers: &[("User-Agent", "x"), ("X-A", "1")],
            body: Some(b"{}"),
        };
        let enc = encode_v4_request(&req);
        assert!(enc.starts_with(b"l"));
        let parsed = parse_v4_request(&enc).unwrap();
        assert_eq!(parsed.method, "POST");
        assert_eq!(parsed.endpoint, "/room/x/message");
        assert_eq!(parsed.body, Some(&b"{}"[..]));
        assert_eq!(parsed.headers.get("Content-Type").map(String::as_str), Some("application/json"));
        assert!(!parsed.headers.contains_key("User-Agent"));
        let no_body = encode_v4_request(&V4Request { body: None, ..req });
        assert_eq!(parse_v4(&no_body).unwrap().body, None);
    }

    #[test]
    fn response_roundtrip() {
        let enc = encode_v4_response(200, &[("content-type", "application/json")], b"{\"id\": 123}");
        let r = parse_v4_response(&enc).unwrap();
        assert_eq!(r.code, 200);
        assert_eq!(r.body, Some(&b"{\"id\": 123}"[..]));
        assert_eq!(
            &enc[..],
            &b"l58:{\"code\":200,\"headers\":{\"content-type\":\"application/json\"}}11:{\"id\": 123}e"[..]
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b""[..],
            b"le",
            b"l",
            b"l3:abc",
            b"l3:abce1",
            b"l03:abce",
            b"l4:abce",
            b"d3:abce",
            b"l3:abci1ee",
        ] {
            assert!(parse_v4(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_v4(b"l1:a1:b1:ce"), Err(V4Error::ElementCount(3)));
        assert_eq!(parse_v4(b"l0:e").unwrap().json, b"");
        assert_eq!(parse_v4(b"l999999999:e"), Err(V4Error::Malformed));
    }
}
