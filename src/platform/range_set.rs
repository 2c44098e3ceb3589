//! A fixed-capacity set of physical address ranges.
//!
//! The kernel finds its heap by taking the RAM regions of the device tree
//! and subtracting what must not be handed out: the kernel image, the
//! device tree blob, the `/memreserve/` entries and the spin-table page.
//! That happens before there is a heap, so [`RangeSet`] keeps its ranges in
//! an array whose capacity `N` is fixed at compile time.
//!
//! # Design
//!
//! Ranges are half-open (`start..end`), so a range that ends at the top of
//! the address space cannot be written, but adjacency is simply
//! `a.end == b.start` and lengths need no `+ 1`. The set is kept
//! normalised after every operation, so two sets holding the same
//! addresses hold the same ranges, [`RangeSet::len`] counts real gaps, and
//! [`RangeSet::largest`] needs no merging. Operations are linear in `N`,
//! which is a handful of entries in practice.
//!
//! # Invariants
//!
//! The first `len` entries of a [`RangeSet`]'s array are non-empty, sorted
//! by address and separated by gaps of at least one byte (overlapping or
//! adjacent ranges are merged on insertion). A failed operation leaves the
//! set unchanged.

use core::fmt;
use core::iter::Copied;
use core::slice;

/// A half-open range `start..end` of physical addresses.
///
/// A range whose `end` is not above its `start` is empty; every method
/// accepts such a range, even one built directly with `end < start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PhysRange {
    /// The first address in the range.
    pub start: u64,
    /// The first address past the range.
    pub end: u64,
}

impl PhysRange {
    /// The empty range at address 0.
    pub const EMPTY: PhysRange = PhysRange { start: 0, end: 0 };

    /// Returns the range `start..end`, or the empty range `start..start`
    /// if `end < start`.
    #[must_use]
    pub const fn new(start: u64, end: u64) -> PhysRange {
        let end = if end < start { start } else { end };
        PhysRange { start, end }
    }

    /// Returns the range of `size` bytes at `base`, as the device tree's
    /// `reg` properties give it. It is cut short at the top of the address
    /// space, where its last byte could not be represented as an `end`.
    #[must_use]
    pub const fn from_base_size(base: u64, size: u64) -> PhysRange {
        PhysRange::new(base, base.saturating_add(size))
    }

    /// Returns the number of bytes in the range.
    #[must_use]
    pub const fn len(self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Returns whether the range holds no address.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// Returns whether `addr` lies in the range.
    #[must_use]
    pub const fn contains(self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Returns whether the two ranges share at least one address. Merely
    /// adjacent ranges do not overlap, and an empty range overlaps nothing.
    #[must_use]
    pub const fn overlaps(self, other: PhysRange) -> bool {
        let apart = self.end <= other.start || other.end <= self.start;
        !apart && !self.is_empty() && !other.is_empty()
    }

    /// Returns the largest sub-range whose start and end are multiples of
    /// `align`: the start rounded up and the end rounded down. If no
    /// aligned byte remains, the result is empty.
    ///
    /// Returns `None` if `align` is not a power of two.
    #[must_use]
    pub const fn align_inward(self, align: u64) -> Option<PhysRange> {
        if !align.is_power_of_two() {
            return None;
        }
        let mask = align - 1;
        let end = self.end & !mask;
        let start = match self.start.checked_add(mask) {
            Some(start) => start & !mask,
            // Rounding up passes the top of the address space, where no
            // range can end: nothing is left.
            None => end,
        };
        Some(PhysRange::new(start, end))
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, {:#x})", self.start, self.end)
    }
}

/// Why a [`RangeSet`] operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSetError {
    /// The result would need more ranges than the set can hold.
    Full,
}

impl fmt::Display for RangeSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "range set is full"),
        }
    }
}

impl core::error::Error for RangeSetError {}

