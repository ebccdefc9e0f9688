//! The block manager: puts blocks to their replicas (write quorum), gets them from the closest
//! replica with hedged fallback to the others, answers other nodes' block requests, and owns
//! the reference counts and the resync queue (see `rc.rs` and `resync.rs`).
//!
//! Blocks travel as the payload of the `garage/block` endpoint in their stored encoding
//! (compressed or plain); the receiver verifies the hash before writing, the reader verifies it
//! after reading. Memory for blocks in flight is bounded by `block_ram_buffer_max`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tracing::debug;

use super::data_block::DataBlock;
use super::error::BlockError;
use super::local::LocalStore;
use super::rc::{self, RcEntry};
use crate::config::CompressionLevel;
use crate::config::ConsistencyMode;
use crate::db::{Db, Transaction, Tree, TxOpResult};
use crate::layout::manager::LayoutManager;
use crate::net::frame::Priority;
use crate::rpc::endpoint::{CallOpts, Endpoint, Handler, Rpc};
use crate::rpc::paths;
use crate::rpc::quorum::call_write_sets;
use crate::rpc::system::System;
use crate::table::replication::quorums;
use crate::util::ids::{Hash, NodeId};

/// Delay before a second replica is asked when the first has not answered.
const HEDGE_DELAY: Duration = Duration::from_millis(800);
/// Delay before checking a newly referenced block (its upload is usually still in flight).
const NEW_REF_CHECK_DELAY_MS: u64 = 10_000;
/// Stripes of the per-block locks that order writes and deletions of the same block.
const LOCK_STRIPES: usize = 256;

/// Block requests between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub enum BlockRpc {
    /// Store this block (stored encoding).
    Put {
        hash: Hash,
        compressed: bool,
        data: serde_bytes::ByteBuf,
    },
    /// Send me this block.
    Get { hash: Hash },
    /// Do you need this block (referenced here but missing)?
    NeedBlock { hash: Hash },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum BlockResponse {
    Ok,
    Block {
        compressed: bool,
        data: serde_bytes::ByteBuf,
    },
    Need(bool),
}

impl Rpc for BlockRpc {
    type Response = BlockResponse;
}

/// Block manager settings.
#[derive(Clone, Copy, Debug)]
pub struct BlockConfig {
    pub compression: CompressionLevel,
    pub replication_factor: usize,
    pub consistency: ConsistencyMode,
    pub rpc_timeout: Duration,
    /// Delay before an unreferenced block is deleted.
    pub gc_delay: Duration,
    pub ram_buffer_max: usize,
}

/// The block manager of a node.
pub struct BlockManager {
    pub local: LocalStore,
    pub layout: Arc<LayoutManager>,
    pub system: Arc<System>,
    pub config: BlockConfig,
    pub(crate) endpoint: Endpoint<BlockRpc>,
    pub rc: Tree,
    pub resync_queue: Tree,
    pub resync_errors: Tree,
    pub(crate) resync_notify: Notify,
    buffer: Semaphore,
    /// Held while a block is written by a Put or deleted as unreferenced, so that a write
    /// (which postpones deletion) and a deletion (which re-checks under the lock) never
    /// interleave.
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl BlockManager {
    pub fn new(
        db: &Db,
        local: LocalStore,
        layout: Arc<LayoutManager>,
        config: BlockConfig,
    ) -> Result<Arc<Self>, BlockError> {
        let open = |name: &str| {
            db.open_tree(name).map_err(|e| BlockError::Db {
                message: e.to_string(),
            })
        };
        let system = layout.system.clone();
        let endpoint = Endpoint::new(system.netapp.clone(), paths::BLOCK);
        let this = Arc::new(Self {
            local,
            system,
            layout,
            config,
            endpoint,
            rc: open("block_local_rc")?,
            resync_queue: open("block_resync_queue")?,
            resync_errors: open("block_resync_errors")?,
            resync_notify: Notify::new(),
            buffer: Semaphore::new(config.ram_buffer_max.max(1 << 20)),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        });
        this.endpoint.set_handler(this.clone());
        Ok(this)
    }

    /// The write/delete lock of a block.
    pub(crate) async fn lock(&self, hash: &Hash) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks[usize::from(hash.0[3]) % LOCK_STRIPES]
            .lock()
            .await
    }

    /// Restarts the deletion delay of a block that is written while unreferenced (see
    /// [`rc::touch`]); returns when it becomes deletable (0 if referenced).
    pub(crate) fn touch_rc(&self, hash: &Hash) -> Result<u64, BlockError> {
        let delay = self.config.gc_delay.as_millis() as u64;
        self.rc
            .db()
            .transaction(|tx| {
                Ok::<_, crate::db::TxError<()>>(rc::touch(
                    tx,
                    &self.rc,
                    &self.resync_queue,
                    hash,
                    delay,
                )?)
            })
            .map_err(tx_err)
    }

