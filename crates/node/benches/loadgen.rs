//! Load generator: starts `session-node` processes on loopback and measures, one run after the
//! other, store (namespace 0, unauthenticated public inbox), authenticated retrieve and 3-hop
//! onion requests — requests per second, p50 and p99 latency — then the crypto floor on one core
//! (X25519 + XChaCha20-Poly1305 of 1 KiB + Ed25519 verify, from `session_protocol`) and the ratio
//! of onion requests per second to that floor.
//!
//! ```text
//! cargo bench -p session-node --bench loadgen                  # 20 s per run
//! cargo bench -p session-node --bench loadgen -- --quick       # 3 s per run
//! cargo bench -p session-node --bench loadgen -- --help
//! ```
//!
//! Cargo builds the bench and the node in the `bench` profile (optimised, in `target/release`).
//! Every request uses keep-alive connections from one pooled `reqwest` client; the generator runs
//! on the same machine as the nodes and its CPU use is reported next to theirs.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng as _;
use session_protocol::keys::verify_ed25519;
use session_protocol::message_hash::Namespace;
use session_protocol::onion::{
    Destination, EncType, FinalOptions, HopKey, NodeKeys, RequestSpec, build_request_random,
};
use session_protocol::primitives::{x25519, x25519_base};
use session_protocol::rpc_sign::SignableRequest;
use support::{Account, Cluster, ClusterSpec, Http, now_ms};

const USAGE: &str = "\
session-node load generator

USAGE: cargo bench -p session-node --bench loadgen -- [OPTIONS]

OPTIONS:
  --seconds N         length of each measured run (default 20)
  --quick             3 s runs, shorter warm-up and crypto floor
  --warmup N          unmeasured seconds before each run (default 2; quick 0.5)
  --concurrency N     concurrent requests per run (default 64)
  --onion-concurrency N  concurrent onion requests (default: --concurrency)
  --nodes N           nodes to start (default 4; at least 4 for onion runs)
  --swarm-size N      nodes per swarm (default 1: every store is one node's write; with N > 1
                      each store is also forwarded to the N-1 other members)
  --enc-type T        onion layer encryption: xchacha20 (default) or aes-gcm
  --onion-method M    what the destination runs: info (default) or retrieve
  --only LIST         comma-separated subset of store,retrieve,onion,crypto
  --client-threads N  tokio worker threads of the generator (default 2)
  --node-threads N    worker threads of each node (`session-node --threads`; default 1: the
                      nodes and the generator share the machine's cores; 0 = one per CPU)
  --node-bin PATH     session-node binary (default: the one Cargo built next to this bench)
";

/// Goals from the issue, for the summary.
const GOAL_STORE: f64 = 8_000.0;
const GOAL_RETRIEVE: f64 = 5_000.0;
const GOAL_ONION: f64 = 1_500.0;
const GOAL_ONION_P50_MS: f64 = 3.0;

#[derive(Debug, Clone)]
struct Options {
    seconds: f64,
    warmup: f64,
    quick: bool,
    concurrency: usize,
    onion_concurrency: Option<usize>,
    nodes: usize,
    swarm_size: usize,
    enc_type: EncType,
    onion_method: String,
    only: Vec<String>,
    client_threads: usize,
    node_threads: usize,
    node_bin: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut o = Options {
            seconds: 20.0,
            warmup: 2.0,
            quick: false,
            concurrency: 64,
            onion_concurrency: None,
            nodes: 4,
            swarm_size: 1,
            enc_type: EncType::XChaCha20,
            onion_method: "info".into(),
            only: vec!["store".into(), "retrieve".into(), "onion".into(), "crypto".into()],
            client_threads: 2,
            node_threads: 1,
            node_bin: None,
        };
        let mut warmup_set = false;
        let mut seconds_set = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                // `cargo bench` passes `--bench` to harness=false targets.
                "--bench" => {}
                "--quick" => o.quick = true,
                "--seconds" => {
                    o.seconds = num(&value("--seconds")?)?;
                    seconds_set = true;
                }
                "--warmup" => {
                    o.warmup = num(&value("--warmup")?)?;
                    warmup_set = true;
                }
                "--concurrency" => o.concurrency = num::<usize>(&value("--concurrency")?)?.max(1),
                "--onion-concurrency" => {
                    o.onion_concurrency = Some(num::<usize>(&value("--onion-concurrency")?)?.max(1));
                }
                "--nodes" => o.nodes = num::<usize>(&value("--nodes")?)?.max(1),
                "--swarm-size" => o.swarm_size = num::<usize>(&value("--swarm-size")?)?.max(1),
                "--enc-type" => {
                    o.enc_type = EncType::parse(&value("--enc-type")?).map_err(|e| e.to_string())?;
                }
                "--onion-method" => {
                    o.onion_method = value("--onion-method")?;
                    if !matches!(o.onion_method.as_str(), "info" | "retrieve") {
                        return Err("--onion-method is info or retrieve".into());
                    }
                }
                "--only" => o.only = value("--only")?.split(',').map(str::to_owned).collect(),
                "--client-threads" => o.client_threads = num::<usize>(&value("--client-threads")?)?.max(1),
                "--node-threads" => o.node_threads = num::<usize>(&value("--node-threads")?)?,
                "--node-bin" => o.node_bin = Some(PathBuf::from(value("--node-bin")?)),
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
            }
        }
        if o.quick {
            if !seconds_set {
                o.seconds = 3.0;
            }
            if !warmup_set {
                o.warmup = 0.5;
            }
        }
        if o.wants("onion") && o.nodes < 4 {
            return Err("onion runs need --nodes 4 or more (guard, middle, exit, destination)".into());
        }
        Ok(o)
    }

    fn wants(&self, what: &str) -> bool {
        self.only.iter().any(|w| w == what)
    }
}

