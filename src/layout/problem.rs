//! The assignment as a flow problem: validation of the inputs, balance targets and the flow
//! network `source → partition → (partition, zone) → node → sink`.
//!
//! ## Zone constraint
//!
//! Each partition `p` gets `rf` distinct nodes spread over at least `r` distinct zones (`r` = the
//! effective zone redundancy). The source feeds two vertices per partition: `up(p)` with capacity
//! `r` and `down(p)` with capacity `rf − r`. `up(p)` reaches each zone vertex `(p, z)` with
//! capacity 1 and `down(p)` with capacity `rf − r`; `(p, z)` reaches each node of `z` with
//! capacity 1. A saturated flow is exactly a valid replica set:
//! - the `r` units from `up(p)` enter `r` *different* zones, so at least `r` zones are used;
//! - conversely, for a set spread over `≥ r` zones, pick `r` used zones and route one replica of
//!   each through `up(p)`, the rest through `down(p)`. A zone then carries at most
//!   `rf − r + 1` replicas (the other `r − 1` chosen zones hold at least one each), i.e. at most
//!   `rf − r` beyond its `up` unit, and an unchosen zone at most `rf − r`.
//!
//! A simple per-zone cap of `rf − r + 1` replicas per partition is not enough on its own when
//! `rf ≥ 4` (rf 4, r 3: `2 + 2` fits the cap but spans two zones); the `up`/`down` split is exact
//! for every `rf`. Summed over partitions, a zone holds at most `256 · (rf − r + 1)` replicas
//! (`256` when `r = rf`), and a node at most 256 (one per partition).
//!
//! ## Balance
//!
//! Node `i` of capacity `c_i` pays, for its `k`-th partition, a marginal cost ordered like
//! `(2k − 1) / c_i` (Sainte-Laguë/Webster apportionment: the unconstrained optimum is the
//! proportional share rounded to the nearest integer). These marginals increase with `k`, so the
//! per-node cost is convex and the flow fills nodes evenly. Costs are replaced by their dense rank
//! in the global order of all marginals (exact integer comparisons, no floating point); the
//! optimal flows are the same because only the order of marginals matters for a separable convex
//! objective over the (polymatroid) set of feasible node totals. If two nodes of equal capacity
//! differ by 2 or more and one replica could legally move from the fuller to the emptier, that
//! move lowers the balance cost, so an optimal flow never leaves such a gap: equal capacities get
//! counts within ±1 wherever the zone constraints allow it.
//!
//! ## Movement and tie-breaking
//!
//! Edge `(p, z) → n` costs `M + h(p, n)` if `n` did not store `p` in the previous assignment and
//! `h(p, n)` if it did, where `h` is a deterministic pseudo-random tie-break in `0..H` (a hash of
//! the node id and the partition) and `M = rf · 256 · H + 1` exceeds any total of tie-breaks.
//! Balance costs are multiplied by `W = rf · 256 · (M + H) + 1`, larger than any total pair cost.
//! The min-cost flow is therefore lexicographically optimal: best balance first, then fewest moved
//! replicas among the best-balanced assignments (ties in rounding are settled by movement), then
//! the smallest tie-break. Without the tie-break the solver would settle ties by its scan order and
//! produce a very regular assignment (whole runs of partitions on the same node sets); the
//! pseudo-random tie-break mixes which nodes share partitions, so that when a node later leaves,
//! its partitions miss each zone in about the proportions the rebalance needs, and fewer extra
//! replicas move. Costs are `i128`: the weights multiply.

use std::collections::BTreeMap;

use crate::util::ids::NodeId;

use super::error::LayoutError;
use super::flow::{Cost, EdgeId, FlowGraph};
use super::params::{LayoutParams, NodeRole, ZoneRedundancy};
use super::NUM_PARTITIONS;

/// Range `H` of the tie-break added to pair costs.
const TIE_BREAK_RANGE: Cost = 1024;

/// Deterministic pseudo-random tie-break `h(p, node)` in `0..H` (SplitMix64 finaliser over the
/// node id and the partition number).
fn tie_break(node: &NodeId, partition: usize) -> Cost {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&node.0[..8]);
    let mut x = u64::from_le_bytes(prefix) ^ (partition as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    Cost::from(x % TIE_BREAK_RANGE as u64)
}

/// A storage node of the problem (index = position in [`Problem::nodes`], sorted by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageNode {
    pub id: NodeId,
    pub zone: usize,
    pub capacity: u64,
}

