//! A hashed timer wheel: entries due at a tick, kept in the slot
//! `tick % SLOTS`. Hardware-free and generic, tested on the host; the
//! callouts of `kern::callout` put one wheel on each CPU.
//!
//! Expiry walks the slots from the last tick processed to now, so ticks
//! missed while interrupts were masked are caught up, and an entry due in
//! more than one turn of the wheel waits in its slot until its tick.

use alloc::vec::Vec;

/// Slots in a wheel.
pub const SLOTS: usize = 256;

/// Entries by due tick.
pub struct TimerWheel<T> {
    slots: [Vec<(u64, T)>; SLOTS],
    /// Every tick before this one has been processed.
    next_tick: u64,
    len: usize,
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose next tick to process is 0.
    pub const fn new() -> Self {
        Self {
            slots: [const { Vec::new() }; SLOTS],
            next_tick: 0,
            len: 0,
        }
    }

    /// Entries in the wheel.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the wheel is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first tick not yet processed: an entry inserted for an earlier
    /// tick fires at the next [`Self::expire`].
    pub fn next_tick(&self) -> u64 {
        self.next_tick
    }

    /// Adds `item`, due at tick `due` (an earlier tick means the next
    /// expiry).
    pub fn insert(&mut self, due: u64, item: T) {
        let due = due.max(self.next_tick);
        self.slots[slot(due)].push((due, item));
        self.len += 1;
    }

    /// Removes the entry due at `due` for which `matches` holds; returns it.
    pub fn remove(&mut self, due: u64, mut matches: impl FnMut(&T) -> bool) -> Option<T> {
        let due = due.max(self.next_tick);
        let entries = &mut self.slots[slot(due)];
        let index = entries
            .iter()
            .position(|(d, item)| *d == due && matches(item))?;
        self.len -= 1;
        let (_, item) = entries.swap_remove(index);
        if entries.is_empty() {
            // Give the memory back: a wheel holds nothing when idle.
            *entries = Vec::new();
        }
        Some(item)
    }

    /// Removes every entry due at or before `now` and hands it to `fire`,
    /// in order of due tick.
    pub fn expire(&mut self, now: u64, mut fire: impl FnMut(T)) {
        // Past a full turn every slot gets visited once.
        let last = now.min(self.next_tick + SLOTS as u64 - 1);
        while self.next_tick <= last {
            let tick = self.next_tick;
            let entries = &mut self.slots[slot(tick)];
            let mut index = 0;
            while index < entries.len() {
                if entries[index].0 <= now {
                    let (_, item) = entries.swap_remove(index);
                    self.len -= 1;
                    fire(item);
                } else {
                    index += 1;
                }
            }
            if entries.is_empty() {
                *entries = Vec::new();
            }
            self.next_tick += 1;
        }
        self.next_tick = self.next_tick.max(now + 1);
    }
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(tick: u64) -> usize {
    (tick % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn expire(wheel: &mut TimerWheel<u32>, now: u64) -> Vec<u32> {
        let mut fired = Vec::new();
        wheel.expire(now, |item| fired.push(item));
        fired.sort();
        fired
    }

    #[test]
    fn fires_at_the_due_tick_and_not_before() {
        let mut wheel = TimerWheel::new();
        wheel.insert(5, 1);
        wheel.insert(5, 2);
        wheel.insert(7, 3);
        assert!(expire(&mut wheel, 4).is_empty());
        assert_eq!(expire(&mut wheel, 5), [1, 2]);
        assert!(expire(&mut wheel, 6).is_empty());
        assert_eq!(expire(&mut wheel, 9), [3]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn waits_more_than_one_turn() {
        let mut wheel = TimerWheel::new();
        wheel.insert(SLOTS as u64 + 3, 9);
        assert!(expire(&mut wheel, 3).is_empty());
        assert!(expire(&mut wheel, SLOTS as u64 + 2).is_empty());
        assert_eq!(expire(&mut wheel, SLOTS as u64 + 3), [9]);
    }

    #[test]
    fn catches_up_missed_ticks_and_past_due_entries() {
        let mut wheel = TimerWheel::new();
        wheel.insert(10, 1);
        wheel.insert(3 * SLOTS as u64, 2);
        assert_eq!(expire(&mut wheel, 5 * SLOTS as u64), [1, 2]);
        wheel.insert(0, 3);
        assert_eq!(expire(&mut wheel, 5 * SLOTS as u64 + 1), [3]);
    }

    #[test]
    fn removes_one_entry() {
        let mut wheel = TimerWheel::new();
        wheel.insert(4, 1);
        wheel.insert(4, 2);
        assert_eq!(wheel.remove(4, |&i| i == 2), Some(2));
        assert_eq!(wheel.remove(4, |&i| i == 2), None);
        assert_eq!(wheel.len(), 1);
        assert_eq!(expire(&mut wheel, 4), [1]);
    }
}
