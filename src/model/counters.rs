//! Per-bucket counters (DESIGN.md §9): how many objects and bytes a bucket holds and how many
//! multipart uploads are unfinished, for `garage bucket info` and for quotas.
//!
//! **Local totals.** Every node keeps, in tree `counters_v1:local` (bucket id → three `i64` BE:
//! objects, bytes, unfinished uploads), the totals of the object entries *it stores*. The object
//! table's `updated` hook calls [`LocalCounters::record`] inside the transaction that changes an
//! entry, with the delta between the old and the new entry ([`Totals::of_object`]): the newest
//! complete version, unless it is a delete marker, counts 1 object and its size; every
//! `Uploading` version of a multipart upload counts 1 unfinished upload. Entries that arrive by
//! anti-entropy, or leave when a partition is offloaded, go through the same hook, so the totals
//! follow layout changes by themselves. The hook also marks the bucket in `counters_v1:dirty`.
//!
//! **Propagation.** A worker ([`run_publisher`]) waits until some bucket is dirty, lets changes
//! accumulate for [`PUBLISH_DELAY`] (so a bucket is published at most about once per second),
//! then, in one transaction per bucket, clears the mark and queues this node's totals into the
//! `counters` table's insert queue (durable; inserted at write quorum by the queue worker).
//!
//! **The `counters` table** (sharded, partition key = bucket id, sort key = node id): one entry
//! per node that stores the bucket's objects, holding that node's totals in a last-writer-wins
//! register (each node only writes its own entry, with increasing timestamps). Since the
//! partition key of every object of a bucket is the bucket id, all of a bucket's objects live on
//! the same replicas, and each replica's totals describe the whole bucket. **Choice:** the
//! bucket's totals are, field by field, the **maximum** over the entries of the nodes that
//! currently hold the partition (all entries if none of them has published yet). A replica that
//! lags behind (missed writes, still syncing after a layout change) can only lower its own
//! numbers, so the maximum is the most up-to-date view for growing buckets and errs towards
//! over-counting after deletions until the lagging replica catches up — the safe side for
//! quotas. Counts are eventually consistent: they lag writes by about [`PUBLISH_DELAY`] plus one
//! table write.
//!
//! **Recount** (`counters_recount.rs`): rebuilds the local totals from the local object table,
//! at start when they were never computed (upgrade from a release without counters) and on
//! `garage repair --yes counters`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use super::object::{Object, VersionState};
use crate::db::{Db, Transaction, Tree, TxError, TxOpResult, TxResult};
use crate::table::data::db_err;
use crate::table::schema::{tree_key, Entry, PartitionKey, SortKey, TableSchema};
use crate::table::typed::Table;
use crate::table::TableError;
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::crdt::{Crdt, Lww};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::{NodeId, Uuid};
use crate::util::time::unique_msec;

/// How long changes of a bucket accumulate before its totals are published.
pub const PUBLISH_DELAY: Duration = Duration::from_secs(1);

/// Name of the counters table (and prefix of its local trees).
pub const COUNTERS_TABLE: &str = "counters_v1";

/// Objects, bytes and unfinished multipart uploads (signed: a delta may be negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    #[serde(default)]
    pub objects: i64,
    #[serde(default)]
    pub bytes: i64,
    #[serde(default)]
    pub unfinished_uploads: i64,
}

impl Totals {
    /// What one object entry counts for (nothing for `None`).
    pub fn of_object(o: Option<&Object>) -> Self {
        let Some(o) = o else {
            return Self::default();
        };
        let mut t = Self::default();
        if let Some(meta) = o.last_data().and_then(|v| v.meta()) {
            t.objects = 1;
            t.bytes = i64::try_from(meta.size).unwrap_or(i64::MAX);
        }
        t.unfinished_uploads = o
            .versions()
            .iter()
            .filter(|v| {
                matches!(
                    v.state,
                    VersionState::Uploading {
                        multipart: true,
                        ..
                    }
                )
            })
            .count() as i64;
        t
    }

    pub fn plus(self, o: Self) -> Self {
        Self {
            objects: self.objects.saturating_add(o.objects),
            bytes: self.bytes.saturating_add(o.bytes),
            unfinished_uploads: self.unfinished_uploads.saturating_add(o.unfinished_uploads),
        }
    }

    pub fn minus(self, o: Self) -> Self {
        Self {
            objects: self.objects.saturating_sub(o.objects),
            bytes: self.bytes.saturating_sub(o.bytes),
            unfinished_uploads: self.unfinished_uploads.saturating_sub(o.unfinished_uploads),
        }
    }

    /// Field by field maximum.
    pub fn max(self, o: Self) -> Self {
        Self {
            objects: self.objects.max(o.objects),
            bytes: self.bytes.max(o.bytes),
            unfinished_uploads: self.unfinished_uploads.max(o.unfinished_uploads),
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The local tree encoding: three `i64` big-endian.
    pub fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.objects.to_be_bytes());
        b[8..16].copy_from_slice(&self.bytes.to_be_bytes());
        b[16..].copy_from_slice(&self.unfinished_uploads.to_be_bytes());
        b
    }

