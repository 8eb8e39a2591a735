//! Account keys (crypto §1.1–§1.3, network §1.1): seed → keys → Session ID, the group id, and
//! the Ed25519 ↔ X25519 conversions.
use session_protocol::keys::{ed25519_seed_to_x25519_secret, ed25519_to_x25519, xed25519_public};
use session_protocol::{IdPrefix, IdentityKey, SessionId};

use crate::harness::{Case, Handler, OrFail};

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![
        ("account_keys_from_seed", account_keys_from_seed),
        ("group_v2_id_from_seed", group_v2_id_from_seed),
        ("xed25519_pubkey", xed25519_pubkey),
        ("ed25519_to_x25519", ed25519_to_x25519_case),
        ("ed25519_seed_to_x25519_secret", ed25519_seed_to_x25519_secret_case),
    ]
}

fn account_keys_from_seed(case: &Case<'_>) -> Result<(), String> {
    let key = case.identity("ed25519_seed")?;
    case.check_hex("ed25519_pubkey", &key.ed25519_public())?;
    case.check_hex("ed25519_secret_key", key.secret_key_bytes().as_slice())?;
    case.check_hex("x25519_secret", key.x25519_secret())?;
    case.check_hex("x25519_pubkey", key.x25519_public())?;
    case.check_hex("session_id", &key.session_id().to_bytes())?;
    // Also: X(pubkey) equals X25519-base(a(sk)), and the 64-byte key restores the same identity.
    let converted = ed25519_to_x25519(&key.ed25519_public()).or_fail("ed25519_to_x25519")?;
    if converted != *key.x25519_public() {
        return Err("X(pubkey) differs from X25519-base(a(sk))".into());
    }
    let again = IdentityKey::from_secret_key(&key.secret_key_bytes()).or_fail("from_secret_key")?;
    if again.session_id() != key.session_id() {
        return Err("restoring from the 64-byte secret key gives another Session ID".into());
    }
    Ok(())
}

fn group_v2_id_from_seed(case: &Case<'_>) -> Result<(), String> {
    let key = case.identity("group_ed25519_seed")?;
    let pubkey = key.ed25519_public();
    case.check_hex("group_ed25519_pubkey", &pubkey)?;
    let id = SessionId::new(IdPrefix::Group, pubkey);
    case.check_hex("group_id", &id.to_bytes())?;
    // Also: the hex form parses back with the group prefix.
    let parsed = SessionId::parse_with_prefix(&id.to_hex(), IdPrefix::Group).or_fail("parse group id")?;
    if parsed != id {
        return Err("group id does not round-trip through hex".into());
    }
    Ok(())
}

fn xed25519_pubkey(case: &Case<'_>) -> Result<(), String> {
    let key =
        IdentityKey::from_secret_key(&case.hex_n::<64>("ed25519_secret_key")?).or_fail("from_secret_key")?;
    let real = key.ed25519_public();
    case.check_hex("ed25519_pubkey", &real)?;
    let x25519 = ed25519_to_x25519(&real).or_fail("ed25519_to_x25519")?;
    case.check_hex("x25519_pubkey", &x25519)?;
    let positive = xed25519_public(&x25519).or_fail("xed25519_public")?;
    case.check_hex("xed25519_pubkey", &positive)?;
    // Also: the positive key is the real key with bit 255 cleared.
    let mut cleared = real;
    cleared[31] &= 0x7f;
    if positive != cleared {
        return Err("xed25519 key is not the real key with the sign bit cleared".into());
    }
    Ok(())
}

fn ed25519_to_x25519_case(case: &Case<'_>) -> Result<(), String> {
    let pubkey = case.hex_n::<32>("ed25519_pubkey")?;
    let x25519 = ed25519_to_x25519(&pubkey).or_fail("ed25519_to_x25519")?;
    case.check_hex("x25519_pubkey", &x25519)?;
    // Also: if the key's seed appears in any vector, its identity has this X25519 key.
    for seed in &case.ctx.ed25519_seeds {
        let key = IdentityKey::from_seed_bytes(seed);
        if key.ed25519_public() == pubkey && *key.x25519_public() != x25519 {
            return Err("X25519-base(a(seed)) differs from X(pubkey)".into());
        }
    }
    Ok(())
}

fn ed25519_seed_to_x25519_secret_case(case: &Case<'_>) -> Result<(), String> {
    let seed = case.hex_n::<32>("ed25519_seed")?;
    let secret = ed25519_seed_to_x25519_secret(&seed);
    case.check_hex("x25519_secret", secret.as_slice())?;
    // Also: the identity key computes the same secret.
    if IdentityKey::from_seed_bytes(&seed).x25519_secret() != &*secret {
        return Err("IdentityKey::x25519_secret disagrees".into());
    }
    Ok(())
}
