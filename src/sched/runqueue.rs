//! The run-queue policy: runnable threads by priority, first in first out
//! within a priority. Hardware-free and generic over the thread handle, so
//! that host tests exercise it.
//!
//! Priorities run from 0 (most urgent) to 255, as in FreeBSD; they map to
//! [`QUEUES`] queues of 32 priorities each, and a bitmap finds the first
//! non-empty queue in one instruction.
//!
//! Nothing here allocates while the queue is locked: every queue keeps
//! room for [`RunQueue::capacity`] threads, and room is added only through
//! [`RunQueue::grow`], which takes storage the caller allocated outside
//! the lock.

use alloc::collections::VecDeque;

/// Number of priority queues.
pub const QUEUES: usize = 8;
/// Priorities per queue.
const PRIORITIES_PER_QUEUE: usize = 256 / QUEUES;

/// Runnable threads of one CPU.
pub struct RunQueue<T> {
    queues: [VecDeque<T>; QUEUES],
    /// Bit `q` set: queue `q` is not empty.
    occupied: u32,
    len: usize,
}

impl<T> RunQueue<T> {
    /// An empty queue with room for nothing yet.
    pub const fn new() -> Self {
        Self {
            queues: [const { VecDeque::new() }; QUEUES],
            occupied: 0,
            len: 0,
        }
    }

    /// Threads queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no thread is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Threads every priority queue has room for.
    pub fn capacity(&self) -> usize {
        self.queues
            .iter()
            .map(VecDeque::capacity)
            .min()
            .unwrap_or(0)
    }

    /// Queues `thread` behind the others of its priority.
    ///
    /// # Errors
    /// Gives the thread back when its queue is full: the caller grows the
    /// queue outside the lock and tries again.
    pub fn push(&mut self, thread: T, priority: u8) -> Result<(), T> {
        let queue = queue_of(priority);
        if self.queues[queue].len() == self.queues[queue].capacity() {
            return Err(thread);
        }
        self.queues[queue].push_back(thread);
        self.occupied |= 1 << queue;
        self.len += 1;
        Ok(())
    }

    /// The most urgent thread, if any, and its queue index.
    pub fn pop(&mut self) -> Option<T> {
        if self.occupied == 0 {
            return None;
        }
        let queue = self.occupied.trailing_zeros() as usize;
        let thread = self.queues[queue].pop_front()?;
        if self.queues[queue].is_empty() {
            self.occupied &= !(1 << queue);
        }
        self.len -= 1;
        Some(thread)
    }

    /// The priority of the most urgent queued thread's queue, as the
    /// lowest priority it holds.
    pub fn best_priority(&self) -> Option<u8> {
        (self.occupied != 0)
            .then(|| (self.occupied.trailing_zeros() as usize * PRIORITIES_PER_QUEUE) as u8)
    }

    /// Removes and returns the first thread, most urgent queue first, for
    /// which `wanted` holds.
    pub fn take_first(&mut self, mut wanted: impl FnMut(&T) -> bool) -> Option<T> {
        for queue in 0..QUEUES {
            if let Some(index) = self.queues[queue].iter().position(&mut wanted) {
                return self.take_from(queue, index);
            }
        }
        None
    }

    /// Replaces the storage of every queue by the larger, empty deques in
    /// `storage`, moving the queued threads over. Returns the old storage,
    /// for the caller to free outside the lock.
    pub fn grow(&mut self, mut storage: [VecDeque<T>; QUEUES]) -> [VecDeque<T>; QUEUES] {
        for (queue, fresh) in self.queues.iter_mut().zip(storage.iter_mut()) {
            debug_assert!(fresh.is_empty() && fresh.capacity() >= queue.len());
            fresh.extend(queue.drain(..));
            core::mem::swap(queue, fresh);
        }
        storage
    }

    fn take_from(&mut self, queue: usize, index: usize) -> Option<T> {
        let thread = self.queues[queue].remove(index)?;
        if self.queues[queue].is_empty() {
            self.occupied &= !(1 << queue);
        }
        self.len -= 1;
        Some(thread)
    }
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Storage for [`RunQueue::grow`]: empty deques with room for `capacity`.
pub fn storage<T>(capacity: usize) -> [VecDeque<T>; QUEUES] {
    core::array::from_fn(|_| VecDeque::with_capacity(capacity))
}

fn queue_of(priority: u8) -> usize {
    priority as usize / PRIORITIES_PER_QUEUE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(capacity: usize) -> RunQueue<u32> {
        let mut queue = RunQueue::new();
        let _ = queue.grow(storage(capacity));
        queue
    }

    #[test]
    fn most_urgent_first_then_fifo() {
        let mut rq = queue(8);
        rq.push(1, 120).unwrap();
        rq.push(2, 120).unwrap();
        rq.push(3, 10).unwrap();
        rq.push(4, 250).unwrap();
        assert_eq!(rq.best_priority(), Some(0));
        assert_eq!(
            [rq.pop(), rq.pop(), rq.pop(), rq.pop(), rq.pop()],
            [Some(3), Some(1), Some(2), Some(4), None]
        );
        assert!(rq.is_empty());
    }

    #[test]
    fn full_queue_gives_the_thread_back_until_grown() {
        let mut rq = queue(2);
        rq.push(1, 100).unwrap();
        rq.push(2, 100).unwrap();
        let capacity = rq.capacity();
        let mut pushed = 0;
        while rq.push(9, 100).is_ok() {
            pushed += 1;
        }
        assert_eq!(rq.push(3, 100), Err(3));
        let old = rq.grow(storage(capacity * 4));
        assert!(old.iter().all(VecDeque::is_empty));
        rq.push(3, 100).unwrap();
        assert_eq!(rq.len(), 3 + pushed);
        assert_eq!(rq.pop(), Some(1));
    }

    #[test]
    fn take_first_finds_across_queues() {
        let mut rq = queue(4);
        for (thread, priority) in [(1, 200), (2, 50), (3, 50), (4, 0)] {
            rq.push(thread, priority).unwrap();
        }
        assert_eq!(rq.take_first(|&t| t % 2 == 1), Some(3));
        assert_eq!(rq.take_first(|&t| t > 10), None);
        assert_eq!(rq.len(), 3);
        assert_eq!(rq.pop(), Some(4));
        assert_eq!(rq.pop(), Some(2));
        assert_eq!(rq.pop(), Some(1));
        assert_eq!(rq.best_priority(), None);
    }
}
