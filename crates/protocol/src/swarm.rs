//! Swarm ids, swarm space, pubkey → swarm lookup and new swarm ids (network §1.3, §6.1, §6.2).
//!
//! Every account pubkey maps to a point in the u64 "swarm space"; the account is stored by the
//! swarm whose id is nearest to that point on the wrapping u64 circle.

use std::fmt;
use std::str::FromStr;

/// A swarm id (network §1.3). JSON responses of the storage server write it as hex without
/// `0x` (see the `Display`/`FromStr` impls); oxend writes it as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwarmId(pub u64);

impl SwarmId {
    /// `0xFFFF_FFFF_FFFF_FFFF`: "no swarm" (oxend `UNASSIGNED_SWARM_ID`, SS `INVALID_SWARM_ID`).
    /// Decommissioned nodes carry it; it is never a real swarm.
    pub const INVALID: Self = Self(u64::MAX);

    /// False for [`SwarmId::INVALID`].
    pub fn is_valid(self) -> bool {
        self != Self::INVALID
    }
}

impl fmt::Display for SwarmId {
    /// Lowercase hex without `0x` or padding, as the storage server's JSON has it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl FromStr for SwarmId {
    type Err = InvalidSwarmId;

    /// Parses 1 to 16 hex digits (either case), no `0x`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidSwarmId);
        }
        u64::from_str_radix(text, 16).map(Self).map_err(|_| InvalidSwarmId)
    }
}

/// A swarm id string is not 1 to 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a swarm id must be 1 to 16 hex digits")]
pub struct InvalidSwarmId;

/// The largest assignable swarm id, `2^64 − 2` (oxend `MAX_ID`).
pub const MAX_SWARM_ID: u64 = u64::MAX - 1;

/// The swarm-space position of an account pubkey (network §6.2 step 1): the 32 key bytes after
/// the prefix, split into four 8-byte chunks, XORed together and read big-endian.
pub fn swarm_space(pubkey: &[u8; 33]) -> u64 {
    pubkey[1..]
        .chunks_exact(8)
        .map(|chunk| u64::from_be_bytes(chunk.try_into().expect("chunks_exact(8) yields 8 bytes")))
        .fold(0, |acc, x| acc ^ x)
}

/// The swarm responsible for a swarm-space position (network §6.2 steps 2–4), or `None` when
/// `swarm_ids` is empty.
///
/// `right` is the smallest id ≥ `space` (wrapping to the smallest id), `left` the id before it
/// in ascending order (wrapping to the largest). With wrapping u64 distances, `right` wins only
/// if strictly nearer: ties go to `left`. The ids may come in any order (the result does not
/// depend on it) and duplicates are harmless. Pass only active swarms — never
/// [`SwarmId::INVALID`]. Runs in one pass without allocating.
pub fn swarm_for_space(space: u64, swarm_ids: &[SwarmId]) -> Option<SwarmId> {
    let mut min_all: Option<u64> = None;
    let mut max_all: Option<u64> = None;
    let mut min_at_or_above: Option<u64> = None;
    let mut max_below: Option<u64> = None;
    for &SwarmId(id) in swarm_ids {
        min_all = Some(min_all.map_or(id, |m| m.min(id)));
        max_all = Some(max_all.map_or(id, |m| m.max(id)));
        if id >= space {
            min_at_or_above = Some(min_at_or_above.map_or(id, |m| m.min(id)));
        } else {
            max_below = Some(max_below.map_or(id, |m| m.max(id)));
        }
    }
    let (min_all, max_all) = (min_all?, max_all?);
    let (right, left) = match min_at_or_above {
        // `left` is the predecessor of `right`: the largest id below it, or the largest overall.
        Some(right) => (right, max_below.unwrap_or(max_all)),
        None => (min_all, max_all),
    };
    let dright = right.wrapping_sub(space);
    let dleft = space.wrapping_sub(left);
    Some(SwarmId(if dright < dleft { right } else { left }))
}

/// The swarm that stores `pubkey`: [`swarm_for_space`] of [`swarm_space`] (network §6.2).
pub fn swarm_for_pubkey(pubkey: &[u8; 33], swarm_ids: &[SwarmId]) -> Option<SwarmId> {
    swarm_for_space(swarm_space(pubkey), swarm_ids)
}

/// The id oxend gives a newly created swarm (`get_new_swarm_id`, network §6.1).
///
/// With no swarms: 0. Otherwise the midpoint of the largest gap between consecutive ids (the
/// lowest gap wins ties); the wrap-around gap `MAX_ID − last + first + 1` replaces it only if
/// strictly larger, and the midpoint wraps modulo `MAX_ID + 1`. The ids may come in any order;
/// duplicates and [`SwarmId::INVALID`] (the unassigned bucket, never a swarm) are ignored.
pub fn new_swarm_id(existing: &[SwarmId]) -> SwarmId {
    let mut ids: Vec<u64> = existing.iter().map(|id| id.0).filter(|&id| id != SwarmId::INVALID.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return SwarmId(0);
    };

    let mut max_dist = 0u64;
    let mut best_start = first;
    for pair in ids.windows(2) {
        let dist = pair[1] - pair[0];
        if dist > max_dist {
            max_dist = dist;
            best_start = pair[0];
        }
    }
    // 0 and MAX_ID are one apart on the circle. `first ≤ last ≤ MAX_ID`, so the sum is at most
    // MAX_ID + 1 = u64::MAX: no underflow or overflow.
    let wrap_dist = MAX_SWARM_ID - last + first + 1;
    if wrap_dist > max_dist {
        max_dist = wrap_dist;
        best_start = last;
    }

    let diff = max_dist / 2;
    let to_max = MAX_SWARM_ID - best_start;
    SwarmId(if diff > to_max { diff - to_max - 1 } else { best_start + diff })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        assert_eq!(SwarmId::INVALID.to_string(), "ffffffffffffffff");
        assert_eq!("ff".parse::<SwarmId>(), Ok(SwarmId(255)));
        assert!("0x1".parse::<SwarmId>().is_err());
        assert!("".parse::<SwarmId>().is_err());
        assert!("1".repeat(17).parse::<SwarmId>().is_err());
    }

    #[test]
    fn lookup_ties_go_left() {
        let ids = [SwarmId(10), SwarmId(20)];
        assert_eq!(swarm_for_space(15, &ids), Some(SwarmId(10)));
        assert_eq!(swarm_for_space(16, &ids), Some(SwarmId(20)));
        assert_eq!(swarm_for_space(20, &ids), Some(SwarmId(20)));
        assert_eq!(swarm_for_space(u64::MAX, &ids), Some(SwarmId(10)));
        assert_eq!(swarm_for_space(0, &[]), None);
        assert_eq!(swarm_for_space(7, &[SwarmId(3)]), Some(SwarmId(3)));
    }

    #[test]
    fn new_swarm_id_basics() {
        assert_eq!(new_swarm_id(&[]), SwarmId(0));
        assert_eq!(new_swarm_id(&[SwarmId(0)]), SwarmId(MAX_SWARM_ID / 2));
        assert_eq!(new_swarm_id(&[SwarmId::INVALID]), SwarmId(0));
    }
}
