//! The kernel heap: a buddy allocator over the RAM the machine description
//! leaves free, behind an interrupt-masking lock.
//!
//! The one module outside `arch` and `drivers` with `unsafe`: the global
//! allocator trait is unsafe to implement, and handing RAM to the
//! allocator is an unsafe promise.

#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use buddy_system_allocator::Heap;

use super::lock::{LockClass, SpinLockIrq};
use crate::platform::range_set::PhysRange;

/// Buddy orders: blocks up to 2^31 bytes.
const ORDER: usize = 32;

/// The allocator. Its lock is taken once per call, never twice in one
/// statement (the buddy allocator's own `LockedHeap` shows how that
/// deadlocks).
pub struct KernelHeap(SpinLockIrq<Heap<ORDER>>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(SpinLockIrq::ordered(LockClass::Heap, Heap::empty()));

/// Adds `range` to the heap.
///
/// Must be given RAM that nothing else uses and that the kernel map maps
/// read/write; `kern::init` derives the ranges from the machine description
/// minus the image, the device tree and reserved regions.
pub fn add_range(range: PhysRange) {
    let mut heap = HEAP.0.lock();
    // SAFETY: per this function's contract, the range is mapped read/write
    // RAM that no one else uses, and it is added once.
    unsafe { heap.add_to_heap(range.start as usize, range.end as usize) };
}

/// Bytes handed out and not yet freed, as requested by the callers.
pub fn in_use() -> usize {
    HEAP.0.lock().stats_alloc_user()
}

/// Bytes the heap manages.
pub fn total() -> usize {
    HEAP.0.lock().stats_total_bytes()
}

// SAFETY: `Heap` returns blocks of at least the requested size and
// alignment from memory it owns, never handing one out twice; the lock
// serialises all calls.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .alloc(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if let Some(pointer) = NonNull::new(pointer) {
            // SAFETY: the caller passes a block this allocator returned
            // for `layout`, per the `GlobalAlloc` contract.
            unsafe { self.0.lock().dealloc(pointer, layout) };
        }
    }
}
