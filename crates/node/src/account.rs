//! The account a message belongs to: 33 bytes, prefix byte plus key (network §1.2). Unlike
//! `SessionId`, any prefix is accepted here: the storage server treats unknown prefixes as
//! Ed25519 keys.

use std::fmt;
use std::str::FromStr;

/// A storage account pubkey: `prefix || key32`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey([u8; 33]);

/// The account pubkey is not 66 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pubkey must be 66 hex characters")]
pub struct InvalidAccountKey;

impl AccountKey {
    /// From 33 raw bytes.
    pub fn from_bytes(bytes: [u8; 33]) -> Self {
        Self(bytes)
    }

    /// The 33 bytes.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// The prefix byte (`05`, `03`, …).
    pub fn prefix(&self) -> u8 {
        self.0[0]
    }

    /// The 32 key bytes after the prefix.
    pub fn key(&self) -> &[u8; 32] {
        self.0[1..].try_into().expect("33 - 1 = 32")
    }

    /// The 66-character hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A shortened form for logs: `05ab12…ef34`. Never log the full key.
    pub fn short(&self) -> String {
        let hex = self.to_hex();
        format!("{}…{}", &hex[..6], &hex[62..])
    }
}

impl FromStr for AccountKey {
    type Err = InvalidAccountKey;

    fn from_str(text: &str) -> Result<Self, InvalidAccountKey> {
        let mut bytes = [0u8; 33];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| InvalidAccountKey)?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let text = format!("03{}", "cd".repeat(32));
        let key: AccountKey = text.parse().unwrap();
        assert_eq!(key.prefix(), 3);
        assert_eq!(key.to_hex(), text);
        assert!("03cd".parse::<AccountKey>().is_err());
        assert!(format!("zz{}", "cd".repeat(32)).parse::<AccountKey>().is_err());
    }
}
