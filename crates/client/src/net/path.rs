//! Onion paths (network §7.8, §7.9): selection rules, pinned guards, failure counting.
//!
//! A path is [`PATH_LEN`] nodes: a guard (the entry hop, the only node the client connects to)
//! and two more. The client keeps [`PATH_COUNT`] paths. Each path's guard is *pinned*: when the
//! path is rebuilt (a hop replaced, or the path dropped for failures of other nodes) the new path
//! starts at the same guard, as long as the guard itself is healthy. Rules:
//! - no two hops of a path on one IP address, and a path is never used for a destination that
//!   shares an IP with one of its hops;
//! - when every node of the pool is on 127.0.0.0/8 (a local test network), the IP rules are
//!   relaxed to "distinct nodes" (no node twice, the destination not on the path);
//! - paths prefer nodes no other path uses;
//! - a path is dropped after [`PATH_FAILURE_LIMIT`] failures; each of its nodes gets a failure and
//!   its guard is marked bad (and unpinned);
//! - "Next node not found" marks that node bad and replaces it in the path (a guard cannot be
//!   named, but if it were the path would be dropped).
//!
//! Everything here is plain data and functions, driven by the caller with the pool and an RNG.

use std::collections::HashSet;
use std::time::Duration;

use rand::seq::SliceRandom as _;

use super::pool::{NodePool, ServiceNode};

/// Hops per path (guard + 2).
pub const PATH_LEN: usize = 3;
/// Paths kept.
pub const PATH_COUNT: usize = 2;
/// A path is dropped after this many failures.
pub const PATH_FAILURE_LIMIT: u32 = 3;

/// Delay before retry number `retry` (0-based): min(100 ms · 2^retry, 5 s) (network §7.8).
pub fn retry_delay(retry: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << retry.min(20));
    Duration::from_millis(ms.min(5_000))
}

/// Whether two nodes may not share a path: the same node, or (unless `relaxed`) the same IP.
pub fn conflicts(a: &ServiceNode, b: &ServiceNode, relaxed: bool) -> bool {
    a.ed25519 == b.ed25519 || (!relaxed && a.ip == b.ip)
}

/// Whether a request to `destination` may use `path` (no hop on the destination's IP, or with
/// `relaxed` rules, the destination is not a hop).
pub fn allows_destination(path: &[ServiceNode], destination: &ServiceNode, relaxed: bool) -> bool {
    !path.iter().any(|hop| conflicts(hop, destination, relaxed))
}

/// Picks a path from `candidates`: starting at `guard` if given, never conflicting with `avoid`
/// (the destination), hops pairwise non-conflicting, nodes in `in_use` only when nothing else
/// fits. `None` when the candidates cannot make a path.
pub fn select_path<R: rand::Rng + ?Sized>(
    candidates: &[ServiceNode],
    guard: Option<&ServiceNode>,
    avoid: Option<&ServiceNode>,
    in_use: &HashSet<[u8; 32]>,
    relaxed: bool,
    rng: &mut R,
) -> Option<Vec<ServiceNode>> {
    let mut pool: Vec<&ServiceNode> = candidates.iter().collect();
    pool.shuffle(rng);
    // Unused nodes first; the shuffle orders each group.
    pool.sort_by_key(|n| in_use.contains(&n.ed25519));
    let mut path: Vec<ServiceNode> = Vec::with_capacity(PATH_LEN);
    if let Some(guard) = guard {
        if avoid.is_some_and(|d| conflicts(guard, d, relaxed)) {
            return None;
        }
        path.push(guard.clone());
    }
    for node in pool {
        if path.len() == PATH_LEN {
            break;
        }
        if path.iter().any(|hop| conflicts(hop, node, relaxed))
            || avoid.is_some_and(|d| conflicts(node, d, relaxed))
        {
            continue;
        }
        path.push(node.clone());
    }
    (path.len() == PATH_LEN).then_some(path)
}

/// One onion path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionPath {
    /// Identifies the path while it lives (paths are rebuilt under new ids).
    pub id: u64,
    /// Hops, guard first.
    pub nodes: Vec<ServiceNode>,
    /// Failures since the last success.
    pub failures: u32,
}

impl OnionPath {
    /// The guard (entry hop).
    pub fn guard(&self) -> &ServiceNode {
        &self.nodes[0]
    }
}

