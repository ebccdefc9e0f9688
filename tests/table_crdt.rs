//! CRDT laws (commutativity, associativity, idempotence) for the entries the table engine merges:
//! the test tables' entries, a composition of the `util::crdt` primitives shaped like the model
//! tables' entries, the model tables' own entries (bucket, bucket alias, key, version, block
//! reference, counters; the object entry has its own in `model::object_tests`), and the engine's
//! own byte-level merge (`ErasedSchema::merge`), which must give
//! the same encoding whatever order replicas receive updates in, and report "no change" when an
//! entry is merged into itself (that is what stops read repair and anti-entropy ping-pong).

mod common;

use std::sync::Arc;

use common::inproc::{KvEntry, KvEntry2, KvSchema2};
use garage::model::block_ref::BlockRef;
use garage::model::bucket::{Bucket, BucketKeyPerm, BucketParams, BucketQuotas};
use garage::model::bucket_alias::BucketAlias;
use garage::model::counters::{BucketCounters, Totals};
use garage::model::key::{Key, KeyParams};
use garage::model::version::{PartEtag, Version, VersionBlock};
use garage::table::schema::{ErasedSchema, SchemaAdapter};
use garage::util::crdt::{Bool, Crdt, CrdtMap, Deletable, Lww, LwwMap};
use garage::util::encode::Migrate;
use garage::util::ids::{Hash, NodeId, Uuid};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn merged<T: Crdt + Clone>(a: &T, b: &T) -> T {
    let mut x = a.clone();
    x.merge(b);
    x
}

fn check_laws<T: Crdt + Clone + PartialEq + std::fmt::Debug>(a: &T, b: &T, c: &T) {
    assert_eq!(merged(a, b), merged(b, a), "commutativity");
    assert_eq!(
        merged(&merged(a, b), c),
        merged(a, &merged(b, c)),
        "associativity"
    );
    assert_eq!(merged(a, a), *a, "idempotence");
}

/// Small domains, so that timestamp ties (broken by encoding) are frequent.
fn kv_entry() -> impl Strategy<Value = KvEntry> {
    (
        0u64..4,
        proptest::option::of(prop_oneof!["a", "b", "ab", ""]),
    )
        .prop_map(|(ts, v)| {
            let mut e = KvEntry::new("pk", "sk", None);
            e.value = Lww::raw(ts, v);
            e
        })
}

/// An entry composed like the model tables' ones (object versions keyed by id that can be
/// deleted for good, last-writer-wins parameters, a deleted flag, a monotonic size).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Composite {
    versions: CrdtMap<u8, Deletable<Lww<u8>>>,
    params: LwwMap<u8, Option<u8>>,
    deleted: Bool,
    size: u64,
    state: Lww<Option<u8>>,
}

impl Crdt for Composite {
    fn merge(&mut self, other: &Self) {
        self.versions.merge(&other.versions);
        self.params.merge(&other.params);
        self.deleted.merge(&other.deleted);
        self.size.merge(&other.size);
        self.state.merge(&other.state);
    }
}

fn composite() -> impl Strategy<Value = Composite> {
    let version = prop_oneof![
        (0u64..3, 0u8..3).prop_map(|(t, v)| Deletable::Present(Lww::raw(t, v))),
        Just(Deletable::Deleted),
    ];
    (
        proptest::collection::vec((0u8..3, version), 0..4),
        proptest::collection::vec((0u8..3, 0u64..3, proptest::option::of(0u8..2)), 0..4),
        any::<bool>(),
        0u64..4,
        (0u64..3, proptest::option::of(0u8..2)),
    )
        .prop_map(|(vs, ps, deleted, size, (st, sv))| {
            let mut versions = CrdtMap::new();
            for (k, v) in vs {
                versions.put(k, v);
            }
            let mut params = LwwMap::new();
            for (k, t, v) in ps {
                params.insert_raw(k, t, v);
            }
            Composite {
                versions,
                params,
                deleted: Bool::new(deleted),
                size,
                state: Lww::raw(st, sv),
            }
        })
}

