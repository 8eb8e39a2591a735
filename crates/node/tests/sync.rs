//! Multi-process tests of swarm data movement and catch-up (`src/sync/`,
//! `docs/node-channel.md` §7–§8): real `session-node` processes on 127.0.0.1 sharing a node-list
//! file that the test rewrites.
//!
//! * two nodes join a three-node swarm: they serve every message, namespaces and expiries intact;
//! * a six-node swarm splits in two: each account is served by its new swarm, and the old holders
//!   drop the accounts they handed off;
//! * a member is killed with SIGKILL while writes go on, then restarted: it catches up and serves
//!   every message, none lost;
//! * a hand-off to a swarm whose members are all down deletes nothing; once they are back, the
//!   next periodic run delivers and only then deletes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use support::{Account, Cluster, ClusterSpec, Http, Node, eventually, now_ms};

const S1: u64 = 0x4000_0000_0000_0000;
const S2: u64 = 0xc000_0000_0000_0000;
/// Not in a swarm (decommissioned): running and known to its peers, but serving nothing.
const NO_SWARM: u64 = u64::MAX;
const HOUR_MS: u64 = 3_600_000;
/// How long data movement may take on a busy test machine.
const SYNC_TIMEOUT: Duration = Duration::from_secs(90);
/// Namespaces the tests write to: public inbox, a signed config namespace, a group namespace.
const NAMESPACES: [i16; 3] = [0, 2, -11];

fn start(swarms: &[u64], args: &[&str]) -> Cluster {
    let spec = ClusterSpec::new(swarms).args(["--sync-retry-ms", "200"]).args(args.iter().copied());
    Cluster::start(&spec).unwrap_or_else(|e| panic!("cluster did not start: {e}"))
}

/// One stored message as a client sees it in retrieve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    namespace: i16,
    hash: String,
    data: String,
    timestamp: u64,
    expiration: u64,
}

/// Stores `per_namespace` messages in each of [`NAMESPACES`] for `account` through `node`;
/// returns what a retrieve should show.
async fn write(
    http: &Http,
    node: &Node,
    account: &Account,
    per_namespace: usize,
    tag: &str,
) -> BTreeSet<Seen> {
    let mut written = BTreeSet::new();
    for namespace in NAMESPACES {
        for i in 0..per_namespace {
            let data = format!("{tag} ns {namespace} message {i}").into_bytes();
            let timestamp = now_ms();
            let reply = http.rpc(node, "store", &account.store(namespace, &data, HOUR_MS, timestamp)).await;
            assert_eq!(reply.status, 200, "store through node {}: {}", node.index, reply.text());
            let expiration = reply.json()["swarm"]
                .as_object()
                .and_then(|swarm| swarm.values().find_map(|r| r["expiry"].as_u64()))
                .unwrap_or(timestamp + HOUR_MS);
            written.insert(Seen {
                namespace,
                hash: account.hash(namespace, &data),
                data: base64_of(&data),
                timestamp,
                expiration,
            });
        }
    }
    written
}

