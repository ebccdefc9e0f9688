//! The engine test suite, written against [`Db`] only so that every engine runs it unchanged.

use std::ops::Bound;
use std::sync::Arc;

use super::*;

/// Each engine under test: (name, constructor in a fresh directory).
fn engines() -> Vec<(&'static str, tempfile::TempDir, Db)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine =
        sled_engine::SledEngine::open(&dir.path().join("db"), 1 << 20, 100).expect("open sled");
    vec![("sled", dir, Db::new(Arc::new(engine), false))]
}

fn collect(iter: ValueIter<'_>) -> Vec<(Value, Value)> {
    iter.map(|r| r.expect("iter item")).collect()
}

#[test]
fn point_operations() {
    for (name, _dir, db) in engines() {
        let t = db.open_tree("t").expect("open");
        assert_eq!(t.get(b"a").expect("get"), None, "{name}");
        assert_eq!(t.insert(b"a", b"1").expect("ins"), None);
        assert_eq!(t.insert(b"a", b"2").expect("ins"), Some(b"1".to_vec()));
        assert_eq!(t.get(b"a").expect("get"), Some(b"2".to_vec()));
        assert_eq!(t.len().expect("len"), 1);
        assert_eq!(t.remove(b"a").expect("rm"), Some(b"2".to_vec()));
        assert_eq!(t.remove(b"a").expect("rm"), None);
        assert!(t.is_empty().expect("empty"));
        // Same name gives the same tree; different names are independent.
        let t2 = db.open_tree("t").expect("open");
        let u = db.open_tree("u").expect("open");
        t2.insert(b"k", b"v").expect("ins");
        assert_eq!(t.get(b"k").expect("get"), Some(b"v".to_vec()));
        assert_eq!(u.get(b"k").expect("get"), None);
        let names = db.list_trees().expect("list");
        assert!(names.contains(&"t".to_string()) && names.contains(&"u".to_string()));
        t.clear().expect("clear");
        assert_eq!(t.len().expect("len"), 0);
    }
}

#[test]
fn range_scans_both_directions() {
    for (name, _dir, db) in engines() {
        let t = db.open_tree("r").expect("open");
        for k in [b"a", b"b", b"c", b"d", b"e"] {
            t.insert(k, k).expect("ins");
        }
        let keys = |v: Vec<(Value, Value)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        let fwd = keys(collect(
            t.range(Bound::Included(b"b"), Bound::Excluded(b"e"))
                .expect("range"),
        ));
        assert_eq!(
            fwd,
            vec![b"b".to_vec(), b"c".to_vec(), b"d".to_vec()],
            "{name}"
        );
        let rev = keys(collect(
            t.range_rev(Bound::Excluded(b"a"), Bound::Included(b"d"))
                .expect("range"),
        ));
        assert_eq!(rev, vec![b"d".to_vec(), b"c".to_vec(), b"b".to_vec()]);
        assert_eq!(collect(t.iter().expect("iter")).len(), 5);
        assert_eq!(
            keys(collect(t.iter_rev().expect("iter"))).first(),
            Some(&b"e".to_vec())
        );
        // Inverted or empty bounds give nothing rather than an error or a panic.
        assert!(collect(
            t.range(Bound::Included(b"d"), Bound::Included(b"b"))
                .expect("range")
        )
        .is_empty());
        assert!(collect(
            t.range(Bound::Excluded(b"c"), Bound::Excluded(b"c"))
                .expect("range")
        )
        .is_empty());
        assert_eq!(
            t.get_gte(b"bb").expect("gte").map(|(k, _)| k),
            Some(b"c".to_vec())
        );
        assert_eq!(
            t.first().expect("first").map(|(k, _)| k),
            Some(b"a".to_vec())
        );
    }
}

#[test]
fn transactions_are_atomic_over_trees() {
    for (name, _dir, db) in engines() {
        let a = db.open_tree("a").expect("open");
        let b = db.open_tree("b").expect("open");
        let r: TxResult<u32, ()> = db.transaction(|tx| {
            tx.insert(&a, b"k", b"1")?;
            tx.insert(&b, b"k", b"1")?;
            Ok(7)
        });
        assert_eq!(r.expect("commit"), 7, "{name}");
        assert_eq!(b.get(b"k").expect("get"), Some(b"1".to_vec()));

        let r: TxResult<(), &str> = db.transaction(|tx| {
            tx.insert(&a, b"k", b"2")?;
            tx.remove(&b, b"k")?;
            tx.abort("changed my mind")
        });
        assert!(matches!(r, Err(TxError::Abort("changed my mind"))));
        assert_eq!(
            a.get(b"k").expect("get"),
            Some(b"1".to_vec()),
            "abort wrote nothing"
        );
        assert_eq!(b.get(b"k").expect("get"), Some(b"1".to_vec()));

        // Reads inside a transaction see its own writes.
        let r: TxResult<Option<Value>, ()> = db.transaction(|tx| {
            tx.insert(&a, b"x", b"y")?;
            Ok(tx.get(&a, b"x")?)
        });
        assert_eq!(r.expect("commit"), Some(b"y".to_vec()));
    }
}

#[test]
fn concurrent_read_modify_write_loses_no_update() {
    for (name, _dir, db) in engines() {
        let t = db.open_tree("counter").expect("open");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (db, t) = (db.clone(), t.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let r: TxResult<(), ()> = db.transaction(|tx| {
                            let n = tx
                                .get(&t, b"n")?
                                .map(|v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
                                .unwrap_or(0);
                            tx.insert(&t, b"n", &(n + 1).to_be_bytes())?;
                            Ok(())
                        });
                        r.expect("commit");
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("thread");
        }
        let v = t.get(b"n").expect("get").expect("present");
        assert_eq!(
            u64::from_be_bytes(v.try_into().expect("8 bytes")),
            400,
            "{name}"
        );
    }
}

#[test]
fn data_survives_reopen_after_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = OpenOptions {
        engine: "sled".into(),
        fsync: false,
        sled_cache_capacity: 1 << 20,
        sled_flush_every_ms: 0,
    };
    {
        let db = open(dir.path(), &opts).expect("open");
        let t = db.open_tree("p").expect("tree");
        t.insert(b"k", b"v").expect("ins");
        db.flush().expect("flush");
    }
    // sled's background threads release the file lock shortly after the last handle is dropped:
    // retry the reopen a bounded number of times.
    let mut reopened = None;
    for _ in 0..100 {
        match open(dir.path(), &opts) {
            Ok(db) => {
                reopened = Some(db);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    let db = reopened.expect("reopen");
    let t = db.open_tree("p").expect("tree");
    assert_eq!(t.get(b"k").expect("get"), Some(b"v".to_vec()));
}

#[test]
fn unknown_engine_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = OpenOptions {
        engine: "rocksdb".into(),
        fsync: false,
        sled_cache_capacity: 1 << 20,
        sled_flush_every_ms: 0,
    };
    let err = open(dir.path(), &opts).expect_err("must fail");
    assert!(err.to_string().contains("rocksdb"));
}
