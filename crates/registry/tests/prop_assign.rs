//! Properties of the swarm assignment (network §6.1): every active node in exactly one swarm,
//! every swarm at least MIN_SWARM_SIZE once there are that many nodes, the same result for the
//! same input and seed, and valid swarms after nodes come and go one at a time.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use session_protocol::swarm::SwarmId;
use session_registry::assign::{MIN_SWARM_SIZE, SwarmMap, assign_swarms, calc_swarm_changes};

/// Checks the invariants of an assignment of `nodes`.
fn check_valid(assignment: &BTreeMap<u32, SwarmId>, nodes: &BTreeSet<u32>) -> Result<(), TestCaseError> {
    let assigned: BTreeSet<u32> = assignment.keys().copied().collect();
    prop_assert_eq!(&assigned, nodes, "every node is assigned, and nothing else");
    prop_assert!(assignment.values().all(|s| s.is_valid()), "no node is left unassigned");
    let mut sizes: BTreeMap<SwarmId, usize> = BTreeMap::new();
    for swarm in assignment.values() {
        *sizes.entry(*swarm).or_default() += 1;
    }
    if nodes.len() >= MIN_SWARM_SIZE {
        prop_assert!(
            sizes.values().all(|&n| n >= MIN_SWARM_SIZE),
            "swarm sizes {:?} with {} nodes",
            sizes,
            nodes.len()
        );
    } else if !nodes.is_empty() {
        prop_assert_eq!(sizes.len(), 1, "fewer than {} nodes share one swarm", MIN_SWARM_SIZE);
    }
    Ok(())
}

/// The assignment of the current nodes, keeping the previous swarms of known nodes.
fn step(previous: &BTreeMap<u32, SwarmId>, nodes: &BTreeSet<u32>, seed: u64) -> BTreeMap<u32, SwarmId> {
    let input = nodes.iter().map(|&k| (k, previous.get(&k).copied().unwrap_or(SwarmId::INVALID)));
    assign_swarms(input, seed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A batch of new nodes, all at once.
    #[test]
    fn fresh_assignment_is_valid_and_deterministic(count in 0usize..120, seed: u64) {
        let nodes: BTreeSet<u32> = (0..count as u32).collect();
        let first = step(&BTreeMap::new(), &nodes, seed);
        check_valid(&first, &nodes)?;
        prop_assert_eq!(&first, &step(&BTreeMap::new(), &nodes, seed));
    }

    /// Nodes join and leave one at a time; after every step the swarms are valid, and repeating
    /// a step with the same input and seed gives the same result.
    #[test]
    fn one_at_a_time_changes_keep_swarms_valid(
        ops in proptest::collection::vec((any::<bool>(), 0u32..200, any::<u64>()), 1..150),
    ) {
        let mut nodes = BTreeSet::new();
        let mut assignment = BTreeMap::new();
        for (add, key, seed) in ops {
            let changed = if add || nodes.len() < MIN_SWARM_SIZE {
                nodes.insert(key)
            } else {
                // Remove an existing node chosen by `key`.
                let victim = *nodes.iter().nth(key as usize % nodes.len()).expect("nodes is not empty");
                nodes.remove(&victim)
            };
            if !changed {
                continue;
            }
            let next = step(&assignment, &nodes, seed);
            check_valid(&next, &nodes)?;
            prop_assert_eq!(&next, &step(&assignment, &nodes, seed));
            assignment = next;
        }
    }

    /// Any starting map (including starving and oversized swarms) ends valid, with the same
    /// nodes, deterministically.
    #[test]
    fn arbitrary_maps_end_valid(
        layout in proptest::collection::vec((0u64..6, 0usize..15), 0..8),
        unassigned in 0usize..20,
        seed: u64,
    ) {
        let mut swarms: SwarmMap<u32> = BTreeMap::new();
        let mut next_key = 0u32;
        for (id, size) in layout {
            let entry = swarms.entry(SwarmId(id * 1_000_000_007)).or_default();
            for _ in 0..size {
                entry.push(next_key);
                next_key += 1;
            }
        }
        swarms.retain(|_, nodes| !nodes.is_empty());
        if unassigned > 0 {
            swarms.insert(SwarmId::INVALID, (next_key..next_key + unassigned as u32).collect());
            next_key += unassigned as u32;
        }
        let nodes: BTreeSet<u32> = (0..next_key).collect();
        let mut again = swarms.clone();
        calc_swarm_changes(&mut swarms, seed);
        calc_swarm_changes(&mut again, seed);
        prop_assert_eq!(&swarms, &again);
        let mut assignment = BTreeMap::new();
        for (id, keys) in &swarms {
            for key in keys {
                prop_assert!(assignment.insert(*key, *id).is_none(), "node {} in two swarms", key);
            }
        }
        check_valid(&assignment, &nodes)?;
    }
}
