//! Registry configuration: a TOML file, every field overridable by a command-line flag.
//!
//! Durations are seconds (fractions allowed) both in the file and on the command line, so that
//! tests can run the whole liveness cycle in a few seconds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Anyone.
    #[default]
    Open,
    /// Only the Ed25519 keys in `allowlist`.
    Allowlist,
}

/// Everything the registry needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Address to listen on (plain HTTP).
    pub listen: SocketAddr,
    /// Directory for `registry.key` and `registry.db`.
    pub data_dir: PathBuf,
    /// Admission policy.
    pub policy: Policy,
    /// Ed25519 keys (hex) admitted under [`Policy::Allowlist`].
    pub allowlist: Vec<String>,
    /// Nodes heartbeat this often; the registry re-tests every node's reachability this often.
    #[serde(with = "seconds")]
    pub heartbeat_interval: Duration,
    /// An active node with neither a heartbeat nor a passed reachability test for this long is
    /// decommissioned.
    #[serde(with = "seconds")]
    pub decommission_after: Duration,
    /// A node decommissioned (or pending without passing a test) for this long is removed.
    #[serde(with = "seconds")]
    pub remove_after: Duration,
    /// Accepted distance between a request's timestamp and the registry's clock.
    #[serde(with = "seconds")]
    pub timestamp_tolerance: Duration,
    /// How often the registry collects changes into an epoch (events of one tick share an epoch).
    #[serde(with = "seconds")]
    pub tick: Duration,
    /// Timeout of one reachability test.
    #[serde(with = "seconds")]
    pub ping_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 22020)),
            data_dir: PathBuf::from("session-registry-data"),
            policy: Policy::Open,
            allowlist: Vec::new(),
            heartbeat_interval: Duration::from_secs(30),
            decommission_after: Duration::from_secs(120),
            remove_after: Duration::from_secs(24 * 3600),
            timestamp_tolerance: Duration::from_secs(60),
            tick: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(5),
        }
    }
}

impl RegistryConfig {
    /// Parses a TOML file's text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Ok(session_common::config_file::read_toml(path)?)
    }

    /// The allowlist as keys; fails on an entry that is not 64 hex digits.
    pub fn allowlist_keys(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        self.allowlist
            .iter()
            .map(|text| {
                session_protocol::primitives::hex_array::<32>(text.trim())
                    .ok_or_else(|| ConfigError::BadAllowlistKey(text.chars().take(8).collect()))
            })
            .collect()
    }
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read, or is not valid TOML for [`RegistryConfig`].
    #[error(transparent)]
    File(#[from] session_common::config_file::ConfigFileError),
    /// An allowlist entry is not an Ed25519 key in hex (its first characters are given).
    #[error("allowlist entry starting {0:?} is not 64 hex digits")]
    BadAllowlistKey(String),
}

/// Command-line flags of the `session-registry` binary. Each flag overrides the value from the
/// TOML file given with `--config` (or the default when there is none).
#[derive(Debug, Clone, Default, PartialEq, clap::Parser)]
#[command(name = "session-registry", version, about = "Session node registry")]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. `127.0.0.1:22020` (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the registry key and database.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admission policy.
    #[arg(long, value_enum)]
    pub policy: Option<Policy>,
    /// An Ed25519 key (hex) admitted under the allowlist policy; repeatable, added to the file's.
    #[arg(long = "allow", value_name = "KEY")]
    pub allow: Vec<String>,
    /// Heartbeat and re-test interval, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub heartbeat_interval: Option<Duration>,
    /// Decommission after this long without a heartbeat or passed test, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub decommission_after: Option<Duration>,
    /// Remove after this long decommissioned, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub remove_after: Option<Duration>,
    /// Accepted request timestamp distance, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timestamp_tolerance: Option<Duration>,
    /// Epoch batching tick, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub tick: Option<Duration>,
    /// Reachability test timeout, seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub ping_timeout: Option<Duration>,
}

impl Cli {
    /// The configuration: the `--config` file (or the defaults) with every given flag applied.
    pub fn into_config(self) -> Result<RegistryConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => RegistryConfig::from_file(path)?,
            None => RegistryConfig::default(),
        };
        self.apply(&mut config);
        config.allowlist_keys()?;
        Ok(config)
    }

    /// Applies the given flags on top of `config`.
    pub fn apply(self, config: &mut RegistryConfig) {
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.policy {
            config.policy = v;
        }
        for key in self.allow {
            if !config.allowlist.contains(&key) {
                config.allowlist.push(key);
            }
        }
        let durations = [
            (self.heartbeat_interval, &mut config.heartbeat_interval),
            (self.decommission_after, &mut config.decommission_after),
            (self.remove_after, &mut config.remove_after),
            (self.timestamp_tolerance, &mut config.timestamp_tolerance),
            (self.tick, &mut config.tick),
            (self.ping_timeout, &mut config.ping_timeout),
        ];
        for (flag, field) in durations {
            if let Some(v) = flag {
                *field = v;
            }
        }
    }
}

/// Parses a non-negative number of seconds.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a non-negative number of seconds"))
}

/// Serde of a [`Duration`] as a number of seconds.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_toml_keeps_defaults() {
        let cfg = RegistryConfig::from_toml("heartbeat_interval = 1.5\npolicy = \"allowlist\"\n").unwrap();
        assert_eq!(cfg.heartbeat_interval, Duration::from_millis(1500));
        assert_eq!(cfg.policy, Policy::Allowlist);
        assert_eq!(cfg.decommission_after, Duration::from_secs(120));
        assert!(RegistryConfig::from_toml("bogus = 1").is_err());
        assert!(RegistryConfig::from_toml("tick = -1").is_err());
    }

    #[test]
    fn flags_override_the_file() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registry.toml");
        let key = "ab".repeat(32);
        std::fs::write(&file, format!("remove_after = 10\nallowlist = [\"{key}\"]\n")).unwrap();
        let other = "cd".repeat(32);
        let cli = Cli::try_parse_from([
            "session-registry",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--policy",
            "allowlist",
            "--allow",
            &other,
            "--decommission-after",
            "2.5",
        ])
        .unwrap();
        let cfg = cli.into_config().unwrap();
        assert_eq!(cfg.listen.port(), 0);
        assert_eq!(cfg.policy, Policy::Allowlist);
        assert_eq!(cfg.allowlist, [key, other]);
        assert_eq!(cfg.decommission_after, Duration::from_millis(2500));
        assert_eq!(cfg.remove_after, Duration::from_secs(10));
        assert_eq!(cfg.allowlist_keys().unwrap().len(), 2);
        assert!(Cli::try_parse_from(["session-registry", "--tick", "x"]).is_err());
        let bad = Cli::try_parse_from(["session-registry", "--allow", "zz"]).unwrap().into_config();
        assert!(matches!(bad, Err(ConfigError::BadAllowlistKey(_))));
    }
}
