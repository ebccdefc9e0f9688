//! Local reference counts of blocks (DESIGN.md §8), in tree `block_local_rc`: block hash →
//! `count: u64 BE ‖ deletable_after: u64 BE` (ms since the epoch; 0 while referenced). The
//! `block_ref` table's hook changes them inside its own transaction. When a count drops to 0
//! the block becomes deletable only after a delay, so an upload that re-references it meanwhile
//! cannot lose it; every change schedules a resync check of the block. Writing an unreferenced
//! block ([`touch`]: an upload stores its blocks before recording their references) starts the
//! delay again. An unreferenced block without a date (`deletable_after` 0) is never deletable:
//! it must be dated first.

use crate::db::{Transaction, Tree, TxOpResult};
use crate::util::ids::Hash;
use crate::util::time::now_msec;

/// A block's reference count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RcEntry {
    pub count: u64,
    /// When an unreferenced block may be deleted (0 while referenced, or not dated yet).
    pub deletable_after: u64,
}

impl RcEntry {
    pub fn decode(v: &[u8]) -> Self {
        if v.len() != 16 {
            return Self::default();
        }
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&v[..8]);
        b.copy_from_slice(&v[8..]);
        Self {
            count: u64::from_be_bytes(a),
            deletable_after: u64::from_be_bytes(b),
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.count.to_be_bytes().to_vec();
        v.extend_from_slice(&self.deletable_after.to_be_bytes());
        v
    }
    /// Whether the block may be deleted now: unreferenced, and its delay is past.
    pub fn is_deletable(&self, now: u64) -> bool {
        self.count == 0 && self.deletable_after > 0 && now >= self.deletable_after
    }
}

/// The key of a resync queue entry: when ‖ hash.
pub fn resync_key(when: u64, hash: &Hash) -> Vec<u8> {
    let mut k = when.to_be_bytes().to_vec();
    k.extend_from_slice(&hash.0);
    k
}

/// Increments a block's count and schedules a check after `check_delay_ms`.
pub fn incref(
    tx: &mut Transaction<'_>,
    rc: &Tree,
    queue: &Tree,
    hash: &Hash,
    check_delay_ms: u64,
) -> TxOpResult<()> {
    let mut e = tx
        .get(rc, &hash.0)?
        .map(|v| RcEntry::decode(&v))
        .unwrap_or_default();
    e.count += 1;
    e.deletable_after = 0;
    tx.insert(rc, &hash.0, &e.encode())?;
    if e.count == 1 {
        tx.insert(queue, &resync_key(now_msec() + check_delay_ms, hash), &[])?;
    }
    Ok(())
}

/// Decrements a block's count; at zero, the block becomes deletable after `gc_delay_ms`.
pub fn decref(
    tx: &mut Transaction<'_>,
    rc: &Tree,
    queue: &Tree,
    hash: &Hash,
    gc_delay_ms: u64,
) -> TxOpResult<()> {
    let mut e = tx
        .get(rc, &hash.0)?
        .map(|v| RcEntry::decode(&v))
        .unwrap_or_default();
    e.count = e.count.saturating_sub(1);
    if e.count == 0 {
        e.deletable_after = now_msec() + gc_delay_ms;
        tx.insert(queue, &resync_key(e.deletable_after + 1, hash), &[])?;
    }
    tx.insert(rc, &hash.0, &e.encode())?;
    Ok(())
}

/// Called when an unreferenced (or not yet referenced) block is written: it becomes deletable
/// no sooner than `gc_delay_ms` from now, and a check is scheduled then. No-op while referenced.
pub fn touch(
    tx: &mut Transaction<'_>,
    rc: &Tree,
    queue: &Tree,
    hash: &Hash,
    gc_delay_ms: u64,
) -> TxOpResult<u64> {
    let mut e = tx
        .get(rc, &hash.0)?
        .map(|v| RcEntry::decode(&v))
        .unwrap_or_default();
    if e.count > 0 {
        return Ok(0);
    }
    let until = now_msec() + gc_delay_ms;
    if e.deletable_after < until {
        e.deletable_after = until;
        tx.insert(rc, &hash.0, &e.encode())?;
        tx.insert(queue, &resync_key(until + 1, hash), &[])?;
    }
    Ok(e.deletable_after)
}

/// Removes the entry of a block if it is deletable at `now`; returns whether it did. The caller
/// then deletes the block's file.
pub fn remove_if_deletable(
    tx: &mut Transaction<'_>,
    rc: &Tree,
    hash: &Hash,
    now: u64,
) -> TxOpResult<bool> {
    let deletable = tx
        .get(rc, &hash.0)?
        .is_some_and(|v| RcEntry::decode(&v).is_deletable(now));
    if deletable {
        tx.remove(rc, &hash.0)?;
    }
    Ok(deletable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc_encoding_and_deletability() {
        let e = RcEntry {
            count: 0,
            deletable_after: 1000,
        };
        assert_eq!(RcEntry::decode(&e.encode()), e);
        assert!(!e.is_deletable(999));
        assert!(e.is_deletable(1000));
        assert!(!RcEntry {
            count: 1,
            deletable_after: 0
        }
        .is_deletable(u64::MAX));
        assert_eq!(RcEntry::decode(b"junk"), RcEntry::default());
        assert!(
            !RcEntry::default().is_deletable(u64::MAX),
            "an undated entry is not deletable"
        );
    }
}