/// Small domains for the model entries, so that equal keys and timestamp ties are frequent.
fn ts() -> std::ops::Range<u64> {
    0..3
}

fn uuid(b: u8) -> Uuid {
    Uuid([b; 32])
}

fn perm() -> impl Strategy<Value = BucketKeyPerm> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(r, w, o)| BucketKeyPerm {
        allow_read: r,
        allow_write: w,
        allow_owner: o,
    })
}

/// Versions of one object version id: deleted flag, block list, part ETags, checksum spec. A
/// deleted version carries no block list nor ETags (`Version::deleted` is the only way the code
/// makes one, and `merge` clears them), so none is generated.
fn version() -> impl Strategy<Value = Version> {
    (
        any::<bool>(),
        proptest::collection::vec(((0u64..2, 0u64..2), 0u8..3, 0u64..3), 0..4),
        proptest::collection::vec((0u64..3, 0u8..3, ts()), 0..3),
        proptest::option::of(prop_oneof![
            Just("CRC32 COMPOSITE".to_string()),
            Just("SHA256 COMPOSITE".to_string())
        ]),
    )
        .prop_map(|(deleted, blocks, etags, spec)| {
            let mut v = Version::new(uuid(1), uuid(2), "key".into());
            for (pos, h, size) in blocks {
                v.blocks.put(
                    pos,
                    VersionBlock {
                        hash: Hash([h; 32]),
                        size,
                    },
                );
            }
            for (part, e, t) in etags {
                v.part_etags.put(part, PartEtag(format!("etag{e} {t} 10")));
            }
            v.checksum_spec = spec;
            if deleted {
                v.deleted.set();
                v.blocks = CrdtMap::new();
                v.part_etags = CrdtMap::new();
            }
            v
        })
}

fn block_ref() -> impl Strategy<Value = BlockRef> {
    any::<bool>().prop_map(|d| {
        if d {
            BlockRef::deleted(Hash([3; 32]), uuid(1))
        } else {
            BlockRef::new(Hash([3; 32]), uuid(1))
        }
    })
}

fn bucket_alias() -> impl Strategy<Value = BucketAlias> {
    (ts(), proptest::option::of(0u8..3)).prop_map(|(t, b)| {
        let mut a = BucketAlias::new("name", None);
        a.state = Lww::raw(t, b.map(uuid));
        a
    })
}

fn counters() -> impl Strategy<Value = BucketCounters> {
    (ts(), -2i64..3, 0i64..3, 0i64..2).prop_map(|(t, objects, bytes, unfinished_uploads)| {
        BucketCounters {
            bucket_id: uuid(1),
            node: NodeId([9; 32]),
            totals: Lww::raw(
                t,
                Totals {
                    objects,
                    bytes,
                    unfinished_uploads,
                },
            ),
        }
    })
}

