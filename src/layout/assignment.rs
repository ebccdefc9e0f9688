//! The partition assignment: which nodes store each of the 256 partitions, how it is computed
//! from the roles (see [`super::problem`] for the flow formulation), and replica lookup.
//!
//! Invariants of an [`Assignment`] produced by [`compute_assignment`]: exactly 256 partitions,
//! each with `replication_factor` distinct storage nodes spread over at least the effective zone
//! redundancy; gateways never appear. The result depends only on the roles, the parameters and
//! the previous assignment (no randomness, no hash-map iteration order).
//!
//! Order within a partition matters (the first node is the partition's primary): a node that
//! keeps a partition keeps its previous position, so that reordering never looks like a move.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::util::ids::NodeId;

use super::error::LayoutError;
use super::params::{LayoutParams, NodeRole};
use super::problem::{Demand, Problem};
use super::NUM_PARTITIONS;

/// The partition of a hash: its first byte.
pub fn partition_of(hash: &[u8; 32]) -> u8 {
    hash[0]
}

/// For each of the 256 partitions, the ordered list of nodes that store it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    replication_factor: usize,
    partitions: Vec<Vec<NodeId>>,
}

impl Assignment {
    /// Builds an assignment from explicit replica lists (e.g. decoded from disk), checking that
    /// there are 256 partitions of `replication_factor` distinct nodes each.
    pub fn from_partitions(
        replication_factor: usize,
        partitions: Vec<Vec<NodeId>>,
    ) -> Result<Self, LayoutError> {
        if partitions.len() != NUM_PARTITIONS {
            return Err(LayoutError::WrongPartitionCount {
                found: partitions.len(),
            });
        }
        for (p, nodes) in partitions.iter().enumerate() {
            let distinct = nodes.iter().collect::<BTreeSet<_>>().len();
            if nodes.len() != replication_factor || distinct != nodes.len() {
                return Err(LayoutError::MalformedPartition {
                    partition: p,
                    found: nodes.len(),
                    distinct,
                    expected: replication_factor,
                });
            }
        }
        Ok(Self {
            replication_factor,
            partitions,
        })
    }

    /// Number of replicas of each partition.
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// The replica lists, indexed by partition.
    pub fn partitions(&self) -> &[Vec<NodeId>] {
        &self.partitions
    }