    fn opts(&self, prio: Priority) -> CallOpts {
        CallOpts::new(prio, self.config.rpc_timeout)
    }

    /// Reserves memory for `len` bytes of blocks in flight.
    async fn reserve(&self, len: usize) -> Result<tokio::sync::SemaphorePermit<'_>, BlockError> {
        let n = u32::try_from(len.min(self.config.ram_buffer_max.max(1 << 20))).unwrap_or(u32::MAX);
        self.buffer
            .acquire_many(n)
            .await
            .map_err(|_| BlockError::Db {
                message: "block buffer closed".into(),
            })
    }

    /// Compresses and stores a block on its replicas (write quorum).
    pub async fn put_block(
        &self,
        hash: Hash,
        data: Bytes,
        prio: Priority,
    ) -> Result<(), BlockError> {
        let _permit = self.reserve(data.len()).await?;
        let level = self.config.compression;
        let block = tokio::task::spawn_blocking(move || DataBlock::from_plain(data, level))
            .await
            .map_err(|source| BlockError::Task { source })?;
        let sets = self.layout.read(|h| h.write_sets(&hash));
        if sets.iter().all(|s| s.is_empty()) {
            return Err(BlockError::NoLayout);
        }
        let msg = BlockRpc::Put {
            hash,
            compressed: block.is_compressed(),
            data: serde_bytes::ByteBuf::from(block.inner_bytes().to_vec()),
        };
        let (_, w) = quorums(self.config.replication_factor, self.config.consistency);
        call_write_sets(&self.endpoint, &sets, |n| w.min(n), &msg, self.opts(prio))
            .await
            .map_err(|e| BlockError::Rpc {
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// Nodes that may hold `hash`, closest first.
    pub fn holders(&self, hash: &Hash) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self
            .layout
            .read(|h| h.partition_nodes_all_versions(hash.0[0]))
            .into_iter()
            .collect();
        self.system.order.sort(&mut nodes);
        nodes
    }

    /// Fetches a block from `nodes` (in order, hedging after a delay); verifies it.
    async fn fetch_from(
        &self,
        hash: &Hash,
        nodes: &[NodeId],
        prio: Priority,
    ) -> Result<Bytes, BlockError> {
        let mut remaining = nodes.iter().copied();
        let mut in_flight = FuturesUnordered::new();
        let call = |node: NodeId| async move {
            let r = self
                .endpoint
                .call(node, &BlockRpc::Get { hash: *hash }, self.opts(prio))
                .await;
            (node, r)
        };
        let mut errors = vec![];
        if let Some(n) = remaining.next() {
            in_flight.push(call(n));
        }
        loop {
            if in_flight.is_empty() {
                return Err(BlockError::Unavailable {
                    hash: *hash,
                    errors: errors.join("; "),
                });
            }
            let next = tokio::select! {
                r = in_flight.next() => r,
                _ = tokio::time::sleep(HEDGE_DELAY) => {
                    if let Some(n) = remaining.next() {
                        in_flight.push(call(n));
                    }
                    continue;
                }
            };
            let Some((node, res)) = next else { continue };
            match res {
                Ok(BlockResponse::Block { compressed, data }) => {
                    let block = if compressed {
                        DataBlock::Compressed(Bytes::from(data.into_vec()))
                    } else {
                        DataBlock::Plain(Bytes::from(data.into_vec()))
                    };
                    let max = self.local.max_plain_len();
                    let h = *hash;
                    match tokio::task::spawn_blocking(move || block.verify_bounded(&h, max)).await {
                        Ok(Ok(plain)) => return Ok(plain),
                        Ok(Err(e)) => errors.push(format!("{}: {}", node.short(), e)),
                        Err(e) => errors.push(format!("{}: {}", node.short(), e)),
                    }
                }
                Ok(other) => {
                    errors.push(format!("{}: unexpected answer {:?}", node.short(), other))
                }
                Err(e) => errors.push(format!("{}: {}", node.short(), e)),
            }
            if let Some(n) = remaining.next() {
                in_flight.push(call(n));
            }
        }
    }

    /// Reads a block (plaintext) from the closest replica that has it.
    pub async fn get_block(&self, hash: &Hash, prio: Priority) -> Result<Bytes, BlockError> {
        let nodes = self.holders(hash);
        if nodes.is_empty() {
            return Err(BlockError::NoLayout);
        }
        let _permit = self.reserve(1 << 20).await?;
        self.fetch_from(hash, &nodes, prio).await
    }

    /// Fetches a block from the other nodes and stores it locally.
    pub(crate) async fn fetch_and_store(&self, hash: &Hash) -> Result<(), BlockError> {
        let me = self.system.id();
        let nodes: Vec<NodeId> = self
            .holders(hash)
            .into_iter()
            .filter(|n| *n != me)
            .collect();
        let plain = self.fetch_from(hash, &nodes, Priority::Background).await?;
        let level = self.config.compression;
        let block = tokio::task::spawn_blocking(move || DataBlock::from_plain(plain, level))
            .await
            .map_err(|source| BlockError::Task { source })?;
        self.local.write_block(hash, &block).await
    }

    /// The local reference count of a block.
    pub fn rc_entry(&self, hash: &Hash) -> Result<RcEntry, BlockError> {
        Ok(self
            .rc
            .get(&hash.0)
            .map_err(|e| BlockError::Db {
                message: e.to_string(),
            })?
            .map(|v| RcEntry::decode(&v))
            .unwrap_or_default())
    }

    /// Increments the count of a block (inside the block_ref table's transaction).
    pub fn incref(&self, tx: &mut Transaction<'_>, hash: &Hash) -> TxOpResult<()> {
        rc::incref(
            tx,
            &self.rc,
            &self.resync_queue,
            hash,
            NEW_REF_CHECK_DELAY_MS,
        )?;
        self.resync_notify.notify_one();
        Ok(())
    }

    /// Decrements the count of a block (inside the block_ref table's transaction).
    pub fn decref(&self, tx: &mut Transaction<'_>, hash: &Hash) -> TxOpResult<()> {
        rc::decref(
            tx,
            &self.rc,
            &self.resync_queue,
            hash,
            self.config.gc_delay.as_millis() as u64,
        )?;
        self.resync_notify.notify_one();
        Ok(())
    }

    async fn handle_rpc(&self, msg: BlockRpc) -> Result<BlockResponse, String> {
        match msg {
            BlockRpc::Put {
                hash,
                compressed,
                data,
            } => {
                // No reservation here: the data is already in memory, and the sender holds a
                // reservation for it until this answer. Reserving again would make a node wait
                // on itself (or two nodes on each other) once callers hold the whole buffer.
                let block = if compressed {
                    DataBlock::Compressed(Bytes::from(data.into_vec()))
                } else {
                    DataBlock::Plain(Bytes::from(data.into_vec()))
                };
                let max = self.local.max_plain_len();
                let b2 = block.clone();
                tokio::task::spawn_blocking(move || b2.verify_bounded(&hash, max).map(|_| ()))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                // Its reference is recorded after the block is stored: until then (and for a
                // block referenced no more, uploaded again) it must not be deleted.
                let _lock = self.lock(&hash).await;
                self.touch_rc(&hash).map_err(|e| e.to_string())?;
                self.local
                    .write_block(&hash, &block)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(BlockResponse::Ok)
            }
            BlockRpc::Get { hash } => match self.local.read_block(&hash).await {
                Ok(block) => Ok(BlockResponse::Block {
                    compressed: block.is_compressed(),
                    data: serde_bytes::ByteBuf::from(block.inner_bytes().to_vec()),
                }),
                Err(e) => {
                    if matches!(e, BlockError::Corrupted { .. }) {
                        // Moved aside by the store: fetch a good copy soon.
                        self.queue_resync_now(&hash);
                    }
                    debug!("block {:?} not served: {}", hash, e);
                    Err(e.to_string())
                }
            },
            BlockRpc::NeedBlock { hash } => {
                let rc = self.rc_entry(&hash).map_err(|e| e.to_string())?;
                let has = self
                    .local
                    .has_block(&hash)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(BlockResponse::Need(rc.count > 0 && has.is_none()))
            }
        }
    }

    /// Schedules a resync check of `hash` now.
    pub fn queue_resync_now(&self, hash: &Hash) {
        let key = rc::resync_key(crate::util::time::now_msec(), hash);
        if self.resync_queue.insert(&key, &[]).is_ok() {
            self.resync_notify.notify_one();
        }
    }
}

/// A failed transaction of the block manager (which never aborts its own transactions).
pub(crate) fn tx_err(e: crate::db::TxError<()>) -> BlockError {
    BlockError::Db {
        message: match e {
            crate::db::TxError::Db(e) => e.to_string(),
            crate::db::TxError::Abort(()) => "transaction aborted".into(),
        },
    }
}

impl Handler<BlockRpc> for BlockManager {
    async fn handle(
        self: Arc<Self>,
        msg: BlockRpc,
        _from: NodeId,
    ) -> Result<BlockResponse, String> {
        self.handle_rpc(msg).await
    }
}
