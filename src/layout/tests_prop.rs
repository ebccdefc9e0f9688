//! Property tests of the assignment on random clusters: 1–12 nodes (some gateways), 1–5 zones,
//! capacities 1–10, rf 1–3, maximum or explicit zone redundancy.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};

use crate::util::ids::{blake2sum, NodeId};

use super::assignment::previous_indices;
use super::problem::{Demand, Problem};
use super::*;

#[derive(Debug, Clone)]
struct Cluster {
    params: LayoutParams,
    nodes: Vec<(NodeId, NodeRole)>,
    seed: u64,
}

impl Cluster {
    fn roles(&self) -> BTreeMap<NodeId, NodeRole> {
        self.nodes.iter().cloned().collect()
    }

    /// The same roles, inserted in a seeded random order.
    fn shuffled_roles(&self) -> BTreeMap<NodeId, NodeRole> {
        let mut nodes = self.nodes.clone();
        nodes.shuffle(&mut StdRng::seed_from_u64(self.seed));
        nodes.into_iter().collect()
    }

    fn storage(&self) -> Vec<&(NodeId, NodeRole)> {
        self.nodes.iter().filter(|(_, r)| r.is_storage()).collect()
    }

    fn zones(&self) -> BTreeSet<&str> {
        self.storage()
            .iter()
            .map(|(_, r)| r.zone.as_str())
            .collect()
    }

    fn redundancy(&self) -> usize {
        match self.params.zone_redundancy {
            ZoneRedundancy::Maximum => self.zones().len().min(self.params.replication_factor),
            ZoneRedundancy::AtLeast(n) => n,
        }
    }

    fn is_valid(&self) -> bool {
        self.storage().len() >= self.params.replication_factor
            && self.zones().len() >= self.redundancy()
    }
}

fn node_id(seed: u64, i: usize) -> NodeId {
    NodeId(blake2sum(format!("{seed}/{i}").as_bytes()).0)
}

fn cluster() -> impl Strategy<Value = Cluster> {
    let node = (0usize..5, prop::option::weighted(0.8, 1u64..=10));
    (
        1usize..=3,
        1usize..=5,
        0usize..=3,
        prop::collection::vec(node, 1..=12),
        any::<u64>(),
    )
        .prop_map(|(rf, zones, redundancy, specs, seed)| Cluster {
            params: LayoutParams {
                replication_factor: rf,
                zone_redundancy: match redundancy {
                    0 => ZoneRedundancy::Maximum,
                    n => ZoneRedundancy::AtLeast(n.min(rf)),
                },
            },
            nodes: specs
                .into_iter()
                .enumerate()
                .map(|(i, (zone, capacity))| {
                    let role = NodeRole {
                        zone: format!("z{}", zone % zones),
                        capacity,
                        tags: Vec::new(),
                    };
                    (node_id(seed, i), role)
                })
                .collect(),
            seed,
        })
}

/// Checks every structural invariant of `a` for `cluster`; returns the partition counts.
fn check_valid(cluster: &Cluster, a: &Assignment) -> BTreeMap<NodeId, usize> {
    let roles = cluster.roles();
    let rf = cluster.params.replication_factor;
    assert_eq!(a.partitions().len(), NUM_PARTITIONS);
    for (p, nodes) in a.partitions().iter().enumerate() {
        assert_eq!(nodes.len(), rf, "partition {p}");
        let distinct: BTreeSet<_> = nodes.iter().collect();
        assert_eq!(distinct.len(), rf, "partition {p} has a duplicate node");
        let zones: BTreeSet<&str> = nodes
            .iter()
            .map(|n| {
                let role = roles.get(n).expect("assigned node has a role");
                assert!(role.is_storage(), "gateway {n:?} got partition {p}");
                role.zone.as_str()
            })
            .collect();
        assert!(
            zones.len() >= cluster.redundancy(),
            "partition {p} zones {zones:?}"
        );
        if cluster.params.zone_redundancy == ZoneRedundancy::Maximum {
            assert!(zones.len() >= cluster.zones().len().min(rf));
        }
    }
    let counts = a.partition_counts();
    // Same zone, same capacity → within ±1: moving a replica between two nodes of one zone never
    // breaks a constraint, so a larger gap would not be balance-optimal.
    for (x, rx) in &roles {
        for (y, ry) in &roles {
            let (cx, cy) = (counts.get(x).copied(), counts.get(y).copied());
            if rx.zone == ry.zone && rx.capacity.is_some() && rx.capacity == ry.capacity {
                let (cx, cy) = (cx.unwrap_or(0), cy.unwrap_or(0));
                assert!(cx <= cy + 1, "{x:?} has {cx}, {y:?} has {cy}");
            }
        }
    }
    counts
}