    /// The nodes storing partition `partition`, primary first.
    pub fn partition_nodes(&self, partition: u8) -> &[NodeId] {
        self.partitions
            .get(usize::from(partition))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The nodes storing the data of `hash` (the replicas of its partition), primary first.
    pub fn nodes_of(&self, hash: &[u8; 32]) -> &[NodeId] {
        self.partition_nodes(partition_of(hash))
    }

    /// Number of partitions stored by each node that stores at least one.
    pub fn partition_counts(&self) -> BTreeMap<NodeId, usize> {
        let mut counts = BTreeMap::new();
        for node in self.partitions.iter().flatten() {
            *counts.entry(*node).or_insert(0) += 1;
        }
        counts
    }
}

/// Computes the assignment for `roles`, as balanced as the zone constraints allow and, among the
/// best-balanced assignments, the one that moves the fewest replicas away from `previous`.
///
/// Nodes of `previous` that are no longer storage nodes are ignored; `previous` may have another
/// replication factor.
pub fn compute_assignment(
    params: &LayoutParams,
    roles: &BTreeMap<NodeId, NodeRole>,
    previous: Option<&Assignment>,
) -> Result<Assignment, LayoutError> {
    let problem = Problem::new(params, roles)?;
    let kept = previous_indices(&problem, previous);
    let (pair_cost, max_pair_cost) = problem.movement_costs(&kept);
    let network = problem.network(Demand::Balanced, pair_cost, max_pair_cost);
    let solution = network.solve();
    if solution.placed != problem.slots() {
        return Err(LayoutError::Unsatisfiable {
            placed: solution.placed,
            needed: problem.slots(),
        });
    }
    let partitions = solution
        .partitions
        .iter()
        .enumerate()
        .map(|(p, chosen)| {
            let chosen: Vec<NodeId> = chosen.iter().map(|&i| problem.nodes[i].id).collect();
            let prev = previous.map(|a| a.partition_nodes(p as u8)).unwrap_or(&[]);
            order_replicas(p, &chosen, prev, problem.replication_factor)
        })
        .collect();
    Ok(Assignment {
        replication_factor: problem.replication_factor,
        partitions,
    })
}

/// For each partition, the problem indices of the storage nodes that stored it in `previous`.
pub(crate) fn previous_indices(
    problem: &Problem,
    previous: Option<&Assignment>,
) -> Vec<Vec<usize>> {
    (0..NUM_PARTITIONS)
        .map(|p| {
            let prev = previous.map(|a| a.partition_nodes(p as u8)).unwrap_or(&[]);
            let mut idx: Vec<usize> = prev.iter().filter_map(|n| problem.node_index(n)).collect();
            idx.sort_unstable();
            idx.dedup();
            idx
        })
        .collect()
}

/// Orders the chosen nodes of partition `p`: nodes that were already there keep their previous
/// position; newcomers (sorted by id, rotated by `p` so that primaries are spread) fill the gaps.
fn order_replicas(p: usize, chosen: &[NodeId], prev: &[NodeId], rf: usize) -> Vec<NodeId> {
    let mut slots: Vec<Option<NodeId>> = vec![None; rf.max(chosen.len())];
    for (pos, node) in prev.iter().enumerate().take(slots.len()) {
        if chosen.contains(node) && !slots.contains(&Some(*node)) {
            slots[pos] = Some(*node);
        }
    }
    let mut newcomers: Vec<NodeId> = chosen
        .iter()
        .filter(|n| !slots.contains(&Some(**n)))
        .copied()
        .collect();
    if !newcomers.is_empty() {
        let shift = p % newcomers.len();
        newcomers.rotate_left(shift);
    }
    let mut newcomers = newcomers.into_iter();
    slots
        .into_iter()
        .filter_map(|slot| slot.or_else(|| newcomers.next()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn order_keeps_previous_positions() {
        let chosen = [id(1), id(2), id(4)];
        let prev = [id(3), id(2), id(1)];
        assert_eq!(
            order_replicas(0, &chosen, &prev, 3),
            vec![id(4), id(2), id(1)]
        );
        assert_eq!(
            order_replicas(5, &chosen, &[], 3),
            vec![id(4), id(1), id(2)]
        );
    }

    #[test]
    fn lookup_uses_first_byte() {
        let mut partitions = vec![vec![id(1), id(2)]; NUM_PARTITIONS];
        partitions[7] = vec![id(3), id(1)];
        let a = Assignment::from_partitions(2, partitions).unwrap();
        let mut hash = [0u8; 32];
        hash[0] = 7;
        assert_eq!(partition_of(&hash), 7);
        assert_eq!(a.nodes_of(&hash), &[id(3), id(1)]);
        assert_eq!(a.partition_counts()[&id(1)], NUM_PARTITIONS);
    }

    #[test]
    fn rejects_malformed_assignments() {
        let bad = Assignment::from_partitions(2, vec![vec![id(1), id(2)]; 3]);
        assert_eq!(bad, Err(LayoutError::WrongPartitionCount { found: 3 }));
        let mut partitions = vec![vec![id(1), id(2)]; NUM_PARTITIONS];
        partitions[9] = vec![id(1), id(1)];
        let bad = Assignment::from_partitions(2, partitions);
        assert!(matches!(
            bad,
            Err(LayoutError::MalformedPartition {
                partition: 9,
                distinct: 1,
                ..
            })
        ));
    }

    fn roles(spec: &[(u8, &str, Option<u64>)]) -> BTreeMap<NodeId, NodeRole> {
        spec.iter()
            .map(|(b, zone, capacity)| {
                let role = NodeRole {
                    zone: zone.to_string(),
                    capacity: *capacity,
                    tags: Vec::new(),
                };
                (id(*b), role)
            })
            .collect()
    }

    #[test]
    fn input_errors() {
        let two = roles(&[(1, "a", Some(10)), (2, "b", Some(10)), (3, "b", None)]);
        let compute = |rf, zr, roles: &BTreeMap<NodeId, NodeRole>| {
            let params = LayoutParams {
                replication_factor: rf,
                zone_redundancy: zr,
            };
            compute_assignment(&params, roles, None)
        };
        use super::super::params::ZoneRedundancy::{AtLeast, Maximum};
        assert!(matches!(
            compute(0, Maximum, &two),
            Err(LayoutError::InvalidReplicationFactor { .. })
        ));
        assert_eq!(
            compute(3, Maximum, &two),
            Err(LayoutError::NotEnoughStorageNodes {
                needed: 3,
                available: 2
            })
        );
        for bad in [0, 3] {
            assert_eq!(
                compute(2, AtLeast(bad), &two),
                Err(LayoutError::InvalidZoneRedundancy {
                    requested: bad,
                    replication_factor: 2
                })
            );
        }
        let one_zone = roles(&[(1, "a", Some(1)), (2, "a", Some(1)), (3, "b", None)]);
        let err = compute(2, AtLeast(2), &one_zone).unwrap_err();
        assert_eq!(
            err,
            LayoutError::NotEnoughZones {
                needed: 2,
                available: 1,
                zones: "a".into()
            }
        );
        assert!(err.to_string().contains("garage layout config -r"));
        let zero = roles(&[(1, "a", Some(1)), (2, "b", Some(0))]);
        let err = compute(1, Maximum, &zero).unwrap_err();
        assert_eq!(err, LayoutError::ZeroCapacity { node: id(2) });
        assert!(err.to_string().contains("-g"));
        assert!(compute(2, Maximum, &one_zone).is_ok());
    }

    /// rf 4 with zone redundancy 3: a per-zone cap of `rf − r + 1 = 2` replicas would allow
    /// `2 + 2` over two zones; the up/down formulation forces a third zone into every partition.
    #[test]
    fn high_replication_factor_spreads_over_required_zones() {
        let r = roles(&[
            (1, "a", Some(10)),
            (2, "a", Some(10)),
            (3, "a", Some(10)),
            (4, "b", Some(10)),
            (5, "b", Some(10)),
            (6, "b", Some(10)),
            (7, "c", Some(1)),
            (8, "c", Some(1)),
        ]);
        let params = LayoutParams {
            replication_factor: 4,
            zone_redundancy: super::super::params::ZoneRedundancy::AtLeast(3),
        };
        let a = compute_assignment(&params, &r, None).unwrap();
        for nodes in a.partitions() {
            let zones: BTreeSet<&str> = nodes.iter().map(|n| r[n].zone.as_str()).collect();
            assert_eq!(nodes.len(), 4);
            assert_eq!(zones.len(), 3, "{nodes:?}");
        }
        let counts = a.partition_counts();
        // Zone c must hold one replica of every partition: 128 each, despite capacity 1.
        assert_eq!((counts[&id(7)], counts[&id(8)]), (128, 128));
        // Zones a and b hold at most 2 per partition and share the other 768 replicas evenly.
        for n in 1..=6 {
            assert_eq!(counts[&id(n)], 128, "node {n}");
        }
    }
}
