//! The Merkle trie of a table, used by anti-entropy to find differences between replicas
//! without comparing every entry.
//!
//! Items are placed by `kh = BLAKE2(tree key)`; an item's leaf hash is
//! `lh = BLAKE2(tree key ‖ BLAKE2(value))`. For each partition `p` (first byte of the tree key)
//! the trie has three levels of nodes, each holding the XOR of the leaf hashes below it and their
//! count: the root `(p)`, then `(p, kh[0])`, then `(p, kh[0], kh[1])`, then the leaves. XOR makes
//! an update touch exactly three nodes, in any order. Formats:
//! - `merkle_nodes`: `depth ‖ p ‖ kh[..depth]` → `xor (32) ‖ count (u64 BE)`;
//! - `merkle_leaves`: `p ‖ kh` → `lh (32) ‖ tree key`.
//!
//! The updater worker consumes `merkle_todo` in the background; each item is applied in one
//! transaction together with the removal of its todo entry (if unchanged meanwhile).

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::data::{db_err, TableData};
use super::TableError;
use crate::db::{TxError, TxResult};
use crate::util::background::{WorkerHandle, WorkerState};
use crate::util::ids::{blake2sum, Hash};

/// Depth of the deepest inner nodes (leaves hang below them).
pub const MAX_DEPTH: u8 = 2;

/// A node of the trie: XOR of its leaf hashes and their count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub xor: Hash,
    pub count: u64,
}

/// A node's position: partition and key-hash prefix (0 to [`MAX_DEPTH`] bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeKey {
    pub partition: u8,
    #[serde(with = "serde_bytes")]
    pub prefix: Vec<u8>,
}

impl NodeKey {
    pub fn root(partition: u8) -> Self {
        Self {
            partition,
            prefix: vec![],
        }
    }
    fn encode(&self) -> Vec<u8> {
        let mut k = vec![self.prefix.len() as u8, self.partition];
        k.extend_from_slice(&self.prefix);
        k
    }
    pub fn child(&self, b: u8) -> Self {
        let mut prefix = self.prefix.clone();
        prefix.push(b);
        Self {
            partition: self.partition,
            prefix,
        }
    }
}

fn xor(a: &mut Hash, b: &Hash) {
    for (x, y) in a.0.iter_mut().zip(b.0.iter()) {
        *x ^= y;
    }
}

fn decode_summary(v: &[u8]) -> NodeSummary {
    if v.len() != 40 {
        return NodeSummary::default();
    }
    let mut xor = [0u8; 32];
    xor.copy_from_slice(&v[..32]);
    let mut c = [0u8; 8];
    c.copy_from_slice(&v[32..]);
    NodeSummary {
        xor: Hash(xor),
        count: u64::from_be_bytes(c),
    }
}

fn encode_summary(s: &NodeSummary) -> Vec<u8> {
    let mut v = s.xor.0.to_vec();
    v.extend_from_slice(&s.count.to_be_bytes());
    v
}

fn leaf_key(partition: u8, kh: &Hash) -> Vec<u8> {
    let mut k = vec![partition];
    k.extend_from_slice(&kh.0);
    k
}

