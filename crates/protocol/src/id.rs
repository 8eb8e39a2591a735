//! Typed Session IDs (crypto §1.2): a one-byte prefix and 32 bytes of key material, written as
//! 66 lowercase hex characters.

use std::fmt;
use std::str::FromStr;

/// What the 32 bytes after the prefix are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IdPrefix {
    /// `05`: a standard account (X25519 public key), or a legacy closed group.
    Standard,
    /// `03`: a groups-v2 id (group Ed25519 public key).
    Group,
    /// `15`: community-blinded id, legacy blinding.
    Blinded15,
    /// `25`: community-blinded id, new blinding.
    Blinded25,
    /// `00`: unblinded SOGS id (the account's Ed25519 public key).
    Unblinded,
}

impl IdPrefix {
    /// The prefix byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Standard => 0x05,
            Self::Group => 0x03,
            Self::Blinded15 => 0x15,
            Self::Blinded25 => 0x25,
            Self::Unblinded => 0x00,
        }
    }

    /// The prefix for a byte, if it is one we know.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x05 => Self::Standard,
            0x03 => Self::Group,
            0x15 => Self::Blinded15,
            0x25 => Self::Blinded25,
            0x00 => Self::Unblinded,
            _ => return None,
        })
    }
}

/// A Session ID could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not 66 hex characters (33 bytes).
    #[error("a Session ID is 66 hex characters (33 bytes); got {0} characters")]
    Length(usize),
    /// Contains a character that is not hex.
    #[error("a Session ID must be hexadecimal")]
    Hex,
    /// The first byte is not a known prefix.
    #[error("unknown Session ID prefix {0:02x}")]
    Prefix(u8),
    /// The prefix is known but not allowed where this ID is used.
    #[error("a Session ID with prefix {0:02x} is not accepted here")]
    WrongPrefix(u8),
}

/// A Session ID: prefix plus 32 key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    prefix: IdPrefix,
    key: [u8; 32],
}

impl SessionId {
    /// Builds an id from its parts.
    pub fn new(prefix: IdPrefix, key: [u8; 32]) -> Self {
        Self { prefix, key }
    }

    /// Parses 33 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        if bytes.len() != 33 {
            return Err(IdError::Length(bytes.len() * 2));
        }
        let prefix = IdPrefix::from_byte(bytes[0]).ok_or(IdError::Prefix(bytes[0]))?;
        let key = bytes[1..].try_into().expect("33 - 1 = 32 bytes");
        Ok(Self { prefix, key })
    }

    /// Parses the hex form and requires a given prefix.
    pub fn parse_with_prefix(text: &str, prefix: IdPrefix) -> Result<Self, IdError> {
        let id: Self = text.parse()?;
        if id.prefix != prefix {
            return Err(IdError::WrongPrefix(id.prefix.byte()));
        }
        Ok(id)
    }

    /// The prefix.
    pub fn prefix(&self) -> IdPrefix {
        self.prefix
    }

    /// The 32 key bytes after the prefix.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The 33 bytes `prefix || key`.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.prefix.byte();
        out[1..].copy_from_slice(&self.key);
        out
    }

    /// The 66-character hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// A shortened form for logs and error messages: `05ab12…ef34`. Never log the full id.
    pub fn short(&self) -> String {
        let hex = self.to_hex();
        format!("{}…{}", &hex[..6], &hex[62..])
    }
}

impl FromStr for SessionId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let text = text.trim();
        if text.len() != 66 {
            return Err(IdError::Length(text.chars().count()));
        }
        let mut bytes = [0u8; 33];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| IdError::Hex)?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let text = format!("05{}", "ab".repeat(32));
        let id: SessionId = text.parse().unwrap();
        assert_eq!(id.prefix(), IdPrefix::Standard);
        assert_eq!(id.to_string(), text);
        assert_eq!(id.short(), "05abab…abab");
    }

    #[test]
    fn errors() {
        assert_eq!("05ab".parse::<SessionId>(), Err(IdError::Length(4)));
        assert_eq!(format!("05{}", "zz".repeat(32)).parse::<SessionId>(), Err(IdError::Hex));
        assert_eq!(format!("07{}", "ab".repeat(32)).parse::<SessionId>(), Err(IdError::Prefix(7)));
        assert_eq!(
            SessionId::parse_with_prefix(&format!("03{}", "ab".repeat(32)), IdPrefix::Standard),
            Err(IdError::WrongPrefix(3))
        );
    }
}