    /// Decodes [`Totals::to_bytes`]; anything else reads as zero.
    pub fn from_bytes(b: &[u8]) -> Self {
        let field = |i: usize| {
            b.get(i * 8..i * 8 + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(i64::from_be_bytes)
                .unwrap_or(0)
        };
        if b.len() != 24 {
            return Self::default();
        }
        Self {
            objects: field(0),
            bytes: field(1),
            unfinished_uploads: field(2),
        }
    }
}

/// Totals as shown to users and checked against quotas (never negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketUsage {
    pub objects: u64,
    pub bytes: u64,
    pub unfinished_uploads: u64,
}

impl From<Totals> for BucketUsage {
    fn from(t: Totals) -> Self {
        let pos = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            objects: pos(t.objects),
            bytes: pos(t.bytes),
            unfinished_uploads: pos(t.unfinished_uploads),
        }
    }
}

/// Node ids order a partition's counter entries.
impl SortKey for NodeId {
    fn sort_key(&self) -> &[u8] {
        &self.0
    }
}

/// One node's totals for one bucket: an entry of the `counters` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCounters {
    pub bucket_id: Uuid,
    pub node: NodeId,
    pub totals: Lww<Totals>,
}

impl Crdt for BucketCounters {
    fn merge(&mut self, o: &Self) {
        self.totals.merge(&o.totals);
    }
}

impl Migrate for BucketCounters {
    const VERSION_MARKER: &'static [u8] = b"Gcounters1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<Uuid, NodeId> for BucketCounters {
    fn partition_key(&self) -> &Uuid {
        &self.bucket_id
    }
    fn sort_key(&self) -> &NodeId {
        &self.node
    }
}

/// The `counters` table.
pub struct CountersTable;

impl TableSchema for CountersTable {
    const NAME: &'static str = COUNTERS_TABLE;
    type P = Uuid;
    type S = NodeId;
    type E = BucketCounters;
    type Filter = ();
}

/// Combines the entries of a bucket's partition: field by field maximum over the entries of
/// `holders` (the nodes that hold the partition now), or over every entry if none of them has
/// one (see the module documentation).
pub fn combine(entries: &[BucketCounters], holders: &[NodeId]) -> BucketUsage {
    let current: Vec<&BucketCounters> = entries
        .iter()
        .filter(|e| holders.contains(&e.node))
        .collect();
    let chosen: Vec<&BucketCounters> = if current.is_empty() {
        entries.iter().collect()
    } else {
        current
    };
    chosen
        .iter()
        .map(|e| *e.totals.get())
        .reduce(Totals::max)
        .unwrap_or_default()
        .into()
}

/// A bucket's totals, read from the `counters` table at read quorum.
pub async fn bucket_usage(
    table: &Table<CountersTable>,
    bucket: &Uuid,
) -> Result<BucketUsage, TableError> {
    let entries = table.get_range(bucket, None, None, 10_000, false).await?;
    let repl = &table.core.replication;
    let holders = repl.holders(repl.partition_of(&bucket.hash()));
    Ok(combine(&entries, &holders))
}

/// Keys of the recount state tree.
pub(super) const CURSOR: &[u8] = b"cursor";
pub(super) const GENERATION: &[u8] = b"generation";
pub(super) const INITIALIZED: &[u8] = b"initialized";

/// This node's local totals and the trees that keep them.
pub struct LocalCounters {
    pub(super) db: Db,
    /// bucket id → [`Totals::to_bytes`].
    pub(super) totals: Tree,
    /// bucket id → (): totals changed since last published.
    pub(super) dirty: Tree,
    /// bucket id → totals being rebuilt by a recount.
    pub(super) recount: Tree,
    /// `cursor` (while a recount runs: the last object tree key it counted), `generation`
    /// (bumped by every object creation during a recount), `initialized` (a recount completed
    /// once).
    pub(super) state: Tree,
    /// Woken when a bucket becomes dirty.
    pub(super) notify: Notify,
    /// One recount at a time.
    pub(super) recount_lock: tokio::sync::Mutex<()>,
}

