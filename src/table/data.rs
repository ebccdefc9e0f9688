//! Local storage of a table in the metadata database, and the atomic read-merge-write of
//! entries. Trees (for table `t`):
//! - `t:table`: tree key (partition key hash ‖ sort key) → encoded entry;
//! - `t:merkle_todo`: tree key → BLAKE2 of the new value (empty when deleted), consumed by the
//!   Merkle updater;
//! - `t:merkle_nodes`, `t:merkle_leaves`: the Merkle trie (see `merkle.rs`);
//! - `t:gc_todo`: tree key → (time ‖ value hash) of tombstones waiting for GC;
//! - `t:insert_queue`: tree key → encoded entry to insert into this table through the cluster
//!   (written by other tables' hooks in their own transactions, so a crash loses nothing).
//!
//! Every local change (merge, delete) runs in one transaction that also records the Merkle todo,
//! the GC todo and the schema's `updated` hook, so they can never disagree after a crash.

use std::ops::Bound;
use std::sync::Arc;

use tokio::sync::Notify;

use super::schema::ErasedSchema;
use super::TableError;
use crate::db::{Db, Transaction, Tree, TxError, TxOpResult, TxResult};
use crate::util::ids::{blake2sum, Hash};
use crate::util::time::now_msec;

/// What merging one incoming entry did.
pub struct UpdateOutcome {
    /// The entry's tree key (partition key hash ‖ sort key).
    pub key: Vec<u8>,
    /// Whether the stored value changed.
    pub changed: bool,
}

/// A table's local data.
pub struct TableData {
    pub name: &'static str,
    pub schema: Arc<dyn ErasedSchema>,
    pub db: Db,
    pub store: Tree,
    pub merkle_todo: Tree,
    pub merkle_nodes: Tree,
    pub merkle_leaves: Tree,
    pub gc_todo: Tree,
    pub insert_queue: Tree,
    /// Woken when the Merkle todo has new work.
    pub merkle_notify: Notify,
    /// Woken when the insert queue has new work.
    pub queue_notify: Arc<Notify>,
}

pub(crate) fn db_err(table: &'static str) -> impl Fn(crate::db::Error) -> TableError {
    move |e| TableError::Db {
        table,
        message: e.to_string(),
    }
}

fn tx_err<E: std::fmt::Display>(table: &'static str) -> impl Fn(TxError<E>) -> TableError {
    move |e| match e {
        TxError::Abort(e) => TableError::Db {
            table,
            message: e.to_string(),
        },
        TxError::Db(e) => TableError::Db {
            table,
            message: e.to_string(),
        },
    }
}

/// The value recorded in `gc_todo`: when the tombstone was written, and its hash.
pub fn gc_todo_value(value_hash: &Hash) -> Vec<u8> {
    let mut v = now_msec().to_be_bytes().to_vec();
    v.extend_from_slice(&value_hash.0);
    v
}

/// Decodes a `gc_todo` value.
pub fn parse_gc_todo(v: &[u8]) -> Option<(u64, Hash)> {
    if v.len() != 40 {
        return None;
    }
    let ts = u64::from_be_bytes(v[..8].try_into().ok()?);
    Some((ts, Hash::try_from_slice(&v[8..])?))
}

impl TableData {
    pub fn open(
        db: &Db,
        name: &'static str,
        schema: Arc<dyn ErasedSchema>,
    ) -> Result<Arc<Self>, TableError> {
        let open = |suffix: &str| {
            db.open_tree(&format!("{name}:{suffix}"))
                .map_err(db_err(name))
        };
        Ok(Arc::new(Self {
            name,
            schema,
            db: db.clone(),
            store: open("table")?,
            merkle_todo: open("merkle_todo")?,
            merkle_nodes: open("merkle_nodes")?,
            merkle_leaves: open("merkle_leaves")?,
            gc_todo: open("gc_todo")?,
            insert_queue: open("insert_queue")?,
            merkle_notify: Notify::new(),
            queue_notify: Arc::new(Notify::new()),
        }))
    }

