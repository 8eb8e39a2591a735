//! Catch-up between swarm members (`docs/node-channel.md` §8): compare bucket digests, list the
//! account digests of the buckets that differ, and fetch the messages this node lacks. Pull only:
//! a node never pushes what its peer lacks, and never deletes what a peer says it lacks.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use session_protocol::message_hash::MessageHash;
use session_protocol::swarm::SwarmId;

use super::digest::{AccountDigest, BUCKETS, bucket_digests, bucket_of};
use super::push::short_node;
use super::{Retry, SyncError};
use crate::metrics::SyncCounters;
use crate::nodelist::{NodeList, NodeRecord};
use crate::peer::wire::{
    AccountsReply, AccountsRequest, DigestReply, DigestRequest, FetchAccount, FetchReply, FetchRequest,
    WireAccountDigest, WireBucket, WireMessage,
};
use crate::peer::{MESSAGES_CHUNK_BYTES, PeerError};
use crate::store::StoreError;
use crate::{AccountKey, NodeContext};

/// Buckets asked for in one `/node/v1/accounts` request.
const BUCKETS_PER_REQUEST: usize = 32;
/// Accounts in one `/node/v1/fetch` request.
const ACCOUNTS_PER_FETCH: usize = 500;
/// `have` hashes in one `/node/v1/fetch` request (about 2.3 MB of JSON).
const HAVE_PER_FETCH: usize = 50_000;
/// Size budget of one fetch reply, estimated as for transfers.
pub const FETCH_REPLY_BYTES: usize = MESSAGES_CHUNK_BYTES;

/// What one catch-up run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpOutcome {
    /// Peers that answered every request.
    pub peers_ok: usize,
    /// Peers that failed (after retries) or refused.
    pub peers_failed: usize,
    /// New messages stored.
    pub received: usize,
}

/// Catches up from every other member of `swarm` in `list`, one after the other.
pub(crate) async fn catch_up(
    ctx: &NodeContext,
    list: &Arc<NodeList>,
    swarm: SwarmId,
    retry: &Retry,
) -> Result<CatchUpOutcome, SyncError> {
    let own = ctx.identity.ed25519_hex();
    let mut outcome = CatchUpOutcome::default();
    for peer in list.members(swarm).filter(|n| n.pubkey_ed25519 != own) {
        match catch_up_from(ctx, list, swarm, peer, retry).await {
            Ok(received) => {
                outcome.peers_ok += 1;
                outcome.received += received;
            }
            Err(SyncError::Store(e)) => return Err(SyncError::Store(e)),
            Err(e) => {
                outcome.peers_failed += 1;
                tracing::warn!(peer = %short_node(peer), error = %e, "catch-up from peer failed");
            }
        }
    }
    let counters = ctx.metrics.sync();
    SyncCounters::add(
        if outcome.peers_failed == 0 { &counters.catch_up_ok } else { &counters.catch_up_failed },
        1,
    );
    Ok(outcome)
}

