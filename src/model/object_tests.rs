//! CRDT laws of the object entry (proptest), and its pruning and tombstone rules.

use super::*;
use proptest::prelude::*;

fn meta() -> ObjectMeta {
    ObjectMeta {
        headers: ObjectHeaders::default(),
        size: 1,
        etag: "e".into(),
        checksum: None,
        encryption: None,
    }
}

fn state() -> impl Strategy<Value = VersionState> {
    prop_oneof![
        Just(VersionState::Uploading {
            multipart: false,
            headers: ObjectHeaders::default(),
            encryption: None,
        }),
        Just(VersionState::Complete(ObjectData::DeleteMarker)),
        Just(VersionState::Complete(ObjectData::Inline(meta(), vec![1]))),
        Just(VersionState::Aborted),
    ]
}

fn object() -> impl Strategy<Value = Object> {
    proptest::collection::vec((0u64..4, 0u8..3, state()), 0..5).prop_map(|vs| {
        let mut o = Object::new(Uuid([0; 32]), "k".into(), vec![]);
        for (ts, id, st) in vs {
            let v = ObjectVersion {
                uuid: Uuid([id; 32]),
                timestamp: ts,
                state: st,
            };
            o.merge(&Object::new(Uuid([0; 32]), "k".into(), vec![v]));
        }
        o
    })
}

fn merged(a: &Object, b: &Object) -> Object {
    let mut x = a.clone();
    x.merge(b);
    x
}

proptest! {
    #[test]
    fn object_merge_laws(a in object(), b in object(), c in object()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
    }
}

#[test]
fn newer_complete_version_supersedes_older_ones() {
    let v = |id: u8, ts: u64, st: VersionState| ObjectVersion {
        uuid: Uuid([id; 32]),
        timestamp: ts,
        state: st,
    };
    let mut o = Object::new(
        Uuid([0; 32]),
        "k".into(),
        vec![v(
            1,
            1,
            VersionState::Complete(ObjectData::Inline(meta(), vec![1])),
        )],
    );
    o.merge(&Object::new(
        Uuid([0; 32]),
        "k".into(),
        vec![v(2, 2, VersionState::Complete(ObjectData::DeleteMarker))],
    ));
    assert_eq!(o.versions().len(), 1);
    assert!(o.is_tombstone());
    assert!(o.last_data().is_none());
}

/// The object entry as written before SSE-C (no `encryption` fields), to check old entries
/// still decode.
mod before_ssec {
    use super::ObjectHeaders;
    use crate::util::ids::{Hash, Uuid};
    use serde::Serialize;

    #[derive(Serialize)]
    pub struct ObjectMeta {
        pub headers: ObjectHeaders,
        pub size: u64,
        pub etag: String,
        pub checksum: Option<(String, String)>,
    }
    #[derive(Serialize)]
    pub enum ObjectData {
        #[allow(dead_code)]
        DeleteMarker,
        Inline(ObjectMeta, #[serde(with = "serde_bytes")] Vec<u8>),
        FirstBlock(ObjectMeta, Hash),
    }
    #[derive(Serialize)]
    pub enum VersionState {
        Uploading {
            multipart: bool,
            headers: ObjectHeaders,
        },
        Complete(ObjectData),
    }
    #[derive(Serialize)]
    pub struct ObjectVersion {
        pub uuid: Uuid,
        pub timestamp: u64,
        pub state: VersionState,
    }
    #[derive(Serialize)]
    pub struct Object {
        pub bucket_id: Uuid,
        pub key: String,
        pub versions: Vec<ObjectVersion>,
    }
}

#[test]
fn entries_written_before_ssec_still_decode() {
    use before_ssec as old;
    let old_meta = || old::ObjectMeta {
        headers: ObjectHeaders::default(),
        size: 1,
        etag: "e".into(),
        checksum: Some(("CRC32".into(), "AAAAAA==".into())),
    };
    let old = old::Object {
        bucket_id: Uuid([0; 32]),
        key: "k".into(),
        versions: vec![
            old::ObjectVersion {
                uuid: Uuid([1; 32]),
                timestamp: 1,
                state: old::VersionState::Complete(old::ObjectData::Inline(old_meta(), vec![7])),
            },
            old::ObjectVersion {
                uuid: Uuid([2; 32]),
                timestamp: 2,
                state: old::VersionState::Complete(old::ObjectData::FirstBlock(
                    old_meta(),
                    Hash([9; 32]),
                )),
            },
            old::ObjectVersion {
                uuid: Uuid([3; 32]),
                timestamp: 3,
                state: old::VersionState::Uploading {
                    multipart: true,
                    headers: ObjectHeaders::default(),
                },
            },
        ],
    };
    let mut bytes = Object::VERSION_MARKER.to_vec();
    bytes.extend(rmp_serde::to_vec_named(&old).expect("encode"));
    let decoded = Object::decode(&bytes).expect("an entry written before SSE-C decodes");
    let v = decoded.versions();
    assert_eq!(v.len(), 3);
    let expected = ObjectMeta {
        checksum: Some(("CRC32".into(), "AAAAAA==".into())),
        ..meta()
    };
    assert_eq!(
        v[0].state,
        VersionState::Complete(ObjectData::Inline(expected.clone(), vec![7]))
    );
    assert_eq!(
        v[1].state,
        VersionState::Complete(ObjectData::FirstBlock(expected, Hash([9; 32])))
    );
    assert_eq!(
        v[2].state,
        VersionState::Uploading {
            multipart: true,
            headers: ObjectHeaders::default(),
            encryption: None,
        }
    );
    // And the new field round-trips.
    let mut o = decoded.clone();
    o.merge(&Object::new(
        Uuid([0; 32]),
        "k".into(),
        vec![ObjectVersion {
            uuid: Uuid([4; 32]),
            timestamp: 4,
            state: VersionState::Complete(ObjectData::Inline(
                ObjectMeta {
                    encryption: Some(ObjectEncryption::SseC {
                        key_md5: "bWQ1".into(),
                    }),
                    ..meta()
                },
                vec![1],
            )),
        }],
    ));
    let back = Object::decode(&o.encode().expect("encode")).expect("decode");
    assert_eq!(back, o);
}
