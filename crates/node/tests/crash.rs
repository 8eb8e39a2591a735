//! Crash test: stores under load from several concurrent clients, `kill -9` of the node mid-way,
//! restart on the same data directory, and every acknowledged store must still be there.
//!
//! Run with `cargo test -p session-node --test crash -- --nocapture` to see the counts.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Account, Cluster, ClusterSpec, Http, Node, now_ms, rpc_body};

const SWARM: u64 = 0x4000_0000_0000_0000;
const CLIENTS: usize = 8;
const ACCOUNTS: usize = 8;
const ROUNDS: usize = 2;
/// Kill once this many stores were acknowledged in a round (or after `MAX_LOAD`).
const ACKS_BEFORE_KILL: usize = 1500;
const MAX_LOAD: Duration = Duration::from_secs(8);
const MIN_LOAD: Duration = Duration::from_millis(500);

/// What the clients saw.
#[derive(Default)]
struct Ledger {
    /// Hashes whose store got a 200, per account.
    acked: HashMap<usize, HashSet<String>>,
    /// Hashes sent and not (yet) answered.
    pending: HashSet<String>,
    /// Stores that got an error (connection reset by the kill, etc.).
    failed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_stores_survive_kill_9() {
    let mut cluster =
        Cluster::start(&ClusterSpec::new(&[SWARM]).args(["--rate", "0"])).unwrap_or_else(|e| panic!("{e}"));
    let list = cluster.node_list();
    let accounts: Arc<Vec<Account>> =
        Arc::new((0..ACCOUNTS).map(|_| Account::in_swarm(&list, SWARM)).collect());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut total_in_flight = 0;

    for round in 0..ROUNDS {
        let url = cluster.nodes[0].rpc_url();
        let stop = Arc::new(AtomicBool::new(false));
        let http = Http::new(Duration::from_secs(20));
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let (http, url, stop, ledger, accounts) =
                (http.clone(), url.clone(), stop.clone(), ledger.clone(), accounts.clone());
            clients.push(tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    let which = (client + seq as usize) % accounts.len();
                    let account = &accounts[which];
                    let data =
                        format!("round {round} client {client} message {seq} {}", now_ms()).into_bytes();
                    let hash = account.hash(0, &data);
                    ledger.lock().unwrap().pending.insert(hash.clone());
                    let body = rpc_body("store", &account.store(0, &data, 3_600_000, now_ms()));
                    let reply = http.post(&url, body).await;
                    let node_gone = {
                        let mut ledger = ledger.lock().unwrap();
                        ledger.pending.remove(&hash);
                        match reply {
                            Ok(r) if r.status == 200 && r.json()["hash"].as_str() == Some(&hash) => {
                                ledger.acked.entry(which).or_default().insert(hash);
                                false
                            }
                            Ok(r) if r.status == 200 => panic!("store answered 200 with {}", r.text()),
                            Ok(r) => panic!("store answered {} {}", r.status, r.text()),
                            Err(_) => {
                                ledger.failed += 1;
                                true
                            }
                        }
                    };
                    // The node is gone; stop trying until the round ends.
                    while node_gone && !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }));
        }

        // Let the load run, then kill -9 while requests are in flight.
        let started = Instant::now();
        let acked_before: usize = ledger.lock().unwrap().acked.values().map(HashSet::len).sum();
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let acked: usize = ledger.lock().unwrap().acked.values().map(HashSet::len).sum();
            let elapsed = started.elapsed();
            if (acked - acked_before >= ACKS_BEFORE_KILL && elapsed >= MIN_LOAD) || elapsed >= MAX_LOAD {
                break;
            }
        }
        let in_flight = {
            // Hold the ledger while killing so that no reply is counted in between.
            let ledger = ledger.lock().unwrap();
            cluster.nodes[0].kill9();
            ledger.pending.len()
        };
        total_in_flight += in_flight;
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.expect("client task");
        }
        let acked_round =
            ledger.lock().unwrap().acked.values().map(HashSet::len).sum::<usize>() - acked_before;
        eprintln!(
            "crash round {round}: {acked_round} stores acknowledged in {:.1} s, {in_flight} in flight at kill -9",
            started.elapsed().as_secs_f64()
        );
        assert!(acked_round > 0, "no store was acknowledged before the kill");

        cluster.nodes[0].restart().unwrap_or_else(|e| panic!("restart: {e}"));
    }

    // Everything acknowledged is there after the restarts.
    let node = &cluster.nodes[0];
    let http = Http::default();
    let (acked_by_account, failed) = {
        let ledger = ledger.lock().unwrap();
        (ledger.acked.clone(), ledger.failed)
    };
    let mut acked_total = 0;
    let mut found_acked = 0;
    let mut found_total = 0;
    let mut missing = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        let found = retrieve_all(&http, node, account).await;
        found_total += found.len();
        let acked = acked_by_account.get(&i).cloned().unwrap_or_default();
        acked_total += acked.len();
        for hash in &acked {
            if found.contains(hash) {
                found_acked += 1;
            } else {
                missing.push(hash.clone());
            }
        }
    }
    eprintln!(
        "crash test: {acked_total} acknowledged, {total_in_flight} in flight at the kills, {} failed by the kills; \
         after restart {found_total} found ({found_acked} of the acknowledged, {} unacknowledged that had committed)",
        failed,
        found_total - found_acked
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged stores lost after kill -9: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(found_acked, acked_total);
}

/// Every message of `account` in namespace 0, following `last_hash` while `more` is set.
async fn retrieve_all(http: &Http, node: &Node, account: &Account) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut last: Option<String> = None;
    loop {
        let reply = http.rpc(node, "retrieve", &account.retrieve(0, now_ms(), last.as_deref())).await;
        assert_eq!(reply.status, 200, "retrieve after restart: {}", reply.text());
        let body = reply.json();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            if let Some(h) = m["hash"].as_str() {
                found.insert(h.to_owned());
                last = Some(h.to_owned());
            }
        }
        if body["more"] != serde_json::json!(true) || messages.is_empty() {
            return found;
        }
    }
}
