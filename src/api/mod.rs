//! The payload interface: the only module payloads use.
//!
//! What exists so far: the machine's CPUs and clock, heap figures for leak
//! checks, running work on a chosen CPU, and the test-case types. The
//! process, thread, signal and descriptor calls of `shared/API.md` join
//! this module as the layers below them land; names here stay stable.

pub mod errno;
pub mod test;

use core::time::Duration;

pub use crate::arch::esr::{EC_BRK, EC_DATA_ABORT_SAME_EL, Fault};
pub use crate::config::MAX_CPUS;
pub use errno::Errno;

use crate::kern::{clock, heap, interrupt, machine, smp};
use crate::platform::bootargs::BootArgs;
use crate::sched::ast::KernelEntry;

/// The CPU the caller runs on (`0..ncpus()`).
pub fn getcpu() -> usize {
    crate::arch::cpu::id()
}

/// CPUs running the kernel.
pub fn ncpus() -> usize {
    smp::online_count()
}

/// Time since boot, from the generic timer (monotonic; its resolution is
/// one counter tick, 16 ns in QEMU).
pub fn now() -> Duration {
    Duration::from_nanos(clock::uptime_ns())
}

/// The raw virtual counter, for benchmarks.
pub fn cycles() -> u64 {
    crate::arch::timer::counter()
}

/// Frequency of [`cycles`] in Hz.
pub fn cycles_per_second() -> u64 {
    crate::arch::timer::frequency()
}

/// Heap bytes in use right now, to show that nothing leaked.
pub fn heap_in_use() -> usize {
    heap::in_use()
}

/// A pause inside a spin-wait loop (lets an emulated CPU being waited for
/// run).
pub fn cpu_relax() {
    crate::arch::cpu::relax();
}

/// Waits, without sleeping, until `duration` has passed.
pub fn spin_for(duration: Duration) {
    let end = now() + duration;
    while now() < end {
        crate::arch::cpu::relax();
    }
}

/// Why [`run_on_cpu`] returned no result.
pub use crate::kern::smp::RunError;

/// Runs `job` on CPU `cpu` and returns its result; a synchronous exception
/// in the job comes back as [`RunError::Fault`] with its class.
///
/// # Errors
/// [`RunError::Offline`] for a CPU that is not running, and
/// [`RunError::Fault`] as above.
pub fn run_on_cpu<R, F>(cpu: usize, job: F) -> Result<R, RunError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let _kernel = KernelEntry::enter();
    smp::run_on(cpu, job)
}

pub use crate::sched::cpuset::CpuSet;
pub use crate::sched::thread::{PRIORITY_NORMAL, Tid};

/// How [`thread_spawn_with`] makes a thread.
#[derive(Clone, Copy, Debug)]
pub struct ThreadOptions {
    /// Priority, 0 most urgent, 255 least; [`PRIORITY_NORMAL`] by default.
    pub priority: u8,
    /// CPUs the thread may run on; all by default.
    pub affinity: CpuSet,
}

impl Default for ThreadOptions {
    fn default() -> Self {
        Self {
            priority: PRIORITY_NORMAL,
            affinity: CpuSet::ALL,
        }
    }
}

impl ThreadOptions {
    /// A thread of normal priority pinned to `cpu`.
    pub fn pinned(cpu: usize) -> Self {
        Self {
            affinity: CpuSet::single(cpu),
            ..Self::default()
        }
    }
}

/// A new thread running `entry(argument)`; its return value is the
/// thread's result, collected by [`thread_join`].
///
/// # Errors
/// `ENOMEM` without memory for its stack, `EAGAIN` when no more threads
/// can exist.
pub fn thread_spawn(entry: fn(usize) -> usize, argument: usize) -> Result<Tid, Errno> {
    thread_spawn_with(move || entry(argument), ThreadOptions::default())
}

/// A new thread running the closure `body`, with `options`.
///
/// # Errors
/// As [`thread_spawn`], and `EINVAL` for an affinity with no online CPU.
pub fn thread_spawn_with(
    body: impl FnOnce() -> usize + Send + 'static,
    options: ThreadOptions,
) -> Result<Tid, Errno> {
    // Short and never sleeping: the entry is counted with IRQs masked
    // throughout, which costs less than a `KernelEntry`.
    let irq = crate::arch::cpu::irq_save();
    crate::sched::ast::enter_masked();
    // A thread's threads belong to its group.
    let group = if crate::sched::scheduler::current_in_group() {
        crate::sched::scheduler::current().group.clone()
    } else {
        None
    };
    let spawned = spawn_thread(body, options, group);
    crate::sched::ast::leave_masked();
    crate::arch::cpu::irq_restore(irq);
    spawned
}

