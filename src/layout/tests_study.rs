//! Quality of the assignment on the cluster of the original load-balancing study (rf 3, four
//! zones, eleven nodes), compared with the figures of its multi-zone MagLev. Run with
//! `cargo test --release --lib layout::tests_study -- --nocapture` to see the table.

use std::collections::BTreeMap;

use crate::util::ids::{blake2sum, NodeId};

use super::*;

const CLUSTER: &[(&str, &str, u64)] = &[
    ("atuin", "datura", 8),
    ("atuin", "digitale", 8),
    ("atuin", "drosera", 8),
    ("jupiter", "io", 16),
    ("jupiter", "isou", 8),
    ("grog", "mini", 4),
    ("grog", "mixi", 4),
    ("grog", "moxi", 4),
    ("grog", "modi", 4),
    ("grisou", "geant", 16),
    ("grisou", "gipsie", 16),
];

/// Average shares of partitions with 0/1/2/3 changed replicas of the original multi-zone MagLev.
const MAGLEV_AVERAGE: [f64; 4] = [64.94, 33.33, 1.72, 0.01];

fn node_id(name: &str) -> NodeId {
    NodeId(blake2sum(name.as_bytes()).0)
}

fn roles_without(removed: Option<&str>) -> BTreeMap<NodeId, NodeRole> {
    CLUSTER
        .iter()
        .filter(|(_, name, _)| Some(*name) != removed)
        .map(|(zone, name, cap)| (node_id(name), NodeRole::storage(*zone, *cap)))
        .collect()
}

/// Checks the ±1 rule for equal capacities: a gap of 2 or more between nodes A and B of equal
/// capacity is only allowed when B's zone is saturated, i.e. already holds one replica of every
/// partition (with rf = zone redundancy = 3 a zone holds at most one replica per partition, so
/// `256`): then no replica can move from A to B without breaking the zone spread.
fn check_equal_capacity(assignment: &Assignment, roles: &BTreeMap<NodeId, NodeRole>) -> bool {
    let counts = assignment.partition_counts();
    let mut zone_totals: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, role) in roles {
        *zone_totals.entry(role.zone.as_str()).or_insert(0) += counts.get(id).copied().unwrap_or(0);
    }
    let mut constrained = false;
    for (a, ra) in roles {
        for (b, rb) in roles {
            let (ta, tb) = (counts[a], counts[b]);
            if ra.capacity == rb.capacity && ta > tb + 1 {
                assert_eq!(
                    zone_totals[rb.zone.as_str()],
                    NUM_PARTITIONS,
                    "{a:?} ({ta}) and {b:?} ({tb}) have equal capacity but differ by more than 1 \
                     although {b:?}'s zone could take more"
                );
                constrained = true;
            }
        }
    }
    constrained
}

#[test]
fn study_cluster_quality() {
    let params = LayoutParams::new(3);
    let roles = roles_without(None);
    let base = compute_assignment(&params, &roles, None).unwrap();
    let counts = base.partition_counts();

    println!("\n#partitions per node (capacity in parenthesis), 256 partitions, rf 3:");
    for (zone, name, cap) in CLUSTER {
        println!(
            "- {zone:8} {name:9} ({cap:2}) : {:4}",
            counts[&node_id(name)]
        );
    }
    // Total capacity 96 → 768 replicas / 96 = 8 per unit of capacity. Zone grisou (32) gets
    // exactly 256 = one replica of every partition, its maximum: the constraints are just tight
    // enough, so every node can get exactly its proportional share and equal capacities (even in
    // different zones: io vs geant/gipsie) get equal counts.
    for (_, name, cap) in CLUSTER {
        assert_eq!(counts[&node_id(name)] as u64, 8 * cap, "{name}");
    }
    assert!(!check_equal_capacity(&base, &roles));

    println!("\nDisruption when removing nodes (partitions with 0/1/2/3 changed replicas):");
    println!(
        "{:28} {:>7} {:>7} {:>7} {:>7}   (best possible 0)",
        "", "0", "1", "2", "3"
    );
    let mut sums = [0.0f64; 4];
    for (zone, name, _) in CLUSTER {
        let roles = roles_without(Some(name));
        let after = compute_assignment(&params, &roles, Some(&base)).unwrap();
        let changes = ChangeStats::between(&base, &after);
        let shares: Vec<f64> = (0..4)
            .map(|k| {
                let n = changes.by_changed_replicas.get(k).copied().unwrap_or(0);
                100.0 * n as f64 / NUM_PARTITIONS as f64
            })
            .collect();
        // Every partition of the removed node must change at least one replica.
        let best = 100.0 * (1.0 - counts[&node_id(name)] as f64 / NUM_PARTITIONS as f64);
        let constrained = check_equal_capacity(&after, &roles);
        println!(
            "removing {zone:8} {name:9}  : {:6.2}% {:6.2}% {:6.2}% {:6.2}%   ({best:.2}%){}",
            shares[0],
            shares[1],
            shares[2],
            shares[3],
            if constrained { "  *" } else { "" }
        );
        for (sum, share) in sums.iter_mut().zip(&shares) {
            *sum += share;
        }
        assert_eq!(changes.by_changed_replicas.len(), 4);
    }
    let avg: Vec<f64> = sums.iter().map(|s| s / CLUSTER.len() as f64).collect();
    println!(
        "on average:                    {:6.2}% {:6.2}% {:6.2}% {:6.2}%",
        avg[0], avg[1], avg[2], avg[3]
    );
    println!(
        "multi-zone MagLev (study):     {:6.2}% {:6.2}% {:6.2}% {:6.2}%",
        MAGLEV_AVERAGE[0], MAGLEV_AVERAGE[1], MAGLEV_AVERAGE[2], MAGLEV_AVERAGE[3]
    );
    println!(
        "* equal capacities differ by more than 1 because the emptier node's zone is saturated \
         (one replica of every partition)"
    );
    assert!(avg[0] > MAGLEV_AVERAGE[0], "0-changed share {:.2}%", avg[0]);
    assert!(avg[2] < MAGLEV_AVERAGE[2], "2-changed share {:.2}%", avg[2]);
    assert!(avg[3] < MAGLEV_AVERAGE[3], "3-changed share {:.2}%", avg[3]);
}
