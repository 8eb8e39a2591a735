//! Bodies of `POST /register` and `POST /heartbeat` and the strings nodes sign
//! (`docs/registry.md` §2, §3). Nodes use these to talk to the registry.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use session_protocol::IdentityKey;

/// `POST /register` body. The text fields are signed exactly as they appear in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Ed25519 key, 64 hex digits.
    pub pubkey_ed25519: String,
    /// Its X25519 form, 64 hex digits.
    pub pubkey_x25519: String,
    /// Public IPv4 address, dotted.
    pub public_ip: String,
    /// HTTP(S) storage port.
    pub storage_port: u16,
    /// OMQ/QUIC port, 0 for none.
    pub storage_lmq_port: u16,
    /// Whether the node serves HTTPS.
    pub tls: bool,
    /// Version `[a, b, c]`.
    pub version: [u16; 3],
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Ed25519 signature of [`RegisterRequest::signed_text`], 128 hex digits.
    pub signature: String,
}

impl RegisterRequest {
    /// A registration signed by `key`.
    pub fn new_signed(
        key: &IdentityKey,
        public_ip: Ipv4Addr,
        storage_port: u16,
        storage_lmq_port: u16,
        tls: bool,
        version: [u16; 3],
        timestamp: u64,
    ) -> Self {
        let mut req = Self {
            pubkey_ed25519: hex::encode(key.ed25519_public()),
            pubkey_x25519: hex::encode(key.x25519_public()),
            public_ip: public_ip.to_string(),
            storage_port,
            storage_lmq_port,
            tls,
            version,
            timestamp,
            signature: String::new(),
        };
        req.signature = hex::encode(key.sign(req.signed_text().as_bytes()));
        req
    }

    /// `session-registry/register\n<ed>\n<x>\n<ip>\n<port>\n<lmq port>\n<0|1>\n<a>.<b>.<c>\n<timestamp>`.
    pub fn signed_text(&self) -> String {
        let [a, b, c] = self.version;
        format!(
            "session-registry/register\n{}\n{}\n{}\n{}\n{}\n{}\n{a}.{b}.{c}\n{}",
            self.pubkey_ed25519,
            self.pubkey_x25519,
            self.public_ip,
            self.storage_port,
            self.storage_lmq_port,
            u8::from(self.tls),
            self.timestamp
        )
    }
}

/// `POST /heartbeat` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Ed25519 key, 64 hex digits.
    pub pubkey_ed25519: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Ed25519 signature of [`HeartbeatRequest::signed_text`], 128 hex digits.
    pub signature: String,
}

impl HeartbeatRequest {
    /// A heartbeat signed by `key`.
    pub fn new_signed(key: &IdentityKey, timestamp: u64) -> Self {
        let mut req =
            Self { pubkey_ed25519: hex::encode(key.ed25519_public()), timestamp, signature: String::new() };
        req.signature = hex::encode(key.sign(req.signed_text().as_bytes()));
        req
    }

    /// `session-registry/heartbeat\n<ed>\n<timestamp>`.
    pub fn signed_text(&self) -> String {
        format!("session-registry/heartbeat\n{}\n{}", self.pubkey_ed25519, self.timestamp)
    }
}

/// Reply of both endpoints: the node's status (`active`, `pending`, `decommissioned`, or
/// `unknown` for a heartbeat from a node that must register again) and the chain height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// The node's status.
    pub status: String,
    /// Current epoch height.
    pub height: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_texts_match_the_doc() {
        let key = IdentityKey::from_seed_bytes(&[1; 32]);
        let req =
            RegisterRequest::new_signed(&key, Ipv4Addr::new(127, 0, 0, 2), 22021, 0, false, [0, 1, 0], 17);
        let ed = hex::encode(key.ed25519_public());
        let x = hex::encode(key.x25519_public());
        assert_eq!(
            req.signed_text(),
            format!("session-registry/register\n{ed}\n{x}\n127.0.0.2\n22021\n0\n0\n0.1.0\n17")
        );
        let sig = hex::decode(&req.signature).unwrap();
        assert!(session_protocol::keys::verify_ed25519(
            &key.ed25519_public(),
            req.signed_text().as_bytes(),
            &sig
        ));
        let hb = HeartbeatRequest::new_signed(&key, 99);
        assert_eq!(hb.signed_text(), format!("session-registry/heartbeat\n{ed}\n99"));
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["tls"], false);
        assert_eq!(json["version"], serde_json::json!([0, 1, 0]));
    }
}
