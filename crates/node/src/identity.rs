//! The node's own key: an Ed25519 seed made at first start and kept in `node.key` (mode 0600).

use std::io::Write;
use std::path::Path;

use rand::Rng;
use session_protocol::IdentityKey;
use zeroize::Zeroizing;

/// The node key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold 64 hex characters.
    #[error("node key file {0} is corrupt (expected 64 hex characters)")]
    Corrupt(String),
}

/// The node's identity: Ed25519 key pair and its X25519 form.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    key: IdentityKey,
    ed25519_hex: String,
    x25519_hex: String,
}

impl NodeIdentity {
    /// From an existing key.
    pub fn new(key: IdentityKey) -> Self {
        let ed25519_hex = hex::encode(key.ed25519_public());
        let x25519_hex = hex::encode(key.x25519_public());
        Self { key, ed25519_hex, x25519_hex }
    }

    /// Loads `dir/node.key`, or makes a fresh key there (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join("node.key");
        let io = |source| IdentityError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                    session_protocol::primitives::hex_array(text.trim())
                        .ok_or_else(|| IdentityError::Corrupt(path.display().to_string()))?,
                );
                Ok(Self::new(IdentityKey::from_seed_bytes(&seed)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let mut seed = Zeroizing::new([0u8; 32]);
                rand::rng().fill_bytes(&mut seed[..]);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(io)?;
                file.write_all(hex::encode(*seed).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self::new(IdentityKey::from_seed_bytes(&seed)))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key pair.
    pub fn key(&self) -> &IdentityKey {
        &self.key
    }

    /// Ed25519 public key, hex.
    pub fn ed25519_hex(&self) -> &str {
        &self.ed25519_hex
    }

    /// X25519 public key, hex.
    pub fn x25519_hex(&self) -> &str {
        &self.x25519_hex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeIdentity::load_or_create(dir.path()).unwrap();
        let again = NodeIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.ed25519_hex(), again.ed25519_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("node.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("node.key"), "nonsense").unwrap();
        assert!(matches!(NodeIdentity::load_or_create(dir.path()), Err(IdentityError::Corrupt(_))));
    }
}
