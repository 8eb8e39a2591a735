//! What a sync run does, decided from the last node list that was fully synced and the current
//! one (network §6.5, and beyond it). Pure: no I/O.

use std::collections::BTreeSet;
use std::sync::Arc;

use session_protocol::swarm::SwarmId;

use crate::AccountKey;
use crate::nodelist::{NodeList, NodeRecord};

/// Why a sync run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A new node list was installed (or the first one, at start).
    ListChanged,
    /// The anti-entropy timer fired.
    Periodic,
}

/// One sync run over a node-list snapshot.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The snapshot the run works with.
    pub list: Arc<NodeList>,
    /// Our swarm in `list`, if we are in one.
    pub own_swarm: Option<SwarmId>,
    /// Nodes that joined our swarm since the base list while we were already a member: they get
    /// every message of the accounts our swarm owns.
    pub joiners: Vec<NodeRecord>,
    /// Swarm ids that are new since the base list (for the log; their accounts are handed off
    /// like any other account that is not ours).
    pub new_swarms: BTreeSet<SwarmId>,
    /// Pull what we miss from our swarm peers.
    pub catch_up: bool,
}

/// Where the messages of one account go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination<'a> {
    /// Ours, and nobody new to tell: nothing to do.
    Stay,
    /// Ours: copy to the nodes that joined our swarm; keep our copy.
    Joiners(&'a [NodeRecord]),
    /// Not ours: copy to every member of the swarm that owns it, then delete our copy once at
    /// least one of them confirmed.
    HandOff {
        /// The owning swarm.
        swarm: SwarmId,
        /// Its members.
        members: Vec<&'a NodeRecord>,
    },
}

