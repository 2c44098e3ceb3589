//! Threads made through the payload interface, by id, until joined.
//!
//! Limitation: one table for all payload threads, since processes do not
//! exist yet; `thread_join` will be limited to the caller's process once
//! they do.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use super::thread::{Thread, Tid};
use crate::kern::lock::SpinLockIrq;

static THREADS: SpinLockIrq<BTreeMap<Tid, Arc<Thread>>> = SpinLockIrq::new(BTreeMap::new());

/// Records `thread` so that it can be found by id.
pub fn insert(thread: Arc<Thread>) {
    let old = THREADS.lock().insert(thread.tid, thread);
    debug_assert!(old.is_none(), "thread ids are unique");
}

/// The thread `tid`, if recorded.
pub fn find(tid: Tid) -> Option<Arc<Thread>> {
    THREADS.lock().get(&tid).cloned()
}

/// Takes `tid` out of the table.
pub fn remove(tid: Tid) -> Option<Arc<Thread>> {
    let mut threads = THREADS.lock();
    let thread = threads.remove(&tid);
    // An empty map still holds its root node: give it back, so that the
    // table costs nothing when no payload thread exists.
    let emptied = if threads.is_empty() { core::mem::take(&mut *threads) } else { BTreeMap::new() };
    drop(threads);
    drop(emptied);
    thread
}
