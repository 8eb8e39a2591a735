//! Node configuration: a TOML file, every field overridable by a command-line flag.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Node registry URL (used once the registry exists).
    pub registry_url: Option<String>,
    /// Serve HTTPS with a self-signed certificate made at first start.
    pub tls: bool,
    /// Limits.
    pub limits: Limits,
    /// Hosts (`host` or `host:port`) that onion requests may be proxied to. Loopback hosts are
    /// allowed only when `allow_loopback_proxy` is set (development networks).
    pub proxy_allowlist: Vec<String>,
    /// Allow proxying onion requests to loopback addresses (development only).
    pub allow_loopback_proxy: bool,
}

/// Configurable limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Cap on the database size in bytes; stores fail once it is reached (upstream: 3.5 GiB).
    pub max_db_bytes: u64,
    /// Largest request body accepted, in bytes (upstream: 10 MiB).
    pub max_body_bytes: usize,
    /// Rate limit per client IP: sustained requests per second (upstream: 300).
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
            tls: false,
            limits: Limits::default(),
            proxy_allowlist: Vec::new(),
            allow_loopback_proxy: false,
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
    }
}