/// Fewest replicas that must move from `prev` to reach exactly the per-node counts of `new`,
/// computed with a separate exact-demand network (cost 1 per (partition, node) pair not in
/// `prev`), and whether it is feasible at all when only pairs of `prev` and nodes of `newcomers`
/// are allowed.
fn movement_oracle(
    cluster: &Cluster,
    prev: &Assignment,
    new: &Assignment,
    newcomers: &[NodeId],
) -> (usize, bool) {
    let problem = Problem::new(&cluster.params, &cluster.roles()).unwrap();
    let counts: Vec<usize> = {
        let c = new.partition_counts();
        problem
            .nodes
            .iter()
            .map(|n| c.get(&n.id).copied().unwrap_or(0))
            .collect()
    };
    let kept = previous_indices(&problem, Some(prev));
    let is_new = |i: usize| newcomers.contains(&problem.nodes[i].id);
    let fewest = problem
        .network(
            Demand::Exact(&counts),
            |p, i| Some(if kept[p].contains(&i) { 0 } else { 1 }),
            1,
        )
        .solve();
    assert_eq!(fewest.placed, problem.slots());
    let moved = fewest
        .partitions
        .iter()
        .enumerate()
        .map(|(p, nodes)| nodes.iter().filter(|i| !kept[p].contains(i)).count())
        .sum();
    let restricted = problem
        .network(
            Demand::Exact(&counts),
            |p, i| (kept[p].contains(&i) || is_new(i)).then_some(0),
            0,
        )
        .solve();
    (moved, restricted.placed == problem.slots())
}

proptest! {
    // Each case solves several flows: fewer cases in unoptimised builds keep `cargo test` quick;
    // run with `--release` for the full 64.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(debug_assertions) { 12 } else { 64 }))]

    /// Valid inputs give valid assignments, invalid ones the matching error; recomputing from the
    /// result with the same roles changes nothing; the input order of roles does not matter.
    #[test]
    fn valid_stable_and_order_independent(cluster in cluster()) {
        let result = compute_assignment(&cluster.params, &cluster.roles(), None);
        if cluster.storage().len() < cluster.params.replication_factor {
            prop_assert!(
                matches!(result, Err(LayoutError::NotEnoughStorageNodes { .. })),
                "{:?}",
                result
            );
            return Ok(());
        }
        if !cluster.is_valid() {
            prop_assert!(
                matches!(result, Err(LayoutError::NotEnoughZones { .. })),
                "{:?}",
                result
            );
            return Ok(());
        }
        let a = result.unwrap();
        check_valid(&cluster, &a);
        let shuffled = compute_assignment(&cluster.params, &cluster.shuffled_roles(), None).unwrap();
        prop_assert_eq!(&shuffled, &a);
        let again = compute_assignment(&cluster.params, &cluster.roles(), Some(&a)).unwrap();
        prop_assert_eq!(&again, &a, "a second run moved replicas");
    }

    /// Only the replica *sets* of the previous assignment matter for which nodes are chosen; the
    /// order only decides positions, and kept nodes keep their previous position.
    #[test]
    fn previous_order_only_decides_positions(cluster in cluster(), drop in 0usize..12) {
        prop_assume!(cluster.is_valid());
        // Previous assignment: computed without one node (when the cluster stays valid).
        let mut smaller = cluster.clone();
        smaller.nodes.remove(drop % cluster.nodes.len());
        let prev = if smaller.is_valid() {
            compute_assignment(&smaller.params, &smaller.roles(), None).unwrap()
        } else {
            compute_assignment(&cluster.params, &cluster.roles(), None).unwrap()
        };
        let mut rng = StdRng::seed_from_u64(cluster.seed);
        let mut shuffled = prev.partitions().to_vec();
        for nodes in shuffled.iter_mut() {
            nodes.shuffle(&mut rng);
        }
        let shuffled = Assignment::from_partitions(prev.replication_factor(), shuffled).unwrap();
        let a = compute_assignment(&cluster.params, &cluster.roles(), Some(&prev)).unwrap();
        let b = compute_assignment(&cluster.params, &cluster.roles(), Some(&shuffled)).unwrap();
        check_valid(&cluster, &b);
        for p in 0..NUM_PARTITIONS {
            let set = |x: &Assignment| x.partition_nodes(p as u8).iter().copied().collect::<BTreeSet<_>>();
            prop_assert_eq!(set(&a), set(&b));
            for (pos, node) in shuffled.partition_nodes(p as u8).iter().enumerate() {
                if set(&b).contains(node) {
                    prop_assert_eq!(b.partition_nodes(p as u8)[pos], *node);
                }
            }
        }
    }

    /// Adding one storage node moves replicas onto that node only, unless balance requires more.
    ///
    /// "Requires", with the flow formulation: the new assignment has the best balance, and among
    /// best-balanced assignments the fewest moved replicas. So a replica may land on an old node
    /// only if no assignment with the *same per-node counts* can be reached by moving replicas onto
    /// the new node alone. This is checked with a separate network restricted to the previous
    /// (partition, node) pairs plus the new node: if it can place every replica with those counts,
    /// nothing may have moved to an old node. The number of moved replicas must also equal the
    /// minimum for those counts, computed by a separate exact-demand network.
    #[test]
    fn adding_a_node_moves_replicas_onto_it(
        cluster in cluster(),
        zone in 0usize..6,
        capacity in 1u64..=10,
    ) {
        prop_assume!(cluster.is_valid());
        let prev = compute_assignment(&cluster.params, &cluster.roles(), None).unwrap();
        let mut bigger = cluster.clone();
        let new_id = node_id(cluster.seed, 1000);
        bigger.nodes.push((new_id, NodeRole::storage(format!("z{zone}"), capacity)));
        let a = compute_assignment(&bigger.params, &bigger.roles(), Some(&prev)).unwrap();
        let counts = check_valid(&bigger, &a);
        let changes = ChangeStats::between(&prev, &a);
        let onto_old: usize = (0..NUM_PARTITIONS)
            .map(|p| {
                let old = prev.partition_nodes(p as u8);
                a.partition_nodes(p as u8)
                    .iter()
                    .filter(|n| **n != new_id && !old.contains(n))
                    .count()
            })
            .sum();
        let new_count = counts.get(&new_id).copied().unwrap_or(0);
        prop_assert_eq!(changes.moved_replicas, new_count + onto_old);
        let (fewest, direct_possible) = movement_oracle(&bigger, &prev, &a, &[new_id]);
        prop_assert_eq!(changes.moved_replicas, fewest);
        if direct_possible {
            prop_assert_eq!(onto_old, 0, "replicas moved to old nodes needlessly");
        } else {
            prop_assert!(onto_old > 0);
        }
    }
}

