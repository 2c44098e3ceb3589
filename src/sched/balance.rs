//! Where threads run: placement of new and woken threads, and which CPU an
//! idle CPU steals from. Pure functions of the CPUs' loads, tested on the
//! host.
//!
//! The rule: a thread goes back to the CPU it last ran on (its cache is
//! warm there) unless that CPU carries [`IMBALANCE`] or more threads than
//! the least loaded CPU it may use; then it goes to that least loaded CPU
//! (the lowest-numbered among equals). An idle CPU steals from the most
//! loaded CPU that has a thread waiting in its queue.

use super::cpuset::CpuSet;

/// How many more threads than the least loaded allowed CPU a thread's last
/// CPU may carry before the thread is placed elsewhere.
pub const IMBALANCE: usize = 2;

/// The CPU for a thread that becomes runnable.
///
/// `load(cpu)` counts the threads queued or running there (the idle
/// thread excluded); it is asked only about CPUs in `allowed`, the
/// thread's affinity intersected with the online CPUs, which must not be
/// empty.
pub fn place(allowed: CpuSet, last_cpu: Option<usize>, load: impl Fn(usize) -> usize) -> usize {
    let mut least = None;
    for cpu in allowed.iter() {
        let cpu_load = load(cpu);
        if least.is_none_or(|(_, best)| cpu_load < best) {
            least = Some((cpu, cpu_load));
        }
    }
    let (least, least_load) = least.expect("a thread may run on some online CPU");
    match last_cpu {
        Some(last) if last != least && allowed.contains(last) => {
            if load(last) < least_load + IMBALANCE {
                last
            } else {
                least
            }
        }
        _ => least,
    }
}

/// The CPU an idle `thief` should steal from: the most loaded one with at
/// least one thread waiting besides the one it runs (`queued[cpu] > 0`).
pub fn steal_from(thief: usize, queued: &[usize], online: CpuSet) -> Option<usize> {
    online
        .iter()
        .filter(|&cpu| cpu != thief && cpu < queued.len() && queued[cpu] > 0)
        .max_by_key(|&cpu| (queued[cpu], usize::MAX - cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_on_its_last_cpu_unless_overloaded() {
        let all = CpuSet::first(4);
        assert_eq!(place(all, Some(2), |c| [0, 0, 1, 0][c]), 2);
        assert_eq!(place(all, Some(2), |c| [0, 0, 2, 0][c]), 0);
        assert_eq!(place(all, Some(3), |c| [3, 3, 3, 4][c]), 3);
        assert_eq!(place(all, None, |c| [3, 1, 1, 2][c]), 1);
    }

    #[test]
    fn respects_affinity() {
        let only_3 = CpuSet::single(3);
        assert_eq!(place(only_3, Some(0), |c| [0, 0, 0, 9][c]), 3);
        let two = CpuSet::single(1).with(2);
        assert_eq!(place(two, Some(0), |c| [0, 5, 4, 0][c]), 2);
    }

    #[test]
    fn steals_from_the_busiest() {
        let all = CpuSet::first(4);
        assert_eq!(steal_from(0, &[0, 1, 3, 3], all), Some(2));
        assert_eq!(steal_from(0, &[0, 0, 0, 0], all), None);
        assert_eq!(steal_from(2, &[0, 0, 5, 0], all), None);
        assert_eq!(steal_from(0, &[0, 4, 0, 0], CpuSet::first(1)), None);
    }
}
