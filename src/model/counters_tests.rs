//! Counters: the delta of an object change, the combination of replicas' entries, the hook's
//! bookkeeping, and the recount (alone, and with writes running concurrently).

use std::sync::Arc;

use super::*;
use crate::db::{sled_engine::SledEngine, Db};
use crate::model::object::{ObjectData, ObjectHeaders, ObjectMeta, ObjectVersion};
use crate::table::schema::tree_key;

fn version(ts: u64, id: u8, state: VersionState) -> ObjectVersion {
    ObjectVersion {
        uuid: Uuid([id; 32]),
        timestamp: ts,
        state,
    }
}

fn inline(size: u64) -> VersionState {
    VersionState::Complete(ObjectData::Inline(
        ObjectMeta {
            headers: ObjectHeaders::default(),
            size,
            etag: "e".into(),
            checksum: None,
            encryption: None,
        },
        vec![],
    ))
}

fn uploading(multipart: bool) -> VersionState {
    VersionState::Uploading {
        multipart,
        headers: ObjectHeaders::default(),
        encryption: None,
    }
}

fn obj(bucket: u8, key: &str, versions: Vec<ObjectVersion>) -> Object {
    Object::new(Uuid([bucket; 32]), key.into(), versions)
}

fn t(objects: i64, bytes: i64, unfinished_uploads: i64) -> Totals {
    Totals {
        objects,
        bytes,
        unfinished_uploads,
    }
}

#[test]
fn what_an_object_entry_counts() {
    assert_eq!(Totals::of_object(None), t(0, 0, 0));
    let data = obj(1, "k", vec![version(1, 1, inline(100))]);
    assert_eq!(Totals::of_object(Some(&data)), t(1, 100, 0));
    let marker = obj(
        1,
        "k",
        vec![version(
            2,
            2,
            VersionState::Complete(ObjectData::DeleteMarker),
        )],
    );
    assert_eq!(Totals::of_object(Some(&marker)), t(0, 0, 0));
    // A single-request upload in progress is not an unfinished multipart upload.
    let putting = obj(1, "k", vec![version(1, 1, uploading(false))]);
    assert_eq!(Totals::of_object(Some(&putting)), t(0, 0, 0));
    let mpu = obj(
        1,
        "k",
        vec![
            version(1, 1, inline(7)),
            version(2, 2, uploading(true)),
            version(3, 3, uploading(true)),
            version(4, 4, VersionState::Aborted),
        ],
    );
    assert_eq!(Totals::of_object(Some(&mpu)), t(1, 7, 2));
}

#[test]
fn deltas_of_puts_overwrites_and_deletes() {
    let a = obj(1, "k", vec![version(1, 1, inline(100))]);
    let mut b = a.clone();
    b.merge(&obj(1, "k", vec![version(2, 2, inline(30))]));
    let mut c = b.clone();
    c.merge(&obj(
        1,
        "k",
        vec![version(
            3,
            3,
            VersionState::Complete(ObjectData::DeleteMarker),
        )],
    ));
    let d = |old: Option<&Object>, new: Option<&Object>| {
        Totals::of_object(new).minus(Totals::of_object(old))
    };
    assert_eq!(d(None, Some(&a)), t(1, 100, 0), "put");
    assert_eq!(d(Some(&a), Some(&b)), t(0, -70, 0), "overwrite");
    assert_eq!(d(Some(&b), Some(&c)), t(-1, -30, 0), "delete");
    assert_eq!(d(Some(&c), None), t(0, 0, 0), "tombstone GC");
}

#[test]
fn totals_bytes_round_trip() {
    let v = t(3, -5, i64::MAX);
    assert_eq!(Totals::from_bytes(&v.to_bytes()), v);
    assert_eq!(Totals::from_bytes(b"short"), Totals::default());
    assert_eq!(BucketUsage::from(t(-1, 5, 0)).objects, 0, "never negative");
}

