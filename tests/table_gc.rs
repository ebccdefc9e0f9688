//! Tombstone GC on in-process clusters with a 1 s GC delay: a tombstone is collected only once
//! every replica has it, so a replica that was away while an entry was deleted can never bring
//! the old value back; tombstones overwritten by a newer value are left alone.

mod common;

use std::time::Duration;

use common::inproc::*;
use garage::table::data::parse_gc_todo;
use garage::table::schema::{tree_key, PartitionKey, TableSchema};
use garage::table::typed::Table;
use garage::util::time::now_msec;

const CONFIG: &str = "tombstone_gc_delay_secs = 1\ntable_sync_interval_secs = 2";

fn key(pk: &str, sk: &str) -> Vec<u8> {
    tree_key(&pk.to_string().hash(), sk.as_bytes())
}

/// The time recorded in `gc_todo` for a key, if it is there.
fn gc_todo<S: TableSchema>(t: &Table<S>, k: &[u8]) -> Option<u64> {
    t.core
        .data
        .gc_todo
        .get(k)
        .expect("gc_todo")
        .and_then(|v| parse_gc_todo(&v))
        .map(|(ts, _)| ts)
}

async fn read(t: &TestNode, pk: &str, sk: &str) -> Option<KvEntry> {
    t.kv.get(&pk.to_string(), &sk.to_string())
        .await
        .expect("cluster read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tombstone_waits_for_every_replica_and_the_old_value_never_returns() {
    let nodes = start_cluster(3, 3, CONFIG).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (pk, sk) = ("gc", "doomed");
    let k = key(pk, sk);

    // V everywhere.
    let v = KvEntry::new(pk, sk, Some("V"));
    a.kv.insert(&v).await.expect("insert");
    let ok = until(Duration::from_secs(30), || {
        nodes
            .iter()
            .all(|t| local_value(&t.kv, pk, sk) == Some(Some("V".into())))
    })
    .await;
    assert!(ok, "V reached every replica");

    // c goes away; the entry is deleted (tombstone) on a and b.
    c.node.system.netapp.set_isolated(true);
    let mut tombstone = v.clone();
    tombstone.value.update(None);
    a.kv.insert(&tombstone)
        .await
        .expect("delete with c isolated");
    let ok = until(Duration::from_secs(30), || {
        [a, b]
            .iter()
            .all(|t| local_value(&t.kv, pk, sk) == Some(None) && gc_todo(&t.kv, &k).is_some())
    })
    .await;
    assert!(ok, "the tombstone is on a and b, waiting for GC");

    // Well past the delay, with GC rounds run explicitly (the GC workers run meanwhile too).
    let recorded = [a, b]
        .iter()
        .filter_map(|t| gc_todo(&t.kv, &k))
        .max()
        .expect("gc_todo time");
    let ok = until(Duration::from_secs(30), || now_msec() > recorded + 2500).await;
    assert!(ok, "the clock moves");
    for t in [a, b] {
        let n = t.kv.core.gc_round().await.expect("gc round");
        assert_eq!(n, 0, "nothing collected while c is unreachable");
    }
    for t in [a, b] {
        assert_eq!(
            local_value(&t.kv, pk, sk),
            Some(None),
            "the tombstone is still on {}",
            t.id().short()
        );
        assert!(gc_todo(&t.kv, &k).is_some(), "and still in gc_todo");
    }
    assert_eq!(
        local_value(&c.kv, pk, sk),
        Some(Some("V".into())),
        "c still has the old value"
    );

    // c is back: it gets the tombstone, then GC removes the entry everywhere.
    c.node.system.netapp.set_isolated(false);
    for t in &nodes {
        t.trigger_sync();
    }
    let ok = until(Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|t| local_value(&t.kv, pk, sk).is_none() && gc_todo(&t.kv, &k).is_none())
    })
    .await;
    assert!(ok, "the tombstone was collected on every node");
    for t in &nodes {
        assert!(
            read(t, pk, sk).await.is_none(),
            "read from {}",
            t.id().short()
        );
    }

    // No resurrection: several complete anti-entropy rounds and reads later, still gone.
    for _ in 0..3 {
        for t in &nodes {
            t.trigger_sync();
            t.sync_round().await.expect("sync round");
        }
        for t in &nodes {
            assert!(read(t, pk, sk).await.is_none());
            assert!(t
                .kv
                .get_range(&pk.to_string(), None, None, 10, false)
                .await
                .expect("range")
                .is_empty());
        }
    }
    for t in &nodes {
        assert_eq!(local_value(&t.kv, pk, sk), None, "V never came back");
    }

    // The cascaded copy (a tombstone too) is collected as well.
    let ck = key(&format!("copy-{pk}"), sk);
    let ok = until(Duration::from_secs(60), || {
        nodes.iter().all(|t| {
            t.kv2.core.data.read_entry(&ck).expect("read").is_none()
                && gc_todo(&t.kv2, &ck).is_none()
        })
    })
    .await;
    assert!(ok, "the copy's tombstone was collected on every node");
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_collects_every_tombstone_but_spares_overwritten_ones() {
    let nodes = start_cluster(3, 3, CONFIG).await;
    let a = &nodes[0];
    let live: Vec<KvEntry> = (0..40)
        .map(|i| KvEntry::new(&format!("p{}", i % 8), &format!("k{i}"), Some("v")))
        .collect();
    a.kv.insert_many(&live).await.expect("insert");
    let dead: Vec<KvEntry> = live
        .iter()
        .map(|e| {
            let mut d = e.clone();
            d.value.update(None);
            d
        })
        .collect();
    a.kv.insert_many(&dead).await.expect("delete");
    // One key is written again right after its deletion: its tombstone must not be collected
    // and the new value must survive.
    let mut back = dead[0].clone();
    back.value.update(Some("back".into()));
    a.kv.insert(&back).await.expect("rewrite");

    let ok = until(Duration::from_secs(60), || {
        nodes.iter().all(|t| {
            let s = t.kv.core.data.stats().expect("stats");
            s.items == 1 && s.gc_todo == 0 && s.merkle_todo == 0
        })
    })
    .await;
    assert!(ok, "every tombstone collected on every node");
    for t in &nodes {
        assert_eq!(
            local_value(&t.kv, "p0", "k0"),
            Some(Some("back".into())),
            "the rewritten entry survived on {}",
            t.id().short()
        );
        let got = read(t, "p3", "k3").await;
        assert!(got.is_none());
    }
    shutdown_all(&nodes).await;
}
