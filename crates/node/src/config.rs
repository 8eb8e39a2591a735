//! Node configuration: a TOML file, every field overridable by a command-line flag.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address to listen on (HTTP, or HTTPS with `tls`).
    pub listen: SocketAddr,
    /// The public IPv4 address other nodes and clients reach us at (default: the listen IP).
    pub public_ip: Option<std::net::Ipv4Addr>,
    /// Directory for the node key, the database and the TLS certificate.
    pub data_dir: PathBuf,
    /// Static node-list file (JSON, `get_service_nodes` shape), reloaded when it changes.
    pub node_list_file: Option<PathBuf>,
    /// Node registry URL (`docs/registry.md`): register, heartbeat and take the node list from
    /// the registry's verified epoch chain instead of `node_list_file`.
    pub registry_url: Option<String>,
    /// The registry's Ed25519 key (hex). When absent, the key the registry presents at first
    /// contact is pinned in the data dir (trust on first use).
    pub registry_pubkey: Option<String>,
    /// Seconds between heartbeats to the registry (upstream storage servers ping every 30 s).
    pub registry_heartbeat_secs: u64,
    /// Serve HTTPS with a self-signed certificate made at first start.
    pub tls: bool,
    /// Limits.
    pub limits: Limits,
    /// Hosts (`host` or `host:port`) that onion requests may be proxied to. Loopback hosts are
    /// allowed only when `allow_loopback_proxy` is set (development networks).
    pub proxy_allowlist: Vec<String>,
    /// Allow proxying onion requests to loopback addresses (development only).
    pub allow_loopback_proxy: bool,
    /// Swarm data movement and catch-up (`[sync]`).
    pub sync: SyncSettings,
    /// Worker threads of the async runtime; 0 (the default) is one per CPU. Several nodes
    /// sharing a few cores (a devnet, the load generator) run better with 1 each: no wake-ups
    /// across threads inside a node.
    pub threads: usize,
}

/// Settings of swarm data movement on node-list changes and of catch-up (`crate::sync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Seconds between anti-entropy runs (catch-up from every swarm peer, and handing off
    /// messages of accounts that are not ours). 0 disables the periodic runs; catch-up still
    /// runs at start and when the node enters a swarm.
    pub anti_entropy_secs: u64,
    /// Target size of one transfer request, bytes (capped at the channel's request limit).
    pub batch_bytes: usize,
    /// Attempts per transfer request and peer before giving up on that peer for this run.
    pub retry_attempts: u32,
    /// Delay before the first retry, ms; it doubles after each failed attempt.
    pub retry_initial_ms: u64,
    /// Longest delay between retries, ms.
    pub retry_max_ms: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            anti_entropy_secs: 300,
            batch_bytes: 4 * 1024 * 1024,
            retry_attempts: 5,
            retry_initial_ms: 1000,
            retry_max_ms: 30_000,
        }
    }
}

/// Configurable limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Cap on the database size in bytes; stores fail once it is reached (upstream: 3.5 GiB).
    pub max_db_bytes: u64,
    /// Largest request body accepted, in bytes (upstream: 10 MiB).
    pub max_body_bytes: usize,
    /// Rate limit per client IP on `/storage_rpc/v1`: sustained requests per second (upstream:
    /// 300). 0 disables the limit (load tests).
    pub rate_per_second: u32,
    /// Rate limit per client IP: burst (upstream: 600).
    pub rate_burst: u32,
    /// Read connections in the database pool.
    pub read_connections: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 22021)),
            public_ip: None,
            data_dir: PathBuf::from("session-node-data"),
            node_list_file: None,
            registry_url: None,
            registry_pubkey: None,
            registry_heartbeat_secs: 30,
            tls: false,
            limits: Limits::default(),
            proxy_allowlist: Vec::new(),
            allow_loopback_proxy: false,
            sync: SyncSettings::default(),
            threads: 0,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_db_bytes: 3584 * 1024 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            rate_per_second: 300,
            rate_burst: 600,
            read_connections: 4,
        }
    }
}

impl NodeConfig {
    /// Parses a TOML file's text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads and parses a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        session_common::config_file::read_toml(path)
    }
}

/// The configuration file could not be used.
pub use session_common::config_file::ConfigFileError as ConfigError;

