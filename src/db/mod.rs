//! The metadata engine abstraction: named trees of byte keys and values, point operations,
//! ordered range scans in both directions, atomic transactions over several trees, and flush.
//!
//! Tables and queues use only this interface, so an engine can be swapped (sled is the first;
//! LMDB or SQLite can follow) without touching them. The shared test suite in `tests.rs` is
//! written against [`Db`] and runs on every engine.
//!
//! Durability: with `fsync_on_commit` (config `metadata_fsync`), every transaction and every
//! single write is flushed to disk before it returns; otherwise the engine flushes periodically
//! (`sled_flush_every_ms`) and on [`Db::flush`].

pub mod sled_engine;
#[cfg(test)]
mod tests;

use std::ops::Bound;
use std::sync::Arc;

/// A key or value.
pub type Value = Vec<u8>;
/// An ordered iterator over `(key, value)` pairs.
pub type ValueIter<'a> = Box<dyn Iterator<Item = Result<(Value, Value)>> + Send + 'a>;
/// Result of engine operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Errors of the metadata engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metadata database error: {0}")]
    Engine(String),
    #[error("unknown metadata engine {name:?} (supported: sled)")]
    UnknownEngine { name: String },
    #[error("cannot open metadata database at {path}: {reason}")]
    Open { path: String, reason: String },
}

/// How a transaction ended.
#[derive(Debug)]
pub enum TxError<E> {
    /// The transaction function chose to abort with this value; nothing was written.
    Abort(E),
    /// The engine failed; nothing was written.
    Db(Error),
}

impl<E> From<Error> for TxError<E> {
    fn from(e: Error) -> Self {
        TxError::Db(e)
    }
}

/// Result of a transaction function.
pub type TxResult<R, E> = std::result::Result<R, TxError<E>>;
/// Result of one operation inside a transaction (an engine error aborts the transaction).
pub type TxOpResult<T> = std::result::Result<T, TxOpError>;

/// An engine error inside a transaction; propagate it with `?` to abort.
#[derive(Debug)]
pub struct TxOpError(pub Error);

impl<E> From<TxOpError> for TxError<E> {
    fn from(e: TxOpError) -> Self {
        TxError::Db(e.0)
    }
}

/// What an engine implements. Trees are designated by the index returned by `open_tree`.
pub trait Engine: Send + Sync {
    fn engine_name(&self) -> &'static str;
    fn open_tree(&self, name: &str) -> Result<usize>;
    fn list_trees(&self) -> Result<Vec<String>>;

    fn get(&self, tree: usize, key: &[u8]) -> Result<Option<Value>>;
    fn len(&self, tree: usize) -> Result<usize>;
    fn insert(&self, tree: usize, key: &[u8], value: &[u8]) -> Result<Option<Value>>;
    fn remove(&self, tree: usize, key: &[u8]) -> Result<Option<Value>>;
    fn clear(&self, tree: usize) -> Result<()>;

    fn range<'r>(
        &self,
        tree: usize,
        low: Bound<&'r [u8]>,
        high: Bound<&'r [u8]>,
    ) -> Result<ValueIter<'static>>;
    fn range_rev<'r>(
        &self,
        tree: usize,
        low: Bound<&'r [u8]>,
        high: Bound<&'r [u8]>,
    ) -> Result<ValueIter<'static>>;

    /// Runs `f` atomically over all trees; the engine may run it several times on conflict.
    fn transaction(&self, f: &dyn TxFn) -> std::result::Result<(), Error>;
    fn flush(&self) -> Result<()>;
}

/// The operations available inside a transaction (point operations only).
pub trait Tx {
    fn get(&self, tree: usize, key: &[u8]) -> TxOpResult<Option<Value>>;
    fn insert(&mut self, tree: usize, key: &[u8], value: &[u8]) -> TxOpResult<Option<Value>>;
    fn remove(&mut self, tree: usize, key: &[u8]) -> TxOpResult<Option<Value>>;
}

/// A type-erased transaction body. `Ok(true)` commits, `Ok(false)` aborts.
pub trait TxFn {
    fn run(&self, tx: &mut dyn Tx) -> TxOpResult<bool>;
}

/// A handle to an open metadata database.
#[derive(Clone)]
pub struct Db {
    engine: Arc<dyn Engine>,
    fsync_on_commit: bool,
}

/// A named tree of a [`Db`].
#[derive(Clone)]
pub struct Tree {
    db: Db,
    id: usize,
    name: Arc<str>,
}

/// A transaction in progress, handed to the closure given to [`Db::transaction`].
pub struct Transaction<'a> {
    tx: &'a mut dyn Tx,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.engine.engine_name())
    }
}

impl Db {
    pub fn new(engine: Arc<dyn Engine>, fsync_on_commit: bool) -> Self {
        Self {
            engine,
            fsync_on_commit,
        }
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.engine_name()
    }

    /// Opens (creating if needed) the tree called `name`.
    pub fn open_tree(&self, name: &str) -> Result<Tree> {
        let id = self.engine.open_tree(name)?;
        Ok(Tree {
            db: self.clone(),
            id,
            name: Arc::from(name),
        })
    }

    pub fn list_trees(&self) -> Result<Vec<String>> {
        self.engine.list_trees()
    }

