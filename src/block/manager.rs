//! The block manager: puts blocks to their replicas (write quorum), gets them from the closest
//! replica with hedged fallback to the others, answers other nodes' block requests, and owns
//! the reference counts and the resync queue (see `rc.rs` and `resync.rs`).
//!
//! Blocks travel as the streamed body of `garage/block` requests and answers, in their stored
//! encoding (compressed or plain): one buffer shared by every replica's request, never copied on
//! this node (a local replica receives the very same buffer). The receiver verifies the hash
//! before writing, the reader after reading; blocks on this node are read from disk directly.
//! Memory for blocks in flight is bounded node-wide by `block_ram_buffer_max` (see
//! [`BlockManager::reserve_buffer`]; the S3 layer reserves before it reads a block's bytes).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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
use crate::net::ByteStream;
use crate::rpc::endpoint::{CallOpts, Endpoint, Rpc, StreamHandler};
use crate::rpc::paths;
use crate::rpc::quorum::{call_write_sets_with_body, single_chunk_stream};
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
    /// Store this block; its stored encoding is the request body.
    Put { hash: Hash, compressed: bool },
    /// Send me this block.
    Get { hash: Hash },
    /// Do you need this block (referenced here but missing)?
    NeedBlock { hash: Hash },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum BlockResponse {
    Ok,
    /// The block; its stored encoding is the answer's body.
    Block {
        compressed: bool,
    },
    Need(bool),
}