#[test]
fn counters_entry_encoding() {
    let e = BucketCounters {
        bucket_id: Uuid([1; 32]),
        node: NodeId([2; 32]),
        totals: Lww::raw(5, t(1, 2, 3)),
    };
    let enc = e.encode().expect("encode");
    assert!(enc.starts_with(b"Gcounters1"));
    assert_eq!(BucketCounters::decode(&enc).expect("decode"), e);
    // Totals written without some field (e.g. by a future or past format) still decode.
    #[derive(Serialize)]
    struct Partial {
        objects: i64,
    }
    let bytes = rmp_serde::to_vec_named(&Partial { objects: 4 }).expect("encode");
    let got: Totals = rmp_serde::from_slice(&bytes).expect("decode");
    assert_eq!(got, t(4, 0, 0));
}

#[test]
fn newer_totals_replace_older_ones() {
    let mut a = BucketCounters {
        bucket_id: Uuid([1; 32]),
        node: NodeId([2; 32]),
        totals: Lww::raw(5, t(10, 10, 0)),
    };
    let b = BucketCounters {
        totals: Lww::raw(6, t(2, 2, 0)),
        ..a.clone()
    };
    let mut b2 = b.clone();
    a.merge(&b);
    assert_eq!(*a.totals.get(), t(2, 2, 0));
    b2.merge(&a);
    assert_eq!(a, b2);
}

#[test]
fn bucket_total_is_the_maximum_over_current_holders() {
    let entry = |node: u8, o: i64, by: i64, u: i64| BucketCounters {
        bucket_id: Uuid([1; 32]),
        node: NodeId([node; 32]),
        totals: Lww::raw(1, t(o, by, u)),
    };
    let entries = vec![
        entry(1, 10, 1000, 0),
        entry(2, 9, 1200, 1),
        entry(3, 500, 500_000, 9), // a former holder
    ];
    let holders = [NodeId([1; 32]), NodeId([2; 32])];
    assert_eq!(
        combine(&entries, &holders),
        BucketUsage {
            objects: 10,
            bytes: 1200,
            unfinished_uploads: 1
        }
    );
    // Nobody current has published yet: every entry counts.
    assert_eq!(combine(&entries, &[NodeId([7; 32])]).objects, 500);
    assert_eq!(combine(&[], &holders), BucketUsage::default());
}

/// A database with the local counter trees and a stand-in for the object table's store.
struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
    objects: Tree,
    local: Arc<LocalCounters>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = SledEngine::open(&dir.path().join("db"), 1 << 22, 100).expect("sled");
        let db = Db::new(Arc::new(engine), false);
        let objects = db.open_tree("object_v1:table").expect("tree");
        let local = LocalCounters::open(&db).expect("counters");
        Self {
            _dir: dir,
            db,
            objects,
            local,
        }
    }

    /// Merges `o` into the store and runs the hook, as the table engine does.
    fn apply(&self, o: &Object) {
        let key = tree_key(&o.bucket_id.hash(), o.key.as_bytes());
        let r: TxResult<(), ()> = self.db.transaction(|tx| {
            let old = tx
                .get(&self.objects, &key)?
                .map(|v| Object::decode(&v).expect("decode"));
            let mut new = old.clone().unwrap_or_else(|| o.clone());
            new.merge(o);
            tx.insert(&self.objects, &key, &new.encode().expect("encode"))?;
            self.local.record(tx, old.as_ref(), Some(&new))?;
            Ok(())
        });
        r.expect("apply");
    }

    /// Removes an entry, as GC or offload does.
    fn remove(&self, bucket: u8, key: &str) {
        let k = tree_key(&Uuid([bucket; 32]).hash(), key.as_bytes());
        let r: TxResult<(), ()> = self.db.transaction(|tx| {
            let old = tx
                .remove(&self.objects, &k)?
                .map(|v| Object::decode(&v).expect("decode"));
            self.local.record(tx, old.as_ref(), None)?;
            Ok(())
        });
        r.expect("remove");
    }

    fn all_totals(&self) -> Vec<(Vec<u8>, Totals)> {
        self.local
            .totals
            .iter()
            .expect("iter")
            .map(|r| r.expect("item"))
            .map(|(k, v)| (k, Totals::from_bytes(&v)))
            .filter(|(_, v)| !v.is_zero())
            .collect()
    }
}

