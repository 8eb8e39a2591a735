//! A whole Session network on one machine: the `session-registry` and N `session-node`
//! processes on loopback, their data and logs in one directory, described by `DIR/devnet.json`.
//!
//! [`Devnet`] is the library face of the `session-devnet` binary: tests bring a network up with
//! [`Devnet::up`], stop, start and add nodes, wait until every node is in a swarm, and tear it
//! down (or let `Drop` kill it). [`Devnet::attach`] acts on a devnet run by another process
//! (the `node`, `status` and `down` subcommands). See `crates/devnet/README.md`.

pub mod net;
pub mod process;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

pub use net::{ListedNode, NodeListing};
pub use state::{DevnetState, NO_SWARM, NodeEntry, ProcessId, RegistryEntry, Timing};

/// Startup line prefix of `session-registry`.
const REGISTRY_LINE: &str = "session-registry listening on ";
/// Startup line prefix of `session-node`.
const NODE_LINE: &str = "session-node listening on ";
/// How long a process may take to print its startup line (the machine may be busy).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(300);

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `devnet.json` is not a devnet state file.
    #[error("{path} is not a devnet state file: {source}")]
    BadState {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// There is no devnet in the directory.
    #[error("no devnet in {0} (no devnet.json; run `session-devnet up` first)")]
    NoDevnet(PathBuf),
    /// The node index does not exist.
    #[error("no node {index}: the devnet has {count} nodes (0..{count})")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// How many nodes there are.
        count: usize,
    },
    /// The devnet (or the named process) is already running.
    #[error("{0}")]
    AlreadyRunning(String),
    /// A binary was not found.
    #[error(
        "cannot find the {name} binary (looked in {looked}); build it with `cargo build -p {package}` or name it with {flag} / {env}"
    )]
    BinaryNotFound {
        /// Binary name.
        name: &'static str,
        /// Cargo package building it.
        package: &'static str,
        /// Command-line flag naming it.
        flag: &'static str,
        /// Environment variable naming it.
        env: &'static str,
        /// Where it was looked for.
        looked: String,
    },
    /// A process could not be spawned.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A process exited before printing its startup line.
    #[error("{what} exited ({status}) before it was ready; log {log}:\n{tail}")]
    Exited {
        /// The process.
        what: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its output.
        tail: String,
    },
    /// A process did not print its startup line in time.
    #[error("no `{what}` line within {timeout:?}; see {log}")]
    StartTimeout {
        /// The expected line.
        what: String,
        /// How long was waited.
        timeout: Duration,
        /// Its log file.
        log: PathBuf,
    },
    /// A startup line could not be parsed.
    #[error("unexpected startup line {0:?}")]
    BadStartupLine(String),
    /// A node came up with other keys than recorded (its data directory was replaced).
    #[error("node {index} came up with key {found}…, devnet.json has {recorded}…")]
    KeyChanged {
        /// The node.
        index: usize,
        /// First characters of the recorded key.
        recorded: String,
        /// First characters of the key it has now.
        found: String,
    },
    /// An HTTP exchange with the registry or a node failed.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The network did not become ready in time.
    #[error("not ready after {timeout:?}: {detail}")]
    NotReady {
        /// How long was waited.
        timeout: Duration,
        /// What was missing.
        detail: String,
    },
    /// A process of the devnet could not be stopped.
    #[error("{0} is still running after SIGKILL")]
    Stuck(String),
}

/// The `session-registry` and `session-node` binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `session-registry`.
    pub registry: PathBuf,
    /// `session-node`.
    pub node: PathBuf,
}

/// Environment variable naming the `session-registry` binary.
pub const REGISTRY_BIN_ENV: &str = "SESSION_REGISTRY_BIN";
/// Set when the caller already built `session-node` and `session-registry` next to the test
/// executables, so [`Binaries::build_for_tests`] only locates them: `cargo test --workspace`
/// does (Cargo builds a package's binaries for its own integration tests before running any
/// test), which is what `.ci/run` runs.
pub const PREBUILT_ENV: &str = "SESSION_TEST_BINARIES_PREBUILT";
/// Environment variable naming the `session-node` binary.
pub const NODE_BIN_ENV: &str = "SESSION_NODE_BIN";

impl Binaries {
    /// `$SESSION_REGISTRY_BIN` / `$SESSION_NODE_BIN` when set, otherwise the binaries next to
    /// the running executable (the same Cargo target directory), or one directory up (for test
    /// executables in `target/debug/deps`).
    pub fn locate() -> Result<Self, DevnetError> {
        let exe = std::env::current_exe().ok();
        let dirs: Vec<PathBuf> = exe
            .iter()
            .filter_map(|e| e.parent())
            .flat_map(|d| [Some(d.to_path_buf()), d.parent().map(Path::to_path_buf)])
            .flatten()
            .collect();
        let find = |name: &'static str, package: &'static str, flag: &'static str, env: &'static str| {
            if let Some(path) = std::env::var_os(env) {
                return Ok(PathBuf::from(path));
            }
            let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
            dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file()).ok_or_else(|| {
                DevnetError::BinaryNotFound {
                    name,
                    package,
                    flag,
                    env,
                    looked: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
                }
            })
        };
        Ok(Self {
            registry: find("session-registry", "session-registry", "--registry-bin", REGISTRY_BIN_ENV)?,
            node: find("session-node", "session-node", "--node-bin", NODE_BIN_ENV)?,
        })
    }
}

