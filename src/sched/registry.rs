//! Threads made through the payload interface, by id, until joined.
//!
//! A thread id carries its context index in its low bits
//! ([`Thread::tid`]), and the index is also the thread's stack slot: the
//! table is an array with one entry per slot, so that finding, adding and
//! removing a thread take one uncontended lock and allocate nothing.
//!
//! Limitation: one table for all payload threads, since processes do not
//! exist yet; `thread_join` will be limited to the caller's process once
//! they do.

use alloc::sync::Arc;

use super::thread::{Thread, Tid, context_of};
use crate::arch::mmu::STACK_SLOTS;
use crate::kern::lock::{LockClass, SpinLockIrq};

static ENTRIES: [SpinLockIrq<Option<Arc<Thread>>>; STACK_SLOTS] =
    [const { SpinLockIrq::ordered(LockClass::ThreadTable, None) }; STACK_SLOTS];

fn entry(tid: Tid) -> Option<&'static SpinLockIrq<Option<Arc<Thread>>>> {
    ENTRIES.get(context_of(tid))
}

/// Records `thread` so that it can be found by id.
pub fn insert(thread: Arc<Thread>) {
    let entry = entry(thread.tid).expect("a payload thread has a stack slot");
    let old = entry.lock().replace(thread);
    debug_assert!(old.is_none(), "a slot holds one thread at a time");
}

/// The thread `tid`, if recorded.
pub fn find(tid: Tid) -> Option<Arc<Thread>> {
    let entry = entry(tid)?.lock();
    entry.as_ref().filter(|thread| thread.tid == tid).cloned()
}

/// Takes `tid` out of the table.
pub fn remove(tid: Tid) -> Option<Arc<Thread>> {
    let mut entry = entry(tid)?.lock();
    if entry.as_ref().is_some_and(|thread| thread.tid == tid) {
        entry.take()
    } else {
        None
    }
}
