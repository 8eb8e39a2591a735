//! Runs the real `session` binary and checks what a person would see, against values from the
//! independent test vectors in `crates/protocol/vectors/`.

use std::process::{Command, Output};

use serde_json::Value;

fn session(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_session")).args(args).output().expect("run the session binary")
}

/// Runs with `--json`, requires success and returns the printed object.
fn session_json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = session(&all);
    assert!(out.status.success(), "session {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn field(value: &Value, name: &str) -> String {
    value[name].as_str().unwrap_or_else(|| panic!("no string field {name} in {value}")).to_owned()
}

fn vector(file: &str, name: &str) -> Value {
    let path = format!("{}/../protocol/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("JSON");
    doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["name"] == name)
        .expect("vector entry")
        .clone()
}

#[test]
fn keygen_from_seed_matches_vectors() {
    let v = vector("crypto.json", "mnemonic_to_account_A");
    let seed = field(&v["expected"], "data");
    let out = session_json(&["tool", "keygen", "--seed", &seed]);
    assert_eq!(field(&out, "session_id"), field(&v["expected"], "session_id"));
    assert_eq!(field(&out, "recovery_phrase"), field(&v["inputs"], "phrase"));
    assert_eq!(field(&out, "seed"), seed);

    let keys = vector("crypto.json", "account_keys_seed32_member4");
    let seed32 = field(&keys["inputs"], "ed25519_seed");
    let out = session_json(&["tool", "keygen", "--seed", &seed32]);
    assert_eq!(field(&out, "ed25519_pubkey"), field(&keys["expected"], "ed25519_pubkey"));
    assert_eq!(field(&out, "x25519_pubkey"), field(&keys["expected"], "x25519_pubkey"));
    assert_eq!(field(&out, "recovery_phrase").split(' ').count(), 25);
}

#[test]
fn keygen_without_seed_is_fresh_and_restorable() {
    let a = session_json(&["tool", "keygen"]);
    let b = session_json(&["tool", "keygen"]);
    assert_ne!(field(&a, "session_id"), field(&b, "session_id"));
    let decoded = session_json(&["tool", "mnemonic", "decode", &field(&a, "recovery_phrase")]);
    assert_eq!(field(&decoded, "hex"), field(&a, "seed"));
}

#[test]
fn mnemonic_encode_and_decode() {
    let v = vector("crypto.json", "mnemonic_to_account_25words");
    let data = field(&v["expected"], "data");
    let phrase = field(&v["inputs"], "phrase");
    assert_eq!(field(&session_json(&["tool", "mnemonic", "encode", &data]), "words"), phrase);
    // Prefixes and upper case are accepted, as in the upstream clients.
    let shouted: String = phrase.split(' ').map(|w| w[..3].to_uppercase()).collect::<Vec<_>>().join(" ");
    assert_eq!(field(&session_json(&["tool", "mnemonic", "decode", &shouted]), "hex"), data);
}

#[test]
fn encrypt_then_decrypt_between_two_accounts() {
    let alice = session_json(&["tool", "keygen"]);
    let bob = session_json(&["tool", "keygen"]);
    let sealed = session_json(&[
        "tool",
        "encrypt",
        "--seed",
        &field(&alice, "seed"),
        "--to",
        &field(&bob, "session_id"),
        "--message",
        "meet at noon",
    ]);
    let ciphertext = field(&sealed, "ciphertext_hex");
    assert_eq!(ciphertext.len() / 2, "meet at noon".len() + 144);
    let opened =
        session_json(&["tool", "decrypt", "--seed", &field(&bob, "seed"), "--ciphertext-hex", &ciphertext]);
    assert_eq!(field(&opened, "sender"), field(&alice, "session_id"));
    assert_eq!(field(&opened, "message_hex"), hex::encode("meet at noon"));

    // Alice cannot open what she sealed for Bob.
    let out =
        session(&["tool", "decrypt", "--seed", &field(&alice, "seed"), "--ciphertext-hex", &ciphertext]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"));
}

#[test]
fn decrypt_frozen_vector_ciphertext() {
    let v = vector("crypto.json", "session_v1_decrypt_random_ephemeral");
    let out = session_json(&[
        "tool",
        "decrypt",
        "--seed",
        &field(&v["inputs"], "recipient_ed25519_seed"),
        "--ciphertext-hex",
        &field(&v["inputs"], "ciphertext"),
    ]);
    assert_eq!(field(&out, "sender"), field(&v["expected"], "sender_session_id"));
    assert_eq!(field(&out, "message_hex"), field(&v["expected"], "message"));
}

#[test]
fn blind_gives_ids_that_match_the_vectors() {
    // The blind*_sign vectors hold the secret key that owns the blind*_id vectors' Session ID.
    let owner = vector("crypto.json", "blind25_sign_1");
    let seed = field(&owner["inputs"], "ed25519_secret_key")[..64].to_owned();
    let id25 = vector("crypto.json", "blind25_id_1");
    let id15 = vector("crypto.json", "blind15_id_1");
    let server = field(&id25["inputs"], "server_pk");
    assert_eq!(server, field(&id15["inputs"], "server_pk"));

    let out = session_json(&["tool", "blind", "--seed", &seed, "--server-pubkey", &server]);
    assert_eq!(field(&out, "session_id"), field(&id25["inputs"], "session_id"));
    assert_eq!(field(&out, "blinded25_id"), field(&id25["expected"], "blinded_id"));
    let b15 = field(&out, "blinded15_id");
    assert!(
        b15 == field(&id15["expected"], "blinded_id")
            || b15 == field(&id15["expected"], "blinded_id_sign_flipped"),
        "15-blinded id {b15} is neither form in the vector"
    );
}

#[test]
fn hash_matches_vectors() {
    for name in ["message_hash_ns_0", "message_hash_ns_minus10", "message_hash_ns_2"] {
        let v = vector("network.json", name);
        let namespace = v["inputs"]["namespace"].as_i64().expect("namespace").to_string();
        let out = session_json(&[
            "tool",
            "hash",
            "--pubkey",
            &field(&v["inputs"], "pubkey"),
            "--namespace",
            &namespace,
            "--data-hex",
            &hex::encode("hello world"),
        ]);
        assert_eq!(field(&out, "hash"), field(&v["expected"], "hash"), "{name}");
    }
}

#[test]
fn errors_are_clear_and_fail() {
    let cases: [(&[&str], &str); 5] = [
        (&["tool", "keygen", "--seed", "abcd"], "seed must be 16 or 32 bytes"),
        (&["tool", "keygen", "--seed", "zz"], "not valid hex"),
        (&["tool", "mnemonic", "decode", "abbey abbey"], "3k or 3k+1 words"),
        (
            &[
                "tool",
                "encrypt",
                "--seed",
                "00112233445566778899aabbccddeeff",
                "--to",
                "05ab",
                "--message",
                "x",
            ],
            "Session ID",
        ),
        (&["tool", "hash", "--pubkey", "99", "--data-hex", "00"], "Session ID"),
    ];
    for (args, needle) in cases {
        let out = session(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: stderr {stderr:?} lacks {needle:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout on error");
    }
}