/// The client's paths and pinned guards.
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    guards: Vec<[u8; 32]>,
    paths: Vec<OnionPath>,
    next_id: u64,
}

impl PathSet {
    /// No paths yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pinned guards (Ed25519 keys).
    pub fn guards(&self) -> &[[u8; 32]] {
        &self.guards
    }

    /// The current paths.
    pub fn paths(&self) -> &[OnionPath] {
        &self.paths
    }

    /// Brings the set up to [`PATH_COUNT`] paths from the pool's usable nodes: paths with an
    /// excluded guard are dropped (and the guard unpinned), excluded middle hops are replaced,
    /// every pinned guard gets a path, and new guards are picked until there are enough.
    pub fn ensure<R: rand::Rng + ?Sized>(&mut self, pool: &NodePool, rng: &mut R) {
        let relaxed = pool.all_loopback();
        let usable = pool.usable();
        let is_usable = |ed: &[u8; 32]| usable.iter().any(|n| &n.ed25519 == ed);
        self.guards.retain(|g| is_usable(g));
        let guards = self.guards.clone();
        self.paths.retain(|p| guards.contains(&p.guard().ed25519));
        // Replace excluded hops after the guard.
        let ids: Vec<u64> = self.paths.iter().map(|p| p.id).collect();
        for id in ids {
            let Some(path) = self.paths.iter().find(|p| p.id == id) else { continue };
            if let Some(bad) = path.nodes[1..].iter().find(|n| !is_usable(&n.ed25519)).map(|n| n.ed25519) {
                self.replace_hop(id, &bad, pool, rng);
            }
        }
        // A path for every pinned guard.
        for guard in self.guards.clone() {
            if self.paths.iter().any(|p| p.guard().ed25519 == guard) {
                continue;
            }
            let Some(node) = pool.node(&guard).cloned() else { continue };
            let in_use = self.in_use();
            match select_path(&usable, Some(&node), None, &in_use, relaxed, rng) {
                Some(nodes) => self.push(nodes),
                None => self.guards.retain(|g| g != &guard),
            }
        }
        // New guards until there are enough paths.
        while self.paths.len() < PATH_COUNT {
            let in_use = self.in_use();
            let mut guard_candidates: Vec<&ServiceNode> = usable
                .iter()
                .filter(|n| {
                    !self.guards.contains(&n.ed25519)
                        && !self.guards.iter().filter_map(|g| pool.node(g)).any(|g| conflicts(g, n, relaxed))
                })
                .collect();
            guard_candidates.shuffle(rng);
            guard_candidates.sort_by_key(|n| in_use.contains(&n.ed25519));
            let built = guard_candidates
                .iter()
                .find_map(|g| select_path(&usable, Some(g), None, &in_use, relaxed, rng));
            match built {
                Some(nodes) => {
                    self.guards.push(nodes[0].ed25519);
                    self.push(nodes);
                }
                None => break,
            }
        }
    }

    /// A path for a request to `destination`: a random kept path that allows it, or else a new
    /// one-off path for it (starting at a pinned guard when one fits; not kept). `None` when the
    /// pool cannot make one.
    pub fn choose<R: rand::Rng + ?Sized>(
        &mut self,
        pool: &NodePool,
        destination: &ServiceNode,
        rng: &mut R,
    ) -> Option<OnionPath> {
        let relaxed = pool.all_loopback();
        let fitting: Vec<&OnionPath> =
            self.paths.iter().filter(|p| allows_destination(&p.nodes, destination, relaxed)).collect();
        if let Some(path) = fitting.choose_one(rng) {
            return Some((*path).clone());
        }
        let usable = pool.usable();
        let in_use = self.in_use();
        let guard = self
            .guards
            .iter()
            .filter_map(|g| pool.node(g))
            .find(|g| !conflicts(g, destination, relaxed))
            .cloned();
        let nodes = select_path(&usable, guard.as_ref(), Some(destination), &in_use, relaxed, rng)
            .or_else(|| select_path(&usable, None, Some(destination), &in_use, relaxed, rng))?;
        self.next_id += 1;
        Some(OnionPath { id: self.next_id, nodes, failures: 0 })
    }

    /// A request over path `id` succeeded: its failure count restarts.
    pub fn record_success(&mut self, id: u64) {
        if let Some(path) = self.paths.iter_mut().find(|p| p.id == id) {
            path.failures = 0;
        }
    }

