//! The swarm assignment against outputs of oxend's `calc_swarm_changes` (oxen-core
//! `service_node_swarm.cpp` built with the C++ standard library's `std::mt19937_64`): the same
//! input map and seed must give the same swarms, with the same members in the same order.
//!
//! `vectors/swarm_assignment.json` is a list of `{"seed", "input", "output"}`, where the maps go
//! from the swarm id (decimal string; 18446744073709551615 is the unassigned bucket) to node
//! numbers. The cases have at most 16 swarms, where the C++ `std::sort` is an insertion sort and
//! so stable, as this implementation's sort is.

use std::collections::BTreeMap;

use serde::Deserialize;
use session_protocol::swarm::SwarmId;
use session_registry::assign::{SwarmMap, calc_swarm_changes};

#[derive(Deserialize)]
struct Case {
    seed: u64,
    input: BTreeMap<String, Vec<u32>>,
    output: BTreeMap<String, Vec<u32>>,
}

fn swarm_map(map: &BTreeMap<String, Vec<u32>>) -> SwarmMap<u32> {
    map.iter().map(|(id, nodes)| (SwarmId(id.parse().expect("decimal swarm id")), nodes.clone())).collect()
}

#[test]
fn matches_oxend() {
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("vectors/swarm_assignment.json")).expect("vector file parses");
    assert!(cases.len() >= 300);
    for (index, case) in cases.iter().enumerate() {
        let mut swarms = swarm_map(&case.input);
        calc_swarm_changes(&mut swarms, case.seed);
        assert_eq!(swarms, swarm_map(&case.output), "case {index} (seed {})", case.seed);
    }
}
