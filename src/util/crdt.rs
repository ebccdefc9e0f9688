//! CRDT primitives. Every piece of replicated metadata is built from these, so that two replicas
//! which have seen the same updates hold the same value whatever the order in which they arrived.
//!
//! Laws (checked by the property tests below): `merge` is commutative, associative and idempotent.
//! Ties between last-writer-wins values with equal timestamps are broken deterministically by
//! comparing the values' encodings, so merging never depends on which side is `self`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A state-based CRDT: `merge` folds another replica's state into this one.
pub trait Crdt {
    fn merge(&mut self, other: &Self);
}

/// Orders two values deterministically when their timestamps tie: by their msgpack encodings.
fn encoding_greater<T: Serialize>(a: &T, b: &T) -> bool {
    let ea = rmp_serde::to_vec(a).unwrap_or_default();
    let eb = rmp_serde::to_vec(b).unwrap_or_default();
    ea > eb
}

/// A last-writer-wins register: the value with the highest timestamp wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww<T> {
    ts: u64,
    value: T,
}

impl<T: Clone + Serialize> Lww<T> {
    /// A register holding `value`, written at timestamp `ts`.
    pub fn raw(ts: u64, value: T) -> Self {
        Self { ts, value }
    }
    /// A register holding `value`, written now.
    pub fn new(value: T) -> Self {
        Self::raw(super::time::now_msec(), value)
    }
    /// Overwrites the value with a timestamp strictly greater than the current one.
    pub fn update(&mut self, value: T) {
        self.ts = std::cmp::max(self.ts + 1, super::time::now_msec());
        self.value = value;
    }
    pub fn get(&self) -> &T {
        &self.value
    }
    pub fn timestamp(&self) -> u64 {
        self.ts
    }
}

impl<T: Clone + Serialize> Crdt for Lww<T> {
    fn merge(&mut self, other: &Self) {
        if other.ts > self.ts
            || (other.ts == self.ts && encoding_greater(&other.value, &self.value))
        {
            *self = other.clone();
        }
    }
}

/// A map whose every key is an independent last-writer-wins register.
/// Removal is expressed by the value type (e.g. `Option<V>` set to `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwMap<K: Ord, V> {
    entries: BTreeMap<K, Lww<V>>,
}

impl<K: Ord, V> Default for LwwMap<K, V> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V: Clone + Serialize> LwwMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `key` to `value` with a timestamp newer than any it had.
    pub fn update_in_place(&mut self, key: K, value: V) {
        match self.entries.get_mut(&key) {
            Some(reg) => reg.update(value),
            None => {
                self.entries.insert(key, Lww::new(value));
            }
        }
    }
    /// Inserts a register with an explicit timestamp (merged with any existing one).
    pub fn insert_raw(&mut self, key: K, ts: u64, value: V) {
        let reg = Lww::raw(ts, value);
        match self.entries.get_mut(&key) {
            Some(existing) => existing.merge(&reg),
            None => {
                self.entries.insert(key, reg);
            }
        }
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|r| r.get())
    }
    pub fn get_timestamp(&self, key: &K) -> Option<u64> {
        self.entries.get(key).map(|r| r.timestamp())
    }
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, r)| (k, r.get()))
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl<K: Ord + Clone, V: Clone + Serialize> Crdt for LwwMap<K, V> {
    fn merge(&mut self, other: &Self) {
        for (k, reg) in other.entries.iter() {
            match self.entries.get_mut(k) {
                Some(mine) => mine.merge(reg),
                None => {
                    self.entries.insert(k.clone(), reg.clone());
                }
            }
        }
    }
}

/// A boolean that can only go from false to true (e.g. "deleted").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bool(bool);

impl Bool {
    pub fn new(b: bool) -> Self {
        Self(b)
    }
    pub fn set(&mut self) {
        self.0 = true;
    }
    pub fn get(&self) -> bool {
        self.0
    }
}

impl Crdt for Bool {
    fn merge(&mut self, other: &Self) {
        self.0 = self.0 || other.0;
    }
}

/// A value that can be deleted for good: deletion wins over any present value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deletable<T> {
    Present(T),
    Deleted,
}

impl<T> Deletable<T> {
    pub fn as_option(&self) -> Option<&T> {
        match self {
            Self::Present(v) => Some(v),
            Self::Deleted => None,
        }
    }
    pub fn is_deleted(&self) -> bool {
        matches!(self, Self::Deleted)
    }
}

