//! Network time: the local clock plus an offset learnt from the nodes (network §3.5).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The local clock (with an optional test skew) and the offset to the network's time.
#[derive(Debug)]
pub(crate) struct Clock {
    skew_ms: i64,
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock whose local reading is off by `skew_ms` (a test hook; 0 normally).
    pub(crate) fn new(skew_ms: i64) -> Self {
        Self { skew_ms, offset_ms: AtomicI64::new(0) }
    }

    /// The local clock, Unix ms (with the skew).
    pub(crate) fn local_now_ms(&self) -> u64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        real.saturating_add(self.skew_ms).max(0) as u64
    }

    /// The network's time, Unix ms.
    pub(crate) fn network_now_ms(&self) -> u64 {
        (self.local_now_ms() as i64).saturating_add(self.offset_ms()).max(0) as u64
    }

    /// The current offset.
    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// A node said it is `t_ms` now.
    pub(crate) fn observe(&self, t_ms: u64) {
        let offset = (t_ms as i64).saturating_sub(self.local_now_ms() as i64);
        self.offset_ms.store(offset, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_time_corrects_a_skewed_clock() {
        let clock = Clock::new(-300_000);
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(clock.local_now_ms() + 290_000 < real);
        clock.observe(real);
        assert!((clock.offset_ms() - 300_000).abs() < 5_000);
        assert!(clock.network_now_ms().abs_diff(real) < 5_000);
    }
}
