//! Fuzzes the onion-request parsers that run before any decryption (network §7.1, §7.4, §7.7).
//!
//! Properties:
//! - `CombinedPayload::parse`, `json_object`, `parse_entry_request`, `parse_v4`,
//!   `parse_v4_request`, `parse_v4_response` and `V4Body::json_object` never panic;
//! - an accepted combined payload re-encodes (`encode_combined_payload`) to exactly the input;
//!   an accepted entry request carries the payload's blob as its ciphertext;
//! - an accepted v4 body is canonical: `l<len>:<json>[<len>:<body>]e` rebuilt from the parts is
//!   the input, and the general bencode decoder reads the same list of one or two strings (and
//!   conversely, such a list is accepted by `parse_v4`);
//! - `parse_v4_request` / `parse_v4_response` agree with `parse_v4`, and what they accept
//!   survives `encode_v4_request` / `encode_v4_response` → parse with the documented header
//!   rules (User-Agent dropped, Content-Type added when there is a body).

#![no_main]

use libfuzzer_sys::fuzz_target;
use session_protocol::bencode::{self, BtValue};
use session_protocol::onion::{
    CombinedPayload, MAX_PAYLOAD_LEN, V4Request, encode_combined_payload, encode_v4_request,
    encode_v4_response, parse_entry_request, parse_v4, parse_v4_request, parse_v4_response,
};

fuzz_target!(|data: &[u8]| {
    check_combined_payload(data);
    check_v4(data);
});

fn check_combined_payload(data: &[u8]) {
    let parsed = CombinedPayload::parse(data);
    let entry = parse_entry_request(data);
    let Ok(payload) = parsed else {
        assert!(entry.is_err(), "entry request accepted an invalid combined payload");
        return;
    };
    assert_eq!(payload.blob.len() + payload.json.len() + 4, data.len());
    let encoded = encode_combined_payload(payload.blob, payload.json).expect("parsed payload re-encodes");
    assert_eq!(encoded, data, "combined payload round trip changed the bytes");
    let again = CombinedPayload::parse(&encoded).expect("re-encoded payload parses");
    assert_eq!(again, payload);
    let _ = payload.json_object();
    if let Ok(entry) = entry {
        assert_eq!(entry.ciphertext, payload.blob, "entry request ciphertext is not the blob");
    }
}

fn check_v4(data: &[u8]) {
    let parsed = parse_v4(data);
    let request = parse_v4_request(data);
    let response = parse_v4_response(data);

    // Differential check against the general bencode decoder.
    let as_list = match bencode::decode(data) {
        Ok(BtValue::List(items)) if (1..=2).contains(&items.len()) && data.len() <= MAX_PAYLOAD_LEN => {
            let strings: Option<Vec<Vec<u8>>> =
                items.iter().map(|i| i.as_bytes().map(<[u8]>::to_vec)).collect();
            strings
        }
        _ => None,
    };

    let Ok(body) = parsed else {
        assert!(as_list.is_none(), "parse_v4 rejected a bencoded list of 1-2 strings: {parsed:?}");
        assert!(request.is_err() && response.is_err(), "typed v4 parser accepted what parse_v4 rejects");
        return;
    };
    let mut expected = vec![body.json.to_vec()];
    expected.extend(body.body.map(<[u8]>::to_vec));
    assert_eq!(as_list, Some(expected), "parse_v4 and bencode::decode disagree");

    // Canonical: rebuilding the list gives the input.
    let mut rebuilt = b"l".to_vec();
    for part in std::iter::once(body.json).chain(body.body) {
        rebuilt.extend_from_slice(part.len().to_string().as_bytes());
        rebuilt.push(b':');
        rebuilt.extend_from_slice(part);
    }
    rebuilt.push(b'e');
    assert_eq!(rebuilt, data, "parse_v4 accepted a non-canonical list");
    let _ = body.json_object();

    if let Ok(request) = request {
        assert_eq!(request.body, body.body);
        let headers: Vec<(&str, &str)> =
            request.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let encoded = encode_v4_request(&V4Request {
            method: &request.method,
            endpoint: &request.endpoint,
            headers: &headers,
            body: request.body,
        });
        let again = parse_v4_request(&encoded).expect("encoded v4 request parses");
        assert_eq!(again.method, request.method);
        assert_eq!(again.endpoint, request.endpoint);
        assert_eq!(again.body, request.body);
        let mut expected_headers = request.headers.clone();
        expected_headers.retain(|name, _| !name.eq_ignore_ascii_case("user-agent"));
        if request.body.is_some() && !expected_headers.keys().any(|n| n.eq_ignore_ascii_case("content-type"))
        {
            expected_headers.insert("Content-Type".to_owned(), "application/json".to_owned());
        }
        assert_eq!(again.headers, expected_headers, "v4 request headers changed in the round trip");
    }

    if let Ok(response) = response {
        assert_eq!(response.body, body.body);
        let headers: Vec<(&str, &str)> =
            response.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let payload = response.body.unwrap_or_default();
        let encoded = encode_v4_response(response.code, &headers, payload);
        let again = parse_v4_response(&encoded).expect("encoded v4 response parses");
        assert_eq!(again.code, response.code);
        assert_eq!(again.headers, response.headers);
        assert_eq!(again.body, Some(payload));
    }
}