#[test]
fn hook_keeps_local_totals_and_marks_buckets_dirty() {
    let f = Fixture::new();
    f.apply(&obj(1, "a", vec![version(1, 1, inline(10))]));
    f.apply(&obj(1, "b", vec![version(1, 2, inline(20))]));
    f.apply(&obj(2, "a", vec![version(1, 3, uploading(true))]));
    assert_eq!(
        f.local.local_totals(&Uuid([1; 32])).expect("t"),
        t(2, 30, 0)
    );
    assert_eq!(f.local.local_totals(&Uuid([2; 32])).expect("t"), t(0, 0, 1));
    assert_eq!(f.local.dirty.len().expect("len"), 2);
    // Overwrite, delete, and complete the upload.
    f.apply(&obj(1, "a", vec![version(2, 4, inline(5))]));
    f.apply(&obj(
        1,
        "b",
        vec![version(
            2,
            5,
            VersionState::Complete(ObjectData::DeleteMarker),
        )],
    ));
    f.apply(&obj(
        2,
        "a",
        vec![
            version(1, 3, VersionState::Aborted),
            version(1, 6, inline(1000)),
        ],
    ));
    assert_eq!(f.local.local_totals(&Uuid([1; 32])).expect("t"), t(1, 5, 0));
    assert_eq!(
        f.local.local_totals(&Uuid([2; 32])).expect("t"),
        t(1, 1000, 0)
    );
    f.remove(2, "a");
    assert_eq!(f.local.local_totals(&Uuid([2; 32])).expect("t"), t(0, 0, 0));
}

#[test]
fn recount_rebuilds_lost_totals() {
    let f = Fixture::new();
    for i in 0..2500u64 {
        let size = i % 97;
        f.apply(&obj(
            (i % 3) as u8,
            &format!("k{i}"),
            vec![version(1, 1, inline(size))],
        ));
    }
    let expected = f.all_totals();
    assert_eq!(expected.len(), 3);
    assert!(!f.local.is_initialized().expect("state"));
    // Lose the totals (e.g. an upgrade from a release without them), and some garbage.
    f.local.totals.clear().expect("clear");
    f.local
        .totals
        .insert(&Uuid([9; 32]).0, &t(5, 5, 5).to_bytes())
        .expect("insert");
    let report = f.local.recount_blocking(&f.objects).expect("recount");
    assert_eq!(report.entries, 2500);
    assert_eq!(f.all_totals(), expected);
    assert!(f.local.is_initialized().expect("state"));
    assert!(f.local.state.get(CURSOR).expect("get").is_none());
    assert_eq!(f.local.recount.len().expect("len"), 0);
}

#[test]
fn recount_is_exact_while_objects_change() {
    let f = Arc::new(Fixture::new());
    for i in 0..3000u64 {
        f.apply(&obj(
            (i % 4) as u8,
            &format!("k{i:05}"),
            vec![version(1, 1, inline(i))],
        ));
    }
    f.local.totals.clear().expect("lose the totals");
    let writer = {
        let f = f.clone();
        std::thread::spawn(move || {
            // Creations, overwrites, deletions and removals spread over the key space.
            for i in 0..1500u64 {
                let b = (i % 4) as u8;
                match i % 4 {
                    0 => f.apply(&obj(
                        b,
                        &format!("new{i:05}"),
                        vec![version(2, 2, inline(3))],
                    )),
                    1 => f.apply(&obj(
                        b,
                        &format!("k{:05}", i * 2),
                        vec![version(3, 3, inline(1))],
                    )),
                    2 => f.apply(&obj(
                        b,
                        &format!("k{:05}", i * 2),
                        vec![version(
                            4,
                            4,
                            VersionState::Complete(ObjectData::DeleteMarker),
                        )],
                    )),
                    _ => f.remove(b, &format!("k{:05}", i * 2 + 1)),
                }
            }
        })
    };
    // Recounts while the writer runs (each pass may be retried under the writer's creations).
    let mut passes = 0;
    while !writer.is_finished() || passes == 0 {
        f.local.recount_blocking(&f.objects).expect("recount");
        passes += 1;
    }
    writer.join().expect("writer");
    let live = f.all_totals();
    f.local.recount_blocking(&f.objects).expect("quiet recount");
    assert_eq!(f.all_totals(), live, "after {passes} concurrent pass(es)");
}
