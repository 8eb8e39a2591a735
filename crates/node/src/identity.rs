//! The node's own key: an Ed25519 seed made at first start and kept in `node.key` (mode 0600).

use std::path::Path;

use session_common::secret_file;
use session_protocol::IdentityKey;
use session_protocol::primitives::{Ed25519Signer, X25519Secret};

/// The node key could not be loaded or created.
pub use session_common::secret_file::SecretFileError as IdentityError;

/// The node's identity: Ed25519 key pair and its X25519 form.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    key: IdentityKey,
    channel: std::sync::Arc<crate::peer::auth::ChannelKeys>,
    /// The X25519 key prepared once for the onion layers addressed to this node.
    onion_key: std::sync::Arc<X25519Secret>,
    /// The Ed25519 key prepared once for the per-node signatures on RPC results.
    signer: std::sync::Arc<Ed25519Signer>,
    ed25519_hex: String,
    x25519_hex: String,
}

impl NodeIdentity {
    /// From an existing key.
    pub fn new(key: IdentityKey) -> Self {
        let ed25519_hex = hex::encode(key.ed25519_public());
        let x25519_hex = hex::encode(key.x25519_public());
        let channel = std::sync::Arc::new(crate::peer::auth::ChannelKeys::new(&key));
        let onion_key = std::sync::Arc::new(X25519Secret::new(key.x25519_secret()));
        let signer = std::sync::Arc::new(key.signer());
        Self { key, channel, onion_key, signer, ed25519_hex, x25519_hex }
    }

    /// Loads `dir/node.key`, or makes a fresh key there (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let seed = secret_file::load_or_create(&dir.join("node.key"), secret_file::Encoding::Hex)?;
        Ok(Self::new(IdentityKey::from_seed_bytes(&seed)))
    }

    /// The key pair.
    pub fn key(&self) -> &IdentityKey {
        &self.key
    }

    /// The Ed25519 signature of `message` by the node key (the same bytes as
    /// `self.key().sign(message)`, faster: [`Ed25519Signer`]).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signer.sign(message)
    }

    /// The node's X25519 key, prepared for the onion layers it peels.
    pub fn onion_key(&self) -> &X25519Secret {
        &self.onion_key
    }

    /// The node-to-node channel keys with every peer (`peer::auth::ChannelKeys`).
    pub fn channel_keys(&self) -> &crate::peer::auth::ChannelKeys {
        &self.channel
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
        assert!(matches!(NodeIdentity::load_or_create(dir.path()), Err(IdentityError::Corrupt { .. })));
    }
}