impl Plan {
    /// The plan for `current`, given the last fully synced list `base` (None at start, or when
    /// no run has completed yet), for the node whose Ed25519 key is `own_hex`. None when
    /// `current` has no swarm at all (nothing can be decided; an empty list at start).
    pub fn new(
        base: Option<&NodeList>,
        current: Arc<NodeList>,
        own_hex: &str,
        trigger: Trigger,
    ) -> Option<Self> {
        if current.swarm_ids().is_empty() {
            return None;
        }
        let base = base.filter(|b| !b.swarm_ids().is_empty());
        let own_swarm = current.by_ed25519(own_hex).and_then(NodeRecord::swarm);
        let old_swarm = base.and_then(|b| b.by_ed25519(own_hex)).and_then(NodeRecord::swarm);
        let joiners = match (base, own_swarm) {
            (Some(base), Some(swarm)) if old_swarm == Some(swarm) => {
                let before: BTreeSet<&str> = base.members(swarm).map(|n| n.pubkey_ed25519.as_str()).collect();
                current
                    .members(swarm)
                    .filter(|n| n.pubkey_ed25519 != own_hex && !before.contains(n.pubkey_ed25519.as_str()))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        let new_swarms = match base {
            Some(base) => {
                current.swarm_ids().iter().filter(|s| !base.swarm_ids().contains(s)).copied().collect()
            }
            None => BTreeSet::new(),
        };
        let entered_swarm = own_swarm.is_some() && (base.is_none() || old_swarm != own_swarm);
        let catch_up = own_swarm.is_some() && (entered_swarm || trigger == Trigger::Periodic);
        Some(Self { list: current, own_swarm, joiners, new_swarms, catch_up })
    }

    /// Where `account`'s messages go under this plan.
    pub fn destination(&self, account: &AccountKey) -> Destination<'_> {
        match self.list.swarm_of(account) {
            None => Destination::Stay,
            Some(swarm) if Some(swarm) == self.own_swarm => {
                if self.joiners.is_empty() {
                    Destination::Stay
                } else {
                    Destination::Joiners(&self.joiners)
                }
            }
            Some(swarm) => Destination::HandOff { swarm, members: self.list.members(swarm).collect() },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const S1: u64 = 0x4000_0000_0000_0000;
    const S2: u64 = 0xc000_0000_0000_0000;

    fn node(i: u8, swarm: u64) -> NodeRecord {
        NodeRecord {
            pubkey_ed25519: hex::encode([i; 32]),
            pubkey_x25519: hex::encode([i + 100; 32]),
            public_ip: Ipv4Addr::LOCALHOST,
            storage_port: 20000 + u16::from(i),
            storage_lmq_port: 0,
            swarm_id: swarm,
            tls: false,
        }
    }

    fn list(nodes: &[(u8, u64)]) -> Arc<NodeList> {
        Arc::new(NodeList::new(nodes.iter().map(|&(i, s)| node(i, s)).collect()))
    }

    fn me() -> String {
        hex::encode([1u8; 32])
    }

    /// An account that `list` puts in `swarm`.
    fn account_in(list: &NodeList, swarm: u64) -> AccountKey {
        (0u8..=255)
            .map(|b| {
                let mut bytes = [0; 33];
                bytes[0] = 5;
                bytes[1] = b;
                AccountKey::from_bytes(bytes)
            })
            .find(|a| list.swarm_of(a) == Some(SwarmId(swarm)))
            .expect("some account maps to each swarm")
    }

    #[test]
    fn empty_list_gives_no_plan_and_first_list_only_catches_up() {
        assert!(Plan::new(None, Arc::new(NodeList::default()), &me(), Trigger::ListChanged).is_none());
        let first = list(&[(1, S1), (2, S1)]);
        let plan = Plan::new(Some(&NodeList::default()), first.clone(), &me(), Trigger::ListChanged).unwrap();
        assert!(plan.joiners.is_empty() && plan.new_swarms.is_empty());
        assert!(plan.catch_up);
        assert_eq!(plan.destination(&account_in(&first, S1)), Destination::Stay);
    }

    #[test]
    fn joiners_get_our_accounts() {
        let base = list(&[(1, S1), (2, S1), (3, u64::MAX)]);
        let current = list(&[(1, S1), (2, S1), (3, S1), (4, S1)]);
        let plan = Plan::new(Some(&base), current.clone(), &me(), Trigger::ListChanged).unwrap();
        let joined: Vec<_> = plan.joiners.iter().map(|n| n.pubkey_ed25519.clone()).collect();
        assert_eq!(joined, [hex::encode([3u8; 32]), hex::encode([4u8; 32])]);
        assert!(!plan.catch_up, "an existing member has nothing to catch up on");
        assert!(
            matches!(plan.destination(&account_in(&current, S1)), Destination::Joiners(j) if j.len() == 2)
        );
        // The joiner itself catches up instead of pushing.
        let plan = Plan::new(Some(&base), current, &hex::encode([3u8; 32]), Trigger::ListChanged).unwrap();
        assert!(plan.joiners.is_empty() && plan.catch_up);
    }

    #[test]
    fn split_hands_off_to_the_new_swarm() {
        let base = list(&[(1, S1), (2, S1), (3, S1), (4, S1)]);
        let current = list(&[(1, S1), (2, S1), (3, S2), (4, S2)]);
        let plan = Plan::new(Some(&base), current.clone(), &me(), Trigger::ListChanged).unwrap();
        assert_eq!(plan.new_swarms, BTreeSet::from([SwarmId(S2)]));
        assert!(plan.joiners.is_empty());
        let moved = account_in(&current, S2);
        match plan.destination(&moved) {
            Destination::HandOff { swarm, members } => {
                assert_eq!(swarm, SwarmId(S2));
                assert_eq!(members.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plan.destination(&account_in(&current, S1)), Destination::Stay);
        // A node that moved into the new swarm catches up there and hands off S1's accounts.
        let plan =
            Plan::new(Some(&base), current.clone(), &hex::encode([3u8; 32]), Trigger::ListChanged).unwrap();
        assert!(plan.catch_up && plan.joiners.is_empty());
        assert!(matches!(plan.destination(&account_in(&current, S1)), Destination::HandOff { .. }));
    }

    #[test]
    fn decommissioned_node_hands_everything_off_and_periodic_catches_up() {
        let base = list(&[(1, S1), (2, S1)]);
        let current = list(&[(1, u64::MAX), (2, S1)]);
        let plan = Plan::new(Some(&base), current.clone(), &me(), Trigger::ListChanged).unwrap();
        assert!(plan.own_swarm.is_none() && !plan.catch_up);
        assert!(matches!(plan.destination(&account_in(&current, S1)), Destination::HandOff { .. }));
        let plan = Plan::new(Some(&base), base.clone(), &me(), Trigger::Periodic).unwrap();
        assert!(plan.catch_up && plan.joiners.is_empty());
    }
}
