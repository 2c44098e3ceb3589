//! Sets of CPUs, for affinity.

use core::fmt;

use crate::config::MAX_CPUS;

/// A set of logical CPU ids, one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuSet(u64);

const _: () = assert!(MAX_CPUS <= 64, "CpuSet holds 64 CPUs");

impl CpuSet {
    /// No CPU.
    pub const EMPTY: Self = Self(0);
    /// Every CPU the kernel can run.
    pub const ALL: Self = Self(if MAX_CPUS == 64 {
        u64::MAX
    } else {
        (1 << MAX_CPUS) - 1
    });

    /// The set holding `cpu` alone.
    pub const fn single(cpu: usize) -> Self {
        Self(1 << cpu)
    }

    /// The set of CPUs `0..count`.
    pub const fn first(count: usize) -> Self {
        if count >= 64 {
            Self(u64::MAX)
        } else {
            Self((1 << count) - 1)
        }
    }

    /// A set from its bit mask.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The bit mask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: usize) -> bool {
        cpu < 64 && self.0 & (1 << cpu) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// CPUs in both sets.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The set with `cpu` added.
    pub const fn with(self, cpu: usize) -> Self {
        Self(self.0 | 1 << cpu)
    }

    /// Number of CPUs in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The CPUs in increasing order (one step per CPU in the set, not
    /// per possible CPU: placement runs this on every wake-up).
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            (bits != 0).then(|| {
                let cpu = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                cpu
            })
        })
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;

    #[test]
    fn set_operations() {
        let set = CpuSet::single(1).with(3);
        assert!(set.contains(1) && set.contains(3) && !set.contains(2));
        assert_eq!(set.len(), 2);
        assert_eq!(set.intersection(CpuSet::first(2)), CpuSet::single(1));
        assert!(CpuSet::EMPTY.is_empty());
        assert_eq!(CpuSet::first(64).len(), 64);
        assert!(!set.contains(99));
        assert_eq!(set.iter().collect::<std::vec::Vec<_>>(), [1, 3]);
        assert_eq!(CpuSet::single(63).iter().next(), Some(63));
        assert_eq!(CpuSet::EMPTY.iter().next(), None);
    }
}