impl TableData {
    /// Applies one todo item to the trie. Returns false if the item was not found.
    fn merkle_apply(&self, key: &[u8], todo_value: &[u8]) -> Result<(), TableError> {
        let Some(&partition) = key.first() else {
            // Not a valid tree key: drop the todo entry.
            let _ = self.merkle_todo.remove(key);
            return Ok(());
        };
        let kh = blake2sum(key);
        let new_lh = (!todo_value.is_empty()).then(|| {
            let mut b = key.to_vec();
            b.extend_from_slice(todo_value);
            blake2sum(&b)
        });
        let lkey = leaf_key(partition, &kh);
        let res: TxResult<(), ()> = self.db.transaction(|tx| {
            // Apply only if the todo item still holds this value: the updater worker and a sync
            // round's flush may process the same item concurrently, and a stale value applied
            // after a newer one would leave the trie differing from the store for good.
            if tx.get(&self.merkle_todo, key)?.as_deref() != Some(todo_value) {
                return Ok(());
            }
            let old_lh = tx
                .get(&self.merkle_leaves, &lkey)?
                .and_then(|v| Hash::try_from_slice(v.get(..32).unwrap_or_default()));
            if old_lh != new_lh {
                match &new_lh {
                    Some(lh) => {
                        let mut v = lh.0.to_vec();
                        v.extend_from_slice(key);
                        tx.insert(&self.merkle_leaves, &lkey, &v)?;
                    }
                    None => {
                        tx.remove(&self.merkle_leaves, &lkey)?;
                    }
                }
                for depth in 0..=MAX_DEPTH as usize {
                    let nk = NodeKey {
                        partition,
                        prefix: kh.0[..depth].to_vec(),
                    }
                    .encode();
                    let mut s = tx
                        .get(&self.merkle_nodes, &nk)?
                        .map(|v| decode_summary(&v))
                        .unwrap_or_default();
                    if let Some(o) = &old_lh {
                        xor(&mut s.xor, o);
                        s.count = s.count.saturating_sub(1);
                    }
                    if let Some(n) = &new_lh {
                        xor(&mut s.xor, n);
                        s.count += 1;
                    }
                    if s.count == 0 {
                        tx.remove(&self.merkle_nodes, &nk)?;
                    } else {
                        tx.insert(&self.merkle_nodes, &nk, &encode_summary(&s))?;
                    }
                }
            }
            tx.remove(&self.merkle_todo, key)?;
            Ok(())
        });
        res.map_err(|e| TableError::Db {
            table: self.name,
            message: match e {
                TxError::Db(e) => e.to_string(),
                TxError::Abort(()) => "aborted".into(),
            },
        })
    }

    /// Processes up to `batch` todo items; returns how many were processed.
    pub fn merkle_update_batch(&self, batch: usize) -> Result<usize, TableError> {
        let mut items = vec![];
        let iter = self.merkle_todo.iter().map_err(db_err(self.name))?;
        for item in iter.take(batch) {
            let (k, v) = item.map_err(db_err(self.name))?;
            items.push((k, v));
        }
        for (k, v) in &items {
            self.merkle_apply(k, v)?;
        }
        Ok(items.len())
    }

    /// The summary of a trie node (zero if absent).
    pub fn merkle_node(&self, key: &NodeKey) -> Result<NodeSummary, TableError> {
        Ok(self
            .merkle_nodes
            .get(&key.encode())
            .map_err(db_err(self.name))?
            .map(|v| decode_summary(&v))
            .unwrap_or_default())
    }

    /// The non-empty children of an inner node (depth < MAX_DEPTH), by next byte.
    pub fn merkle_children(&self, key: &NodeKey) -> Result<Vec<(u8, NodeSummary)>, TableError> {
        let child_depth = key.prefix.len() + 1;
        let mut low = vec![child_depth as u8, key.partition];
        low.extend_from_slice(&key.prefix);
        let mut out = vec![];
        let iter = self
            .merkle_nodes
            .range(Bound::Included(low.as_slice()), Bound::Unbounded)
            .map_err(db_err(self.name))?;
        for item in iter {
            let (k, v) = item.map_err(db_err(self.name))?;
            if !k.starts_with(&low) || k.len() != low.len() + 1 {
                break;
            }
            out.push((k[low.len()], decode_summary(&v)));
        }
        Ok(out)
    }

    /// The leaves below a node of depth MAX_DEPTH: (key hash, leaf hash, tree key).
    pub fn merkle_leaves_under(
        &self,
        key: &NodeKey,
    ) -> Result<Vec<(Hash, Hash, Vec<u8>)>, TableError> {
        let mut low = vec![key.partition];
        low.extend_from_slice(&key.prefix);
        let mut out = vec![];
        let iter = self
            .merkle_leaves
            .range(Bound::Included(low.as_slice()), Bound::Unbounded)
            .map_err(db_err(self.name))?;
        for item in iter {
            let (k, v) = item.map_err(db_err(self.name))?;
            if !k.starts_with(&low) {
                break;
            }
            let (Some(kh), Some(lh)) = (
                Hash::try_from_slice(k.get(1..33).unwrap_or_default()),
                Hash::try_from_slice(v.get(..32).unwrap_or_default()),
            ) else {
                continue;
            };
            out.push((kh, lh, v[32..].to_vec()));
        }
        Ok(out)
    }
}

