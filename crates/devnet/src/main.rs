//! `session-devnet`: a whole Session network (registry and nodes) as local processes.
//! `up` supervises it until Ctrl-C; `status`, `node stop|start|add` and `down` act on it from
//! other shells; `demo` is a guided tour (a network, two accounts, a conversation). See
//! `crates/devnet/README.md`.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::json;
use session_devnet::{
    Binaries, Devnet, DevnetError, DevnetOptions, NO_SWARM, Progress, Timing, net, process, state,
};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "session-devnet", version, about = "A whole Session network on this machine")]
struct Cli {
    /// The devnet directory (state file `devnet.json`, data and logs) [default: $SESSION_DEVNET_DIR,
    /// or `devnet`].
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The `session-registry` binary [default: $SESSION_REGISTRY_BIN, or the one built into this executable].
    #[arg(long, global = true, value_name = "PATH")]
    registry_bin: Option<PathBuf>,
    /// The `session-node` binary [default: $SESSION_NODE_BIN, or the one built into this executable].
    #[arg(long, global = true, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the registry and the nodes, wait until every node is in a swarm, print a summary,
    /// and run until Ctrl-C / SIGTERM. On an existing DIR, brings the same network back.
    Up(UpArgs),
    /// Show the registry and every node: process, reachability, registry state, swarm.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop, start or add a node of the running devnet.
    Node {
        #[command(subcommand)]
        action: NodeAction,
    },
    /// Stop the devnet (its `up` process, or its processes directly if that is gone).
    Down,
    /// A guided tour: starts a network (in a temporary directory unless --dir), creates two
    /// accounts, Alice and Bob, and walks through a conversation step by step; then stops
    /// everything (unless --keep).
    Demo(demo::DemoArgs),
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Number of nodes (an existing devnet keeps its nodes and grows to this number).
    #[arg(long, default_value_t = 12)]
    nodes: usize,
    /// Nodes serve HTTPS with self-signed certificates (new devnets only).
    #[arg(long)]
    tls: bool,
    /// Every node on 127.0.0.1 instead of its own 127.0.0.N (new devnets only).
    #[arg(long)]
    single_ip: bool,
    /// Node heartbeat and registry re-test interval, whole seconds (new devnets only).
    #[arg(long, value_name = "SECONDS", default_value_t = Timing::default().heartbeat_secs)]
    heartbeat: u64,
    /// The registry decommissions a node silent this long, seconds (new devnets only).
    #[arg(long, value_name = "SECONDS", default_value_t = Timing::default().decommission_after_secs)]
    decommission_after: f64,
    /// How long to wait for every node to be in a swarm, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    ready_timeout: u64,
    /// `RUST_LOG` for the registry and the nodes (their logs are in DIR) [default:
    /// $SESSION_DEVNET_LOG, or `info`].
    #[arg(long, value_name = "FILTER")]
    log_filter: Option<String>,
}

#[derive(Debug, Subcommand)]
enum NodeAction {
    /// Stop node K (SIGTERM, then SIGKILL after 10 s).
    Stop {
        /// The node's index in devnet.json.
        k: usize,
    },
    /// Start node K again.
    Start {
        /// The node's index in devnet.json.
        k: usize,
        /// Wait until it is back in a swarm.
        #[arg(long)]
        wait: bool,
    },
    /// Add a node to the running devnet.
    Add {
        /// Wait until it is in a swarm.
        #[arg(long)]
        wait: bool,
    },
}

