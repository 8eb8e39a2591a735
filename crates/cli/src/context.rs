//! Where an account lives and how the `session` commands open it: the data directory, the
//! network to connect to, the database key, and the errors a person can act on.
//!
//! * **Data directory** ([`Global::data_dir`]): `--data-dir`, else `$SESSION_DATA_DIR`, else
//!   `$XDG_DATA_HOME/session`, else `~/.local/share/session`. It holds `session.db` (SQLCipher)
//!   with its `session.db.key` or `session.db.kdf`, and `config.toml`.
//! * **Network** ([`resolve_network`]): `--network`, else `$SESSION_NETWORK`, else the running
//!   devnet (`$SESSION_DEVNET_DIR/devnet.json`, or `./devnet/devnet.json`), else `network = "…"`
//!   in `DATA_DIR/config.toml` (written by `session init` / `session restore`). A network is a
//!   registry URL, a devnet's `devnet.json`, or a devnet directory.
//! * **Database key** ([`key_source`]): the passphrase in `$SESSION_PASSPHRASE`, else the key
//!   file beside the database (see the session-client README, "Database key", for the
//!   trade-off).
//!
//! [`open_client`] opens an account and connects it (for the commands that talk to the
//! network, and the `session chat` TUI); [`open_db`] opens only the database (local reads and
//! edits work without a network).

use std::path::{Path, PathBuf};

use session_client::client::DB_FILE;
use session_client::db::key::{kdf_header_path, key_file_path};
use session_client::db::{Db, DbError, KeySource};
use session_client::{Client, ClientError, NetworkConfig, NetworkError};

/// The flags every command accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Global {
    /// The account's directory [default: $SESSION_DATA_DIR, else $XDG_DATA_HOME/session, else
    /// ~/.local/share/session].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The network: a registry URL, a devnet's devnet.json, or a devnet directory [default:
    /// $SESSION_NETWORK, else the running devnet ($SESSION_DEVNET_DIR or ./devnet), else the
    /// network saved in DATA_DIR/config.toml].
    #[arg(long, global = true, value_name = "URL|DEVNET")]
    pub network: Option<String>,

    /// Print one JSON document on stdout instead of readable text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Name of the configuration file in the data directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Name of a devnet's state file (written by `session-devnet up`).
const DEVNET_STATE: &str = "devnet.json";