fn num<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

fn main() {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(options)) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// One measured run.
#[derive(Debug, Default)]
struct RunResult {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    latencies_us: Vec<u32>,
    generator_cpu: f64,
    nodes_cpu: f64,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// A request to send: URL and body, plus a check of the reply.
type Job = Box<dyn FnMut(u64) -> (usize, Vec<u8>) + Send>;

async fn run(o: Options) -> Result<(), String> {
    let binary = node_binary(&o)?;
    let swarm_count = o.nodes.div_ceil(o.swarm_size);
    let swarm_ids: Vec<u64> =
        (0..swarm_count as u64).map(|i| i * (u64::MAX / swarm_count as u64) + 1).collect();
    let swarms: Vec<u64> = (0..o.nodes).map(|i| swarm_ids[i / o.swarm_size]).collect();
    let mut spec = ClusterSpec::new(&swarms).args(["--rate", "0"]);
    if o.node_threads > 0 {
        spec = spec.args(["--threads".to_owned(), o.node_threads.to_string()]);
    }
    spec.binary = binary.clone();
    spec.log_filter = "warn".into();
    let started = Instant::now();
    let cluster = Arc::new(Cluster::start(&spec)?);
    let list = cluster.node_list();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());

    println!("session-node load generator");
    println!(
        "  {} nodes ({} swarm{} of {}), node binary {}",
        o.nodes,
        swarm_count,
        if swarm_count == 1 { "" } else { "s" },
        o.swarm_size,
        binary.display()
    );
    println!(
        "  concurrency {}, {} s per run after {} s warm-up, generator on {} tokio threads, nodes on {}, \
         {} CPUs visible; nodes started in {:.2} s",
        o.concurrency,
        o.seconds,
        o.warmup,
        o.client_threads,
        match o.node_threads {
            0 => "one per CPU".to_owned(),
            n => n.to_string(),
        },
        cpus,
        started.elapsed().as_secs_f64()
    );
    if cfg!(debug_assertions) {
        println!("  WARNING: this generator is a debug build; run it with `cargo bench`");
    }
    println!();