fn main() -> ExitCode {
    // One executable, three programs: started through the `DIR/bin/session-node` or
    // `DIR/bin/session-registry` link (see `Binaries::embedded`), this is that program.
    let invoked_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match invoked_as.as_deref() {
        Some(session_devnet::EMBEDDED_NODE) => return session_node::run_cli(),
        Some(session_devnet::EMBEDDED_REGISTRY) => return session_registry::run_cli(),
        _ => {}
    }
    let mut cli = Cli::parse();
    // The demo uses a temporary directory unless --dir names one.
    let explicit_dir = cli.dir.clone();
    cli.dir = Some(cli.dir.take().unwrap_or_else(|| {
        std::env::var_os("SESSION_DEVNET_DIR").map_or_else(|| PathBuf::from("devnet"), PathBuf::from)
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("session-devnet: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, explicit_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session-devnet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The devnet directory (set in `main`).
fn dir(cli: &Cli) -> &std::path::Path {
    cli.dir.as_deref().unwrap_or(std::path::Path::new("devnet"))
}

/// The programs to run: `--registry-bin` / `--node-bin`, else `$SESSION_REGISTRY_BIN` /
/// `$SESSION_NODE_BIN`, else the node and registry built into this executable (so that
/// `cargo run -p session-devnet -- up` runs the code it was built from).
fn binaries(cli: &Cli) -> Result<Option<Binaries>, DevnetError> {
    binaries_in(cli, dir(cli))
}

/// [`binaries`] for a devnet in `dir` (where the links to this executable go).
fn binaries_in(cli: &Cli, dir: &std::path::Path) -> Result<Option<Binaries>, DevnetError> {
    if cli.registry_bin.is_none() && cli.node_bin.is_none() {
        let env_set = std::env::var_os(session_devnet::REGISTRY_BIN_ENV).is_some()
            || std::env::var_os(session_devnet::NODE_BIN_ENV).is_some();
        return if env_set { Binaries::locate().map(Some) } else { Binaries::embedded(dir).map(Some) };
    }
    let located =
        if cli.registry_bin.is_some() && cli.node_bin.is_some() { None } else { Some(Binaries::locate()?) };
    Ok(Some(Binaries {
        registry: cli
            .registry_bin
            .clone()
            .or_else(|| located.as_ref().map(|b| b.registry.clone()))
            .unwrap_or_default(),
        node: cli.node_bin.clone().or_else(|| located.as_ref().map(|b| b.node.clone())).unwrap_or_default(),
    }))
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// A devnet command.
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    /// The demo.
    #[error("demo failed: {0}")]
    Demo(#[from] demo::DemoError),
}

/// Runs the command; `explicit_dir`: `--dir` as given (the demo's default is a temporary one).
async fn run(cli: Cli, explicit_dir: Option<PathBuf>) -> Result<(), RunError> {
    match &cli.command {
        Command::Up(args) => Ok(up(&cli, args, binaries(&cli)?).await?),
        Command::Status { json } => Ok(status(&cli, *json).await?),
        Command::Node { action } => {
            let mut devnet = Devnet::attach(dir(&cli), binaries(&cli)?)?;
            match action {
                NodeAction::Stop { k } => {
                    devnet.stop_node(*k).await?;
                }
                NodeAction::Start { k, wait } => {
                    devnet.start_node(*k).await?;
                    if *wait {
                        devnet.wait_until_ready(Duration::from_secs(180)).await?;
                        println!("node {k} is in a swarm");
                    }
                }
                NodeAction::Add { wait } => {
                    let k = devnet.add_node().await?;
                    if *wait {
                        devnet.wait_until_ready(Duration::from_secs(180)).await?;
                        let node = devnet.node(k)?;
                        println!("node {k} is in swarm {:016x}", node.swarm_id);
                    }
                }
            }
            Ok(())
        }
        Command::Down => Ok(down(&cli).await?),
        Command::Demo(args) => Ok(demo::run(args, explicit_dir, |dir| binaries_in(&cli, dir)).await?),
    }
}

async fn up(cli: &Cli, args: &UpArgs, bins: Option<Binaries>) -> Result<(), DevnetError> {
    use tokio::signal::unix::{SignalKind, signal};
    let sig_err = |source| DevnetError::Io { what: "installing signal handlers".into(), source };
    let mut term = signal(SignalKind::terminate()).map_err(sig_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(sig_err)?;

    let mut options = DevnetOptions::new(dir(cli), args.nodes);
    options.tls = args.tls;
    options.single_ip = args.single_ip;
    options.timing = Timing {
        heartbeat_secs: args.heartbeat.max(1),
        decommission_after_secs: args.decommission_after,
        ..Timing::default()
    };
    options.binaries = bins;
    if let Some(filter) = &args.log_filter {
        options.log_filter = filter.clone();
    }
    options.progress = Progress::Stdout;
    let ready_timeout = Duration::from_secs(args.ready_timeout);

    let started = Instant::now();
    let mut devnet = Devnet::create(options)?;
    let formed = tokio::select! {
        r = async {
            devnet.start_all().await?;
            devnet.wait_until_ready(ready_timeout).await
        } => Some(r),
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    match formed {
        None => {
            println!("interrupted; shutting down");
            return devnet.down().await;
        }
        Some(Ok(swarms)) => {
            println!(
                "devnet ready in {:.1} s: {} nodes in {} swarms",
                started.elapsed().as_secs_f64(),
                swarms.iter().map(|s| s.nodes.len()).sum::<usize>(),
                swarms.len()
            );
        }
        Some(Err(e @ DevnetError::NotReady { .. })) => {
            println!("warning: {e}; running anyway (see the logs in {})", dir(cli).display());
            let _ = devnet.refresh().await;
        }
        Some(Err(e)) => {
            println!("startup failed; shutting down");
            let _ = devnet.down().await;
            return Err(e);
        }
    }
    println!("{}", devnet.summary()?);
    println!("running; Ctrl-C (or `session-devnet down --dir {}`) stops it", dir(cli).display());

    let mut seen: std::collections::HashMap<usize, u64> =
        devnet.nodes()?.iter().map(|n| (n.index, n.swarm_id)).collect();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                match devnet.reap_exited() {
                    Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                    Err(e) => println!("warning: {e}"),
                }
                // Compared with what this process saw last (other commands refresh the file too).
                if devnet.refresh().await.is_ok() && let Ok(nodes) = devnet.nodes() {
                    for node in nodes {
                        let k = node.index;
                        let old = seen.insert(k, node.swarm_id).unwrap_or(NO_SWARM);
                        match (old, node.swarm_id) {
                            (o, s) if o == s => {}
                            (_, NO_SWARM) => println!("node {k} left its swarm"),
                            (NO_SWARM, s) => println!("node {k} joined swarm {s:016x}"),
                            (o, s) => println!("node {k} moved from swarm {o:016x} to {s:016x}"),
                        }
                    }
                }
            }
        }
    }
    println!("shutting down");
    devnet.down().await?;
    println!("devnet stopped; data kept in {}", dir(cli).display());
    Ok(())
}

/// `writeln!` into a `String`.
macro_rules! outln {
    ($buf:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($arg)*);
    }};
}

/// Writes `text` to stdout; a closed pipe (`status | head`) is not an error.
fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

async fn status(cli: &Cli, as_json: bool) -> Result<(), DevnetError> {
    let st = state::read(dir(cli))?;
    let mut text = String::new();
    let client = net::client(Duration::from_secs(3));
    let listing = net::registry_nodes(&client, &st.registry_url).await;
    let mut probes = tokio::task::JoinSet::new();
    for node in st.nodes.clone() {
        let client = client.clone();
        probes.spawn(async move { (node.index, net::node_info_status(&client, &node).await) });
    }
    // Per node: answered at all, and answered `info` with 200 (it is in a swarm).
    let mut reachable = vec![(false, false); st.nodes.len()];
    while let Some(Ok((k, status))) = probes.join_next().await {
        if let Some(slot) = reachable.get_mut(k) {
            *slot = (status.is_some(), status == Some(200));
        }
    }
    let registry_running = st.registry.process.is_some_and(process::is_alive);
    let supervisor = st.supervisor.filter(|p| process::is_alive(*p));
    let rows: Vec<serde_json::Value> = st
        .nodes
        .iter()
        .map(|n| {
            let listed = listing.as_ref().ok().and_then(|l| l.find(&n.pubkey_ed25519));
            let registry_state = match listed {
                Some(l) if l.active => "active",
                Some(_) => "decommissioned",
                None if listing.is_ok() => "not registered",
                None => "unknown",
            };
            json!({
                "index": n.index,
                "address": n.address.to_string(),
                "storage_port": n.storage_port,
                "url": n.url,
                "pubkey_ed25519": n.pubkey_ed25519,
                "pid": n.pid,
                "running": n.process().is_some_and(process::is_alive),
                "reachable": reachable.get(n.index).is_some_and(|r| r.0),
                "serving": reachable.get(n.index).is_some_and(|r| r.1),
                "registry_state": registry_state,
                "swarm_id": listed.map_or(NO_SWARM, |l| l.swarm_id),
            })
        })
        .collect();
    if as_json {
        let out = json!({
            "dir": dir(cli),
            "supervisor_pid": supervisor.map(|p| p.pid),
            "registry_url": st.registry_url,
            "registry_pubkey": st.registry.pubkey,
            "registry_running": registry_running,
            "registry_reachable": listing.is_ok(),
            "height": listing.as_ref().ok().map(|l| l.height),
            "nodes": rows,
        });
        outln!(text, "{}", serde_json::to_string_pretty(&out).expect("JSON values serialize"));
        emit(&text);
        return Ok(());
    }
    outln!(
        text,
        "devnet {}: {}",
        dir(cli).display(),
        supervisor.map_or("no `up` process".into(), |p| format!("up (pid {})", p.pid))
    );
    match &listing {
        Ok(l) => outln!(
            text,
            "registry {} (pid {}) epoch {} pubkey {}…",
            st.registry_url,
            st.registry.process.map_or("-".into(), |p| p.pid.to_string()),
            l.height,
            st.registry.pubkey.get(..16).unwrap_or("")
        ),
        Err(e) => outln!(text, "registry {} unreachable: {e}", st.registry_url),
    }
    outln!(
        text,
        "{:<5} {:<22} {:<8} {:<8} {:<10} {:<15} swarm",
        "node",
        "address",
        "pid",
        "process",
        "answers",
        "registry"
    );
    for row in &rows {
        let swarm = row["swarm_id"].as_u64().unwrap_or(NO_SWARM);
        outln!(
            text,
            "{:<5} {:<22} {:<8} {:<8} {:<10} {:<15} {}",
            row["index"].as_u64().unwrap_or(0),
            format!("{}:{}", row["address"].as_str().unwrap_or(""), row["storage_port"]),
            row["pid"].as_u64().map_or("-".into(), |p| p.to_string()),
            if row["running"] == true { "running" } else { "stopped" },
            match (row["reachable"] == true, row["serving"] == true) {
                (_, true) => "ready",
                (true, false) => "503",
                _ => "no",
            },
            row["registry_state"].as_str().unwrap_or(""),
            if swarm == NO_SWARM { "-".into() } else { format!("{swarm:016x}") }
        );
    }
    emit(&text);
    Ok(())
}

async fn down(cli: &Cli) -> Result<(), DevnetError> {
    let st = state::read(dir(cli))?;
    if let Some(sup) = st.supervisor.filter(|p| process::is_alive(*p) && p.pid != std::process::id()) {
        println!("stopping the devnet's `up` process (pid {})", sup.pid);
        // It stops every node (10 s grace each, in parallel) and the registry.
        match process::stop(sup, None, Duration::from_secs(60)).await {
            process::Stopped::Killed => println!("it did not stop in time and was killed"),
            process::Stopped::Stuck => {
                return Err(DevnetError::Stuck(format!("session-devnet up (pid {})", sup.pid)));
            }
            _ => {}
        }
    }
    // Whatever is left (the `up` process was gone or killed): stop by pid.
    Devnet::attach(dir(cli), None)?.down().await?;
    println!("devnet {} is down; data kept", dir(cli).display());
    Ok(())
}
