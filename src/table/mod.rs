//! Replicated tables (DESIGN.md §7): the generic engine that stores every piece of metadata.
//!
//! A table is a [`schema::TableSchema`] (keys, CRDT entry, filter, `updated` hook) plus a
//! [`replication::Replication`] strategy (sharded over the layout's partitions, or full copy).
//! The engine is byte-oriented ([`core::TableCore`], [`data::TableData`]) under a thin typed
//! façade ([`typed::Table`]). Background workers keep replicas converged: the Merkle updater
//! (`merkle.rs`), anti-entropy with offload (`sync.rs`), tombstone GC (`gc.rs`), and the insert
//! queue through which tables trigger each other durably (`queue.rs`).

pub mod core;
pub mod data;
pub mod gc;
pub mod merkle;
pub mod queue;
pub mod registry;
pub mod replication;
pub mod rpc;
pub mod schema;
pub mod sync;
pub mod typed;

use crate::rpc::RpcError;
use crate::util::ids::NodeId;

/// Errors of table operations.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("table {table}: metadata database error: {message}")]
    Db {
        table: &'static str,
        message: String,
    },
    #[error("table {table}: cannot decode an entry: {message}")]
    Decode {
        table: &'static str,
        message: String,
    },
    #[error("table {table}: no cluster layout yet (assign roles with `garage layout assign` and apply them)")]
    NoLayout { table: &'static str },
    #[error("table {table}: unexpected answer from {peer:?}")]
    Protocol { table: &'static str, peer: NodeId },
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

impl TableError {
    pub(crate) fn unexpected(
        table: &'static str,
        peer: NodeId,
        _resp: &rpc::TableResponse,
    ) -> Self {
        Self::Protocol { table, peer }
    }
}
