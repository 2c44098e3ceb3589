//! A thread's life: spawn, start, yield, exit, join.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::cpuset::CpuSet;
use super::group::ThreadGroup;
use super::scheduler;
use super::thread::{Entry, PRIORITY_NORMAL, State, Thread};
use crate::api::Errno;
use crate::arch::mmu::{KernelStack, StackError};
use crate::arch::{context, cpu};
use crate::kern::sleepqueue;

/// How a new thread runs.
#[derive(Clone)]
pub struct SpawnOptions {
    /// Priority, 0 most urgent.
    pub priority: u8,
    /// CPUs it may run on.
    pub affinity: CpuSet,
    /// The group it joins, if any.
    pub group: Option<Arc<ThreadGroup>>,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self {
            priority: PRIORITY_NORMAL,
            affinity: CpuSet::ALL,
            group: None,
        }
    }
}

/// Why a thread could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No memory for its stack.
    NoMemory,
    /// Every stack slot is taken.
    TooManyThreads,
    /// The affinity names no CPU that runs.
    NoCpu,
}

impl From<SpawnError> for Errno {
    fn from(error: SpawnError) -> Self {
        match error {
            SpawnError::NoMemory => Errno::ENOMEM,
            SpawnError::TooManyThreads => Errno::EAGAIN,
            SpawnError::NoCpu => Errno::EINVAL,
        }
    }
}

/// Creates a thread running `entry` and makes it runnable.
///
/// # Errors
/// [`SpawnError`]; nothing is left allocated then.
pub fn spawn(entry: Entry, options: SpawnOptions) -> Result<Arc<Thread>, SpawnError> {
    if options
        .affinity
        .intersection(scheduler::online())
        .is_empty()
    {
        return Err(SpawnError::NoCpu);
    }
    let stack = KernelStack::new().map_err(|error| match error {
        StackError::NoMemory => SpawnError::NoMemory,
        StackError::NoSlot => SpawnError::TooManyThreads,
    })?;
    context::prepare(stack.slot(), stack.top(), thread_start, 0);
    let group = options.group.clone();
    let thread = Arc::new(Thread::new(
        stack,
        entry,
        options.priority,
        options.affinity,
        group,
    ));
    if let Some(group) = thread.group.as_ref() {
        group.join(&thread);
    }
    log::debug!("tid={} spawned, priority {}", thread.tid, options.priority);
    scheduler::enqueue(thread.clone());
    Ok(thread)
}

/// First code of every thread (through `arch::context`'s trampoline).
extern "C" fn thread_start(_: usize) -> ! {
    scheduler::finish_switch();
    super::ast::restore_depth(0);
    let me = scheduler::current();
    let entry = me.entry.lock().take().expect("a new thread has a body");
    // A thread born into a group being single-threaded stops before its
    // first instruction of payload code. IRQs are still masked: an
    // interrupt now would find this frame holding `me`.
    if me.flags() != 0 {
        super::ast::at_boundary(me);
    } else {
        drop(me);
    }
    cpu::irq_enable();
    let result = entry();
    exit_current(result)
}

/// Gives the CPU to another runnable thread of at least the same
/// priority, if there is one.
///
/// A call into the kernel and back: the return is a kernel boundary. The
/// entry is counted with IRQs masked across the switch, which costs less
/// than a [`super::ast::KernelEntry`] around it.
pub fn yield_now() {
    let irq = cpu::irq_save();
    super::ast::enter_masked();
    scheduler::schedule();
    super::ast::leave_masked();
    cpu::irq_restore(irq);
}

/// Ends the calling thread with `result`: joiners wake, and its memory
/// goes once its CPU has switched away and the last reference drops.
pub fn exit_current(result: usize) -> ! {
    // From here on no interrupt may switch this thread out while this
    // frame still holds a reference to it.
    cpu::irq_save();
    let me = scheduler::current();
    me.result.store(result, Ordering::Relaxed);
    log::debug!("tid={} exits, result {result}", me.tid);
    if let Some(group) = me.group.as_ref() {
        group.leave(&me);
    }
    // Dead, under the sleep queue's lock: a joiner that checks the state
    // under the same lock either sees it dead or is woken here.
    sleepqueue::wakeup_after(me.channel(), || me.set_state(State::Dead));
    drop(me);
    scheduler::schedule();
    unreachable!("a dead thread ran again")
}

/// Waits until `thread` has exited and is off its CPU, then returns its
/// result; `thread` is freed when the caller's reference was the last.
///
/// The caller must hold the only other reference (besides the scheduler's
/// own while the thread runs), or the final wait does not end.
pub fn join(thread: Arc<Thread>) -> usize {
    sleepqueue::wait_until(thread.channel(), || thread.state() == State::Dead);
    // The exiting CPU still refers to it until the next thread has
    // switched in: a few hundred instructions at most.
    let mut spins = 0u64;
    while Arc::strong_count(&thread) > 1 {
        spins += 1;
        if spins == 1 << 24 {
            log::error!(
                "join of tid={}: {} other references after its exit (on_cpu {}, queued on {})",
                thread.tid,
                Arc::strong_count(&thread) - 1,
                thread.on_cpu.load(Ordering::Relaxed),
                thread.queued_on.load(Ordering::Relaxed) as isize
            );
        }
        crate::arch::cpu::relax();
    }
    thread.result.load(Ordering::Relaxed)
}
