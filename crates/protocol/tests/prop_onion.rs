//! Property tests for onion requests (network §7): payload and v4 round trips, build → peel
//! through a whole path for both encryption types, responses, and "untrusted bytes never panic".

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use session_protocol::onion::{
    CombinedPayload, Destination, DestinationKind, EncType, FinalOptions, HopKey, LayerSecrets, NodeKeys,
    Protocol, RequestSpec, ResponseContext, Route, ServerDestination, V4Request, build_request,
    encode_combined_payload, encode_v4_request, encode_v4_response, parse_entry_request, parse_v4,
    parse_v4_request, parse_v4_response, peel_layer, peel_request, seal_response,
};
use session_protocol::primitives::x25519_base;

fn enc_type() -> impl Strategy<Value = EncType> {
    prop_oneof![Just(EncType::AesGcm), Just(EncType::XChaCha20)]
}

/// A snode: X25519 secret plus its public keys (the Ed25519 key is only a routing name here).
#[derive(Debug, Clone)]
struct Node {
    secret: [u8; 32],
    keys: NodeKeys,
}

fn node() -> impl Strategy<Value = Node> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(secret, ed25519)| Node {
        secret,
        keys: NodeKeys { ed25519, x25519: x25519_base(&secret) },
    })
}

fn layer_secrets(count: usize) -> impl Strategy<Value = Vec<LayerSecrets>> {
    vec((any::<[u8; 32]>(), any::<[u8; 24]>()), count)
        .prop_map(|v| v.into_iter().map(|(s, n)| LayerSecrets::new(s, n)).collect())
}

/// Peels the path layers (guard first) and returns the last peeled layer, checking each relay.
fn peel_path(
    path: &[Node],
    body: &[u8],
    next_after_exit: Option<[u8; 32]>,
) -> session_protocol::onion::PeeledLayer {
    let mut layer = peel_request(&path[0].secret, &path[0].keys.x25519, body).expect("guard peels");
    for (i, hop) in path.iter().enumerate().skip(1) {
        let Ok(Route::Relay(relay)) = layer.route() else { panic!("hop {} should relay", i - 1) };
        assert_eq!(relay.next_node, hop.keys.ed25519);
        let next =
            peel_layer(&hop.secret, &hop.keys.x25519, relay.ciphertext, &relay.ephemeral_key, relay.enc_type)
                .expect("hop peels");
        layer = next;
    }
    if let Some(next) = next_after_exit {
        let Ok(Route::Relay(relay)) = layer.route() else { panic!("exit should relay") };
        assert_eq!(relay.next_node, next);
    }
    layer
}

