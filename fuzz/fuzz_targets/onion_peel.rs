//! Fuzzes onion-layer peeling as a node does it (network §7.2, §7.4) and response decryption
//! (§7.6), with the fixed node keys of the `onion_request_build` vectors (guard, middle, exit,
//! destination), so the vectors' request bodies among the seeds open at the guard.
//!
//! The whole input is always tried as the POST body an entry node receives (`peel_request` with
//! the guard's key). Then the first byte picks the encryption type (bit 0: aes-gcm / xchacha20)
//! and a mode (bits 1–2) for the rest:
//! - 0, raw layer: 32 bytes of ephemeral key, then a ciphertext, decrypted with `HopKey::for_node`
//!   and with `peel_layer` (which must agree);
//! - 1, layer plaintext: the rest is encrypted to the guard as a layer's plaintext and peeled, so
//!   the routing parser (`PeeledLayer::route`) sees arbitrary plaintext;
//! - 2, full request: a real 3-hop request is built whose destination body (snode) or request
//!   (server, bit 3) is the rest; every hop is peeled and must route to the next one, the body
//!   must come out unchanged, and the destination's reply must decrypt at the client;
//! - 3, response: the rest is an HTTP response body for `ResponseContext::decrypt_body` /
//!   `decrypt`, and is also sealed by the destination and must decrypt back.
//!
//! Whenever a layer decrypts, `route()` must not panic and must be consistent with the plaintext
//! (final body / relay ciphertext = the blob, proxy payload = the plaintext, allowed target), and
//! a reply sealed with the layer key must open with it.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use session_protocol::onion::{
    CombinedPayload, Destination, DestinationKind, EncType, FinalOptions, HopKey, LayerSecrets, NodeKeys,
    PeelError, PeeledLayer, Protocol, RequestSpec, ResponseContext, Route, ServerDestination, build_request,
    is_target_allowed, parse_entry_request, peel_layer, peel_request, seal_response,
};
use session_protocol::primitives::{hex_array, x25519_base};

/// A snode with its X25519 secret.
struct Node {
    keys: NodeKeys,
    secret: [u8; 32],
}

static GUARD: LazyLock<Node> = LazyLock::new(|| {
    node(
        "5c9c6df261c9cb840475776aaefcd944b405328fab28f9b3a95ef40490d3de84",
        "e036726caa9d18eb946944d30f1b596e170a394df2088f3e214a2a5905bce475",
    )
});
static MIDDLE: LazyLock<Node> = LazyLock::new(|| {
    node(
        "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737",
        "805b920bda4cd49d251d3329144a0cf8bdaaa07502626fa87f08e80faedab15f",
    )
});
static EXIT: LazyLock<Node> = LazyLock::new(|| {
    node(
        "204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82caba867877c21",
        "502498bcce0bfda1ab430e9e98d40fff22a6ed3dc6d04e46ec0379174d068667",
    )
});
/// The destination snode, also used as the server of server requests.
static DEST: LazyLock<Node> = LazyLock::new(|| {
    node(
        "66cd608b928b88e50e0efeaa33faf1c43cefe07294b0b87e9fe0aba6a3cf7633",
        "d846de1f43c156d18113b0ac8f37dc55121ac5f575c998e5031f13c85fdf4a58",
    )
});

const CLIENT_SECRET: [u8; 32] = [0x11; 32];
static CLIENT_PUBLIC: LazyLock<[u8; 32]> = LazyLock::new(|| x25519_base(&CLIENT_SECRET));
const NONCE: [u8; 24] = [0x42; 24];
const SERVER_HOST: &str = "example.org";
const SERVER_TARGET: &str = "/oxen/v4/lsrpc";

fuzz_target!(|data: &[u8]| {
    let guard = &*GUARD;
    match peel_request(&guard.secret, &guard.keys.x25519, data) {
        Ok(layer) => check_layer(&layer),
        Err(PeelError::DecryptionFailed) => {
            assert!(parse_entry_request(data).is_ok(), "decryption was tried on a malformed request")
        }
        Err(e) => {
            assert_eq!(parse_entry_request(data).err(), Some(e), "peel_request and its parser disagree")
        }
    }

    let Some((&mode, rest)) = data.split_first() else { return };
    let enc = if mode & 1 == 0 { EncType::AesGcm } else { EncType::XChaCha20 };
    match (mode >> 1) & 3 {
        0 => raw_layer(enc, rest),
        1 => layer_plaintext(enc, rest),
        2 => full_request(enc, mode, rest),
        _ => response_body(enc, mode, rest),
    }
});