    /// A request over `path` failed for a reason not pinned on one node (network §7.9 "anything
    /// else"). At [`PATH_FAILURE_LIMIT`] the path is dropped, each node gets a failure and the
    /// guard is marked bad. A one-off path is dropped at its first failure. Returns whether the
    /// path was dropped.
    pub fn record_failure(&mut self, path: &OnionPath, pool: &mut NodePool) -> bool {
        let failures = match self.paths.iter_mut().find(|p| p.id == path.id) {
            Some(kept) => {
                kept.failures += 1;
                kept.failures
            }
            None => PATH_FAILURE_LIMIT,
        };
        if failures < PATH_FAILURE_LIMIT {
            return false;
        }
        for node in &path.nodes {
            pool.record_failure(&node.ed25519);
        }
        pool.mark_bad(&path.guard().ed25519);
        self.drop_path(path.id, true);
        true
    }

    /// The guard of `path` could not be reached: it is marked bad, unpinned, and the path dropped.
    pub fn guard_unreachable(&mut self, path: &OnionPath, pool: &mut NodePool) {
        pool.mark_bad(&path.guard().ed25519);
        self.drop_path(path.id, true);
    }

    /// A hop reported `node` as not found ("Next node not found"): the node is marked bad and
    /// replaced in the path, or the path dropped when it was the guard or no replacement fits.
    pub fn node_not_found<R: rand::Rng + ?Sized>(
        &mut self,
        path: &OnionPath,
        node: &[u8; 32],
        pool: &mut NodePool,
        rng: &mut R,
    ) {
        pool.mark_bad(node);
        self.node_failed(path, node, pool, rng);
    }

    /// A hop could not reach `node` (it is down or unreachable): the node gets a failure and is
    /// replaced in the path as for [`Self::node_not_found`].
    pub fn node_unreachable<R: rand::Rng + ?Sized>(
        &mut self,
        path: &OnionPath,
        node: &[u8; 32],
        pool: &mut NodePool,
        rng: &mut R,
    ) {
        pool.record_failure(node);
        self.node_failed(path, node, pool, rng);
    }

    /// Records whether a node serves HTTPS in the paths' copies of it.
    pub fn set_tls(&mut self, ed25519: &[u8; 32], tls: bool) {
        for node in self.paths.iter_mut().flat_map(|p| p.nodes.iter_mut()) {
            if &node.ed25519 == ed25519 {
                node.tls = Some(tls);
            }
        }
    }

    // ---- internals ----

    fn node_failed<R: rand::Rng + ?Sized>(
        &mut self,
        path: &OnionPath,
        node: &[u8; 32],
        pool: &NodePool,
        rng: &mut R,
    ) {
        if &path.guard().ed25519 == node {
            self.drop_path(path.id, true);
        } else if path.nodes.iter().any(|n| &n.ed25519 == node) {
            self.replace_hop(path.id, node, pool, rng);
        }
    }

    /// Replaces hop `node` of kept path `id` with an unused usable node that fits the rules; drops
    /// the path (keeping its guard pinned) when none fits.
    fn replace_hop<R: rand::Rng + ?Sized>(&mut self, id: u64, node: &[u8; 32], pool: &NodePool, rng: &mut R) {
        let relaxed = pool.all_loopback();
        let in_use = self.in_use();
        let Some(path) = self.paths.iter_mut().find(|p| p.id == id) else { return };
        let Some(position) = path.nodes.iter().position(|n| &n.ed25519 == node) else { return };
        let mut candidates: Vec<ServiceNode> = pool
            .usable()
            .into_iter()
            .filter(|c| !path.nodes.iter().any(|hop| conflicts(hop, c, relaxed)))
            .collect();
        candidates.shuffle(rng);
        candidates.sort_by_key(|c| in_use.contains(&c.ed25519));
        match candidates.into_iter().next() {
            Some(replacement) => {
                path.nodes[position] = replacement;
                path.failures = 0;
            }
            None => self.drop_path(id, false),
        }
    }

    /// Drops path `id`; with `unpin_guard` its guard is unpinned too.
    fn drop_path(&mut self, id: u64, unpin_guard: bool) {
        if let Some(position) = self.paths.iter().position(|p| p.id == id) {
            let path = self.paths.remove(position);
            if unpin_guard {
                self.guards.retain(|g| g != &path.guard().ed25519);
            }
        }
    }

