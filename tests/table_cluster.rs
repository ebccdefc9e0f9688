//! The replicated table engine on in-process clusters of real nodes (real TCP, real sled):
//! quorum writes and reads with a node partitioned away, read-after-write, anti-entropy
//! convergence of a node that missed writes, cascades through the insert queue, read repair on
//! its own (nodes without background workers, so without anti-entropy; range reads also repair
//! missing entries), full-copy tables (written to every node, read locally), and the quorums of
//! each consistency mode with two replicas down.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::free_port;
use common::inproc::*;
use garage::layout::NodeRole;
use garage::table::replication::FullCopy;
use garage::table::schema::TableSchema;
use garage::table::typed::Table;

fn value(e: &Option<KvEntry>) -> Option<String> {
    e.as_ref().and_then(|e| e.value.get().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf3_survives_one_node_down_and_reads_its_writes() {
    let nodes = start_cluster(3, 3, "").await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    a.kv.insert(&KvEntry::new("p", "k1", Some("v1")))
        .await
        .expect("insert");
    let got = b.kv.get(&"p".into(), &"k1".into()).await.expect("get");
    assert_eq!(
        value(&got).as_deref(),
        Some("v1"),
        "read-after-write from another node"
    );

    // Partition c away: writes and reads still reach a quorum of 2.
    c.node.system.netapp.set_isolated(true);
    a.kv.insert(&KvEntry::new("p", "k2", Some("v2")))
        .await
        .expect("insert with one node down");
    let got =
        b.kv.get(&"p".into(), &"k2".into())
            .await
            .expect("get with one node down");
    assert_eq!(value(&got).as_deref(), Some("v2"));
    let range =
        a.kv.get_range(&"p".into(), None, None, 100, false)
            .await
            .expect("range");
    assert_eq!(range.len(), 2);

    // c missed k2; once back, anti-entropy alone (no new writes) brings it over.
    assert!(c
        .kv
        .get_local(&"p".into(), &"k2".into())
        .expect("local")
        .is_none());
    c.node.system.netapp.set_isolated(false);
    for t in &nodes {
        t.kv.sync_trigger.now.notify_one();
    }
    let ok = until(Duration::from_secs(60), || {
        value(&c.kv.get_local(&"p".into(), &"k2".into()).expect("local")).as_deref() == Some("v2")
    })
    .await;
    assert!(ok, "node c converged through anti-entropy");

    // Cascade through the insert queue: every write to test_kv produced a copy in test_kv_copy.
    let ok = until(Duration::from_secs(30), || {
        nodes.iter().all(|t| {
            t.kv2
                .get_local(&"copy-p".into(), &"k1".into())
                .ok()
                .flatten()
                .is_some()
        })
    })
    .await;
    assert!(ok, "cascaded inserts reached every replica");
    for t in &nodes {
        t.node.shutdown().await.expect("shutdown");
    }
}

/// Read repair alone: the nodes run no background worker (no anti-entropy, no Merkle updater),
/// so a replica that missed writes while partitioned away gets them only from quorum reads that
/// reach it: a single-entry read repairs a missing entry and an older value, a range read
/// repairs an older value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_reads_repair_stale_replicas() {
    let mut nodes = vec![];
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = start_node_in(dir.path(), free_port(), 3, "", false).await;
        t.dir = Some(dir);
        nodes.push(t);
    }
    connect_all(&nodes).await;
    let roles: BTreeMap<_, _> = nodes
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id(), NodeRole::storage(format!("z{i}"), 100)))
        .collect();
    assign_and_apply(&nodes[0], roles).await;
    wait_layout(&nodes, 1).await;
    let (a, c) = (&nodes[0], &nodes[2]);

    // Old values everywhere (the third copy arrives in the background after the quorum).
    for (pk, sk) in [("p", "old"), ("q", "x")] {
        a.kv.insert(&KvEntry::new(pk, sk, Some("v1")))
            .await
            .expect("insert");
    }
    let everywhere = until(Duration::from_secs(10), || {
        nodes.iter().all(|t| {
            local_value(&t.kv, "p", "old") == Some(Some("v1".into()))
                && local_value(&t.kv, "q", "x") == Some(Some("v1".into()))
        })
    })
    .await;
    assert!(everywhere, "first writes reached every replica");

    // c misses two new entries and two updates.
    c.node.system.netapp.set_isolated(true);
    for (pk, sk, v) in [
        ("p", "new", "v1"),
        ("p", "old", "v2"),
        ("q", "x", "v2"),
        ("q", "y", "v1"),
    ] {
        a.kv.insert(&KvEntry::new(pk, sk, Some(v)))
            .await
            .expect("insert with c away");
    }
    c.node.system.netapp.set_isolated(false);
    assert_eq!(local_value(&c.kv, "p", "new"), None);
    assert_eq!(local_value(&c.kv, "p", "old"), Some(Some("v1".into())));
    assert_eq!(local_value(&c.kv, "q", "x"), Some(Some("v1".into())));

    // Reads through c: c answers first (it is the closest node), another replica second.
    for (sk, want) in [("new", "v1"), ("old", "v2")] {
        let got = c.kv.get(&"p".into(), &sk.into()).await.expect("get");
        assert_eq!(
            got.and_then(|e| e.value.get().clone()).as_deref(),
            Some(want)
        );
        let repaired = until(Duration::from_secs(10), || {
            local_value(&c.kv, "p", sk) == Some(Some(want.into()))
        })
        .await;
        assert!(repaired, "c not repaired by reading {sk}");
    }
    let range =
        c.kv.get_range(&"q".into(), None, None, 10, false)
            .await
            .expect("range");
    let values: Vec<Option<String>> = range.iter().map(|e| e.value.get().clone()).collect();
    assert_eq!(values, vec![Some("v2".to_string()), Some("v1".to_string())]);
    let repaired = until(Duration::from_secs(10), || {
        local_value(&c.kv, "q", "x") == Some(Some("v2".into()))
            && local_value(&c.kv, "q", "y") == Some(Some("v1".into()))
    })
    .await;
    assert!(
        repaired,
        "c not repaired by the range read (older value and missing entry)"
    );
    shutdown_all(&nodes).await;
}

