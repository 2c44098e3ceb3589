//! The scheduler: one run queue per CPU, context switches, preemption,
//! wake-ups of other CPUs by SGI, idle, and stealing.
//!
//! # The switch protocol
//! `schedule` runs with IRQs masked. Under its run-queue lock it puts the
//! running thread back in the queue (if it is still runnable), picks the
//! most urgent thread and makes it current; then, without the lock, it
//! waits until the chosen thread's `on_cpu` flag is clear (the thread may
//! still be switching away from another CPU, where a waker found it),
//! sets it, and switches. The first thing the incoming thread does is
//! `finish_switch`: clear the outgoing thread's `on_cpu` and drop this
//! CPU's reference to it. A thread's stack is therefore in use until that
//! moment, and freed, if the thread is dead and unreferenced, right then.
//!
//! # Lock order
//! A run-queue lock is taken alone or inside a sleep-queue lock; never two
//! run-queue locks at once (stealing and migration take one, drop it, then
//! take the other). Nothing allocates under a run-queue lock: the queues
//! are sized at boot for [`QUEUE_CAPACITY`] threads (see `runqueue`).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::balance;
use super::cpuset::CpuSet;
use super::runqueue::{self, RunQueue};
use super::thread::{NO_CPU, State, Thread};
use crate::arch::{context, cpu, exception};
use crate::config::MAX_CPUS;
use crate::kern::interrupt::{self, SGI_WAKE};
use crate::kern::lock::{LockClass, SpinLockIrq};

/// Threads each priority queue of each CPU has room for.
pub const QUEUE_CAPACITY: usize = 1024;
/// Time slice of a thread, in ticks.
pub const SLICE_TICKS: u32 = 10;

/// What a CPU's run-queue lock protects.
struct Queue {
    /// The thread running on this CPU; `None` only before `init_cpu`.
    current: Option<Arc<Thread>>,
    /// Runnable threads waiting for this CPU.
    runnable: RunQueue<Arc<Thread>>,
    /// This CPU's idle thread.
    idle: Option<Arc<Thread>>,
}

/// One CPU's scheduler.
struct CpuScheduler {
    queue: SpinLockIrq<Queue>,
    /// Threads queued here, readable without the lock (for placement).
    queued: AtomicUsize,
    /// Threads queued here plus the running one if it is not idle.
    load: AtomicUsize,
    /// Priority of the running thread (`u8::MAX` when idle).
    running_priority: AtomicUsize,
    /// Id of the running thread, readable without the lock.
    running_tid: AtomicU64,
    /// Whether the running thread belongs to a group.
    running_in_group: AtomicBool,
    /// Switch at the next chance (end of interrupt, kernel boundary).
    need_resched: AtomicBool,
    /// The thread switched away from, until `finish_switch` releases it,
    /// and whether it must then be queued elsewhere (its affinity left
    /// this CPU). Touched only by this CPU with IRQs masked, so a plain
    /// spin lock (never contended) is enough.
    switching_from: spin::mutex::Mutex<Option<(Arc<Thread>, bool)>, cpu::YieldRelax>,
    /// Context switches done here.
    switches: AtomicUsize,
    /// Threads stolen by this CPU.
    steals: AtomicUsize,
}

static CPUS: [CpuScheduler; MAX_CPUS] = [const {
    CpuScheduler {
        queue: SpinLockIrq::ordered(
            LockClass::RunQueue,
            Queue {
                current: None,
                runnable: RunQueue::new(),
                idle: None,
            },
        ),
        queued: AtomicUsize::new(0),
        load: AtomicUsize::new(0),
        running_priority: AtomicUsize::new(u8::MAX as usize),
        running_tid: AtomicU64::new(0),
        running_in_group: AtomicBool::new(false),
        need_resched: AtomicBool::new(false),
        switching_from: spin::mutex::Mutex::new(None),
        switches: AtomicUsize::new(0),
        steals: AtomicUsize::new(0),
    }
}; MAX_CPUS];

/// CPUs whose scheduler runs.
static ONLINE: AtomicU64 = AtomicU64::new(0);

/// Adds `delta` to a counter that only the holder of one lock changes
/// (a CPU's run-queue lock for `queued` and `load`, the CPU itself for its
/// `switches` and `steals`): others only read it, so a load and a store
/// do, without the cost of an atomic read-modify-write on the switch path.
fn bump(counter: &AtomicUsize, delta: isize) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add_signed(delta),
        Ordering::Relaxed,
    );
}