/// 32 bytes of ephemeral key, then the ciphertext, decrypted by the guard.
fn raw_layer(enc: EncType, rest: &[u8]) {
    let Some((ephemeral, ciphertext)) = rest.split_first_chunk::<32>() else { return };
    let guard = &*GUARD;
    let peeled = peel_layer(&guard.secret, &guard.keys.x25519, ciphertext, ephemeral, enc);
    let Ok(key) = HopKey::for_node(enc, &guard.secret, &guard.keys.x25519, ephemeral) else {
        assert_eq!(peeled.err(), Some(PeelError::DecryptionFailed), "weak ephemeral key peeled");
        return;
    };
    match (key.decrypt(ciphertext), peeled) {
        (Ok(plaintext), Ok(layer)) => {
            assert_eq!(layer.plaintext(), plaintext.as_slice());
            assert_eq!(layer.reply_key(), &key);
            check_layer(&layer);
        }
        (Err(_), Err(PeelError::DecryptionFailed)) => {}
        (hop, peel) => panic!("HopKey::decrypt and peel_layer disagree: {hop:?} vs {peel:?}"),
    }
}

/// The input as the plaintext of a layer to the guard: exercises the routing parser.
fn layer_plaintext(enc: EncType, plaintext: &[u8]) {
    let guard = &*GUARD;
    let client = HopKey::for_client(enc, &CLIENT_SECRET, &CLIENT_PUBLIC, &guard.keys.x25519)
        .expect("the guard key is valid");
    let ciphertext = client.encrypt_with_nonce(&NONCE, plaintext);
    assert_eq!(ciphertext.len(), plaintext.len() + enc.overhead());
    let layer = peel_layer(&guard.secret, &guard.keys.x25519, &ciphertext, &CLIENT_PUBLIC, enc)
        .expect("a layer encrypted to the guard peels");
    assert_eq!(layer.plaintext(), plaintext, "peeling changed the plaintext");
    assert_eq!(layer.reply_key(), &client, "node and client derived different keys");
    check_layer(&layer);
}

/// Builds a real request through guard → middle → exit to the destination (snode or server)
/// carrying `body`, peels every hop, and sends a reply back.
fn full_request(enc: EncType, mode: u8, body: &[u8]) {
    let path = [GUARD.keys, MIDDLE.keys, EXIT.keys];
    let to_server = mode & 8 != 0;
    let options = FinalOptions { json: mode & 16 != 0, base64: mode & 32 == 0 };
    let protocol = if mode & 16 != 0 { Protocol::Http } else { Protocol::Https };
    let port = (mode & 32 != 0).then_some(8443);
    let destination = if to_server {
        Destination::Server(ServerDestination {
            host: SERVER_HOST,
            target: SERVER_TARGET,
            protocol,
            port,
            x25519: DEST.keys.x25519,
            request: body,
        })
    } else {
        Destination::Snode { node: DEST.keys, body, options }
    };
    let hop_no = (mode & 64 != 0).then_some(u32::from(mode >> 7) + 1);
    let secrets: Vec<LayerSecrets> =
        (0u8..4).map(|i| LayerSecrets::new([0x20 + i; 32], [0x30 + i; 24])).collect();
    let request = build_request(&RequestSpec { enc_type: enc, path: &path, destination, hop_no }, &secrets)
        .expect("a request over valid keys builds");

    let entry = parse_entry_request(&request.body).expect("built entry body parses");
    assert_eq!(entry.enc_type, enc);
    assert_eq!(entry.hop_no, u64::from(hop_no.unwrap_or(0)));

    // Guard → middle → exit: each layer relays to the next node.
    let mut layer = peel_request(&GUARD.secret, &GUARD.keys.x25519, &request.body).expect("guard peels");
    check_layer(&layer);
    for next in [&*MIDDLE, &*EXIT] {
        let (ciphertext, ephemeral, next_enc) = match layer.route().expect("relay layer routes") {
            Route::Relay(relay) => {
                assert_eq!(relay.next_node, next.keys.ed25519, "relayed to the wrong node");
                (relay.ciphertext.to_vec(), relay.ephemeral_key, relay.enc_type)
            }
            other => panic!("expected a relay layer, got {other:?}"),
        };
        assert_eq!(next_enc, enc);
        layer = peel_layer(&next.secret, &next.keys.x25519, &ciphertext, &ephemeral, next_enc)
            .expect("next hop peels");
        check_layer(&layer);
    }

    // Exit → destination.
    let dest = &*DEST;
    let reply = body;
    if to_server {
        let payload = match layer.route().expect("exit layer routes") {
            Route::Proxy(proxy) => {
                assert_eq!(proxy.host, SERVER_HOST);
                assert_eq!(proxy.target, SERVER_TARGET);
                assert_eq!(proxy.protocol, protocol);
                assert_eq!(proxy.port, port.unwrap_or(protocol.default_port()));
                assert_eq!(proxy.method, Some("POST"));
                proxy.payload.to_vec()
            }
            other => panic!("expected a proxy layer, got {other:?}"),
        };
        // The server treats the exit's plaintext as an entry request.
        let server_layer = peel_request(&dest.secret, &dest.keys.x25519, &payload)
            .expect("server peels the proxied request");
        assert_eq!(server_layer.plaintext(), body, "the server request changed on the way");
        let _ = server_layer.route();
        let sealed = server_layer.seal_reply(&NONCE, reply, false);
        let opened = request.response.decrypt_body(&sealed).expect("server reply decrypts");
        assert_eq!(opened, reply, "server reply changed on the way back");
    } else {
        let (ciphertext, ephemeral, next_enc) = match layer.route().expect("exit layer routes") {
            Route::Relay(relay) => {
                assert_eq!(relay.next_node, dest.keys.ed25519);
                (relay.ciphertext.to_vec(), relay.ephemeral_key, relay.enc_type)
            }
            other => panic!("expected a relay layer to the destination, got {other:?}"),
        };
        let final_layer = peel_layer(&dest.secret, &dest.keys.x25519, &ciphertext, &ephemeral, next_enc)
            .expect("destination peels");
        check_layer(&final_layer);
        match final_layer.route().expect("final layer routes") {
            Route::Final(request) => {
                assert_eq!(request.body, body, "the destination body changed on the way");
                assert_eq!(request.json, options.json);
                assert_eq!(request.base64, options.base64);
            }
            other => panic!("expected a final layer, got {other:?}"),
        }
        let sealed = final_layer.seal_reply(&NONCE, reply, options.base64);
        let opened = request.response.decrypt_body(&sealed).expect("snode reply decrypts");
        assert_eq!(opened, reply, "snode reply changed on the way back");
    }
}