fn spawn_thread(
    body: impl FnOnce() -> usize + Send + 'static,
    options: ThreadOptions,
    group: Option<alloc::sync::Arc<crate::sched::group::ThreadGroup>>,
) -> Result<Tid, Errno> {
    let options = crate::sched::SpawnOptions {
        priority: options.priority,
        affinity: options.affinity,
        group,
    };
    let thread = crate::sched::spawn(alloc::boxed::Box::new(body), options)?;
    let tid = thread.tid;
    crate::sched::registry::insert(thread);
    Ok(tid)
}

/// Ends the calling thread with `result`.
pub fn thread_exit(result: usize) -> ! {
    crate::sched::exit_current(result)
}

/// Waits for thread `tid` to end and returns its result; the thread is
/// then gone.
///
/// # Errors
/// `ESRCH` if no such thread exists (or it was joined already), `EDEADLK`
/// for the caller itself.
pub fn thread_join(tid: Tid) -> Result<usize, Errno> {
    let _kernel = KernelEntry::enter();
    if tid == gettid() {
        return Err(Errno::EDEADLK);
    }
    let thread = crate::sched::registry::remove(tid).ok_or(Errno::ESRCH)?;
    Ok(crate::sched::join(thread))
}

/// The caller's thread id.
pub fn gettid() -> Tid {
    crate::sched::scheduler::current_tid()
}

/// Gives the CPU to another runnable thread of the same or a more urgent
/// priority, if there is one.
pub fn sched_yield() {
    crate::sched::yield_now();
}

/// Sleeps for `duration` (rounded up to the 1 ms tick).
///
/// # Errors
/// `EINTR` when the sleep is interrupted (an order to exit or suspend).
pub fn sleep(duration: Duration) -> Result<(), Errno> {
    let _kernel = KernelEntry::enter();
    // A channel of its own, distinct from the one its joiners sleep on.
    let channel = crate::sched::scheduler::current().channel() + 1;
    let result = crate::kern::sleepqueue::sleep::<()>(
        channel,
        None,
        crate::kern::sleepqueue::SleepFlags {
            interruptible: true,
        },
        Some(duration),
    );
    match result {
        Err(Errno::EWOULDBLOCK) => Ok(()),
        Err(Errno::ERESTART) => Err(Errno::EINTR),
        other => other,
    }
}

/// Pins thread `tid` (0: the caller) to the CPUs of `set`; a thread that
/// runs or waits elsewhere moves.
///
/// # Errors
/// `ESRCH` for an unknown thread, `EINVAL` for a set without an online
/// CPU.
pub fn cpuset_setaffinity(tid: Tid, set: CpuSet) -> Result<(), Errno> {
    let _kernel = KernelEntry::enter();
    if set
        .intersection(crate::sched::scheduler::online())
        .is_empty()
    {
        return Err(Errno::EINVAL);
    }
    let thread = thread_by_id(tid)?;
    crate::sched::scheduler::set_affinity(&thread, set);
    Ok(())
}

/// The CPUs thread `tid` (0: the caller) may run on.
///
/// # Errors
/// `ESRCH` for an unknown thread.
pub fn cpuset_getaffinity(tid: Tid) -> Result<CpuSet, Errno> {
    let _kernel = KernelEntry::enter();
    Ok(thread_by_id(tid)?.affinity())
}

fn thread_by_id(tid: Tid) -> Result<alloc::sync::Arc<crate::sched::thread::Thread>, Errno> {
    if tid == 0 || tid == gettid() {
        return Ok(crate::sched::scheduler::current());
    }
    crate::sched::registry::find(tid).ok_or(Errno::ESRCH)
}

/// Threads alive (not yet freed), idle threads excluded.
pub fn nthreads() -> usize {
    crate::sched::thread::count()
}