/// Validated inputs, with nodes sorted by id and zones sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub replication_factor: usize,
    /// Effective zone redundancy `r` (1 ≤ r ≤ rf, r ≤ number of zones).
    pub redundancy: usize,
    pub nodes: Vec<StorageNode>,
    /// Zone names, sorted; `StorageNode::zone` indexes this.
    pub zone_names: Vec<String>,
    /// Node indices of each zone.
    pub zone_nodes: Vec<Vec<usize>>,
}

/// What each node must receive.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Demand<'a> {
    /// Optimise balance (see the module doc).
    Balanced,
    /// Exactly this many replicas per node (indexed like [`Problem::nodes`]). Used by the tests
    /// as an independent oracle (fewest moves for given counts, feasibility of a restriction).
    #[cfg_attr(not(test), allow(dead_code))]
    Exact(&'a [usize]),
}

/// A built flow network, ready to solve.
pub(crate) struct Network {
    graph: FlowGraph,
    source: usize,
    sink: usize,
    /// For each partition, the `(node index, edge)` pairs that may carry one of its replicas.
    pair_edges: Vec<Vec<(usize, EdgeId)>>,
}

/// The solved network: replica node indices of each partition (sorted), and how many were placed.
pub(crate) struct Solution {
    pub placed: usize,
    pub partitions: Vec<Vec<usize>>,
}

impl Problem {
    /// Validates the parameters and roles.
    pub fn new(
        params: &LayoutParams,
        roles: &BTreeMap<NodeId, NodeRole>,
    ) -> Result<Self, LayoutError> {
        let rf = params.replication_factor;
        if rf == 0 {
            return Err(LayoutError::InvalidReplicationFactor {
                replication_factor: rf,
            });
        }
        if let ZoneRedundancy::AtLeast(n) = params.zone_redundancy {
            if n == 0 || n > rf {
                return Err(LayoutError::InvalidZoneRedundancy {
                    requested: n,
                    replication_factor: rf,
                });
            }
        }
        let mut zone_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut storage = Vec::new();
        for (id, role) in roles {
            match role.capacity {
                None => {}
                Some(0) => return Err(LayoutError::ZeroCapacity { node: *id }),
                Some(capacity) => {
                    zone_index.insert(role.zone.as_str(), 0);
                    storage.push((*id, role.zone.as_str(), capacity));
                }
            }
        }
        if storage.len() < rf {
            return Err(LayoutError::NotEnoughStorageNodes {
                needed: rf,
                available: storage.len(),
            });
        }
        let zone_names: Vec<String> = zone_index.keys().map(|z| z.to_string()).collect();
        for (i, idx) in zone_index.values_mut().enumerate() {
            *idx = i;
        }
        let redundancy = match params.zone_redundancy {
            ZoneRedundancy::Maximum => zone_names.len().min(rf),
            ZoneRedundancy::AtLeast(n) => n,
        };
        if zone_names.len() < redundancy {
            return Err(LayoutError::NotEnoughZones {
                needed: redundancy,
                available: zone_names.len(),
                zones: zone_names.join(", "),
            });
        }
        let mut zone_nodes = vec![Vec::new(); zone_names.len()];
        let mut nodes = Vec::with_capacity(storage.len());
        for (id, zone_name, capacity) in storage {
            let zone = zone_index.get(zone_name).copied().unwrap_or_default();
            zone_nodes[zone].push(nodes.len());
            nodes.push(StorageNode { id, zone, capacity });
        }
        Ok(Self {
            replication_factor: rf,
            redundancy,
            nodes,
            zone_names,
            zone_nodes,
        })
    }

    /// Index of a node in [`Problem::nodes`].
    pub fn node_index(&self, id: &NodeId) -> Option<usize> {
        self.nodes.binary_search_by(|n| n.id.cmp(id)).ok()
    }

    /// Number of replica slots to fill: `rf · 256`.
    pub fn slots(&self) -> usize {
        self.replication_factor * NUM_PARTITIONS
    }