    /// Runs `f` atomically: either every write it made is applied, or none is. The closure may
    /// be run more than once (on engine conflicts), so it must not have side effects outside
    /// the transaction. Returns the closure's value, or `TxError::Abort` if it aborted.
    pub fn transaction<R, E, F>(&self, f: F) -> TxResult<R, E>
    where
        F: Fn(&mut Transaction<'_>) -> TxResult<R, E>,
    {
        struct Body<R, E, F> {
            f: F,
            outcome: std::cell::RefCell<Option<TxResult<R, E>>>,
        }
        impl<R, E, F> TxFn for Body<R, E, F>
        where
            F: Fn(&mut Transaction<'_>) -> TxResult<R, E>,
        {
            fn run(&self, tx: &mut dyn Tx) -> TxOpResult<bool> {
                let res = (self.f)(&mut Transaction { tx });
                let commit = match &res {
                    Ok(_) => true,
                    Err(TxError::Abort(_)) => false,
                    Err(TxError::Db(e)) => {
                        let err = TxOpError(Error::Engine(e.to_string()));
                        *self.outcome.borrow_mut() = Some(res);
                        return Err(err);
                    }
                };
                *self.outcome.borrow_mut() = Some(res);
                Ok(commit)
            }
        }
        let body = Body {
            f,
            outcome: std::cell::RefCell::new(None),
        };
        let engine_result = self.engine.transaction(&body);
        let outcome = body.outcome.into_inner();
        match (engine_result, outcome) {
            (Ok(()), Some(res)) => {
                if res.is_ok() && self.fsync_on_commit {
                    self.engine.flush()?;
                }
                res
            }
            (Ok(()), None) => Err(TxError::Db(Error::Engine(
                "transaction ended without running".into(),
            ))),
            (Err(_), Some(Err(e))) => Err(e),
            (Err(e), _) => Err(TxError::Db(e)),
        }
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        self.engine.flush()
    }

    fn after_write(&self) -> Result<()> {
        if self.fsync_on_commit {
            self.engine.flush()?;
        }
        Ok(())
    }
}

impl Tree {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn db(&self) -> &Db {
        &self.db
    }
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.db.engine.get(self.id, key)
    }
    pub fn len(&self) -> Result<usize> {
        self.db.engine.len(self.id)
    }
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.first()?.is_none())
    }
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Value>> {
        let old = self.db.engine.insert(self.id, key, value)?;
        self.db.after_write()?;
        Ok(old)
    }
    pub fn remove(&self, key: &[u8]) -> Result<Option<Value>> {
        let old = self.db.engine.remove(self.id, key)?;
        self.db.after_write()?;
        Ok(old)
    }
    pub fn clear(&self) -> Result<()> {
        self.db.engine.clear(self.id)?;
        self.db.after_write()
    }
    /// All entries in key order.
    pub fn iter(&self) -> Result<ValueIter<'static>> {
        self.db
            .engine
            .range(self.id, Bound::Unbounded, Bound::Unbounded)
    }
    /// All entries in reverse key order.
    pub fn iter_rev(&self) -> Result<ValueIter<'static>> {
        self.db
            .engine
            .range_rev(self.id, Bound::Unbounded, Bound::Unbounded)
    }
    /// Entries with keys within the bounds, in key order.
    pub fn range(&self, low: Bound<&[u8]>, high: Bound<&[u8]>) -> Result<ValueIter<'static>> {
        self.db.engine.range(self.id, low, high)
    }
    /// Entries with keys within the bounds, in reverse key order.
    pub fn range_rev(&self, low: Bound<&[u8]>, high: Bound<&[u8]>) -> Result<ValueIter<'static>> {
        self.db.engine.range_rev(self.id, low, high)
    }
    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(Value, Value)>> {
        self.iter()?.next().transpose()
    }
    /// The entry with the smallest key `>= key`.
    pub fn get_gte(&self, key: &[u8]) -> Result<Option<(Value, Value)>> {
        self.range(Bound::Included(key), Bound::Unbounded)?
            .next()
            .transpose()
    }
}

impl Transaction<'_> {
    pub fn get(&self, tree: &Tree, key: &[u8]) -> TxOpResult<Option<Value>> {
        self.tx.get(tree.id, key)
    }
    pub fn insert(&mut self, tree: &Tree, key: &[u8], value: &[u8]) -> TxOpResult<Option<Value>> {
        self.tx.insert(tree.id, key, value)
    }
    pub fn remove(&mut self, tree: &Tree, key: &[u8]) -> TxOpResult<Option<Value>> {
        self.tx.remove(tree.id, key)
    }
    /// Aborts the transaction with `value`.
    pub fn abort<R, E>(&self, value: E) -> TxResult<R, E> {
        Err(TxError::Abort(value))
    }
}

/// Options for opening a database, taken from the configuration.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub engine: String,
    pub fsync: bool,
    pub sled_cache_capacity: u64,
    pub sled_flush_every_ms: u64,
}

/// Opens the database of `engine` under `dir`.
pub fn open(dir: &std::path::Path, opts: &OpenOptions) -> Result<Db> {
    match opts.engine.as_str() {
        "sled" => {
            let engine = sled_engine::SledEngine::open(
                &dir.join("db"),
                opts.sled_cache_capacity,
                opts.sled_flush_every_ms,
            )?;
            Ok(Db::new(Arc::new(engine), opts.fsync))
        }
        other => Err(Error::UnknownEngine {
            name: other.to_string(),
        }),
    }
}
