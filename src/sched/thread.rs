//! Threads: a kernel stack, a saved context and the scheduler's view of
//! them.
//!
//! A thread is shared through `Arc<Thread>`: its run queue (or sleep queue)
//! holds one reference, its CPU holds one while it runs and until the next
//! thread has finished switching in, joiners and its group hold others.
//! The stack is freed with the last reference, which is why a thread's
//! stack is never freed before its CPU has switched away from it.

use alloc::boxed::Box;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use alloc::sync::Arc;

use super::cpuset::CpuSet;
use super::group::ThreadGroup;
use crate::arch::mmu::KernelStack;

/// Thread id: a sequence number above [`CONTEXT_BITS`] bits of context
/// index, so that ids are never reused and the index is found from the id.
pub type Tid = u64;

/// Low bits of a [`Tid`] that hold the thread's context index.
const CONTEXT_BITS: u32 = 14;
const _: () = assert!(crate::arch::context::CONTEXT_COUNT <= 1 << CONTEXT_BITS);

/// The context index (the stack slot, for a thread with a stack) in `tid`.
pub fn context_of(tid: Tid) -> usize {
    (tid & ((1 << CONTEXT_BITS) - 1)) as usize
}

/// Priority of ordinary threads (FreeBSD's timeshare range starts here).
pub const PRIORITY_NORMAL: u8 = 120;

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Current on a CPU.
    Running = 0,
    /// In a run queue, or on its way into one.
    Runnable = 1,
    /// In a sleep queue.
    Sleeping = 2,
    /// Finished; waiting for its last reference to go.
    Dead = 3,
}

/// Flag: stop at the next kernel boundary and exit (`thread_single` for
/// exit).
pub const FLAG_EXIT: u32 = 1 << 0;
/// Flag: stop at the next kernel boundary and wait (suspension).
pub const FLAG_SUSPEND: u32 = 1 << 1;

/// Sentinel for "no CPU yet".
pub const NO_CPU: usize = usize::MAX;

/// The body of a thread; its return value is the thread's result.
pub type Entry = Box<dyn FnOnce() -> usize + Send>;

/// A thread.
pub struct Thread {
    /// Its id, unique for the kernel's life.
    pub tid: Tid,
    /// Index of its saved context (`arch::context`).
    pub(super) context: usize,
    /// Its stack; `None` for a CPU's boot thread, which runs on the boot
    /// stack.
    stack: Option<KernelStack>,
    /// A CPU's idle thread: never queued, never exits.
    pub(super) is_idle: bool,
    /// [`State`] as a byte. Changes from Sleeping happen under the sleep
    /// queue's lock; Running and Runnable are set by the scheduler.
    state: AtomicU8,
    /// Set while a CPU runs the thread or switches away from it; another
    /// CPU waits for it to clear before switching to the thread.
    pub(super) on_cpu: AtomicBool,
    /// The CPU it last ran on, or [`NO_CPU`].
    pub(super) last_cpu: AtomicUsize,
    /// The CPU whose run queue holds it, or [`NO_CPU`]; changed under
    /// that run queue's lock.
    pub(super) queued_on: AtomicUsize,
    /// Scheduling priority, 0 most urgent.
    pub(super) priority: AtomicU8,
    /// CPUs it may run on ([`CpuSet`] bits).
    affinity: AtomicU64,
    /// Ticks left in its time slice; written by the CPU running it.
    pub(super) slice: AtomicU32,
    /// Not yet started: its body. Taken once, by the thread itself at its
    /// start, never from an interrupt: a plain spin lock will do.
    pub(super) entry: spin::mutex::Mutex<Option<Entry>, crate::arch::cpu::YieldRelax>,
    /// Its result, once dead.
    pub(super) result: AtomicUsize,
    /// Sleep state, owned by `kern::sleepqueue`: the channel slept on.
    pub wait_channel: AtomicUsize,
    /// Why the last sleep ended (0 or an errno), set by the waker.
    pub wake_reason: AtomicI32,
    /// Counts sleeps, so that a late timeout can tell it is stale.
    pub sleep_generation: AtomicU64,
    /// The current sleep may be interrupted.
    pub interruptible: AtomicBool,
    /// `FLAG_*` requests to act on at the next kernel boundary.
    pub(super) flags: AtomicU32,
    /// The group (process) it belongs to, fixed at creation.
    pub group: Option<Arc<ThreadGroup>>,
}