impl Binaries {
    /// For tests of this workspace: builds (or brings up to date) `session-node` and
    /// `session-registry` with Cargo into the target directory of the running test executable
    /// (`target/<profile>/deps/<test>`), once per process, and returns them. `cargo test -p X`
    /// does not build other packages' binaries, so tests that start a devnet call this.
    /// The workspace is the one this crate was built from.
    pub fn build_for_tests() -> Result<Self, DevnetError> {
        let workspace_manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        static BUILT: std::sync::Mutex<Option<Binaries>> = std::sync::Mutex::new(None);
        let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(binaries) = built.as_ref() {
            return Ok(binaries.clone());
        }
        if std::env::var_os(PREBUILT_ENV).is_some() {
            return Binaries::locate();
        }
        let io = |what: &str| {
            let what = what.to_string();
            move |source| DevnetError::Io { what, source }
        };
        let exe = std::env::current_exe().map_err(io("finding the test executable"))?;
        let profile = exe.parent().and_then(Path::parent).ok_or_else(|| DevnetError::Io {
            what: format!("{} is not in target/<profile>/deps", exe.display()),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let target = profile.parent().unwrap_or(profile);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "session-node", "-p", "session-registry", "--bins", "--manifest-path"])
            .arg(&workspace_manifest)
            .arg("--target-dir")
            .arg(target)
            .args(if profile.file_name() == Some(std::ffi::OsStr::new("release")) {
                &["--release"][..]
            } else {
                &[]
            })
            .status()
            .map_err(io("running cargo build"))?;
        if !status.success() {
            return Err(DevnetError::Io {
                what: "cargo build -p session-node -p session-registry".into(),
                source: std::io::Error::other(format!("exited with {status}")),
            });
        }
        let exe = |name: &str| profile.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let binaries = Self { registry: exe("session-registry"), node: exe("session-node") };
        *built = Some(binaries.clone());
        Ok(binaries)
    }
}

/// The file name under which the `session-devnet` executable runs the node it was built with.
pub const EMBEDDED_NODE: &str = "session-node";
/// The file name under which the `session-devnet` executable runs the registry it was built with.
pub const EMBEDDED_REGISTRY: &str = "session-registry";

impl Binaries {
    /// The node and registry built into the running `session-devnet` executable: links
    /// `dir/bin/session-node` and `dir/bin/session-registry` to it (replacing older links), and
    /// the executable runs as whichever name it was started under. Only meaningful when the
    /// running executable is `session-devnet`.
    pub fn embedded(dir: &Path) -> Result<Self, DevnetError> {
        let exe = std::env::current_exe()
            .map_err(|source| DevnetError::Io { what: "finding the running executable".into(), source })?;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin)
            .map_err(|source| DevnetError::Io { what: format!("creating {}", bin.display()), source })?;
        let link = |name: &str| -> Result<PathBuf, DevnetError> {
            let path = bin.join(name);
            let io = |source| DevnetError::Io {
                what: format!("linking {} to {}", path.display(), exe.display()),
                source,
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
            std::os::unix::fs::symlink(&exe, &path).map_err(io)?;
            Ok(path)
        };
        Ok(Self { registry: link(EMBEDDED_REGISTRY)?, node: link(EMBEDDED_NODE)? })
    }
}

/// Where progress lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// Nowhere.
    #[default]
    Silent,
    /// Standard output.
    Stdout,
}

/// How to bring a devnet up.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The devnet directory (state file, data and logs).
    pub dir: PathBuf,
    /// Number of nodes. A new devnet gets this many; an existing one keeps its nodes and gets
    /// new ones added up to this number.
    pub nodes: usize,
    /// Nodes serve HTTPS (new devnets only; an existing devnet keeps its setting).
    pub tls: bool,
    /// Every node on 127.0.0.1 instead of its own 127.0.0.N (new devnets only).
    pub single_ip: bool,
    /// Liveness timings (new devnets only).
    pub timing: Timing,
    /// The binaries; `None`: [`Binaries::locate`].
    pub binaries: Option<Binaries>,
    /// How long [`Devnet::up`] waits for every node to be in a swarm.
    pub ready_timeout: Duration,
    /// How long a process gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// `RUST_LOG` for the processes.
    pub log_filter: String,
    /// Progress lines.
    pub progress: Progress,
}

impl DevnetOptions {
    /// `nodes` nodes in `dir`, plain HTTP, one IP per node, default timing, binaries located,
    /// 180 s to become ready, 10 s stop grace, `RUST_LOG=$SESSION_DEVNET_LOG` or `info`,
    /// silent.
    pub fn new(dir: impl Into<PathBuf>, nodes: usize) -> Self {
        Self {
            dir: dir.into(),
            nodes,
            tls: false,
            single_ip: false,
            timing: Timing::default(),
            binaries: None,
            ready_timeout: Duration::from_secs(180),
            stop_grace: Duration::from_secs(10),
            log_filter: std::env::var("SESSION_DEVNET_LOG").unwrap_or_else(|_| "info".into()),
            progress: Progress::Silent,
        }
    }
}

