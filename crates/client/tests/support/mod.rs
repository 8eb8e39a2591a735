//! Shared by the client's devnet tests: one devnet at a time, bounded tests, quick devnet timing
//! with the real binaries, and a network configuration for small devnets.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use session_client::NetworkConfig;
use session_devnet::{Binaries, Devnet, DevnetOptions, Timing};

/// One devnet at a time (per test binary).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `test` alone among this binary's devnet tests, failing it after `limit`.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, test: F) {
    let _serial = SERIAL.lock().await;
    tokio::time::timeout(limit, test).await.expect("test timed out");
}

/// `nodes` nodes in `dir` with the workspace's binaries, 1 s heartbeats, and a node
/// decommissioned after `decommission_after_secs` of silence.
pub fn options(dir: &Path, nodes: usize, decommission_after_secs: f64) -> DevnetOptions {
    let mut o = DevnetOptions::new(dir, nodes);
    o.binaries = Some(Binaries::build_for_tests().expect("building session-node and session-registry"));
    o.timing = Timing { heartbeat_secs: 1, decommission_after_secs, ..Timing::default() };
    o.ready_timeout = Duration::from_secs(180);
    o.stop_grace = Duration::from_secs(5);
    o
}

/// The devnet's registry, a pool minimum a 5-node devnet meets, 20 s per request.
pub fn config(devnet: &Devnet) -> NetworkConfig {
    let mut c = NetworkConfig::new([devnet.registry_url().unwrap()]);
    c.min_pool_size = 5;
    c.request_timeout = Duration::from_secs(20);
    c
}
