//! Where the database key comes from (README "Database key").
//!
//! * **Passphrase**: `key = Argon2id(passphrase, salt, params)`, 32 bytes. The salt and the
//!   parameters are in a small header file beside the database, `<db>.kdf` (written when the
//!   database is created, read on every open), so the parameters can be raised later without
//!   breaking existing databases.
//! * **Key file**: a random 32-byte key, hex in `<db>.key`, created with mode 0600 (what Session
//!   desktop does when no app password is set). Whoever can read the user's files can read the
//!   database; nothing has to be typed.
//!
//! Either way the 32 bytes are given to SQLCipher in raw form (`PRAGMA key = "x'…'"`), so
//! SQLCipher does not run its own PBKDF2 on top.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use zeroize::Zeroizing;

use super::DbError;

/// Length of the SQLCipher key and of the Argon2id output.
pub const DB_KEY_LEN: usize = 32;
/// Length of the Argon2id salt in the `.kdf` header.
pub const SALT_LEN: usize = 16;
/// First bytes of the `.kdf` header file.
const KDF_MAGIC: &[u8; 8] = b"SSNKDF01";
/// Header length: magic, three `u32` parameters, salt.
const KDF_HEADER_LEN: usize = 8 + 12 + SALT_LEN;

/// How the database is unlocked.
#[derive(Clone)]
pub enum KeySource {
    /// A passphrase the user types; stretched with Argon2id.
    Passphrase(Zeroizing<String>),
    /// A random key in a 0600 file beside the database.
    KeyFile,
}

impl KeySource {
    /// A passphrase source.
    pub fn passphrase(passphrase: impl Into<String>) -> Self {
        Self::Passphrase(Zeroizing::new(passphrase.into()))
    }
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            Self::KeyFile => f.write_str("KeyFile"),
        }
    }
}

/// Argon2id cost parameters, stored in the `.kdf` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// What new databases use: 64 MiB, 3 passes, 1 lane (RFC 9106 §4's second recommended
    /// setting, with one lane because the `argon2` crate computes lanes on one thread anyway).
    /// Roughly 0.1–0.3 s on a laptop; it runs once per unlock.
    pub const DEFAULT: Self = Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 };

    /// The largest values accepted from a header file (a tampered header must not make the
    /// client allocate without bound): 1 GiB, 64 passes, 16 lanes.
    const MAX: Self = Self { memory_kib: 1024 * 1024, iterations: 64, parallelism: 16 };

    fn argon2(self) -> Result<Argon2<'static>, DbError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(DB_KEY_LEN))
            .map_err(|e| DbError::KdfHeader(format!("unusable Argon2id parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `<db>.key`: the random key file.
pub fn key_file_path(db: &Path) -> PathBuf {
    sibling(db, "key")
}

/// `<db>.kdf`: the passphrase header (salt and Argon2id parameters).
pub fn kdf_header_path(db: &Path) -> PathBuf {
    sibling(db, "kdf")
}

/// The raw database key for `source`. `create` is set when the database does not exist yet: then
/// fresh key material (key file or salt) is written; otherwise it must already exist.
pub(crate) fn database_key(
    db: &Path,
    source: &KeySource,
    create: bool,
    params: KdfParams,
) -> Result<Zeroizing<[u8; DB_KEY_LEN]>, DbError> {
    match source {
        KeySource::KeyFile => {
            let path = key_file_path(db);
            if create {
                let mut key = Zeroizing::new([0u8; DB_KEY_LEN]);
                rand::rng().fill_bytes(&mut key[..]);
                write_private_file(&path, Zeroizing::new(hex::encode(&key[..])).as_bytes())?;
                Ok(key)
            } else {
                read_key_file(&path)
            }
        }
        KeySource::Passphrase(passphrase) => {
            let path = kdf_header_path(db);
            let (params, salt) = if create {
                let mut salt = [0u8; SALT_LEN];
                rand::rng().fill_bytes(&mut salt);
                write_private_file(&path, &encode_kdf_header(params, &salt))?;
                (params, salt)
            } else {
                let bytes = fs::read(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => DbError::MissingKeyMaterial { path: path.clone() },
                    _ => DbError::Io { path: path.clone(), source: e },
                })?;
                decode_kdf_header(&bytes)?
            };
            let mut key = Zeroizing::new([0u8; DB_KEY_LEN]);
            params
                .argon2()?
                .hash_password_into(passphrase.as_bytes(), &salt, &mut key[..])
                .map_err(|e| DbError::KdfHeader(format!("Argon2id failed: {e}")))?;
            Ok(key)
        }
    }
}

/// `PRAGMA key` text for a raw key: `x'<64 hex>'` inside double quotes.
pub(crate) fn raw_key_pragma(key: &[u8; DB_KEY_LEN]) -> Zeroizing<String> {
    Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(key)))
}

fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; DB_KEY_LEN]>, DbError> {
    let text = Zeroizing::new(fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DbError::MissingKeyMaterial { path: path.to_owned() },
        _ => DbError::Io { path: path.to_owned(), source: e },
    })?);
    let mode = fs::metadata(path)
        .map_err(|e| DbError::Io { path: path.to_owned(), source: e })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(mode = format!("{:o}", mode & 0o777), "database key file is readable by other users");
    }
    let mut key = Zeroizing::new([0u8; DB_KEY_LEN]);
    hex::decode_to_slice(text.trim_ascii(), &mut key[..])
        .map_err(|_| DbError::MalformedKeyFile { path: path.to_owned() })?;
    Ok(key)
}

fn encode_kdf_header(params: KdfParams, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KDF_HEADER_LEN);
    out.extend_from_slice(KDF_MAGIC);
    out.extend_from_slice(&params.memory_kib.to_le_bytes());
    out.extend_from_slice(&params.iterations.to_le_bytes());
    out.extend_from_slice(&params.parallelism.to_le_bytes());
    out.extend_from_slice(salt);
    out
}

fn decode_kdf_header(bytes: &[u8]) -> Result<(KdfParams, [u8; SALT_LEN]), DbError> {
    if bytes.len() != KDF_HEADER_LEN || &bytes[..8] != KDF_MAGIC {
        return Err(DbError::KdfHeader(format!(
            "expected {KDF_HEADER_LEN} bytes starting with the SSNKDF01 magic, found {} bytes",
            bytes.len()
        )));
    }
    let word = |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().expect("4 bytes"));
    let params = KdfParams { memory_kib: word(0), iterations: word(1), parallelism: word(2) };
    if params.memory_kib > KdfParams::MAX.memory_kib
        || params.iterations > KdfParams::MAX.iterations
        || params.parallelism > KdfParams::MAX.parallelism
    {
        return Err(DbError::KdfHeader(format!(
            "Argon2id parameters {params:?} exceed the accepted maximum"
        )));
    }
    let salt = bytes[20..].try_into().expect("16 bytes");
    Ok((params, salt))
}

/// Writes `contents` to `path` with mode 0600: a temporary file created 0600, fsynced, renamed
/// over `path`, and the directory fsynced, so a crash leaves either no file or the whole file.
fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), DbError> {
    let io = |e| DbError::Io { path: path.to_owned(), source: e };
    let tmp = sibling(path, "tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_header_round_trip_and_rejects() {
        let salt = [7u8; SALT_LEN];
        let bytes = encode_kdf_header(KdfParams::DEFAULT, &salt);
        assert_eq!(decode_kdf_header(&bytes).unwrap(), (KdfParams::DEFAULT, salt));
        assert!(matches!(decode_kdf_header(&bytes[..20]), Err(DbError::KdfHeader(_))));
        let mut bad_magic = bytes.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(decode_kdf_header(&bad_magic), Err(DbError::KdfHeader(_))));
        let huge = encode_kdf_header(KdfParams { memory_kib: u32::MAX, ..KdfParams::DEFAULT }, &salt);
        assert!(matches!(decode_kdf_header(&huge), Err(DbError::KdfHeader(_))));
    }

    #[test]
    fn raw_key_pragma_form() {
        let pragma = raw_key_pragma(&[0xab; DB_KEY_LEN]);
        assert_eq!(pragma.as_str(), format!("PRAGMA key = \"x'{}'\";", "ab".repeat(32)));
    }
}
