//! Swarm assignment (network §6.1): oxend's `calc_swarm_changes`, bit for bit.
//!
//! The input is a map swarm id → node keys, built by iterating the active nodes sorted by key;
//! nodes that have no swarm yet sit under [`SwarmId::INVALID`] (oxend's `UNASSIGNED_SWARM_ID`).
//! The output is the same map after the registrations, the Robin Hood round, new-swarm creation
//! and the dissolution of swarms that are too small. All randomness comes from an MT19937-64
//! seeded by the caller (the registry uses the first 8 bytes of the epoch hash, little-endian),
//! reduced with oxen's "portable uniform" distribution, so every replica computes the same
//! assignment.
//!
//! Two cases where oxend would misbehave are made safe (neither is reachable from a state in
//! which every swarm already has [`MIN_SWARM_SIZE`] nodes):
//! - dissolution never removes the last swarm (oxend would dissolve it and then index an empty
//!   list when fewer than [`MIN_SWARM_SIZE`] active nodes are spread over several swarms);
//! - new-swarm creation never drops nodes it has taken out of their swarms.

use std::collections::BTreeMap;

use session_protocol::swarm::{SwarmId, new_swarm_id};

/// A swarm smaller than this is "starving" and gets nodes stolen for it, or is dissolved.
pub const MIN_SWARM_SIZE: usize = 5;
/// Excess every existing swarm keeps before a new swarm is made.
pub const IDEAL_SWARM_MARGIN: usize = 2;
/// Size of a new swarm (oxend `NEW_SWARM_SIZE` = `IDEAL_SWARM_SIZE`).
pub const NEW_SWARM_SIZE: usize = 7;
/// A swarm's excess is its size above this.
pub const EXCESS_BASE: usize = 5;
/// New nodes go to a random swarm among those no larger than this percentile's size.
pub const FILL_SWARM_LOWER_PERCENTILE: usize = 25;
/// The Robin Hood round steals from swarms larger than this percentile's size minus one.
pub const STEALING_SWARM_UPPER_PERCENTILE: usize = 75;
/// Nodes of a dissolved swarm go to the smallest swarms.
pub const DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE: usize = 0;

/// Swarm id → its nodes, in order. The ids iterate ascending, as oxend's `std::map` does.
pub type SwarmMap<K> = BTreeMap<SwarmId, Vec<K>>;

/// oxend `calc_swarm_changes(swarm_to_snodes, seed)` (network §6.1).
///
/// Nodes under [`SwarmId::INVALID`] are assigned; swarms are rebalanced, created and dissolved.
/// Every node of the input is in exactly one swarm of the output, and once there are at least
/// [`MIN_SWARM_SIZE`] nodes every swarm has at least [`MIN_SWARM_SIZE`].
pub fn calc_swarm_changes<K: Clone + PartialEq>(swarms: &mut SwarmMap<K>, seed: u64) {
    if swarms.is_empty() {
        return;
    }
    let mut rng = Mt19937_64::new(seed);
    let unassigned = swarms.remove(&SwarmId::INVALID).unwrap_or_default();

    // 0. There is always at least one swarm.
    if swarms.is_empty() {
        swarms.insert(new_swarm_id(&[]), Vec::new());
    }

    // 1. New nodes.
    assign_nodes(&unassigned, swarms, &mut rng, FILL_SWARM_LOWER_PERCENTILE);

    // 2. Robin Hood: steal from the rich swarms for the starving ones, smallest first. The sizes
    // are computed once, as oxend does.
    let sorted = sorted_sizes(swarms);
    for &(poor_id, size) in &sorted {
        if size >= MIN_SWARM_SIZE {
            break;
        }
        let mut insufficient_excess;
        loop {
            let percentile_index = STEALING_SWARM_UPPER_PERCENTILE * (sorted.len() - 1) / 100;
            // Only swarms strictly larger than the percentile size − 1 (C++ size_t arithmetic).
            let threshold = sorted[percentile_index].1.wrapping_sub(1).max(MIN_SWARM_SIZE);
            let (pool, excess) = excess_pool(threshold, swarms);
            let poor_len = swarms.get(&poor_id).map_or(0, Vec::len);
            let deficit = MIN_SWARM_SIZE.saturating_sub(poor_len);
            insufficient_excess = excess < deficit;
            if insufficient_excess {
                break;
            }
            let (key, from) = pick(&pool, &mut rng);
            remove_node(swarms, from, &key);
            let poor = swarms.entry(poor_id).or_default();
            poor.push(key);
            if poor.len() >= MIN_SWARM_SIZE {
                break;
            }
        }
        if insufficient_excess {
            break;
        }
    }

    // 3. New swarms from the excess.
    create_new_swarms_from_excess(swarms, &mut rng);

    // 4. Dissolve swarms that are still too small (the lowest id first), giving their nodes to
    // the smallest swarms.
    if swarms.len() > 1 {
        while swarms.len() > 1 {
            let Some(small_id) =
                swarms.iter().find(|(_, nodes)| nodes.len() < MIN_SWARM_SIZE).map(|(&id, _)| id)
            else {
                break;
            };
            let orphans = swarms.remove(&small_id).unwrap_or_default();
            assign_nodes(&orphans, swarms, &mut rng, DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE);
        }
    }
}