/// A set of physical addresses, kept as at most `N` disjoint ranges
/// without allocating (see the module documentation for the invariants).
#[derive(Debug, Clone)]
pub struct RangeSet<const N: usize> {
    /// The ranges; only the first `len` are meaningful.
    ranges: [PhysRange; N],
    /// The number of ranges in the set.
    len: usize,
}

impl<const N: usize> RangeSet<N> {
    /// Returns an empty set.
    #[must_use]
    pub const fn new() -> Self {
        RangeSet {
            ranges: [PhysRange::EMPTY; N],
            len: 0,
        }
    }

    /// Adds the addresses of `range`, merging it with every range it
    /// overlaps or touches. An empty `range` changes nothing.
    ///
    /// # Errors
    ///
    /// [`RangeSetError::Full`] if `range` touches no range of the set and
    /// the set already holds `N` ranges; the set is unchanged then.
    pub fn insert(&mut self, range: PhysRange) -> Result<(), RangeSetError> {
        if range.is_empty() {
            return Ok(());
        }
        // The ranges that merge with `range` are those from the first one
        // ending at or after its start up to the last one starting at or
        // before its end; `>=` and `<=` take in adjacent ranges too.
        let first = self.as_slice().partition_point(|r| r.end < range.start);
        let past = self.as_slice().partition_point(|r| r.start <= range.end);
        if first == past {
            // Nothing to merge with: a new entry goes in at `first`.
            if self.len == N {
                return Err(RangeSetError::Full);
            }
            self.ranges.copy_within(first..self.len, first + 1);
            self.ranges[first] = range;
            self.len += 1;
            return Ok(());
        }
        let merged = PhysRange {
            start: range.start.min(self.ranges[first].start),
            end: range.end.max(self.ranges[past - 1].end),
        };
        self.ranges[first] = merged;
        // Close the gap left by the other merged ranges.
        self.ranges.copy_within(past..self.len, first + 1);
        self.len -= past - first - 1;
        Ok(())
    }

    /// Takes the addresses of `range` out of the set, shortening,
    /// splitting or dropping the ranges it overlaps. An empty `range`
    /// changes nothing.
    ///
    /// # Errors
    ///
    /// [`RangeSetError::Full`] if `range` lies strictly inside one range,
    /// which would split it in two, and the set already holds `N` ranges;
    /// the set is unchanged then.
    pub fn remove(&mut self, range: PhysRange) -> Result<(), RangeSetError> {
        if range.is_empty() {
            return Ok(());
        }
        let first = self.as_slice().partition_point(|r| r.end <= range.start);
        let past = self.as_slice().partition_point(|r| r.start < range.end);
        // `first..past` are the ranges that overlap `range`.
        if first == past {
            return Ok(());
        }
        let head = PhysRange::new(self.ranges[first].start, range.start);
        let tail = PhysRange::new(range.end, self.ranges[past - 1].end);
        // What is left of the overlapped ranges: part of the first one
        // before `range`, part of the last one after it.
        let kept = [head, tail].iter().filter(|r| !r.is_empty()).count();
        let overlapped = past - first;
        if kept > overlapped && self.len == N {
            return Err(RangeSetError::Full);
        }
        // Move the untouched ranges after `past` so that exactly `kept`
        // slots remain at `first`, then fill those.
        let new_past = first + kept;
        self.ranges.copy_within(past..self.len, new_past);
        self.len = self.len + kept - overlapped;
        let mut slot = first;
        for piece in [head, tail] {
            if !piece.is_empty() {
                self.ranges[slot] = piece;
                slot += 1;
            }
        }
        Ok(())
    }