    let http = Http::new(Duration::from_secs(35));
    let node_pids: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.pid()).collect();
    let mut onion_rate = None;

    if o.wants("store") {
        // Accounts per node, each served by that node's swarm.
        let per_node: Vec<Vec<Account>> = cluster
            .nodes
            .iter()
            .map(|n| (0..64).map(|_| Account::in_swarm(&list, n.record.swarm_id)).collect())
            .collect();
        let urls: Vec<String> = cluster.nodes.iter().map(|n| n.rpc_url()).collect();
        let per_node = Arc::new(per_node);
        let result = measure(&o, &http, &urls, &node_pids, 200, move |worker| {
            let per_node = per_node.clone();
            let node = worker % per_node.len();
            let mut counter = 0u64;
            Box::new(move |_| {
                counter += 1;
                let accounts = &per_node[node];
                let account = &accounts[counter as usize % accounts.len()];
                // 100 bytes of unique data per request.
                let mut data = [0u8; 100];
                data[..8].copy_from_slice(&counter.to_le_bytes());
                data[8..16].copy_from_slice(&(worker as u64).to_le_bytes());
                data[16..24].copy_from_slice(&now_ms().to_le_bytes());
                rand::rng().fill_bytes(&mut data[24..32]);
                let body = format!(
                    r#"{{"method":"store","params":{{"pubkey":"{}","timestamp":{},"ttl":3600000,"data":"{}"}}}}"#,
                    account.pubkey_hex,
                    now_ms(),
                    B64.encode(data)
                );
                (node, body.into_bytes())
            })
        })
        .await;
        report("store (ns 0, public inbox)", &result, Some(GOAL_STORE), None);
    }

    if o.wants("retrieve") {
        // 32 accounts per node with 5 messages each, stored before the run.
        let mut per_node: Vec<Vec<Account>> = Vec::new();
        for node in &cluster.nodes {
            let accounts: Vec<Account> =
                (0..32).map(|_| Account::in_swarm(&list, node.record.swarm_id)).collect();
            for account in &accounts {
                for i in 0..5u8 {
                    let data = [i; 100];
                    let reply = http.rpc(node, "store", &account.store(0, &data, 3_600_000, now_ms())).await;
                    if reply.status != 200 {
                        return Err(format!("seeding retrieve accounts: {} {}", reply.status, reply.text()));
                    }
                }
            }
            per_node.push(accounts);
        }
        let urls: Vec<String> = cluster.nodes.iter().map(|n| n.rpc_url()).collect();
        let per_node = Arc::new(per_node);
        let result = measure(&o, &http, &urls, &node_pids, 200, move |worker| {
            let per_node = per_node.clone();
            let node = worker % per_node.len();
            let mut counter = 0u64;
            // Signed bodies are reused for 20 s (the node accepts ±60 s), as a polling client
            // would sign once per poll; this keeps the generator's Ed25519 signing off the clock.
            let mut cache: Vec<(Instant, Vec<u8>)> = Vec::new();
            Box::new(move |_| {
                counter += 1;
                let accounts = &per_node[node];
                let i = counter as usize % accounts.len();
                if cache.len() < accounts.len() {
                    cache = accounts.iter().map(|a| (Instant::now(), signed_retrieve(a))).collect();
                }
                if cache[i].0.elapsed() > Duration::from_secs(20) {
                    cache[i] = (Instant::now(), signed_retrieve(&accounts[i]));
                }
                (node, cache[i].1.clone())
            })
        })
        .await;
        report("retrieve (signed, 5 messages)", &result, Some(GOAL_RETRIEVE), None);
    }

    if o.wants("onion") {
        let result = measure_onion(&o, &http, &cluster, &node_pids).await;
        report(
            &format!(
                "onion 3 hops → {} ({}, c={})",
                o.onion_method,
                o.enc_type,
                o.onion_concurrency.unwrap_or(o.concurrency)
            ),
            &result,
            Some(GOAL_ONION),
            Some(GOAL_ONION_P50_MS),
        );
        onion_rate = Some(result.rate());
    }

    if o.wants("crypto") {
        let seconds = if o.quick { 0.5 } else { 2.0 };
        let floor =
            tokio::task::spawn_blocking(move || crypto_floor(seconds)).await.map_err(|e| e.to_string())?;
        println!();
        println!("crypto floor on one core (session_protocol primitives):");
        println!(
            "  X25519 shared secret                {:>10.0} /s  ({:.1} µs)",
            floor.x25519,
            1e6 / floor.x25519
        );
        println!(
            "  XChaCha20-Poly1305 open, 1 KiB      {:>10.0} /s  ({:.1} µs)",
            floor.aead,
            1e6 / floor.aead
        );
        println!(
            "  Ed25519 verify                      {:>10.0} /s  ({:.1} µs)",
            floor.verify,
            1e6 / floor.verify
        );
        println!(
            "  one of each (X25519 + AEAD + verify){:>10.0} /s  ({:.1} µs)",
            floor.combined,
            1e6 / floor.combined
        );
        if let Some(rate) = onion_rate {
            println!(
                "  onion 3-hop req/s ÷ floor = {:.0} / {:.0} = {:.3}  (each request costs 4 X25519 + 4 AEAD \
                 on the nodes, 4 + 4 more in the generator)",
                rate,
                floor.combined,
                rate / floor.combined
            );
        }
    }

    for node in &cluster.nodes {
        let mut alive = true;
        if let Some(pid) = node.pid() {
            alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        }
        if !alive {
            println!("node {} exited during the run:\n{}", node.index, node.logs());
        }
    }
    Ok(())
}

