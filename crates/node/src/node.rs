//! Starting and stopping a node: key, store, node list, background tasks and the server. Used by
//! the `session-node` binary and, in-process, by tests.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::NodeContext;
use crate::config::NodeConfig;
use crate::identity::{IdentityError, NodeIdentity};
use crate::metrics::Metrics;
use crate::nodelist::{self, NodeList, NodeListFileWatcher};
use crate::peer::PeerClient;
use crate::server::{self, tls};
use crate::store::{Store, StoreError, StoreOptions};

/// The node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The node key could not be loaded or made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The message store could not be opened.
    #[error("opening the message store: {0}")]
    Store(#[from] StoreError),
    /// The TLS certificate could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The node-to-node HTTP client could not be built.
    #[error("node-to-node client: {0}")]
    Peer(#[from] crate::peer::PeerError),
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for a shutdown signal failed.
    #[error("installing the signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// A started node. Dropping it without [`shutdown`](Self::shutdown) leaves the server running
/// until the runtime ends.
#[derive(Debug)]
pub struct RunningNode {
    /// The address actually bound (with the real port when the config asked for port 0).
    pub addr: SocketAddr,
    /// The node's shared state.
    pub ctx: Arc<NodeContext>,
    tls: bool,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// The line the binary prints on stdout once it listens:
    /// `session-node listening on URL ed25519=HEX x25519=HEX`.
    pub fn startup_line(&self) -> String {
        format!(
            "session-node listening on {} ed25519={} x25519={}",
            self.url(),
            self.ctx.identity.ed25519_hex(),
            self.ctx.identity.x25519_hex()
        )
    }

    /// Stops accepting, lets open requests finish (bounded by [`server::SHUTDOWN_GRACE`]) and
    /// stops the background tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
    }
}

/// Starts a node: loads or makes the key (and TLS certificate), opens the store, loads the node
/// list and starts watching it (every second), starts expiry cleanup (at once, then every 10 s)
/// and the sync task (`crate::sync`: catch-up once the list is known, data movement on list
/// changes), binds and serves.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    tls::install_crypto_provider();
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| NodeError::DataDir { path: data_dir.display().to_string(), source })?;
    let identity = NodeIdentity::load_or_create(&data_dir)?;
    let tls_config = if config.tls { Some(tls::server_config(&data_dir)?) } else { None };
    let store = Store::open(
        &data_dir,
        StoreOptions {
            max_db_bytes: config.limits.max_db_bytes,
            read_connections: config.limits.read_connections,
        },
    )?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| NodeError::Bind { addr: config.listen, source })?;

    let mut watcher = config.node_list_file.clone().map(NodeListFileWatcher::new);
    let initial = watcher.as_mut().and_then(NodeListFileWatcher::poll).unwrap_or_default();
    let tls = config.tls;
    let peers = PeerClient::new(identity.clone())?;
    let ctx = Arc::new(NodeContext {
        identity,
        config,
        nodes: ArcSwap::from_pointee(NodeList::default()),
        store,
        peers,
        metrics: Metrics::default(),
        list_changed: Default::default(),
    });
    nodelist::install(&ctx, initial);

    let mut background =
        vec![crate::store::spawn_expiry_task(ctx.store.clone()), crate::sync::spawn(ctx.clone())];
    if let Some(watcher) = watcher {
        background.push(nodelist::spawn_file_watcher(ctx.clone(), watcher, nodelist::FILE_POLL_INTERVAL));
    } else if let Some(url) = ctx.config.registry_url.clone() {
        background.push(crate::registry::spawn(ctx.clone(), url, addr.port()));
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, tls_config, server::router(ctx.clone()), shutdown_rx));
    tracing::info!(%addr, tls, ed25519 = %ctx.identity.ed25519_hex(), "node started");
    Ok(RunningNode { addr, ctx, tls, shutdown, server, background })
}

/// Starts a node, prints the startup line on stdout, and runs until SIGTERM or Ctrl-C.
pub async fn run(config: NodeConfig) -> Result<(), NodeError> {
    let node = start(config).await?;
    // Listen for signals before announcing the node, so a SIGTERM sent right after the startup
    // line is handled.
    let signal = shutdown_signal()?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", node.startup_line());
        let _ = stdout.flush();
    }
    let signal = signal.await;
    tracing::info!("shutting down");
    node.shutdown().await;
    signal
}

/// Registers SIGTERM and SIGINT handlers now; the future completes on the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = Result<(), NodeError>>, NodeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(NodeError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(NodeError::Signal)?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async { tokio::signal::ctrl_c().await.map_err(NodeError::Signal) })
    }
}