/// Runs [`calc_swarm_changes`] over `(key, current swarm)` pairs and returns each key's new
/// swarm. The pairs are sorted by key first (the registry's replay order); keys without a swarm
/// carry [`SwarmId::INVALID`].
pub fn assign_swarms<K: Clone + Ord>(
    nodes: impl IntoIterator<Item = (K, SwarmId)>,
    seed: u64,
) -> BTreeMap<K, SwarmId> {
    let mut sorted: Vec<(K, SwarmId)> = nodes.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut swarms: SwarmMap<K> = BTreeMap::new();
    for (key, swarm) in sorted {
        swarms.entry(swarm).or_default().push(key);
    }
    calc_swarm_changes(&mut swarms, seed);
    swarms.into_iter().flat_map(|(id, keys)| keys.into_iter().map(move |key| (key, id))).collect()
}

/// `std::mt19937_64`: the 64-bit Mersenne Twister with the standard parameters.
#[derive(Clone)]
pub struct Mt19937_64 {
    state: [u64; MT_N],
    index: usize,
}

const MT_N: usize = 312;
const MT_M: usize = 156;
const MT_MATRIX_A: u64 = 0xB502_6F5A_A966_19E9;
const MT_UPPER: u64 = 0xFFFF_FFFF_8000_0000;
const MT_LOWER: u64 = 0x7FFF_FFFF;

impl Mt19937_64 {
    /// Seeded as `std::mt19937_64(seed)`.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u64; MT_N];
        state[0] = seed;
        for i in 1..MT_N {
            let prev = state[i - 1];
            state[i] = 6_364_136_223_846_793_005u64.wrapping_mul(prev ^ (prev >> 62)).wrapping_add(i as u64);
        }
        Self { state, index: MT_N }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        if self.index >= MT_N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= (y >> 29) & 0x5555_5555_5555_5555;
        y ^= (y << 17) & 0x71D6_7FFF_EDA6_0000;
        y ^= (y << 37) & 0xFFF7_EEE0_0000_0000;
        y ^ (y >> 43)
    }

    fn twist(&mut self) {
        for i in 0..MT_N {
            let x = (self.state[i] & MT_UPPER) | (self.state[(i + 1) % MT_N] & MT_LOWER);
            let mut next = x >> 1;
            if x & 1 != 0 {
                next ^= MT_MATRIX_A;
            }
            self.state[i] = self.state[(i + MT_M) % MT_N] ^ next;
        }
        self.index = 0;
    }
}

impl std::fmt::Debug for Mt19937_64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937_64").field("index", &self.index).finish_non_exhaustive()
    }
}

/// oxen `tools::uniform_distribution_portable(rng, n)`: a uniform draw in `[0, n)` by rejection
/// sampling below `max − max mod n` and dividing by `(max − max mod n) / n`. `n` must be > 0.
pub fn uniform_portable(rng: &mut Mt19937_64, n: u64) -> u64 {
    assert!(n > 0, "uniform_portable over an empty range");
    let secure_max = u64::MAX - u64::MAX % n;
    loop {
        let x = rng.next_u64();
        if x < secure_max {
            return x / (secure_max / n);
        }
    }
}

/// `(id, size)` pairs sorted by size; ties stay in id order (stable sort).
fn sorted_sizes<K>(swarms: &SwarmMap<K>) -> Vec<(SwarmId, usize)> {
    let mut sizes: Vec<(SwarmId, usize)> = swarms.iter().map(|(&id, nodes)| (id, nodes.len())).collect();
    sizes.sort_by_key(|&(_, size)| size);
    sizes
}

