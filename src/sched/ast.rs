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
use core::sync::atomic::Ordering;

use super::thread::{FLAG_EXIT, FLAG_SUSPEND, Thread};
use super::{group, scheduler};
use crate::arch::cpu;
use crate::kern::interrupt::{self, SGI_AST};

/// Marks the calling thread as inside the kernel until dropped.
pub struct KernelEntry {
    _private: (),
}

impl KernelEntry {
    /// Enters the kernel.
    pub fn enter() -> Self {
        // IRQs stay masked while this frame holds a reference to the
        // thread: an interrupt at depth 0 is a boundary, and a thread
        // stopped there would leak the reference.
        let irq = cpu::irq_save();
        scheduler::current()
            .kernel_depth
            .fetch_add(1, Ordering::Relaxed);
        cpu::irq_restore(irq);
        Self { _private: () }
    }
}

impl Drop for KernelEntry {
    fn drop(&mut self) {
        let irq = cpu::irq_save();
        let me = scheduler::current();
        if me.kernel_depth.fetch_sub(1, Ordering::Relaxed) == 1 && me.flags() != 0 {
            at_boundary(me);
        } else {
            drop(me);
        }
        cpu::irq_restore(irq);
    }
}

/// At the end of an interrupt: if it interrupted payload code, the
/// thread is at its boundary.
pub fn on_interrupt_return() {
    let me = scheduler::current();
    if !me.is_idle && me.kernel_depth.load(Ordering::Relaxed) == 0 && me.flags() != 0 {
        at_boundary(me);
    }
}

/// Acts on the orders pending for `me`, the running thread, which is at
/// its kernel boundary: exit, or suspend until released.
pub fn at_boundary(me: Arc<Thread>) {
    // Handling the orders is kernel work: the sleeps below must not find
    // a boundary of their own when they return (this frame holds
    // references that an exit from there would leak).
    me.kernel_depth.fetch_add(1, Ordering::Relaxed);
    loop {
        let flags = me.flags();
        if flags & FLAG_EXIT != 0 {
            log::debug!("tid={} exits at its boundary (single-threading)", me.tid);
            drop(me);
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
    me.kernel_depth.fetch_sub(1, Ordering::Relaxed);
}

/// Gets `thread` to its boundary soon: if it runs on another CPU, that CPU
/// takes an SGI, whose return to payload code is a boundary.
pub fn kick(thread: &Thread) {
    let cpu = thread.last_cpu.load(Ordering::Relaxed);
    if thread.on_cpu.load(Ordering::Acquire) && cpu != cpu::id() && cpu < crate::config::MAX_CPUS {
        interrupt::send_sgi(cpu, SGI_AST);
    }
}
