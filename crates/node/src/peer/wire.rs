//! Bodies of the channel's bulk message transfer (`docs/node-channel.md` §5.3).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use session_protocol::message_hash::{MessageHash, Namespace};

use crate::AccountKey;
use crate::store::StoredMessage;

/// `POST /node/v1/messages` request: `{"messages": [WireMessage, ...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The messages.
    pub messages: Vec<WireMessage>,
}

/// One message in transit between nodes, namespace included (upstream's transfer drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// The account, 66 hex digits (prefix byte + key).
    pub account: String,
    /// The namespace.
    pub namespace: i16,
    /// The message hash, 43 characters of unpadded base64.
    pub hash: String,
    /// The sender's timestamp, ms.
    pub timestamp: i64,
    /// The expiry, ms.
    pub expiry: i64,
    /// The data, standard padded base64.
    pub data: String,
}

/// `POST /node/v1/messages` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesReply {
    /// Messages in the request.
    pub received: usize,
    /// Messages that were not stored before.
    pub inserted: usize,
    /// Messages refused (malformed, hash mismatch, already expired).
    pub rejected: usize,
    /// Accepted messages whose accounts belong to the receiver's own swarm in its node list: the
    /// receiver takes responsibility for these. A sender handing messages off deletes its copy
    /// only when all of them are owned (`docs/node-channel.md` §7). Absent (older receivers) is 0.
    #[serde(default)]
    pub owned: usize,
}

/// `POST /node/v1/digest` request: the caller's non-empty bucket digests for `swarm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    /// The swarm both nodes are in, lowercase hex without `0x`.
    pub swarm: String,
    /// The caller's non-empty buckets; a bucket not listed is empty.
    pub buckets: Vec<WireBucket>,
}

/// One bucket digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBucket {
    /// The bucket, 0–255.
    pub bucket: u8,
    /// Live messages in the bucket.
    pub count: u64,
    /// BLAKE2b-256 of the bucket, 64 hex digits.
    pub digest: String,
}

/// `POST /node/v1/digest` reply: the buckets whose content differs, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestReply {
    /// Buckets where the responder's count or digest differs from the caller's.
    pub differ: Vec<u8>,
}

/// `POST /node/v1/accounts` request: which buckets to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsRequest {
    /// The swarm, as in [`DigestRequest`].
    pub swarm: String,
    /// Buckets to list (at most 256).
    pub buckets: Vec<u8>,
}

/// `POST /node/v1/accounts` reply: the responder's account digests in those buckets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsReply {
    /// Accounts with live messages, in account byte order.
    pub accounts: Vec<WireAccountDigest>,
}

/// One account digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAccountDigest {
    /// The account, 66 hex digits.
    pub account: String,
    /// Live messages.
    pub count: u64,
    /// BLAKE2b-256 over the sorted message hashes, 64 hex digits.
    pub digest: String,
}

/// `POST /node/v1/fetch` request: the accounts to fetch and the hashes the caller does not
/// want (it has them, or their owner deleted them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The swarm, as in [`DigestRequest`].
    pub swarm: String,
    /// The accounts, in the order they are to be served.
    pub accounts: Vec<FetchAccount>,
}

/// One account of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchAccount {
    /// The account, 66 hex digits.
    pub account: String,
    /// Hashes not to send.
    pub have: Vec<String>,
}

/// `POST /node/v1/fetch` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct FetchReply {
    /// Messages the caller lacks, in request account order.
    pub messages: Vec<WireMessage>,
    /// True when the size budget cut the reply short: ask again.
    pub more: bool,
}

/// The body of a `/node/v1/messages` request carrying `messages`.
pub fn encode_messages<'a>(
    messages: impl IntoIterator<Item = (&'a AccountKey, &'a StoredMessage)>,
) -> Vec<u8> {
    let messages =
        messages.into_iter().map(|(account, message)| WireMessage::encode(account, message)).collect();
    serde_json::to_vec(&MessagesRequest { messages }).expect("strings and integers serialize")
}

/// Why a transferred message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The account is not 66 hex digits.
    #[error("invalid account")]
    Account,
    /// The hash is not a message hash.
    #[error("invalid message hash")]
    Hash,
    /// The data is not base64.
    #[error("invalid message data")]
    Data,
    /// The hash does not match account, namespace and data (network §3.2).
    #[error("message hash does not match its content")]
    HashMismatch,
}

impl WireMessage {
    /// Encodes a stored message.
    pub fn encode(account: &AccountKey, message: &StoredMessage) -> Self {
        Self {
            account: account.to_hex(),
            namespace: message.namespace.0,
            hash: message.hash.as_str().to_owned(),
            timestamp: message.timestamp_ms,
            expiry: message.expiry_ms,
            data: STANDARD.encode(&message.data),
        }
    }

    /// Decodes and checks one message: the hash must be the one of (account, namespace, data).
    pub fn decode(&self) -> Result<(AccountKey, StoredMessage), WireError> {
        let account: AccountKey = self.account.parse().map_err(|_| WireError::Account)?;
        let hash = MessageHash::from_ascii(self.hash.as_bytes()).map_err(|_| WireError::Hash)?;
        let data = STANDARD.decode(self.data.as_bytes()).map_err(|_| WireError::Data)?;
        let namespace = Namespace(self.namespace);
        if MessageHash::compute(account.as_bytes(), namespace, &data) != hash {
            return Err(WireError::HashMismatch);
        }
        let message =
            StoredMessage { hash, namespace, timestamp_ms: self.timestamp, expiry_ms: self.expiry, data };
        Ok((account, message))
    }

    /// Rough encoded size in bytes, for splitting transfers into requests.
    pub fn estimated_len(message: &StoredMessage) -> usize {
        200 + message.data.len().div_ceil(3) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let account: AccountKey = format!("03{}", "ab".repeat(32)).parse().unwrap();
        let namespace = Namespace(-11);
        let data = b"hello".to_vec();
        let hash = MessageHash::compute(account.as_bytes(), namespace, &data);
        let message = StoredMessage { hash, namespace, timestamp_ms: 5, expiry_ms: 9, data };
        let wire = WireMessage::encode(&account, &message);
        assert_eq!(wire.decode().unwrap(), (account, message));
        let mut bad = wire.clone();
        bad.namespace = 0;
        assert_eq!(bad.decode(), Err(WireError::HashMismatch));
        let mut bad = wire.clone();
        bad.data = "!!".into();
        assert_eq!(bad.decode(), Err(WireError::Data));
        let mut bad = wire.clone();
        bad.account = "05".into();
        assert_eq!(bad.decode(), Err(WireError::Account));
        let mut bad = wire;
        bad.hash = "x".into();
        assert_eq!(bad.decode(), Err(WireError::Hash));
    }
}