/// A process of the devnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Registry,
    Node(usize),
}

/// Which optional node flags the `session-node` binary has.
#[derive(Debug, Clone, Copy, Default)]
struct NodeFlags {
    registry_pubkey: bool,
    registry_heartbeat: bool,
    allow_loopback_proxy: bool,
}

/// A swarm and its members, as the registry assigns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swarm {
    /// Swarm id.
    pub id: u64,
    /// Indices of its nodes.
    pub nodes: Vec<usize>,
}

/// A devnet this process acts on. Made by [`Devnet::up`] / [`Devnet::create`] (this process
/// supervises it: dropping the value SIGKILLs every process of the network) or by
/// [`Devnet::attach`] (another process supervises it; nothing happens on drop).
#[derive(Debug)]
pub struct Devnet {
    dir: PathBuf,
    binaries: Option<Binaries>,
    client: reqwest::Client,
    children: HashMap<Role, Child>,
    progress: Progress,
    stop_grace: Duration,
    log_filter: String,
    owner: bool,
    node_flags: Option<NodeFlags>,
}

impl Devnet {
    /// Brings a devnet up: [`Devnet::create`], [`Devnet::start_all`], then
    /// [`Devnet::wait_until_ready`] with `options.ready_timeout`.
    pub async fn up(options: DevnetOptions) -> Result<Self, DevnetError> {
        let timeout = options.ready_timeout;
        let mut devnet = Self::create(options)?;
        devnet.start_all().await?;
        devnet.wait_until_ready(timeout).await?;
        Ok(devnet)
    }

