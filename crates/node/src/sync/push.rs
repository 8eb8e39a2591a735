//! Pushing messages to other nodes when membership changes (network §6.5): to the nodes that
//! joined our swarm, and to the swarm that now owns an account that is no longer ours, deleting
//! our copy once a member of that swarm confirmed it.

use std::collections::BTreeMap;

use session_protocol::message_hash::MessageHash;
use session_protocol::swarm::SwarmId;

use super::plan::{Destination, Plan};
use super::{Retry, SyncError};
use crate::metrics::SyncCounters;
use crate::nodelist::NodeRecord;
use crate::peer::MAX_REQUEST_BYTES;
use crate::peer::wire::{WireMessage, encode_messages};
use crate::store::StoredMessage;
use crate::{AccountKey, NodeContext};

/// What a push pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Accounts whose messages went to joiners.
    pub joiner_accounts: usize,
    /// Accounts handed off to another swarm.
    pub handed_off_accounts: usize,
    /// Messages deleted here after confirmation.
    pub dropped: usize,
    /// Batches that no target confirmed (their messages stay here for the next run).
    pub failed_batches: usize,
}

/// Runs the push part of `plan`: scans every stored account once.
pub(crate) async fn push(ctx: &NodeContext, plan: &Plan, retry: &Retry) -> Result<PushOutcome, SyncError> {
    let accounts = ctx.store.accounts().await?;
    let mut to_joiners = Vec::new();
    let mut hand_off: BTreeMap<SwarmId, Vec<AccountKey>> = BTreeMap::new();
    for account in accounts {
        match plan.destination(&account) {
            Destination::Stay => {}
            Destination::Joiners(_) => to_joiners.push(account),
            Destination::HandOff { swarm, .. } => hand_off.entry(swarm).or_default().push(account),
        }
    }
    let mut outcome = PushOutcome {
        joiner_accounts: to_joiners.len(),
        handed_off_accounts: hand_off.values().map(Vec::len).sum(),
        ..PushOutcome::default()
    };
    if !to_joiners.is_empty() {
        let targets: Vec<&NodeRecord> = plan.joiners.iter().collect();
        send_accounts(ctx, &to_joiners, &targets, false, retry, &mut outcome).await?;
    }
    for (swarm, accounts) in &hand_off {
        let targets: Vec<&NodeRecord> = plan.list.members(*swarm).collect();
        send_accounts(ctx, accounts, &targets, true, retry, &mut outcome).await?;
    }
    Ok(outcome)
}

/// Sends the live messages of `accounts` to every node of `targets`, in batches of about
/// `retry.batch_bytes`. With `drop_confirmed`, a batch that at least one target confirmed is
/// deleted here (without tombstones).
async fn send_accounts(
    ctx: &NodeContext,
    accounts: &[AccountKey],
    targets: &[&NodeRecord],
    drop_confirmed: bool,
    retry: &Retry,
    outcome: &mut PushOutcome,
) -> Result<(), SyncError> {
    let mut batch: Vec<(AccountKey, StoredMessage)> = Vec::new();
    let mut batch_bytes = 0;
    for account in accounts {
        for message in ctx.store.account_messages(*account, ctx.now_ms()).await? {
            let size = WireMessage::estimated_len(&message);
            if !batch.is_empty() && batch_bytes + size > retry.batch_bytes {
                flush(ctx, std::mem::take(&mut batch), targets, drop_confirmed, retry, outcome).await?;
                batch_bytes = 0;
            }
            batch_bytes += size;
            batch.push((*account, message));
        }
    }
    if !batch.is_empty() {
        flush(ctx, batch, targets, drop_confirmed, retry, outcome).await?;
    }
    Ok(())
}

/// Sends one batch to every target at once (each with retries); drops it here if asked and at
/// least one target confirmed it.
async fn flush(
    ctx: &NodeContext,
    batch: Vec<(AccountKey, StoredMessage)>,
    targets: &[&NodeRecord],
    drop_confirmed: bool,
    retry: &Retry,
    outcome: &mut PushOutcome,
) -> Result<(), SyncError> {
    let body = encode_messages(batch.iter().map(|(a, m)| (a, m)));
    if body.len() > MAX_REQUEST_BYTES {
        // A single message over the channel limit cannot be sent; keep it.
        tracing::warn!(messages = batch.len(), bytes = body.len(), "sync batch over the request limit; kept");
        outcome.failed_batches += 1;
        return Ok(());
    }
    let counters = ctx.metrics.sync();
    let sends = targets.iter().map(|peer| {
        let body = body.clone();
        async move {
            let result =
                retry.run(|| ctx.peers.send_message_batch(peer, body.clone())).await.inspect_err(|e| {
                    tracing::warn!(peer = %short_node(peer), error = %e, "sync push failed after retries");
                });
            result.ok()
        }
    });
    let replies = crate::rpc::join_all(sends.collect()).await;
    let mut confirmed = false;
    for reply in replies.into_iter().flatten() {
        SyncCounters::add(&counters.pushed, reply.received.saturating_sub(reply.rejected));
        // A refused message (expired meanwhile, say) means the batch is not fully confirmed. A
        // hand-off also needs the target to own every account by its own list: a target with an
        // older list might hand the messages back while we delete ours.
        confirmed |= reply.rejected == 0
            && reply.received == batch.len()
            && (!drop_confirmed || reply.owned == batch.len());
    }
    if !confirmed {
        SyncCounters::add(&counters.push_failures, 1);
        outcome.failed_batches += 1;
        return Ok(());
    }
    if drop_confirmed {
        let mut by_account: BTreeMap<AccountKey, Vec<MessageHash>> = BTreeMap::new();
        for (account, message) in &batch {
            by_account.entry(*account).or_default().push(message.hash);
        }
        for (account, hashes) in by_account {
            let dropped = ctx.store.drop_handed_off(account, hashes).await?;
            outcome.dropped += dropped;
            SyncCounters::add(&counters.handed_off, dropped);
        }
    }
    Ok(())
}

/// A node's short name for logs: the first 8 hex digits of its Ed25519 key.
pub(crate) fn short_node(node: &NodeRecord) -> &str {
    node.pubkey_ed25519.get(..8).unwrap_or("?")
}
