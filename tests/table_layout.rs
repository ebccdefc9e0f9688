//! Tables across layout changes: after partitions move, every entry ends up on exactly its new
//! replicas (moved to new holders, offloaded from former ones), and the layout history drops the
//! old version once every node has synced. The old version must stay (and keep serving reads)
//! while a node that left the layout still holds data it has not handed over.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::inproc::*;
use garage::layout::history::LayoutHistory;
use garage::layout::NodeRole;
use garage::table::schema::PartitionKey;
use garage::util::ids::NodeId;

fn entries(n: usize, tag: &str) -> Vec<KvEntry> {
    (0..n)
        .map(|i| KvEntry::new(&format!("pk{i}"), "s", Some(&format!("{tag}{i}"))))
        .collect()
}

/// Whether every node's layout history is down to one version, at least `v`.
fn settled(nodes: &[&TestNode], v: u64) -> bool {
    nodes.iter().all(|t| {
        t.node
            .layout
            .read(|h| h.versions.len() == 1 && h.current().version >= v)
    })
}

/// The nodes (among `nodes`) whose placement of `entries` differs from the current layout:
/// an entry must be on every node of its partition and on no other node. Checks both tables
/// (the cascade copies live under other partition keys).
fn misplaced(nodes: &[&TestNode], entries: &[KvEntry]) -> Vec<String> {
    let mut bad = vec![];
    for e in entries {
        let copy_pk = format!("copy-{}", e.pk);
        for (pk, is_copy) in [(&e.pk, false), (&copy_pk, true)] {
            let hash = pk.hash();
            for t in nodes {
                let should: BTreeSet<NodeId> = t
                    .node
                    .layout
                    .read(|h| h.partition_nodes_all_versions(hash.0[0]));
                let should = should.contains(&t.id());
                let (present, current) = if is_copy {
                    let c = t.kv2.get_local(pk, &e.sk).expect("local");
                    (c.is_some(), c.is_some_and(|c| c.0.value == e.value))
                } else {
                    let v = local_value(&t.kv, pk, &e.sk);
                    (v.is_some(), v == Some(e.value.get().clone()))
                };
                if present != should || (should && !current) {
                    bad.push(format!(
                        "{pk}: on {} = {present}, should be {should}",
                        t.id().short()
                    ));
                }
            }
        }
    }
    bad
}

async fn wait_placement(nodes: &[&TestNode], entries: &[KvEntry], what: &str) {
    let mut last = vec![];
    // Generous bound: on a loaded machine a sync worker may be in its error backoff (≤ 60 s).
    let ok = until(Duration::from_secs(180), || {
        last = misplaced(nodes, entries);
        last.is_empty()
    })
    .await;
    assert!(
        ok,
        "{what}: {} misplaced, e.g. {:?}",
        last.len(),
        &last[..last.len().min(5)]
    );
}