    /// Returns the ranges, sorted by address.
    #[must_use]
    pub fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// Returns an iterator over the ranges, sorted by address.
    pub fn iter(&self) -> Copied<slice::Iter<'_, PhysRange>> {
        self.as_slice().iter().copied()
    }

    /// Returns the number of ranges in the set.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Returns whether the set holds no address.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the greatest number of ranges the set can hold.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Returns whether `addr` is in the set.
    #[must_use]
    pub fn contains(&self, addr: u64) -> bool {
        self.iter().any(|r| r.contains(addr))
    }

    /// Returns the number of addresses in the set.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        // Cannot overflow: the ranges are disjoint parts of a 64-bit
        // address space that excludes its top byte.
        self.iter().map(PhysRange::len).sum()
    }

    /// Returns the longest range, the lowest one among equals, or `None`
    /// if the set is empty.
    #[must_use]
    pub fn largest(&self) -> Option<PhysRange> {
        // `max_by_key` returns the last of equal elements; scanning in
        // reverse makes that the lowest one.
        self.iter().rev().max_by_key(|r| r.len())
    }
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> IntoIterator for &'a RangeSet<N> {
    type Item = PhysRange;
    type IntoIter = Copied<slice::Iter<'a, PhysRange>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec::Vec;

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange::new(start, end)
    }

    fn set<const N: usize>(ranges: &[(u64, u64)]) -> RangeSet<N> {
        let mut s = RangeSet::new();
        for &(start, end) in ranges {
            s.insert(r(start, end)).expect("test set fits");
        }
        s
    }

    fn pairs<const N: usize>(s: &RangeSet<N>) -> Vec<(u64, u64)> {
        s.iter().map(|x| (x.start, x.end)).collect()
    }

    #[test]
    fn phys_range_basics() {
        let a = r(0x1000, 0x3000);
        assert_eq!(a.len(), 0x2000);
        assert!(!a.is_empty());
        assert!(a.contains(0x1000));
        assert!(a.contains(0x2fff));
        assert!(!a.contains(0x3000));
        assert!(!a.contains(0xfff));
        assert!(a.overlaps(r(0x2fff, 0x4000)));
        assert!(a.overlaps(r(0, 0x1001)));
        assert!(a.overlaps(r(0x1800, 0x1900)));
        assert!(!a.overlaps(r(0x3000, 0x4000)), "adjacent is not overlap");
        assert!(!a.overlaps(r(0, 0x1000)), "adjacent is not overlap");
        assert!(!a.overlaps(r(0x2000, 0x2000)), "empty overlaps nothing");
        assert_eq!(format!("{a}"), "[0x1000, 0x3000)");
    }

    #[test]
    fn phys_range_new_clamps_reversed_bounds() {
        let a = r(10, 5);
        assert_eq!(a, PhysRange { start: 10, end: 10 });
        assert!(a.is_empty());
        // A reversed range built by hand is empty too.
        let b = PhysRange { start: 10, end: 5 };
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
        assert!(!b.contains(7));
        assert!(!b.overlaps(r(0, 100)));
    }

    #[test]
    fn phys_range_from_base_size() {
        assert_eq!(PhysRange::from_base_size(0x1000, 0x10), r(0x1000, 0x1010));
        assert_eq!(
            PhysRange::from_base_size(u64::MAX - 1, 10),
            r(u64::MAX - 1, u64::MAX)
        );
    }

    #[test]
    fn align_inward() {
        let a = r(0x1001, 0x5fff);
        assert_eq!(a.align_inward(0x1000), Some(r(0x2000, 0x5000)));
        assert_eq!(a.align_inward(1), Some(a));
        assert_eq!(
            r(0x1000, 0x2000).align_inward(0x1000),
            Some(r(0x1000, 0x2000))
        );
        // No aligned page inside: empty result.
        let none = r(0x1001, 0x1fff)
            .align_inward(0x1000)
            .expect("power of two");
        assert!(none.is_empty());
        // Rounding the start up would overflow.
        let top = r(u64::MAX - 5, u64::MAX).align_inward(0x1000);
        assert!(top.expect("power of two").is_empty());
        assert_eq!(a.align_inward(0), None);
        assert_eq!(a.align_inward(0x1800), None);
    }

    #[test]
    fn insert_keeps_sorted_and_merges_overlaps() {
        let mut s: RangeSet<8> = set(&[(50, 60), (10, 20), (30, 40)]);
        assert_eq!(pairs(&s), [(10, 20), (30, 40), (50, 60)]);
        s.insert(r(15, 35)).expect("merges");
        assert_eq!(pairs(&s), [(10, 40), (50, 60)]);
        s.insert(r(0, 100)).expect("merges");
        assert_eq!(pairs(&s), [(0, 100)]);
        s.insert(r(20, 30)).expect("already in");
        assert_eq!(pairs(&s), [(0, 100)]);
    }

    #[test]
    fn insert_merges_adjacent() {
        let mut s: RangeSet<4> = set(&[(10, 20), (30, 40)]);
        s.insert(r(20, 30)).expect("bridges");
        assert_eq!(pairs(&s), [(10, 40)]);
        s.insert(r(40, 50)).expect("touches end");
        s.insert(r(5, 10)).expect("touches start");
        assert_eq!(pairs(&s), [(5, 50)]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn insert_ignores_empty_ranges() {
        let mut s: RangeSet<1> = set(&[(10, 20)]);
        s.insert(r(50, 50)).expect("empty fits anywhere");
        s.insert(PhysRange { start: 60, end: 55 })
            .expect("reversed is empty");
        assert_eq!(pairs(&s), [(10, 20)]);
    }

    #[test]
    fn insert_overflow_leaves_set_unchanged() {
        let mut s: RangeSet<2> = set(&[(10, 20), (30, 40)]);
        assert_eq!(s.insert(r(50, 60)), Err(RangeSetError::Full));
        assert_eq!(s.insert(r(0, 5)), Err(RangeSetError::Full));
        assert_eq!(pairs(&s), [(10, 20), (30, 40)]);
        // Merging needs no new slot, so it works on a full set.
        s.insert(r(40, 45)).expect("touches a range");
        assert_eq!(pairs(&s), [(10, 20), (30, 45)]);
        let mut zero: RangeSet<0> = RangeSet::new();
        assert_eq!(zero.insert(r(1, 2)), Err(RangeSetError::Full));
        assert_eq!(format!("{}", RangeSetError::Full), "range set is full");
    }

    #[test]
    fn remove_from_middle_splits() {
        let mut s: RangeSet<4> = set(&[(0, 100)]);
        s.remove(r(40, 60)).expect("room to split");
        assert_eq!(pairs(&s), [(0, 40), (60, 100)]);
    }

    #[test]
    fn remove_edges() {
        let mut s: RangeSet<4> = set(&[(0, 100)]);
        s.remove(r(0, 10)).expect("head");
        s.remove(r(90, 100)).expect("tail");
        assert_eq!(pairs(&s), [(10, 90)]);
        s.remove(r(0, 20)).expect("overhanging head");
        s.remove(r(80, 200)).expect("overhanging tail");
        assert_eq!(pairs(&s), [(20, 80)]);
    }

    #[test]
    fn remove_whole_ranges() {
        let mut s: RangeSet<4> = set(&[(0, 10), (20, 30), (40, 50)]);
        s.remove(r(20, 30)).expect("exact");
        assert_eq!(pairs(&s), [(0, 10), (40, 50)]);
        s.remove(r(0, 100)).expect("everything");
        assert!(s.is_empty());
        assert_eq!(s.largest(), None);
        assert_eq!(s.total_bytes(), 0);
    }

    #[test]
    fn remove_across_several_ranges() {
        let mut s: RangeSet<8> = set(&[(0, 10), (20, 30), (40, 50), (60, 70)]);
        s.remove(r(5, 45)).expect("shrinks");
        assert_eq!(pairs(&s), [(0, 5), (45, 50), (60, 70)]);
        s.remove(r(48, 65)).expect("shrinks");
        assert_eq!(pairs(&s), [(0, 5), (45, 48), (65, 70)]);
    }

    #[test]
    fn remove_outside_or_in_gaps_changes_nothing() {
        let mut s: RangeSet<2> = set(&[(10, 20), (30, 40)]);
        s.remove(r(20, 30)).expect("gap");
        s.remove(r(0, 10)).expect("before");
        s.remove(r(40, 50)).expect("after");
        s.remove(r(15, 15)).expect("empty");
        assert_eq!(pairs(&s), [(10, 20), (30, 40)]);
    }

    #[test]
    fn remove_split_overflow_leaves_set_unchanged() {
        let mut s: RangeSet<2> = set(&[(0, 100), (200, 300)]);
        assert_eq!(s.remove(r(40, 60)), Err(RangeSetError::Full));
        assert_eq!(pairs(&s), [(0, 100), (200, 300)]);
        // Trimming an edge needs no new slot.
        s.remove(r(250, 400)).expect("trims");
        assert_eq!(pairs(&s), [(0, 100), (200, 250)]);
        // Spanning two ranges leaves two pieces in their two slots.
        s.remove(r(50, 220)).expect("trims both");
        assert_eq!(pairs(&s), [(0, 50), (220, 250)]);
    }

    #[test]
    fn queries() {
        let s: RangeSet<4> = set(&[(0, 10), (20, 50), (60, 90)]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.capacity(), 4);
        assert_eq!(s.total_bytes(), 10 + 30 + 30);
        // Ties go to the lowest range.
        assert_eq!(s.largest(), Some(r(20, 50)));
        assert!(s.contains(25));
        assert!(!s.contains(55));
        let via_ref: Vec<PhysRange> = (&s).into_iter().collect();
        assert_eq!(via_ref, s.as_slice());
        let d: RangeSet<3> = RangeSet::default();
        assert!(d.is_empty());
    }

    #[test]
    fn heap_computation_example() {
        // The shape of the kernel's use: RAM minus reservations.
        let mut s: RangeSet<8> = RangeSet::new();
        s.insert(PhysRange::from_base_size(0, 0x3b40_0000))
            .expect("ram");
        s.insert(PhysRange::from_base_size(0x4000_0000, 0xbc00_0000))
            .expect("ram");
        s.remove(r(0, 0x1000)).expect("spin table");
        s.remove(r(0x8_0000, 0x20_0000)).expect("kernel image");
        s.remove(r(0x2eff_2000, 0x2f00_0000)).expect("dtb");
        let heap = s.largest().expect("some RAM").align_inward(0x1000);
        assert_eq!(heap, Some(r(0x4000_0000, 0xfc00_0000)));
        assert_eq!(s.len(), 4);
    }

    /// Checks insert and remove against a bitmap of 128 addresses over a
    /// fixed pseudo-random sequence of operations.
    #[test]
    fn matches_bitmap_model() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // xorshift64: deterministic, no dependency.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut s: RangeSet<6> = RangeSet::new();
        let mut model = [false; 128];
        for _ in 0..20_000 {
            let a = next() % 129;
            let b = next() % 129;
            let range = r(a.min(b), a.max(b));
            let insert = next() % 2 == 0;
            let before = pairs(&s);
            let result = if insert {
                s.insert(range)
            } else {
                s.remove(range)
            };
            match result {
                Ok(()) => {
                    for addr in range.start..range.end {
                        model[usize::try_from(addr).unwrap()] = insert;
                    }
                }
                Err(RangeSetError::Full) => assert_eq!(pairs(&s), before),
            }
            for (addr, &present) in model.iter().enumerate() {
                assert_eq!(s.contains(addr as u64), present, "addr {addr}");
            }
            let all = s.as_slice();
            assert!(all.iter().all(|x| !x.is_empty()));
            assert!(all.windows(2).all(|w| w[0].end < w[1].start));
            let count = model.iter().filter(|&&p| p).count() as u64;
            assert_eq!(s.total_bytes(), count);
        }
    }
}