/// Makes the code running on this CPU its boot thread, which becomes the
/// idle thread, and sizes its run queue. Each CPU calls it once, with IRQs
/// masked, before it enables them.
pub fn init_cpu(this: usize) {
    let storage = runqueue::storage(QUEUE_CAPACITY);
    let boot = Arc::new(Thread::boot(this));
    let mut queue = CPUS[this].queue.lock();
    let _ = queue.runnable.grow(storage);
    CPUS[this].running_tid.store(boot.tid, Ordering::Relaxed);
    queue.current = Some(boot.clone());
    queue.idle = Some(boot);
    drop(queue);
    ONLINE.fetch_or(1 << this, Ordering::AcqRel);
}

/// CPUs whose scheduler runs.
pub fn online() -> CpuSet {
    CpuSet::from_bits(ONLINE.load(Ordering::Acquire))
}

/// The running thread.
pub fn current() -> Arc<Thread> {
    let queue = CPUS[cpu::id()].queue.lock();
    queue
        .current
        .clone()
        .expect("the scheduler runs on this CPU")
}

/// The running thread's id, without taking a reference to it.
pub fn current_tid() -> u64 {
    let irq = cpu::irq_save();
    let tid = CPUS[cpu::id()].running_tid.load(Ordering::Relaxed);
    cpu::irq_restore(irq);
    tid
}

/// Whether the running thread belongs to a group.
pub fn current_in_group() -> bool {
    let irq = cpu::irq_save();
    let in_group = CPUS[cpu::id()].running_in_group.load(Ordering::Relaxed);
    cpu::irq_restore(irq);
    in_group
}

/// Makes `thread` (state [`State::Runnable`]) runnable on the CPU the
/// placement rule picks, and prompts that CPU if the thread should run
/// before what it runs now.
pub fn enqueue(thread: Arc<Thread>) {
    let online = online();
    let mut allowed = thread.affinity().intersection(online);
    if allowed.is_empty() {
        // Its CPUs are all offline: run it anywhere rather than never.
        allowed = online;
    }
    let on_cpu = thread.on_cpu.load(Ordering::Acquire);
    let last = thread.last_cpu.load(Ordering::Relaxed);
    if on_cpu {
        // Woken while its CPU is still switching away from it: only that
        // CPU may take it, once the switch is over. A CPU that picked it
        // elsewhere would wait for that switch, and two CPUs each waiting
        // for the other's switch would never finish theirs.
        push(last, thread);
        return;
    }
    let load = |cpu: usize| CPUS[cpu].load.load(Ordering::Relaxed);
    let target = balance::place(allowed, (last != NO_CPU).then_some(last), load);
    push(target, thread);
}

/// Queues `thread` on `target` and prompts it.
fn push(target: usize, thread: Arc<Thread>) {
    let priority = thread.priority();
    let mut queue = CPUS[target].queue.lock();
    thread.queued_on.store(target, Ordering::Relaxed);
    queue.runnable.push(thread, priority).unwrap_or_else(|_| {
        panic!("run queue of cpu{target} full: more than {QUEUE_CAPACITY} threads")
    });
    bump(&CPUS[target].queued, 1);
    bump(&CPUS[target].load, 1);
    drop(queue);
    prompt(target, priority);
}

/// Asks `target` to reschedule if a thread of `priority` should preempt
/// what it runs: by flag on this CPU, by SGI on another.
fn prompt(target: usize, priority: u8) {
    let running = CPUS[target].running_priority.load(Ordering::Relaxed);
    if (priority as usize) >= running && running != u8::MAX as usize {
        return;
    }
    let already = CPUS[target].need_resched.swap(true, Ordering::AcqRel);
    if target != cpu::id() && !already {
        interrupt::send_sgi(target, SGI_WAKE);
    }
}