    /// Prepares `options.dir` (a new devnet, or the existing one there with nodes added up to
    /// `options.nodes`) and claims it for this process. Starts nothing. Fails if the devnet is
    /// already supervised by a live process or has live processes left over.
    pub fn create(options: DevnetOptions) -> Result<Self, DevnetError> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|source| DevnetError::Io { what: format!("creating {}", dir.display()), source })?;
        let binaries = match options.binaries.clone() {
            Some(b) => b,
            None => Binaries::locate()?,
        };
        let me = ProcessId { pid: std::process::id(), start_ticks: process::start_ticks(std::process::id()) };
        let (created, added) = {
            let _lock = state::StateLock::acquire(&dir)?;
            let existing = DevnetState::load(&dir)?;
            let created = existing.is_none();
            let mut st = match existing {
                Some(st) => st,
                None => DevnetState {
                    version: 1,
                    registry_url: String::new(),
                    registry: RegistryEntry {
                        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                        pubkey: String::new(),
                        process: None,
                        log: dir.join("registry").join("registry.log"),
                        data_dir: dir.join("registry"),
                    },
                    nodes: Vec::new(),
                    tls: options.tls,
                    single_ip: options.single_ip,
                    timing: options.timing,
                    supervisor: None,
                },
            };
            if let Some(sup) = st.supervisor.filter(|p| process::is_alive(*p) && p.pid != me.pid) {
                return Err(DevnetError::AlreadyRunning(format!(
                    "the devnet in {} is already up (supervisor pid {}); use `session-devnet down --dir {}` first",
                    dir.display(),
                    sup.pid,
                    dir.display()
                )));
            }
            let leftovers: Vec<String> = st
                .registry
                .process
                .filter(|p| process::is_alive(*p))
                .map(|p| format!("registry (pid {})", p.pid))
                .into_iter()
                .chain(
                    st.nodes
                        .iter()
                        .filter_map(|n| n.process().filter(|p| process::is_alive(*p)).map(|p| (n.index, p)))
                        .map(|(k, p)| format!("node {k} (pid {})", p.pid)),
                )
                .collect();
            if !leftovers.is_empty() {
                return Err(DevnetError::AlreadyRunning(format!(
                    "the devnet in {} is already running ({}); use `session-devnet down --dir {}` first",
                    dir.display(),
                    leftovers.join(", "),
                    dir.display()
                )));
            }
            st.registry.process = None;
            for node in &mut st.nodes {
                node.set_process(None);
            }
            st.supervisor = Some(me);
            let mut added = 0;
            while st.nodes.len() < options.nodes {
                new_node_entry(&dir, &mut st)?;
                added += 1;
            }
            st.save(&dir)?;
            (created, added)
        };
        let devnet = Self {
            dir,
            binaries: Some(binaries),
            client: net::client(Duration::from_secs(5)),
            children: HashMap::new(),
            progress: options.progress,
            stop_grace: options.stop_grace,
            log_filter: options.log_filter,
            owner: true,
            node_flags: None,
        };
        let st = devnet.state()?;
        if created {
            devnet.say(&format!("new devnet in {} with {} nodes", devnet.dir.display(), st.nodes.len()));
        } else {
            devnet.say(&format!(
                "devnet in {} ({} nodes{})",
                devnet.dir.display(),
                st.nodes.len(),
                if added > 0 { format!(", {added} added") } else { String::new() }
            ));
            if st.tls != options.tls || st.single_ip != options.single_ip {
                devnet.say("note: an existing devnet keeps its --tls / --single-ip settings");
            }
        }
        Ok(devnet)
    }

    /// A handle on the devnet in `dir` run by another process: commands act on its processes
    /// by pid and on `devnet.json` under its lock; processes started through it are detached
    /// (own process group, output to their log) and outlive this process.
    pub fn attach(dir: impl Into<PathBuf>, binaries: Option<Binaries>) -> Result<Self, DevnetError> {
        let dir = dir.into();
        state::read(&dir)?;
        Ok(Self {
            dir,
            binaries,
            client: net::client(Duration::from_secs(5)),
            children: HashMap::new(),
            progress: Progress::Stdout,
            stop_grace: Duration::from_secs(10),
            log_filter: std::env::var("SESSION_DEVNET_LOG").unwrap_or_else(|_| "info".into()),
            owner: false,
            node_flags: None,
        })
    }

    /// Sets where progress lines go.
    pub fn set_progress(&mut self, progress: Progress) {
        self.progress = progress;
    }

    /// The devnet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current contents of `devnet.json`.
    pub fn state(&self) -> Result<DevnetState, DevnetError> {
        state::read(&self.dir)
    }

    /// The nodes as `devnet.json` records them.
    pub fn nodes(&self) -> Result<Vec<NodeEntry>, DevnetError> {
        Ok(self.state()?.nodes)
    }

    /// Node `k` as `devnet.json` records it.
    pub fn node(&self, k: usize) -> Result<NodeEntry, DevnetError> {
        self.state()?.node(k).cloned()
    }

    /// The registry's URL (`http://127.0.0.1:PORT`).
    pub fn registry_url(&self) -> Result<String, DevnetError> {
        Ok(self.state()?.registry_url)
    }

    /// The registry's Ed25519 key, hex.
    pub fn registry_pubkey(&self) -> Result<String, DevnetError> {
        Ok(self.state()?.registry.pubkey)
    }

    /// An HTTP client suited to the devnet (loopback, self-signed certificates accepted).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The registry's current `get_service_nodes`.
    pub async fn registry_nodes(&self) -> Result<NodeListing, DevnetError> {
        net::registry_nodes(&self.client, &self.registry_url()?).await
    }

    fn say(&self, line: &str) {
        if self.progress == Progress::Stdout {
            println!("{line}");
        }
    }

    fn binaries(&mut self) -> Result<Binaries, DevnetError> {
        if self.binaries.is_none() {
            self.binaries = Some(Binaries::locate()?);
        }
        Ok(self.binaries.clone().expect("set above"))
    }

    /// Starts the registry (if it is not running) and every node that is not running, and
    /// waits for their startup lines (not for swarms: see [`Devnet::wait_until_ready`]).
    pub async fn start_all(&mut self) -> Result<(), DevnetError> {
        self.start_registry().await?;
        let st = self.state()?;
        let mut waiting = Vec::new();
        for node in &st.nodes {
            if node.process().is_some_and(process::is_alive) {
                continue;
            }
            waiting.push(self.spawn_node(node.index)?);
        }
        let total = waiting.len();
        for (done, pending) in waiting.into_iter().enumerate() {
            self.finish_node_start(pending).await?;
            if done + 1 == total || (done + 1) % 4 == 0 {
                self.say(&format!("{}/{} nodes started", done + 1, total));
            }
        }
        Ok(())
    }

    /// Starts the registry unless it runs; records its URL, key and pid.
    pub async fn start_registry(&mut self) -> Result<(), DevnetError> {
        let st = self.state()?;
        if st.registry.process.is_some_and(process::is_alive) {
            return Ok(());
        }
        let binaries = self.binaries()?;
        let t = st.timing;
        let args: Vec<OsString> = vec![
            "--listen".into(),
            st.registry.listen.to_string().into(),
            "--data-dir".into(),
            st.registry.data_dir.clone().into(),
            "--policy".into(),
            "open".into(),
            "--heartbeat-interval".into(),
            t.heartbeat_secs.to_string().into(),
            "--decommission-after".into(),
            t.decommission_after_secs.to_string().into(),
            "--remove-after".into(),
            t.remove_after_secs.to_string().into(),
            "--tick".into(),
            t.tick_secs.to_string().into(),
            "--ping-timeout".into(),
            "2".into(),
        ];
        create_dir(&st.registry.data_dir)?;
        let mut spawned =
            process::spawn_logged(&binaries.registry, &args, &st.registry.log, &self.log_filter)?;
        let line = process::wait_for_line(
            &mut spawned.child,
            &st.registry.log,
            spawned.log_offset,
            REGISTRY_LINE,
            START_TIMEOUT,
        )
        .await;
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                let _ = spawned.child.kill();
                let _ = spawned.child.wait();
                return Err(e);
            }
        };
        // "session-registry listening on http://127.0.0.1:PORT pubkey=HEX"
        let mut words = line[REGISTRY_LINE.len()..].split_whitespace();
        let url = words.next().ok_or_else(|| DevnetError::BadStartupLine(line.clone()))?.to_string();
        let pubkey = words
            .next()
            .and_then(|w| w.strip_prefix("pubkey="))
            .ok_or_else(|| DevnetError::BadStartupLine(line.clone()))?
            .to_string();
        let listen: SocketAddr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| DevnetError::BadStartupLine(line.clone()))?;
        let process = spawned.process;
        self.keep_child(Role::Registry, spawned.child);
        state::update(&self.dir, |st| {
            st.registry_url = url.clone();
            st.registry.listen = listen;
            st.registry.pubkey = pubkey.clone();
            st.registry.process = Some(process);
            Ok(())
        })?;
        self.say(&format!("registry up at {url} (pid {})", process.pid));
        Ok(())
    }

    fn keep_child(&mut self, role: Role, child: Child) {
        // Only a supervising process keeps (and later reaps or kills) its children; an attached
        // one lets them run on after it exits.
        if self.owner {
            self.children.insert(role, child);
        }
    }

    /// Which optional flags the node binary has (from its `--help`).
    fn node_flags(&mut self, node_bin: &Path) -> NodeFlags {
        if let Some(flags) = self.node_flags {
            return flags;
        }
        let help = std::process::Command::new(node_bin)
            .arg("--help")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let flags = NodeFlags {
            registry_pubkey: help.contains("--registry-pubkey"),
            registry_heartbeat: help.contains("--registry-heartbeat-secs"),
            allow_loopback_proxy: help.contains("--allow-loopback-proxy"),
        };
        if !flags.registry_pubkey {
            self.say(&format!(
                "warning: {} has no --registry-pubkey flag: it predates the registry follower, nodes may not register",
                node_bin.display()
            ));
        }
        self.node_flags = Some(flags);
        flags
    }

    fn spawn_node(&mut self, k: usize) -> Result<PendingNode, DevnetError> {
        let st = self.state()?;
        let node = st.node(k)?.clone();
        if let Some(p) = node.process().filter(|p| process::is_alive(*p)) {
            return Err(DevnetError::AlreadyRunning(format!("node {k} is already running (pid {})", p.pid)));
        }
        let binaries = self.binaries()?;
        let flags = self.node_flags(&binaries.node);
        let mut args: Vec<OsString> = vec![
            "--listen".into(),
            node.listen().to_string().into(),
            "--public-ip".into(),
            node.address.to_string().into(),
            "--data-dir".into(),
            node.data_dir.clone().into(),
            "--registry-url".into(),
            st.registry_url.clone().into(),
            "--rate".into(),
            "0".into(),
        ];
        if flags.registry_pubkey && !st.registry.pubkey.is_empty() {
            args.extend(["--registry-pubkey".into(), st.registry.pubkey.clone().into()]);
        }
        if flags.registry_heartbeat {
            args.extend(["--registry-heartbeat-secs".into(), st.timing.heartbeat_secs.to_string().into()]);
        }
        if flags.allow_loopback_proxy {
            args.push("--allow-loopback-proxy".into());
        }
        if st.tls {
            args.push("--tls".into());
        }
        create_dir(&node.data_dir)?;
        let spawned = process::spawn_logged(&binaries.node, &args, &node.log, &self.log_filter)?;
        Ok(PendingNode { index: k, spawned, log: node.log, recorded_key: node.pubkey_ed25519 })
    }

    async fn finish_node_start(&mut self, pending: PendingNode) -> Result<(), DevnetError> {
        let PendingNode { index, mut spawned, log, recorded_key } = pending;
        let line =
            process::wait_for_line(&mut spawned.child, &log, spawned.log_offset, NODE_LINE, START_TIMEOUT)
                .await;
        let parsed = line.and_then(|line| parse_node_line(&line));
        let (ed, x) = match parsed {
            Ok(keys) => keys,
            Err(e) => {
                let _ = spawned.child.kill();
                let _ = spawned.child.wait();
                return Err(e);
            }
        };
        if !recorded_key.is_empty() && recorded_key != ed {
            let _ = spawned.child.kill();
            let _ = spawned.child.wait();
            return Err(DevnetError::KeyChanged {
                index,
                recorded: recorded_key.chars().take(8).collect(),
                found: ed.chars().take(8).collect(),
            });
        }
        let process = spawned.process;
        self.keep_child(Role::Node(index), spawned.child);
        state::update(&self.dir, |st| {
            let node = st.node_mut(index)?;
            node.pubkey_ed25519 = ed.clone();
            node.pubkey_x25519 = x.clone();
            node.set_process(Some(process));
            Ok(())
        })?;
        Ok(())
    }

    /// Starts node `k` (which must be stopped) and waits for its startup line. Use
    /// [`Devnet::wait_until_ready`] to wait until it is back in a swarm.
    pub async fn start_node(&mut self, k: usize) -> Result<(), DevnetError> {
        let pending = self.spawn_node(k)?;
        self.finish_node_start(pending).await?;
        let node = self.node(k)?;
        self.say(&format!("node {k} started at {} (pid {})", node.url, node.pid.unwrap_or(0)));
        Ok(())
    }

    /// Stops node `k`: SIGTERM, SIGKILL after the grace period. Returns `false` if it was not
    /// running.
    pub async fn stop_node(&mut self, k: usize) -> Result<bool, DevnetError> {
        let node = self.node(k)?;
        let child = self.children.remove(&Role::Node(k));
        let Some(p) =
            node.process().or_else(|| child.as_ref().map(|c| ProcessId { pid: c.id(), start_ticks: None }))
        else {
            return Ok(false);
        };
        let outcome = process::stop(p, child, self.stop_grace).await;
        if outcome == process::Stopped::Stuck {
            return Err(DevnetError::Stuck(format!("node {k} (pid {})", p.pid)));
        }
        state::update(&self.dir, |st| {
            let node = st.node_mut(k)?;
            if node.pid == Some(p.pid) {
                node.set_process(None);
            }
            Ok(())
        })?;
        let ran = outcome != process::Stopped::NotRunning;
        self.say(&format!("node {k} {}", if ran { "stopped" } else { "was not running" }));
        Ok(ran)
    }

    /// Adds a node (the next index, its own address and a free port), starts it, and returns
    /// its index. Use [`Devnet::wait_until_ready`] to wait until it is in a swarm.
    pub async fn add_node(&mut self) -> Result<usize, DevnetError> {
        let dir = self.dir.clone();
        let k = state::update(&dir, |st| new_node_entry(&dir, st))?;
        self.say(&format!("node {k} added"));
        self.start_node(k).await?;
        Ok(k)
    }

    /// Reaps processes this process spawned that have exited; clears their pid in
    /// `devnet.json` and returns what exited (for the supervisor's messages).
    pub fn reap_exited(&mut self) -> Result<Vec<String>, DevnetError> {
        let mut exited = Vec::new();
        let roles: Vec<Role> = self.children.keys().copied().collect();
        for role in roles {
            let Some(child) = self.children.get_mut(&role) else { continue };
            let Ok(Some(status)) = child.try_wait() else { continue };
            let pid = child.id();
            self.children.remove(&role);
            let cleared = state::update(&self.dir, |st| {
                let slot_pid = match role {
                    Role::Registry => st.registry.process.map(|p| p.pid),
                    Role::Node(k) => st.node(k)?.pid,
                };
                if slot_pid != Some(pid) {
                    return Ok(false);
                }
                match role {
                    Role::Registry => st.registry.process = None,
                    Role::Node(k) => st.node_mut(k)?.set_process(None),
                }
                Ok(true)
            })?;
            if cleared {
                exited.push(match role {
                    Role::Registry => format!("registry exited ({status})"),
                    Role::Node(k) => format!("node {k} exited ({status})"),
                });
            }
        }
        Ok(exited)
    }

    /// Reads the registry's list and records each node's swarm and activity in `devnet.json`.
    /// Returns the nodes whose swarm changed, with the old and new swarm.
    pub async fn refresh(&self) -> Result<Vec<(usize, u64, u64)>, DevnetError> {
        let listing = self.registry_nodes().await?;
        state::update(&self.dir, |st| {
            let mut changed = Vec::new();
            for node in &mut st.nodes {
                let (swarm, active) =
                    listing.find(&node.pubkey_ed25519).map_or((NO_SWARM, false), |n| (n.swarm_id, n.active));
                if node.swarm_id != swarm {
                    changed.push((node.index, node.swarm_id, swarm));
                }
                node.swarm_id = swarm;
                node.active = active;
            }
            Ok(changed)
        })
    }

    /// The swarms of the running nodes as `devnet.json` last recorded them.
    pub fn swarms(&self) -> Result<Vec<Swarm>, DevnetError> {
        let mut swarms: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for node in self.nodes()? {
            if node.in_swarm() {
                swarms.entry(node.swarm_id).or_default().push(node.index);
            }
        }
        Ok(swarms.into_iter().map(|(id, nodes)| Swarm { id, nodes }).collect())
    }

    /// Waits until every running node of the devnet is listed active in a swarm by the registry
    /// **and** its own node list (what it serves to clients) agrees on its swarm; records the
    /// swarms in `devnet.json` and returns them. Prints progress lines as nodes register and
    /// swarms form. Fails early if a process exits, and with [`DevnetError::NotReady`] (what is
    /// missing) after `timeout`.
    pub async fn wait_until_ready(&mut self, timeout: Duration) -> Result<Vec<Swarm>, DevnetError> {
        let deadline = Instant::now() + timeout;
        let mut last_line = String::new();
        loop {
            if self.owner {
                for line in self.reap_exited()? {
                    self.say(&line);
                    if line.starts_with("registry") {
                        return Err(DevnetError::NotReady { timeout, detail: line });
                    }
                }
            }
            let detail = match self.readiness().await {
                Ok(r) => {
                    let line = format!(
                        "{}/{} nodes registered, {}/{} in swarms, {}/{} caught up",
                        r.registered, r.running, r.in_swarm, r.running, r.caught_up, r.running
                    );
                    if line != last_line {
                        self.say(&line);
                        last_line = line;
                    }
                    if r.caught_up == r.running {
                        self.refresh().await?;
                        return self.swarms();
                    }
                    r.missing
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(DevnetError::NotReady { timeout, detail });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    async fn readiness(&self) -> Result<Readiness, DevnetError> {
        let st = self.state()?;
        let listing = net::registry_nodes(&self.client, &st.registry_url).await?;
        let running: Vec<&NodeEntry> =
            st.nodes.iter().filter(|n| n.process().is_some_and(process::is_alive)).collect();
        let mut r = Readiness { running: running.len(), ..Readiness::default() };
        let mut missing = Vec::new();
        let mut views = tokio::task::JoinSet::new();
        for node in &running {
            let Some(listed) = listing.find(&node.pubkey_ed25519) else {
                missing.push(format!("node {} not registered", node.index));
                continue;
            };
            r.registered += 1;
            if !listed.active || listed.swarm_id == NO_SWARM {
                missing.push(format!("node {} not in a swarm", node.index));
                continue;
            }
            r.in_swarm += 1;
            let client = self.client.clone();
            let node = (*node).clone();
            let swarm = listed.swarm_id;
            views.spawn(async move {
                let view = net::node_view(&client, &node).await;
                let agrees = view
                    .as_ref()
                    .ok()
                    .and_then(|v| v.find(&node.pubkey_ed25519))
                    .is_some_and(|n| n.swarm_id == swarm);
                (node.index, agrees)
            });
        }
        while let Some(joined) = views.join_next().await {
            if let Ok((k, agrees)) = joined {
                if agrees {
                    r.caught_up += 1;
                } else {
                    missing.push(format!("node {k} has not seen its swarm yet"));
                }
            }
        }
        missing.sort();
        r.missing = if missing.len() > 6 {
            format!("{} and {} more", missing[..6].join(", "), missing.len() - 6)
        } else {
            missing.join(", ")
        };
        Ok(r)
    }

    /// A readable summary: the registry URL and each swarm with its nodes.
    pub fn summary(&self) -> Result<String, DevnetError> {
        use std::fmt::Write as _;
        let st = self.state()?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "registry  {}  (pubkey {}…)",
            st.registry_url,
            st.registry.pubkey.get(..16).unwrap_or("")
        );
        let swarms = self.swarms()?;
        for swarm in &swarms {
            let _ = writeln!(out, "swarm {:016x}  {} nodes", swarm.id, swarm.nodes.len());
            for &k in &swarm.nodes {
                let n = st.node(k)?;
                let _ = writeln!(
                    out,
                    "  node {k:<3} {:<28} ed25519 {}…  pid {}",
                    n.url,
                    n.pubkey_ed25519.get(..16).unwrap_or(""),
                    n.pid.map_or("-".into(), |p| p.to_string())
                );
            }
        }
        let outside: Vec<&NodeEntry> = st.nodes.iter().filter(|n| !n.in_swarm()).collect();
        if !outside.is_empty() {
            let _ = writeln!(out, "not in a swarm:");
            for n in outside {
                let _ = writeln!(
                    out,
                    "  node {:<3} {:<28} {}",
                    n.index,
                    n.url,
                    if n.pid.is_some() { "running" } else { "stopped" }
                );
            }
        }
        let _ = write!(out, "state file {}", self.dir.join(state::STATE_FILE).display());
        Ok(out)
    }

    /// Stops every node (in parallel), then the registry, and releases the devnet (clears the
    /// supervisor in `devnet.json`). Data stays in the directory: [`Devnet::up`] on it brings
    /// the same network back.
    pub async fn down(mut self) -> Result<(), DevnetError> {
        let result = self.shutdown().await;
        self.owner = false;
        result
    }

    /// Lets the devnet run on after this process exits: forgets its children (they run in
    /// their own process groups), and clears the supervisor in `devnet.json`, so that
    /// `session-devnet status|node|down --dir DIR` (or [`Devnet::attach`]) act on it by pid.
    pub fn detach(mut self) -> Result<(), DevnetError> {
        self.children.clear();
        self.owner = false;
        state::update(&self.dir, |st| {
            st.supervisor = None;
            Ok(())
        })
    }

    async fn shutdown(&mut self) -> Result<(), DevnetError> {
        let st = self.state()?;
        let grace = self.stop_grace;
        let mut stops = tokio::task::JoinSet::new();
        for node in &st.nodes {
            let child = self.children.remove(&Role::Node(node.index));
            let p = node
                .process()
                .or_else(|| child.as_ref().map(|c| ProcessId { pid: c.id(), start_ticks: None }));
            if let Some(p) = p {
                let k = node.index;
                stops.spawn(async move { (k, p, process::stop(p, child, grace).await) });
            }
        }
        let mut stuck = Vec::new();
        let mut stopped = 0;
        while let Some(joined) = stops.join_next().await {
            if let Ok((k, p, outcome)) = joined {
                match outcome {
                    process::Stopped::Stuck => stuck.push(format!("node {k} (pid {})", p.pid)),
                    process::Stopped::NotRunning => {}
                    _ => stopped += 1,
                }
            }
        }
        if stopped > 0 {
            self.say(&format!("{stopped} nodes stopped"));
        }
        let child = self.children.remove(&Role::Registry);
        if let Some(p) = st
            .registry
            .process
            .or_else(|| child.as_ref().map(|c| ProcessId { pid: c.id(), start_ticks: None }))
        {
            if process::stop(p, child, grace).await == process::Stopped::Stuck {
                stuck.push(format!("registry (pid {})", p.pid));
            } else {
                self.say("registry stopped");
            }
        }
        state::update(&self.dir, |st| {
            st.registry.process = None;
            for node in &mut st.nodes {
                node.set_process(None);
                node.active = false;
            }
            st.supervisor = None;
            Ok(())
        })?;
        if stuck.is_empty() { Ok(()) } else { Err(DevnetError::Stuck(stuck.join(", "))) }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        // Kill (SIGKILL) everything of the network: our children and any node started from
        // another process.
        let st = state::read(&self.dir).ok();
        for (role, mut child) in self.children.drain() {
            let _ = role;
            process::kill_now(ProcessId { pid: child.id(), start_ticks: None }, Some(&mut child));
        }
        if let Some(st) = st {
            for p in st.nodes.iter().filter_map(NodeEntry::process).chain(st.registry.process) {
                process::kill_now(p, None);
            }
            let _ = state::update(&self.dir, |st| {
                st.registry.process = None;
                for node in &mut st.nodes {
                    node.set_process(None);
                    node.active = false;
                }
                st.supervisor = None;
                Ok(())
            });
        }
    }
}

/// A node process spawned, its startup line not yet seen.
#[derive(Debug)]
struct PendingNode {
    index: usize,
    spawned: process::Spawned,
    log: PathBuf,
    recorded_key: String,
}

#[derive(Debug, Default)]
struct Readiness {
    running: usize,
    registered: usize,
    in_swarm: usize,
    caught_up: usize,
    missing: String,
}

fn create_dir(dir: &Path) -> Result<(), DevnetError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| DevnetError::Io { what: format!("creating {}", dir.display()), source })
}