/// Kernel mechanisms that tests of the kernel itself exercise directly:
/// sleep queues, callouts, locks, scheduler figures.
pub mod kernel {
    pub use crate::kern::callout::Callout;
    pub use crate::kern::lock::{SpinLockIrq, SpinLockIrqGuard};
    pub use crate::kern::mutex::{Mutex, MutexGuard};
    pub use crate::kern::sleepqueue::{SleepFlags, sleep, wakeup, wakeup_one};
    pub use crate::kern::sx::{SxExclusiveGuard, SxLock, SxSharedGuard};
    pub use crate::sched::scheduler::CpuFigures;

    /// Callouts pending on all CPUs.
    pub fn callouts_pending() -> u64 {
        crate::kern::callout::pending()
    }

    /// Threads in sleep queues.
    pub fn sleeping_threads() -> usize {
        crate::kern::sleepqueue::sleeping()
    }

    /// Scheduler figures of `cpu`.
    pub fn sched_figures(cpu: usize) -> CpuFigures {
        crate::sched::scheduler::figures(cpu)
    }

    /// Thread stacks allocated (the kernel's cache of free stacks
    /// included).
    pub fn stacks_in_use() -> usize {
        crate::arch::mmu::stacks_in_use()
    }

    pub use crate::sched::group::{SingleMode, ThreadGroup};

    /// A new thread in `group` (a stand-in for a process until processes
    /// exist), running `body`.
    ///
    /// # Errors
    /// As [`super::thread_spawn_with`].
    pub fn spawn_in_group(
        group: &alloc::sync::Arc<ThreadGroup>,
        body: impl FnOnce() -> usize + Send + 'static,
        options: super::ThreadOptions,
    ) -> Result<super::Tid, super::Errno> {
        let _kernel = super::KernelEntry::enter();
        super::spawn_thread(body, options, Some(group.clone()))
    }

    /// Stops every other thread of the caller's group (`thread_single`).
    ///
    /// # Errors
    /// `EINVAL` outside a group, `EBUSY` when another member is
    /// single-threading it already.
    pub fn thread_single(mode: SingleMode) -> Result<(), super::Errno> {
        let _kernel = super::KernelEntry::enter();
        crate::sched::group::thread_single(mode)
    }

    /// Resumes the threads suspended by the caller's `thread_single`.
    ///
    /// # Errors
    /// `EINVAL` if the caller is not single-threading its group.
    pub fn thread_single_end() -> Result<(), super::Errno> {
        let _kernel = super::KernelEntry::enter();
        crate::sched::group::thread_single_end()
    }

    /// Marks the caller as inside the kernel while the value lives: orders
    /// to exit or suspend wait until it is dropped (a kernel boundary).
    pub fn enter_kernel() -> super::KernelEntry {
        super::KernelEntry::enter()
    }
}

/// The machine as the kernel sees it, for tests of the boot.
pub mod machine_info {
    use super::*;

    /// Bytes of RAM the machine description lists.
    pub fn memory_bytes() -> u64 {
        machine::machine().memory.total_bytes()
    }

    /// CPUs the description lists.
    pub fn cpus_described() -> usize {
        machine::machine().cpus_described
    }

    /// Whether the description came from a device tree.
    pub fn from_device_tree() -> bool {
        matches!(
            machine::machine().source,
            crate::platform::machine::Source::DeviceTree { .. }
        )
    }

    /// A `key=value` boot argument as a number.
    pub fn boot_number(key: &str) -> Option<u64> {
        BootArgs::new(machine::machine().bootargs.as_str()).number(key)
    }

    /// Whether the boot arguments contain `flag`.
    pub fn boot_flag(flag: &str) -> bool {
        BootArgs::new(machine::machine().bootargs.as_str()).has(flag)
    }

    /// Timer interrupts taken by `cpu`.
    pub fn timer_ticks(cpu: usize) -> u64 {
        clock::ticks(cpu)
    }

    /// Interrupts of any kind handled by `cpu`.
    pub fn interrupts_handled(cpu: usize) -> u64 {
        interrupt::handled(cpu)
    }

    /// Reads an address that nothing maps: a data abort.
    pub fn read_unmapped() -> u64 {
        crate::arch::exception::read_unmapped()
    }

    /// Executes a `brk`: a breakpoint exception.
    pub fn breakpoint() {
        crate::arch::exception::breakpoint()
    }
}
