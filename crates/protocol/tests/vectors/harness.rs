#![allow(dead_code)] // helpers used by some kinds only
//! The vector runner's bookkeeping: typed access to `inputs`, comparison against `expected`, and
//! the contract's rule that every field is used exactly as listed (README "Runner contract").

use std::cell::RefCell;
use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Map, Value};
use session_protocol::onion::EncType;
use session_protocol::{IdentityKey, SessionId};

/// A handler checks one entry; `Err` carries the reason it failed.
pub type Handler = fn(&Case<'_>) -> Result<(), String>;

/// Keys and secrets seen anywhere in the vector files, for the "also" checks.
#[derive(Debug, Default)]
pub struct Context {
    /// Every 32-byte Ed25519 seed named in any input (`*seed`, first half of `*secret_key`).
    pub ed25519_seeds: Vec<[u8; 32]>,
    /// Every X25519 secret named in any input (`*x25519_secret*`).
    pub x25519_secrets: Vec<[u8; 32]>,
}

impl Context {
    /// Collects seeds and secrets from all entries.
    pub fn collect(entries: &[Value]) -> Self {
        let mut ctx = Self::default();
        for entry in entries {
            if let Some(inputs) = entry.get("inputs").and_then(Value::as_object) {
                for (name, value) in inputs {
                    let texts: Vec<&str> = match value {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                        _ => vec![],
                    };
                    for text in texts {
                        let Ok(bytes) = hex::decode(text) else { continue };
                        if name.ends_with("seed") && bytes.len() == 32 {
                            ctx.ed25519_seeds.push(bytes[..].try_into().unwrap());
                        } else if name.ends_with("secret_key") && bytes.len() == 64 {
                            ctx.ed25519_seeds.push(bytes[..32].try_into().unwrap());
                        } else if name.contains("x25519_secret") && bytes.len() == 32 {
                            ctx.x25519_secrets.push(bytes[..].try_into().unwrap());
                        }
                    }
                }
            }
        }
        ctx.ed25519_seeds.sort();
        ctx.ed25519_seeds.dedup();
        ctx.x25519_secrets.sort();
        ctx.x25519_secrets.dedup();
        ctx
    }

    /// The account whose Session ID is `id`, if its seed appears in any vector.
    pub fn known_account(&self, id: &SessionId) -> Option<IdentityKey> {
        self.ed25519_seeds.iter().map(IdentityKey::from_seed_bytes).find(|key| key.session_id() == *id)
    }
}

/// One entry under test.
#[derive(Debug)]
pub struct Case<'a> {
    pub name: &'a str,
    pub ctx: &'a Context,
    inputs: &'a Map<String, Value>,
    expected: &'a Map<String, Value>,
    used: RefCell<BTreeSet<String>>,
    checked: RefCell<BTreeSet<String>>,
}

fn decode_hex(field: &str, value: &Value) -> Result<Vec<u8>, String> {
    let text = value.as_str().ok_or_else(|| format!("{field}: not a string"))?;
    hex::decode(text).map_err(|e| format!("{field}: bad hex: {e}"))
}

impl<'a> Case<'a> {
    pub fn new(
        name: &'a str,
        ctx: &'a Context,
        inputs: &'a Map<String, Value>,
        expected: &'a Map<String, Value>,
    ) -> Self {
        Self { name, ctx, inputs, expected, used: RefCell::default(), checked: RefCell::default() }
    }

    /// After the handler ran: every input used, every expected field checked, nothing else.
    pub fn finish(&self) -> Result<(), String> {
        let unused: Vec<_> = self.inputs.keys().filter(|k| !self.used.borrow().contains(*k)).collect();
        let unchecked: Vec<_> =
            self.expected.keys().filter(|k| !self.checked.borrow().contains(*k)).collect();
        if !unused.is_empty() || !unchecked.is_empty() {
            return Err(format!(
                "fields not covered by the runner: inputs {unused:?}, expected {unchecked:?}"
            ));
        }
        Ok(())
    }

    // ---- inputs ----