/// A full-copy table of test entries.
struct FullSchema;

impl TableSchema for FullSchema {
    const NAME: &'static str = "test_kv_full";
    type P = String;
    type S = String;
    type E = KvEntry2;
    type Filter = ();
}

/// Full copy: a write goes to every node with a role (quorum: all but one), and a read is
/// answered from the local copy, so a node cut off from the others still reads (its possibly
/// stale copy) and catches up through anti-entropy once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_copy_tables_write_everywhere_and_read_locally() {
    let nodes = start_cluster(3, 3, "").await;
    let tables: Vec<Arc<Table<FullSchema>>> = nodes
        .iter()
        .map(|t| {
            let ctx = t.node.table_context();
            let replication = Arc::new(FullCopy {
                layout: t.node.layout.clone(),
            });
            let table = Table::new(FullSchema, replication, &ctx).expect("full-copy table");
            table.spawn_workers(&ctx);
            table
        })
        .collect();
    let entry = |v: &str| KvEntry2(KvEntry::new("b", "k", Some(v)));
    let (pk, sk): (String, String) = ("b".into(), "k".into());
    let local = |t: &Table<FullSchema>| {
        t.get_local(&pk, &sk)
            .expect("local read")
            .and_then(|e| e.0.value.get().clone())
    };

    tables[0].insert(&entry("v1")).await.expect("insert");
    let everywhere = until(Duration::from_secs(10), || {
        tables.iter().all(|t| local(t).as_deref() == Some("v1"))
    })
    .await;
    assert!(everywhere, "every node holds the entry");

    // Node 3 cut off: writes still reach their quorum (2 of 3); node 3 reads its own copy.
    nodes[2].node.system.netapp.set_isolated(true);
    tables[0]
        .insert(&entry("v2"))
        .await
        .expect("insert with one node away");
    let value = |e: Option<KvEntry2>| e.and_then(|e| e.0.value.get().clone());
    let on_1 = tables[1].get(&pk, &sk).await.expect("read on node 2");
    assert_eq!(value(on_1).as_deref(), Some("v2"));
    let on_3 = tables[2]
        .get(&pk, &sk)
        .await
        .expect("a local read needs no other node");
    assert_eq!(value(on_3).as_deref(), Some("v1"), "node 3 missed v2");

    nodes[2].node.system.netapp.set_isolated(false);
    tables[2].sync_trigger.now.notify_one();
    let caught_up = until(Duration::from_secs(60), || {
        local(&tables[2]).as_deref() == Some("v2")
    })
    .await;
    assert!(caught_up, "node 3 caught up through anti-entropy");
    shutdown_all(&nodes).await;
}

/// The quorums of each `consistency_mode` (DESIGN.md §6) with two of three replicas cut off:
/// `consistent` neither reads nor writes; `degraded` reads (from one replica) but does not write;
/// `dangerous` does both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consistency_modes_with_two_replicas_down() {
    for (mode, reads, writes) in [
        ("consistent", false, false),
        ("degraded", true, false),
        ("dangerous", true, true),
    ] {
        let nodes = start_cluster(3, 3, &format!("consistency_mode = \"{mode}\"")).await;
        let a = &nodes[0];
        a.kv.insert(&KvEntry::new("p", "k", Some("v")))
            .await
            .unwrap_or_else(|e| panic!("{mode}: insert with every node up: {e}"));
        // Every replica has it before two of them are cut off.
        let ok = until(Duration::from_secs(30), || {
            nodes
                .iter()
                .all(|t| value(&t.kv.get_local(&"p".into(), &"k".into()).expect("local")).is_some())
        })
        .await;
        assert!(ok, "{mode}: the first write reached every replica");
        for t in &nodes[1..] {
            t.node.system.netapp.set_isolated(true);
        }

        let read = a.kv.get(&"p".into(), &"k".into()).await;
        assert_eq!(
            read.is_ok(),
            reads,
            "{mode}: read with 2 of 3 down: {read:?}"
        );
        if let Ok(got) = read {
            assert_eq!(value(&got).as_deref(), Some("v"), "{mode}");
        }
        let write = a.kv.insert(&KvEntry::new("p", "k2", Some("v2"))).await;
        assert_eq!(
            write.is_ok(),
            writes,
            "{mode}: write with 2 of 3 down: {write:?}"
        );

        for t in &nodes[1..] {
            t.node.system.netapp.set_isolated(false);
        }
        shutdown_all(&nodes).await;
    }
}
