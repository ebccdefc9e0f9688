//! `garage server`: prepares the node's directories and identity, opens the metadata database,
//! starts every component, and runs until SIGINT or SIGTERM, then stops cleanly (databases
//! flushed).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::admin::{AdminRpc, AdminService};
use crate::config::Config;
use crate::db::Db;
use crate::layout::manager::LayoutManager;
use crate::net::netapp::NetApp;
use crate::net::node_key::{NodeKey, NodeKeyError};
use crate::net::peering::Peering;
use crate::rpc::endpoint::Endpoint;
use crate::rpc::paths;
use crate::rpc::system::System;
use crate::table::core::TableConfig;
use crate::table::registry::TableRegistry;
use crate::table::sync::SyncTracker;
use crate::table::typed::TableContext;
use crate::util::background::WorkerRegistry;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create `{key}` directory {path}: {source}")]
    CreateDir {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{key}` directory {path} is not writable: {source}")]
    NotWritable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    NodeKey(#[from] NodeKeyError),
    #[error(transparent)]
    Db(#[from] crate::db::Error),
    #[error(transparent)]
    Layout(#[from] crate::layout::manager::LayoutLoadError),
    #[error("cannot listen for other nodes on rpc_bind_addr {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid `rpc_public_addr` {value:?}: expected <ip>:<port>")]
    PublicAddr { value: String },
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
}

/// Creates `path` if needed and checks that files can be created in it.
pub fn prepare_dir(key: &'static str, path: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(path).map_err(|source| ServerError::CreateDir {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let probe = path.join(format!(".garage-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|source| ServerError::NotWritable {
            key,
            path: path.to_path_buf(),
            source,
        })
}

/// A running node: its database, mesh, layout and workers. `garage server` runs one until a
/// signal; tests can run several in one process.
pub struct Node {
    pub config: Config,
    pub db: Db,
    pub system: Arc<System>,
    pub layout: Arc<LayoutManager>,
    pub workers: Arc<WorkerRegistry>,
    pub tables: Arc<TableRegistry>,
    stop_tx: watch::Sender<bool>,
    tracker: std::sync::OnceLock<Arc<SyncTracker>>,
}

impl Node {
    /// Prepares directories and identity, opens the database and starts the mesh and layout.
    pub async fn start(config: Config) -> Result<Arc<Self>, ServerError> {
        prepare_dir("metadata_dir", &config.metadata_dir)?;
        for dir in config.data_dirs.iter().filter(|d| !d.read_only) {
            prepare_dir("data_dir", &dir.path)?;
        }
        let key = NodeKey::load_or_create(&config.metadata_dir)?;
        info!("Node id: {}", key.id());

        let db = {
            let dir = config.metadata_dir.clone();
            let opts = config.db_options();
            tokio::task::spawn_blocking(move || crate::db::open(&dir, &opts))
                .await
                .map_err(|e| {
                    crate::db::Error::Engine(format!("database open task failed: {e}"))
                })??
        };
        info!(
            "Metadata database ({}) open in {}",
            db.engine_name(),
            config.metadata_dir.display()
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let system = start_mesh(&config, key, stop_rx.clone()).await?;
        let layout = LayoutManager::new(
            system.clone(),
            config.replication_factor,
            config.metadata_dir.join("cluster_layout"),
        )?;
        tokio::spawn(layout.clone().run(stop_rx));
        Ok(Arc::new(Self {
            config,
            db,
            system,
            layout,
            workers: WorkerRegistry::new(),
            tables: TableRegistry::new(),
            stop_tx,
            tracker: std::sync::OnceLock::new(),
        }))
    }

    /// What tables of this node need (the first call makes tables responsible for reporting
    /// sync completion to the layout).
    pub fn table_context(&self) -> TableContext {
        let tracker = self
            .tracker
            .get_or_init(|| SyncTracker::new(self.layout.clone()))
            .clone();
        TableContext {
            db: self.db.clone(),
            system: self.system.clone(),
            layout: self.layout.clone(),
            workers: self.workers.clone(),
            tracker,
            registry: self.tables.clone(),
            config: TableConfig {
                rpc_timeout: Duration::from_millis(self.config.rpc_timeout_msec),
                sync_interval: Duration::from_secs(self.config.table_sync_interval_secs),
                gc_delay: Duration::from_secs(self.config.tombstone_gc_delay_secs),
            },
            consistency: self.config.consistency_mode,
            stop: self.stop_tx.subscribe(),
        }
    }

    /// A receiver of the stop signal.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// Stops the background work and flushes the database.
    pub async fn shutdown(&self) -> Result<(), ServerError> {
        let _ = self.stop_tx.send(true);
        self.system.netapp.shutdown();
        let flush_db = self.db.clone();
        tokio::task::spawn_blocking(move || flush_db.flush())
            .await
            .map_err(|e| crate::db::Error::Engine(format!("flush task failed: {e}")))??;
        Ok(())
    }
}

/// Runs the daemon until a termination signal.
pub async fn run_server(config: Config) -> Result<(), ServerError> {
    // Install the handlers first, so a signal received while starting up is not lost.
    let shutdown = ShutdownSignal::install()?;
    info!("Garage v{} starting", env!("CARGO_PKG_VERSION"));
    let node = Node::start(config).await?;
    let admin = Endpoint::<AdminRpc>::new(node.system.netapp.clone(), paths::ADMIN);
    admin.set_handler(Arc::new(AdminService {
        system: node.system.clone(),
        layout: node.layout.clone(),
        workers: node.workers.clone(),
        tables: node.tables.clone(),
    }));

    shutdown.wait().await;
    info!("Shutting down: flushing the metadata database");
    node.shutdown().await?;
    info!("Garage stopped cleanly");
    Ok(())
}

/// Starts the RPC listener, peering and the system service.
async fn start_mesh(
    config: &Config,
    key: NodeKey,
    stop: watch::Receiver<bool>,
) -> Result<Arc<System>, ServerError> {
    let public_addr = match &config.rpc_public_addr {
        Some(a) => Some(
            a.parse::<SocketAddr>()
                .map_err(|_| ServerError::PublicAddr { value: a.clone() })?,
        ),
        None => None,
    };
    let bind_outgoing = config.rpc_bind_outgoing.then(|| config.rpc_bind_addr.ip());
    let netapp = NetApp::new(key, config.rpc_secret, bind_outgoing);
    let listener = TcpListener::bind(config.rpc_bind_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.rpc_bind_addr,
            source,
        })?;
    info!(
        "RPC listening on {} (rpc_bind_addr){}",
        config.rpc_bind_addr,
        public_addr
            .map(|a| format!(", announced as {} (rpc_public_addr)", a))
            .unwrap_or_default()
    );
    tokio::spawn(netapp.clone().listen(listener, stop.clone()));
    let peering = Peering::new(
        netapp.clone(),
        public_addr,
        config.rpc_bind_addr.port(),
        Some(config.metadata_dir.join("peer_list")),
        Duration::from_millis(config.rpc_ping_timeout_msec),
    );
    tokio::spawn(peering.clone().run(stop.clone()));
    let system = System::new(
        netapp,
        peering,
        public_addr,
        config.metadata_dir.clone(),
        config.data_dirs.first().map(|d| d.path.clone()),
        config.bootstrap_peers.clone(),
    );
    tokio::spawn(system.clone().run(stop));
    Ok(system)
}

/// SIGINT and SIGTERM handlers, installed once at start.
struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> Result<Self, ServerError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate()).map_err(ServerError::Signal)?,
                int: signal(SignalKind::interrupt()).map_err(ServerError::Signal)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on SIGINT or SIGTERM.
    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => info!("Received SIGTERM"),
            _ = self.int.recv() => info!("Received SIGINT"),
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