/// A command failed; the message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The data directory holds no account.
    #[error("no account in {}: run `session init` first (or `session restore`)", .0.display())]
    NoAccount(PathBuf),
    /// `init`/`restore` on a data directory that has an account.
    #[error(
        "{} already holds an account; use another --data-dir, or remove the directory to start over (its messages are lost)",
        .0.display()
    )]
    AccountExists(PathBuf),
    /// The passphrase (or key file) does not open the database.
    #[error(
        "wrong passphrase for {}: set SESSION_PASSPHRASE to the passphrase this account was created with",
        .0.display()
    )]
    WrongPassphrase(PathBuf),
    /// The database is passphrase-protected but no passphrase was given.
    #[error("the account in {} is protected by a passphrase: set SESSION_PASSPHRASE", .0.display())]
    PassphraseNeeded(PathBuf),
    /// A passphrase was given but the database uses a key file.
    #[error(
        "the account in {} uses a key file, not a passphrase: unset SESSION_PASSPHRASE",
        .0.display()
    )]
    KeyFileAccount(PathBuf),
    /// Another process holds the database.
    #[error(
        "another session command holds the database in {} (a running `session watch` or `session chat`?); stop it and retry",
        .0.display()
    )]
    Locked(PathBuf),
    /// No network was given and none could be found.
    #[error(
        "no network configured: start a local one with `cargo run -p session-devnet -- up` (then run this from the same directory or set SESSION_DEVNET_DIR), or pass --network URL|DEVNET_DIR"
    )]
    NoNetwork,
    /// The network description cannot be used.
    #[error("bad network {spec:?}: {reason}")]
    BadNetwork {
        /// What was given.
        spec: String,
        /// Why it does not work.
        reason: String,
    },
    /// The network did not answer.
    #[error("cannot reach the network at {url}: {reason} — is the devnet running?")]
    Unreachable {
        /// The registry URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The recipient is neither a Session ID nor a known contact.
    #[error("{0}")]
    Recipient(String),
    /// The recovery phrase is not valid.
    #[error("bad recovery phrase: {0}")]
    Phrase(String),
    /// The message was stored locally but not delivered.
    #[error("message not delivered (kept as failed; `session resend` sends it again): {0}")]
    NotDelivered(String),
    /// Reading or writing a local file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Wrong use of a command (an argument that cannot work).
    #[error("{0}")]
    Usage(String),
    /// Anything else the client library reported.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code for this error: 3 network, 4 database key or lock, 5 no account,
    /// 6 not delivered, 1 anything else (2 is clap's usage error).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } | Self::NoNetwork | Self::BadNetwork { .. } => 3,
            Self::WrongPassphrase(_)
            | Self::PassphraseNeeded(_)
            | Self::KeyFileAccount(_)
            | Self::Locked(_) => 4,
            Self::NoAccount(_) => 5,
            Self::NotDelivered(_) => 6,
            _ => 1,
        }
    }

    /// The error for a database failure on the account in `data_dir`.
    pub fn from_db(data_dir: &Path, e: DbError) -> Self {
        match e {
            DbError::WrongKey => Self::WrongPassphrase(data_dir.to_owned()),
            DbError::Locked => Self::Locked(data_dir.to_owned()),
            // The key source asked for is not the one the account was made with: say which it is.
            DbError::MissingKeyMaterial { path } => {
                let db = data_dir.join(DB_FILE);
                if kdf_header_path(&db).exists() {
                    Self::PassphraseNeeded(data_dir.to_owned())
                } else if key_file_path(&db).exists() {
                    Self::KeyFileAccount(data_dir.to_owned())
                } else {
                    Self::Other(format!(
                        "the database key is missing ({} not found): the account in {} cannot be opened",
                        path.display(),
                        data_dir.display()
                    ))
                }
            }
            DbError::NoAccount => Self::NoAccount(data_dir.to_owned()),
            DbError::AccountExists => Self::AccountExists(data_dir.to_owned()),
            other => Self::Other(format!("database in {}: {other}", data_dir.display())),
        }
    }

    /// The error for a client failure, on the account in `data_dir`, on `network`.
    pub fn from_client(data_dir: &Path, network: Option<&Network>, e: ClientError) -> Self {
        match e {
            ClientError::Db(e) => Self::from_db(data_dir, e),
            ClientError::NoAccount => Self::NoAccount(data_dir.to_owned()),
            ClientError::AccountExists => Self::AccountExists(data_dir.to_owned()),
            ClientError::Phrase(e) => Self::Phrase(e.to_string()),
            ClientError::Network(e) => Self::from_network(network, e),
            ClientError::SendFailed { source, .. } => Self::NotDelivered(match *source {
                ClientError::Network(e) => Self::from_network(network, e).to_string(),
                other => other.to_string(),
            }),
            ClientError::NoConversation => Self::Recipient("no conversation with that Session ID".into()),
            other => Self::Other(other.to_string()),
        }
    }

    /// The error for a network failure: unreachable nodes or registry name the network.
    pub fn from_network(network: Option<&Network>, e: NetworkError) -> Self {
        let url = network.map_or_else(|| "the configured network".to_owned(), |n| n.registry_url.clone());
        match e {
            NetworkError::Bootstrap(_)
            | NetworkError::AllNodesFailed { .. }
            | NetworkError::NotEnoughNodes { .. }
            | NetworkError::NoSwarm => Self::Unreachable { url, reason: e.to_string() },
            other => Self::Other(format!("network: {other}")),
        }
    }
}

/// The network to connect to, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// What identifies it for later commands (saved in `config.toml`): the registry URL, or the
    /// absolute path of a devnet's `devnet.json` (whose registry port can change when the devnet
    /// is recreated).
    pub spec: String,
    /// The registry URL.
    pub registry_url: String,
    /// Nodes in the devnet, when it is one (a small devnet has fewer nodes than the client's
    /// default minimum pool).
    pub devnet_nodes: Option<usize>,
}

impl Network {
    /// The client configuration for this network.
    pub fn config(&self) -> NetworkConfig {
        let mut config = NetworkConfig::new([self.registry_url.clone()]);
        if let Some(nodes) = self.devnet_nodes {
            // Never below 5: a path (3) plus a destination, with one to spare.
            config.min_pool_size = config.min_pool_size.min(nodes).max(5);
        }
        config
    }
}