/// Appends a node (next index, its address, a free port on it) to the state; returns its index.
fn new_node_entry(dir: &Path, st: &mut DevnetState) -> Result<usize, DevnetError> {
    let k = st.nodes.len();
    let address = state::node_address(k, st.single_ip);
    let taken: Vec<SocketAddr> = st.nodes.iter().map(NodeEntry::listen).collect();
    let port = free_port(address, &taken)?;
    let scheme = if st.tls { "https" } else { "http" };
    st.nodes.push(NodeEntry {
        index: k,
        address,
        storage_port: port,
        url: format!("{scheme}://{address}:{port}"),
        pubkey_ed25519: String::new(),
        pubkey_x25519: String::new(),
        swarm_id: NO_SWARM,
        active: false,
        pid: None,
        pid_start_ticks: None,
        data_dir: dir.join(format!("node-{k}")),
        log: dir.join(format!("node-{k}")).join("node.log"),
    });
    Ok(k)
}

/// A port free on `address` now (bound and released), not in `taken`.
fn free_port(address: Ipv4Addr, taken: &[SocketAddr]) -> Result<u16, DevnetError> {
    for _ in 0..20 {
        let listener = std::net::TcpListener::bind((address, 0)).map_err(|source| DevnetError::Io {
            what: format!("finding a free port on {address} (on macOS, alias it with `ifconfig lo0 alias {address}`, or use --single-ip)"),
            source,
        })?;
        let addr =
            listener.local_addr().map_err(|source| DevnetError::Io { what: "local_addr".into(), source })?;
        if !taken.contains(&SocketAddr::from((address, addr.port()))) {
            return Ok(addr.port());
        }
    }
    Err(DevnetError::Io {
        what: format!("finding a free port on {address}"),
        source: std::io::ErrorKind::AddrInUse.into(),
    })
}

