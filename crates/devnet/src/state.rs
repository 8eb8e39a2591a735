//! `DIR/devnet.json`: what a devnet is made of (addresses, keys, swarms, process ids), shared by
//! the supervising `up` process and the commands run from other shells. Every change is a
//! read-modify-write under the lock file `DIR/devnet.lock`, and the file is replaced atomically
//! (written to a temporary file, then renamed).

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::DevnetError;

/// File name of the state file inside the devnet directory.
pub const STATE_FILE: &str = "devnet.json";
/// File name of the lock file inside the devnet directory.
pub const LOCK_FILE: &str = "devnet.lock";
/// Swarm id of a node in no swarm (the registry's `INVALID_SWARM_ID`).
pub const NO_SWARM: u64 = u64::MAX;

/// A running process as recorded in the state file: its pid and, on Linux, its start time
/// (field 22 of `/proc/PID/stat`), so that a recycled pid is never mistaken for ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks after boot (Linux), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
}

/// Liveness timings given to the registry and the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Node heartbeat interval and registry re-test interval, whole seconds.
    pub heartbeat_secs: u64,
    /// The registry decommissions a node silent for this long, seconds.
    pub decommission_after_secs: f64,
    /// The registry removes a node decommissioned for this long, seconds.
    pub remove_after_secs: f64,
    /// The registry's epoch tick, seconds.
    pub tick_secs: f64,
}

impl Default for Timing {
    /// Quick formation: heartbeat 2 s, decommission after 10 s, tick 0.2 s, removal after a day.
    fn default() -> Self {
        Self { heartbeat_secs: 2, decommission_after_secs: 10.0, remove_after_secs: 86_400.0, tick_secs: 0.2 }
    }
}

/// The registry of a devnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// Where it listens (kept across restarts, so its URL does not change).
    pub listen: SocketAddr,
    /// Its Ed25519 key, hex (known after the first start).
    #[serde(default)]
    pub pubkey: String,
    /// The running process, if any.
    #[serde(default)]
    pub process: Option<ProcessId>,
    /// Its log file.
    pub log: PathBuf,
    /// Its data directory.
    pub data_dir: PathBuf,
}