/// Where `--network` (or an equivalent) was found, for the error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Flag,
    Env,
    Devnet,
    Config,
}

/// The process environment the resolution reads, separate so tests can give their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `$SESSION_NETWORK`.
    pub session_network: Option<String>,
    /// `$SESSION_DEVNET_DIR`.
    pub devnet_dir: Option<PathBuf>,
    /// The working directory (for `./devnet`).
    pub cwd: PathBuf,
}

impl Env {
    /// The real environment.
    pub fn current() -> Self {
        Self {
            session_network: std::env::var("SESSION_NETWORK").ok().filter(|s| !s.is_empty()),
            devnet_dir: std::env::var_os("SESSION_DEVNET_DIR").filter(|s| !s.is_empty()).map(PathBuf::from),
            cwd: std::env::current_dir().unwrap_or_default(),
        }
    }
}

/// Resolves the network: `flag`, else `$SESSION_NETWORK`, else a running devnet's
/// `devnet.json` (`$SESSION_DEVNET_DIR`, else `./devnet`), else the `network` saved in
/// `DATA_DIR/config.toml`.
pub fn resolve_network(flag: Option<&str>, env: &Env, data_dir: &Path) -> Result<Network, CliError> {
    let (spec, origin) = if let Some(flag) = flag {
        (flag.to_owned(), Origin::Flag)
    } else if let Some(spec) = &env.session_network {
        (spec.clone(), Origin::Env)
    } else {
        let devnet = env.devnet_dir.clone().unwrap_or_else(|| env.cwd.join("devnet"));
        let devnet = if devnet.is_relative() { env.cwd.join(devnet) } else { devnet };
        if devnet.join(DEVNET_STATE).is_file() {
            (devnet.join(DEVNET_STATE).display().to_string(), Origin::Devnet)
        } else if let Some(saved) = load_config(data_dir)?.network {
            (saved, Origin::Config)
        } else {
            return Err(CliError::NoNetwork);
        }
    };
    parse_network(&spec, &env.cwd).map_err(|reason| {
        let reason = match origin {
            Origin::Flag => reason,
            Origin::Env => format!("{reason} (from SESSION_NETWORK)"),
            Origin::Devnet => reason,
            Origin::Config => format!("{reason} (saved in {})", data_dir.join(CONFIG_FILE).display()),
        };
        CliError::BadNetwork { spec: spec.clone(), reason }
    })
}

/// A network from its description: an `http(s)://` URL, a `devnet.json`, or a devnet
/// directory (relative paths against `cwd`).
pub fn parse_network(spec: &str, cwd: &Path) -> Result<Network, String> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(Network {
            spec: spec.trim_end_matches('/').to_owned(),
            registry_url: spec.trim_end_matches('/').to_owned(),
            devnet_nodes: None,
        });
    }
    let path = Path::new(spec);
    let path = if path.is_relative() { cwd.join(path) } else { path.to_owned() };
    let file = if path.is_dir() { path.join(DEVNET_STATE) } else { path };
    let bytes = std::fs::read(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} does not exist (not a URL either): is the devnet running? Start it with `cargo run -p session-devnet -- up`",
                file.display()
            )
        } else {
            format!("cannot read {}: {e}", file.display())
        }
    })?;
    let state: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a devnet.json: {e}", file.display()))?;
    let registry_url = state
        .get("registry_url")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("{} has no registry_url", file.display()))?
        .to_owned();
    let devnet_nodes = state.get("nodes").and_then(serde_json::Value::as_array).map(Vec::len);
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    Ok(Network { spec: file.display().to_string(), registry_url, devnet_nodes })
}

/// `DATA_DIR/config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// The network this account uses (a registry URL or a devnet.json path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// Reads `DATA_DIR/config.toml` (empty when there is none).
pub fn load_config(data_dir: &Path) -> Result<Config, CliError> {
    let path = data_dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(CliError::Io { what: format!("cannot read {}", path.display()), source }),
    }
}

/// Writes `DATA_DIR/config.toml`.
pub fn save_config(data_dir: &Path, config: &Config) -> Result<(), CliError> {
    let path = data_dir.join(CONFIG_FILE);
    let text = toml::to_string(config).map_err(|e| CliError::Other(format!("config: {e}")))?;
    std::fs::write(&path, text)
        .map_err(|source| CliError::Io { what: format!("cannot write {}", path.display()), source })
}

