//! The table RPC: reads, writes, conditional deletes and Merkle queries between the replicas of a
//! table (one endpoint per table, `garage/table/<name>`). Entries travel encoded; the receiving
//! node merges them into its local copy.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::data::TableData;
use super::merkle::{NodeKey, NodeSummary};
use super::replication::Replication;
use super::sync::SyncTrigger;
use crate::rpc::endpoint::{Handler, Rpc};
use crate::util::ids::{Hash, NodeId};

/// Requests between replicas.
#[derive(Debug, Serialize, Deserialize)]
pub enum TableRpc {
    /// One entry by tree key.
    ReadEntry {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Entries of one partition key.
    ReadRange {
        pkh: Hash,
        #[serde(with = "serde_bytes")]
        start: Option<Vec<u8>>,
        #[serde(with = "serde_bytes")]
        filter: Option<Vec<u8>>,
        limit: usize,
        reverse: bool,
    },
    /// Merge these encoded entries.
    Update(Vec<serde_bytes::ByteBuf>),
    /// Delete these entries if their value still hashes to the given hash (tombstone GC).
    DeleteIfEqualHash(Vec<(serde_bytes::ByteBuf, Hash)>),
    /// Summaries of trie nodes.
    MerkleNodes(Vec<NodeKey>),
    /// Non-empty children of trie nodes.
    MerkleChildren(Vec<NodeKey>),
    /// Leaves under deepest trie nodes: (key hash, leaf hash).
    MerkleLeaves(Vec<NodeKey>),
}

/// Answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum TableResponse {
    Entry(Option<serde_bytes::ByteBuf>),
    Entries(Vec<serde_bytes::ByteBuf>),
    Ok,
    Nodes(Vec<NodeSummary>),
    Children(Vec<Vec<(u8, NodeSummary)>>),
    Leaves(Vec<Vec<(Hash, Hash)>>),
}

impl Rpc for TableRpc {
    type Response = TableResponse;
}

/// The replica side of the table RPC.
pub struct TableRpcHandler {
    pub data: Arc<TableData>,
    pub replication: Arc<dyn Replication>,
    pub me: NodeId,
    /// Woken when entries arrive for a partition this node does not hold: a writer with an older
    /// layout view sent them here, and only a sync round hands them over to the holders.
    pub sync_trigger: Arc<SyncTrigger>,
}

impl TableRpcHandler {
    /// Whether this node holds the partition of a tree key in some version of the layout.
    fn holds(&self, tree_key: &[u8]) -> bool {
        let Some(pkh) = tree_key.get(..32).and_then(Hash::try_from_slice) else {
            return true;
        };
        let holders = self
            .replication
            .holders(self.replication.partition_of(&pkh));
        holders.is_empty() || holders.contains(&self.me)
    }

    fn answer(&self, msg: TableRpc) -> Result<TableResponse, super::TableError> {
        let d = &self.data;
        Ok(match msg {
            TableRpc::ReadEntry { key } => {
                TableResponse::Entry(d.read_entry(&key)?.map(serde_bytes::ByteBuf::from))
            }
            TableRpc::ReadRange {
                pkh,
                start,
                filter,
                limit,
                reverse,
            } => TableResponse::Entries(
                d.read_range(&pkh, start.as_deref(), filter.as_deref(), limit, reverse)?
                    .into_iter()
                    .map(serde_bytes::ByteBuf::from)
                    .collect(),
            ),
            TableRpc::Update(entries) => {
                let mut stray = false;
                for e in entries {
                    let outcome = d.update_entry(&e)?;
                    stray |= outcome.changed && !self.holds(&outcome.key);
                }
                if stray {
                    self.sync_trigger.now.notify_one();
                }
                TableResponse::Ok
            }
            TableRpc::DeleteIfEqualHash(items) => {
                for (k, h) in items {
                    d.delete_if_equal_hash(&k, &h)?;
                }
                TableResponse::Ok
            }
            TableRpc::MerkleNodes(keys) => TableResponse::Nodes(
                keys.iter()
                    .map(|k| d.merkle_node(k))
                    .collect::<Result<_, _>>()?,
            ),
            TableRpc::MerkleChildren(keys) => TableResponse::Children(
                keys.iter()
                    .map(|k| d.merkle_children(k))
                    .collect::<Result<_, _>>()?,
            ),
            TableRpc::MerkleLeaves(keys) => TableResponse::Leaves(
                keys.iter()
                    .map(|k| {
                        d.merkle_leaves_under(k)
                            .map(|v| v.into_iter().map(|(kh, lh, _)| (kh, lh)).collect())
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

impl Handler<TableRpc> for TableRpcHandler {
    async fn handle(
        self: Arc<Self>,
        msg: TableRpc,
        _from: NodeId,
    ) -> Result<TableResponse, String> {
        let this = self.clone();
        // Database work is blocking: keep it off the async threads.
        tokio::task::spawn_blocking(move || this.answer(msg))
            .await
            .map_err(|e| format!("table task failed: {e}"))?
            .map_err(|e| e.to_string())
    }
}
