//! The typed façade of a table: encodes entries and keys for the byte-oriented engine, and starts
//! the table's background workers (Merkle updater, anti-entropy, tombstone GC, insert queue).

use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::watch;

use super::core::{TableConfig, TableCore};
use super::data::TableData;
use super::replication::Replication;
use super::rpc::{TableRpc, TableRpcHandler};
use super::schema::{tree_key, Entry, PartitionKey, SchemaAdapter, SortKey, TableSchema};
use super::sync::{SyncTracker, SyncTrigger};
use super::{gc, merkle, queue, sync, TableError};
use crate::db::{Db, Transaction, TxOpResult};
use crate::layout::manager::LayoutManager;
use crate::rpc::endpoint::Endpoint;
use crate::rpc::system::System;
use crate::util::background::WorkerRegistry;
use crate::util::encode::Migrate;

/// What a table needs from the node.
#[derive(Clone)]
pub struct TableContext {
    pub db: Db,
    pub system: Arc<System>,
    pub layout: Arc<LayoutManager>,
    pub workers: Arc<WorkerRegistry>,
    pub tracker: Arc<SyncTracker>,
    pub registry: Arc<super::registry::TableRegistry>,
    pub config: TableConfig,
    pub consistency: crate::config::ConsistencyMode,
    pub stop: watch::Receiver<bool>,
}

/// A replicated table.
pub struct Table<S: TableSchema> {
    pub schema: Arc<S>,
    pub core: Arc<TableCore>,
    pub sync_trigger: Arc<SyncTrigger>,
    _s: PhantomData<S>,
}

impl<S: TableSchema> Table<S> {
    /// Opens the table's local data and registers its RPC endpoint (no workers yet).
    pub fn new(
        schema: S,
        replication: Arc<dyn Replication>,
        ctx: &TableContext,
    ) -> Result<Arc<Self>, TableError> {
        ctx.tracker.register(S::NAME);
        let schema = Arc::new(schema);
        let data = TableData::open(&ctx.db, S::NAME, Arc::new(SchemaAdapter(schema.clone())))?;
        let endpoint: Endpoint<TableRpc> = Endpoint::new(
            ctx.system.netapp.clone(),
            Box::leak(format!("garage/table/{}", S::NAME).into_boxed_str()),
        );
        let sync_trigger = Arc::new(SyncTrigger::default());
        endpoint.set_handler(Arc::new(TableRpcHandler {
            data: data.clone(),
            replication: replication.clone(),
            me: ctx.system.id(),
            sync_trigger: sync_trigger.clone(),
        }));
        let core = Arc::new(TableCore {
            data,
            replication,
            endpoint,
            system: ctx.system.clone(),
            config: ctx.config,
        });
        let table = Arc::new(Self {
            schema,
            core,
            sync_trigger,
            _s: PhantomData,
        });
        ctx.registry.add(table.clone());
        Ok(table)
    }

    /// Starts the background workers of this table.
    pub fn spawn_workers(&self, ctx: &TableContext) {
        let name = S::NAME;
        let c = &self.core;
        tokio::spawn(merkle::run_updater(
            c.data.clone(),
            ctx.workers.register(&format!("{name} Merkle")),
            ctx.stop.clone(),
        ));
        tokio::spawn(sync::run_sync(
            c.clone(),
            ctx.tracker.clone(),
            self.sync_trigger.clone(),
            ctx.layout.subscribe(),
            ctx.workers.register(&format!("{name} sync")),
            ctx.stop.clone(),
        ));
        tokio::spawn(gc::run_gc(
            c.clone(),
            ctx.workers.register(&format!("{name} GC")),
            ctx.stop.clone(),
        ));
        tokio::spawn(queue::run_queue(
            c.clone(),
            ctx.workers.register(&format!("{name} queue")),
            ctx.stop.clone(),
        ));
    }

    fn encode(e: &S::E) -> Result<Vec<u8>, TableError> {
        e.encode().map_err(|err| TableError::Decode {
            table: S::NAME,
            message: err.to_string(),
        })
    }

    fn decode(b: &[u8]) -> Result<S::E, TableError> {
        S::E::decode(b).map_err(|err| TableError::Decode {
            table: S::NAME,
            message: err.to_string(),
        })
    }

    /// Writes an entry to its replicas (write quorum).
    pub async fn insert(&self, e: &S::E) -> Result<(), TableError> {
        let hash = e.partition_key().hash();
        self.core.insert_raw(&hash, vec![Self::encode(e)?]).await
    }

    /// Writes many entries, batched per destination.
    pub async fn insert_many(&self, entries: &[S::E]) -> Result<(), TableError> {
        let raw = entries
            .iter()
            .map(|e| Ok((e.partition_key().hash(), Self::encode(e)?)))
            .collect::<Result<Vec<_>, TableError>>()?;
        self.core.insert_many_raw(raw).await
    }

    /// Reads one entry (read quorum, read repair).
    pub async fn get(&self, pk: &S::P, sk: &S::S) -> Result<Option<S::E>, TableError> {
        let hash = pk.hash();
        let key = tree_key(&hash, sk.sort_key());
        match self.core.get_raw(&hash, &key).await? {
            Some(b) => Ok(Some(Self::decode(&b)?)),
            None => Ok(None),
        }
    }

    /// Reads up to `limit` entries of `pk` from `start` (inclusive), in order or reversed.
    pub async fn get_range(
        &self,
        pk: &S::P,
        start: Option<&S::S>,
        filter: Option<&S::Filter>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<S::E>, TableError> {
        let filter = match filter {
            Some(f) => Some(rmp_serde::to_vec_named(f).map_err(|e| TableError::Decode {
                table: S::NAME,
                message: e.to_string(),
            })?),
            None => None,
        };
        let start = start.map(|s| s.sort_key().to_vec());
        self.core
            .get_range_raw(&pk.hash(), start, filter, limit, reverse)
            .await?
            .iter()
            .map(|b| Self::decode(b))
            .collect()
    }

    /// Queues an insert of `e` into this table from inside another table's transaction.
    pub fn queue_insert(&self, tx: &mut Transaction<'_>, e: &S::E) -> TxOpResult<()> {
        match e.encode() {
            Ok(b) => self.core.data.queue_insert(tx, &b),
            Err(_) => Ok(()),
        }
    }

    /// Local read, without the cluster (for tests, stats and repairs).
    pub fn get_local(&self, pk: &S::P, sk: &S::S) -> Result<Option<S::E>, TableError> {
        let key = tree_key(&pk.hash(), sk.sort_key());
        match self.core.data.read_entry(&key)? {
            Some(b) => Ok(Some(Self::decode(&b)?)),
            None => Ok(None),
        }
    }
}