fn signed_retrieve(account: &Account) -> Vec<u8> {
    let ts = now_ms();
    let sig = SignableRequest::Retrieve { namespace: Namespace(0), timestamp: ts }.sign(&account.key);
    format!(
        r#"{{"method":"retrieve","params":{{"pubkey":"{}","pubkey_ed25519":"{}","timestamp":{},"signature":"{}"}}}}"#,
        account.pubkey_hex,
        account.ed25519_hex(),
        ts,
        B64.encode(sig)
    )
    .into_bytes()
}

/// Runs `concurrency` workers, each sending the requests its job makes to `urls[node]`, for the
/// warm-up and then the measured time; a reply counts as success when its status is `expect`.
async fn measure<F>(
    o: &Options,
    http: &Http,
    urls: &[String],
    node_pids: &[u32],
    expect: u16,
    make_job: F,
) -> RunResult
where
    F: Fn(usize) -> Job,
{
    let urls: Arc<Vec<reqwest::Url>> =
        Arc::new(urls.iter().map(|u| reqwest::Url::parse(u).expect("node URL")).collect());
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..o.concurrency {
        let mut job = make_job(worker);
        let (http, urls, measuring, stop) = (http.clone(), urls.clone(), measuring.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut out = RunResult::default();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (node, body) = job(n);
                let t = Instant::now();
                let reply = http.post(urls[node].clone(), body).await;
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match reply {
                    Ok(r) if r.status == expect => {
                        out.ok += 1;
                        out.latencies_us.push(us);
                    }
                    Ok(r) => {
                        out.errors += 1;
                        out.first_error
                            .get_or_insert_with(|| format!("{} {}", r.status, truncate(&r.text())));
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            out
        }));
    }
    finish(o, workers, measuring, stop, node_pids).await
}

/// Waits out the warm-up, measures, stops the workers and merges their results.
async fn finish(
    o: &Options,
    workers: Vec<tokio::task::JoinHandle<RunResult>>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    node_pids: &[u32],
) -> RunResult {
    tokio::time::sleep(Duration::from_secs_f64(o.warmup)).await;
    let cpu_self = cpu_seconds("self");
    let cpu_nodes: f64 = node_pids.iter().map(|p| cpu_seconds(&p.to_string())).sum();
    let t0 = Instant::now();
    measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs_f64(o.seconds)).await;
    measuring.store(false, Ordering::SeqCst);
    let seconds = t0.elapsed().as_secs_f64();
    let generator_cpu = cpu_seconds("self") - cpu_self;
    let nodes_cpu = node_pids.iter().map(|p| cpu_seconds(&p.to_string())).sum::<f64>() - cpu_nodes;
    stop.store(true, Ordering::SeqCst);
    let mut total = RunResult { seconds, generator_cpu, nodes_cpu, ..RunResult::default() };
    for w in workers {
        if let Ok(r) = w.await {
            total.ok += r.ok;
            total.errors += r.errors;
            if total.first_error.is_none() {
                total.first_error = r.first_error;
            }
            total.latencies_us.extend(r.latencies_us);
        }
    }
    total.latencies_us.sort_unstable();
    total
}

