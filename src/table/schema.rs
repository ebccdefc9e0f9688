//! What a table is made of: its partition key, sort key, CRDT entry type, filter, and the
//! `updated` hook that runs inside the local transaction that changes an entry (this is how
//! tables trigger each other). The engine itself is byte-oriented: [`ErasedSchema`] is the
//! schema seen through encoded entries, implemented once for every [`TableSchema`].

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::TableError;
use crate::db::{Transaction, TxOpResult};
use crate::util::crdt::Crdt;
use crate::util::encode::Migrate;
use crate::util::ids::{blake2sum, Hash, Uuid};

/// The key that decides where an entry lives: its hash picks the partition.
pub trait PartitionKey:
    Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    fn hash(&self) -> Hash;
}

/// The key that orders entries within a partition key.
pub trait SortKey: Clone + Send + Sync + 'static {
    fn sort_key(&self) -> &[u8];
}

/// The unit key, for tables with one entry per partition key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyKey;

impl SortKey for EmptyKey {
    fn sort_key(&self) -> &[u8] {
        &[]
    }
}

impl PartitionKey for EmptyKey {
    fn hash(&self) -> Hash {
        Hash([0; 32])
    }
}

impl SortKey for String {
    fn sort_key(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartitionKey for String {
    fn hash(&self) -> Hash {
        blake2sum(self.as_bytes())
    }
}

impl SortKey for Uuid {
    fn sort_key(&self) -> &[u8] {
        &self.0
    }
}

impl PartitionKey for Uuid {
    fn hash(&self) -> Hash {
        blake2sum(&self.0)
    }
}

impl SortKey for Hash {
    fn sort_key(&self) -> &[u8] {
        &self.0
    }
}

/// A hash is its own partition hash: entries keyed by a block hash live with the block.
impl PartitionKey for Hash {
    fn hash(&self) -> Hash {
        *self
    }
}

/// An entry of a table: a CRDT with a versioned encoding.
pub trait Entry<P: PartitionKey, S: SortKey>:
    Crdt + PartialEq + Clone + Migrate + Send + Sync + 'static
{
    fn partition_key(&self) -> &P;
    fn sort_key(&self) -> &S;
    /// A tombstone is a deletion marker that GC may eventually remove (DESIGN.md §7).
    fn is_tombstone(&self) -> bool {
        false
    }
}

/// The typed definition of a table.
pub trait TableSchema: Send + Sync + 'static {
    const NAME: &'static str;
    type P: PartitionKey;
    type S: SortKey;
    type E: Entry<Self::P, Self::S>;
    type Filter: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Runs inside the transaction that changed an entry locally (`old` → `new`). It may write
    /// to other trees of the same database, e.g. another table's insert queue or a counter.
    fn updated(
        &self,
        _tx: &mut Transaction<'_>,
        _old: Option<&Self::E>,
        _new: Option<&Self::E>,
    ) -> TxOpResult<()> {
        Ok(())
    }

    /// Whether `entry` passes `filter` in range reads.
    fn matches_filter(_entry: &Self::E, _filter: &Self::Filter) -> bool {
        true
    }
}

/// The tree key of an entry: partition key hash ‖ sort key.
pub fn tree_key(pkh: &Hash, sort_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + sort_key.len());
    k.extend_from_slice(&pkh.0);
    k.extend_from_slice(sort_key);
    k
}

/// A schema seen through encoded entries: what the byte-oriented engine needs.
pub trait ErasedSchema: Send + Sync {
    fn name(&self) -> &'static str;
    /// The tree key of an encoded entry.
    fn tree_key(&self, entry: &[u8]) -> Result<Vec<u8>, TableError>;
    /// Merges `incoming` into `existing`; returns the new encoding if anything changed.
    fn merge(
        &self,
        existing: Option<&[u8]>,
        incoming: &[u8],
    ) -> Result<Option<Vec<u8>>, TableError>;
    fn is_tombstone(&self, entry: &[u8]) -> bool;
    fn updated(
        &self,
        tx: &mut Transaction<'_>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> TxOpResult<()>;
    fn matches_filter(&self, entry: &[u8], filter: Option<&[u8]>) -> bool;
}

/// Implements [`ErasedSchema`] for a typed schema.
pub struct SchemaAdapter<S: TableSchema>(pub Arc<S>);

fn decode<S: TableSchema>(bytes: &[u8]) -> Result<S::E, TableError> {
    S::E::decode(bytes).map_err(|e| TableError::Decode {
        table: S::NAME,
        message: e.to_string(),
    })
}

fn encode<S: TableSchema>(e: &S::E) -> Result<Vec<u8>, TableError> {
    e.encode().map_err(|e| TableError::Decode {
        table: S::NAME,
        message: e.to_string(),
    })
}

impl<S: TableSchema> ErasedSchema for SchemaAdapter<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn tree_key(&self, entry: &[u8]) -> Result<Vec<u8>, TableError> {
        let e = decode::<S>(entry)?;
        Ok(tree_key(&e.partition_key().hash(), e.sort_key().sort_key()))
    }

    fn merge(
        &self,
        existing: Option<&[u8]>,
        incoming: &[u8],
    ) -> Result<Option<Vec<u8>>, TableError> {
        let new = decode::<S>(incoming)?;
        match existing {
            None => Ok(Some(encode::<S>(&new)?)),
            Some(old_bytes) => {
                let old = decode::<S>(old_bytes)?;
                let mut merged = old.clone();
                merged.merge(&new);
                if merged == old {
                    Ok(None)
                } else {
                    Ok(Some(encode::<S>(&merged)?))
                }
            }
        }
    }

    fn is_tombstone(&self, entry: &[u8]) -> bool {
        decode::<S>(entry)
            .map(|e| e.is_tombstone())
            .unwrap_or(false)
    }

    fn updated(
        &self,
        tx: &mut Transaction<'_>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> TxOpResult<()> {
        let old = old.and_then(|b| decode::<S>(b).ok());
        let new = match new.map(decode::<S>) {
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => {
                warn!("{}: cannot decode updated entry for hooks: {}", S::NAME, e);
                None
            }
            None => None,
        };
        self.0.updated(tx, old.as_ref(), new.as_ref())
    }

    fn matches_filter(&self, entry: &[u8], filter: Option<&[u8]>) -> bool {
        let Some(filter) = filter else {
            return true;
        };
        match (
            decode::<S>(entry),
            rmp_serde::from_slice::<S::Filter>(filter),
        ) {
            (Ok(e), Ok(f)) => S::matches_filter(&e, &f),
            _ => false,
        }
    }
}
