//! Where a table's entries live and how many answers a read or a write needs (DESIGN.md §6–7).
//! - [`Sharded`]: entries live on the nodes of their partition in the layout; reads go to the
//!   read set, writes to every write set (during a layout transition, old and new nodes).
//! - [`FullCopy`]: every node with a role stores everything; reads are local (remote for a node
//!   that joined and has not received everything yet); writes go to all
//!   nodes and need all but one, but wait (a bounded time) for the last one too, so that a change
//!   acknowledged through one node is read by every node when all are up.

use std::sync::Arc;
use std::time::Duration;

use crate::config::ConsistencyMode;
use crate::layout::manager::LayoutManager;
use crate::util::ids::{Hash, NodeId};

/// A table's replication strategy.
pub trait Replication: Send + Sync {
    /// Nodes to read `hash` from.
    fn read_nodes(&self, hash: &Hash) -> Vec<NodeId>;
    fn read_quorum(&self) -> usize;
    /// Node sets that must each reach the write quorum.
    fn write_sets(&self, hash: &Hash) -> Vec<Vec<NodeId>>;
    fn write_quorum(&self, set_len: usize) -> usize;
    /// How long a write waits, once it has its quorum, for the other nodes' answers.
    fn write_linger(&self) -> Option<Duration> {
        None
    }
    /// Every node that should hold partition `partition` now (all listed layout versions).
    fn holders(&self, partition: u8) -> Vec<NodeId>;
    /// The partition of a hash for this strategy.
    fn partition_of(&self, hash: &Hash) -> u8 {
        hash.0[0]
    }
    /// The layout version the current placement comes from.
    fn layout_version(&self) -> u64;
    /// The highest layout version `node` is recorded as synced at (set by the node itself, or
    /// by `garage layout skip-dead-nodes` for a node that is gone).
    fn synced_version(&self, node: &NodeId) -> u64;
}

/// Read and write quorums for a replication factor (DESIGN.md §6).
pub fn quorums(rf: usize, mode: ConsistencyMode) -> (usize, usize) {
    let read = rf.div_ceil(2).max(1);
    let write = (rf + 1).saturating_sub(read).max(1);
    match mode {
        ConsistencyMode::Consistent => (read, write),
        ConsistencyMode::Degraded => (1, write),
        ConsistencyMode::Dangerous => (1, 1),
    }
}

/// Sharded replication over the layout's partitions.
pub struct Sharded {
    pub layout: Arc<LayoutManager>,
    pub replication_factor: usize,
    pub consistency: ConsistencyMode,
}

impl Replication for Sharded {
    fn read_nodes(&self, hash: &Hash) -> Vec<NodeId> {
        self.layout.read(|h| h.read_nodes(hash))
    }
    fn read_quorum(&self) -> usize {
        quorums(self.replication_factor, self.consistency).0
    }
    fn write_sets(&self, hash: &Hash) -> Vec<Vec<NodeId>> {
        self.layout.read(|h| h.write_sets(hash))
    }
    fn write_quorum(&self, set_len: usize) -> usize {
        quorums(self.replication_factor, self.consistency)
            .1
            .min(set_len)
    }
    fn holders(&self, partition: u8) -> Vec<NodeId> {
        self.layout
            .read(|h| h.partition_nodes_all_versions(partition))
            .into_iter()
            .collect()
    }
    fn layout_version(&self) -> u64 {
        self.layout.read(|h| h.current().version)
    }
    fn synced_version(&self, node: &NodeId) -> u64 {
        self.layout.read(|h| h.sync.get(node).copied().unwrap_or(0))
    }
}

/// Longest wait of a full-copy write for its last node, once all but one have it.
pub const FULL_COPY_WRITE_LINGER: Duration = Duration::from_secs(5);

/// Full-copy replication: every node with a role holds every entry.
pub struct FullCopy {
    pub layout: Arc<LayoutManager>,
}

impl FullCopy {
    fn all_nodes(&self) -> Vec<NodeId> {
        self.layout
            .read(|h| h.current().roles.keys().copied().collect())
    }
}

impl Replication for FullCopy {
    /// This node, when it held the tables in the layout version reads are served from (the
    /// oldest one not yet synced everywhere). A node that just got a role has not received
    /// everything yet: until then it reads from one of that version's nodes (one answer is
    /// enough: each has everything).
    fn read_nodes(&self, _hash: &Hash) -> Vec<NodeId> {
        let me = self.layout.system.id();
        self.layout.read(|h| {
            let holders = &h.read_version().roles;
            if holders.is_empty() || holders.contains_key(&me) {
                vec![me]
            } else {
                holders.keys().copied().collect()
            }
        })
    }
    fn read_quorum(&self) -> usize {
        1
    }
    fn write_sets(&self, _hash: &Hash) -> Vec<Vec<NodeId>> {
        vec![self.all_nodes()]
    }
    fn write_quorum(&self, set_len: usize) -> usize {
        set_len.saturating_sub(1).max(1).min(set_len)
    }
    /// Reads are local: without waiting for the last node, a bucket created or a permission
    /// given through one node could still be unknown to the next request on another node (or,
    /// the local write being one of the three, even on this one). A node that is down answers
    /// at once with an error; one that is silent delays the write by this bound only.
    fn write_linger(&self) -> Option<Duration> {
        Some(FULL_COPY_WRITE_LINGER)
    }
    fn holders(&self, _partition: u8) -> Vec<NodeId> {
        self.all_nodes()
    }
    fn layout_version(&self) -> u64 {
        self.layout.read(|h| h.current().version)
    }
    fn synced_version(&self, node: &NodeId) -> u64 {
        self.layout.read(|h| h.sync.get(node).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_follow_the_design() {
        use ConsistencyMode::*;
        assert_eq!(quorums(3, Consistent), (2, 2));
        assert_eq!(quorums(2, Consistent), (1, 2));
        assert_eq!(quorums(1, Consistent), (1, 1));
        assert_eq!(quorums(5, Consistent), (3, 3));
        assert_eq!(quorums(3, Degraded), (1, 2));
        assert_eq!(quorums(3, Dangerous), (1, 1));
        for rf in 1..8 {
            let (r, w) = quorums(rf, Consistent);
            assert!(r + w > rf, "read and write quorums intersect for rf {rf}");
        }
    }
}
