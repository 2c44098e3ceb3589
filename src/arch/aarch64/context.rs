//! Thread contexts and the context switch.
//!
//! A switch happens inside a function call (`switch`), so only what the
//! AAPCS64 makes the callee preserve is saved: x19-x29, the link register
//! and SP. Everything else is either dead across the call or already on
//! the thread's stack (an interrupted thread's full register set sits in
//! its trap frame, below the frames of the scheduler). No FP/SIMD state
//! exists (soft-float kernel). The per-CPU fault-recovery pointer of
//! `catch_fault` belongs to the thread, so it travels with the context.

use core::arch::global_asm;
use core::cell::UnsafeCell;

use crate::config::MAX_CPUS;

global_asm!(
    // switch_context(prev: *mut Context, next: *const Context)
    ".global switch_context",
    "switch_context:",
    "    stp x19, x20, [x0, #0]",
    "    stp x21, x22, [x0, #16]",
    "    stp x23, x24, [x0, #32]",
    "    stp x25, x26, [x0, #48]",
    "    stp x27, x28, [x0, #64]",
    "    stp x29, x30, [x0, #80]",
    "    mov x9, sp",
    "    str x9, [x0, #96]",
    "    ldp x19, x20, [x1, #0]",
    "    ldp x21, x22, [x1, #16]",
    "    ldp x23, x24, [x1, #32]",
    "    ldp x25, x26, [x1, #48]",
    "    ldp x27, x28, [x1, #64]",
    "    ldp x29, x30, [x1, #80]",
    "    ldr x9, [x1, #96]",
    "    mov sp, x9",
    "    ret",
    // First instructions of a new thread: its context has x19 = entry,
    // x20 = argument, lr = here, SP = the top of its stack.
    ".global thread_trampoline",
    "thread_trampoline:",
    "    mov x29, #0",
    "    mov x0, x20",
    "    blr x19",
    "    b park",
);

unsafe extern "C" {
    fn switch_context(prev: *mut Context, next: *const Context);
    fn thread_trampoline();
}

/// Callee-saved registers of a thread that is not running.
#[repr(C)]
struct Context {
    /// x19 to x30, in `switch_context`'s order.
    registers: [u64; 12],
    /// Stack pointer.
    sp: u64,
}

/// A saved context, written only by the CPU switching away from its thread
/// and read only by the CPU switching to it.
struct ContextCell(UnsafeCell<Context>);

// SAFETY: the scheduler hands a context from one CPU to the next with a
// release/acquire pair (the thread's `on_cpu` flag), and never lets two
// CPUs switch to or from the same thread at once.
unsafe impl Sync for ContextCell {}

/// Contexts: one per thread stack slot (the index of a thread's
/// `KernelStack`), then one per CPU for its boot (idle) thread.
static CONTEXTS: [ContextCell; CONTEXT_COUNT] = [const {
    ContextCell(UnsafeCell::new(Context {
        registers: [0; 12],
        sp: 0,
    }))
}; CONTEXT_COUNT];

/// Number of contexts.
pub const CONTEXT_COUNT: usize = super::mmu::STACK_SLOTS + MAX_CPUS;

/// The context index of `cpu`'s boot thread.
pub const fn boot_context(cpu: usize) -> usize {
    super::mmu::STACK_SLOTS + cpu
}

/// Prepares context `index` to start `entry(argument)` on a fresh stack
/// whose top is `stack_top`. `entry` must never return.
///
/// The caller owns the context: `index` is the slot of a stack it just
/// allocated, so no thread uses the context yet.
pub fn prepare(index: usize, stack_top: usize, entry: extern "C" fn(usize) -> !, argument: usize) {
    let mut registers = [0; 12];
    registers[0] = entry as *const () as u64;
    registers[1] = argument as u64;
    registers[11] = thread_trampoline as *const () as u64;
    let context = Context {
        registers,
        sp: stack_top as u64 & !0xf,
    };
    // SAFETY: per the contract, no CPU runs, saves or restores this
    // context while the new thread has not been made runnable.
    unsafe { CONTEXTS[index].0.get().write(context) };
}

/// Saves the running thread's context in `prev` and resumes `next`; returns
/// when some CPU switches back to `prev`.
///
/// The scheduler guarantees, and this function relies on: `prev` is the
/// context of the thread running this code; `next` is a context saved by a
/// finished switch (or made by [`prepare`]) that no CPU is running or
/// switching; IRQs are masked.
pub fn switch(prev: usize, next: usize) {
    // SAFETY: per the contract above, `prev` is ours to write and `next`
    // holds a complete saved context that nothing else touches, with a
    // valid stack; `switch_context` saves and restores exactly the
    // registers that a function call must preserve.
    unsafe { switch_context(CONTEXTS[prev].0.get(), CONTEXTS[next].0.get()) }
}