impl Global {
    /// The data directory: `--data-dir`, else `$SESSION_DATA_DIR`, else
    /// `$XDG_DATA_HOME/session`, else `~/.local/share/session`.
    pub fn data_dir(&self) -> Result<PathBuf, CliError> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("SESSION_DATA_DIR") {
            return Ok(dir);
        }
        if let Some(dir) = var("XDG_DATA_HOME") {
            return Ok(dir.join("session"));
        }
        if let Some(home) = var("HOME") {
            return Ok(home.join(".local/share/session"));
        }
        Err(CliError::Usage("no data directory: pass --data-dir or set SESSION_DATA_DIR".into()))
    }

    /// The network for this invocation ([`resolve_network`]).
    pub fn network(&self) -> Result<Network, CliError> {
        resolve_network(self.network.as_deref(), &Env::current(), &self.data_dir()?)
    }
}

/// The database key: the passphrase in `$SESSION_PASSPHRASE`, else the key file.
pub fn key_source() -> KeySource {
    match std::env::var("SESSION_PASSPHRASE") {
        Ok(passphrase) if !passphrase.is_empty() => KeySource::passphrase(passphrase),
        _ => KeySource::KeyFile,
    }
}

/// Whether `data_dir` holds an account database.
pub fn has_account(data_dir: &Path) -> bool {
    data_dir.join(DB_FILE).exists()
}

/// Opens the account's database only (no network): for local reads and edits.
pub async fn open_db(global: &Global) -> Result<(PathBuf, Db), CliError> {
    let dir = global.data_dir()?;
    if !has_account(&dir) {
        return Err(CliError::NoAccount(dir));
    }
    let db = Db::open(dir.join(DB_FILE), key_source()).await.map_err(|e| CliError::from_db(&dir, e))?;
    match db.run(|s| s.account()).await {
        Ok(Some(_)) => Ok((dir, db)),
        Ok(None) => Err(CliError::NoAccount(dir)),
        Err(e) => Err(CliError::from_db(&dir, e)),
    }
}

/// Opens the account of this invocation and connects it to the network: the one way every
/// command (and the `session chat` TUI) gets a [`Client`].
///
/// The data directory, network and database key are resolved as the module docs say. Errors
/// are ready to print (`eprintln!("session: {err}")`, exit with [`CliError::exit_code`]): no
/// account ("run `session init` first"), wrong passphrase, database held by another command
/// (the database is exclusive: one open client per account), no network configured, network
/// unreachable. Must run inside a tokio runtime.
pub async fn open_client(global: &Global) -> Result<Client, CliError> {
    connect(global).await.map(|(client, _)| client)
}

/// [`open_client`], also returning the network it connected to (for error messages about
/// later failures: [`CliError::from_client`]).
pub async fn connect(global: &Global) -> Result<(Client, Network), CliError> {
    let dir = global.data_dir()?;
    if !has_account(&dir) {
        return Err(CliError::NoAccount(dir));
    }
    let network = global.network()?;
    let client = Client::open(&dir, key_source(), network.config())
        .await
        .map_err(|e| CliError::from_client(&dir, Some(&network), e))?;
    Ok((client, network))
}

