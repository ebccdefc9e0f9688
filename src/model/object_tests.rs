//! CRDT laws of the object entry (proptest), and its pruning and tombstone rules.

use super::*;
use proptest::prelude::*;

fn meta() -> ObjectMeta {
    ObjectMeta {
        headers: ObjectHeaders::default(),
        size: 1,
        etag: "e".into(),
        checksum: None,
    }
}

fn state() -> impl Strategy<Value = VersionState> {
    prop_oneof![
        Just(VersionState::Uploading {
            multipart: false,
            headers: ObjectHeaders::default()
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
