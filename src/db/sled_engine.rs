//! The sled engine behind [`super::Engine`]. Trees are sled trees; a transaction runs over every
//! tree opened so far (sled transactions over a slice of trees), so it is atomic across trees.

use std::cell::Cell;
use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
    UnabortableTransactionError,
};

use super::{Engine, Error, Result, Tx, TxFn, TxOpError, TxOpResult, Value, ValueIter};

fn engine_err(e: sled::Error) -> Error {
    Error::Engine(e.to_string())
}

/// A sled database with the trees opened so far, indexed by position.
pub struct SledEngine {
    db: sled::Db,
    trees: RwLock<Vec<(String, sled::Tree)>>,
}

impl SledEngine {
    /// Opens or creates the database in `path`.
    pub fn open(path: &Path, cache_capacity: u64, flush_every_ms: u64) -> Result<Self> {
        let db = sled::Config::default()
            .path(path)
            .cache_capacity(cache_capacity)
            .flush_every_ms(if flush_every_ms == 0 {
                None
            } else {
                Some(flush_every_ms)
            })
            .open()
            .map_err(|e| Error::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            db,
            trees: RwLock::new(Vec::new()),
        })
    }

    fn tree(&self, id: usize) -> Result<sled::Tree> {
        let trees = self
            .trees
            .read()
            .map_err(|_| Error::Engine("tree registry lock poisoned".into()))?;
        trees
            .get(id)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| Error::Engine(format!("no open tree with index {}", id)))
    }

    fn all_trees(&self) -> Result<Vec<sled::Tree>> {
        let trees = self
            .trees
            .read()
            .map_err(|_| Error::Engine("tree registry lock poisoned".into()))?;
        Ok(trees.iter().map(|(_, t)| t.clone()).collect())
    }
}

fn to_owned_bound(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// An empty range (`low > high`) makes sled panic; detect it and return nothing instead.
fn is_empty_range(low: &Bound<Vec<u8>>, high: &Bound<Vec<u8>>) -> bool {
    match (low, high) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l), Bound::Excluded(h))
        | (Bound::Excluded(l), Bound::Included(h))
        | (Bound::Excluded(l), Bound::Excluded(h)) => l >= h,
        _ => false,
    }
}

fn convert_iter<I>(iter: I) -> ValueIter<'static>
where
    I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + Send + 'static,
{
    Box::new(iter.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine_err)))
}

impl Engine for SledEngine {
    fn engine_name(&self) -> &'static str {
        "sled"
    }

    fn open_tree(&self, name: &str) -> Result<usize> {
        let mut trees = self
            .trees
            .write()
            .map_err(|_| Error::Engine("tree registry lock poisoned".into()))?;
        if let Some(i) = trees.iter().position(|(n, _)| n == name) {
            return Ok(i);
        }
        let tree = self.db.open_tree(name).map_err(engine_err)?;
        trees.push((name.to_string(), tree));
        Ok(trees.len() - 1)
    }

    fn list_trees(&self) -> Result<Vec<String>> {
        Ok(self
            .db
            .tree_names()
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .filter(|n| n != "__sled__default")
            .collect())
    }

    fn get(&self, tree: usize, key: &[u8]) -> Result<Option<Value>> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(engine_err)?
            .map(|v| v.to_vec()))
    }

    fn len(&self, tree: usize) -> Result<usize> {
        Ok(self.tree(tree)?.len())
    }

    fn insert(&self, tree: usize, key: &[u8], value: &[u8]) -> Result<Option<Value>> {
        Ok(self
            .tree(tree)?
            .insert(key, value)
            .map_err(engine_err)?
            .map(|v| v.to_vec()))
    }

    fn remove(&self, tree: usize, key: &[u8]) -> Result<Option<Value>> {
        Ok(self
            .tree(tree)?
            .remove(key)
            .map_err(engine_err)?
            .map(|v| v.to_vec()))
    }

    fn clear(&self, tree: usize) -> Result<()> {
        self.tree(tree)?.clear().map_err(engine_err)
    }

    fn range<'r>(
        &self,
        tree: usize,
        low: Bound<&'r [u8]>,
        high: Bound<&'r [u8]>,
    ) -> Result<ValueIter<'static>> {
        let (low, high) = (to_owned_bound(low), to_owned_bound(high));
        if is_empty_range(&low, &high) {
            return Ok(Box::new(std::iter::empty()));
        }
        Ok(convert_iter(
            self.tree(tree)?.range::<Vec<u8>, _>((low, high)),
        ))
    }

    fn range_rev<'r>(
        &self,
        tree: usize,
        low: Bound<&'r [u8]>,
        high: Bound<&'r [u8]>,
    ) -> Result<ValueIter<'static>> {
        let (low, high) = (to_owned_bound(low), to_owned_bound(high));
        if is_empty_range(&low, &high) {
            return Ok(Box::new(std::iter::empty()));
        }
        Ok(convert_iter(
            self.tree(tree)?.range::<Vec<u8>, _>((low, high)).rev(),
        ))
    }

    fn transaction(&self, f: &dyn TxFn) -> std::result::Result<(), Error> {
        let trees = self.all_trees()?;
        let res = trees.as_slice().transaction(|ttrees| {
            let mut tx = SledTx {
                trees: ttrees,
                conflict: Cell::new(false),
            };
            match f.run(&mut tx) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ConflictableTransactionError::Abort(None)),
                // A conflict with a concurrent transaction: let sled run the body again.
                Err(_) if tx.conflict.get() => Err(ConflictableTransactionError::Conflict),
                Err(TxOpError(e)) => Err(ConflictableTransactionError::Abort(Some(e))),
            }
        });
        match res {
            Ok(()) => Ok(()),
            // The body chose to abort: its value is kept by the caller.
            Err(TransactionError::Abort(None)) => Ok(()),
            Err(TransactionError::Abort(Some(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(engine_err(e)),
        }
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(engine_err)
    }
}

struct SledTx<'a> {
    trees: &'a [TransactionalTree],
    conflict: Cell<bool>,
}

impl SledTx<'_> {
    fn tree(&self, id: usize) -> TxOpResult<&TransactionalTree> {
        self.trees
            .get(id)
            .ok_or_else(|| TxOpError(Error::Engine(format!("no open tree with index {}", id))))
    }

    fn map_err(&self, e: UnabortableTransactionError) -> TxOpError {
        if matches!(e, UnabortableTransactionError::Conflict) {
            self.conflict.set(true);
        }
        TxOpError(Error::Engine(e.to_string()))
    }
}

impl Tx for SledTx<'_> {
    fn get(&self, tree: usize, key: &[u8]) -> TxOpResult<Option<Value>> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(|e| self.map_err(e))?
            .map(|v| v.to_vec()))
    }
    fn insert(&mut self, tree: usize, key: &[u8], value: &[u8]) -> TxOpResult<Option<Value>> {
        Ok(self
            .tree(tree)?
            .insert(key, value)
            .map_err(|e| self.map_err(e))?
            .map(|v| v.to_vec()))
    }
    fn remove(&mut self, tree: usize, key: &[u8]) -> TxOpResult<Option<Value>> {
        Ok(self
            .tree(tree)?
            .remove(key)
            .map_err(|e| self.map_err(e))?
            .map(|v| v.to_vec()))
    }
}