/// One service node of a devnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Index (`node K` on the command line).
    pub index: usize,
    /// The IPv4 address it listens on and announces.
    pub address: Ipv4Addr,
    /// Its storage (HTTP or HTTPS) port.
    pub storage_port: u16,
    /// `http(s)://address:storage_port`.
    pub url: String,
    /// Ed25519 key, hex (empty until the first start).
    #[serde(default)]
    pub pubkey_ed25519: String,
    /// X25519 key, hex (empty until the first start).
    #[serde(default)]
    pub pubkey_x25519: String,
    /// Swarm as last seen at the registry ([`NO_SWARM`]: none, decommissioned or not yet
    /// registered).
    pub swarm_id: u64,
    /// Whether the registry lists it as active, as last seen.
    #[serde(default)]
    pub active: bool,
    /// Process id while it runs, `null` when stopped.
    pub pid: Option<u32>,
    /// Start time of that process (see [`ProcessId`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_ticks: Option<u64>,
    /// Its data directory (node key, database, certificate).
    pub data_dir: PathBuf,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl NodeEntry {
    /// The running process, if any.
    pub fn process(&self) -> Option<ProcessId> {
        self.pid.map(|pid| ProcessId { pid, start_ticks: self.pid_start_ticks })
    }

    /// Records the running process (or none).
    pub fn set_process(&mut self, process: Option<ProcessId>) {
        self.pid = process.map(|p| p.pid);
        self.pid_start_ticks = process.and_then(|p| p.start_ticks);
    }

    /// The address the node listens on.
    pub fn listen(&self) -> SocketAddr {
        SocketAddr::from((self.address, self.storage_port))
    }

    /// `URL/storage_rpc/v1`.
    pub fn rpc_url(&self) -> String {
        format!("{}/storage_rpc/v1", self.url)
    }

    /// Whether the node is in a swarm (as last seen at the registry).
    pub fn in_swarm(&self) -> bool {
        self.swarm_id != NO_SWARM
    }
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevnetState {
    /// Format version (1).
    pub version: u32,
    /// `http://127.0.0.1:PORT` of the registry.
    pub registry_url: String,
    /// The registry.
    pub registry: RegistryEntry,
    /// The nodes, by index.
    pub nodes: Vec<NodeEntry>,
    /// Nodes serve HTTPS (self-signed) instead of HTTP.
    pub tls: bool,
    /// Every node on 127.0.0.1 (instead of its own 127.0.0.N).
    pub single_ip: bool,
    /// Liveness timings.
    pub timing: Timing,
    /// The supervising `session-devnet up` process (or the test process using the library).
    #[serde(default)]
    pub supervisor: Option<ProcessId>,
}

impl DevnetState {
    /// Reads `DIR/devnet.json`; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Self>, DevnetError> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DevnetError::Io { what: format!("reading {}", path.display()), source });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| DevnetError::BadState { path: path.clone(), source })
    }

    /// Writes `DIR/devnet.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), DevnetError> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let mut text = serde_json::to_string_pretty(self).expect("the state serializes");
        text.push('\n');
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| DevnetError::Io { what: format!("writing {}", path.display()), source })
    }

    /// The node with index `k`.
    pub fn node(&self, k: usize) -> Result<&NodeEntry, DevnetError> {
        self.nodes.get(k).ok_or(DevnetError::NoSuchNode { index: k, count: self.nodes.len() })
    }

    /// The node with index `k`, mutable.
    pub fn node_mut(&mut self, k: usize) -> Result<&mut NodeEntry, DevnetError> {
        let count = self.nodes.len();
        self.nodes.get_mut(k).ok_or(DevnetError::NoSuchNode { index: k, count })
    }
}

/// The address of node `k`: `127.0.0.1` with `single_ip`, otherwise `127.0.0.(k+2)` (counting
/// on into 127.0.1.1 and up past 253 nodes).
pub fn node_address(k: usize, single_ip: bool) -> Ipv4Addr {
    if single_ip {
        return Ipv4Addr::LOCALHOST;
    }
    // Host bytes 1..=254 in the last octet; 127.0.0.1 is left to the registry.
    let m = k as u64 + 1;
    let c = (m % 254) as u8 + 1;
    let rest = m / 254;
    Ipv4Addr::new(127, (rest / 256 % 256) as u8, (rest % 256) as u8, c)
}

/// An exclusive lock on `DIR/devnet.lock`, released on drop.
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl StateLock {
    /// Blocks until the lock is held.
    pub fn acquire(dir: &Path) -> Result<Self, DevnetError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| DevnetError::Io { what: format!("opening {}", path.display()), source })?;
        file.lock()
            .map_err(|source| DevnetError::Io { what: format!("locking {}", path.display()), source })?;
        Ok(Self { file })
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Applies `change` to the state file under the lock and saves it; returns what `change`
/// returned. Fails with [`DevnetError::NoDevnet`] when there is no state file.
pub fn update<T>(
    dir: &Path,
    change: impl FnOnce(&mut DevnetState) -> Result<T, DevnetError>,
) -> Result<T, DevnetError> {
    if !dir.join(STATE_FILE).exists() {
        return Err(DevnetError::NoDevnet(dir.to_path_buf()));
    }
    let _lock = StateLock::acquire(dir)?;
    let mut state = DevnetState::load(dir)?.ok_or_else(|| DevnetError::NoDevnet(dir.to_path_buf()))?;
    let out = change(&mut state)?;
    state.save(dir)?;
    Ok(out)
}

