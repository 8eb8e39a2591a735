//! Onion request kinds (network §7; vectors README "network.json").

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value};
use session_protocol::onion::builder::Destination;
use session_protocol::onion::{
    CombinedPayload, DestinationKind, EncType, FinalOptions, HopError, HopKey, LayerSecrets, NodeKeys,
    PeelError, RequestSpec, ResponseContext, Route, build_request_traced, parse_v4, peel_layer, peel_request,
};
use session_protocol::primitives::{hex_array, x25519_base};

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("onion_hop_decrypt_aesgcm", hop_decrypt_aesgcm),
        ("onion_hop_decrypt_xchacha20", hop_decrypt_xchacha20),
        ("onion_hop_decrypt_reject", hop_decrypt_reject),
        ("onion_combined_payload_parse", combined_payload_parse),
        ("onion_request_build", request_build),
        ("onion_response_decrypt", response_decrypt),
        ("onion_v4_parse", v4_parse),
    ]
}

/// A deterministic RNG per entry, for the "also" re-encryption checks.
fn rng_for(case: &Case<'_>) -> StdRng {
    let seed = case
        .name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    StdRng::seed_from_u64(seed)
}

fn hop_decrypt_aesgcm(case: &Case<'_>) -> Result<(), String> {
    hop_decrypt(case, EncType::AesGcm)
}

fn hop_decrypt_xchacha20(case: &Case<'_>) -> Result<(), String> {
    hop_decrypt(case, EncType::XChaCha20)
}

fn hop_decrypt(case: &Case<'_>, enc: EncType) -> Result<(), String> {
    let node_secret = case.hex_n::<32>("node_x25519_secret")?;
    let node_public = case.hex_n::<32>("node_x25519_pubkey")?;
    let client_public = case.hex_n::<32>("ephemeral_x25519_pubkey")?;
    let ciphertext = case.hex("ciphertext")?;
    if x25519_base(&node_secret) != node_public {
        return Err("node_x25519_pubkey does not match node_x25519_secret".into());
    }

    let key = HopKey::for_node(enc, &node_secret, &node_public, &client_public).or_fail("derive key")?;
    case.check_hex("key", key.as_bytes())?;
    let plaintext = key.decrypt(&ciphertext).or_fail("decrypt")?;
    case.check_hex("plaintext", &plaintext)?;

    // also: encrypt again from a fresh client key and decrypt as the node.
    let mut rng = rng_for(case);
    let fresh = LayerSecrets::random(&mut rng);
    let fresh_public = x25519_base(&fresh.ephemeral_secret);
    let client = HopKey::for_client(enc, &fresh.ephemeral_secret, &fresh_public, &node_public)
        .or_fail("client key")?;
    let again = client.encrypt_with_nonce(&fresh.nonce, &plaintext);
    let node = HopKey::for_node(enc, &node_secret, &node_public, &fresh_public).or_fail("node key")?;
    let opened = node.decrypt(&again).or_fail("decrypt re-encrypted")?;
    if opened != plaintext {
        return Err("re-encrypted plaintext differs".into());
    }
    Ok(())
}

fn hop_decrypt_reject(case: &Case<'_>) -> Result<(), String> {
    let enc = case.enc_type("enc_type")?;
    let node_secret = case.hex_n::<32>("node_x25519_secret")?;
    let node_public = case.hex_n::<32>("node_x25519_pubkey")?;
    let client_public = case.hex_n::<32>("ephemeral_x25519_pubkey")?;
    let ciphertext = case.hex("ciphertext")?;
    // Through the node's peel path, which is what an upstream node would do.
    let peeled = peel_layer(&node_secret, &node_public, &ciphertext, &client_public, enc);
    case.check_error(peeled.map(|_| ()), |e: &PeelError| match e {
        PeelError::DecryptionFailed => "decryption_failed",
        _ => "other",
    })?;
    // And the bare hop decryption.
    let key = HopKey::for_node(enc, &node_secret, &node_public, &client_public).or_fail("derive key")?;
    match key.decrypt(&ciphertext) {
        Err(HopError::DecryptionFailed) => Ok(()),
        other => Err(format!("HopKey::decrypt: expected DecryptionFailed, got {other:?}")),
    }
}

fn combined_payload_parse(case: &Case<'_>) -> Result<(), String> {
    let payload = case.hex("payload")?;
    let parsed = CombinedPayload::parse(&payload).or_fail("parse")?;
    case.check_hex("blob", parsed.blob)?;
    case.check_value("json", &Value::Object(parsed.json_object().or_fail("json")?))?;
    Ok(())
}

fn node_keys(object: &Map<String, Value>, what: &str) -> Result<NodeKeys, String> {
    let field = |name: &str| -> Result<[u8; 32], String> {
        let text = object.get(name).and_then(Value::as_str).or_fail(&format!("{what}.{name}"))?;
        hex_array::<32>(text).or_fail(&format!("{what}.{name}: hex:32"))
    };
    Ok(NodeKeys { ed25519: field("ed25519_pubkey")?, x25519: field("x25519_pubkey")? })
}

