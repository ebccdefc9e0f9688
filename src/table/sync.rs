//! Anti-entropy: each node periodically (every `sync_interval`), right after a layout change, on
//! `garage repair tables` and when a peer reconnects, compares its Merkle trie with every other
//! holder of each partition it has data for, descends where they differ (all differing nodes of
//! a level in one request), and pushes the entries the other side lacks or has older. Entries
//! of partitions this node no longer holds are pushed to their holders, then deleted here
//! (offload). A complete round for layout version `v` is reported to the [`SyncTracker`], which
//! tells the layout when every table of this node is synced.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_bytes::ByteBuf;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::core::TableCore;
use super::merkle::{NodeKey, NodeSummary, MAX_DEPTH};
use super::rpc::{TableResponse, TableRpc};
use super::TableError;
use crate::layout::manager::LayoutManager;
use crate::net::frame::Priority;
use crate::net::netapp::ConnEvent;
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::ids::{Hash, NodeId};

/// Node keys sent per request.
const KEYS_PER_REQUEST: usize = 256;
/// Entries pushed per request.
const ITEMS_PER_PUSH: usize = 128;

/// Collects per-table sync completion and tells the layout when all tables of this node are
/// synced for a version.
pub struct SyncTracker {
    layout: Arc<LayoutManager>,
    tables: Mutex<BTreeMap<&'static str, u64>>,
}

impl SyncTracker {
    pub fn new(layout: Arc<LayoutManager>) -> Arc<Self> {
        layout.sync_reported_by_tables();
        Arc::new(Self {
            layout,
            tables: Mutex::new(BTreeMap::new()),
        })
    }

    /// Declares a table that will report.
    pub fn register(&self, table: &'static str) {
        if let Ok(mut t) = self.tables.lock() {
            t.entry(table).or_insert(0);
        }
    }

    /// `table` finished a full sync round for `version`.
    pub fn report(&self, table: &'static str, version: u64) {
        let min = match self.tables.lock() {
            Ok(mut t) => {
                let v = t.entry(table).or_insert(0);
                *v = (*v).max(version);
                t.values().copied().min().unwrap_or(0)
            }
            Err(_) => return,
        };
        if min
            > self
                .layout
                .read(|h| h.sync.get(&self.layout.system.id()).copied().unwrap_or(0))
        {
            self.layout.mark_synced(min);
        }
    }
}

/// Triggers of a table's sync worker.
#[derive(Default)]
pub struct SyncTrigger {
    pub now: Notify,
}

impl TableCore {
    async fn call_sync(&self, peer: NodeId, msg: TableRpc) -> Result<TableResponse, TableError> {
        Ok(self
            .endpoint
            .call(peer, &msg, self.opts(Priority::Background))
            .await?)
    }

