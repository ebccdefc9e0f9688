//! Anti-entropy at scale: a replica that was partitioned away while 2000 entries (over 200
//! partition keys, so most of the 256 partitions) were written or overwritten catches up through
//! anti-entropy alone (no further writes, no reads, so no read repair), after which the three
//! replicas hold byte-identical stores, identical Merkle tries, and answer range reads alike.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::inproc::*;
use garage::table::merkle::NodeKey;
use garage::table::schema::TableSchema;
use garage::table::typed::Table;

const ENTRIES: usize = 2000;
const PKS: usize = 200;

fn pk(i: usize) -> String {
    format!("p{:03}", i % PKS)
}

fn sk(i: usize) -> String {
    format!("k{i:05}")
}

/// The Merkle roots of all 256 partitions of a table on one node.
fn roots<S: TableSchema>(t: &Table<S>) -> Vec<(u64, [u8; 32])> {
    (0..=255u8)
        .map(|p| {
            let s = t.core.data.merkle_node(&NodeKey::root(p)).expect("root");
            (s.count, s.xor.0)
        })
        .collect()
}

fn merkle_idle<S: TableSchema>(t: &Table<S>) -> bool {
    t.core.data.merkle_todo.is_empty().unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_missed_entries_converge_through_anti_entropy() {
    let nodes = start_cluster(3, 3, "").await;
    let (a, c) = (&nodes[0], &nodes[2]);

    // Before the partition: 200 entries that c has too (old values, overwritten later).
    let old: Vec<KvEntry> = (0..200)
        .map(|i| KvEntry::new(&pk(i), &sk(i), Some("old")))
        .collect();
    a.kv.insert_many(&old).await.expect("insert old values");
    let ok = until(Duration::from_secs(30), || {
        nodes.iter().all(|t| local_store(&t.kv).len() == 200)
    })
    .await;
    assert!(ok, "the first writes reached every replica");

    // c is partitioned away while everything is (re)written.
    c.node.system.netapp.set_isolated(true);
    let expected: Vec<KvEntry> = (0..ENTRIES)
        .map(|i| KvEntry::new(&pk(i), &sk(i), Some(&format!("v{i}"))))
        .collect();
    for chunk in expected.chunks(250) {
        a.kv.insert_many(chunk)
            .await
            .expect("quorum write with c isolated");
    }
    let partitions: BTreeSet<u8> = (0..PKS)
        .map(|i| garage::table::schema::PartitionKey::hash(&pk(i)).0[0])
        .collect();
    assert!(
        partitions.len() > 100,
        "the entries span many partitions ({})",
        partitions.len()
    );
    assert_eq!(
        local_store(&c.kv).len(),
        200,
        "c missed every write made while it was isolated"
    );

    // Back: anti-entropy alone brings c up to date (no new writes, no reads).
    c.node.system.netapp.set_isolated(false);
    for t in &nodes {
        t.trigger_sync();
    }
    let ok = until(Duration::from_secs(120), || {
        expected
            .iter()
            .all(|e| local_value(&c.kv, &e.pk, &e.sk) == Some(e.value.get().clone()))
    })
    .await;
    assert!(ok, "every one of the {ENTRIES} entries reached c");

    // Full convergence: identical stores (both tables, the cascade copies included) and tries.
    let ok = until(Duration::from_secs(120), || {
        let kv: Vec<_> = nodes.iter().map(|t| local_store(&t.kv)).collect();
        let kv2: Vec<_> = nodes.iter().map(|t| local_store(&t.kv2)).collect();
        kv.iter().all(|s| *s == kv[0] && s.len() == ENTRIES)
            && kv2.iter().all(|s| *s == kv2[0] && s.len() == ENTRIES)
            && nodes
                .iter()
                .all(|t| merkle_idle(&t.kv) && merkle_idle(&t.kv2))
    })
    .await;
    assert!(ok, "the replicas' stores became identical");
    let ok = until(Duration::from_secs(30), || {
        nodes
            .iter()
            .all(|t| merkle_idle(&t.kv) && roots(&t.kv) == roots(&a.kv))
    })
    .await;
    assert!(ok, "the replicas' Merkle tries became identical");
    let total: u64 = roots(&a.kv).iter().map(|(n, _)| n).sum();
    assert_eq!(total, ENTRIES as u64, "the trie counts every entry once");

    // Range reads agree on every node, through the cluster and locally.
    for p in 0..PKS {
        let pk = pk(p);
        let want: Vec<String> = (0..ENTRIES)
            .filter(|i| i % PKS == p)
            .map(|i| format!("v{i}"))
            .collect();
        for t in &nodes {
            let got: Vec<String> =
                t.kv.get_range(&pk, None, None, 1000, false)
                    .await
                    .expect("range read")
                    .into_iter()
                    .map(|e| e.value.get().clone().expect("a value"))
                    .collect();
            assert_eq!(got, want, "range of {pk} read from {:?}", t.id());
            let hash = garage::table::schema::PartitionKey::hash(&pk);
            let local =
                t.kv.core
                    .data
                    .read_range(&hash, None, None, 1000, false)
                    .expect("local range");
            assert_eq!(local.len(), want.len(), "local range of {pk}");
        }
    }
    // Reverse, with a start key and a limit, from each node.
    let pk0 = pk(7);
    let start = sk(1207);
    for t in &nodes {
        let got: Vec<String> =
            t.kv.get_range(&pk0, Some(&start), None, 3, true)
                .await
                .expect("reverse range")
                .into_iter()
                .map(|e| e.sk)
                .collect();
        assert_eq!(got, vec![sk(1207), sk(1007), sk(807)]);
    }
    shutdown_all(&nodes).await;
}
