//! Swarm data movement and catch-up: the one background task that keeps every swarm member
//! holding every message of the accounts its swarm owns.
//!
//! * **Membership changes** (network §6.5). Each node list installed by `nodelist::install`
//!   wakes the task, which compares it with the last list it fully synced ([`plan`]) and then
//!   ([`push`]) copies our swarm's accounts to nodes that joined it, and hands every account that
//!   is no longer ours (our swarm dissolved or split, we moved or were decommissioned, or a peer
//!   left strays here) to every member of the swarm that owns it now, deleting our copy once at
//!   least one of them confirmed it. Transfers go over `/node/v1/messages` in batches of
//!   `[sync] batch_bytes`, each retried with exponential backoff.
//! * **Catch-up** ([`catchup`], our design; upstream has none). At start, after entering a swarm
//!   and every `[sync] anti_entropy_secs`, the node compares per-bucket and per-account digests
//!   ([`digest`]) with each swarm peer and pulls the messages it lacks.
//!
//! One task does all of it, so at most one plan runs at a time; a newer node list cancels the
//! running plan (between two awaits: a batch is deleted here only after its confirmation) and the
//! next plan is computed against the last list whose plan completed, so nothing it owed is
//! skipped. The wire format is in `docs/node-channel.md` §5.3 and §8.

pub mod catchup;
pub mod digest;
pub mod plan;
pub mod push;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use self::plan::{Plan, Trigger};
use crate::NodeContext;
use crate::config::SyncSettings;
use crate::nodelist::NodeList;
use crate::peer::{MAX_REQUEST_BYTES, PeerError};
use crate::store::StoreError;

/// A sync step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// A peer could not be reached or refused, after every retry.
    #[error("peer: {0}")]
    Peer(#[source] PeerError),
    /// A peer's catch-up reply broke the protocol (bad account, hash or account of another
    /// swarm).
    #[error("peer sent a malformed catch-up reply")]
    BadPeer,
}

/// Retry and batching policy of the channel requests sync makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts per request (at least 1).
    pub attempts: u32,
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Target bytes per transfer request.
    pub batch_bytes: usize,
}

impl Retry {
    /// From the `[sync]` settings; the batch size is capped below the channel's request limit.
    pub fn from_settings(settings: &SyncSettings) -> Self {
        Self {
            attempts: settings.retry_attempts.max(1),
            initial: Duration::from_millis(settings.retry_initial_ms),
            max: Duration::from_millis(settings.retry_max_ms.max(settings.retry_initial_ms)),
            batch_bytes: settings.batch_bytes.clamp(64 * 1024, MAX_REQUEST_BYTES / 2),
        }
    }

    /// Runs `op` until it succeeds or the attempts are used up, sleeping `initial`, then twice
    /// as long each time (up to `max`), between attempts.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, PeerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PeerError>>,
    {
        let mut delay = self.initial;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(e) if attempt >= self.attempts => return Err(e),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "channel request failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max);
                    attempt += 1;
                }
            }
        }
    }
}

/// Starts the sync task. It runs a plan for the node list already installed (if it has swarms),
/// then one for each newer list and one every `[sync] anti_entropy_secs`, until aborted.
pub fn spawn(ctx: Arc<NodeContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(ctx))
}

async fn run(ctx: Arc<NodeContext>) {
    let settings = ctx.config.sync.clone();
    let retry = Retry::from_settings(&settings);
    let period = (settings.anti_entropy_secs > 0).then(|| Duration::from_secs(settings.anti_entropy_secs));
    let mut next_periodic = period.map(|p| Instant::now() + p);
    // The last list whose plan completed.
    let mut base: Option<Arc<NodeList>> = None;
    // The first plan runs for the list installed before the task started: that install left a
    // permit in `list_changed`.
    let mut trigger = None;
    loop {
        let why = match trigger.take() {
            Some(why) => why,
            None => {
                let timer = async {
                    match next_periodic {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = ctx.list_changed.notified() => Trigger::ListChanged,
                    () = timer => Trigger::Periodic,
                }
            }
        };
        if why == Trigger::Periodic {
            next_periodic = period.map(|p| Instant::now() + p);
        }
        let list = ctx.node_list();
        let Some(plan) = Plan::new(base.as_deref(), Arc::clone(&list), ctx.identity.ed25519_hex(), why)
        else {
            continue;
        };
        tokio::select! {
            () = execute(&ctx, &plan, &retry, why) => {
                base = Some(list);
                crate::metrics::SyncCounters::add(&ctx.metrics.sync().plans_done, 1);
            }
            () = ctx.list_changed.notified() => {
                tracing::info!("sync plan superseded by a newer node list");
                crate::metrics::SyncCounters::add(&ctx.metrics.sync().plans_superseded, 1);
                trigger = Some(Trigger::ListChanged);
            }
        }
    }
}

/// Runs one plan: pushes, then catch-up. Failures are logged; what failed is retried by the next
/// periodic run (hand-offs, catch-up) or by the joiners' own catch-up (pushes to joiners).
async fn execute(ctx: &NodeContext, plan: &Plan, retry: &Retry, why: Trigger) {
    let swarm = plan.own_swarm.map(|s| s.to_string());
    if why == Trigger::ListChanged {
        tracing::info!(
            own_swarm = swarm.as_deref(),
            joiners = plan.joiners.len(),
            new_swarms = plan.new_swarms.len(),
            catch_up = plan.catch_up,
            "sync plan for a new node list"
        );
    }
    match push::push(ctx, plan, retry).await {
        Ok(outcome) if outcome == push::PushOutcome::default() => {}
        Ok(outcome) => tracing::info!(
            joiner_accounts = outcome.joiner_accounts,
            handed_off_accounts = outcome.handed_off_accounts,
            dropped = outcome.dropped,
            failed_batches = outcome.failed_batches,
            "sync push done"
        ),
        Err(e) => tracing::warn!(error = %e, "sync push failed"),
    }
    if let (true, Some(swarm)) = (plan.catch_up, plan.own_swarm) {
        match catchup::catch_up(ctx, &plan.list, swarm, retry).await {
            Ok(outcome) => {
                let level_info =
                    outcome.received > 0 || outcome.peers_failed > 0 || why == Trigger::ListChanged;
                if level_info {
                    tracing::info!(
                        peers_ok = outcome.peers_ok,
                        peers_failed = outcome.peers_failed,
                        received = outcome.received,
                        "catch-up done"
                    );
                } else {
                    tracing::debug!(peers_ok = outcome.peers_ok, "catch-up: nothing missing");
                }
            }
            Err(e) => tracing::warn!(error = %e, "catch-up failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn retry_gives_up_after_the_attempts_and_returns_the_first_success() {
        let retry = Retry {
            attempts: 4,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(3),
            batch_bytes: 1 << 20,
        };
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry
            .run(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(PeerError::Timeout) }
            })
            .await;
        assert!(matches!(result, Err(PeerError::Timeout)));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let calls = AtomicU32::new(0);
        let ok = retry
            .run(|| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 2 { Err(PeerError::Timeout) } else { Ok(n) } }
            })
            .await;
        assert_eq!(ok.unwrap(), 2);
    }
}