    /// Brings the local Merkle trie up to date.
    async fn flush_merkle(&self) -> Result<(), TableError> {
        loop {
            let d = self.data.clone();
            let n = tokio::task::spawn_blocking(move || d.merkle_update_batch(1000))
                .await
                .map_err(|e| TableError::Db {
                    table: self.name(),
                    message: e.to_string(),
                })??;
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Pushes to `peer` every entry of `partitions` that it lacks or has in another version.
    /// Returns the number of entries pushed.
    pub async fn sync_with(&self, peer: NodeId, partitions: &[u8]) -> Result<usize, TableError> {
        // Level 0: roots.
        let roots: Vec<NodeKey> = partitions.iter().map(|p| NodeKey::root(*p)).collect();
        let mut differing: Vec<NodeKey> = vec![];
        for chunk in roots.chunks(KEYS_PER_REQUEST) {
            let TableResponse::Nodes(theirs) = self
                .call_sync(peer, TableRpc::MerkleNodes(chunk.to_vec()))
                .await?
            else {
                return Err(TableError::Protocol {
                    table: self.name(),
                    peer,
                });
            };
            for (k, t) in chunk.iter().zip(theirs) {
                let ours = self.data.merkle_node(k)?;
                if ours.count > 0 && ours != t {
                    differing.push(k.clone());
                }
            }
        }
        // Inner levels: compare children.
        for _depth in 0..MAX_DEPTH {
            let mut next = vec![];
            for chunk in differing.chunks(KEYS_PER_REQUEST) {
                let TableResponse::Children(theirs) = self
                    .call_sync(peer, TableRpc::MerkleChildren(chunk.to_vec()))
                    .await?
                else {
                    return Err(TableError::Protocol {
                        table: self.name(),
                        peer,
                    });
                };
                for (k, t) in chunk.iter().zip(theirs) {
                    let t: HashMap<u8, NodeSummary> = t.into_iter().collect();
                    for (b, ours) in self.data.merkle_children(k)? {
                        if t.get(&b) != Some(&ours) {
                            next.push(k.child(b));
                        }
                    }
                }
            }
            differing = next;
        }
        // Leaves.
        let mut to_push: Vec<Vec<u8>> = vec![];
        for chunk in differing.chunks(KEYS_PER_REQUEST) {
            let TableResponse::Leaves(theirs) = self
                .call_sync(peer, TableRpc::MerkleLeaves(chunk.to_vec()))
                .await?
            else {
                return Err(TableError::Protocol {
                    table: self.name(),
                    peer,
                });
            };
            for (k, t) in chunk.iter().zip(theirs) {
                let t: HashMap<Hash, Hash> = t.into_iter().collect();
                for (kh, lh, tree_key) in self.data.merkle_leaves_under(k)? {
                    if t.get(&kh) != Some(&lh) {
                        to_push.push(tree_key);
                    }
                }
            }
        }
        let mut pushed = 0;
        for keys in to_push.chunks(ITEMS_PER_PUSH) {
            let mut items = vec![];
            for k in keys {
                if let Some(v) = self.data.read_entry(k)? {
                    items.push(ByteBuf::from(v));
                }
            }
            pushed += items.len();
            if !items.is_empty() {
                self.call_sync(peer, TableRpc::Update(items)).await?;
            }
        }
        Ok(pushed)
    }

    /// One full anti-entropy round. Returns the layout version it covered if it completed.
    pub async fn sync_round(&self, worker: &WorkerHandle) -> Result<u64, TableError> {
        let version = self.replication.layout_version();
        let me = self.system.id();
        self.flush_merkle().await?;
        let mut per_peer: BTreeMap<NodeId, Vec<u8>> = BTreeMap::new();
        let mut offload: BTreeSet<u8> = BTreeSet::new();
        for p in 0..=255u8 {
            let holders = self.replication.holders(p);
            if holders.is_empty() {
                continue;
            }
            let i_hold = holders.contains(&me);
            if !i_hold {
                if self.data.merkle_node(&NodeKey::root(p))?.count == 0 {
                    continue;
                }
                offload.insert(p);
            }
            for h in holders.into_iter().filter(|h| *h != me) {
                per_peer.entry(h).or_default().push(p);
            }
        }
        let mut failed: BTreeSet<NodeId> = BTreeSet::new();
        let mut last_err = None;
        let up: BTreeSet<NodeId> = self
            .system
            .known_nodes()
            .into_iter()
            .filter(|n| n.is_up)
            .map(|n| n.id)
            .collect();
        for (peer, partitions) in &per_peer {
            if !up.contains(peer) && self.replication.synced_version(peer) >= version {
                // Written off by `garage layout skip-dead-nodes`: the round completes without it.
                debug!(
                    "{}: skipping {:?}, down and marked synced",
                    self.name(),
                    peer
                );
                failed.insert(*peer);
                continue;
            }
            worker.set_progress(Some(format!("syncing with {}", peer.short())));
            match self.sync_with(*peer, partitions).await {
                Ok(n) if n > 0 => info!("{}: sent {} entries to {:?}", self.name(), n, peer),
                Ok(_) => (),
                Err(e) => {
                    debug!("{}: sync with {:?} failed: {}", self.name(), peer, e);
                    failed.insert(*peer);
                    last_err = Some(e);
                }
            }
        }
        for p in offload {
            let holders = self.replication.holders(p);
            if holders.iter().any(|h| failed.contains(h)) {
                continue;
            }
            let d = self.data.clone();
            let dropped = tokio::task::spawn_blocking(move || d.drop_partition(p))
                .await
                .map_err(|e| TableError::Db {
                    table: self.name(),
                    message: e.to_string(),
                })??;
            if dropped > 0 {
                info!(
                    "{}: offloaded {} entries of partition {}",
                    self.name(),
                    dropped,
                    p
                );
            }
        }
        worker.set_progress(None);
        match last_err {
            Some(e) => Err(e),
            None => Ok(version),
        }
    }
}

/// The sync worker of one table, until shutdown.
pub async fn run_sync(
    core: Arc<TableCore>,
    tracker: Arc<SyncTracker>,
    trigger: Arc<SyncTrigger>,
    mut layout_changes: watch::Receiver<u64>,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    let mut events = core.system.netapp.subscribe();
    let mut retry = Duration::from_secs(1);
    loop {
        worker.set_state(WorkerState::Busy);
        let wait = match core.sync_round(&worker).await {
            Ok(v) => {
                worker.ok();
                tracker.report(core.name(), v);
                retry = Duration::from_secs(1);
                core.config.sync_interval
            }
            Err(e) => {
                warn!("{}: anti-entropy round incomplete: {}", core.name(), e);
                worker.error(e.to_string());
                let r = retry;
                retry = (retry * 2).min(Duration::from_secs(60));
                r
            }
        };
        worker.set_state(WorkerState::Idle);
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = trigger.now.notified() => break,
                r = layout_changes.changed() => {
                    if r.is_err() { return; }
                    break;
                }
                ev = events.recv() => {
                    if let Ok(ConnEvent::Connected { .. }) = ev {
                        // A peer came back: give it what it missed soon.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
                _ = stop.changed() => return,
            }
        }
    }
}