    /// The pair costs of the module doc: for partition `p` and node `i`, `h(p, i)`, plus `M` if
    /// `i` is not in `kept[p]`. Returns the cost function and its maximum value.
    pub fn movement_costs<'a>(
        &'a self,
        kept: &'a [Vec<usize>],
    ) -> (impl Fn(usize, usize) -> Option<Cost> + 'a, Cost) {
        let move_cost = self.slots() as Cost * TIE_BREAK_RANGE + 1;
        let cost = move |p: usize, i: usize| {
            let is_kept = kept.get(p).is_some_and(|k| k.binary_search(&i).is_ok());
            let moved = if is_kept { 0 } else { move_cost };
            Some(moved + tie_break(&self.nodes[i].id, p))
        };
        (cost, move_cost + TIE_BREAK_RANGE - 1)
    }

    /// Builds the network. `pair_cost(p, i)` (at most `max_pair_cost`) is the cost of placing
    /// partition `p` on node `i`, or `None` to forbid it.
    pub fn network(
        &self,
        demand: Demand<'_>,
        pair_cost: impl Fn(usize, usize) -> Option<Cost>,
        max_pair_cost: Cost,
    ) -> Network {
        let rf = self.replication_factor as i64;
        let r = self.redundancy as i64;
        let mut g = FlowGraph::new(2 + self.nodes.len());
        let (source, sink) = (0, 1);
        let node_vertex = |i: usize| 2 + i;
        match demand {
            Demand::Balanced => {
                let weight = self.slots() as Cost * max_pair_cost + 1;
                for (i, ranks) in self.marginal_ranks().into_iter().enumerate() {
                    for rank in ranks {
                        g.add_edge(node_vertex(i), sink, 1, weight * Cost::from(rank));
                    }
                }
            }
            Demand::Exact(counts) => {
                for (i, &count) in counts.iter().enumerate().take(self.nodes.len()) {
                    g.add_edge(node_vertex(i), sink, count as i64, 0);
                }
            }
        }
        let mut pair_edges = Vec::with_capacity(NUM_PARTITIONS);
        for p in 0..NUM_PARTITIONS {
            let up = g.add_vertex();
            g.add_edge(source, up, r, 0);
            let down = (rf > r).then(|| {
                let down = g.add_vertex();
                g.add_edge(source, down, rf - r, 0);
                down
            });
            let mut edges = Vec::with_capacity(self.replication_factor * 2);
            for members in &self.zone_nodes {
                let pz = g.add_vertex();
                g.add_edge(up, pz, 1, 0);
                if let Some(down) = down {
                    g.add_edge(down, pz, rf - r, 0);
                }
                for &i in members {
                    if let Some(cost) = pair_cost(p, i) {
                        edges.push((i, g.add_edge(pz, node_vertex(i), 1, cost)));
                    }
                }
            }
            pair_edges.push(edges);
        }
        Network {
            graph: g,
            source,
            sink,
            pair_edges,
        }
    }

    /// For each node, the ranks of the marginal balance costs of its 1st..256th partition, in the
    /// global order of `(2k − 1) / capacity` (equal values get equal ranks).
    fn marginal_ranks(&self) -> Vec<Vec<i64>> {
        let mut units: Vec<(u128, u128, usize, usize)> =
            Vec::with_capacity(self.nodes.len() * NUM_PARTITIONS);
        for (i, node) in self.nodes.iter().enumerate() {
            for k in 0..NUM_PARTITIONS {
                units.push((2 * k as u128 + 1, u128::from(node.capacity), i, k));
            }
        }
        // a/b < c/d  ⇔  a·d < c·b (b, d > 0); numerators ≤ 511 and capacities < 2^64 fit in u128.
        units.sort_by(|x, y| {
            (x.0 * y.1)
                .cmp(&(y.0 * x.1))
                .then((x.2, x.3).cmp(&(y.2, y.3)))
        });
        let mut ranks = vec![vec![0i64; NUM_PARTITIONS]; self.nodes.len()];
        let mut rank = 0i64;
        for (j, unit) in units.iter().enumerate() {
            if j > 0 {
                let prev = &units[j - 1];
                if prev.0 * unit.1 != unit.0 * prev.1 {
                    rank += 1;
                }
            }
            ranks[unit.2][unit.3] = rank;
        }
        ranks
    }
}

impl Network {
    /// Solves the min-cost max-flow and reads back the replicas of each partition.
    pub fn solve(mut self) -> Solution {
        let outcome = self.graph.min_cost_max_flow(self.source, self.sink);
        let partitions = self
            .pair_edges
            .iter()
            .map(|edges| {
                let mut nodes: Vec<usize> = edges
                    .iter()
                    .filter(|(_, e)| self.graph.flow(*e) > 0)
                    .map(|(i, _)| *i)
                    .collect();
                nodes.sort_unstable();
                nodes
            })
            .collect();
        Solution {
            placed: usize::try_from(outcome.flow).unwrap_or(0),
            partitions,
        }
    }
}