    fn push(&mut self, nodes: Vec<ServiceNode>) {
        self.next_id += 1;
        self.paths.push(OnionPath { id: self.next_id, nodes, failures: 0 });
    }

    fn in_use(&self) -> HashSet<[u8; 32]> {
        self.paths.iter().flat_map(|p| p.nodes.iter().map(|n| n.ed25519)).collect()
    }
}

/// `choose` on a slice without pulling in `IndexedRandom` naming differences.
trait ChooseOne<T> {
    fn choose_one<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Option<&T>;
}

impl<T> ChooseOne<T> for Vec<T> {
    fn choose_one<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Option<&T> {
        if self.is_empty() {
            return None;
        }
        let index = (rng.next_u64() % self.len() as u64) as usize;
        self.get(index)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::super::pool::NODE_FAILURE_LIMIT;
    use super::super::pool::tests::node;
    use super::*;

    fn distinct_ips(n: u8) -> Vec<ServiceNode> {
        (1..=n).map(|k| node(k, [10, 0, 0, k], 1)).collect()
    }

    fn ips_unique(path: &[ServiceNode]) -> bool {
        let ips: HashSet<_> = path.iter().map(|n| n.ip).collect();
        ips.len() == path.len()
    }

    #[test]
    fn retry_delays_double_up_to_five_seconds() {
        let ms: Vec<u64> = (0..9).map(|n| retry_delay(n).as_millis() as u64).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn paths_never_put_two_hops_or_the_destination_on_one_ip() {
        let mut rng = StdRng::seed_from_u64(1);
        // Six nodes on three IPs (two per IP).
        let nodes: Vec<ServiceNode> = (1..=6).map(|k| node(k, [10, 0, 0, k.div_ceil(2)], 1)).collect();
        for _ in 0..200 {
            let path = select_path(&nodes, None, None, &HashSet::new(), false, &mut rng).unwrap();
            assert!(ips_unique(&path), "{path:?}");
        }
        // Destination on 10.0.0.1: the other two IPs are not enough for 3 hops.
        assert!(select_path(&nodes, None, Some(&nodes[0]), &HashSet::new(), false, &mut rng).is_none());
        let more: Vec<ServiceNode> = (1..=8).map(|k| node(k, [10, 0, 0, k.div_ceil(2)], 1)).collect();
        for _ in 0..200 {
            let path = select_path(&more, None, Some(&more[0]), &HashSet::new(), false, &mut rng).unwrap();
            assert!(ips_unique(&path) && allows_destination(&path, &more[0], false));
        }
    }

    #[test]
    fn loopback_pools_relax_the_ip_rule_to_distinct_nodes() {
        let mut rng = StdRng::seed_from_u64(2);
        let same_ip: Vec<ServiceNode> = (1..=5).map(|k| node(k, [127, 0, 0, 1], 1)).collect();
        let pool = NodePool::new(same_ip.clone(), 0);
        assert!(pool.all_loopback());
        let mut paths = PathSet::new();
        paths.ensure(&pool, &mut rng);
        assert_eq!(paths.paths().len(), PATH_COUNT);
        for path in paths.paths() {
            let keys: HashSet<_> = path.nodes.iter().map(|n| n.ed25519).collect();
            assert_eq!(keys.len(), PATH_LEN);
        }
        let chosen = paths.choose(&pool, &same_ip[0], &mut rng).unwrap();
        assert!(!chosen.nodes.iter().any(|n| n.ed25519 == same_ip[0].ed25519));
        // The same nodes off loopback: one IP cannot make a path.
        let public: Vec<ServiceNode> = (1..=5).map(|k| node(k, [10, 0, 0, 1], 1)).collect();
        let pool = NodePool::new(public, 0);
        let mut paths = PathSet::new();
        paths.ensure(&pool, &mut rng);
        assert!(paths.paths().is_empty());
        // One node off loopback is enough to keep the strict rule.
        let mut mixed = same_ip.clone();
        mixed.push(node(9, [10, 0, 0, 9], 1));
        assert!(!NodePool::new(mixed, 0).all_loopback());
    }

    #[test]
    fn two_paths_prefer_disjoint_nodes_and_choose_avoids_the_destination() {
        let mut rng = StdRng::seed_from_u64(3);
        let nodes = distinct_ips(7);
        let pool = NodePool::new(nodes.clone(), 0);
        let mut paths = PathSet::new();
        paths.ensure(&pool, &mut rng);
        assert_eq!(paths.paths().len(), 2);
        assert_eq!(paths.guards().len(), 2);
        let used: HashSet<_> = paths.paths().iter().flat_map(|p| p.nodes.iter().map(|n| n.ed25519)).collect();
        assert_eq!(used.len(), 6, "disjoint when the pool allows");
        for dest in &nodes {
            for _ in 0..20 {
                let path = paths.choose(&pool, dest, &mut rng).unwrap();
                assert!(allows_destination(&path.nodes, dest, false));
            }
        }
    }

    #[test]
    fn guards_stay_pinned_across_rebuilds_while_healthy() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut pool = NodePool::new(distinct_ips(9), 0);
        let mut paths = PathSet::new();
        paths.ensure(&pool, &mut rng);
        let guards = paths.guards().to_vec();
        let first = paths.paths()[0].clone();
        // A middle hop not found: replaced, the guard stays.
        let middle = first.nodes[1].ed25519;
        paths.node_not_found(&first, &middle, &mut pool, &mut rng);
        assert!(pool.is_excluded(&middle));
        let rebuilt = paths.paths().iter().find(|p| p.guard().ed25519 == first.guard().ed25519).unwrap();
        assert!(!rebuilt.nodes.iter().any(|n| n.ed25519 == middle));
        assert_eq!(paths.guards(), &guards[..]);
        // A middle hop excluded through other failures: ensure replaces it, same guard.
        let second = paths.paths()[1].clone();
        for _ in 0..NODE_FAILURE_LIMIT {
            pool.record_failure(&second.nodes[2].ed25519);
        }
        paths.ensure(&pool, &mut rng);
        assert_eq!(paths.guards(), &guards[..]);
        assert!(paths.paths().iter().all(|p| p.nodes.iter().all(|n| !pool.is_excluded(&n.ed25519))));
        // The guard unreachable: unpinned and replaced by a new guard.
        let path = paths.paths()[0].clone();
        paths.guard_unreachable(&path, &mut pool);
        assert!(pool.is_excluded(&path.guard().ed25519));
        paths.ensure(&pool, &mut rng);
        assert_eq!(paths.paths().len(), 2);
        assert!(!paths.guards().contains(&path.guard().ed25519));
        assert!(paths.guards().contains(&guards[1]));
    }

    #[test]
    fn a_path_is_dropped_at_the_third_failure_and_its_nodes_blamed() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut pool = NodePool::new(distinct_ips(8), 0);
        let mut paths = PathSet::new();
        paths.ensure(&pool, &mut rng);
        let path = paths.paths()[0].clone();
        assert!(!paths.record_failure(&path, &mut pool));
        assert!(!paths.record_failure(&path, &mut pool));
        paths.record_success(path.id); // a success restarts the count
        assert!(!paths.record_failure(&path, &mut pool));
        assert!(!paths.record_failure(&path, &mut pool));
        assert!(paths.record_failure(&path, &mut pool));
        assert!(!paths.paths().iter().any(|p| p.id == path.id));
        assert!(pool.is_excluded(&path.guard().ed25519), "guard marked bad");
        assert_eq!(pool.failures(&path.nodes[1].ed25519), 1);
        assert_eq!(pool.failures(&path.nodes[2].ed25519), 1);
        assert!(!paths.guards().contains(&path.guard().ed25519));
        paths.ensure(&pool, &mut rng);
        assert_eq!(paths.paths().len(), 2);
    }

    #[test]
    fn an_unreachable_hop_counts_one_failure_and_is_replaced() {
        let mut rng = StdRng::seed_from_u64(6);
        let mut pool = NodePool::new(distinct_ips(8), 0);
        let mut paths = PathSet::new();
        paths.ensure(&pool, &mut rng);
        let path = paths.paths()[0].clone();
        let exit = path.nodes[2].ed25519;
        paths.node_unreachable(&path, &exit, &mut pool, &mut rng);
        assert_eq!(pool.failures(&exit), 1);
        let kept = paths.paths().iter().find(|p| p.id == path.id).unwrap();
        assert!(!kept.nodes.iter().any(|n| n.ed25519 == exit));
        assert_eq!(kept.guard(), path.guard());
    }
}
