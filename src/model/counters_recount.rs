//! Rebuilding a node's local bucket totals from its local object table (after an upgrade from
//! a release without counters, or with `garage repair --yes counters`), while the node keeps
//! serving writes.
//!
//! The recount walks the object store in key order, in batches. A batch lists up to
//! [`BATCH`] keys after the cursor (fewer after a retry), then, in one transaction, reads their values, adds what they
//! count to the `recount` tree, and moves the cursor to the batch's last key. While the cursor
//! exists, the object table's hook ([`LocalCounters::record`]) also applies to the `recount`
//! tree the changes of entries at or before the cursor (already counted), and bumps the
//! `generation` on every creation of an entry. The batch transaction checks that the generation
//! did not move since the keys were listed; otherwise an entry may have been created in the
//! listed range after the listing, and the batch is listed again. So every entry is counted
//! exactly once: by the batch that read it, then by the hook for its later changes. The final
//! transaction (same generation check) replaces the live totals with the rebuilt ones, removes
//! the cursor and marks the buckets for publication.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use super::counters::{
    add, read_u64, LocalCounters, Totals, COUNTERS_TABLE, CURSOR, GENERATION, INITIALIZED,
};
use super::object::Object;
use crate::db::{Tree, TxError, TxResult};
use crate::table::data::db_err;
use crate::table::TableError;
use crate::util::encode::Migrate;
use crate::util::ids::Uuid;

/// Object entries read per transaction (at most).
pub const BATCH: usize = 1000;
/// Smallest batch: a batch shrinks each time creations force it to be listed again, so that
/// the window between listing and counting gets shorter under a steady flow of writes.
const MIN_BATCH: usize = 16;
/// Attempts of one batch before giving up (the object table kept changing under it).
const MAX_ATTEMPTS: usize = 100;

/// What a recount did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecountReport {
    /// Object entries read.
    pub entries: u64,
    /// Buckets with local totals afterwards.
    pub buckets: u64,
}

fn keys_of(tree: &Tree) -> Result<Vec<Vec<u8>>, TableError> {
    tree.iter()
        .map_err(db_err(COUNTERS_TABLE))?
        .map(|r| r.map(|(k, _)| k).map_err(db_err(COUNTERS_TABLE)))
        .collect()
}

fn tx_failed(e: TxError<()>) -> Option<TableError> {
    match e {
        TxError::Abort(()) => None,
        TxError::Db(e) => Some(db_err(COUNTERS_TABLE)(e)),
    }
}

