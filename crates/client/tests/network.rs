//! The network layer against a real devnet (registry and node processes on loopback): bootstrap,
//! store and retrieve through onion paths, the other storage methods, pool refresh through
//! nodes, clock offset, aes-gcm layers, swarm members stopped, and a stale pool answered by 421.
//!
//! Builds the `session-node` and `session-registry` binaries into this target directory first
//! (`Binaries::build_for_tests`). One devnet at a time; every test is bounded in time.

use std::collections::BTreeSet;
use std::time::Duration;

use session_client::net::{PoolSnapshot, RetrieveRequest, StoreRequest};
use session_client::{Network, NetworkError};
use session_devnet::Devnet;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::onion::EncType;
use session_protocol::rpc_sign::{ExpireMode, NamespaceSelector};
use session_protocol::{IdentityKey, SessionId};

mod support;
use support::{bounded, config, options};

/// Bound of a whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(600);

fn random_key() -> IdentityKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    IdentityKey::from_seed_bytes(&seed)
}

fn account_bytes(key: &IdentityKey) -> [u8; 33] {
    key.session_id().to_bytes()
}

const TTL: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_store_retrieve_and_the_other_methods() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let devnet = Devnet::up(options(dir.path(), 6, 10.0)).await.unwrap();
        let network = Network::bootstrap(config(&devnet)).await.unwrap();

        // The pool is the registry's list.
        let listing = devnet.registry_nodes().await.unwrap();
        let pool = network.pool_snapshot();
        assert_eq!(pool.nodes.len(), 6);
        for node in &pool.nodes {
            let listed = listing.find(&hex::encode(node.ed25519)).expect("pool node is at the registry");
            assert_eq!(node.ip.to_string(), listed.public_ip);
            assert_eq!(node.port, listed.storage_port);
            assert_eq!(hex::encode(node.x25519), listed.pubkey_x25519);
            assert_eq!(node.swarm_id, listed.swarm_id);
        }
        assert_eq!(network.stats().registry_fetches, 1);
        // Two paths of three distinct nodes on distinct IPs.
        let paths = network.paths();
        assert_eq!(paths.len(), 2);
        for path in &paths {
            let ips: BTreeSet<_> = path.iter().map(|n| n.ip).collect();
            assert_eq!(ips.len(), 3);
        }

        // Store in the public inbox (namespace 0) and in a signed namespace; retrieve both.
        let key = random_key();
        let inbox = network
            .store(&key, &StoreRequest::new(Namespace(0), b"hello inbox".to_vec(), TTL))
            .await
            .unwrap();
        assert_eq!(inbox.hash, MessageHash::compute(&account_bytes(&key), Namespace(0), b"hello inbox"));
        // One swarm of six: every member stored it and signed its result.
        assert_eq!((inbox.stored_on, inbox.failed_on), (6, 0));
        let config_msg =
            network.store(&key, &StoreRequest::new(Namespace(2), b"profile".to_vec(), TTL)).await.unwrap();
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages.len(), 1);
        assert_eq!(got.messages[0].hash, inbox.hash);
        assert_eq!(got.messages[0].data, b"hello inbox");
        assert!(got.messages[0].expiry_ms > got.messages[0].timestamp_ms);
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(2))).await.unwrap();
        assert_eq!(got.messages.iter().map(|m| m.hash).collect::<Vec<_>>(), vec![config_msg.hash]);

        // Paging with last_hash and max_count.
        let second =
            network.store(&key, &StoreRequest::new(Namespace(0), b"second".to_vec(), TTL)).await.unwrap();
        let mut page = RetrieveRequest::new(Namespace(0));
        page.max_count = Some(1);
        let first_page = network.retrieve(&key, &page).await.unwrap();
        assert_eq!(first_page.messages.len(), 1);
        assert!(first_page.more);

        // A message for someone else, stored without their key, read with it.
        let recipient = random_key();
        let sent = network
            .store_unsigned(
                &recipient.session_id(),
                &StoreRequest::new(Namespace(0), b"for you".to_vec(), TTL),
            )
            .await
            .unwrap();
        let got = network.retrieve(&recipient, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages.iter().map(|m| m.hash).collect::<Vec<_>>(), vec![sent.hash]);
        let refused = network
            .store_unsigned(&recipient.session_id(), &StoreRequest::new(Namespace(2), b"x".to_vec(), TTL))
            .await;
        assert_eq!(refused.unwrap_err(), NetworkError::SignatureRequired { namespace: 2 });

        // Expiries: read, shorten, read again.
        let expiries = network.get_expiries(&key, &[inbox.hash, second.hash]).await.unwrap();
        assert_eq!(expiries.len(), 2);
        let shorter = expiries[&inbox.hash] - 600_000;
        let expired = network.expire(&key, &[inbox.hash], shorter, ExpireMode::Shorten).await.unwrap();
        assert_eq!(expired.updated.get(&inbox.hash), Some(&shorter));
        assert_eq!((expired.answered, expired.failed_on), (6, 0));
        let expiries = network.get_expiries(&key, &[inbox.hash]).await.unwrap();
        assert_eq!(expiries[&inbox.hash], shorter);

        // Delete one, then everything.
        let deleted = network.delete(&key, &[inbox.hash]).await.unwrap();
        assert_eq!(deleted.deleted, BTreeSet::from([inbox.hash]));
        assert_eq!((deleted.answered, deleted.failed_on), (6, 0));
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages.iter().map(|m| m.hash).collect::<Vec<_>>(), vec![second.hash]);
        let all = network.delete_all(&key, NamespaceSelector::All).await.unwrap();
        assert_eq!(all.deleted, BTreeSet::from([second.hash, config_msg.hash]));
        assert_eq!((all.answered, all.failed_on), (6, 0));
        assert!(
            network.retrieve(&key, &RetrieveRequest::new(Namespace(2))).await.unwrap().messages.is_empty()
        );

        // Another account cannot delete this account's messages.
        let other = random_key();
        let bad = network.delete(&other, &[second.hash]).await.unwrap();
        assert!(bad.deleted.is_empty());

        // get_swarm agrees with the locally computed swarm.
        let id = key.session_id();
        let local: BTreeSet<_> = network.swarm_of(&id).unwrap().into_iter().map(|n| n.ed25519).collect();
        let remote: BTreeSet<_> =
            network.get_swarm(&id).await.unwrap().into_iter().map(|n| n.ed25519).collect();
        assert_eq!(local, remote);

        // The pool refreshed through nodes (3 asked, intersection) is the same list.
        let before = network.stats().pool_refreshes;
        network.refresh_pool().await.unwrap();
        assert_eq!(network.stats().pool_refreshes, before + 1);
        let refreshed: BTreeSet<_> = network.pool_snapshot().nodes.into_iter().map(|n| n.ed25519).collect();
        let listed: BTreeSet<_> = pool.nodes.iter().map(|n| n.ed25519).collect();
        assert_eq!(refreshed, listed);

        devnet.down().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_offset_and_aes_gcm_layers() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let devnet = Devnet::up(options(dir.path(), 5, 10.0)).await.unwrap();
        // A dead registry beside the real one: the answer of the live one is used.
        let mut c = config(&devnet);
        c.registry_urls.insert(0, "http://127.0.0.1:1".into());
        let base = Network::bootstrap(c).await.unwrap();
        let pool: PoolSnapshot = base.pool_snapshot();
        assert_eq!(pool.nodes.len(), 5);

        // A local clock five minutes ahead, then five minutes behind: the first signed request
        // gets a 406, the client takes the nodes' time and the request succeeds.
        for skew_ms in [300_000i64, -300_000] {
            let mut c = config(&devnet);
            c.pool = Some(pool.clone());
            c.clock_skew_ms = skew_ms;
            let network = Network::bootstrap(c).await.unwrap();
            assert_eq!(network.stats().registry_fetches, 0, "the imported pool is used");
            let key = random_key();
            let stored = network
                .store(&key, &StoreRequest::new(Namespace(3), b"contacts".to_vec(), TTL))
                .await
                .unwrap();
            let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(3))).await.unwrap();
            assert_eq!(got.messages.iter().map(|m| m.hash).collect::<Vec<_>>(), vec![stored.hash]);
            assert!(network.stats().clock_resyncs >= 1, "skew {skew_ms}: {:?}", network.stats());
            // The learnt offset undoes the skew (to within the request latency).
            let error = network.time_offset_ms() + skew_ms;
            assert!(error.abs() < 30_000, "offset {} for skew {skew_ms}", network.time_offset_ms());
        }

        // aes-gcm layers instead of xchacha20; and a pool that does not know the nodes serve
        // plain HTTP (HTTPS is tried first, then HTTP).
        // The pool is also three hours old: it is refreshed through the nodes before the first
        // request.
        let mut pool = pool;
        for node in &mut pool.nodes {
            node.tls = None;
        }
        pool.refreshed_at_ms -= 3 * 3600 * 1000;
        let mut c = config(&devnet);
        c.pool = Some(pool);
        c.enc_type = EncType::AesGcm;
        let network = Network::bootstrap(c).await.unwrap();
        assert_eq!(network.stats().pool_refreshes, 1);
        assert_eq!(network.stats().registry_fetches, 0);
        let key = random_key();
        let stored =
            network.store(&key, &StoreRequest::new(Namespace(0), b"gcm".to_vec(), TTL)).await.unwrap();
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages[0].hash, stored.hash);
        assert_eq!(got.messages[0].data, b"gcm");
        // The guards' scheme was learnt; the refresh time is new.
        let snapshot = network.pool_snapshot();
        assert!(snapshot.nodes.iter().any(|n| n.tls == Some(false)));
        assert!(snapshot.refreshed_at_ms > network.network_time_ms() - 3600 * 1000);

        devnet.down().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stopped_swarm_members_are_routed_around() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        // Stopped nodes stay listed (no decommission during the test): the client has to find
        // out by itself.
        let mut devnet = Devnet::up(options(dir.path(), 6, 3600.0)).await.unwrap();
        let network = Network::bootstrap(config(&devnet)).await.unwrap();
        let key = random_key();
        let members = network.swarm_of(&key.session_id()).unwrap();
        assert!(members.len() >= 5);
        let nodes = devnet.nodes().unwrap();
        let index_of = |ed: &[u8; 32]| {
            nodes.iter().find(|n| n.pubkey_ed25519 == hex::encode(ed)).map(|n| n.index).expect("devnet node")
        };
        let stopped: Vec<[u8; 32]> = members.iter().take(2).map(|n| n.ed25519).collect();
        for ed in &stopped {
            assert!(devnet.stop_node(index_of(ed)).await.unwrap());
        }

        // Every round succeeds; rounds go on until the client has hit both stopped nodes (as a
        // destination or on a path) and counted failures for them.
        let mut stored = Vec::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let data = format!("round {rounds}").into_bytes();
            let r = network.store(&key, &StoreRequest::new(Namespace(0), data, TTL)).await.unwrap();
            // The entry node reports the two stopped members as failed.
            assert_eq!((r.stored_on, r.failed_on), (members.len() - 2, 2));
            stored.push(r.hash);
            let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
            let hashes: BTreeSet<_> = got.messages.iter().map(|m| m.hash).collect();
            assert!(stored.iter().all(|h| hashes.contains(h)), "round {rounds}: a stored message is missing");
            let failures = network.pool_snapshot().failures;
            if stopped.iter().all(|ed| failures.get(&hex::encode(ed)).is_some_and(|&n| n >= 1)) {
                break;
            }
            assert!(rounds < 40, "after {rounds} rounds the stopped nodes were never blamed: {failures:?}");
        }
        // No running node ended up excluded for failures of the stopped ones.
        let snapshot = network.pool_snapshot();
        for node in &snapshot.nodes {
            if !stopped.contains(&node.ed25519) {
                let n = snapshot.failures.get(&hex::encode(node.ed25519)).copied().unwrap_or(0);
                assert!(n < 3, "running node {} excluded", node.short());
            }
        }
        assert!(network.stats().retries >= 1);
        devnet.down().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_pool_is_corrected_after_wrong_swarm_replies() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        // 14 nodes: the fewest with which oxend's assignment makes two swarms (7 + 7).
        let devnet = Devnet::up(options(dir.path(), 14, 10.0)).await.unwrap();
        let network = Network::bootstrap(config(&devnet)).await.unwrap();
        let fresh = network.pool_snapshot();
        let swarms: BTreeSet<u64> = fresh.nodes.iter().map(|n| n.swarm_id).collect();
        assert_eq!(swarms.len(), 2, "two swarms");
        let (a, b) = (*swarms.first().unwrap(), *swarms.last().unwrap());

        // A stale pool: the two swarms' members swapped. Every node the client picks for an
        // account answers 421; after the second, the client refreshes the pool through nodes.
        let mut stale = fresh.clone();
        for node in &mut stale.nodes {
            node.swarm_id = if node.swarm_id == a { b } else { a };
        }
        network.import_pool(stale);
        let key = random_key();
        let stored =
            network.store(&key, &StoreRequest::new(Namespace(0), b"found".to_vec(), TTL)).await.unwrap();
        let stats = network.stats();
        assert_eq!(stats.wrong_swarm_replies, 2, "{stats:?}");
        assert_eq!(stats.pool_refreshes, 1, "{stats:?}");
        // The refreshed pool is the real assignment.
        let mut now: Vec<_> =
            network.pool_snapshot().nodes.into_iter().map(|n| (n.ed25519, n.swarm_id)).collect();
        let mut real: Vec<_> = fresh.nodes.iter().map(|n| (n.ed25519, n.swarm_id)).collect();
        now.sort();
        real.sort();
        assert_eq!(now, real);
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages.iter().map(|m| m.hash).collect::<Vec<_>>(), vec![stored.hash]);

        // A blinded id has no swarm.
        let blinded = SessionId::new(session_protocol::IdPrefix::Blinded25, [7; 32]);
        assert_eq!(
            network.swarm_of(&blinded).unwrap_err(),
            NetworkError::UnsupportedAccount { prefix: 0x25 }
        );
        devnet.down().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_the_network_does_not_know_are_marked_bad() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let devnet = Devnet::up(options(dir.path(), 6, 10.0)).await.unwrap();
        let base = Network::bootstrap(config(&devnet)).await.unwrap();
        let mut pool = base.pool_snapshot();
        let swarm = pool.nodes[0].swarm_id;
        // Three nodes no real node knows, in the same swarm, on addresses where nothing listens:
        // as a guard they refuse connections, as a later hop or destination the previous hop
        // answers "Next node not found".
        let fakes: Vec<[u8; 32]> = (0..3u8)
            .map(|i| {
                let fake = random_key();
                let mut node = pool.nodes[0].clone();
                node.ed25519 = fake.ed25519_public();
                node.x25519 = *fake.x25519_public();
                node.ip = std::net::Ipv4Addr::new(127, 0, 0, 200 + i);
                node.swarm_id = swarm;
                pool.nodes.push(node);
                fake.ed25519_public()
            })
            .collect();
        let mut c = config(&devnet);
        c.pool = Some(pool);
        let network = Network::bootstrap(c).await.unwrap();
        let key = random_key();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let data = format!("round {rounds}").into_bytes();
            let stored = network.store(&key, &StoreRequest::new(Namespace(0), data, TTL)).await.unwrap();
            let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
            assert!(got.messages.iter().any(|m| m.hash == stored.hash));
            let failures = network.pool_snapshot().failures;
            if fakes.iter().all(|ed| failures.get(&hex::encode(ed)).is_some_and(|&n| n >= 3)) {
                break;
            }
            assert!(
                rounds < 40,
                "after {rounds} rounds the unknown nodes are not all excluded: {failures:?}"
            );
        }
        // The paths now hold real nodes only.
        for path in network.paths() {
            assert!(path.iter().all(|n| !fakes.contains(&n.ed25519)));
        }
        devnet.down().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_nodes_with_self_signed_certificates() {
    bounded(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path(), 5, 10.0);
        o.tls = true;
        let devnet = Devnet::up(o).await.unwrap();
        let network = Network::bootstrap(config(&devnet)).await.unwrap();
        let pool = network.pool_snapshot();
        assert!(pool.nodes.iter().all(|n| n.tls == Some(true)), "the registry says the nodes serve HTTPS");
        let key = random_key();
        let stored =
            network.store(&key, &StoreRequest::new(Namespace(0), b"tls".to_vec(), TTL)).await.unwrap();
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages[0].hash, stored.hash);

        // A pool that does not know the scheme (as from nodes, which do not publish it): HTTPS
        // is tried first.
        let mut unknown = pool.clone();
        for node in &mut unknown.nodes {
            node.tls = None;
        }
        let mut c = config(&devnet);
        c.pool = Some(unknown);
        let network = Network::bootstrap(c).await.unwrap();
        let got = network.retrieve(&key, &RetrieveRequest::new(Namespace(0))).await.unwrap();
        assert_eq!(got.messages[0].hash, stored.hash);
        devnet.down().await.unwrap();
    })
    .await;
}
