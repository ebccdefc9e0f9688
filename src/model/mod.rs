//! The data model of Garage (DESIGN.md §9): the tables of buckets, bucket aliases, keys,
//! objects, versions, block references and per-bucket counters, their cascade, and helpers that
//! resolve names and permissions.

pub mod block_ref;
pub mod bucket;
pub mod bucket_alias;
pub mod counters;
pub mod counters_recount;
pub mod helper;
pub mod key;
pub mod lifecycle;
pub mod lifecycle_worker;
pub mod object;
pub mod version;

use std::sync::Arc;

use crate::table::replication::{FullCopy, Replication, Sharded};
use crate::table::typed::{Table, TableContext};
use crate::table::TableError;

use block_ref::{BlockRefCounter, BlockRefTable};
use bucket::BucketTable;
use bucket_alias::BucketAliasTable;
use counters::{CountersTable, LocalCounters};
use key::KeyTable;
use object::ObjectTable;
use version::VersionTable;

/// All tables of the model.
pub struct Model {
    pub buckets: Arc<Table<BucketTable>>,
    pub bucket_aliases: Arc<Table<BucketAliasTable>>,
    pub keys: Arc<Table<KeyTable>>,
    pub objects: Arc<Table<ObjectTable>>,
    pub versions: Arc<Table<VersionTable>>,
    pub block_refs: Arc<Table<BlockRefTable>>,
    pub counters: Arc<Table<CountersTable>>,
    /// This node's totals of the buckets whose objects it stores.
    pub local_counters: Arc<LocalCounters>,
}

impl Model {
    /// Opens every table and starts their workers.
    pub fn new(
        ctx: &TableContext,
        replication_factor: usize,
        counter: Arc<dyn BlockRefCounter>,
    ) -> Result<Arc<Self>, TableError> {
        let full: Arc<dyn Replication> = Arc::new(FullCopy {
            layout: ctx.layout.clone(),
        });
        let sharded: Arc<dyn Replication> = Arc::new(Sharded {
            layout: ctx.layout.clone(),
            replication_factor,
            consistency: ctx.consistency,
        });
        let block_refs = Table::new(BlockRefTable { counter }, sharded.clone(), ctx)?;
        let versions = Table::new(
            VersionTable {
                block_refs: block_refs.clone(),
            },
            sharded.clone(),
            ctx,
        )?;
        let counters = Table::new(CountersTable, sharded.clone(), ctx)?;
        let local_counters = LocalCounters::open(&ctx.db)?;
        let objects = Table::new(
            ObjectTable {
                versions: versions.clone(),
                counters: local_counters.clone(),
            },
            sharded,
            ctx,
        )?;
        let buckets = Table::new(BucketTable, full.clone(), ctx)?;
        let bucket_aliases = Table::new(BucketAliasTable, full.clone(), ctx)?;
        let keys = Table::new(KeyTable, full, ctx)?;
        block_refs.spawn_workers(ctx);
        versions.spawn_workers(ctx);
        objects.spawn_workers(ctx);
        counters.spawn_workers(ctx);
        tokio::spawn(counters::run_publisher(
            local_counters.clone(),
            counters.clone(),
            ctx.system.id(),
            ctx.workers.register("bucket counters"),
            ctx.stop.clone(),
        ));
        if !local_counters.is_initialized()? {
            // First start with counters (new node, or upgrade): count what is stored here.
            let (local, store) = (local_counters.clone(), objects.core.data.store.clone());
            tokio::spawn(async move {
                match local.recount(store).await {
                    Ok(r) => tracing::info!(
                        "bucket counters computed: {} object entries, {} buckets",
                        r.entries,
                        r.buckets
                    ),
                    Err(e) => tracing::error!(
                        "cannot compute bucket counters (run `garage repair --yes counters`): {e}"
                    ),
                }
            });
        }
        buckets.spawn_workers(ctx);
        bucket_aliases.spawn_workers(ctx);
        keys.spawn_workers(ctx);
        Ok(Arc::new(Self {
            buckets,
            bucket_aliases,
            keys,
            objects,
            versions,
            block_refs,
            counters,
            local_counters,
        }))
    }
}