/// Switches to the most urgent runnable thread of this CPU, putting the
/// running thread back in the queue if it is still runnable. Returns when
/// the calling thread runs again (at once if it is the most urgent).
pub fn schedule() {
    let irq = cpu::irq_save();
    let this = cpu::id();
    let scheduler = &CPUS[this];
    scheduler.need_resched.store(false, Ordering::Relaxed);

    // 1. Under the lock: requeue the running thread, choose the next one.
    let mut queue = scheduler.queue.lock();
    let prev = queue
        .current
        .take()
        .expect("the scheduler runs on this CPU");
    let mut elsewhere = false;
    if !prev.is_idle && prev.state() == State::Running {
        prev.set_state(State::Runnable);
        if prev.affinity().contains(this) {
            let priority = prev.priority();
            prev.queued_on.store(this, Ordering::Relaxed);
            queue
                .runnable
                .push(prev.clone(), priority)
                .unwrap_or_else(|_| panic!("run queue full"));
            bump(&scheduler.queued, 1);
        } else {
            // Its affinity moved away from this CPU.
            bump(&scheduler.load, -1);
            elsewhere = true;
        }
    } else if !prev.is_idle {
        // Asleep, dead, or woken and queued by someone else already.
        bump(&scheduler.load, -1);
    }
    // Load counts queued threads and a running non-idle one: moving a
    // thread from the queue to running leaves it unchanged.
    // A thread whose affinity changed while it waited here moves on.
    let mut misplaced = None;
    let next = loop {
        match queue.runnable.pop() {
            Some(thread) => {
                bump(&scheduler.queued, -1);
                thread.queued_on.store(NO_CPU, Ordering::Relaxed);
                if thread.affinity().contains(this) || misplaced.is_some() {
                    break thread;
                }
                bump(&scheduler.load, -1);
                misplaced = Some(thread);
            }
            None => break queue.idle.clone().expect("idle thread set at init"),
        }
    };
    // Checked in debug builds (`make test` runs one): a thread in a run
    // queue is runnable. A dead one here means it was queued twice.
    debug_assert!(
        next.is_idle || next.state() == State::Runnable,
        "tid={} queued in state {:?}",
        next.tid,
        next.state()
    );
    next.last_cpu.store(this, Ordering::Relaxed);
    next.slice.store(SLICE_TICKS, Ordering::Relaxed);
    let next_priority = if next.is_idle {
        u8::MAX
    } else {
        next.priority()
    };
    scheduler
        .running_priority
        .store(next_priority as usize, Ordering::Relaxed);
    scheduler.running_tid.store(next.tid, Ordering::Relaxed);
    scheduler
        .running_in_group
        .store(next.group.is_some(), Ordering::Relaxed);
    if Arc::ptr_eq(&next, &prev) {
        next.set_state(State::Running);
        queue.current = Some(prev);
        drop(queue);
        if let Some(thread) = misplaced {
            enqueue(thread);
        }
        cpu::irq_restore(irq);
        return;
    }
    let (prev_context, next_context) = (prev.context, next.context);

    // 2. Make `next` current. Normally it is off every CPU: a thread woken
    //    while its CPU switches away from it is queued on that CPU only
    //    (`enqueue`), and stealing and affinity changes leave such a
    //    thread alone, so no CPU waits here for another's switch (two CPUs
    //    doing that could wait for each other forever). Should it still be
    //    on another CPU, this one waits, outside its lock, for that switch
    //    to end before the thread runs here: never may a thread run twice.
    //    Its state becomes Running only then, because the other CPU decides
    //    from that state whether to queue it again.
    if next.on_cpu.load(Ordering::Acquire) {
        log::debug!("cpu{this}: tid={} still on another CPU", next.tid);
        queue.current = Some(next.clone());
        drop(queue);
        while next.on_cpu.load(Ordering::Acquire) {
            crate::arch::cpu::relax();
        }
        next.set_state(State::Running);
        next.on_cpu.store(true, Ordering::Release);
        drop(next);
    } else {
        next.set_state(State::Running);
        next.on_cpu.store(true, Ordering::Relaxed);
        queue.current = Some(next);
        drop(queue);
    }
    bump(&scheduler.switches, 1);
    *scheduler.switching_from.lock() = Some((prev, elsewhere));

    // 3. A queued thread that may not run here goes where it may. (The
    //    outgoing thread, if its affinity left, is queued once it is off
    //    this CPU, by `finish_switch`.)
    if let Some(thread) = misplaced {
        enqueue(thread);
    }

    // 4. Switch. No reference to either thread lives in this frame, so a
    //    dead `prev` is freed by `finish_switch` on the next thread.
    let recovery = exception::take_recovery();
    let depth = super::ast::take_depth();
    context::switch(prev_context, next_context);
    super::ast::restore_depth(depth);
    exception::restore_recovery(recovery);
    finish_switch();
    cpu::irq_restore(irq);
}

/// The first step of a thread after a switch: the thread switched away
/// from is now off this CPU.
pub fn finish_switch() {
    let prev = CPUS[cpu::id()].switching_from.lock().take();
    if let Some((prev, requeue)) = prev {
        prev.on_cpu.store(false, Ordering::Release);
        if requeue {
            enqueue(prev);
        }
    }
}

/// Whether this CPU should reschedule.
pub fn need_resched() -> bool {
    CPUS[cpu::id()].need_resched.load(Ordering::Relaxed)
}

/// Asks this CPU to reschedule at its next chance.
pub fn set_need_resched() {
    CPUS[cpu::id()].need_resched.store(true, Ordering::Relaxed);
}