/// A case where balance *requires* moving replicas onto old nodes. rf 2 over zones A {a1},
/// B {b1}, C {c1, c2}, equal capacities, previous assignment `{a1, c1}` × 128 and `{b1, c2}` ×
/// 128. Adding `d` in zone A brings every node to 102 or 103 partitions, so `c1` must drop about
/// 25. But every partition of `c1` also holds `a1`, so `d` (zone A) can never take `c1`'s place:
/// each dropped `c1` replica has to go to `b1` or `c2`, which then make room for `d` elsewhere.
#[test]
fn balance_can_require_moves_onto_old_nodes() {
    let id = |name: &str| NodeId(blake2sum(name.as_bytes()).0);
    let (a1, b1, c1, c2, d) = (id("a1"), id("b1"), id("c1"), id("c2"), id("d"));
    let partitions = (0..NUM_PARTITIONS)
        .map(|p| if p < 128 { vec![a1, c1] } else { vec![b1, c2] })
        .collect();
    let prev = Assignment::from_partitions(2, partitions).unwrap();
    let cluster = Cluster {
        params: LayoutParams::new(2),
        nodes: vec![
            (a1, NodeRole::storage("A", 1)),
            (b1, NodeRole::storage("B", 1)),
            (c1, NodeRole::storage("C", 1)),
            (c2, NodeRole::storage("C", 1)),
            (d, NodeRole::storage("A", 1)),
        ],
        seed: 0,
    };
    let a = compute_assignment(&cluster.params, &cluster.roles(), Some(&prev)).unwrap();
    let counts = check_valid(&cluster, &a);
    assert!(counts.values().all(|&c| c == 102 || c == 103), "{counts:?}");
    let onto_old: usize = (0..NUM_PARTITIONS)
        .map(|p| {
            let old = prev.partition_nodes(p as u8);
            let new = a.partition_nodes(p as u8);
            new.iter().filter(|n| **n != d && !old.contains(n)).count()
        })
        .sum();
    let (fewest, direct_possible) = movement_oracle(&cluster, &prev, &a, &[d]);
    assert!(!direct_possible);
    assert_eq!(onto_old, 128 - counts[&c1]);
    assert_eq!(ChangeStats::between(&prev, &a).moved_replicas, fewest);
    assert_eq!(fewest, counts[&d] + onto_old);
}