/// Removes what a failed `init`/`restore` left in `data_dir` (the database and its key
/// material), so the next attempt starts clean. Only called when the directory held no account
/// before.
pub fn remove_partial_account(data_dir: &Path) {
    let db = data_dir.join(DB_FILE);
    for path in [
        key_file_path(&db),
        kdf_header_path(&db),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
        db.with_extension("db-journal"),
        db,
    ] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cwd: &Path) -> Env {
        Env { session_network: None, devnet_dir: None, cwd: cwd.to_owned() }
    }

    fn write_devnet(dir: &Path, url: &str, nodes: usize) {
        std::fs::create_dir_all(dir).unwrap();
        let nodes: Vec<serde_json::Value> = (0..nodes).map(|i| serde_json::json!({ "index": i })).collect();
        let state = serde_json::json!({ "version": 1, "registry_url": url, "nodes": nodes });
        std::fs::write(dir.join(DEVNET_STATE), state.to_string()).unwrap();
    }

    #[test]
    fn flag_url_wins_over_everything() {
        let tmp = tempfile::tempdir().unwrap();
        write_devnet(&tmp.path().join("devnet"), "http://127.0.0.1:1111", 12);
        let mut e = env(tmp.path());
        e.session_network = Some("http://127.0.0.1:2222".into());
        let n = resolve_network(Some("http://127.0.0.1:3333/"), &e, tmp.path()).unwrap();
        assert_eq!(n.registry_url, "http://127.0.0.1:3333");
        assert_eq!(n.devnet_nodes, None);
        let n = resolve_network(None, &e, tmp.path()).unwrap();
        assert_eq!(n.registry_url, "http://127.0.0.1:2222");
    }

    #[test]
    fn running_devnet_then_saved_config() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        // Nothing anywhere: the actionable error.
        let err = resolve_network(None, &env(tmp.path()), &data).unwrap_err();
        assert!(matches!(err, CliError::NoNetwork));
        assert!(err.to_string().contains("session-devnet -- up"), "{err}");

        // The saved network.
        save_config(&data, &Config { network: Some("http://127.0.0.1:4444".into()) }).unwrap();
        let n = resolve_network(None, &env(tmp.path()), &data).unwrap();
        assert_eq!(n.registry_url, "http://127.0.0.1:4444");

        // ./devnet beats the saved network; its node count lowers the minimum pool.
        write_devnet(&tmp.path().join("devnet"), "http://127.0.0.1:5555", 6);
        let n = resolve_network(None, &env(tmp.path()), &data).unwrap();
        assert_eq!(n.registry_url, "http://127.0.0.1:5555");
        assert_eq!(n.devnet_nodes, Some(6));
        assert_eq!(n.config().min_pool_size, 6);
        assert!(n.spec.ends_with("devnet/devnet.json"), "{}", n.spec);

        // $SESSION_DEVNET_DIR names another devnet.
        let other = tmp.path().join("other");
        write_devnet(&other, "http://127.0.0.1:6666", 3);
        let mut e = env(tmp.path());
        e.devnet_dir = Some(other.clone());
        let n = resolve_network(None, &e, &data).unwrap();
        assert_eq!(n.registry_url, "http://127.0.0.1:6666");
        assert_eq!(n.config().min_pool_size, 5);

        // A devnet directory or its devnet.json as --network.
        let by_dir = resolve_network(Some(other.to_str().unwrap()), &env(tmp.path()), &data).unwrap();
        let by_file = resolve_network(Some("other/devnet.json"), &env(tmp.path()), &data).unwrap();
        assert_eq!(by_dir, by_file);
    }

    #[test]
    fn bad_networks_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let err = resolve_network(Some("nowhere"), &env(tmp.path()), tmp.path()).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        std::fs::write(tmp.path().join("x.json"), "{}").unwrap();
        let err = resolve_network(Some("x.json"), &env(tmp.path()), tmp.path()).unwrap_err();
        assert!(err.to_string().contains("no registry_url"), "{err}");
        let mut e = env(tmp.path());
        e.session_network = Some("nowhere".into());
        let err = resolve_network(None, &e, tmp.path()).unwrap_err();
        assert!(err.to_string().contains("SESSION_NETWORK"), "{err}");
    }

    #[test]
    fn database_errors_are_actionable() {
        let dir = Path::new("/d");
        let e = CliError::from_db(dir, DbError::WrongKey);
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        let e = CliError::from_db(dir, DbError::Locked);
        assert!(e.to_string().contains("another session command holds the database"), "{e}");
        // Opened with the other key source: the files beside the database say which it needs.
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join(DB_FILE);
        let missing = |path: PathBuf| CliError::from_db(tmp.path(), DbError::MissingKeyMaterial { path });
        let e = missing(key_file_path(&db));
        assert!(matches!(e, CliError::Other(_)), "{e}");
        std::fs::write(kdf_header_path(&db), b"").unwrap();
        let e = missing(key_file_path(&db));
        assert!(e.to_string().contains("protected by a passphrase: set SESSION_PASSPHRASE"), "{e}");
        std::fs::remove_file(kdf_header_path(&db)).unwrap();
        std::fs::write(key_file_path(&db), b"").unwrap();
        let e = missing(kdf_header_path(&db));
        assert!(e.to_string().contains("unset SESSION_PASSPHRASE"), "{e}");
    }
}