impl LocalCounters {
    pub fn open(db: &Db) -> Result<Arc<Self>, TableError> {
        let open = |suffix: &str| {
            db.open_tree(&format!("{COUNTERS_TABLE}:{suffix}"))
                .map_err(db_err(COUNTERS_TABLE))
        };
        Ok(Arc::new(Self {
            db: db.clone(),
            totals: open("local")?,
            dirty: open("dirty")?,
            recount: open("recount")?,
            state: open("recount_state")?,
            notify: Notify::new(),
            recount_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// Applies the change `old` → `new` of an object entry (the object table's hook).
    pub fn record(
        &self,
        tx: &mut Transaction<'_>,
        old: Option<&Object>,
        new: Option<&Object>,
    ) -> TxOpResult<()> {
        let Some(o) = old.or(new) else {
            return Ok(());
        };
        let delta = Totals::of_object(new).minus(Totals::of_object(old));
        if let Some(cursor) = tx.get(&self.state, CURSOR)? {
            // A recount is running: changes of entries it already counted are its business too;
            // a creation anywhere invalidates the batch it may be counting.
            let key = tree_key(&o.bucket_id.hash(), o.key.as_bytes());
            if key.as_slice() <= cursor.as_slice() && !delta.is_zero() {
                add(tx, &self.recount, &o.bucket_id, delta)?;
            }
            if old.is_none() {
                let generation = read_u64(tx.get(&self.state, GENERATION)?.as_deref());
                tx.insert(&self.state, GENERATION, &(generation + 1).to_be_bytes())?;
            }
        }
        if delta.is_zero() {
            return Ok(());
        }
        add(tx, &self.totals, &o.bucket_id, delta)?;
        tx.insert(&self.dirty, &o.bucket_id.0, &[])?;
        self.notify.notify_one();
        Ok(())
    }

    /// This node's totals for a bucket.
    pub fn local_totals(&self, bucket: &Uuid) -> Result<Totals, TableError> {
        Ok(self
            .totals
            .get(&bucket.0)
            .map_err(db_err(COUNTERS_TABLE))?
            .map(|v| Totals::from_bytes(&v))
            .unwrap_or_default())
    }

    /// Whether the local totals were ever computed from the object table.
    pub fn is_initialized(&self) -> Result<bool, TableError> {
        Ok(self
            .state
            .get(INITIALIZED)
            .map_err(db_err(COUNTERS_TABLE))?
            .is_some())
    }

    /// Queues this node's totals of every dirty bucket into the `counters` table; returns how
    /// many buckets were published.
    pub fn publish_dirty(
        &self,
        table: &Table<CountersTable>,
        me: NodeId,
    ) -> Result<usize, TableError> {
        let keys = self
            .dirty
            .iter()
            .map_err(db_err(COUNTERS_TABLE))?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err(COUNTERS_TABLE))?;
        for k in &keys {
            let Some(bucket_id) = Uuid::try_from_slice(k) else {
                let _ = self.dirty.remove(k);
                continue;
            };
            let r: TxResult<(), ()> = self.db.transaction(|tx| {
                tx.remove(&self.dirty, k)?;
                let totals = tx
                    .get(&self.totals, k)?
                    .map(|v| Totals::from_bytes(&v))
                    .unwrap_or_default();
                let entry = BucketCounters {
                    bucket_id,
                    node: me,
                    totals: Lww::raw(unique_msec(), totals),
                };
                table.queue_insert(tx, &entry)?;
                Ok(())
            });
            match r {
                Ok(()) => (),
                Err(TxError::Db(e)) => return Err(db_err(COUNTERS_TABLE)(e)),
                Err(TxError::Abort(())) => (),
            }
        }
        Ok(keys.len())
    }
}

/// Adds `delta` to the totals of `bucket` in `tree`, inside a transaction.
pub(super) fn add(
    tx: &mut Transaction<'_>,
    tree: &Tree,
    bucket: &Uuid,
    delta: Totals,
) -> TxOpResult<()> {
    let cur = tx
        .get(tree, &bucket.0)?
        .map(|v| Totals::from_bytes(&v))
        .unwrap_or_default();
    tx.insert(tree, &bucket.0, &cur.plus(delta).to_bytes())?;
    Ok(())
}

pub(super) fn read_u64(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The worker that publishes this node's changed totals, until shutdown.
pub async fn run_publisher(
    local: Arc<LocalCounters>,
    table: Arc<Table<CountersTable>>,
    me: NodeId,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        if local.dirty.is_empty().unwrap_or(false) {
            worker.set_state(WorkerState::Idle);
            tokio::select! {
                _ = local.notify.notified() => (),
                _ = tokio::time::sleep(Duration::from_secs(10)) => continue,
                _ = stop.changed() => return,
            }
        }
        // Let changes accumulate: at most one publication per bucket per delay.
        tokio::select! {
            _ = tokio::time::sleep(PUBLISH_DELAY) => (),
            _ = stop.changed() => return,
        }
        worker.set_state(WorkerState::Busy);
        let (l, t) = (local.clone(), table.clone());
        let res = tokio::task::spawn_blocking(move || l.publish_dirty(&t, me)).await;
        match res {
            Ok(Ok(_)) => {
                worker.ok();
                backoff = Duration::from_millis(500);
            }
            Ok(Err(e)) => {
                worker.error(e.to_string());
                worker.set_state(WorkerState::Throttled);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => (),
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => worker.error(format!("publish task failed: {e}")),
        }
    }
}

#[cfg(test)]
#[path = "counters_tests.rs"]
mod tests;
