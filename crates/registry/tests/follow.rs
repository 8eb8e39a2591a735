//! Real `session-node` processes following a real registry (`docs/registry.md` §6): they register
//! and heartbeat by themselves, verify and replay the epoch chain, serve the list it computes, and
//! keep serving it from their stored chain when the registry is gone.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{RealNode, Registry, http, service_nodes, wait_until};

/// `pubkey_ed25519 → swarm_id` of a `service_node_states` list.
fn swarms_of(states: &Value) -> BTreeMap<String, u64> {
    states
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|n| Some((n["pubkey_ed25519"].as_str()?.to_owned(), n["swarm_id"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The node's own `get_service_nodes` answer (served from its copy of the list) and the HTTP
/// status of `info`, which is 503 until the node is in a swarm.
async fn node_view(client: &reqwest::Client, node: &RealNode) -> Option<(BTreeMap<String, u64>, u16)> {
    let url = format!("http://{}/storage_rpc/v1", node.addr);
    let list = client
        .post(&url)
        .body(json!({"method": "get_service_nodes", "params": {}}).to_string())
        .send()
        .await
        .ok()?;
    let list: Value = serde_json::from_slice(&list.bytes().await.ok()?).ok()?;
    let info = client.post(&url).body(r#"{"method":"info","params":{}}"#).send().await.ok()?;
    Some((swarms_of(&list["result"]["service_node_states"]), info.status().as_u16()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_follow_the_verified_chain_and_survive_a_registry_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(&dir.path().join("registry"), &[]);
    let pubkey = hex::encode(registry.pubkey);
    let args =
        ["--registry-url", &registry.url, "--registry-pubkey", &pubkey, "--registry-heartbeat-secs", "1"];
    let mut nodes: Vec<RealNode> =
        (0..6).map(|i| RealNode::start_with_args(&dir.path().join(format!("n{i}")), &args)).collect();
    let client = http();

    // The nodes register and heartbeat on their own; the registry activates all six and puts them
    // in one swarm (≥ 5 members).
    let published = wait_until("six active nodes in swarms", || async {
        let result = service_nodes(&client, &registry.url, json!({})).await;
        let swarms = swarms_of(&result["service_node_states"]);
        (swarms.len() == 6 && swarms.values().all(|&s| s != u64::MAX)).then_some(swarms)
    })
    .await;
    assert!(published.values().all(|s| *s == published.values().next().copied().unwrap()));

    // Every node serves exactly the list the verified chain computes, and is ready.
    for node in &nodes {
        wait_until("a node serving the registry's list", || async {
            let (list, info) = node_view(&client, node).await?;
            (list == published && info == 200).then_some(())
        })
        .await;
    }

    // The registry goes away; a node restarted now serves the same list from its stored chain.
    registry.kill();
    nodes[0].kill().await;
    nodes[0].restart();
    let (list, info) = wait_until("the restarted node serving its stored list", || async {
        node_view(&client, &nodes[0]).await.filter(|(list, _)| !list.is_empty())
    })
    .await;
    assert_eq!(list, published);
    assert_eq!(info, 200, "the restarted node is in its swarm without the registry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_chain_signed_by_another_registry() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(&dir.path().join("registry"), &[]);
    // The node trusts another key: it registers (the registry admits it) but never installs the
    // chain the registry serves, so it never serves a list or leaves "not ready".
    let wrong = hex::encode([7u8; 32]);
    let args =
        ["--registry-url", &registry.url, "--registry-pubkey", &wrong, "--registry-heartbeat-secs", "1"];
    let node = RealNode::start_with_args(&dir.path().join("n0"), &args);
    let client = http();
    wait_until("the node registered and active at the registry", || async {
        let result = service_nodes(&client, &registry.url, json!({})).await;
        swarms_of(&result["service_node_states"]).contains_key(&node.hex()).then_some(())
    })
    .await;
    // The registry published a chain with the node in it; give the node several polls.
    let url = format!("http://{}/storage_rpc/v1", node.addr);
    for _ in 0..20 {
        let reply = client.post(&url).body(r#"{"method":"info","params":{}}"#).send().await.unwrap();
        assert_eq!(reply.status(), 503, "a chain under the wrong key was installed");
        let text = reply.text().await.unwrap();
        assert!(text.contains("not in the node list"), "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