    pub fn read_entry(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TableError> {
        self.store.get(key).map_err(db_err(self.name))
    }

    /// Entries of the partition key `pkh`, from `start` (sort key, inclusive) in the given
    /// direction, passing `filter`, at most `limit`.
    pub fn read_range(
        &self,
        pkh: &Hash,
        start: Option<&[u8]>,
        filter: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Vec<u8>>, TableError> {
        let prefix = pkh.0.to_vec();
        let mut end = prefix.clone();
        // The first key after every key with this prefix: pkh + 1 (with carry).
        let upper = increment(&mut end).then_some(end);
        let start_key = start.map(|s| {
            let mut k = prefix.clone();
            k.extend_from_slice(s);
            k
        });
        let iter = if reverse {
            let high = match &start_key {
                Some(k) => Bound::Included(k.as_slice()),
                None => match &upper {
                    Some(u) => Bound::Excluded(u.as_slice()),
                    None => Bound::Unbounded,
                },
            };
            self.store
                .range_rev(Bound::Included(prefix.as_slice()), high)
        } else {
            let low = match &start_key {
                Some(k) => Bound::Included(k.as_slice()),
                None => Bound::Included(prefix.as_slice()),
            };
            let high = match &upper {
                Some(u) => Bound::Excluded(u.as_slice()),
                None => Bound::Unbounded,
            };
            self.store.range(low, high)
        }
        .map_err(db_err(self.name))?;
        let mut out = vec![];
        for item in iter {
            let (_, v) = item.map_err(db_err(self.name))?;
            if self.schema.matches_filter(&v, filter) {
                out.push(v);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Merges an encoded entry into the local store. Returns the new value if it changed.
    pub fn update_entry(&self, incoming: &[u8]) -> Result<UpdateOutcome, TableError> {
        let key = self.schema.tree_key(incoming)?;
        let schema = self.schema.clone();
        let res: TxResult<bool, TableError> = self.db.transaction(|tx| {
            let old = tx.get(&self.store, &key)?;
            let new = match schema.merge(old.as_deref(), incoming) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(false),
                Err(e) => return Err(TxError::Abort(e)),
            };
            self.record_change(tx, &key, old.as_deref(), Some(&new))?;
            Ok(true)
        });
        match res {
            Ok(changed) => {
                if changed {
                    self.merkle_notify.notify_one();
                }
                Ok(UpdateOutcome { key, changed })
            }
            Err(TxError::Abort(e)) => Err(e),
            Err(e) => Err(tx_err::<TableError>(self.name)(e)),
        }
    }

    /// Writes `new` (or deletes, if `None`) at `key` and records everything that follows.
    fn record_change(
        &self,
        tx: &mut Transaction<'_>,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> TxOpResult<()> {
        match new {
            Some(n) => {
                tx.insert(&self.store, key, n)?;
                let vh = blake2sum(n);
                tx.insert(&self.merkle_todo, key, &vh.0)?;
                if self.schema.is_tombstone(n) {
                    tx.insert(&self.gc_todo, key, &gc_todo_value(&vh))?;
                }
            }
            None => {
                tx.remove(&self.store, key)?;
                tx.insert(&self.merkle_todo, key, &[])?;
            }
        }
        self.schema.updated(tx, old, new)
    }

    /// Deletes the entry at `key` if its value still hashes to `value_hash`.
    pub fn delete_if_equal_hash(&self, key: &[u8], value_hash: &Hash) -> Result<bool, TableError> {
        let res: TxResult<bool, TableError> = self.db.transaction(|tx| {
            let Some(cur) = tx.get(&self.store, key)? else {
                return Ok(false);
            };
            if blake2sum(&cur) != *value_hash {
                return Ok(false);
            }
            self.record_change(tx, key, Some(&cur), None)?;
            Ok(true)
        });
        let deleted = res.map_err(tx_err(self.name))?;
        if deleted {
            self.merkle_notify.notify_one();
        }
        Ok(deleted)
    }

    /// Deletes the entry at `key` if it still equals `value` (used by offload).
    pub fn delete_if_equal(&self, key: &[u8], value: &[u8]) -> Result<bool, TableError> {
        self.delete_if_equal_hash(key, &blake2sum(value))
    }

    /// Adds an entry to this table's insert queue from inside another table's transaction,
    /// merging with an entry already queued for the same key.
    pub fn queue_insert(&self, tx: &mut Transaction<'_>, entry: &[u8]) -> TxOpResult<()> {
        let Ok(key) = self.schema.tree_key(entry) else {
            return Ok(());
        };
        let queued = tx.get(&self.insert_queue, &key)?;
        let value = match queued {
            Some(q) => match self.schema.merge(Some(&q), entry) {
                Ok(Some(merged)) => merged,
                _ => q,
            },
            None => entry.to_vec(),
        };
        tx.insert(&self.insert_queue, &key, &value)?;
        self.queue_notify.notify_one();
        Ok(())
    }

    /// Number of entries, Merkle todo, GC todo and insert queue lengths.
    pub fn stats(&self) -> Result<TableStats, TableError> {
        let e = db_err(self.name);
        Ok(TableStats {
            table: self.name.to_string(),
            items: self.store.len().map_err(&e)? as u64,
            merkle_todo: self.merkle_todo.len().map_err(&e)? as u64,
            gc_todo: self.gc_todo.len().map_err(&e)? as u64,
            insert_queue: self.insert_queue.len().map_err(&e)? as u64,
        })
    }
}

/// Per-table counters shown by `garage stats`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TableStats {
    pub table: String,
    pub items: u64,
    pub merkle_todo: u64,
    pub gc_todo: u64,
    pub insert_queue: u64,
}

/// Increments a big-endian byte string; false if it overflowed (all 0xff).
fn increment(bytes: &mut [u8]) -> bool {
    for b in bytes.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return true;
        }
    }
    false
}
