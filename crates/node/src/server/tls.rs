//! HTTPS: a self-signed certificate made at first start and kept in the data directory
//! (network §2: upstream nodes do the same; clients authenticate nodes by their keys, not by
//! certificates). rustls with the ring provider only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Certificate file name in the data directory.
pub const CERT_FILE: &str = "tls-cert.pem";
/// Private key file name in the data directory (mode 0600).
pub const KEY_FILE: &str = "tls-key.pem";

/// The TLS certificate could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing a certificate or key file failed.
    #[error("TLS file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored certificate or key file is not valid PEM.
    #[error("TLS file {0} is corrupt")]
    Corrupt(String),
    /// Generating the self-signed certificate failed.
    #[error("generating the TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the certificate or key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The ring crypto provider, the only one this crate uses.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub use session_common::service::install_crypto_provider;

/// The server configuration for `data_dir`: loads `tls-cert.pem` and `tls-key.pem`, or makes a
/// new self-signed pair there on first start.
pub fn server_config(data_dir: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    if !(cert_path.exists() && key_path.exists()) {
        generate(&cert_path, &key_path)?;
    }
    let cert = CertificateDer::from_pem_file(&cert_path).map_err(|_| corrupt(&cert_path))?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| corrupt(&key_path))?;
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "session-node".to_owned()])?;
    // Key first: a crash between the two writes leaves no certificate, so the pair is remade.
    write_file(key_path, certified.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, certified.cert.pem().as_bytes(), 0o644)?;
    tracing::info!("generated a self-signed TLS certificate in {}", cert_path.display());
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let io = |source| TlsError::Io { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp: PathBuf = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn corrupt(path: &Path) -> TlsError {
    TlsError::Corrupt(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path()).unwrap();
        let cert = std::fs::read(dir.path().join(CERT_FILE)).unwrap();
        server_config(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(CERT_FILE)).unwrap(), cert, "kept across starts");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(matches!(server_config(dir.path()), Err(TlsError::Corrupt(_))));
    }
}