/// One peer: digest, accounts, fetch. Returns how many new messages were stored.
async fn catch_up_from(
    ctx: &NodeContext,
    list: &Arc<NodeList>,
    swarm: SwarmId,
    peer: &NodeRecord,
    retry: &Retry,
) -> Result<usize, SyncError> {
    let mine = own_digests(ctx, list, swarm, None).await?;
    let buckets = bucket_digests(&mine)
        .into_iter()
        .map(|b| WireBucket { bucket: b.bucket, count: b.count, digest: hex::encode(b.digest) })
        .collect();
    let request = DigestRequest { swarm: swarm.to_string(), buckets };
    let reply: DigestReply = retry.run(|| ctx.peers.digest(peer, &request)).await?;
    if reply.differ.is_empty() {
        return Ok(0);
    }
    let mine: BTreeMap<AccountKey, AccountDigest> = mine.into_iter().map(|d| (d.account, d)).collect();
    let mut wanted = Vec::new();
    for buckets in reply.differ.chunks(BUCKETS_PER_REQUEST) {
        let request = AccountsRequest { swarm: swarm.to_string(), buckets: buckets.to_vec() };
        let reply: AccountsReply = retry.run(|| ctx.peers.account_digests(peer, &request)).await?;
        for theirs in reply.accounts {
            let Ok(account) = theirs.account.parse::<AccountKey>() else { return Err(SyncError::BadPeer) };
            if list.swarm_of(&account) != Some(swarm) || theirs.count == 0 {
                continue;
            }
            let same = mine
                .get(&account)
                .is_some_and(|m| m.count == theirs.count && hex::encode(m.digest) == theirs.digest);
            if !same {
                wanted.push(account);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(0);
    }
    tracing::debug!(peer = %short_node(peer), accounts = wanted.len(), "catch-up: accounts differ");
    let mut received = 0;
    let mut group: Vec<(AccountKey, HashSet<MessageHash>)> = Vec::new();
    let mut group_hashes = 0;
    for account in wanted {
        let mut skip: HashSet<MessageHash> =
            ctx.store.account_messages(account, i64::MIN).await?.into_iter().map(|m| m.hash).collect();
        skip.extend(ctx.store.tombstones(account).await?);
        if !group.is_empty()
            && (group.len() >= ACCOUNTS_PER_FETCH || group_hashes + skip.len() > HAVE_PER_FETCH)
        {
            received += fetch(ctx, list, swarm, peer, std::mem::take(&mut group), retry).await?;
            group_hashes = 0;
        }
        group_hashes += skip.len();
        group.push((account, skip));
    }
    if !group.is_empty() {
        received += fetch(ctx, list, swarm, peer, group, retry).await?;
    }
    Ok(received)
}

/// Fetches the messages of `group` the peer has and we do not, asking again while the peer says
/// there is more. Returns how many new messages were stored.
async fn fetch(
    ctx: &NodeContext,
    list: &Arc<NodeList>,
    swarm: SwarmId,
    peer: &NodeRecord,
    mut group: Vec<(AccountKey, HashSet<MessageHash>)>,
    retry: &Retry,
) -> Result<usize, SyncError> {
    let mut received = 0;
    loop {
        let request = FetchRequest {
            swarm: swarm.to_string(),
            accounts: group
                .iter()
                .map(|(account, skip)| FetchAccount {
                    account: account.to_hex(),
                    have: skip.iter().map(|h| h.as_str().to_owned()).collect(),
                })
                .collect(),
        };
        let reply: FetchReply = retry.run(|| ctx.peers.fetch(peer, &request)).await?;
        let now = ctx.now_ms();
        let asked: BTreeSet<AccountKey> = group.iter().map(|(a, _)| *a).collect();
        let mut valid = Vec::with_capacity(reply.messages.len());
        let mut progress = false;
        for wire in &reply.messages {
            let Ok((account, message)) = wire.decode() else { return Err(SyncError::BadPeer) };
            if !asked.contains(&account) || list.swarm_of(&account) != Some(swarm) {
                return Err(SyncError::BadPeer);
            }
            if let Some((_, skip)) = group.iter_mut().find(|(a, _)| *a == account) {
                progress |= skip.insert(message.hash);
            }
            if message.expiry_ms > now {
                valid.push((account, message));
            }
        }
        let inserted = ctx.store.bulk_insert(valid).await?;
        received += inserted;
        SyncCounters::add(&ctx.metrics.sync().received_catch_up, inserted);
        if !reply.more || !progress {
            return Ok(received);
        }
    }
}

/// Our digests of the accounts of `swarm` (optionally only those in `buckets`).
async fn own_digests(
    ctx: &NodeContext,
    list: &Arc<NodeList>,
    swarm: SwarmId,
    buckets: Option<BTreeSet<u8>>,
) -> Result<Vec<AccountDigest>, StoreError> {
    let list = Arc::clone(list);
    ctx.store
        .account_digests(ctx.now_ms(), move |account| {
            list.swarm_of(account) == Some(swarm)
                && buckets.as_ref().is_none_or(|b| b.contains(&bucket_of(account)))
        })
        .await
}

// ---- the answering side ----

/// Why a catch-up request was not answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    /// The caller or this node is not in the named swarm (by this node's list).
    #[error("not a member of this swarm")]
    NotInSwarm,
    /// The database failed.
    #[error("database error")]
    Store(#[from] StoreError),
}

impl ServeError {
    /// The HTTP status of the error reply.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::NotInSwarm => 409,
            Self::Store(_) => 500,
        }
    }
}