impl<T: Crdt + Clone> Crdt for Deletable<T> {
    fn merge(&mut self, other: &Self) {
        match (&mut *self, other) {
            (Self::Deleted, _) => (),
            (_, Self::Deleted) => *self = Self::Deleted,
            (Self::Present(a), Self::Present(b)) => a.merge(b),
        }
    }
}

/// A map whose values are CRDTs merged key by key. Keys are never removed (use a value that
/// can express removal, such as [`Deletable`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrdtMap<K: Ord, V> {
    entries: BTreeMap<K, V>,
}

impl<K: Ord, V> Default for CrdtMap<K, V> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V: Crdt + Clone> CrdtMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }
    /// Merges `value` into the entry of `key`.
    pub fn put(&mut self, key: K, value: V) {
        match self.entries.get_mut(&key) {
            Some(mine) => mine.merge(&value),
            None => {
                self.entries.insert(key, value);
            }
        }
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Ord + Clone, V: Crdt + Clone> Crdt for CrdtMap<K, V> {
    fn merge(&mut self, other: &Self) {
        for (k, v) in other.entries.iter() {
            self.put(k.clone(), v.clone());
        }
    }
}

/// Merging a counter-like maximum: the larger value wins.
impl Crdt for u64 {
    fn merge(&mut self, other: &Self) {
        *self = std::cmp::max(*self, *other);
    }
}

/// Property tests of the CRDT laws for every primitive, on small value domains so that
/// timestamp ties and key collisions happen often.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn merged<T: Crdt + Clone>(a: &T, b: &T) -> T {
        let mut x = a.clone();
        x.merge(b);
        x
    }

    fn check_laws<T: Crdt + Clone + PartialEq + std::fmt::Debug>(a: T, b: T, c: T) {
        assert_eq!(merged(&a, &b), merged(&b, &a), "commutativity");
        assert_eq!(
            merged(&merged(&a, &b), &c),
            merged(&a, &merged(&b, &c)),
            "associativity"
        );
        assert_eq!(merged(&a, &a), a, "idempotence");
        let ab = merged(&a, &b);
        assert_eq!(
            merged(&ab, &b),
            ab,
            "re-merging a merged input changes nothing"
        );
    }

    fn lww() -> impl Strategy<Value = Lww<u8>> {
        (0u64..4, 0u8..4).prop_map(|(ts, v)| Lww::raw(ts, v))
    }
    fn lww_map() -> impl Strategy<Value = LwwMap<u8, Option<u8>>> {
        proptest::collection::vec((0u8..4, 0u64..4, proptest::option::of(0u8..3)), 0..6).prop_map(
            |items| {
                let mut m = LwwMap::new();
                for (k, ts, v) in items {
                    m.insert_raw(k, ts, v);
                }
                m
            },
        )
    }
    fn deletable() -> impl Strategy<Value = Deletable<Lww<u8>>> {
        prop_oneof![lww().prop_map(Deletable::Present), Just(Deletable::Deleted)]
    }
    fn crdt_map() -> impl Strategy<Value = CrdtMap<u8, Deletable<Lww<u8>>>> {
        proptest::collection::vec((0u8..4, deletable()), 0..6).prop_map(|items| {
            let mut m = CrdtMap::new();
            for (k, v) in items {
                m.put(k, v);
            }
            m
        })
    }

    proptest! {
        #[test]
        fn lww_laws(a in lww(), b in lww(), c in lww()) { check_laws(a, b, c) }
        #[test]
        fn lww_map_laws(a in lww_map(), b in lww_map(), c in lww_map()) { check_laws(a, b, c) }
        #[test]
        fn bool_laws(a: bool, b: bool, c: bool) { check_laws(Bool::new(a), Bool::new(b), Bool::new(c)) }
        #[test]
        fn deletable_laws(a in deletable(), b in deletable(), c in deletable()) { check_laws(a, b, c) }
        #[test]
        fn crdt_map_laws(a in crdt_map(), b in crdt_map(), c in crdt_map()) { check_laws(a, b, c) }
        #[test]
        fn max_laws(a: u64, b: u64, c: u64) { check_laws(a, b, c) }
    }

    #[test]
    fn lww_update_always_wins_over_old_value() {
        let mut a = Lww::raw(u64::MAX / 2, 1u8);
        let old = a.clone();
        a.update(0);
        let mut merged_old = old.clone();
        merged_old.merge(&a);
        assert_eq!(*merged_old.get(), 0);
    }

    #[test]
    fn deleted_wins() {
        let mut a = Deletable::Present(Lww::raw(100, 5u8));
        a.merge(&Deletable::Deleted);
        assert!(a.is_deleted());
    }
}