impl LocalCounters {
    /// Rebuilds the local totals from `objects` (the object table's local store). One recount
    /// runs at a time; the work runs on a blocking thread.
    pub async fn recount(self: &Arc<Self>, objects: Tree) -> Result<RecountReport, TableError> {
        let _one_at_a_time = self.recount_lock.lock().await;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.recount_blocking(&objects))
            .await
            .map_err(|e| TableError::Db {
                table: COUNTERS_TABLE,
                message: format!("recount task failed: {e}"),
            })?
    }

    /// The recount itself (blocking; callers must not run two at once).
    pub fn recount_blocking(&self, objects: &Tree) -> Result<RecountReport, TableError> {
        let e = db_err(COUNTERS_TABLE);
        // Start: from here on, creations bump the generation; then drop any leftover of an
        // interrupted recount (no hook writes `recount` while the cursor is empty).
        let r: TxResult<(), ()> = self.db.transaction(|tx| {
            tx.insert(&self.state, CURSOR, b"")?;
            Ok(())
        });
        if let Some(err) = r.err().and_then(tx_failed) {
            return Err(err);
        }
        self.recount.clear().map_err(&e)?;

        let mut cursor: Vec<u8> = vec![];
        let mut entries = 0u64;
        let mut batch = BATCH;
        loop {
            let mut attempts = 0;
            let finished = loop {
                attempts += 1;
                if attempts > MAX_ATTEMPTS {
                    return Err(TableError::Db {
                        table: COUNTERS_TABLE,
                        message: "the object table kept changing during the recount; run it again"
                            .into(),
                    });
                }
                let generation = read_u64(self.state.get(GENERATION).map_err(&e)?.as_deref());
                let keys: Vec<Vec<u8>> = objects
                    .range(Bound::Excluded(cursor.as_slice()), Bound::Unbounded)
                    .map_err(&e)?
                    .take(batch)
                    .map(|r| r.map(|(k, _)| k))
                    .collect::<Result<_, _>>()
                    .map_err(&e)?;
                let r = if keys.is_empty() {
                    self.finish(generation)
                } else {
                    self.count_batch(objects, &keys, generation)
                };
                match r {
                    Ok(()) if keys.is_empty() => break true,
                    Ok(()) => {
                        entries += keys.len() as u64;
                        cursor = keys.last().cloned().unwrap_or_default();
                        batch = (batch * 2).min(BATCH);
                        break false;
                    }
                    Err(err) => {
                        if let Some(err) = tx_failed(err) {
                            return Err(err);
                        }
                        batch = (batch / 2).max(MIN_BATCH);
                    }
                }
            };
            if finished {
                break;
            }
        }
        self.recount.clear().map_err(&e)?;
        self.notify.notify_one();
        let buckets = self.totals.len().map_err(&e)? as u64;
        Ok(RecountReport { entries, buckets })
    }

    /// Counts the entries at `keys` into the `recount` tree and moves the cursor past them,
    /// unless an entry was created since `generation` was read (then aborts).
    fn count_batch(&self, objects: &Tree, keys: &[Vec<u8>], generation: u64) -> TxResult<(), ()> {
        self.db.transaction(|tx| {
            if read_u64(tx.get(&self.state, GENERATION)?.as_deref()) != generation {
                return tx.abort(());
            }
            let mut per_bucket: BTreeMap<Uuid, Totals> = BTreeMap::new();
            for k in keys {
                let Some(v) = tx.get(objects, k)? else {
                    continue;
                };
                match Object::decode(&v) {
                    Ok(o) => {
                        let t = per_bucket.entry(o.bucket_id).or_default();
                        *t = t.plus(Totals::of_object(Some(&o)));
                    }
                    Err(err) => tracing::warn!("counters recount: undecodable object entry: {err}"),
                }
            }
            // Every bucket seen gets an entry, even at zero (see the module documentation).
            for (bucket, t) in &per_bucket {
                add(tx, &self.recount, bucket, *t)?;
            }
            if let Some(last) = keys.last() {
                tx.insert(&self.state, CURSOR, last)?;
            }
            Ok(())
        })
    }

    /// Replaces the live totals with the rebuilt ones, unless an entry was created since
    /// `generation` was read (then aborts).
    fn finish(&self, generation: u64) -> TxResult<(), ()> {
        let buckets: BTreeSet<Vec<u8>> = match (keys_of(&self.totals), keys_of(&self.recount)) {
            (Ok(a), Ok(b)) => a.into_iter().chain(b).collect(),
            (Err(e), _) | (_, Err(e)) => {
                return Err(TxError::Db(crate::db::Error::Engine(e.to_string())))
            }
        };
        self.db.transaction(|tx| {
            if read_u64(tx.get(&self.state, GENERATION)?.as_deref()) != generation {
                return tx.abort(());
            }
            for b in &buckets {
                match tx.get(&self.recount, b)? {
                    Some(v) if !Totals::from_bytes(&v).is_zero() => {
                        tx.insert(&self.totals, b, &v)?;
                    }
                    _ => {
                        tx.remove(&self.totals, b)?;
                    }
                }
                tx.insert(&self.dirty, b, &[])?;
            }
            tx.remove(&self.state, CURSOR)?;
            tx.insert(&self.state, INITIALIZED, &[])?;
            Ok(())
        })
    }
}