impl TableData {
    /// Deletes the local entries of `partition` (after they were pushed to every holder).
    pub fn drop_partition(&self, partition: u8) -> Result<usize, TableError> {
        let mut level = vec![NodeKey::root(partition)];
        for _ in 0..MAX_DEPTH {
            let mut next = vec![];
            for k in &level {
                for (b, _) in self.merkle_children(k)? {
                    next.push(k.child(b));
                }
            }
            level = next;
        }
        let mut n = 0;
        for k in &level {
            for (_, _, tree_key) in self.merkle_leaves_under(k)? {
                if let Some(v) = self.read_entry(&tree_key)? {
                    if self.delete_if_equal(&tree_key, &v)? {
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }
}

/// The Merkle updater worker of one table, until shutdown.
pub async fn run_updater(
    data: Arc<TableData>,
    worker: WorkerHandle,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let d = data.clone();
        let res = tokio::task::spawn_blocking(move || d.merkle_update_batch(100)).await;
        match res {
            Ok(Ok(n)) if n > 0 => {
                worker.set_state(WorkerState::Busy);
                worker.ok();
                if *stop.borrow() {
                    return;
                }
                continue;
            }
            Ok(Ok(_)) => {
                worker.set_state(WorkerState::Idle);
                worker.set_queue_length(Some(0));
            }
            Ok(Err(e)) => {
                worker.error(e.to_string());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => worker.error(format!("updater task failed: {e}")),
        }
        tokio::select! {
            _ = data.merkle_notify.notified() => (),
            _ = tokio::time::sleep(Duration::from_secs(10)) => (),
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::{Transaction, TxOpResult};
    use crate::table::schema::ErasedSchema;

    /// Entries are `key=value` bytes; the tree key is a hash of the key (partition) ‖ the key.
    struct RawSchema;

    impl ErasedSchema for RawSchema {
        fn name(&self) -> &'static str {
            "raw"
        }
        fn tree_key(&self, entry: &[u8]) -> Result<Vec<u8>, TableError> {
            let key = entry.split(|b| *b == b'=').next().unwrap_or_default();
            let mut k = blake2sum(key).0.to_vec();
            k.extend_from_slice(key);
            Ok(k)
        }
        fn merge(&self, old: Option<&[u8]>, new: &[u8]) -> Result<Option<Vec<u8>>, TableError> {
            Ok((old != Some(new)).then(|| new.to_vec()))
        }
        fn is_tombstone(&self, _: &[u8]) -> bool {
            false
        }
        fn updated(
            &self,
            _: &mut Transaction<'_>,
            _: Option<&[u8]>,
            _: Option<&[u8]>,
        ) -> TxOpResult<()> {
            Ok(())
        }
        fn matches_filter(&self, _: &[u8], _: Option<&[u8]>) -> bool {
            true
        }
    }

    fn root_of(d: &TableData, entry: &[u8]) -> NodeSummary {
        let key = RawSchema.tree_key(entry).expect("key");
        d.merkle_node(&NodeKey::root(key[0])).expect("root")
    }

    /// A todo value applied late (the updater and a sync flush both held it) must not replace
    /// the trie's leaf for a newer value: the trie must always end up matching the store.
    #[test]
    fn a_stale_todo_value_is_not_applied_after_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = crate::db::OpenOptions {
            engine: "sled".into(),
            fsync: false,
            sled_cache_capacity: 1 << 20,
            sled_flush_every_ms: 0,
        };
        let db = crate::db::open(dir.path(), &opts).expect("db");
        let d = TableData::open(&db, "raw", Arc::new(RawSchema)).expect("table");
        d.update_entry(b"k=v1").expect("v1");
        let stale: Vec<(Vec<u8>, Vec<u8>)> = d
            .merkle_todo
            .iter()
            .expect("iter")
            .map(|r| r.expect("item"))
            .collect();
        assert_eq!(stale.len(), 1);
        d.update_entry(b"k=v2").expect("v2");
        assert_eq!(d.merkle_update_batch(10).expect("batch"), 1);
        let settled = root_of(&d, b"k=v2");
        // The stale item arrives now.
        for (k, v) in &stale {
            d.merkle_apply(k, v).expect("apply");
        }
        assert_eq!(
            root_of(&d, b"k=v2"),
            settled,
            "trie unchanged by the stale value"
        );
        // And it equals the trie of a table that only ever saw v2.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let db2 = crate::db::open(dir2.path(), &opts).expect("db");
        let d2 = TableData::open(&db2, "raw", Arc::new(RawSchema)).expect("table");
        d2.update_entry(b"k=v2").expect("v2");
        d2.merkle_update_batch(10).expect("batch");
        assert_eq!(root_of(&d2, b"k=v2"), settled);
    }
}