/// `session-node listening on URL ed25519=HEX x25519=HEX` → the two keys.
fn parse_node_line(line: &str) -> Result<(String, String), DevnetError> {
    let bad = || DevnetError::BadStartupLine(line.to_string());
    let rest = line.strip_prefix(NODE_LINE).ok_or_else(bad)?;
    let mut ed = None;
    let mut x = None;
    for word in rest.split_whitespace() {
        if let Some(v) = word.strip_prefix("ed25519=") {
            ed = Some(v.to_string());
        } else if let Some(v) = word.strip_prefix("x25519=") {
            x = Some(v.to_string());
        }
    }
    let is_key = |k: &String| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit());
    match (ed, x) {
        (Some(ed), Some(x)) if is_key(&ed) && is_key(&x) => Ok((ed, x)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_startup_line() {
        let ed = "ab".repeat(32);
        let x = "cd".repeat(32);
        let line = format!("session-node listening on http://127.0.0.2:5000 ed25519={ed} x25519={x}");
        assert_eq!(parse_node_line(&line).unwrap(), (ed.clone(), x.clone()));
        assert!(parse_node_line("session-node listening on http://x ed25519=zz x25519=zz").is_err());
        assert!(parse_node_line(&format!("other line ed25519={ed} x25519={x}")).is_err());
    }

    #[test]
    fn new_nodes_get_distinct_addresses_and_ports() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = DevnetState {
            version: 1,
            registry_url: String::new(),
            registry: RegistryEntry {
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                pubkey: String::new(),
                process: None,
                log: dir.path().join("registry/registry.log"),
                data_dir: dir.path().join("registry"),
            },
            nodes: Vec::new(),
            tls: true,
            single_ip: true,
            timing: Timing::default(),
            supervisor: None,
        };
        for k in 0..5 {
            assert_eq!(new_node_entry(dir.path(), &mut st).unwrap(), k);
        }
        let listens: std::collections::BTreeSet<_> = st.nodes.iter().map(NodeEntry::listen).collect();
        assert_eq!(listens.len(), 5);
        assert!(st.nodes[3].url.starts_with("https://127.0.0.1:"));
        assert_eq!(st.nodes[3].data_dir, dir.path().join("node-3"));
    }
}