/// Command-line flags of the `session-node` binary. Each flag overrides the value from the TOML
/// file given with `--config` (or the default when there is none).
#[derive(Debug, Clone, Default, PartialEq, clap::Parser)]
#[command(name = "session-node", version, about = "Session service node: storage RPC and onion requests")]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. `127.0.0.1:22021` (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the node key, the database and the TLS certificate.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Static node-list file (JSON, `get_service_nodes` shape), reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    pub node_list: Option<PathBuf>,
    /// Node registry URL.
    #[arg(long, value_name = "URL")]
    pub registry_url: Option<String>,
    /// The registry's Ed25519 key, hex (else pinned at first contact).
    #[arg(long, value_name = "HEX")]
    pub registry_pubkey: Option<String>,
    /// Seconds between heartbeats to the registry.
    #[arg(long, value_name = "SECS")]
    pub registry_heartbeat_secs: Option<u64>,
    /// Serve HTTPS with a self-signed certificate (`--tls`, `--tls=true` or `--tls=false`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Cap on the database size, bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_db_bytes: Option<u64>,
    /// Largest request body accepted, bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Rate limit per client IP, requests per second (0 disables the limit).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<u32>,
    /// Rate limit per client IP, burst.
    #[arg(long, value_name = "REQUESTS")]
    pub burst: Option<u32>,
    /// A host (`host` or `host:port`) onion requests may be proxied to; repeatable, added to the
    /// file's list.
    #[arg(long = "proxy-allow", value_name = "HOST")]
    pub proxy_allow: Vec<String>,
    /// Allow proxying onion requests to loopback addresses (development only).
    #[arg(long)]
    pub allow_loopback_proxy: bool,
    /// The public IPv4 address other nodes and clients reach us at.
    #[arg(long, value_name = "IPV4")]
    pub public_ip: Option<std::net::Ipv4Addr>,
    /// Seconds between anti-entropy runs (0 disables them).
    #[arg(long, value_name = "SECS")]
    pub anti_entropy_secs: Option<u64>,
    /// Delay before the first retry of a failed transfer, ms (doubles per retry).
    #[arg(long, value_name = "MS")]
    pub sync_retry_ms: Option<u64>,
    /// Worker threads of the async runtime (0: one per CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl Cli {
    /// The configuration: the `--config` file (or the defaults) with every given flag applied.
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        self.apply(&mut config);
        Ok(config)
    }

    /// Applies the given flags on top of `config`.
    pub fn apply(self, config: &mut NodeConfig) {
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.node_list {
            config.node_list_file = Some(v);
        }
        if let Some(v) = self.registry_url {
            config.registry_url = Some(v);
        }
        if let Some(v) = self.registry_pubkey {
            config.registry_pubkey = Some(v);
        }
        if let Some(v) = self.registry_heartbeat_secs {
            config.registry_heartbeat_secs = v;
        }
        if let Some(v) = self.tls {
            config.tls = v;
        }
        if let Some(v) = self.max_db_bytes {
            config.limits.max_db_bytes = v;
        }
        if let Some(v) = self.max_body_bytes {
            config.limits.max_body_bytes = v;
        }
        if let Some(v) = self.rate {
            config.limits.rate_per_second = v;
        }
        if let Some(v) = self.burst {
            config.limits.rate_burst = v;
        }
        for host in self.proxy_allow {
            if !config.proxy_allowlist.contains(&host) {
                config.proxy_allowlist.push(host);
            }
        }
        if self.allow_loopback_proxy {
            config.allow_loopback_proxy = true;
        }
        if let Some(v) = self.public_ip {
            config.public_ip = Some(v);
        }
        if let Some(v) = self.anti_entropy_secs {
            config.sync.anti_entropy_secs = v;
        }
        if let Some(v) = self.sync_retry_ms {
            config.sync.retry_initial_ms = v;
        }
        if let Some(v) = self.threads {
            config.threads = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_toml_keeps_defaults() {
        let cfg = NodeConfig::from_toml("listen = \"127.0.0.5:1234\"\n[limits]\nrate_burst = 9\n").unwrap();
        assert_eq!(cfg.listen.port(), 1234);
        assert_eq!(cfg.limits.rate_burst, 9);
        assert_eq!(cfg.limits.rate_per_second, 300);
        assert!(NodeConfig::from_toml("bogus = 1").is_err());
        let cfg = NodeConfig::from_toml("[sync]\nanti_entropy_secs = 7\n").unwrap();
        assert_eq!(cfg.sync.anti_entropy_secs, 7);
        assert_eq!(cfg.sync.retry_attempts, SyncSettings::default().retry_attempts);
        assert_eq!(cfg.threads, 0, "one worker per CPU unless configured");
        assert!(NodeConfig::from_toml("[sync]\nbogus = 1\n").is_err());
    }

    #[test]
    fn flags_override_the_file() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "tls = true\nproxy_allowlist = [\"a.example\"]\n[limits]\nrate_burst = 9\n")
            .unwrap();
        let cli = Cli::try_parse_from([
            "session-node",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--tls=false",
            "--rate",
            "5",
            "--proxy-allow",
            "b.example:8080",
            "--proxy-allow",
            "a.example",
            "--allow-loopback-proxy",
            "--anti-entropy-secs",
            "2",
            "--threads",
            "1",
        ])
        .unwrap();
        let cfg = cli.into_config().unwrap();
        assert_eq!(cfg.threads, 1);
        assert_eq!(cfg.listen.port(), 0);
        assert!(!cfg.tls);
        assert_eq!((cfg.limits.rate_per_second, cfg.limits.rate_burst), (5, 9));
        assert_eq!(cfg.proxy_allowlist, ["a.example", "b.example:8080"]);
        assert!(cfg.allow_loopback_proxy);
        assert_eq!(cfg.sync.anti_entropy_secs, 2);
        let cli = Cli::try_parse_from(["session-node", "--tls"]).unwrap();
        assert!(cli.into_config().unwrap().tls);
        assert!(matches!(
            Cli::try_parse_from(["session-node", "--config", "/nonexistent/x.toml"]).unwrap().into_config(),
            Err(ConfigError::Read { .. })
        ));
    }
}
