//! Sharing of the 65536 placement slots among data directories.
//!
//! Each directory gets a number of slots proportional to its weight (its capacity; 0 for a
//! read-only directory), rounded by largest remainder so that the shares add up to [`SLOTS`].
//! When weights change, a slot keeps its previous directory whenever that directory is still
//! under its new share, so only the excess moves. Free slots go, in slot order, to the directory
//! furthest below its share (relative to the share), which interleaves directories through the
//! hash space. Everything is deterministic: the same inputs give the same assignment.

/// Number of placement slots: one per `(hash[0], hash[1])` pair.
pub const SLOTS: usize = 1 << 16;

/// Assigns every slot to a directory in proportion to `weights` (0 = never primary), keeping the
/// previous owner (`previous[slot]`, an index into `weights`) of as many slots as the new shares
/// allow. Deterministic. At least one weight must be positive.
pub fn assign_slots(previous: &[Option<usize>], weights: &[u64]) -> Vec<u8> {
    let targets = shares(weights);
    let mut counts = vec![0usize; weights.len()];
    let mut owner: Vec<Option<usize>> = vec![None; SLOTS];
    for (slot, prev) in previous.iter().enumerate().take(SLOTS) {
        if let Some(d) = *prev {
            if d < targets.len() && counts[d] < targets[d] {
                owner[slot] = Some(d);
                counts[d] += 1;
            }
        }
    }
    for slot in owner.iter_mut().filter(|o| o.is_none()) {
        // The directory furthest from its share, as a fraction of that share: this interleaves
        // directories through the hash space instead of giving each one a contiguous range.
        let mut best: Option<usize> = None;
        for d in (0..targets.len()).filter(|d| counts[*d] < targets[*d]) {
            let better = best.is_none_or(|b| {
                let (need_d, need_b) = (targets[d] - counts[d], targets[b] - counts[b]);
                need_d * targets[b] > need_b * targets[d]
            });
            if better {
                best = Some(d);
            }
        }
        // The shares add up to SLOTS, so some directory is always below its share.
        if let Some(d) = best {
            *slot = Some(d);
            counts[d] += 1;
        }
    }
    owner
        .into_iter()
        .map(|o| o.and_then(|d| u8::try_from(d).ok()).unwrap_or(0))
        .collect()
}

/// Number of slots of each directory: proportional to its weight, rounded by largest remainder
/// (ties to the lower index); the shares add up to [`SLOTS`].
fn shares(weights: &[u64]) -> Vec<usize> {
    let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let slots = SLOTS as u128;
    let exact: Vec<(u128, u128)> = weights
        .iter()
        .map(|w| {
            let x = slots * u128::from(*w);
            (x / total, x % total)
        })
        .collect();
    let mut shares: Vec<usize> = exact.iter().map(|(q, _)| *q as usize).collect();
    let left = SLOTS - shares.iter().sum::<usize>();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for d in by_remainder.into_iter().take(left) {
        shares[d] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_proportional_and_complete() {
        assert_eq!(shares(&[1, 3]), vec![16384, 49152]);
        assert_eq!(shares(&[1, 0, 1]), vec![32768, 0, 32768]);
        let s = shares(&[1, 1, 1]);
        assert_eq!(s.iter().sum::<usize>(), SLOTS);
        assert_eq!(s, vec![21846, 21845, 21845]);
        let big = shares(&[u64::MAX, u64::MAX / 2]);
        assert_eq!(big.iter().sum::<usize>(), SLOTS);
    }

    #[test]
    fn fresh_assignment_interleaves() {
        let p = assign_slots(&vec![None; SLOTS], &[1, 3]);
        assert_eq!(p.iter().filter(|d| **d == 0).count(), 16384);
        // Every first-byte prefix gets about a quarter of its 256 leaves on directory 0.
        for prefix in p.chunks(256) {
            let n0 = prefix.iter().filter(|d| **d == 0).count();
            assert!((60..=68).contains(&n0), "{n0}");
        }
        assert_eq!(
            p,
            assign_slots(&vec![None; SLOTS], &[1, 3]),
            "deterministic"
        );
    }

    #[test]
    fn capacity_change_moves_only_the_excess() {
        let before = assign_slots(&vec![None; SLOTS], &[1, 1]);
        let prev: Vec<Option<usize>> = before.iter().map(|d| Some(usize::from(*d))).collect();
        let after = assign_slots(&prev, &[1, 3]);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(moved, 32768 - 16384);
        assert_eq!(after.iter().filter(|d| **d == 1).count(), 49152);
        // A removed directory's slots go to the others.
        let prev: Vec<Option<usize>> = after.iter().map(|d| (*d == 1).then_some(0)).collect();
        let only = assign_slots(&prev, &[5]);
        assert!(only.iter().all(|d| *d == 0));
    }
}
