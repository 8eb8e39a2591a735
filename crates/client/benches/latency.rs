//! Message latency and throughput on a real devnet (registry and nodes as processes on loopback),
//! between two `Client`s (SQLCipher databases, onion paths), as an application would see them.
//!
//! ```text
//! cargo bench -p session-client --bench latency [-- OPTIONS]
//!   --nodes N            devnet size (default 12)
//!   --messages N         messages per latency run (default 200)
//!   --poll-ms A,B        recipient poll intervals, one latency run each (default 250,1000)
//!   --throughput N       messages per throughput run (default 200)
//!   --concurrency A,B    concurrent send_text tasks, one throughput run each (default 1)
//! ```
//!
//! * **End to end**: from the start of `send_text` until the recipient's client has the message
//!   stored (its `Event::Message`). The recipient polls every `--poll-ms` (its `spawn_poller`);
//!   each message is sent alone, after a random pause of 0..poll-ms so that sends fall at random
//!   phases of the poll cycle.
//! * **Send**: from the start of `send_text` until the message is `Sent` (stored in the
//!   recipient's swarm: `Event::DeliveryState`), and until `send_text` returns (it also stores
//!   the sync copy in the sender's own swarm).
//! * **Throughput**: K tasks share one sender and call `send_text` back to back until N messages
//!   are sent; messages per second over the whole run, and the recipient (polling every 250 ms)
//!   counts that every one arrived.
//!
//! Every wait is bounded; the devnet is stopped at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt as _;
use session_client::client::Event;
use session_client::db::{Direction, KeySource, MessageState};
use session_client::{Client, NetworkConfig};
use session_devnet::{Binaries, Devnet, DevnetOptions, Timing};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Bound of one message's delivery.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound of a whole throughput run's delivery.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Command line.
#[derive(Debug)]
struct Options {
    nodes: usize,
    messages: usize,
    poll_ms: Vec<u64>,
    throughput: usize,
    concurrency: Vec<usize>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut o = Self {
            nodes: 12,
            messages: 200,
            poll_ms: vec![250, 1000],
            throughput: 200,
            concurrency: vec![1],
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            // `cargo bench` passes `--bench` to harness-less benches.
            if arg == "--bench" {
                continue;
            }
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{arg} {s}: {e}"));
            let list = |s: String| s.split(',').map(number).collect::<Result<Vec<u64>, String>>();
            match arg.as_str() {
                "--nodes" => o.nodes = number(&value()?)? as usize,
                "--messages" => o.messages = number(&value()?)? as usize,
                "--poll-ms" => o.poll_ms = list(value()?)?,
                "--throughput" => o.throughput = number(&value()?)? as usize,
                "--concurrency" => o.concurrency = list(value()?)?.into_iter().map(|k| k as usize).collect(),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.nodes < 5 || o.messages == 0 || o.poll_ms.contains(&0) || o.concurrency.contains(&0) {
            return Err("--nodes ≥ 5; --messages, --poll-ms and --concurrency > 0".into());
        }
        Ok(o)
    }
}

fn main() {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("latency: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(bench(options)) {
        eprintln!("latency: {e}");
        std::process::exit(1);
    }
}

/// The load average (1, 5, 15 min) from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

type BoxError = Box<dyn std::error::Error>;

/// A client on the devnet.
async fn account(
    dir: &std::path::Path,
    devnet: &Devnet,
    nodes: usize,
    name: &str,
) -> Result<Client, BoxError> {
    let mut config = NetworkConfig::new([devnet.registry_url()?]);
    config.min_pool_size = nodes.min(session_client::net::DEFAULT_MIN_POOL_SIZE);
    config.request_timeout = Duration::from_secs(20);
    let (client, _phrase) = Client::create(dir, KeySource::KeyFile, config, Some(name)).await?;
    Ok(client)
}

/// Waits for the recipient's `Event::Message` with this body; returns when it came.
async fn arrival(events: &mut broadcast::Receiver<Event>, body: &str) -> Result<Instant, BoxError> {
    let deadline = tokio::time::Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                return Err(format!("message {body:?} did not arrive within {ARRIVAL_TIMEOUT:?}").into());
            }
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                return Err(format!("events lagged by {n}").into());
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return Err("event channel closed".into()),
            Ok(Ok(Event::Message { message, .. }))
                if message.direction == Direction::Incoming && message.body.as_deref() == Some(body) =>
            {
                return Ok(Instant::now());
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// Records, as they happen, when the sender's messages become `Sent` (their
/// `Event::DeliveryState`), by message id. The task ends with the sender's event channel or
/// when aborted.
fn record_sent(
    mut events: broadcast::Receiver<Event>,
) -> (Arc<Mutex<HashMap<i64, Instant>>>, JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let record = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(Event::DeliveryState { message, state: MessageState::Sent, .. }) => {
                    let at = Instant::now();
                    record
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(message.0)
                        .or_insert(at);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    (seen, task)
}

async fn bench(o: Options) -> Result<(), BoxError> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} cores, load average {} (1/5/15 min) at start", load_average());
    let dir = tempfile::tempdir()?;
    let mut options = DevnetOptions::new(dir.path().join("devnet"), o.nodes);
    options.binaries = Some(Binaries::build_for_tests()?);
    options.timing = Timing { heartbeat_secs: 1, ..Timing::default() };
    options.log_filter = "warn".into();
    options.stop_grace = Duration::from_secs(5);
    let started = Instant::now();
    let devnet = Devnet::up(options).await?;
    println!(
        "devnet: {} nodes in {} swarms, ready in {:.1} s (node logs at warn)",
        o.nodes,
        devnet.swarms()?.len(),
        started.elapsed().as_secs_f64()
    );
    let result = measure(&o, dir.path(), &devnet).await;
    devnet.down().await?;
    println!("load average {} at the end", load_average());
    result
}

async fn measure(o: &Options, dir: &std::path::Path, devnet: &Devnet) -> Result<(), BoxError> {
    let alice = account(&dir.join("alice"), devnet, o.nodes, "Alice").await?;
    let bob = account(&dir.join("bob"), devnet, o.nodes, "Bob").await?;
    let (a, b) = (alice.session_id(), bob.session_id());

    // Warm up: Bob accepts Alice's request; both have paths and swarms in their pools.
    let mut bob_events = bob.subscribe();
    {
        let _poller = bob.spawn_poller(Duration::from_millis(250));
        alice.send_text(&b, "warm-up").await?;
        arrival(&mut bob_events, "warm-up").await?;
        bob.accept_request(&a).await?;
        for i in 0..5 {
            let body = format!("warm-up {i}");
            alice.send_text(&b, &body).await?;
            arrival(&mut bob_events, &body).await?;
        }
    }

    println!();
    println!("end to end: send_text start → stored by the recipient, {} messages one at a time", o.messages);
    println!(
        "{:>10} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} || {:>13} | {:>13} || {:>15} | {:>15}",
        "poll (ms)",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "mean ms",
        "sent p50 ms",
        "sent p99 ms",
        "returns p50 ms",
        "returns p99 ms"
    );
    for &poll_ms in &o.poll_ms {
        let poll = Duration::from_millis(poll_ms);
        let _poller = bob.spawn_poller(poll);
        let (sent_seen, recorder) = record_sent(alice.subscribe());
        let (mut e2e, mut sent, mut returned) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..o.messages {
            let pause = rand::rng().random_range(0..poll_ms);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let body = format!("latency {poll_ms} {i}");
            let start = Instant::now();
            let id = alice.send_text(&b, &body).await?;
            let returned_at = Instant::now();
            let arrived = arrival(&mut bob_events, &body).await?;
            e2e.push(arrived - start);
            returned.push(returned_at - start);
            let sent_at =
                sent_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id.0).copied();
            if let Some(at) = sent_at {
                sent.push(at - start);
            }
        }
        recorder.abort();
        for v in [&mut e2e, &mut sent, &mut returned] {
            v.sort();
        }
        let mean = e2e.iter().sum::<Duration>() / e2e.len().max(1) as u32;
        println!(
            "{:>10} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} || {:>13} | {:>13} || {:>15} | {:>15}",
            poll_ms,
            ms(percentile(&e2e, 50.0)),
            ms(percentile(&e2e, 90.0)),
            ms(percentile(&e2e, 99.0)),
            ms(percentile(&e2e, 100.0)),
            ms(mean),
            ms(percentile(&sent, 50.0)),
            ms(percentile(&sent, 99.0)),
            ms(percentile(&returned, 50.0)),
            ms(percentile(&returned, 99.0)),
        );
    }

