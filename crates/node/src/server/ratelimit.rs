//! Per-client-IP token buckets for `POST /storage_rpc/v1` (network §2.1, §9; upstream
//! `rate_limiter.cpp`: refill 300/s, burst 600, at most 10 000 tracked IPs).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most client IPs tracked at once (upstream: 10 000). When the table is full and no bucket
/// can be dropped, new clients are refused until buckets refill.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// A token bucket per client IP.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_second: f64,
    burst: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A limiter refilling `rate_per_second` tokens per second up to `burst` (at least 1).
    /// A rate of 0 disables limiting.
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        Self::with_capacity(rate_per_second, burst, MAX_TRACKED_CLIENTS)
    }

    /// As [`new`](Self::new), tracking at most `max_clients` IPs.
    pub fn with_capacity(rate_per_second: u32, burst: u32, max_clients: usize) -> Self {
        Self {
            rate_per_second: f64::from(rate_per_second),
            burst: f64::from(burst.max(1)),
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// True when limiting is switched off.
    pub fn is_disabled(&self) -> bool {
        self.rate_per_second <= 0.0
    }

    /// Takes one token for `ip` now; false means the request is rate-limited.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    /// Takes one token for `ip` at time `now`; false means the request is rate-limited.
    pub fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.is_disabled() {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = buckets.get_mut(&ip) {
            bucket.tokens = self.refilled(bucket, now);
            bucket.updated = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return true;
            }
            return false;
        }
        if buckets.len() >= self.max_clients {
            // Forget clients whose bucket has refilled: they are indistinguishable from new ones.
            buckets.retain(|_, b| self.refilled(b, now) < self.burst);
            if buckets.len() >= self.max_clients {
                return false;
            }
        }
        buckets.insert(ip, Bucket { tokens: self.burst - 1.0, updated: now });
        true
    }

    /// Number of IPs currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate_per_second).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(300, 600);
        let t0 = Instant::now();
        assert!((0..600).all(|_| limiter.allow_at(ip(1), t0)));
        assert!(!limiter.allow_at(ip(1), t0));
        assert!(limiter.allow_at(ip(2), t0), "other clients are unaffected");
        // 10 ms at 300/s refills 3 tokens.
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!((0..10).filter(|_| limiter.allow_at(ip(1), t1)).count(), 3);
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..1000).filter(|_| limiter.allow_at(ip(1), t2)).count(), 600);
    }

    #[test]
    fn zero_rate_disables() {
        let limiter = RateLimiter::new(0, 1);
        assert!((0..10_000).all(|_| limiter.allow(ip(1))));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn table_is_bounded() {
        let limiter = RateLimiter::with_capacity(1, 2, 3);
        let t0 = Instant::now();
        for i in 1..=3 {
            assert!(limiter.allow_at(ip(i), t0));
        }
        assert!(!limiter.allow_at(ip(4), t0), "table full of partly used buckets");
        // After the buckets refill they are dropped to make room.
        assert!(limiter.allow_at(ip(4), t0 + Duration::from_secs(5)));
        assert!(limiter.tracked() <= 3);
    }
}