/// Onion requests: a fresh random path of 3 nodes (guard, middle, exit) and a 4th node as the
/// destination for every request, each layer built with fresh ephemeral keys; the reply must
/// decrypt to status 200.
async fn measure_onion(o: &Options, http: &Http, cluster: &Arc<Cluster>, node_pids: &[u32]) -> RunResult {
    let keys: Arc<Vec<NodeKeys>> = Arc::new(cluster.nodes.iter().map(|n| n.onion_keys()).collect());
    let urls: Arc<Vec<reqwest::Url>> = Arc::new(
        cluster.nodes.iter().map(|n| reqwest::Url::parse(&n.onion_url()).expect("node URL")).collect(),
    );
    let list = cluster.node_list();
    // For retrieve: one account per destination node, with a message, signed bodies refreshed.
    let mut accounts = Vec::new();
    if o.onion_method == "retrieve" {
        for node in &cluster.nodes {
            let account = Account::in_swarm(&list, node.record.swarm_id);
            let _ = http.rpc(node, "store", &account.store(0, &[7u8; 100], 3_600_000, now_ms())).await;
            accounts.push(account);
        }
    }
    let accounts = Arc::new(accounts);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..o.onion_concurrency.unwrap_or(o.concurrency) {
        let (http, keys, urls, accounts) = (http.clone(), keys.clone(), urls.clone(), accounts.clone());
        let (measuring, stop, enc_type) = (measuring.clone(), stop.clone(), o.enc_type);
        let info_body = br#"{"method":"info","params":{}}"#.to_vec();
        workers.push(tokio::spawn(async move {
            let mut out = RunResult::default();
            let mut bodies: Vec<(Instant, Vec<u8>)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = keys.len();
                let mut order: Vec<usize> = (0..n).collect();
                {
                    let mut rng = rand::rng();
                    for i in 0..4 {
                        let j = i + (rng.next_u32() as usize) % (n - i);
                        order.swap(i, j);
                    }
                }
                let (path, dest) = ([keys[order[0]], keys[order[1]], keys[order[2]]], order[3]);
                let body = if accounts.is_empty() {
                    info_body.clone()
                } else {
                    if bodies.len() < accounts.len() {
                        bodies = accounts.iter().map(|a| (Instant::now(), signed_retrieve(a))).collect();
                    }
                    if bodies[dest].0.elapsed() > Duration::from_secs(20) {
                        bodies[dest] = (Instant::now(), signed_retrieve(&accounts[dest]));
                    }
                    bodies[dest].1.clone()
                };
                let t = Instant::now();
                let spec = RequestSpec {
                    enc_type,
                    path: &path,
                    destination: Destination::Snode {
                        node: keys[dest],
                        body: &body,
                        options: FinalOptions::default(),
                    },
                    hop_no: None,
                };
                let request = match build_request_random(&spec, &mut rand::rng()) {
                    Ok(r) => r,
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                        continue;
                    }
                };
                let reply = http.post(urls[order[0]].clone(), request.body).await;
                let outcome = match reply {
                    Ok(r) if r.status == 200 => match request.response.decrypt_body(&r.body) {
                        Ok(plain) => match serde_json::from_slice::<serde_json::Value>(&plain) {
                            Ok(v) if v["status"] == 200 => Ok(()),
                            Ok(v) => Err(format!("inner status {}", truncate(&v.to_string()))),
                            Err(_) => Err("inner reply is not JSON".into()),
                        },
                        Err(e) => Err(e.to_string()),
                    },
                    Ok(r) => Err(format!("{} {}", r.status, truncate(&r.text()))),
                    Err(e) => Err(e.to_string()),
                };
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        out.ok += 1;
                        out.latencies_us.push(us);
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        }));
    }
    finish(o, workers, measuring, stop, node_pids).await
}

