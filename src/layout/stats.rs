//! Statistics of an assignment, as shown by `garage layout show`: partitions per node, usable
//! capacity, and how much an assignment differs from the previous one.
//!
//! Usable capacity: every partition is stored whole on each of its replicas, so a node of
//! capacity `c` holding `k` partitions can give each at most `c / k` bytes. The smallest such
//! ratio over all storage nodes (the *partition size*) bounds every partition, and the cluster can
//! store `256 × partition size` bytes of (replicated) data.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::util::ids::NodeId;

use super::assignment::Assignment;
use super::params::NodeRole;
use super::NUM_PARTITIONS;

/// One node's share of an assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// The node's role, `None` if the assignment names a node that has no role any more.
    pub role: Option<NodeRole>,
    /// Number of partitions the node stores.
    pub partitions: usize,
    /// Bytes the node would hold if every partition reached the partition size.
    pub used_bytes: u64,
}

/// Differences between a previous and a new assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStats {
    /// Number of (partition, node) replica slots of the new assignment that the previous one did
    /// not have: each is a partition copy that must be transferred.
    pub moved_replicas: usize,
    /// Number of partitions whose replica set changed.
    pub moved_partitions: usize,
    /// `by_changed_replicas[k]`: number of partitions with exactly `k` new replicas.
    pub by_changed_replicas: Vec<usize>,
}

impl ChangeStats {
    /// Compares the replica sets (not their order) of `previous` and `new`, partition by partition.
    pub fn between(previous: &Assignment, new: &Assignment) -> Self {
        let mut by_changed_replicas = vec![0; new.replication_factor() + 1];
        let mut moved_replicas = 0;
        for p in 0..NUM_PARTITIONS {
            let old: BTreeSet<&NodeId> = previous.partition_nodes(p as u8).iter().collect();
            let changed = new
                .partition_nodes(p as u8)
                .iter()
                .filter(|n| !old.contains(n))
                .count();
            if changed >= by_changed_replicas.len() {
                by_changed_replicas.resize(changed + 1, 0);
            }
            by_changed_replicas[changed] += 1;
            moved_replicas += changed;
        }
        Self {
            moved_replicas,
            moved_partitions: NUM_PARTITIONS - by_changed_replicas[0],
            by_changed_replicas,
        }
    }

    /// Share (0.0 – 1.0) of the 256 partitions whose replica set changed.
    pub fn moved_share(&self) -> f64 {
        self.moved_partitions as f64 / NUM_PARTITIONS as f64
    }
}

/// Summary of an assignment for `garage layout show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentStats {
    /// Every node with a role or with partitions.
    pub nodes: BTreeMap<NodeId, NodeUsage>,
    /// Largest size every partition can reach: min over storage nodes of capacity / partitions.
    pub partition_size: u64,
    /// Data the cluster can store: `256 × partition_size` (each byte counted once, not per copy).
    pub usable_capacity: u64,
    /// Sum of the capacities of all storage nodes.
    pub total_capacity: u64,
    /// Differences with the previous assignment, if one was given.
    pub changes: Option<ChangeStats>,
}

impl AssignmentStats {
    /// Share (0.0 – 1.0) of the raw capacity that holds replicas: `usable × rf / total`.
    pub fn efficiency(&self, replication_factor: usize) -> f64 {
        if self.total_capacity == 0 {
            return 0.0;
        }
        self.usable_capacity as f64 * replication_factor as f64 / self.total_capacity as f64
    }
}

/// Computes the statistics of `assignment` for `roles`, and its differences with `previous`.
pub fn assignment_stats(
    roles: &BTreeMap<NodeId, NodeRole>,
    assignment: &Assignment,
    previous: Option<&Assignment>,
) -> AssignmentStats {
    let counts = assignment.partition_counts();
    let partition_size = counts
        .iter()
        .filter_map(|(id, &k)| {
            let capacity = roles.get(id)?.capacity?;
            (k > 0).then(|| capacity / k as u64)
        })
        .min()
        .unwrap_or(0);
    let ids: BTreeSet<&NodeId> = roles.keys().chain(counts.keys()).collect();
    let nodes = ids
        .into_iter()
        .map(|id| {
            let partitions = counts.get(id).copied().unwrap_or(0);
            let usage = NodeUsage {
                role: roles.get(id).cloned(),
                partitions,
                used_bytes: partition_size.saturating_mul(partitions as u64),
            };
            (*id, usage)
        })
        .collect();
    AssignmentStats {
        nodes,
        partition_size,
        usable_capacity: partition_size.saturating_mul(NUM_PARTITIONS as u64),
        total_capacity: roles.values().filter_map(|r| r.capacity).sum(),
        changes: previous.map(|prev| ChangeStats::between(prev, assignment)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn stats_of_a_small_assignment() {
        let roles: BTreeMap<NodeId, NodeRole> = [
            (id(1), NodeRole::storage("a", 1000)),
            (id(2), NodeRole::storage("b", 3000)),
            (id(3), NodeRole::gateway("a")),
        ]
        .into_iter()
        .collect();
        let old = Assignment::from_partitions(1, vec![vec![id(1)]; NUM_PARTITIONS]).unwrap();
        let mut parts = vec![vec![id(2)]; NUM_PARTITIONS];
        for p in parts.iter_mut().take(64) {
            *p = vec![id(1)];
        }
        let new = Assignment::from_partitions(1, parts).unwrap();
        let stats = assignment_stats(&roles, &new, Some(&old));
        assert_eq!(stats.nodes[&id(1)].partitions, 64);
        assert_eq!(stats.nodes[&id(2)].partitions, 192);
        assert_eq!(stats.nodes[&id(3)].partitions, 0);
        assert_eq!(stats.partition_size, 3000 / 192);
        assert_eq!(stats.usable_capacity, (3000 / 192) * 256);
        assert_eq!(stats.total_capacity, 4000);
        let changes = stats.changes.unwrap();
        assert_eq!(changes.moved_replicas, 192);
        assert_eq!(changes.moved_partitions, 192);
        assert_eq!(changes.by_changed_replicas, vec![64, 192]);
        assert!((changes.moved_share() - 0.75).abs() < 1e-9);
    }
}
