//! Prometheus text metrics: requests by method and status, store and retrieve latency, DB size,
//! messages stored, onion hops relayed, swarm sync and catch-up.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::StoreStats;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

/// Which timed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// A store (local write, durable).
    Store,
    /// A retrieve.
    Retrieve,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    store_latency: Histogram,
    retrieve_latency: Histogram,
    onion_relayed: AtomicU64,
    onion_final: AtomicU64,
    sync: SyncCounters,
}

/// Counters of swarm sync and catch-up (`crate::sync`).
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Messages a peer confirmed receiving from our pushes (counted per peer).
    pub pushed: AtomicU64,
    /// Transfer requests that failed after every retry.
    pub push_failures: AtomicU64,
    /// Messages deleted here after a member of their new swarm confirmed them.
    pub handed_off: AtomicU64,
    /// New messages stored from peers' pushes (`/node/v1/messages`).
    pub received_pushed: AtomicU64,
    /// New messages stored by catch-up fetches.
    pub received_catch_up: AtomicU64,
    /// Catch-up runs finished with every peer answering.
    pub catch_up_ok: AtomicU64,
    /// Catch-up runs in which at least one peer failed.
    pub catch_up_failed: AtomicU64,
    /// Sync plans (node-list changes and periodic runs) completed.
    pub plans_done: AtomicU64,
    /// Sync plans abandoned for a newer node list.
    pub plans_superseded: AtomicU64,
}

impl SyncCounters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one finished request. `method` must be a known method name or a fixed label
    /// (never client-chosen text, which would let clients grow the map).
    pub fn record_request(&self, method: &'static str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((method.to_owned(), status)).or_default() += 1;
    }

    /// Records how long a store or retrieve took.
    pub fn observe(&self, op: Timed, elapsed: Duration) {
        match op {
            Timed::Store => self.store_latency.observe(elapsed),
            Timed::Retrieve => self.retrieve_latency.observe(elapsed),
        }
    }

    /// Counts an onion layer relayed to the next hop.
    pub fn onion_relayed(&self) {
        self.onion_relayed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an onion request that ended here (final destination or proxy).
    pub fn onion_final(&self) {
        self.onion_final.fetch_add(1, Ordering::Relaxed);
    }

    /// The sync and catch-up counters.
    pub fn sync(&self) -> &SyncCounters {
        &self.sync
    }

    /// The Prometheus text exposition.
    pub fn render(&self, stats: StoreStats) -> String {
        let mut out = String::new();
        out.push_str("# TYPE session_node_requests_total counter\n");
        for ((method, status), count) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "session_node_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        self.store_latency.render(&mut out, "session_node_store_seconds");
        self.retrieve_latency.render(&mut out, "session_node_retrieve_seconds");
        let _ = writeln!(out, "# TYPE session_node_db_bytes gauge\nsession_node_db_bytes {}", stats.db_bytes);
        let _ = writeln!(out, "# TYPE session_node_messages gauge\nsession_node_messages {}", stats.messages);
        let _ = writeln!(
            out,
            "# TYPE session_node_onion_relayed_total counter\nsession_node_onion_relayed_total {}",
            self.onion_relayed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE session_node_onion_final_total counter\nsession_node_onion_final_total {}",
            self.onion_final.load(Ordering::Relaxed)
        );
        let sync = &self.sync;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, value) in [
            ("session_node_sync_pushed_messages_total", load(&sync.pushed)),
            ("session_node_sync_push_failures_total", load(&sync.push_failures)),
            ("session_node_sync_handed_off_messages_total", load(&sync.handed_off)),
            ("session_node_sync_plans_done_total", load(&sync.plans_done)),
            ("session_node_sync_plans_superseded_total", load(&sync.plans_superseded)),
        ] {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# TYPE session_node_sync_received_messages_total counter\n\
             session_node_sync_received_messages_total{{via=\"push\"}} {}\n\
             session_node_sync_received_messages_total{{via=\"catch_up\"}} {}",
            load(&sync.received_pushed),
            load(&sync.received_catch_up)
        );
        let _ = writeln!(
            out,
            "# TYPE session_node_catch_up_runs_total counter\n\
             session_node_catch_up_runs_total{{result=\"ok\"}} {}\n\
             session_node_catch_up_runs_total{{result=\"failed\"}} {}",
            load(&sync.catch_up_ok),
            load(&sync.catch_up_failed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts() {
        let m = Metrics::default();
        m.record_request("store", 200);
        m.record_request("store", 200);
        m.observe(Timed::Store, Duration::from_micros(700));
        m.onion_relayed();
        let text = m.render(StoreStats { messages: 5, db_bytes: 4096 });
        assert!(text.contains("session_node_requests_total{method=\"store\",status=\"200\"} 2"));
        assert!(text.contains("session_node_store_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("session_node_messages 5"));
        assert!(text.contains("session_node_onion_relayed_total 1"));
        SyncCounters::add(&m.sync().received_catch_up, 3);
        let text = m.render(StoreStats::default());
        assert!(text.contains("session_node_sync_received_messages_total{via=\"catch_up\"} 3"), "{text}");
        assert!(text.contains("session_node_catch_up_runs_total{result=\"ok\"} 0"), "{text}");
    }
}