/// The input as a response body from the destination; then as a reply the destination seals.
fn response_body(enc: EncType, mode: u8, body: &[u8]) {
    let dest = &*DEST;
    let kind = if mode & 8 != 0 { DestinationKind::Server } else { DestinationKind::Snode };
    let context = ResponseContext::new(enc, &CLIENT_SECRET, &CLIENT_PUBLIC, &dest.keys.x25519, kind)
        .expect("the destination key is valid");
    let _ = context.decrypt_body(body);
    let _ = context.decrypt(body);

    let node_key =
        HopKey::for_node(enc, &dest.secret, &dest.keys.x25519, &CLIENT_PUBLIC).expect("client key is valid");
    assert_eq!(&node_key, context.key());
    let base64 = kind == DestinationKind::Snode && mode & 16 == 0;
    let sealed = seal_response(&node_key, &NONCE, body, base64);
    assert_eq!(context.decrypt_body(&sealed).as_deref(), Ok(body), "response round trip failed");
}

/// Consistency of a decrypted layer's routing with its plaintext, and of its reply key.
fn check_layer(layer: &PeeledLayer) {
    let plaintext = layer.plaintext();
    let blob = CombinedPayload::parse(plaintext).ok().map(|p| p.blob);
    match layer.route() {
        Ok(Route::Final(request)) => assert_eq!(Some(request.body), blob, "final body is not the blob"),
        Ok(Route::Relay(relay)) => {
            assert_eq!(Some(relay.ciphertext), blob, "relay ciphertext is not the blob")
        }
        Ok(Route::Proxy(proxy)) => {
            assert_eq!(proxy.payload, plaintext, "proxy payload is not the whole plaintext");
            assert!(is_target_allowed(proxy.target), "proxy to a refused target");
            assert!(blob.is_some(), "proxy route without a combined payload");
        }
        Err(_) => {}
    }
    let sealed = layer.seal_reply(&NONCE, b"reply", false);
    assert_eq!(layer.reply_key().decrypt(&sealed).as_deref(), Ok(&b"reply"[..]), "reply does not open");
}

fn node(ed25519: &str, x25519_secret: &str) -> Node {
    let secret: [u8; 32] = hex_array(x25519_secret).expect("fixed 64-digit hex key");
    let keys = NodeKeys {
        ed25519: hex_array(ed25519).expect("fixed 64-digit hex key"),
        x25519: x25519_base(&secret),
    };
    Node { keys, secret }
}
