//! Tests of the layout history CRDT: apply/revert version rules, staging merges across nodes,
//! convergence of concurrent histories, read and write sets during a transition, and pruning.

use super::*;
use crate::layout::NodeRole;

fn id(n: u8) -> NodeId {
    NodeId([n; 32])
}

fn staged(h: &mut LayoutHistory, n: u8, zone: &str, cap: u64) {
    h.staging
        .roles
        .update_in_place(id(n), Some(NodeRole::storage(zone, cap)));
}

fn three_nodes() -> LayoutHistory {
    let mut h = LayoutHistory::new(3);
    for (n, z) in [(1, "a"), (2, "b"), (3, "c")] {
        staged(&mut h, n, z, 100);
    }
    h.apply(Some(1)).expect("apply v1");
    h
}

#[test]
fn apply_and_revert_need_the_next_version() {
    let mut h = LayoutHistory::new(3);
    assert!(matches!(h.apply(None), Err(LayoutOpError::NothingStaged)));
    staged(&mut h, 1, "a", 1);
    let e = h.apply(Some(5)).expect_err("wrong version");
    assert!(e.to_string().contains("must be 1"), "{e}");
    // Not enough nodes for rf 3: refused with the assignment's explanation.
    let e = h.apply(Some(1)).expect_err("rf 3 needs 3 nodes");
    assert!(e.to_string().contains("not enough storage nodes"), "{e}");
    let mut h = three_nodes();
    assert_eq!(h.current().version, 1);
    assert!(h.staging.is_empty());
    staged(&mut h, 4, "a", 100);
    assert!(h.revert(3).is_err());
    h.revert(2).expect("revert");
    assert_eq!(h.current().version, 2);
    assert_eq!(h.current().roles.len(), 3, "revert dropped the staged node");
    assert!(h.staging.is_empty());
}

#[test]
fn staged_changes_from_different_nodes_are_all_kept() {
    let base = three_nodes();
    let (mut a, mut b) = (base.clone(), base.clone());
    staged(&mut a, 4, "a", 100);
    staged(&mut b, 5, "b", 100);
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba, "merge is commutative");
    let roles = ab.staged_roles();
    assert!(roles.contains_key(&id(4)) && roles.contains_key(&id(5)));
}

#[test]
fn applied_version_wins_over_older_staging() {
    let base = three_nodes();
    let mut a = base.clone();
    let mut b = base.clone();
    staged(&mut a, 4, "a", 100);
    a.apply(Some(2)).expect("apply");
    staged(&mut b, 5, "b", 100); // staged on version 1, concurrently
    b.merge(&a);
    assert_eq!(b.current().version, 2);
    assert!(
        b.staging.is_empty(),
        "staging of an older version is dropped"
    );
    let mut a2 = a.clone();
    a2.merge(&b);
    assert_eq!(a2, b);
}

#[test]
fn transition_writes_to_both_versions_until_synced() {
    let mut h = three_nodes();
    for n in 1..=3 {
        h.mark_synced(id(n), 1);
    }
    staged(&mut h, 4, "a", 100);
    staged(&mut h, 5, "b", 100);
    staged(&mut h, 6, "c", 100);
    h.apply(Some(2)).expect("apply");
    assert_eq!(h.versions.len(), 2, "old version kept while new nodes sync");
    assert_eq!(h.read_version().version, 1);
    let hash = blake2sum(b"some key");
    assert_eq!(h.write_sets(&hash).len(), 2);
    for n in 1..=6 {
        h.mark_synced(id(n), 2);
    }
    assert_eq!(h.versions.len(), 1);
    assert_eq!(h.read_version().version, 2);
    assert_eq!(h.write_sets(&hash).len(), 1);
    assert_eq!(h.read_nodes(&hash).len(), 3);
}

#[test]
fn concurrent_histories_converge() {
    let base = three_nodes();
    let mut nodes: Vec<LayoutHistory> = (0..4).map(|_| base.clone()).collect();
    staged(&mut nodes[0], 7, "a", 50);
    nodes[1].mark_synced(id(1), 1);
    nodes[2].apply(None).err();
    staged(&mut nodes[3], 8, "b", 50);
    nodes[3].apply(Some(2)).expect("apply");
    // Merge in two different orders: same result.
    let mut x = nodes[0].clone();
    for n in &nodes {
        x.merge(n);
    }
    let mut y = nodes[3].clone();
    for n in nodes.iter().rev() {
        y.merge(n);
    }
    assert_eq!(x, y);
    assert_eq!(x.digest(), y.digest());
    let mut z = x.clone();
    z.merge(&x);
    assert_eq!(z, x, "idempotent");
}

#[test]
fn encoding_round_trips_with_marker() {
    let h = three_nodes();
    let enc = h.encode().expect("encode");
    assert!(enc.starts_with(b"GlayoutH1"));
    assert_eq!(LayoutHistory::decode(&enc).expect("decode"), h);
    assert!(LayoutHistory::decode(b"garbage").is_err());
}
