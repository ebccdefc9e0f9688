//! The `block_ref` table (sharded by block hash, so it lives on the nodes that store the block):
//! one entry per (block, version). Its hook keeps the local reference count of each block in
//! step, inside the same transaction: a live reference increments it, a deleted one decrements.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::db::{Transaction, TxOpResult};
use crate::table::schema::{Entry, TableSchema};
use crate::util::crdt::{Bool, Crdt};
use crate::util::encode::{Migrate, NoPrevious};
use crate::util::ids::{Hash, Uuid};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub block: Hash,
    pub version: Uuid,
    pub deleted: Bool,
}

impl BlockRef {
    pub fn new(block: Hash, version: Uuid) -> Self {
        Self {
            block,
            version,
            deleted: Bool::new(false),
        }
    }
    pub fn deleted(block: Hash, version: Uuid) -> Self {
        Self {
            block,
            version,
            deleted: Bool::new(true),
        }
    }
}

impl Crdt for BlockRef {
    fn merge(&mut self, o: &Self) {
        self.deleted.merge(&o.deleted);
    }
}

impl Migrate for BlockRef {
    const VERSION_MARKER: &'static [u8] = b"Gblockref1";
    type Previous = NoPrevious;
    fn migrate(p: NoPrevious) -> Self {
        match p {}
    }
}

impl Entry<Hash, Uuid> for BlockRef {
    fn partition_key(&self) -> &Hash {
        &self.block
    }
    fn sort_key(&self) -> &Uuid {
        &self.version
    }
    fn is_tombstone(&self) -> bool {
        self.deleted.get()
    }
}

/// Local reference counting of blocks, implemented by the block manager.
pub trait BlockRefCounter: Send + Sync {
    fn incref(&self, tx: &mut Transaction<'_>, block: &Hash) -> TxOpResult<()>;
    fn decref(&self, tx: &mut Transaction<'_>, block: &Hash) -> TxOpResult<()>;
}

impl BlockRefCounter for crate::block::manager::BlockManager {
    fn incref(&self, tx: &mut Transaction<'_>, block: &Hash) -> TxOpResult<()> {
        crate::block::manager::BlockManager::incref(self, tx, block)
    }
    fn decref(&self, tx: &mut Transaction<'_>, block: &Hash) -> TxOpResult<()> {
        crate::block::manager::BlockManager::decref(self, tx, block)
    }
}

pub struct BlockRefTable {
    pub counter: Arc<dyn BlockRefCounter>,
}

impl TableSchema for BlockRefTable {
    const NAME: &'static str = "block_ref_v1";
    type P = Hash;
    type S = Uuid;
    type E = BlockRef;
    type Filter = ();

    fn updated(
        &self,
        tx: &mut Transaction<'_>,
        old: Option<&BlockRef>,
        new: Option<&BlockRef>,
    ) -> TxOpResult<()> {
        let was = old.is_some_and(|o| !o.deleted.get());
        let is = new.is_some_and(|n| !n.deleted.get());
        let block = match (old, new) {
            (Some(o), _) => o.block,
            (None, Some(n)) => n.block,
            (None, None) => return Ok(()),
        };
        if is && !was {
            self.counter.incref(tx, &block)?;
        } else if was && !is {
            self.counter.decref(tx, &block)?;
        }
        Ok(())
    }
}