/// Checks that both `sender` (Ed25519 hex) and this node are members of `swarm` (hex).
fn check_swarm(ctx: &NodeContext, sender: &str, swarm: &str) -> Result<(Arc<NodeList>, SwarmId), ServeError> {
    let swarm: SwarmId = swarm.parse().map_err(|_| ServeError::Invalid("malformed swarm id"))?;
    let list = ctx.node_list();
    let member = |key: &str| list.by_ed25519(key).and_then(NodeRecord::swarm) == Some(swarm);
    if !member(sender) || !member(ctx.identity.ed25519_hex()) {
        return Err(ServeError::NotInSwarm);
    }
    Ok((list, swarm))
}

/// Answers `/node/v1/digest`: the buckets whose (count, digest) differ from the caller's.
pub(crate) async fn answer_digest(
    ctx: &NodeContext,
    sender: &str,
    request: DigestRequest,
) -> Result<DigestReply, ServeError> {
    let (list, swarm) = check_swarm(ctx, sender, &request.swarm)?;
    let mut theirs: [Option<(u64, &str)>; BUCKETS] = [None; BUCKETS];
    for bucket in &request.buckets {
        theirs[usize::from(bucket.bucket)] = Some((bucket.count, bucket.digest.as_str()));
    }
    let mut ours: [Option<(u64, String)>; BUCKETS] = std::array::from_fn(|_| None);
    for bucket in bucket_digests(&own_digests(ctx, &list, swarm, None).await?) {
        ours[usize::from(bucket.bucket)] = Some((bucket.count, hex::encode(bucket.digest)));
    }
    let differ = (0..BUCKETS)
        .filter(|&i| theirs[i] != ours[i].as_ref().map(|(count, digest)| (*count, digest.as_str())))
        .filter_map(|i| u8::try_from(i).ok())
        .collect();
    Ok(DigestReply { differ })
}

/// Answers `/node/v1/accounts`: our account digests in the requested buckets.
pub(crate) async fn answer_accounts(
    ctx: &NodeContext,
    sender: &str,
    request: AccountsRequest,
) -> Result<AccountsReply, ServeError> {
    let (list, swarm) = check_swarm(ctx, sender, &request.swarm)?;
    let buckets: BTreeSet<u8> = request.buckets.into_iter().collect();
    let accounts = own_digests(ctx, &list, swarm, Some(buckets))
        .await?
        .into_iter()
        .map(|d| WireAccountDigest {
            account: d.account.to_hex(),
            count: d.count,
            digest: hex::encode(d.digest),
        })
        .collect();
    Ok(AccountsReply { accounts })
}

/// Answers `/node/v1/fetch`: our live messages of the requested accounts of the swarm that are
/// not in the caller's `have`, up to [`FETCH_REPLY_BYTES`].
pub(crate) async fn answer_fetch(
    ctx: &NodeContext,
    sender: &str,
    request: FetchRequest,
) -> Result<FetchReply, ServeError> {
    let (list, swarm) = check_swarm(ctx, sender, &request.swarm)?;
    let mut wanted = Vec::with_capacity(request.accounts.len());
    for entry in request.accounts {
        let account: AccountKey =
            entry.account.parse().map_err(|_| ServeError::Invalid("malformed account"))?;
        if list.swarm_of(&account) != Some(swarm) {
            continue;
        }
        let have = entry
            .have
            .iter()
            .map(|h| MessageHash::from_ascii(h.as_bytes()))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(|_| ServeError::Invalid("malformed message hash"))?;
        wanted.push((account, have));
    }
    let (messages, more) = ctx.store.messages_except(wanted, ctx.now_ms(), FETCH_REPLY_BYTES).await?;
    let messages = messages.iter().map(|(account, message)| WireMessage::encode(account, message)).collect();
    Ok(FetchReply { messages, more })
}

impl From<PeerError> for SyncError {
    fn from(e: PeerError) -> Self {
        Self::Peer(e)
    }
}
