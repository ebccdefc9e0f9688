//! `garage server`: prepares the node's directories and identity, opens the metadata database,
//! starts every component, and runs until SIGINT or SIGTERM, then stops cleanly (databases
//! flushed).

use std::path::{Path, PathBuf};

use tracing::info;

use crate::config::Config;
use crate::net::node_key::{NodeKey, NodeKeyError};

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

/// Runs the daemon until a termination signal.
pub async fn run_server(config: Config) -> Result<(), ServerError> {
    // Install the handlers first, so a signal received while starting up is not lost.
    let shutdown = ShutdownSignal::install()?;
    info!("Garage v{} starting", env!("CARGO_PKG_VERSION"));
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
            .map_err(|e| crate::db::Error::Engine(format!("database open task failed: {e}")))??
    };
    info!(
        "Metadata database ({}) open in {}",
        db.engine_name(),
        config.metadata_dir.display()
    );
    info!("RPC address (rpc_bind_addr): {}", config.rpc_bind_addr);
    if let Some(a) = &config.rpc_public_addr {
        info!("Public RPC address (rpc_public_addr): {}", a);
    }

    shutdown.wait().await;
    info!("Shutting down: flushing the metadata database");
    let flush_db = db.clone();
    tokio::task::spawn_blocking(move || flush_db.flush())
        .await
        .map_err(|e| crate::db::Error::Engine(format!("flush task failed: {e}")))??;
    info!("Garage stopped cleanly");
    Ok(())
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
