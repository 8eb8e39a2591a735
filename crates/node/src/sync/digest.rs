//! Per-account and per-bucket digests for catch-up (`docs/node-channel.md` §8.2).
//!
//! * An **account digest** is the number of the account's live messages and BLAKE2b-256
//!   (unkeyed) over the concatenation of their 43-character hashes, sorted bytewise.
//! * Accounts fall into 256 **buckets** by the first byte of the key (the byte after the prefix).
//!   A bucket digest is the sum of its accounts' counts and BLAKE2b-256 over, for each account in
//!   byte order, `account (33 bytes) || count (u64 big-endian) || account digest (32 bytes)`.
//!
//! Two nodes holding the same live messages of the same accounts compute the same digests.

use std::collections::BTreeMap;

use session_protocol::message_hash::MessageHash;

use crate::AccountKey;

/// Number of buckets.
pub const BUCKETS: usize = 256;

/// One account's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountDigest {
    /// The account.
    pub account: AccountKey,
    /// Live messages.
    pub count: u64,
    /// BLAKE2b-256 over the sorted message hashes.
    pub digest: [u8; 32],
}

/// One bucket's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketDigest {
    /// The bucket, 0–255.
    pub bucket: u8,
    /// Live messages of the bucket's accounts.
    pub count: u64,
    /// BLAKE2b-256 over the bucket's account digests.
    pub digest: [u8; 32],
}

/// The bucket of an account: the first byte of its key.
pub fn bucket_of(account: &AccountKey) -> u8 {
    account.key()[0]
}

/// Builds account digests from `(account, hash)` pairs that arrive ordered by account and then
/// by hash (as the store's scan yields them).
#[derive(Debug, Default)]
pub struct DigestBuilder {
    done: Vec<AccountDigest>,
    current: Option<(AccountKey, u64, blake2b_simd::State)>,
}

impl DigestBuilder {
    /// Adds one message hash of `account`.
    pub fn add(&mut self, account: AccountKey, hash: &MessageHash) {
        match &mut self.current {
            Some((current, count, state)) if *current == account => {
                *count += 1;
                state.update(hash.as_bytes());
            }
            _ => {
                self.flush();
                let mut state = hasher();
                state.update(hash.as_bytes());
                self.current = Some((account, 1, state));
            }
        }
    }

    /// The account digests, in the order the accounts arrived.
    pub fn finish(mut self) -> Vec<AccountDigest> {
        self.flush();
        self.done
    }

    fn flush(&mut self) {
        if let Some((account, count, state)) = self.current.take() {
            self.done.push(AccountDigest { account, count, digest: to_array(&state.finalize()) });
        }
    }
}

/// The account digest of a set of hashes (sorted here), for tests and checks.
pub fn digest_of(account: AccountKey, hashes: &[MessageHash]) -> AccountDigest {
    let mut sorted = hashes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut state = hasher();
    for hash in &sorted {
        state.update(hash.as_bytes());
    }
    AccountDigest { account, count: sorted.len() as u64, digest: to_array(&state.finalize()) }
}

/// The digests of the non-empty buckets of `accounts` (which must be in account byte order),
/// ordered by bucket.
pub fn bucket_digests(accounts: &[AccountDigest]) -> Vec<BucketDigest> {
    let mut buckets: BTreeMap<u8, (u64, blake2b_simd::State)> = BTreeMap::new();
    for account in accounts {
        let (count, state) = buckets.entry(bucket_of(&account.account)).or_insert_with(|| (0, hasher()));
        *count += account.count;
        state.update(account.account.as_bytes());
        state.update(&account.count.to_be_bytes());
        state.update(&account.digest);
    }
    buckets
        .into_iter()
        .map(|(bucket, (count, state))| BucketDigest { bucket, count, digest: to_array(&state.finalize()) })
        .collect()
}

fn hasher() -> blake2b_simd::State {
    blake2b_simd::Params::new().hash_length(32).to_state()
}

fn to_array(hash: &blake2b_simd::Hash) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_protocol::message_hash::Namespace;

    fn account(first: u8, rest: u8) -> AccountKey {
        let mut bytes = [rest; 33];
        bytes[0] = 0x05;
        bytes[1] = first;
        AccountKey::from_bytes(bytes)
    }

    fn hash(account: &AccountKey, i: u32) -> MessageHash {
        MessageHash::compute(account.as_bytes(), Namespace(0), &i.to_le_bytes())
    }

    #[test]
    fn builder_matches_digest_of_and_order_does_not_matter_for_sets() {
        let a = account(1, 1);
        let b = account(1, 2);
        let mut ha: Vec<_> = (0..5).map(|i| hash(&a, i)).collect();
        ha.sort_unstable();
        let hb = vec![hash(&b, 9)];
        let mut builder = DigestBuilder::default();
        for h in &ha {
            builder.add(a, h);
        }
        builder.add(b, &hb[0]);
        let built = builder.finish();
        let mut shuffled = ha.clone();
        shuffled.reverse();
        assert_eq!(built, vec![digest_of(a, &shuffled), digest_of(b, &hb)]);
        assert_eq!(built[0].count, 5);
        // One message more or less changes the digest.
        assert_ne!(digest_of(a, &ha[1..]).digest, built[0].digest);
    }

    #[test]
    fn buckets_group_by_first_key_byte() {
        let a = digest_of(account(1, 1), &[hash(&account(1, 1), 0)]);
        let b = digest_of(account(1, 2), &[hash(&account(1, 2), 0)]);
        let c = digest_of(account(7, 1), &[hash(&account(7, 1), 0)]);
        let buckets = bucket_digests(&[a, b, c]);
        assert_eq!(buckets.iter().map(|b| (b.bucket, b.count)).collect::<Vec<_>>(), vec![(1, 2), (7, 1)]);
        // Same content, same digest; different content in one bucket only changes that bucket.
        let b2 = digest_of(account(1, 2), &[hash(&account(1, 2), 1)]);
        let other = bucket_digests(&[a, b2, c]);
        assert_ne!(other[0], buckets[0]);
        assert_eq!(other[1], buckets[1]);
    }
}