    println!();
    println!(
        "throughput: one sender, K concurrent send_text tasks, {} messages; recipient polls every 250 ms",
        o.throughput
    );
    println!(
        "{:>3} | {:>10} | {:>8} | {:>12} | {:>8} | {:>22}",
        "K", "messages", "send s", "sent msg/s", "arrived", "all stored by Bob, s"
    );
    for (run, &k) in o.concurrency.iter().enumerate() {
        let _poller = bob.spawn_poller(Duration::from_millis(250));
        let prefix = format!("throughput {run} ");
        let total = o.throughput;
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..k {
            let (alice, next, prefix) = (alice.clone(), Arc::clone(&next), prefix.clone());
            tasks.spawn(async move {
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return failed;
                    }
                    if alice.send_text(&b, &format!("{prefix}{i}")).await.is_err() {
                        failed += 1;
                    }
                }
            });
        }
        let mut failed = 0;
        while let Some(joined) = tasks.join_next().await {
            failed += joined?;
        }
        let send_time = start.elapsed();
        // Bob counts the run's messages in his database (every 50 ms) until all are there.
        let deadline = Instant::now() + RUN_TIMEOUT;
        let (stored, all_at) = loop {
            let stored = bob
                .messages(&a, u32::MAX)
                .await?
                .iter()
                .filter(|m| m.body.as_deref().is_some_and(|t| t.starts_with(&prefix)))
                .count();
            if stored >= total {
                break (stored, Some(Instant::now()));
            }
            if Instant::now() >= deadline {
                break (stored, None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "{:>3} | {:>10} | {:>8.2} | {:>12.1} | {:>8} | {:>22}",
            k,
            total,
            send_time.as_secs_f64(),
            (total - failed) as f64 / send_time.as_secs_f64(),
            format!("{stored}/{total}"),
            all_at.map_or("-".into(), |t| format!("{:.2}", (t - start).as_secs_f64())),
        );
        if failed > 0 || stored != total {
            return Err(
                format!("throughput run K={k}: {failed} sends failed, {stored} of {total} stored").into()
            );
        }
    }
    Ok(())
}