async fn read_everything(from: &[&TestNode], entries: &[KvEntry]) {
    for t in from {
        for e in entries {
            let got = t.kv.get(&e.pk, &e.sk).await.expect("read");
            assert_eq!(
                got.map(|g| g.value),
                Some(e.value.clone()),
                "read of {} from {}",
                e.pk,
                t.id().short()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_move_on_add_and_remove_and_are_offloaded() {
    let mut nodes = start_cluster(3, 3, "").await;
    let data = entries(300, "v");
    nodes[0].kv.insert_many(&data).await.expect("insert");

    // A fourth node: each partition moves from one of the three to it.
    nodes.push(start_node(3, "").await);
    connect_all(&nodes).await;
    let d = nodes[3].id();
    let v = stage_and_apply(&nodes[0], vec![(d, Some(NodeRole::storage("z3", 100)))]).await;
    assert_eq!(v, 2);
    let all: Vec<&TestNode> = nodes.iter().collect();
    let ok = until(Duration::from_secs(90), || settled(&all, 2)).await;
    assert!(ok, "version 1 dropped once every node synced version 2");
    let counts = nodes[0].node.layout.read(|h| {
        h.current()
            .assignment
            .as_ref()
            .expect("assignment")
            .partition_counts()
    });
    assert_eq!(counts.get(&d), Some(&192), "the new node holds its share");
    wait_placement(&all, &data, "after adding a node").await;
    for t in &nodes {
        assert!(
            local_store(&t.kv).len() < data.len(),
            "{} offloaded what it no longer holds",
            t.id().short()
        );
    }
    read_everything(&all, &data).await;

    // Remove one of the original nodes: the three others now hold everything, it holds nothing.
    let gone = nodes[1].id();
    let v = stage_and_apply(&nodes[0], vec![(gone, None)]).await;
    assert_eq!(v, 3);
    let ok = until(Duration::from_secs(90), || settled(&all, 3)).await;
    assert!(ok, "version 2 dropped once every node synced version 3");
    wait_placement(&all, &data, "after removing a node").await;
    let ok = until(Duration::from_secs(60), || {
        local_store(&nodes[1].kv).is_empty() && local_store(&nodes[1].kv2).is_empty()
    })
    .await;
    assert!(ok, "the removed node offloaded everything");
    let remaining = [&nodes[0], &nodes[2], &nodes[3]];
    for t in remaining {
        assert_eq!(local_store(&t.kv).len(), data.len());
    }
    read_everything(&remaining, &data).await;
    shutdown_all(&nodes).await;
}

/// Replacing nodes: the two nodes that leave hold the only copies of some entries (the third
/// replica was partitioned away when they were written). The new nodes and the remaining old
/// one finish their sync rounds quickly (they have nothing to hand over), but the old version
/// must stay — and reads keep going to it — until the leaving nodes have pushed their data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_version_outlives_nodes_that_leave_until_they_handed_over() {
    // a and b run without their background workers at first: they will not sync on their own.
    let mut nodes = vec![];
    for workers in [false, false, true, true, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = start_node_in(dir.path(), common::free_port(), 3, "", workers).await;
        t.dir = Some(dir);
        nodes.push(t);
    }
    connect_all(&nodes).await;
    let ids: Vec<NodeId> = nodes.iter().map(|t| t.id()).collect();
    let v1 = (0..3)
        .map(|i| (ids[i], Some(NodeRole::storage(format!("z{i}"), 100))))
        .collect();
    stage_and_apply(&nodes[0], v1).await;
    wait_layout(&nodes, 1).await;

    // Written while c is away: only a and b have these.
    let c = &nodes[2];
    c.node.system.netapp.set_isolated(true);
    let data = entries(50, "only-ab-");
    nodes[0].kv.insert_many(&data).await.expect("insert");
    c.node.system.netapp.set_isolated(false);
    assert!(data
        .iter()
        .all(|e| local_value(&c.kv, &e.pk, &e.sk).is_none()));

    // Replace a and b by d and e.
    let v = stage_and_apply(
        c,
        vec![
            (ids[0], None),
            (ids[1], None),
            (ids[3], Some(NodeRole::storage("z3", 100))),
            (ids[4], Some(NodeRole::storage("z4", 100))),
        ],
    )
    .await;
    assert_eq!(v, 2);
    wait_layout(&nodes, 2).await;
    let stayers = [&nodes[2], &nodes[3], &nodes[4]];
    let ok = until(Duration::from_secs(60), || {
        c.node.layout.read(|h| {
            stayers
                .iter()
                .all(|t| h.sync.get(&t.id()).copied().unwrap_or(0) >= 2)
        })
    })
    .await;
    assert!(ok, "c, d and e finished a sync round for version 2");
    assert_eq!(
        c.node.layout.read(|h| h.versions.len()),
        2,
        "version 1 kept: a and b have not handed their data over"
    );
    // Read-after-write holds during the transition: reads still go to a, b, c.
    read_everything(&stayers, &data).await;

    // a and b start syncing: they push to the new holders, report, and offload.
    nodes[0].spawn_workers();
    nodes[1].spawn_workers();
    let all: Vec<&TestNode> = nodes.iter().collect();
    let ok = until(Duration::from_secs(90), || settled(&all, 2)).await;
    assert!(ok, "version 1 dropped once a and b synced too");
    wait_placement(&all, &data, "after replacing two nodes").await;
    read_everything(&stayers, &data).await;
    shutdown_all(&nodes).await;
}

/// The pruning rule itself: the storage nodes of every listed version count, not only those of
/// the current one.
#[test]
fn history_keeps_a_version_until_its_leaving_nodes_synced() {
    let id = |n: u8| NodeId([n; 32]);
    let mut h = LayoutHistory::new(3);
    for n in 1..=3 {
        h.staging
            .roles
            .update_in_place(id(n), Some(NodeRole::storage(format!("z{n}"), 100)));
    }
    h.apply(Some(1)).expect("apply 1");
    for n in 1..=3 {
        h.mark_synced(id(n), 1);
    }
    h.staging.roles.update_in_place(id(1), None);
    h.staging.roles.update_in_place(id(2), None);
    for n in 4..=5 {
        h.staging
            .roles
            .update_in_place(id(n), Some(NodeRole::storage(format!("z{n}"), 100)));
    }
    h.apply(Some(2)).expect("apply 2");
    for n in 3..=5 {
        h.mark_synced(id(n), 2);
    }
    assert_eq!(h.versions.len(), 2, "nodes 1 and 2 still hold data of v1");
    assert_eq!(h.read_version().version, 1);
    h.mark_synced(id(1), 2);
    assert_eq!(h.versions.len(), 2);
    h.mark_synced(id(2), 2);
    assert_eq!(h.versions.len(), 1, "every node of every version synced");
    assert_eq!(h.read_version().version, 2);
}
