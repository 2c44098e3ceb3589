//! The kernel boundary: where a thread leaving the kernel acts on orders
//! given to it while it was away (FreeBSD's `ast()` and `userret()`).
//!
//! Everything runs at EL1, so "inside the kernel" is bookkeeping: a
//! payload-interface call holds a [`KernelEntry`], and a thread with none
//! is running payload code. The boundary is crossed when the last entry of
//! a call ends, and when an interrupt returns to payload code. There the
//! thread exits if its group is exiting and suspends if it is being
//! suspended. A thread is never stopped inside the kernel, so it never
//! dies holding a kernel lock.
//!
//! Kernel code that runs at depth 0 with IRQs enabled (the few payload
//! interface calls that take no [`KernelEntry`]) must hold no reference
//! to a thread: an interrupt there is a boundary, and a thread stopped at
//! it never drops what its frames own.
//!
//! Limitation: stopping a thread does not unwind it. What its frames own
//! (its closure's captures, values of payload code) is not freed; a
//! process's memory will be released with the process once processes
//! exist. Payloads whose threads may be stopped keep shared state in
//! statics.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::thread::{FLAG_EXIT, FLAG_SUSPEND, Thread};
use super::{group, scheduler};
use crate::arch::cpu;
use crate::config::MAX_CPUS;
use crate::kern::interrupt::{self, SGI_AST};

/// Per CPU: the running thread's depth of kernel entries. It belongs to
/// the thread: `schedule` keeps it on the thread's stack across a switch
/// ([`take_depth`], [`restore_depth`]), so entering and leaving the kernel
/// touch neither the run queue nor the thread. Changed only by its CPU,
/// with IRQs masked.
static DEPTH: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// Threads that may have orders pending: non-zero from the moment a
/// single-threading marks threads until their orders are gone. While it
/// is zero, a boundary needs no look at the thread at all.
static ORDERS_OUTSTANDING: AtomicUsize = AtomicUsize::new(0);

/// Marks the calling thread as inside the kernel until dropped.
pub struct KernelEntry {
    _private: (),
}

impl KernelEntry {
    /// Enters the kernel.
    pub fn enter() -> Self {
        let irq = cpu::irq_save();
        enter_masked();
        cpu::irq_restore(irq);
        Self { _private: () }
    }
}

impl Drop for KernelEntry {
    fn drop(&mut self) {
        // IRQs stay masked while this frame may hold a reference to the
        // thread: an interrupt at depth 0 is a boundary, and a thread
        // stopped there would leak the reference.
        let irq = cpu::irq_save();
        leave_masked();
        cpu::irq_restore(irq);
    }
}

/// [`KernelEntry::enter`] for a caller that has IRQs masked already.
pub fn enter_masked() {
    let depth = &DEPTH[cpu::id()];
    depth.store(depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Dropping a [`KernelEntry`], for a caller that has IRQs masked and
/// holds no reference to the thread.
pub fn leave_masked() {
    let depth = &DEPTH[cpu::id()];
    let left = depth.load(Ordering::Relaxed) - 1;
    depth.store(left, Ordering::Relaxed);
    if left == 0 && ORDERS_OUTSTANDING.load(Ordering::Acquire) != 0 {
        let me = scheduler::current();
        if me.flags() != 0 {
            at_boundary(me);
        }
    }
}

/// At the end of an interrupt: if it interrupted payload code, the
/// thread is at its boundary.
pub fn on_interrupt_return() {
    if ORDERS_OUTSTANDING.load(Ordering::Acquire) == 0
        || DEPTH[cpu::id()].load(Ordering::Relaxed) != 0
    {
        return;
    }
    let me = scheduler::current();
    if !me.is_idle && me.flags() != 0 {
        at_boundary(me);
    }
}

/// Before a switch, with IRQs masked: the outgoing thread's depth, for it
/// to keep on its stack.
pub fn take_depth() -> u32 {
    DEPTH[cpu::id()].load(Ordering::Relaxed)
}

/// After a switch (or at a thread's start, with 0), with IRQs masked: the
/// running thread's depth.
pub fn restore_depth(depth: u32) {
    DEPTH[cpu::id()].store(depth, Ordering::Relaxed);
}

/// A single-threading is about to mark threads.
pub(super) fn orders_given() {
    ORDERS_OUTSTANDING.fetch_add(1, Ordering::AcqRel);
}

/// The threads a single-threading marked have acted on their orders (they
/// are gone, or their orders were withdrawn).
pub(super) fn orders_done() {
    ORDERS_OUTSTANDING.fetch_sub(1, Ordering::AcqRel);
}

/// Acts on the orders pending for `me`, the running thread, which is at
/// its kernel boundary: exit, or suspend until released.
pub fn at_boundary(me: Arc<Thread>) {
    // Handling the orders is kernel work: the sleeps below must not find
    // a boundary of their own when they return (this frame holds
    // references that an exit from there would leak).
    let entry = KernelEntry::enter();
    loop {
        let flags = me.flags();
        if flags & FLAG_EXIT != 0 {
            log::debug!("tid={} exits at its boundary (single-threading)", me.tid);
            drop(me);
            core::mem::forget(entry);
            super::exit_current(0);
        }
        if flags & FLAG_SUSPEND == 0 {
            break;
        }
        let Some(group) = me.group.clone() else {
            break;
        };
        // Suspension sleeps: allowed here, also at the end of an
        // interrupt, since the interrupt is over and this is the thread's
        // own stack (the switch keeps this CPU's IRQ mask per thread).
        group::suspend(&me, &group);
    }
    drop(me);
    // Leaving without a boundary check: this is the boundary.
    let irq = cpu::irq_save();
    core::mem::forget(entry);
    let depth = &DEPTH[cpu::id()];
    depth.store(depth.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
    cpu::irq_restore(irq);
}

/// Gets `thread` to its boundary soon: if it runs on another CPU, that CPU
/// takes an SGI, whose return to payload code is a boundary.
pub fn kick(thread: &Thread) {
    let cpu = thread.last_cpu.load(Ordering::Relaxed);
    if thread.on_cpu.load(Ordering::Acquire) && cpu != cpu::id() && cpu < crate::config::MAX_CPUS {
        interrupt::send_sgi(cpu, SGI_AST);
    }
}