/// A memory reservation for block bytes in flight (released when dropped).
pub struct BufferPermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// Collects a block body, refusing more than `max` bytes. A body of one chunk (as sent by this
/// node to itself) is returned without copying.
async fn collect_block(body: Option<ByteStream>, max: usize) -> Result<Bytes, String> {
    let Some(mut body) = body else {
        return Err("block body missing".into());
    };
    let Some(first) = body.next().await.transpose()? else {
        return Ok(Bytes::new());
    };
    let Some(second) = body.next().await.transpose()? else {
        if first.len() > max {
            return Err(format!("block of {} bytes exceeds {max}", first.len()));
        }
        return Ok(first);
    };
    let mut buf = bytes::BytesMut::with_capacity((first.len() + second.len()).max(64 << 10));
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    while let Some(chunk) = body.next().await.transpose()? {
        if buf.len() + chunk.len() > max {
            return Err(format!("block exceeds {max} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() > max {
        return Err(format!("block exceeds {max} bytes"));
    }
    Ok(buf.freeze())
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
    buffer: Arc<Semaphore>,
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
            buffer: Arc::new(Semaphore::new(config.ram_buffer_max.max(1 << 20))),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        });
        this.endpoint.set_stream_handler(this.clone());
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

    /// Reserves memory for `len` bytes of blocks in flight, waiting while the node-wide budget
    /// (`block_ram_buffer_max`) is used up.
    pub async fn reserve_buffer(&self, len: usize) -> Result<BufferPermit, BlockError> {
        let n = u32::try_from(len.clamp(1, self.config.ram_buffer_max.max(1 << 20)))
            .unwrap_or(u32::MAX);
        self.buffer
            .clone()
            .acquire_many_owned(n)
            .await
            .map(BufferPermit)
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
        let permit = self.reserve_buffer(data.len()).await?;
        self.put_block_reserved(hash, data, prio, permit).await
    }

    /// [`BlockManager::put_block`] for a caller that already holds the memory reservation of
    /// `data`; the reservation is kept until every replica has answered.
    pub async fn put_block_reserved(
        &self,
        hash: Hash,
        data: Bytes,
        prio: Priority,
        permit: BufferPermit,
    ) -> Result<(), BlockError> {
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
        };
        let body = block.inner_bytes().clone();
        drop(block);
        let (_, w) = quorums(self.config.replication_factor, self.config.consistency);
        call_write_sets_with_body(
            &self.endpoint,
            &sets,
            |n| w.min(n),
            &msg,
            Some(body),
            permit,
            None,
            self.opts(prio),
        )
        .await
        .map_err(|e| BlockError::Rpc {
            message: e.to_string(),
        })?;
        Ok(())
    }

    /// Sends a block as stored here to one node.
    pub(crate) async fn send_block(
        &self,
        node: NodeId,
        hash: &Hash,
        block: &DataBlock,
        prio: Priority,
    ) -> Result<(), BlockError> {
        let msg = BlockRpc::Put {
            hash: *hash,
            compressed: block.is_compressed(),
        };
        let body = single_chunk_stream(block.inner_bytes().clone());
        self.endpoint
            .call_stream(node, &msg, Some(body), self.opts(prio))
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

    /// Reads a block from one node: from the local store directly when it is this node,
    /// through the block RPC otherwise; returns the verified plaintext.
    async fn fetch_one(&self, node: NodeId, hash: &Hash, prio: Priority) -> Result<Bytes, String> {
        if node == self.system.id() {
            return match self.local.read_block_plain(hash).await {
                Ok(plain) => Ok(plain),
                Err(e) => {
                    if matches!(e, BlockError::Corrupted { .. }) {
                        self.queue_resync_now(hash);
                    }
                    Err(e.to_string())
                }
            };
        }
        let (resp, body) = self
            .endpoint
            .call_stream(node, &BlockRpc::Get { hash: *hash }, None, self.opts(prio))
            .await
            .map_err(|e| e.to_string())?;
        let BlockResponse::Block { compressed } = resp else {
            return Err(format!("unexpected answer {resp:?}"));
        };
        let max = self.local.max_plain_len();
        let data = collect_block(body, max + (max >> 4) + 4096).await?;
        let block = if compressed {
            DataBlock::Compressed(data)
        } else {
            DataBlock::Plain(data)
        };
        let h = *hash;
        tokio::task::spawn_blocking(move || block.verify_bounded(&h, max))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
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
        let call = |node: NodeId| async move { (node, self.fetch_one(node, hash, prio).await) };
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
                Ok(plain) => return Ok(plain),
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
        let _permit = self.reserve_buffer(1 << 20).await?;
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

    async fn handle_rpc(
        &self,
        msg: BlockRpc,
        from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<(BlockResponse, Option<ByteStream>), String> {
        match msg {
            BlockRpc::Put { hash, compressed } => {
                // No reservation here: the sender holds one for this block until this answer.
                // Reserving again would make a node wait on itself (or two nodes on each other)
                // once callers hold the whole buffer.
                let max = self.local.max_plain_len();
                let data = collect_block(body, max + (max >> 4) + 4096).await?;
                let block = if compressed {
                    DataBlock::Compressed(data)
                } else {
                    DataBlock::Plain(data)
                };
                if from != self.system.id() {
                    // (This node hashed the block itself when it is the sender.)
                    let b2 = block.clone();
                    tokio::task::spawn_blocking(move || b2.verify_bounded(&hash, max).map(|_| ()))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                }
                // Its reference is recorded after the block is stored: until then (and for a
                // block referenced no more, uploaded again) it must not be deleted.
                let _lock = self.lock(&hash).await;
                self.touch_rc(&hash).map_err(|e| e.to_string())?;
                self.local
                    .write_block(&hash, &block)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((BlockResponse::Ok, None))
            }
            BlockRpc::Get { hash } => match self.local.read_block(&hash).await {
                Ok(block) => Ok((
                    BlockResponse::Block {
                        compressed: block.is_compressed(),
                    },
                    Some(single_chunk_stream(block.inner_bytes().clone())),
                )),
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
                Ok((BlockResponse::Need(rc.count > 0 && has.is_none()), None))
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

impl StreamHandler<BlockRpc> for BlockManager {
    async fn handle_stream(
        self: Arc<Self>,
        msg: BlockRpc,
        from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<(BlockResponse, Option<ByteStream>), String> {
        self.handle_rpc(msg, from, body).await
    }
}