/// oxend `assign_snodes`: each node joins a random swarm among those no larger than the
/// `percentile` size, then new-swarm creation runs. `swarms` must not be empty.
fn assign_nodes<K: Clone + PartialEq>(
    nodes: &[K],
    swarms: &mut SwarmMap<K>,
    rng: &mut Mt19937_64,
    percentile: usize,
) {
    for key in nodes {
        let sorted = sorted_sizes(swarms);
        let Some(last) = sorted.len().checked_sub(1) else {
            // Unreachable: callers keep at least one swarm. Never lose the node.
            swarms.insert(new_swarm_id(&[]), vec![key.clone()]);
            continue;
        };
        let percentile_index = percentile * last / 100;
        let percentile_value = sorted[percentile_index].1;
        let upper_index = sorted[percentile_index..]
            .iter()
            .position(|&(_, size)| size > percentile_value)
            .map_or(last, |offset| percentile_index + offset - 1);
        let chosen = sorted[uniform_portable(rng, upper_index as u64 + 1) as usize].0;
        swarms.entry(chosen).or_default().push(key.clone());
        create_new_swarms_from_excess(swarms, rng);
    }
}

/// Σ max(0, size − EXCESS_BASE).
fn total_excess<K>(swarms: &SwarmMap<K>) -> usize {
    swarms.values().map(|nodes| nodes.len().saturating_sub(EXCESS_BASE)).sum()
}

/// oxend `get_excess_pool`: every node of the swarms larger than `threshold`, with the swarm it
/// is in, and the excess Σ(size − MIN_SWARM_SIZE) of those swarms.
fn excess_pool<K: Clone>(threshold: usize, swarms: &SwarmMap<K>) -> (Vec<(K, SwarmId)>, usize) {
    let mut pool = Vec::new();
    let mut excess = 0;
    if threshold < MIN_SWARM_SIZE {
        return (pool, excess);
    }
    for (&id, nodes) in swarms {
        if nodes.len() > threshold {
            excess += nodes.len() - MIN_SWARM_SIZE;
            pool.extend(nodes.iter().map(|key| (key.clone(), id)));
        }
    }
    (pool, excess)
}

/// A uniformly random pool entry. `pool` must not be empty.
fn pick<K: Clone>(pool: &[(K, SwarmId)], rng: &mut Mt19937_64) -> (K, SwarmId) {
    pool[uniform_portable(rng, pool.len() as u64) as usize].clone()
}

fn remove_node<K: PartialEq>(swarms: &mut SwarmMap<K>, swarm: SwarmId, key: &K) {
    if let Some(nodes) = swarms.get_mut(&swarm) {
        nodes.retain(|k| k != key);
    }
}