fn report(name: &str, r: &RunResult, goal_rate: Option<f64>, goal_p50_ms: Option<f64>) {
    let rate = r.rate();
    let p50 = r.percentile_ms(0.50);
    let p99 = r.percentile_ms(0.99);
    let mut verdict = Vec::new();
    if let Some(goal) = goal_rate {
        verdict.push(format!("goal ≥ {goal:.0}/s {}", if rate >= goal { "met" } else { "NOT met" }));
    }
    if let Some(goal) = goal_p50_ms {
        verdict.push(format!("p50 < {goal} ms {}", if p50 < goal { "met" } else { "NOT met" }));
    }
    println!(
        "{name:<34} {rate:>9.0} req/s   p50 {p50:>6.2} ms   p99 {p99:>7.2} ms   errors {:<5}  [{}]",
        r.errors,
        verdict.join(", ")
    );
    println!(
        "{:<34} CPU during the run: nodes {:.2} cores, generator {:.2} cores ({} requests)",
        "",
        r.nodes_cpu / r.seconds,
        r.generator_cpu / r.seconds,
        r.ok
    );
    if let Some(e) = &r.first_error {
        println!("{:<34} first error: {e}", "");
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(160).collect()
}

/// User + system CPU seconds of a process (`self` or a pid), from `/proc/<pid>/stat`; 0 when
/// unavailable. Assumes the usual 100 clock ticks per second.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // The command name (field 2) is in parentheses and may contain spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / 100.0
}

#[derive(Debug)]
struct Floor {
    x25519: f64,
    aead: f64,
    verify: f64,
    combined: f64,
}

/// Operations per second on this thread for `seconds` each.
fn crypto_floor(seconds: f64) -> Floor {
    let mut rng = rand::rng();
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let mut peer_secret = [0u8; 32];
    rng.fill_bytes(&mut peer_secret);
    let peer = x25519_base(&peer_secret);
    let x = rate(seconds, || {
        std::hint::black_box(x25519(std::hint::black_box(&secret), &peer).expect("valid key"));
    });

    let key = HopKey::from_bytes(EncType::XChaCha20, [7u8; 32]);
    let mut body = vec![0u8; 1024];
    rng.fill_bytes(&mut body);
    let sealed = key.encrypt_with_nonce(&[9u8; 24], &body);
    let aead = rate(seconds, || {
        std::hint::black_box(key.decrypt(std::hint::black_box(&sealed)).expect("authentic"));
    });

    let signer = Account::random();
    let message = vec![5u8; 120];
    let signature = signer.key.sign(&message);
    let public = signer.key.ed25519_public();
    let verify = rate(seconds, || {
        assert!(verify_ed25519(std::hint::black_box(&public), &message, &signature));
    });
    let combined = rate(seconds, || {
        std::hint::black_box(x25519(&secret, &peer).expect("valid key"));
        std::hint::black_box(key.decrypt(&sealed).expect("authentic"));
        assert!(verify_ed25519(&public, &message, &signature));
    });
    Floor { x25519: x, aead, verify, combined }
}

fn rate(seconds: f64, mut op: impl FnMut()) -> f64 {
    for _ in 0..50 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..64 {
            op();
        }
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The node binary: `--node-bin`, else the one Cargo built for this bench (same profile), else
/// `session-node` next to this executable's directory (`target/<profile>/deps/..`).
fn node_binary(o: &Options) -> Result<PathBuf, String> {
    if let Some(p) = &o.node_bin {
        return Ok(p.clone());
    }
    let built = support::node_binary();
    if built.exists() {
        return Ok(built);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let beside = exe.parent().and_then(|d| d.parent()).map(|d| d.join("session-node"));
    match beside {
        Some(p) if p.exists() => Ok(p),
        _ => Err("session-node binary not found; pass --node-bin".into()),
    }
}
