//! The `session-registry` binary end to end, on 127.0.0.1 with temporary data dirs and short
//! liveness timings: admission, activation after a reachability test, the JSON-RPC API, the
//! epoch chain replayed by a client, decommission/recommission, and restarts.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use session_registry::api::{HeartbeatRequest, RegisterRequest};
use session_registry::chain::{Epoch, State};
use support::*;

/// Waits until the node with key `hex` is listed with `active == want`.
async fn wait_active(client: &reqwest::Client, url: &str, hex: &str, want: bool) -> Value {
    wait_until(&format!("node {}… active={want}", &hex[..8]), || async {
        let result = service_nodes(client, url, json!({})).await;
        (entry(&result, hex)?["active"] == want).then_some(result)
    })
    .await
}

/// Every epoch, fetched in pages of `page`.
async fn all_epochs(client: &reqwest::Client, url: &str, page: u64) -> Vec<Epoch> {
    let mut epochs: Vec<Epoch> = Vec::new();
    loop {
        let reply = rpc(client, url, "get_epochs", json!({"from": epochs.len(), "limit": page})).await;
        let batch: Vec<Epoch> = serde_json::from_value(reply["result"]["epochs"].clone()).unwrap();
        if batch.is_empty() {
            return epochs;
        }
        assert!(batch.len() as u64 <= page);
        epochs.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_checks_signature_timestamp_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), &[]);
    let client = http();
    let url = format!("{}/register", registry.url);
    let key = random_key();
    let addr = "127.0.0.1:9".parse().unwrap();

    let (status, body) = register(&client, &registry.url, &key, addr).await;
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "pending");
    assert_eq!(reply["height"], 0);

    // Signed by another key.
    let mut forged =
        RegisterRequest::new_signed(&key, [127, 0, 0, 1].into(), 9, 0, false, [0, 1, 0], now_ms());
    forged.signature =
        RegisterRequest::new_signed(&random_key(), [127, 0, 0, 1].into(), 9, 0, false, [0, 1, 0], now_ms())
            .signature;
    assert_eq!(post(&client, &url, &serde_json::to_value(&forged).unwrap()).await.0, 400);
    // A signed field changed after signing.
    let mut moved =
        RegisterRequest::new_signed(&key, [127, 0, 0, 1].into(), 9, 0, false, [0, 1, 0], now_ms());
    moved.storage_port = 10;
    assert_eq!(post(&client, &url, &serde_json::to_value(&moved).unwrap()).await.0, 400);
    // Stale and future timestamps.
    for timestamp in [now_ms() - 120_000, now_ms() + 120_000] {
        let stale =
            RegisterRequest::new_signed(&key, [127, 0, 0, 1].into(), 9, 0, false, [0, 1, 0], timestamp);
        let (status, body) = post(&client, &url, &serde_json::to_value(&stale).unwrap()).await;
        assert_eq!(status, 406, "{body}");
    }
    // X25519 key of another node.
    let mut wrong_x =
        RegisterRequest::new_signed(&key, [127, 0, 0, 1].into(), 9, 0, false, [0, 1, 0], now_ms());
    wrong_x.pubkey_x25519 = hex::encode(random_key().x25519_public());
    assert_eq!(post(&client, &url, &serde_json::to_value(&wrong_x).unwrap()).await.0, 400);
    // Unusable address.
    let zero = RegisterRequest::new_signed(&key, [0, 0, 0, 0].into(), 9, 0, false, [0, 1, 0], now_ms());
    assert_eq!(post(&client, &url, &serde_json::to_value(&zero).unwrap()).await.0, 400);
    // Malformed bodies.
    for body in [json!({}), json!({"pubkey_ed25519": "zz"}), json!([1, 2]), json!("x")] {
        assert_eq!(post(&client, &url, &body).await.0, 400, "{body}");
    }
    let raw = client.post(&url).body("not json").send().await.unwrap();
    assert_eq!(raw.status(), 400);

    // Heartbeats: the pending node is known, a stranger is told to register, forgeries refused.
    assert_eq!(heartbeat(&client, &registry.url, &key).await, "pending");
    assert_eq!(heartbeat(&client, &registry.url, &random_key()).await, "unknown");
    let mut forged = HeartbeatRequest::new_signed(&key, now_ms());
    forged.timestamp += 1;
    let hb_url = format!("{}/heartbeat", registry.url);
    assert_eq!(post(&client, &hb_url, &serde_json::to_value(&forged).unwrap()).await.0, 400);
    let stale = HeartbeatRequest::new_signed(&key, now_ms() - 120_000);
    assert_eq!(post(&client, &hb_url, &serde_json::to_value(&stale).unwrap()).await.0, 406);

    // Nothing was admitted: the chain is still the genesis and the list is empty.
    let result = service_nodes(&client, &registry.url, json!({})).await;
    assert_eq!(result["height"], 0);
    assert_eq!(result["service_node_states"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_admits_only_listed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let listed = random_key();
    let listed_hex = hex::encode(listed.ed25519_public());
    let registry = Registry::start(dir.path(), &["--policy", "allowlist", "--allow", &listed_hex]);
    let client = http();
    let addr = "127.0.0.1:9".parse().unwrap();
    let (status, body) = register(&client, &registry.url, &listed, addr).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = register(&client, &registry.url, &random_key(), addr).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_goes_pending_active_decommissioned_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("registry"), &[]);
    let client = http();
    let mut node = RealNode::start(&dir.path().join("node"));
    // A node that is not listening, and one that answers with someone else's key.
    let silent = random_key();
    let impostor = PingNode::start_with(&registry.url, random_key(), random_key().ed25519_public()).await;

    let (status, body) = register(&client, &registry.url, &node.key, node.addr).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()["status"].clone()),
        (200, json!("pending"))
    );
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert_eq!(register(&client, &registry.url, &silent, unused).await.0, 200);
    assert_eq!(register(&client, &registry.url, &impostor.key, impostor.addr).await.0, 200);
    node.heartbeat_to(&registry.url);

    let result = wait_active(&client, &registry.url, &node.hex(), true).await;
    let listed = entry(&result, &node.hex()).unwrap();
    assert_eq!(listed["swarm_id"], 0);
    assert_eq!(listed["swarm"], "0000000000000000");
    assert_eq!(listed["public_ip"], "127.0.0.1");
    assert_eq!(listed["storage_port"], node.addr.port());
    assert_eq!(listed["pubkey_x25519"], hex::encode(node.key.x25519_public()));
    assert_eq!(listed["service_node_pubkey"], node.hex());
    assert_eq!(listed["funded"], true);
    assert_eq!(listed["storage_server_version"], json!([0, 1, 0]));
    assert_eq!(listed["tls"], false);
    assert_eq!(heartbeat(&client, &registry.url, &node.key).await, "active");
    // Neither the unreachable node nor the impostor was admitted.
    assert_eq!(result["service_node_states"].as_array().unwrap().len(), 1);
    assert_eq!(heartbeat(&client, &registry.url, &silent).await, "pending");
    assert_eq!(heartbeat(&client, &registry.url, &impostor.key).await, "pending");

    // Killed: no heartbeats, no answers → decommissioned.
    node.kill().await;
    let result = wait_active(&client, &registry.url, &node.hex(), false).await;
    let listed = entry(&result, &node.hex()).unwrap();
    assert_eq!(listed["swarm_id"], u64::MAX);
    assert_eq!(listed["swarm"], "ffffffffffffffff");
    assert_eq!(heartbeat(&client, &registry.url, &node.key).await, "decommissioned");
    let active_only = service_nodes(&client, &registry.url, json!({"active_only": true})).await;
    assert_eq!(active_only["service_node_states"], json!([]));

    // Back: heartbeats and answers again → recommissioned into a swarm.
    node.restart();
    node.heartbeat_to(&registry.url);
    let result = wait_active(&client, &registry.url, &node.hex(), true).await;
    assert_eq!(entry(&result, &node.hex()).unwrap()["swarm_id"], 0, "{}", registry.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_service_nodes_fields_filters_limit_and_polling() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), &[]);
    let client = http();
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let node = PingNode::start(&registry.url).await;
        assert_eq!(register(&client, &registry.url, &node.key, node.addr).await.0, 200);
        nodes.push(node);
    }
    let result = wait_until("six active nodes", || async {
        let result = service_nodes(&client, &registry.url, json!({"active_only": true})).await;
        (result["service_node_states"].as_array()?.len() == 6).then_some(result)
    })
    .await;
    assert_eq!(swarm_sizes(&result).values().copied().collect::<Vec<_>>(), [6]);
    for field in
        ["height", "target_height", "block_hash", "hardfork", "snode_revision", "status", "unchanged"]
    {
        assert!(result.get(field).is_some(), "{field}");
    }
    assert_eq!(result["unchanged"], false);
    assert_eq!(result["status"], "OK");
    let hash = result["block_hash"].as_str().unwrap().to_string();
    let height = result["height"].as_u64().unwrap();
    // Sorted by key.
    let keys: Vec<&str> = result["service_node_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pubkey_ed25519"].as_str().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    // last_uptime_proof is a recent heartbeat time in seconds.
    let proof = result["service_node_states"][0]["last_uptime_proof"].as_u64().unwrap();
    assert!(proof > 0 && proof <= now_ms() / 1000 + 1);

    // fields: dict (unknown names ignored), list, removals.
    let desktop = service_nodes(
        &client,
        &registry.url,
        json!({"active_only": true, "fields": {"public_ip": true, "storage_port": true, "pubkey_x25519": true,
               "pubkey_ed25519": true, "requested_unlock_height": true, "height": true}}),
    )
    .await;
    let first = desktop["service_node_states"][0].as_object().unwrap();
    let mut names: Vec<&str> = first.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["pubkey_ed25519", "pubkey_x25519", "public_ip", "requested_unlock_height", "storage_port"]
    );
    let listed = service_nodes(&client, &registry.url, json!({"fields": ["swarm_id"]})).await;
    assert_eq!(listed["service_node_states"][0], json!({"swarm_id": 0}));
    let removed = service_nodes(&client, &registry.url, json!({"fields": ["-swarm", "-tls"]})).await;
    let first = removed["service_node_states"][0].as_object().unwrap();
    assert!(first.contains_key("swarm_id") && !first.contains_key("swarm") && !first.contains_key("tls"));

    // service_node_pubkeys and limit.
    let one = service_nodes(&client, &registry.url, json!({"service_node_pubkeys": [nodes[2].hex()]})).await;
    assert_eq!(one["service_node_states"].as_array().unwrap().len(), 1);
    assert_eq!(one["service_node_states"][0]["pubkey_ed25519"], nodes[2].hex());
    let limited = service_nodes(&client, &registry.url, json!({"limit": 3})).await;
    assert_eq!(limited["service_node_states"].as_array().unwrap().len(), 3);
    let shuffled = service_nodes(&client, &registry.url, json!({"limit": -1})).await;
    assert_eq!(shuffled["service_node_states"].as_array().unwrap().len(), 6);

    // The alias answers the same.
    let alias = rpc(&client, &registry.url, "get_n_service_nodes", json!({"fields": ["swarm_id"]})).await;
    assert_eq!(alias["result"]["service_node_states"], listed["service_node_states"]);

    // poll_block_hash: unchanged without the list.
    let same = service_nodes(&client, &registry.url, json!({"poll_block_hash": hash})).await;
    assert_eq!(same["unchanged"], true);
    assert_eq!(same["height"], height);
    assert_eq!(same["block_hash"], hash);
    assert!(same.get("service_node_states").is_none());

    // Long poll: held until the chain changes (a seventh node is admitted).
    let poll = {
        let client = client.clone();
        let url = registry.url.clone();
        let hash = hash.clone();
        tokio::spawn(async move {
            service_nodes(
                &client,
                &url,
                json!({"poll_block_hash": hash, "poll_wait": 60, "fields": ["swarm_id"]}),
            )
            .await
        })
    };
    let seventh = PingNode::start(&registry.url).await;
    assert_eq!(register(&client, &registry.url, &seventh.key, seventh.addr).await.0, 200);
    let woke = tokio::time::timeout(Duration::from_secs(55), poll)
        .await
        .expect("long poll wakes on change")
        .unwrap();
    assert_eq!(woke["unchanged"], false);
    assert!(woke["height"].as_u64().unwrap() > height);
    assert_ne!(woke["block_hash"], hash);
    assert_eq!(woke["service_node_states"].as_array().unwrap().len(), 7);

    // A short long-poll on the current hash ends unchanged when its time is up.
    let current = woke["block_hash"].clone();
    let waited =
        service_nodes(&client, &registry.url, json!({"poll_block_hash": current, "poll_wait": 0.3})).await;
    assert!(waited["unchanged"] == true || waited["block_hash"] != current);

    // Errors.
    let info = rpc(&client, &registry.url, "get_registry_info", json!({})).await;
    assert_eq!(info["result"]["registry_pubkey"], hex::encode(registry.pubkey));
    assert_eq!(info["result"]["height"], woke["height"]);
    let unknown = rpc(&client, &registry.url, "get_bananas", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let bad = rpc(&client, &registry.url, "get_service_nodes", json!({"limit": "many"})).await;
    assert_eq!(bad["error"]["code"], -32602);
    let bad = rpc(&client, &registry.url, "get_epochs", json!({"from": -1})).await;
    assert_eq!(bad["error"]["code"], -32602);
    let (status, body) = post(&client, &format!("{}/json_rpc", registry.url), &json!({"id": 5})).await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((reply["error"]["code"].clone(), reply["id"].clone()), (json!(-32600), json!(5)));
    let raw = client.post(format!("{}/json_rpc", registry.url)).body("{nope").send().await.unwrap();
    assert_eq!(raw.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_verify_and_replay_to_the_published_list() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), &[]);
    let client = http();
    let mut nodes = Vec::new();
    for _ in 0..8 {
        let node = PingNode::start(&registry.url).await;
        assert_eq!(register(&client, &registry.url, &node.key, node.addr).await.0, 200);
        nodes.push(node);
    }
    wait_until("eight active nodes", || async {
        let result = service_nodes(&client, &registry.url, json!({"active_only": true})).await;
        (result["service_node_states"].as_array()?.len() == 8).then_some(())
    })
    .await;
    // One leaves, so the chain holds a decommission too.
    nodes[0].stop().await;
    wait_active(&client, &registry.url, &nodes[0].hex(), false).await;

    let published = service_nodes(&client, &registry.url, json!({})).await;
    let epochs = all_epochs(&client, &registry.url, 2).await;
    assert_eq!(epochs.len() as u64, published["height"].as_u64().unwrap() + 1);
    let info = rpc(&client, &registry.url, "get_epochs", json!({"limit": 1})).await;
    assert_eq!(info["result"]["registry_pubkey"], hex::encode(registry.pubkey));
    assert_eq!(info["result"]["epochs"].as_array().unwrap().len(), 1);

    let state = State::replay(registry.pubkey, &epochs).expect("the published chain verifies");
    assert_eq!(hex::encode(state.block_hash().unwrap()), published["block_hash"].as_str().unwrap());
    let replayed = serde_json::to_value(state.node_records()).unwrap();
    let published_list = published["service_node_states"].as_array().unwrap();
    let replayed_list = replayed.as_array().unwrap();
    assert_eq!(replayed_list.len(), published_list.len());
    for (mine, theirs) in replayed_list.iter().zip(published_list) {
        for field in
            ["pubkey_ed25519", "pubkey_x25519", "public_ip", "storage_port", "swarm_id", "swarm", "active"]
        {
            assert_eq!(mine[field], theirs[field], "{field}");
        }
    }

    // A chain from a registry with another key does not verify.
    assert!(State::replay(random_key().ed25519_public(), &epochs).is_err());
    // Nor one with an epoch left out.
    let mut gapped = epochs.clone();
    gapped.remove(1);
    assert!(State::replay(registry.pubkey, &gapped).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_nodes_are_decommissioned_their_swarm_refilled_and_they_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), &[]);
    let client = http();
    let mut nodes = Vec::new();
    for _ in 0..14 {
        let node = PingNode::start(&registry.url).await;
        assert_eq!(register(&client, &registry.url, &node.key, node.addr).await.0, 200);
        nodes.push(node);
    }
    let result = wait_until("fourteen active nodes", || async {
        let result = service_nodes(&client, &registry.url, json!({"active_only": true})).await;
        (result["service_node_states"].as_array()?.len() == 14).then_some(result)
    })
    .await;
    let sizes = swarm_sizes(&result);
    assert_eq!(sizes.values().copied().collect::<Vec<_>>(), [7, 7], "14 nodes make two swarms of 7");

    // Three members of one swarm go silent.
    let swarm_of =
        |result: &Value, node: &PingNode| entry(result, &node.hex()).unwrap()["swarm_id"].as_u64().unwrap();
    let target = swarm_of(&result, &nodes[0]);
    let victims: Vec<usize> = (0..14).filter(|&i| swarm_of(&result, &nodes[i]) == target).take(3).collect();
    for &i in &victims {
        nodes[i].stop().await;
    }
    let result = wait_until("three decommissioned nodes", || async {
        let result = service_nodes(&client, &registry.url, json!({})).await;
        victims.iter().all(|&i| entry(&result, &nodes[i].hex()).unwrap()["active"] == false).then_some(result)
    })
    .await;
    for &i in &victims {
        assert_eq!(entry(&result, &nodes[i].hex()).unwrap()["swarm_id"], u64::MAX);
    }
    // The swarm that lost three (7 → 4) was refilled from the other: 5 and 6.
    let sizes = swarm_sizes(&result);
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert_eq!(sizes[&target], 5, "{sizes:?}");
    assert_eq!(sizes.values().sum::<usize>(), 11);

    // They come back: recommissioned into swarms, every swarm at least 5.
    for &i in &victims {
        nodes[i].restart().await;
    }
    let result = wait_until("all fourteen active again", || async {
        let result = service_nodes(&client, &registry.url, json!({"active_only": true})).await;
        (result["service_node_states"].as_array()?.len() == 14).then_some(result)
    })
    .await;
    let sizes = swarm_sizes(&result);
    assert!(sizes.values().all(|&n| n >= 5), "{sizes:?}");
    assert_eq!(sizes.values().sum::<usize>(), 14);
    assert!(!sizes.contains_key(&u64::MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_state_and_height() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(dir.path(), &[]);
    let client = http();
    let mut nodes = Vec::new();
    for _ in 0..5 {
        let node = PingNode::start(&registry.url).await;
        assert_eq!(register(&client, &registry.url, &node.key, node.addr).await.0, 200);
        nodes.push(node);
    }
    let before = wait_until("five active nodes", || async {
        let result = service_nodes(&client, &registry.url, json!({"active_only": true})).await;
        (result["service_node_states"].as_array()?.len() == 5).then_some(result)
    })
    .await;
    // A registration that is still pending when the registry dies.
    let pending = random_key();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert_eq!(register(&client, &registry.url, &pending, unused).await.0, 200);
    let info_before = rpc(&client, &registry.url, "get_registry_info", json!({})).await["result"].clone();

    registry.kill();
    let registry = Registry::start(dir.path(), &[]);
    for node in &nodes {
        node.set_registry(&registry.url);
    }
    let info_after = rpc(&client, &registry.url, "get_registry_info", json!({})).await["result"].clone();
    assert_eq!(info_after, info_before, "same key, height and block hash");
    let after = service_nodes(
        &client,
        &registry.url,
        json!({"active_only": true, "fields": ["pubkey_ed25519", "swarm_id"]}),
    )
    .await;
    let strip = |result: &Value| -> Vec<(Value, Value)> {
        result["service_node_states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["pubkey_ed25519"].clone(), n["swarm_id"].clone()))
            .collect()
    };
    assert_eq!(strip(&after), strip(&before));
    assert_eq!(heartbeat(&client, &registry.url, &pending).await, "pending", "pending registration survived");

    // The restarted registry goes on from the same chain.
    let sixth = PingNode::start(&registry.url).await;
    assert_eq!(register(&client, &registry.url, &sixth.key, sixth.addr).await.0, 200);
    let result = wait_active(&client, &registry.url, &sixth.hex(), true).await;
    assert_eq!(result["height"].as_u64().unwrap(), info_before["height"].as_u64().unwrap() + 1);
    let epochs = all_epochs(&client, &registry.url, 1000).await;
    assert!(State::replay(registry.pubkey, &epochs).is_ok());
}