fn request_build(case: &Case<'_>) -> Result<(), String> {
    let enc = case.enc_type("enc_type")?;
    let request_body = case.str("request_body")?;
    let path = case
        .list_object("path")?
        .into_iter()
        .enumerate()
        .map(|(i, o)| node_keys(o, &format!("path[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let destination = node_keys(case.object("destination")?, "destination")?;
    let secrets = case.list_hex_n::<32>("ephemeral_x25519_secrets")?;
    let nonces = case.list_hex("nonces")?;
    if secrets.len() != nonces.len() {
        return Err("secrets and nonces differ in length".into());
    }
    let layer_secrets = secrets
        .iter()
        .zip(&nonces)
        .map(|(secret, nonce)| {
            if nonce.len() != enc.nonce_len() {
                return Err(format!("nonce: expected {} bytes", enc.nonce_len()));
            }
            let mut padded = [0u8; 24];
            padded[..nonce.len()].copy_from_slice(nonce);
            Ok(LayerSecrets::new(*secret, padded))
        })
        .collect::<Result<Vec<_>, String>>()?;

    let spec = RequestSpec {
        enc_type: enc,
        path: &path,
        destination: Destination::Snode {
            node: destination,
            body: request_body.as_bytes(),
            options: FinalOptions::default(),
        },
        hop_no: None,
    };
    let (request, layers) = build_request_traced(&spec, &layer_secrets).or_fail("build")?;
    let publics: Vec<Vec<u8>> = layers.iter().map(|l| l.ephemeral_public.to_vec()).collect();
    let plaintexts: Vec<Vec<u8>> = layers.iter().map(|l| l.plaintext.clone()).collect();
    let ciphertexts: Vec<Vec<u8>> = layers.iter().map(|l| l.ciphertext.clone()).collect();
    case.check_list_hex("ephemeral_x25519_pubkeys", &publics)?;
    case.check_list_hex("layer_plaintexts", &plaintexts)?;
    case.check_list_hex("layer_ciphertexts", &ciphertexts)?;
    case.check_hex("request", &request.body)?;
    if request.response.ephemeral_public() != &layers[0].ephemeral_public {
        return Err("response context does not hold the innermost ephemeral key".into());
    }

    // also: every node whose X25519 secret is known peels its layer. Layer i (innermost first)
    // belongs to the destination (i = 0) or to path[n - i].
    let known =
        |node: &NodeKeys| case.ctx.x25519_secrets.iter().find(|s| x25519_base(s) == node.x25519).copied();
    let n = path.len();
    for (i, layer) in layers.iter().enumerate() {
        let node = if i == 0 { destination } else { path[n - i] };
        let Some(secret) = known(&node) else { continue };
        let peeled = if i == n {
            // The guard receives the whole request body.
            peel_request(&secret, &node.x25519, &request.body).or_fail("guard peel")?
        } else {
            peel_layer(&secret, &node.x25519, &layer.ciphertext, &layer.ephemeral_public, enc)
                .or_fail(&format!("layer {i} peel"))?
        };
        if peeled.plaintext() != layer.plaintext {
            return Err(format!("layer {i}: peeled plaintext differs"));
        }
        match peeled.route().or_fail(&format!("layer {i} route"))? {
            Route::Final(fin) if i == 0 => {
                if fin.body != request_body.as_bytes() || fin.headers != &Value::String(String::new()) {
                    return Err("destination: wrong final request".into());
                }
                if fin.json || !fin.base64 {
                    return Err("destination: wrong flags".into());
                }
            }
            Route::Relay(relay) if i > 0 => {
                let next = if i == 1 { destination } else { path[n - i + 1] };
                if relay.next_node != next.ed25519
                    || relay.ciphertext != layers[i - 1].ciphertext
                    || relay.ephemeral_key != layers[i - 1].ephemeral_public
                    || relay.enc_type != enc
                {
                    return Err(format!("layer {i}: wrong relay"));
                }
            }
            other => return Err(format!("layer {i}: unexpected route {other:?}")),
        }
    }
    Ok(())
}

fn response_decrypt(case: &Case<'_>) -> Result<(), String> {
    let enc = case.enc_type("enc_type")?;
    let secret = case.hex_n::<32>("client_x25519_secret")?;
    let public = case.hex_n::<32>("client_x25519_pubkey")?;
    let destination = case.hex_n::<32>("destination_x25519_pubkey")?;
    let body = case.str("response_b64")?;
    let ctx = ResponseContext::new(enc, &secret, &public, &destination, DestinationKind::Snode)
        .or_fail("response context")?;
    let plaintext = ctx.decrypt_body(body.as_bytes()).or_fail("decrypt")?;
    let text = String::from_utf8(plaintext).or_fail("utf-8")?;
    case.check_str("plaintext", &text)
}

fn v4_parse(case: &Case<'_>) -> Result<(), String> {
    let encoded = case.hex("encoded")?;
    let parsed = parse_v4(&encoded).or_fail("parse")?;
    case.check_value("json", &Value::Object(parsed.json_object().or_fail("json")?))?;
    case.check_opt_hex("body", parsed.body)
}