    pub fn input(&self, field: &str) -> Result<&'a Value, String> {
        self.used.borrow_mut().insert(field.to_owned());
        self.inputs.get(field).ok_or_else(|| format!("missing input {field}"))
    }

    pub fn has_input(&self, field: &str) -> bool {
        self.inputs.contains_key(field)
    }

    pub fn hex(&self, field: &str) -> Result<Vec<u8>, String> {
        decode_hex(field, self.input(field)?)
    }

    pub fn hex_n<const N: usize>(&self, field: &str) -> Result<[u8; N], String> {
        let bytes = self.hex(field)?;
        bytes.try_into().map_err(|b: Vec<u8>| format!("{field}: expected {N} bytes, got {}", b.len()))
    }

    /// `hex|null`.
    pub fn opt_hex(&self, field: &str) -> Result<Option<Vec<u8>>, String> {
        match self.input(field)? {
            Value::Null => Ok(None),
            v => decode_hex(field, v).map(Some),
        }
    }

    pub fn list_hex(&self, field: &str) -> Result<Vec<Vec<u8>>, String> {
        let list = self.input(field)?.as_array().ok_or_else(|| format!("{field}: not a list"))?;
        list.iter().map(|v| decode_hex(field, v)).collect()
    }

    /// A list of hex strings of exactly `N` bytes each.
    pub fn list_hex_n<const N: usize>(&self, field: &str) -> Result<Vec<[u8; N]>, String> {
        self.list_hex(field)?
            .into_iter()
            .map(|b| {
                b.try_into().map_err(|b: Vec<u8>| format!("{field}: expected {N} bytes, got {}", b.len()))
            })
            .collect()
    }

    /// The identity of a 32-byte Ed25519 seed given in hex.
    pub fn identity(&self, field: &str) -> Result<IdentityKey, String> {
        Ok(IdentityKey::from_seed_bytes(&self.hex_n::<32>(field)?))
    }

    /// An onion `enc_type` name.
    pub fn enc_type(&self, field: &str) -> Result<EncType, String> {
        EncType::parse(self.str(field)?).or_fail(field)
    }

    pub fn str(&self, field: &str) -> Result<&'a str, String> {
        self.input(field)?.as_str().ok_or_else(|| format!("{field}: not a string"))
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, String> {
        match self.input(field)? {
            Value::Null => Ok(None),
            v => v.as_str().map(Some).ok_or_else(|| format!("{field}: not a string")),
        }
    }

    pub fn int(&self, field: &str) -> Result<i64, String> {
        self.input(field)?.as_i64().ok_or_else(|| format!("{field}: not an integer"))
    }

    pub fn list_int(&self, field: &str) -> Result<Vec<i64>, String> {
        let list = self.input(field)?.as_array().ok_or_else(|| format!("{field}: not a list"))?;
        list.iter().map(|v| v.as_i64().ok_or_else(|| format!("{field}: not an integer"))).collect()
    }

    /// `u64` as a decimal string.
    pub fn u64(&self, field: &str) -> Result<u64, String> {
        parse_u64(field, self.input(field)?)
    }

    pub fn list_u64(&self, field: &str) -> Result<Vec<u64>, String> {
        let list = self.input(field)?.as_array().ok_or_else(|| format!("{field}: not a list"))?;
        list.iter().map(|v| parse_u64(field, v)).collect()
    }

    pub fn bool(&self, field: &str) -> Result<bool, String> {
        self.input(field)?.as_bool().ok_or_else(|| format!("{field}: not a bool"))
    }

    pub fn b64(&self, field: &str) -> Result<Vec<u8>, String> {
        let text = self.str(field)?;
        STANDARD.decode(text).map_err(|e| format!("{field}: bad base64: {e}"))
    }

    pub fn object(&self, field: &str) -> Result<&'a Map<String, Value>, String> {
        self.input(field)?.as_object().ok_or_else(|| format!("{field}: not an object"))
    }

    pub fn list_object(&self, field: &str) -> Result<Vec<&'a Map<String, Value>>, String> {
        let list = self.input(field)?.as_array().ok_or_else(|| format!("{field}: not a list"))?;
        list.iter().map(|v| v.as_object().ok_or_else(|| format!("{field}: not an object"))).collect()
    }

    // ---- expected ----

    /// The raw expected value (marks the field checked; the caller compares).
    pub fn expected(&self, field: &str) -> Result<&'a Value, String> {
        self.checked.borrow_mut().insert(field.to_owned());
        self.expected.get(field).ok_or_else(|| format!("missing expected {field}"))
    }

    pub fn check_hex(&self, field: &str, actual: &[u8]) -> Result<(), String> {
        let want = decode_hex(field, self.expected(field)?)?;
        if want != actual {
            return Err(format!("{field}: expected {}, got {}", hex::encode(&want), hex::encode(actual)));
        }
        Ok(())
    }

    pub fn check_opt_hex(&self, field: &str, actual: Option<&[u8]>) -> Result<(), String> {
        match (self.expected(field)?, actual) {
            (Value::Null, None) => Ok(()),
            (Value::Null, Some(a)) => Err(format!("{field}: expected null, got {}", hex::encode(a))),
            (_, None) => Err(format!("{field}: expected bytes, got null")),
            (_, Some(a)) => self.check_hex(field, a),
        }
    }

    pub fn check_list_hex(&self, field: &str, actual: &[Vec<u8>]) -> Result<(), String> {
        let want = self.expected(field)?.as_array().ok_or_else(|| format!("{field}: not a list"))?;
        let want: Vec<Vec<u8>> = want.iter().map(|v| decode_hex(field, v)).collect::<Result<_, _>>()?;
        if want.len() != actual.len() {
            return Err(format!("{field}: expected {} items, got {}", want.len(), actual.len()));
        }
        for (i, (w, a)) in want.iter().zip(actual).enumerate() {
            if w != a {
                return Err(format!("{field}[{i}]: expected {}, got {}", hex::encode(w), hex::encode(a)));
            }
        }
        Ok(())
    }

    pub fn check_value(&self, field: &str, actual: &Value) -> Result<(), String> {
        let want = self.expected(field)?;
        if want != actual {
            return Err(format!("{field}: expected {want}, got {actual}"));
        }
        Ok(())
    }

    pub fn check_str(&self, field: &str, actual: &str) -> Result<(), String> {
        self.check_value(field, &Value::String(actual.to_owned()))
    }

    pub fn check_int(&self, field: &str, actual: i64) -> Result<(), String> {
        self.check_value(field, &Value::from(actual))
    }

    pub fn check_u64(&self, field: &str, actual: u64) -> Result<(), String> {
        let want = parse_u64(field, self.expected(field)?)?;
        if want != actual {
            return Err(format!("{field}: expected {want}, got {actual}"));
        }
        Ok(())
    }

    pub fn check_b64(&self, field: &str, actual: &[u8]) -> Result<(), String> {
        self.check_str(field, &STANDARD.encode(actual))
    }

    pub fn check_b64u(&self, field: &str, actual: &[u8]) -> Result<(), String> {
        self.check_str(field, &STANDARD_NO_PAD.encode(actual))
    }

    /// Error kinds: `expected = {"error": class}`.
    pub fn check_error<T, E: std::fmt::Debug>(
        &self,
        result: Result<T, E>,
        class_of: impl Fn(&E) -> &'static str,
    ) -> Result<(), String> {
        let want = self.expected("error")?.as_str().ok_or("error: not a string")?.to_owned();
        match result {
            Ok(_) => Err(format!("expected error {want}, but the operation succeeded")),
            Err(e) if class_of(&e) == want => Ok(()),
            Err(e) => Err(format!("expected error {want}, got {e:?} ({})", class_of(&e))),
        }
    }
}

fn parse_u64(field: &str, value: &Value) -> Result<u64, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{field}: u64 must be a decimal string"))?
        .parse()
        .map_err(|e| format!("{field}: bad u64: {e}"))
}

/// Shorthand for turning library errors into runner failures.
pub trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Debug> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e:?}"))
    }
}

impl<T> OrFail<T> for Option<T> {
    fn or_fail(self, what: &str) -> Result<T, String> {
        self.ok_or_else(|| format!("{what}: none"))
    }
}
