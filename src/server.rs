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
use crate::api::s3::S3Api;
use crate::block::local::{LocalStore, LocalStoreConfig};
use crate::block::manager::{BlockConfig, BlockManager};
use crate::block::resync::{run_resync, run_scrub, ScrubControl};
use crate::config::Config;
use crate::db::Db;
use crate::layout::manager::LayoutManager;
use crate::model::helper::ModelHelper;
use crate::model::Model;
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
    #[error("cannot listen on `{what}` {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Block(#[from] crate::block::BlockError),
    #[error(transparent)]
    Table(#[from] crate::table::TableError),
    #[error("single-node setup failed: {0}")]
    SingleNode(String),
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

/// Everything a storage node runs: the node, its block store and the model tables.
pub struct Garage {
    pub node: Arc<Node>,
    pub blocks: Arc<BlockManager>,
    pub model: Arc<Model>,
    pub scrub: Arc<ScrubControl>,
}

impl Garage {
    /// Starts the node, the block store and the tables with their workers, and the admin RPC.
    pub async fn start(config: Config) -> Result<Arc<Self>, ServerError> {
        let node = Node::start(config).await?;
        let config = &node.config;
        let local = LocalStore::open(LocalStoreConfig::from_config(config)).await?;
        for dir in config.data_dirs.iter().filter(|d| !d.read_only) {
            prepare_dir("data_dir", &dir.path)?;
        }
        let blocks = BlockManager::new(
            &node.db,
            local,
            node.layout.clone(),
            BlockConfig {
                compression: config.compression_level,
                replication_factor: config.replication_factor,
                consistency: config.consistency_mode,
                rpc_timeout: Duration::from_millis(config.rpc_timeout_msec),
                gc_delay: Duration::from_secs(config.block_gc_delay_secs),
                ram_buffer_max: usize::try_from(config.block_ram_buffer_max).unwrap_or(usize::MAX),
            },
        )?;
        let ctx = node.table_context();
        let model = Model::new(&ctx, config.replication_factor, blocks.clone())?;
        tokio::spawn(run_resync(
            blocks.clone(),
            node.workers.register("block resync"),
            node.stop_signal(),
        ));
        let scrub = ScrubControl::new(Duration::from_millis(config.scrub_pause_msec));
        tokio::spawn(run_scrub(
            blocks.clone(),
            scrub.clone(),
            node.workers.register("block scrub"),
            node.stop_signal(),
        ));
        tokio::spawn(crate::model::lifecycle_worker::run_lifecycle(
            model.clone(),
            node.layout.clone(),
            node.system.id(),
            config
                .metadata_dir
                .join(crate::model::lifecycle_worker::LAST_PASS_FILE),
            node.workers.register("lifecycle"),
            node.stop_signal(),
        ));
        let garage = Arc::new(Self {
            node: node.clone(),
            blocks,
            model,
            scrub,
        });
        let admin = Endpoint::<AdminRpc>::new(node.system.netapp.clone(), paths::ADMIN);
        admin.set_handler(Arc::new(AdminService {
            system: node.system.clone(),
            layout: node.layout.clone(),
            workers: node.workers.clone(),
            tables: node.tables.clone(),
            model: garage.model.clone(),
            blocks: garage.blocks.clone(),
            scrub: garage.scrub.clone(),
        }));
        Ok(garage)
    }

    /// Starts the S3 API, the website endpoint and the admin HTTP endpoint, when configured.
    pub async fn start_s3(&self) -> Result<(), ServerError> {
        let config = &self.node.config;
        let api = Arc::new(S3Api {
            model: self.model.clone(),
            helper: ModelHelper::new(self.model.clone()),
            blocks: self.blocks.clone(),
            region: config.s3_api.s3_region.clone(),
            root_domain: config.s3_api.root_domain.clone(),
            block_size: usize::try_from(config.block_size).unwrap_or(1 << 20),
        });
        if let Some(addr) = config.s3_api_bind_addr {
            crate::api::s3::start(api.clone(), addr, self.node.stop_signal())
                .await
                .map_err(|source| ServerError::Listen {
                    what: "s3_api.api_bind_addr",
                    addr,
                    source,
                })?;
        }
        if let Some(addr) = config.admin_api_bind_addr {
            let admin = Arc::new(crate::api::admin_http::AdminHttp {
                layout: self.node.layout.clone(),
                tables: self.node.tables.clone(),
                blocks: self.blocks.clone(),
                replication_factor: config.replication_factor,
                consistency: config.consistency_mode,
                s3: api.clone(),
                metrics_token: config.metrics_token.clone(),
                metrics_require_token: config.admin.metrics_require_token,
            });
            crate::api::http::start("Admin API", admin, addr, self.node.stop_signal())
                .await
                .map_err(|source| ServerError::Listen {
                    what: "admin.api_bind_addr",
                    addr,
                    source,
                })?;
        }
        if let (Some(addr), Some(web)) = (config.s3_web_bind_addr, &config.s3_web) {
            let server = Arc::new(crate::web::WebServer {
                api,
                root_domain: web.root_domain.clone(),
                default_index: web.index.clone(),
            });
            crate::web::start(server, addr, self.node.stop_signal())
                .await
                .map_err(|source| ServerError::Listen {
                    what: "s3_web.bind_addr",
                    addr,
                    source,
                })?;
        }
        Ok(())
    }
}

/// Name of the key created by `garage server --single-node`.
pub const SINGLE_NODE_KEY_NAME: &str = "single-node-key";
/// Name of the bucket created by `garage server --single-node`.
pub const SINGLE_NODE_BUCKET: &str = "default";

/// What `--single-node` prepared.
pub struct SingleNodeInfo {
    pub key_id: String,
    pub secret: String,
    pub bucket: String,
}

impl Garage {
    /// Makes a lone node usable: a one-node layout (if none exists), a key and a bucket (created
    /// once, reused afterwards).
    pub async fn bootstrap_single_node(&self) -> Result<SingleNodeInfo, ServerError> {
        let layout = &self.node.layout;
        if layout.read(|h| h.current().version) == 0 {
            let me = self.node.system.id();
            let capacity = self
                .node
                .config
                .data_dirs
                .first()
                .and_then(|d| crate::rpc::system::disk_space(&d.path))
                .map(|d| d.total.max(1 << 30))
                .unwrap_or(1 << 40);
            layout
                .update(|h| {
                    h.staging.roles.update_in_place(
                        me,
                        Some(crate::layout::NodeRole::storage("dc1", capacity)),
                    );
                    h.apply(None).map(|_| ())
                })
                .map_err(|e| ServerError::SingleNode(e.to_string()))?;
            info!("single-node mode: applied a one-node cluster layout");
        }
        let h = ModelHelper::new(self.model.clone());
        let err = |e: crate::model::helper::ModelError| ServerError::SingleNode(e.to_string());
        let key = match h
            .list_keys()
            .await
            .map_err(err)?
            .into_iter()
            .find(|k| k.name() == SINGLE_NODE_KEY_NAME)
        {
            Some(k) => k,
            None => {
                let mut k = h
                    .create_key(SINGLE_NODE_KEY_NAME, None)
                    .await
                    .map_err(err)?;
                if let Some(p) = k.params_mut() {
                    p.allow_create_bucket.update(true);
                }
                self.model
                    .keys
                    .insert(&k)
                    .await
                    .map_err(|e| ServerError::SingleNode(e.to_string()))?;
                k
            }
        };
        let bucket = match h
            .resolve_bucket(SINGLE_NODE_BUCKET, None)
            .await
            .map_err(err)?
        {
            Some(id) if h.get_bucket(&id).await.map_err(err)?.is_some() => id,
            _ => {
                h.create_bucket(SINGLE_NODE_BUCKET, Some(&key))
                    .await
                    .map_err(err)?
                    .id
            }
        };
        if !key.bucket_perm(&bucket).allow_read {
            h.set_permissions(
                &bucket,
                &key.key_id,
                crate::model::bucket::BucketKeyPerm::ALL,
            )
            .await
            .map_err(err)?;
        }
        Ok(SingleNodeInfo {
            key_id: key.key_id.clone(),
            secret: key
                .params()
                .map(|p| p.secret_key.clone())
                .unwrap_or_default(),
            bucket: SINGLE_NODE_BUCKET.to_string(),
        })
    }
}

/// Runs the daemon until a termination signal. With `single_node`, also makes the node usable
/// on its own and prints how to reach it.
pub async fn run_server(config: Config, single_node: bool) -> Result<(), ServerError> {
    // Install the handlers first, so a signal received while starting up is not lost.
    let shutdown = ShutdownSignal::install()?;
    info!("Garage v{} starting", env!("CARGO_PKG_VERSION"));
    let garage = Garage::start(config).await?;
    garage.start_s3().await?;
    let node = garage.node.clone();
    if single_node {
        let info = garage.bootstrap_single_node().await?;
        let endpoint = node
            .config
            .s3_api_bind_addr
            .map(|a| format!("http://{a}"))
            .unwrap_or_else(|| "(no [s3_api] api_bind_addr configured)".into());
        let region = &node.config.s3_api.s3_region;
        println!(
            "\nGarage is ready (single node).\n  S3 endpoint:   {endpoint}\n  Region:        {region}\n  Access key id: {}\n  Secret key:    {}\n  Bucket:        {}\n\nManage it with `garage status`, `garage bucket list`, `garage key list`… (from this directory, or with -c CONFIG).\n\nTry it:\n  AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={region} aws --endpoint-url {endpoint} s3 ls s3://{}\n",
            info.key_id, info.secret, info.bucket, info.key_id, info.secret, info.bucket
        );
    }

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