/// The timer tick: charge the running thread, end its slice when others
/// wait.
pub fn tick(this: usize) {
    let queue = CPUS[this].queue.lock();
    let Some(current) = queue.current.as_ref() else {
        return;
    };
    if current.is_idle {
        if !queue.runnable.is_empty() {
            CPUS[this].need_resched.store(true, Ordering::Relaxed);
        }
        return;
    }
    let left = current.slice.load(Ordering::Relaxed).saturating_sub(1);
    current.slice.store(left, Ordering::Relaxed);
    if left == 0 && !queue.runnable.is_empty() {
        CPUS[this].need_resched.store(true, Ordering::Relaxed);
    }
}

/// At the end of an interrupt: switch if this CPU was asked to.
pub fn preempt_if_needed() {
    if need_resched() {
        schedule();
    }
}

/// Moves one thread from the busiest CPU's queue to this CPU's, if any
/// may run here. Returns whether one moved.
fn steal(this: usize) -> bool {
    let queued: [usize; MAX_CPUS] =
        core::array::from_fn(|c| CPUS[c].queued.load(Ordering::Relaxed));
    let Some(victim) = balance::steal_from(this, &queued, online()) else {
        return false;
    };
    let mut queue = CPUS[victim].queue.lock();
    // A thread still switching away from its CPU is left alone; so is one
    // that may not run here.
    let stolen = queue
        .runnable
        .take_first(|t| t.affinity().contains(this) && !t.on_cpu.load(Ordering::Acquire));
    if let Some(thread) = stolen.as_ref() {
        thread.queued_on.store(NO_CPU, Ordering::Relaxed);
        bump(&CPUS[victim].queued, -1);
        bump(&CPUS[victim].load, -1);
    }
    drop(queue);
    match stolen {
        Some(thread) => {
            bump(&CPUS[this].steals, 1);
            push(this, thread);
            true
        }
        None => false,
    }
}

/// The idle loop of a CPU, run by its boot thread once the CPU is up:
/// run what is queued, steal when nothing is, and wait for an interrupt.
pub fn idle_loop(this: usize) -> ! {
    loop {
        // Check and wait with IRQs masked: an SGI that arrives between the
        // check and `wfi` stays pending and ends the wait at once.
        let irq = cpu::irq_save();
        if CPUS[this].queued.load(Ordering::Relaxed) > 0 || need_resched() || steal(this) {
            schedule();
        } else {
            cpu::wait_for_interrupt();
        }
        cpu::irq_restore(irq);
    }
}

/// Changes the CPUs `thread` may run on, moving it if it runs or waits
/// where it no longer may.
pub fn set_affinity(thread: &Arc<Thread>, set: CpuSet) {
    thread.set_affinity_bits(set);

    // 1. Waiting in a queue it may no longer use: take it out, place it
    //    again. (If it left that queue meanwhile, whoever took it sees the
    //    new affinity: `schedule` moves a misplaced thread on.)
    let queued_on = thread.queued_on.load(Ordering::Relaxed);
    if queued_on != NO_CPU && !set.contains(queued_on) {
        let mut queue = CPUS[queued_on].queue.lock();
        // Not while it is still switching away from that CPU: it stays,
        // and `schedule` there sends it on once the switch is over.
        let taken = queue
            .runnable
            .take_first(|t| Arc::ptr_eq(t, thread) && !t.on_cpu.load(Ordering::Acquire));
        if let Some(taken) = taken.as_ref() {
            taken.queued_on.store(NO_CPU, Ordering::Relaxed);
            bump(&CPUS[queued_on].queued, -1);
            bump(&CPUS[queued_on].load, -1);
        }
        drop(queue);
        if let Some(taken) = taken {
            enqueue(taken);
        }
        return;
    }

    // 2. Running on a CPU it may no longer use: that CPU reschedules, and
    //    `schedule` sends it on.
    let last = thread.last_cpu.load(Ordering::Relaxed);
    if last == NO_CPU || set.contains(last) || thread.state() != State::Running {
        return;
    }
    if last == cpu::id() {
        // Only the caller runs here; it is the thread.
        schedule();
    } else if !CPUS[last].need_resched.swap(true, Ordering::AcqRel) {
        interrupt::send_sgi(last, SGI_WAKE);
    }
}

/// Figures of one CPU's scheduler.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuFigures {
    /// Context switches.
    pub switches: u64,
    /// Threads stolen from other CPUs.
    pub steals: u64,
    /// Threads queued now.
    pub queued: usize,
}

/// Figures of `cpu`'s scheduler.
pub fn figures(cpu: usize) -> CpuFigures {
    CpuFigures {
        switches: CPUS[cpu].switches.load(Ordering::Relaxed) as u64,
        steals: CPUS[cpu].steals.load(Ordering::Relaxed) as u64,
        queued: CPUS[cpu].queued.load(Ordering::Relaxed),
    }
}