proptest! {
    #[test]
    fn combined_payload_roundtrip(
        blob in vec(any::<u8>(), 0..2048),
        meta in btree_map("[a-z_]{1,12}", ".{0,24}", 0..6),
    ) {
        let json = serde_json::to_vec(&meta).unwrap();
        let encoded = encode_combined_payload(&blob, &json).unwrap();
        prop_assert_eq!(encoded.len(), 4 + blob.len() + json.len());
        let parsed = CombinedPayload::parse(&encoded).unwrap();
        prop_assert_eq!(parsed.blob, &blob[..]);
        prop_assert_eq!(parsed.json, &json[..]);
        let object = parsed.json_object().unwrap();
        prop_assert_eq!(object.len(), meta.len());
    }

    #[test]
    fn v4_request_roundtrip(
        method in "[A-Z]{3,7}",
        endpoint in "/[ -~]{0,40}",
        headers in btree_map("[A-Za-z-]{1,16}", "[ -~]{0,20}", 0..4),
        body in proptest::option::of(vec(any::<u8>(), 0..300)),
    ) {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = V4Request { method: &method, endpoint: &endpoint, headers: &pairs, body: body.as_deref() };
        let encoded = encode_v4_request(&req);
        let parsed = parse_v4_request(&encoded).unwrap();
        prop_assert_eq!(&parsed.method, &method);
        prop_assert_eq!(&parsed.endpoint, &endpoint);
        prop_assert_eq!(parsed.body, body.as_deref());
        for (k, v) in &headers {
            if !k.eq_ignore_ascii_case("user-agent") {
                prop_assert_eq!(parsed.headers.get(k), Some(v));
            }
        }
    }

    #[test]
    fn v4_response_roundtrip(code in 100u16..600, body in vec(any::<u8>(), 0..300)) {
        let encoded = encode_v4_response(code, &[("content-type", "application/octet-stream")], &body);
        let parsed = parse_v4_response(&encoded).unwrap();
        prop_assert_eq!(parsed.code, code);
        prop_assert_eq!(parsed.body, Some(&body[..]));
    }

    #[test]
    fn response_encrypt_decrypt(
        enc in enc_type(),
        client in any::<[u8; 32]>(),
        dest in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
        plaintext in vec(any::<u8>(), 0..512),
        base64 in any::<bool>(),
    ) {
        let (client_pub, dest_pub) = (x25519_base(&client), x25519_base(&dest));
        let ctx = ResponseContext::new(enc, &client, &client_pub, &dest_pub, DestinationKind::Snode).unwrap();
        let node_key = HopKey::for_node(enc, &dest, &dest_pub, &client_pub).unwrap();
        prop_assert_eq!(ctx.key(), &node_key);
        let sealed = seal_response(&node_key, &nonce, &plaintext, base64);
        prop_assert_eq!(ctx.decrypt_body(&sealed).unwrap(), plaintext.clone());
        let raw = node_key.encrypt_with_nonce(&nonce, &plaintext);
        prop_assert_eq!(ctx.decrypt(&raw).unwrap(), plaintext);
    }

    #[test]
    fn parsers_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = CombinedPayload::parse(&bytes).map(|p| p.json_object());
        let _ = parse_entry_request(&bytes);
        let _ = parse_v4(&bytes);
        let _ = parse_v4_request(&bytes);
        let _ = parse_v4_response(&bytes);
        for enc in [EncType::AesGcm, EncType::XChaCha20] {
            let _ = HopKey::from_bytes(enc, [1; 32]).decrypt(&bytes);
        }
    }

    #[test]
    fn bencode_lists_never_panic(items in vec(vec(any::<u8>(), 0..40), 0..4), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
        let mut encoded = b"l".to_vec();
        for item in &items {
            encoded.extend_from_slice(item.len().to_string().as_bytes());
            encoded.push(b':');
            encoded.extend_from_slice(item);
        }
        encoded.push(b'e');
        let ok = parse_v4(&encoded);
        match items.len() {
            1 | 2 => prop_assert!(ok.is_ok()),
            _ => prop_assert!(ok.is_err()),
        }
        let mut mutated = encoded.clone();
        let i = flip.0 % mutated.len();
        mutated[i] ^= flip.1;
        let _ = parse_v4(&mutated);
        let _ = parse_v4(&encoded[..cut % (encoded.len() + 1)]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn build_then_peel_to_snode(
        enc in enc_type(),
        path in vec(node(), 3),
        dest in node(),
        secrets in layer_secrets(4),
        body in "[ -~]{0,200}",
        reply in vec(any::<u8>(), 0..200),
        reply_nonce in any::<[u8; 24]>(),
        json in any::<bool>(),
        base64 in any::<bool>(),
        hop_no in proptest::option::of(0u32..10),
    ) {
        let keys: Vec<NodeKeys> = path.iter().map(|n| n.keys).collect();
        let spec = RequestSpec {
            enc_type: enc,
            path: &keys,
            destination: Destination::Snode { node: dest.keys, body: body.as_bytes(), options: FinalOptions { json, base64 } },
            hop_no,
        };
        let request = build_request(&spec, &secrets).unwrap();
        let entry = parse_entry_request(&request.body).unwrap();
        prop_assert_eq!(entry.enc_type, enc);
        prop_assert_eq!(entry.hop_no, u64::from(hop_no.unwrap_or(0)));

        let exit = peel_path(&path, &request.body, Some(dest.keys.ed25519));
        let Ok(Route::Relay(relay)) = exit.route() else { panic!("exit relays") };
        let last = peel_layer(&dest.secret, &dest.keys.x25519, relay.ciphertext, &relay.ephemeral_key, relay.enc_type).unwrap();
        let Ok(Route::Final(fin)) = last.route() else { panic!("destination is final") };
        prop_assert_eq!(fin.body, body.as_bytes());
        prop_assert_eq!((fin.json, fin.base64), (json, base64));

        // The destination replies; the client decrypts.
        let sealed = last.seal_reply(&reply_nonce, &reply, fin.base64);
        prop_assert_eq!(request.response.decrypt_body(&sealed).unwrap(), reply);

        // A wrong node cannot peel the guard layer.
        prop_assert!(peel_request(&dest.secret, &dest.keys.x25519, &request.body).is_err());
    }

    #[test]
    fn build_then_peel_to_server(
        enc in enc_type(),
        path in vec(node(), 3),
        server in node(),
        secrets in layer_secrets(4),
        endpoint in "/[a-z/]{0,30}",
        body in proptest::option::of(vec(any::<u8>(), 0..200)),
        reply in vec(any::<u8>(), 0..200),
        reply_nonce in any::<[u8; 24]>(),
        port in proptest::option::of(any::<u16>()),
        http in any::<bool>(),
    ) {
        let keys: Vec<NodeKeys> = path.iter().map(|n| n.keys).collect();
        let v4 = encode_v4_request(&V4Request { method: "POST", endpoint: &endpoint, headers: &[], body: body.as_deref() });
        let protocol = if http { Protocol::Http } else { Protocol::Https };
        let spec = RequestSpec {
            enc_type: enc,
            path: &keys,
            destination: Destination::Server(ServerDestination {
                host: "example.org",
                target: "/oxen/v4/lsrpc",
                protocol,
                port,
                x25519: server.keys.x25519,
                request: &v4,
            }),
            hop_no: None,
        };
        let request = build_request(&spec, &secrets).unwrap();
        let exit = peel_path(&path, &request.body, None);
        let Ok(Route::Proxy(proxy)) = exit.route() else { panic!("exit proxies") };
        prop_assert_eq!(proxy.host, "example.org");
        prop_assert_eq!(proxy.target, "/oxen/v4/lsrpc");
        prop_assert_eq!(proxy.protocol, protocol);
        prop_assert_eq!(proxy.port, port.unwrap_or(protocol.default_port()));
        prop_assert_eq!(proxy.payload, exit.plaintext());

        // The server parses the exit node's POST like an entry request and decrypts it.
        let inner = parse_entry_request(proxy.payload).unwrap();
        let key = HopKey::for_node(inner.enc_type, &server.secret, &server.keys.x25519, &inner.ephemeral_key).unwrap();
        let decrypted = key.decrypt(inner.ciphertext).unwrap();
        prop_assert_eq!(&decrypted, &v4);
        let parsed = parse_v4_request(&decrypted).unwrap();
        prop_assert_eq!(parsed.body, body.as_deref());

        let response = encode_v4_response(200, &[], &reply);
        let sealed = seal_response(&key, &reply_nonce, &response, false);
        let opened = request.response.decrypt_body(&sealed).unwrap();
        prop_assert_eq!(parse_v4_response(&opened).unwrap().body, Some(&reply[..]));
    }

    #[test]
    fn peel_never_panics_on_any_plaintext(
        enc in enc_type(),
        node in node(),
        client in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
        blob in vec(any::<u8>(), 0..64),
        json in prop_oneof![
            "[ -~]{0,80}".prop_map(String::into_bytes),
            btree_map(
                prop_oneof![Just("headers"), Just("host"), Just("target"), Just("port"), Just("protocol"),
                    Just("destination"), Just("ephemeral_key"), Just("enc_type"), Just("json"), Just("base64")]
                    .prop_map(str::to_owned),
                prop_oneof![
                    Just(serde_json::Value::Null),
                    any::<bool>().prop_map(serde_json::Value::from),
                    any::<i64>().prop_map(serde_json::Value::from),
                    "[ -~]{0,70}".prop_map(serde_json::Value::from),
                    Just(serde_json::Value::from("/oxen/v4/lsrpc")),
                    Just(serde_json::Value::from("ab".repeat(32))),
                ],
                0..6,
            ).prop_map(|m| serde_json::to_vec(&m).unwrap()),
        ],
        raw in vec(any::<u8>(), 0..80),
        use_raw in any::<bool>(),
    ) {
        // A correctly encrypted layer whose plaintext is anything: routing must not panic.
        let plaintext = if use_raw { raw } else { encode_combined_payload(&blob, &json).unwrap() };
        let client_pub = x25519_base(&client);
        let key = HopKey::for_client(enc, &client, &client_pub, &node.keys.x25519).unwrap();
        let ciphertext = key.encrypt_with_nonce(&nonce, &plaintext);
        let peeled = peel_layer(&node.secret, &node.keys.x25519, &ciphertext, &client_pub, enc).unwrap();
        prop_assert_eq!(peeled.plaintext(), &plaintext[..]);
        let _ = peeled.route();
        // And an entry request around random ciphertext fails cleanly.
        let entry_json = format!(r#"{{"enc_type":"{enc}","ephemeral_key":"{}"}}"#, hex::encode(client_pub));
        let body = encode_combined_payload(&raw_or(&plaintext), entry_json.as_bytes()).unwrap();
        prop_assert!(peel_request(&node.secret, &node.keys.x25519, &body).is_err());
    }
}

/// Some bytes that are certainly not a valid ciphertext for the node.
fn raw_or(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.extend_from_slice(&[0u8; 40]);
    v
}