/// Reads the state file under the lock; fails with [`DevnetError::NoDevnet`] when there is none.
pub fn read(dir: &Path) -> Result<DevnetState, DevnetError> {
    if !dir.join(STATE_FILE).exists() {
        return Err(DevnetError::NoDevnet(dir.to_path_buf()));
    }
    let _lock = StateLock::acquire(dir)?;
    DevnetState::load(dir)?.ok_or_else(|| DevnetError::NoDevnet(dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> DevnetState {
        DevnetState {
            version: 1,
            registry_url: "http://127.0.0.1:4000".into(),
            registry: RegistryEntry {
                listen: "127.0.0.1:4000".parse().unwrap(),
                pubkey: "ab".repeat(32),
                process: Some(ProcessId { pid: 10, start_ticks: Some(5) }),
                log: dir.join("registry/registry.log"),
                data_dir: dir.join("registry"),
            },
            nodes: (0..3)
                .map(|k| NodeEntry {
                    index: k,
                    address: node_address(k, false),
                    storage_port: 5000 + k as u16,
                    url: format!("http://{}:{}", node_address(k, false), 5000 + k),
                    pubkey_ed25519: "cd".repeat(32),
                    pubkey_x25519: "ef".repeat(32),
                    swarm_id: if k == 0 { NO_SWARM } else { 42 },
                    active: k != 0,
                    pid: (k != 1).then_some(100 + k as u32),
                    pid_start_ticks: None,
                    data_dir: dir.join(format!("node-{k}")),
                    log: dir.join(format!("node-{k}/node.log")),
                })
                .collect(),
            tls: false,
            single_ip: false,
            timing: Timing::default(),
            supervisor: None,
        }
    }

    #[test]
    fn state_file_round_trip_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DevnetState::load(dir.path()).unwrap().is_none());
        assert!(matches!(read(dir.path()), Err(DevnetError::NoDevnet(_))));
        assert!(matches!(read(&dir.path().join("absent")), Err(DevnetError::NoDevnet(_))));
        let state = sample(dir.path());
        state.save(dir.path()).unwrap();
        assert_eq!(DevnetState::load(dir.path()).unwrap().unwrap(), state);

        // The documented top-level and per-node fields.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(json["registry_url"], "http://127.0.0.1:4000");
        let node = &json["nodes"][1];
        for field in
            ["index", "address", "storage_port", "pubkey_ed25519", "pubkey_x25519", "swarm_id", "pid"]
        {
            assert!(node.get(field).is_some(), "field {field} in {node}");
        }
        assert_eq!(node["address"], "127.0.0.3");
        assert_eq!(node["pid"], serde_json::Value::Null);
        assert_eq!(json["nodes"][0]["swarm_id"], NO_SWARM);

        // Changes under the lock.
        update(dir.path(), |s| {
            s.node_mut(1)?.set_process(Some(ProcessId { pid: 7, start_ticks: Some(9) }));
            Ok(())
        })
        .unwrap();
        let again = read(dir.path()).unwrap();
        assert_eq!(again.nodes[1].process(), Some(ProcessId { pid: 7, start_ticks: Some(9) }));
        assert!(matches!(again.node(3), Err(DevnetError::NoSuchNode { index: 3, count: 3 })));

        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        assert!(matches!(DevnetState::load(dir.path()), Err(DevnetError::BadState { .. })));
    }

    #[test]
    fn node_addresses() {
        assert_eq!(node_address(0, false), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(node_address(11, false), Ipv4Addr::new(127, 0, 0, 13));
        assert_eq!(node_address(252, false), Ipv4Addr::new(127, 0, 0, 254));
        assert_eq!(node_address(253, false), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(node_address(5, true), Ipv4Addr::LOCALHOST);
        let all: std::collections::BTreeSet<_> = (0..600).map(|k| node_address(k, false)).collect();
        assert_eq!(all.len(), 600);
        assert!(all.iter().all(|a| a.octets()[3] != 0 && a.octets()[3] != 255 && *a != Ipv4Addr::LOCALHOST));
    }
}