fn base64_of(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Everything `node` serves for `account` in [`NAMESPACES`], or the first non-200 status.
async fn served(http: &Http, node: &Node, account: &Account) -> Result<BTreeSet<Seen>, u16> {
    let mut seen = BTreeSet::new();
    for namespace in NAMESPACES {
        let reply = http.rpc(node, "retrieve", &account.retrieve(namespace, now_ms(), None)).await;
        if reply.status != 200 {
            return Err(reply.status);
        }
        let body = reply.json();
        assert_ne!(body["more"], Value::Bool(true), "the tests stay within one retrieve page");
        for message in body["messages"].as_array().into_iter().flatten() {
            seen.insert(Seen {
                namespace,
                hash: message["hash"].as_str().unwrap_or_default().to_owned(),
                data: message["data"].as_str().unwrap_or_default().to_owned(),
                timestamp: message["timestamp"].as_u64().unwrap_or_default(),
                expiration: message["expiration"].as_u64().unwrap_or_default(),
            });
        }
    }
    Ok(seen)
}

/// Waits until `node` serves exactly `expected` for `account`; panics with what it served.
async fn assert_serves(http: &Http, node: &Node, account: &Account, expected: &BTreeSet<Seen>) {
    let ok =
        eventually(SYNC_TIMEOUT, || async { served(http, node, account).await.as_ref() == Ok(expected) })
            .await;
    if !ok {
        let got = served(http, node, account).await;
        let missing = got.as_ref().map(|g| expected.difference(g).count());
        panic!(
            "node {} does not serve account {}'s {} messages: {:?} missing (status or count)\n{}",
            node.index,
            &account.pubkey_hex[..8],
            expected.len(),
            missing,
            node.logs()
        );
    }
}

/// The `session_node_messages` gauge of `node`.
async fn stored_count(http: &Http, node: &Node) -> Option<u64> {
    let reply = http.get(&format!("{}/metrics", node.base_url())).await.ok()?;
    reply.text().lines().find_map(|l| l.strip_prefix("session_node_messages ")?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_nodes_receive_every_message() {
    let mut cluster = start(&[S1, S1, S1, NO_SWARM, NO_SWARM], &[]);
    let http = Http::default();
    let list = cluster.node_list();
    let accounts: Vec<Account> = (0..4).map(|_| Account::in_swarm(&list, S1)).collect();
    let mut written = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        written.push(write(&http, &cluster.nodes[i % 3], account, 3, &format!("join {i}")).await);
    }
    for account in &accounts {
        let reply = http.rpc(&cluster.nodes[3], "retrieve", &account.retrieve(0, now_ms(), None)).await;
        assert_eq!(reply.status, 503, "a node outside every swarm serves nothing: {}", reply.text());
    }

    // Nodes 3 and 4 join S1.
    let mut records = cluster.records.clone();
    records[3].swarm_id = S1;
    records[4].swarm_id = S1;
    cluster.rewrite_node_list(records).expect("node list rewritten");

    for joiner in &cluster.nodes[3..] {
        for (account, expected) in accounts.iter().zip(&written) {
            assert_serves(&http, joiner, account, expected).await;
        }
    }
    // The old members still serve everything too.
    for member in &cluster.nodes[..3] {
        for (account, expected) in accounts.iter().zip(&written) {
            assert_eq!(served(&http, member, account).await.as_ref(), Ok(expected), "node {}", member.index);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_moves_accounts_to_their_new_swarm() {
    let mut cluster = start(&[S1, S1, S1, S1, S1, S1], &[]);
    let http = Http::default();
    // The list after the split: nodes 3–5 form the new swarm S2.
    let mut after = cluster.records.clone();
    for record in &mut after[3..] {
        record.swarm_id = S2;
    }
    let future = session_node::nodelist::NodeList::new(after.clone());
    let stay: Vec<Account> = (0..3).map(|_| Account::in_swarm(&future, S1)).collect();
    let moving: Vec<Account> = (0..3).map(|_| Account::in_swarm(&future, S2)).collect();
    let mut written: BTreeMap<String, BTreeSet<Seen>> = BTreeMap::new();
    for (i, account) in stay.iter().chain(&moving).enumerate() {
        let node = &cluster.nodes[i % 6];
        written
            .insert(account.pubkey_hex.clone(), write(&http, node, account, 2, &format!("split {i}")).await);
    }
    let per_account = NAMESPACES.len() as u64 * 2;
    for node in &cluster.nodes {
        let all =
            eventually(SYNC_TIMEOUT, || async { stored_count(&http, node).await == Some(6 * per_account) })
                .await;
        assert!(all, "node {} should hold all {} messages before the split", node.index, 6 * per_account);
    }

    cluster.rewrite_node_list(after).expect("node list rewritten");

    for (swarm_nodes, accounts) in [(&cluster.nodes[..3], &stay), (&cluster.nodes[3..], &moving)] {
        for node in swarm_nodes {
            for account in accounts {
                assert_serves(&http, node, account, &written[&account.pubkey_hex]).await;
            }
        }
    }
    // Every node ends up holding only its own swarm's accounts: the others were deleted after a
    // member of their new swarm confirmed them.
    for node in &cluster.nodes {
        let only_own =
            eventually(SYNC_TIMEOUT, || async { stored_count(&http, node).await == Some(3 * per_account) })
                .await;
        assert!(
            only_own,
            "node {} holds {:?} messages, expected {} once hand-off finished\n{}",
            node.index,
            stored_count(&http, node).await,
            3 * per_account,
            node.logs()
        );
    }
    // Across the swarm boundary: 421, not data.
    let reply = http.rpc(&cluster.nodes[0], "retrieve", &moving[0].retrieve(0, now_ms(), None)).await;
    assert_eq!(reply.status, 421, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_member_catches_up_on_missed_writes() {
    let mut cluster = start(&[S1, S1, S1], &["--anti-entropy-secs", "2"]);
    let http = Http::default();
    let list = cluster.node_list();
    let accounts: Vec<Account> = (0..3).map(|_| Account::in_swarm(&list, S1)).collect();
    let mut expected: Vec<BTreeSet<Seen>> = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        expected.push(write(&http, &cluster.nodes[0], account, 2, &format!("before {i}")).await);
    }
    let before: usize = expected.iter().map(BTreeSet::len).sum();

    cluster.nodes[2].kill9();
    for (i, account) in accounts.iter().enumerate() {
        let more = write(&http, &cluster.nodes[i % 2], account, 3, &format!("while down {i}")).await;
        expected[i].extend(more);
    }
    let total: usize = expected.iter().map(BTreeSet::len).sum();
    assert!(total > before);
    for (account, expected) in accounts.iter().zip(&expected) {
        assert_eq!(served(&http, &cluster.nodes[1], account).await.as_ref(), Ok(expected));
    }

    cluster.nodes[2].restart().expect("node 2 restarts");
    let restarted = &cluster.nodes[2];
    let mut served_after = 0;
    for (account, expected) in accounts.iter().zip(&expected) {
        assert_serves(&http, restarted, account, expected).await;
        served_after += served(&http, restarted, account).await.map(|s| s.len()).unwrap_or(0);
    }
    assert_eq!(served_after, total, "messages lost: {}", total - served_after);
}

/// The value of a counter line (`name value`) in `node`'s metrics.
async fn metric(http: &Http, node: &Node, name: &str) -> Option<u64> {
    let reply = http.get(&format!("{}/metrics", node.base_url())).await.ok()?;
    let prefix = format!("{name} ");
    reply.text().lines().find_map(|l| l.strip_prefix(prefix.as_str())?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_off_keeps_messages_until_confirmed() {
    let mut cluster = start(&[S1, S1, NO_SWARM, NO_SWARM], &["--anti-entropy-secs", "2"]);
    let http = Http::default();
    let mut after = cluster.records.clone();
    after[2].swarm_id = S2;
    after[3].swarm_id = S2;
    let future = session_node::nodelist::NodeList::new(after.clone());
    let moving: Vec<Account> = (0..2).map(|_| Account::in_swarm(&future, S2)).collect();
    let mut written = Vec::new();
    for (i, account) in moving.iter().enumerate() {
        written.push(write(&http, &cluster.nodes[i % 2], account, 2, &format!("hand-off {i}")).await);
    }
    let total: u64 = written.iter().map(|w| w.len() as u64).sum();

    // The new swarm's members go down before the list that creates their swarm arrives.
    cluster.nodes[2].kill9();
    cluster.nodes[3].kill9();
    cluster.rewrite_node_list(after).expect("node list rewritten");
    for node in &cluster.nodes[..2] {
        let tried = eventually(SYNC_TIMEOUT, || async {
            metric(&http, node, "session_node_sync_push_failures_total").await.is_some_and(|n| n >= 1)
        })
        .await;
        assert!(tried, "node {} never failed a hand-off\n{}", node.index, node.logs());
        assert_eq!(
            stored_count(&http, node).await,
            Some(total),
            "node {} deleted unconfirmed messages",
            node.index
        );
        assert_eq!(metric(&http, node, "session_node_sync_handed_off_messages_total").await, Some(0));
    }

    cluster.nodes[2].restart().expect("node 2 restarts");
    cluster.nodes[3].restart().expect("node 3 restarts");
    for node in &cluster.nodes[2..] {
        for (account, expected) in moving.iter().zip(&written) {
            assert_serves(&http, node, account, expected).await;
        }
    }
    for node in &cluster.nodes[..2] {
        let dropped = eventually(SYNC_TIMEOUT, || async { stored_count(&http, node).await == Some(0) }).await;
        assert!(
            dropped,
            "node {} kept handed-off messages: {:?}",
            node.index,
            stored_count(&http, node).await
        );
    }
}
