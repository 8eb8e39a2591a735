//! A 32-byte secret (a key seed) kept in a file readable only by its owner (mode 0600), made
//! from the operating system's random generator the first time it is asked for.
//!
//! The file is written with `create_new`, so two processes starting at once cannot both make a
//! key: the loser fails with an error instead of silently using a different key. The write is
//! synced before the secret is used, so a key that signed anything survives a crash.

use std::io::Write;
use std::path::Path;

use rand::Rng;
use zeroize::Zeroizing;

/// How the secret is written in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 64 lowercase hex characters (surrounding whitespace is ignored when reading).
    Hex,
    /// The 32 bytes themselves.
    Raw,
}

/// The secret file could not be read or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// Reading, creating or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but does not hold a secret in the expected encoding.
    #[error("key file {path} is corrupt (expected {expected})")]
    Corrupt {
        /// The file.
        path: String,
        /// What it should hold.
        expected: &'static str,
    },
}

/// Reads the secret in `path`, or makes a new random one there (creating the parent directory;
/// mode 0600) when the file does not exist.
pub fn load_or_create(path: &Path, encoding: Encoding) -> Result<Zeroizing<[u8; 32]>, SecretFileError> {
    match load(path, encoding)? {
        Some(secret) => Ok(secret),
        None => create(path, encoding),
    }
}

/// Reads the secret in `path`; `Ok(None)` when there is no such file.
pub fn load(path: &Path, encoding: Encoding) -> Result<Option<Zeroizing<[u8; 32]>>, SecretFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SecretFileError::Io { path: path.display().to_string(), source }),
    };
    let corrupt = || SecretFileError::Corrupt {
        path: path.display().to_string(),
        expected: match encoding {
            Encoding::Hex => "64 hex characters",
            Encoding::Raw => "32 bytes",
        },
    };
    let mut secret = Zeroizing::new([0u8; 32]);
    match encoding {
        Encoding::Raw => {
            if bytes.len() != 32 {
                return Err(corrupt());
            }
            secret.copy_from_slice(&bytes);
        }
        Encoding::Hex => {
            let text = std::str::from_utf8(&bytes).map_err(|_| corrupt())?.trim();
            hex::decode_to_slice(text, &mut secret[..]).map_err(|_| corrupt())?;
        }
    }
    Ok(Some(secret))
}

/// Makes a new random secret in `path` (which must not exist yet), mode 0600, synced.
pub fn create(path: &Path, encoding: Encoding) -> Result<Zeroizing<[u8; 32]>, SecretFileError> {
    let io = |source| SecretFileError::Io { path: path.display().to_string(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut secret[..]);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    match encoding {
        Encoding::Raw => file.write_all(&secret[..]),
        Encoding::Hex => file.write_all(Zeroizing::new(hex::encode(*secret)).as_bytes()),
    }
    .map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_the_same_secret_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for (name, encoding) in [("hex.key", Encoding::Hex), ("raw.key", Encoding::Raw)] {
            let path = dir.path().join("sub").join(name);
            assert!(load(&path, encoding).unwrap().is_none());
            let made = load_or_create(&path, encoding).unwrap();
            assert_eq!(*load_or_create(&path, encoding).unwrap(), *made);
            let on_disk = std::fs::read(&path).unwrap();
            match encoding {
                Encoding::Hex => assert_eq!(on_disk, hex::encode(*made).into_bytes()),
                Encoding::Raw => assert_eq!(on_disk, made.to_vec()),
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{name}");
            }
        }
    }

    #[test]
    fn two_fresh_secrets_differ_and_create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let a = create(&dir.path().join("a"), Encoding::Raw).unwrap();
        let b = create(&dir.path().join("b"), Encoding::Raw).unwrap();
        assert_ne!(*a, *b);
        assert!(matches!(create(&dir.path().join("a"), Encoding::Raw), Err(SecretFileError::Io { .. })));
        assert_eq!(*load(&dir.path().join("a"), Encoding::Raw).unwrap().unwrap(), *a);
    }

    #[test]
    fn corrupt_files_are_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        for (contents, encoding) in [
            (&b"not hex at all"[..], Encoding::Hex),
            (&b"abcd"[..], Encoding::Hex),
            (&[0xff; 31][..], Encoding::Raw),
            (&[0xff; 64][..], Encoding::Hex),
        ] {
            std::fs::write(&path, contents).unwrap();
            let err = load_or_create(&path, encoding).unwrap_err();
            assert!(matches!(err, SecretFileError::Corrupt { .. }), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), contents, "the file is left alone");
        }
        std::fs::write(&path, format!("  {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(*load(&path, Encoding::Hex).unwrap().unwrap(), [0xab; 32]);
    }
}
