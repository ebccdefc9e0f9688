//! The replicated table engine on in-process clusters of real nodes (real TCP, real sled):
//! quorum writes and reads with a node partitioned away, read-after-write, read repair, and
//! anti-entropy convergence of a node that missed writes.

mod common;

use std::time::Duration;

use common::inproc::*;

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
