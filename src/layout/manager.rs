//! The layout manager of a node: holds the [`LayoutHistory`], persists it, and gossips it. Every
//! node announces a digest of its history in its status (carried by pings); a node that sees a
//! peer with another digest pulls that peer's history and merges it, and a local change is pushed
//! to every connected node at once. So staged changes from any node are all kept, and a node that
//! was down catches up as soon as it reconnects.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::history::LayoutHistory;
use crate::net::frame::Priority;
use crate::rpc::endpoint::{CallOpts, Endpoint, Handler, Rpc};
use crate::rpc::paths;
use crate::rpc::system::System;
use crate::util::crdt::Crdt;
use crate::util::encode::Migrate;
use crate::util::ids::NodeId;

/// How often peers' layout digests are compared with ours.
const GOSSIP_CHECK: Duration = Duration::from_secs(1);
/// Least time between two pulls from the same peer.
const PULL_INTERVAL: Duration = Duration::from_secs(5);
/// Timeout of layout exchanges.
const LAYOUT_RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Layout exchange between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub enum LayoutRpc {
    /// Send me your layout history.
    Pull,
    /// Here is mine: merge it.
    Push(Box<LayoutHistory>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum LayoutRpcResponse {
    History(Box<LayoutHistory>),
    Ok,
}

impl Rpc for LayoutRpc {
    type Response = LayoutRpcResponse;
}

/// Why the layout could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LayoutLoadError {
    #[error("cannot read cluster layout {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the cluster layout in {path} uses replication factor {stored}, but the configuration says {configured}; all nodes must use the same replication_factor (changing it on an existing cluster is not supported)")]
    ReplicationFactor {
        path: PathBuf,
        stored: usize,
        configured: usize,
    },
}

/// The layout manager.
pub struct LayoutManager {
    pub system: Arc<System>,
    history: RwLock<LayoutHistory>,
    path: PathBuf,
    endpoint: Endpoint<LayoutRpc>,
    changes: watch::Sender<u64>,
    last_pull: Mutex<HashMap<NodeId, Instant>>,
    /// Whether some component (the tables) reports sync completion; otherwise a node counts as
    /// synced as soon as it knows a version.
    sync_reported_by_tables: std::sync::atomic::AtomicBool,
    /// Serialises [`Self::persist`], so that the file ends with the newest history.
    persist_lock: Mutex<()>,
}

impl LayoutManager {
    /// Loads the persisted layout (or starts empty) and registers the layout endpoint.
    pub fn new(
        system: Arc<System>,
        replication_factor: usize,
        path: PathBuf,
    ) -> Result<Arc<Self>, LayoutLoadError> {
        let mut history = match std::fs::read(&path) {
            Ok(bytes) => LayoutHistory::decode(&bytes).map_err(|e| LayoutLoadError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                LayoutHistory::new(replication_factor)
            }
            Err(e) => {
                return Err(LayoutLoadError::Read {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        let stored = history.current().params.replication_factor;
        if history.current().version == 0 && stored != replication_factor {
            // No layout was ever applied (the file only holds the empty version 0, saved at the
            // first start, and maybe staged roles): the configuration decides. Keeping the stored
            // factor would make `apply` use it, and the next start refuse the configuration.
            if let Some(v0) = history.versions.last_mut() {
                v0.params.replication_factor = replication_factor;
            }
        } else if stored != replication_factor {
            return Err(LayoutLoadError::ReplicationFactor {
                path,
                stored,
                configured: replication_factor,
            });
        }
        let (changes, _) = watch::channel(history.current().version);
        let endpoint = Endpoint::new(system.netapp.clone(), paths::LAYOUT);
        let this = Arc::new(Self {
            system,
            history: RwLock::new(history),
            path,
            endpoint,
            changes,
            last_pull: Mutex::new(HashMap::new()),
            sync_reported_by_tables: Default::default(),
            persist_lock: Mutex::new(()),
        });
        this.endpoint.set_handler(this.clone());
        this.after_change(false);
        Ok(this)
    }

    /// Reads the history.
    pub fn read<R>(&self, f: impl FnOnce(&LayoutHistory) -> R) -> R {
        match self.history.read() {
            Ok(h) => f(&h),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// A copy of the history.
    pub fn history(&self) -> LayoutHistory {
        self.read(|h| h.clone())
    }

    /// Notified with the current version whenever the layout changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Tables call this at start: from then on they report sync completion themselves.
    pub fn sync_reported_by_tables(&self) {
        self.sync_reported_by_tables
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Changes the history locally, then persists and pushes it to every node.
    pub fn update<R, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut LayoutHistory) -> Result<R, E>,
    ) -> Result<R, E> {
        let r = {
            let mut h = match self.history.write() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            f(&mut h)?
        };
        self.after_change(true);
        Ok(r)
    }

    /// Records that this node holds all data of `version`.
    pub fn mark_synced(self: &Arc<Self>, version: u64) {
        let me = self.system.id();
        let _ = self.update(|h| -> Result<(), ()> {
            h.mark_synced(me, version);
            Ok(())
        });
    }

    /// Merges a history received from another node; returns whether ours changed.
    fn merge_remote(self: &Arc<Self>, other: &LayoutHistory) -> bool {
        let changed = {
            let mut h = match self.history.write() {
                Ok(h) => h,
                Err(p) => p.into_inner(),
            };
            let before = h.digest();
            h.merge(other);
            h.digest() != before
        };
        if changed {
            self.after_change(false);
        }
        changed
    }

    /// Persists, announces, and (if `push`) sends the history to every connected node.
    fn after_change(self: &Arc<Self>, push: bool) {
        let me = self.system.id();
        let tables = self
            .sync_reported_by_tables
            .load(std::sync::atomic::Ordering::SeqCst);
        let (version, synced, digest, zones) = self.read(|h| {
            let cur = h.current();
            let zones = cur
                .roles
                .iter()
                .map(|(id, r)| (*id, r.zone.clone()))
                .collect::<HashMap<_, _>>();
            (
                cur.version,
                h.sync.get(&me).copied().unwrap_or(0),
                h.digest(),
                zones,
            )
        });
        if !tables && synced < version {
            // Nothing to sync yet: this node is immediately up to date.
            if let Ok(mut h) = self.history.write() {
                h.mark_synced(me, version);
            }
        }
        let (version, digest) = if !tables && synced < version {
            self.read(|h| (h.current().version, h.digest()))
        } else {
            (version, digest)
        };
        self.persist();
        self.system.order.set_zones(zones);
        self.system.update_status(|s| {
            s.layout_version = version;
            s.layout_digest = Some(digest);
        });
        if *self.changes.borrow() != version {
            info!("cluster layout is now at version {}", version);
        }
        self.changes.send_replace(version);
        if push {
            self.push_to_all();
        }
    }

    fn persist(&self) {
        // Encoded under the lock: concurrent changes are written in order, newest last.
        let _guard = match self.persist_lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let bytes = match self.read(|h| h.encode()) {
            Ok(b) => b,
            Err(e) => {
                warn!("cannot encode cluster layout: {}", e);
                return;
            }
        };
        if let Err(e) = crate::util::file::write_atomic(&self.path, &bytes, None) {
            warn!(
                "cannot save cluster layout to {}: {}",
                self.path.display(),
                e
            );
        }
    }

    fn push_to_all(self: &Arc<Self>) {
        let history = Box::new(self.history());
        for node in self.system.known_nodes() {
            if node.is_local || !node.is_up {
                continue;
            }
            let this = self.clone();
            let msg = LayoutRpc::Push(history.clone());
            tokio::spawn(async move {
                let opts = CallOpts::new(Priority::High, LAYOUT_RPC_TIMEOUT);
                if let Err(e) = this.endpoint.call(node.id, &msg, opts).await {
                    warn!("cannot send the layout to {:?}: {}", node.id, e);
                }
            });
        }
    }

    async fn pull_from(self: Arc<Self>, peer: NodeId) {
        let opts = CallOpts::new(Priority::High, LAYOUT_RPC_TIMEOUT);
        match self.endpoint.call(peer, &LayoutRpc::Pull, opts).await {
            Ok(LayoutRpcResponse::History(h)) => {
                if self.merge_remote(&h) {
                    info!("merged the cluster layout of {:?}", peer);
                }
            }
            Ok(other) => warn!("unexpected layout answer from {:?}: {:?}", peer, other),
            Err(e) => warn!("cannot pull the layout from {:?}: {}", peer, e),
        }
    }

    /// Compares digests with peers and pulls differing histories, until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(GOSSIP_CHECK);
        loop {
            tokio::select! {
                _ = tick.tick() => (),
                _ = shutdown.changed() => break,
            }
            let ours = self.read(|h| h.digest());
            for node in self.system.known_nodes() {
                if node.is_local || !node.is_up {
                    continue;
                }
                let theirs = node.status.as_ref().and_then(|s| s.layout_digest);
                if theirs.is_none() || theirs == Some(ours) {
                    continue;
                }
                let due = match self.last_pull.lock() {
                    Ok(mut m) => {
                        let due = m.get(&node.id).is_none_or(|t| t.elapsed() >= PULL_INTERVAL);
                        if due {
                            m.insert(node.id, Instant::now());
                        }
                        due
                    }
                    Err(_) => false,
                };
                if due {
                    tokio::spawn(self.clone().pull_from(node.id));
                }
            }
        }
    }
}

impl Handler<LayoutRpc> for LayoutManager {
    async fn handle(
        self: Arc<Self>,
        msg: LayoutRpc,
        _from: NodeId,
    ) -> Result<LayoutRpcResponse, String> {
        Ok(match msg {
            LayoutRpc::Pull => LayoutRpcResponse::History(Box::new(self.history())),
            LayoutRpc::Push(h) => {
                self.merge_remote(&h);
                LayoutRpcResponse::Ok
            }
        })
    }
}