/// oxend `create_new_swarm_from_excess`: while the excess covers a new swarm plus the margin of
/// every swarm, move [`NEW_SWARM_SIZE`] random nodes of swarms larger than [`EXCESS_BASE`] into a
/// new swarm. Does nothing while any swarm is starving.
fn create_new_swarms_from_excess<K: Clone + PartialEq>(swarms: &mut SwarmMap<K>, rng: &mut Mt19937_64) {
    if swarms.values().any(|nodes| nodes.len() < MIN_SWARM_SIZE) {
        return;
    }
    while total_excess(swarms) >= NEW_SWARM_SIZE + swarms.len() * IDEAL_SWARM_MARGIN {
        let mut new_nodes = Vec::with_capacity(NEW_SWARM_SIZE);
        let mut exhausted = false;
        while new_nodes.len() < NEW_SWARM_SIZE {
            let (pool, _) = excess_pool(EXCESS_BASE, swarms);
            if pool.is_empty() {
                // Unreachable (each pick lowers the excess by one, and it started at ≥ 9).
                // oxend returns here and loses the picked nodes; we keep them in a swarm.
                exhausted = true;
                break;
            }
            let (key, from) = pick(&pool, rng);
            remove_node(swarms, from, &key);
            new_nodes.push(key);
        }
        let ids: Vec<SwarmId> = swarms.keys().copied().collect();
        let id = new_swarm_id(&ids);
        swarms.entry(id).or_default().extend(new_nodes);
        if exhausted {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_64_reference_output() {
        let mut rng = Mt19937_64::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = rng.next_u64();
        }
        assert_eq!(last, 9_981_545_732_273_789_042);
    }

    #[test]
    fn mt19937_64_first_outputs() {
        // The first outputs of std::mt19937_64 with the default seed (C++ standard library).
        let mut rng = Mt19937_64::new(5489);
        assert_eq!(rng.next_u64(), 14_514_284_786_278_117_030);
        assert_eq!(rng.next_u64(), 4_620_546_740_167_642_908);
    }

    #[test]
    fn uniform_portable_stays_in_range_and_matches_the_reduction() {
        let mut a = Mt19937_64::new(7);
        let mut b = Mt19937_64::new(7);
        for n in 1..200u64 {
            let got = uniform_portable(&mut a, n);
            assert!(got < n);
            // With n this small the first draw is essentially never rejected.
            let x = b.next_u64();
            let secure_max = u64::MAX - u64::MAX % n;
            assert!(x < secure_max);
            assert_eq!(got, x / (secure_max / n));
        }
    }

    fn sizes(swarms: &SwarmMap<u32>) -> Vec<usize> {
        swarms.values().map(Vec::len).collect()
    }

    #[test]
    fn first_nodes_fill_swarm_zero() {
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        swarms.insert(SwarmId::INVALID, (0..3).collect());
        calc_swarm_changes(&mut swarms, 1);
        assert_eq!(swarms.keys().copied().collect::<Vec<_>>(), [SwarmId(0)]);
        assert_eq!(swarms[&SwarmId(0)], [0, 1, 2]);
    }

    #[test]
    fn fourteen_nodes_make_two_swarms_of_seven() {
        // Excess of one swarm of 14 is 9 = NEW_SWARM_SIZE + 1 · IDEAL_SWARM_MARGIN.
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        swarms.insert(SwarmId::INVALID, (0..14).collect());
        calc_swarm_changes(&mut swarms, 42);
        assert_eq!(sizes(&swarms), [7, 7]);
        let ids: Vec<SwarmId> = swarms.keys().copied().collect();
        // The second swarm takes the middle of the wrap-around gap after 0 (2^64 − 1 wide).
        assert_eq!(ids, [SwarmId(0), SwarmId(u64::MAX / 2)]);
        let mut all: Vec<u32> = swarms.values().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..14).collect::<Vec<_>>());
    }

    #[test]
    fn thirteen_nodes_stay_in_one_swarm() {
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        swarms.insert(SwarmId::INVALID, (0..13).collect());
        calc_swarm_changes(&mut swarms, 42);
        assert_eq!(sizes(&swarms), [13]);
    }

    #[test]
    fn robin_hood_refills_a_starving_swarm() {
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        swarms.insert(SwarmId(0), (0..4).collect());
        swarms.insert(SwarmId(100), (10..17).collect());
        calc_swarm_changes(&mut swarms, 3);
        assert_eq!(sizes(&swarms), [5, 6]);
        // The four original members stay; one node came from swarm 100.
        assert!(swarms[&SwarmId(0)][..4] == [0, 1, 2, 3]);
        assert!((10..17).contains(&swarms[&SwarmId(0)][4]));
    }

    #[test]
    fn a_swarm_that_cannot_be_saved_is_dissolved() {
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        swarms.insert(SwarmId(0), (0..3).collect());
        swarms.insert(SwarmId(100), (10..16).collect());
        calc_swarm_changes(&mut swarms, 3);
        // Excess 1 < deficit 2: no stealing; swarm 0 is dissolved into swarm 100.
        assert_eq!(swarms.keys().copied().collect::<Vec<_>>(), [SwarmId(100)]);
        assert_eq!(sizes(&swarms), [9]);
    }

    #[test]
    fn too_few_nodes_over_several_swarms_end_in_one_swarm() {
        // oxend would dissolve every swarm here; we keep the last one.
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        swarms.insert(SwarmId(0), vec![1, 2]);
        swarms.insert(SwarmId(9), vec![3]);
        calc_swarm_changes(&mut swarms, 5);
        assert_eq!(swarms.len(), 1);
        assert_eq!(sizes(&swarms), [3]);
    }

    #[test]
    fn assign_swarms_sorts_by_key_and_maps_every_node() {
        let nodes: Vec<(u32, SwarmId)> = (0..20).rev().map(|k| (k, SwarmId::INVALID)).collect();
        let out = assign_swarms(nodes.clone(), 99);
        assert_eq!(out.len(), 20);
        assert!(out.values().all(|s| s.is_valid()));
        // Input order does not matter.
        let mut shuffled = nodes;
        shuffled.swap(0, 7);
        assert_eq!(assign_swarms(shuffled, 99), out);
    }
}