/// Threads alive (created and not yet freed), idle threads excluded.
static THREADS: AtomicUsize = AtomicUsize::new(0);
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

impl Thread {
    /// A thread that will run `entry` on `stack`.
    pub(super) fn new(
        stack: KernelStack,
        entry: Entry,
        priority: u8,
        affinity: CpuSet,
        group: Option<Arc<ThreadGroup>>,
    ) -> Self {
        THREADS.fetch_add(1, Ordering::Relaxed);
        Self::build(
            stack.slot(),
            Some(stack),
            false,
            Some(entry),
            priority,
            affinity,
            group,
        )
    }

    /// The boot thread of `cpu`, which becomes its idle thread.
    pub(super) fn boot(cpu: usize) -> Self {
        let context = crate::arch::context::boot_context(cpu);
        let thread = Self::build(
            context,
            None,
            true,
            None,
            u8::MAX,
            CpuSet::single(cpu),
            None,
        );
        thread.set_state(State::Running);
        thread.on_cpu.store(true, Ordering::Relaxed);
        thread.last_cpu.store(cpu, Ordering::Relaxed);
        thread
    }

    fn build(
        context: usize,
        stack: Option<KernelStack>,
        is_idle: bool,
        entry: Option<Entry>,
        priority: u8,
        affinity: CpuSet,
        group: Option<Arc<ThreadGroup>>,
    ) -> Self {
        Self {
            tid: NEXT_TID.fetch_add(1, Ordering::Relaxed) << CONTEXT_BITS | context as u64,
            context,
            stack,
            is_idle,
            state: AtomicU8::new(State::Runnable as u8),
            on_cpu: AtomicBool::new(false),
            last_cpu: AtomicUsize::new(NO_CPU),
            queued_on: AtomicUsize::new(NO_CPU),
            priority: AtomicU8::new(priority),
            affinity: AtomicU64::new(affinity.bits()),
            slice: AtomicU32::new(0),
            entry: spin::mutex::Mutex::new(entry),
            result: AtomicUsize::new(0),
            wait_channel: AtomicUsize::new(0),
            wake_reason: AtomicI32::new(0),
            sleep_generation: AtomicU64::new(0),
            interruptible: AtomicBool::new(false),
            flags: AtomicU32::new(0),
            group,
        }
    }

    /// Its state.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Running,
            1 => State::Runnable,
            2 => State::Sleeping,
            _ => State::Dead,
        }
    }

    /// Sets its state.
    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Moves it from `from` to `to` if it is in `from`.
    pub fn transition(&self, from: State, to: State) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// CPUs it may run on.
    pub fn affinity(&self) -> CpuSet {
        CpuSet::from_bits(self.affinity.load(Ordering::Acquire))
    }

    pub(super) fn set_affinity_bits(&self, set: CpuSet) {
        self.affinity.store(set.bits(), Ordering::Release);
    }

    /// Its priority.
    pub fn priority(&self) -> u8 {
        self.priority.load(Ordering::Relaxed)
    }

    /// Pending `FLAG_*` requests.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    /// The address used as this thread's own wait channel (joiners sleep
    /// on it).
    pub fn channel(&self) -> usize {
        self as *const Self as usize
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            stack.recycle();
        }
        if !self.is_idle {
            THREADS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Threads alive, idle threads excluded.
pub fn count() -> usize {
    THREADS.load(Ordering::Relaxed)
}