fn bucket() -> impl Strategy<Value = Bucket> {
    let params = (
        0u64..3,
        proptest::collection::vec((0u8..3, ts(), perm()), 0..3),
        proptest::collection::vec((0u8..2, ts(), any::<bool>()), 0..3),
        (
            ts(),
            proptest::option::of(0u64..3),
            proptest::option::of(0u64..3),
        ),
    )
        .prop_map(|(created, keys, aliases, (qt, max_size, max_objects))| {
            let mut p = BucketParams::new(created);
            for (k, t, perm) in keys {
                p.authorized_keys.insert_raw(format!("GK{k}"), t, perm);
            }
            for (a, t, on) in aliases {
                p.aliases.insert_raw(format!("alias{a}"), t, on);
            }
            p.quotas = Lww::raw(
                qt,
                BucketQuotas {
                    max_size,
                    max_objects,
                },
            );
            p
        });
    prop_oneof![
        params.prop_map(|p| Bucket {
            id: uuid(1),
            state: Deletable::Present(p),
        }),
        Just(Bucket {
            id: uuid(1),
            state: Deletable::Deleted,
        }),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    let params = (
        0u8..2,
        (ts(), 0u8..2),
        (ts(), any::<bool>()),
        proptest::collection::vec((0u8..3, ts(), perm()), 0..3),
        proptest::collection::vec((0u8..2, ts(), proptest::option::of(0u8..2)), 0..3),
    )
        .prop_map(|(secret, (nt, name), (ct, create), buckets, aliases)| {
            let mut p = KeyParams {
                secret_key: format!("secret{secret}"),
                name: Lww::raw(nt, format!("name{name}")),
                allow_create_bucket: Lww::raw(ct, create),
                authorized_buckets: LwwMap::new(),
                local_aliases: LwwMap::new(),
            };
            for (b, t, perm) in buckets {
                p.authorized_buckets.insert_raw(uuid(b), t, perm);
            }
            for (a, t, b) in aliases {
                p.local_aliases.insert_raw(format!("a{a}"), t, b.map(uuid));
            }
            p
        });
    prop_oneof![
        params.prop_map(|p| Key {
            key_id: "GK1".into(),
            state: Deletable::Present(p),
        }),
        Just(Key {
            key_id: "GK1".into(),
            state: Deletable::Deleted,
        }),
    ]
}

fn adapter() -> SchemaAdapter<KvSchema2> {
    SchemaAdapter(Arc::new(KvSchema2))
}

/// Folds encoded entries into a stored value the way a replica does, one update at a time.
fn apply_all(schema: &dyn ErasedSchema, updates: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut stored: Option<Vec<u8>> = None;
    for u in updates {
        if let Some(new) = schema.merge(stored.as_deref(), u).expect("merge") {
            stored = Some(new);
        }
    }
    stored
}

proptest! {
    #[test]
    fn kv_entry_laws(a in kv_entry(), b in kv_entry(), c in kv_entry()) {
        check_laws(&a, &b, &c);
        check_laws(&KvEntry2(a), &KvEntry2(b), &KvEntry2(c));
    }

    #[test]
    fn composite_laws(a in composite(), b in composite(), c in composite()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn version_laws(a in version(), b in version(), c in version()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn block_ref_laws(a in block_ref(), b in block_ref(), c in block_ref()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn bucket_alias_laws(a in bucket_alias(), b in bucket_alias(), c in bucket_alias()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn counters_laws(a in counters(), b in counters(), c in counters()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn bucket_laws(a in bucket(), b in bucket(), c in bucket()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn key_laws(a in key(), b in key(), c in key()) {
        check_laws(&a, &b, &c);
    }

    #[test]
    fn engine_merge_is_order_independent(
        entries in proptest::collection::vec(kv_entry(), 1..6),
        seed in any::<u64>(),
    ) {
        let schema = adapter();
        let encoded: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| KvEntry2(e.clone()).encode().expect("encode"))
            .collect();
        let forward = apply_all(&schema, &encoded).expect("a value");
        let mut shuffled = encoded.clone();
        shuffled.reverse();
        if !shuffled.is_empty() {
            let n = shuffled.len();
            shuffled.rotate_left((seed as usize) % n);
        }
        // Duplicated deliveries change nothing either.
        shuffled.extend(encoded.iter().take(2).cloned());
        let other = apply_all(&schema, &shuffled).expect("a value");
        prop_assert_eq!(&forward, &other);
        // The result is the typed merge of everything, encoded.
        let mut typed = KvEntry2(entries[0].clone());
        for e in &entries[1..] {
            typed.merge(&KvEntry2(e.clone()));
        }
        prop_assert_eq!(&forward, &typed.encode().expect("encode"));
        // Merging the stored value, or any input, into it again reports no change.
        prop_assert_eq!(schema.merge(Some(&forward), &forward).expect("merge"), None);
        for e in &encoded {
            prop_assert_eq!(schema.merge(Some(&forward), e).expect("merge"), None);
        }
        prop_assert_eq!(
            schema.is_tombstone(&forward),
            typed.0.value.get().is_none()
        );
    }
}
