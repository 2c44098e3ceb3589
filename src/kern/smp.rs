//! Secondary CPUs: starting them, and running work on a chosen CPU.
//!
//! Until the scheduler takes over, a secondary CPU that has nothing to do
//! waits in `wfi` for its mailbox to fill. [`run_on`] puts a job in the
//! mailbox, sends the CPU an SGI, and waits for the result; a synchronous
//! exception in the job is returned as an error naming its class instead
//! of bringing the kernel down.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::interrupt::{self, SGI_WAKE};
use super::lock::SpinLockIrq;
use crate::arch::esr::Fault;
use crate::arch::{boot, cpu, exception, timer};
use crate::config::MAX_CPUS;
use crate::platform::machine::{EnableMethod, Machine};

/// How long a starting CPU has to report itself online.
const START_TIMEOUT_MS: u64 = 1000;

type Job = Box<dyn FnOnce() + Send>;

/// Per CPU: whether it runs the kernel. Set once by the CPU itself.
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Number of CPUs online.
static ONLINE_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Per CPU: the job it should run next, with its ticket.
static MAILBOX: [SpinLockIrq<Option<(u64, Job)>>; MAX_CPUS] =
    [const { SpinLockIrq::new(None) }; MAX_CPUS];
/// Per CPU: tickets handed out so far (the last one issued).
static POSTED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: the ticket of the last job it finished, its memory freed.
static COMPLETED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Why [`run_on`] could not deliver a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The CPU does not exist or is not online.
    Offline(usize),
    /// The job took a synchronous exception.
    Fault(Fault),
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Offline(cpu) => write!(f, "cpu{cpu} is not online"),
            Self::Fault(fault) => write!(f, "{fault}"),
        }
    }
}

/// Marks this CPU online; each CPU calls it once, at the end of its boot.
pub fn mark_online(cpu: usize) {
    ONLINE_COUNT.fetch_add(1, Ordering::Relaxed);
    ONLINE[cpu].store(true, Ordering::Release);
}

/// Whether `cpu` is online.
pub fn is_online(cpu: usize) -> bool {
    cpu < MAX_CPUS && ONLINE[cpu].load(Ordering::Acquire)
}

/// CPUs online.
pub fn online_count() -> usize {
    ONLINE_COUNT.load(Ordering::Relaxed)
}

/// Starts every secondary CPU of `machine`, one at a time, and returns
/// how many came up. A CPU that fails to start is reported and skipped;
/// the logical ids of those after it stay as the tree orders them.
pub fn start_secondaries(machine: &Machine) -> usize {
    let entry = boot::secondary_entry_address();
    let psci = machine.psci.map(crate::drivers::probe::psci);
    for cpu in 1..machine.cpu_count {
        let description = machine.cpus[cpu];
        boot::prepare_secondary(cpu);
        let started = match description.enable_method {
            EnableMethod::Psci => match psci {
                Some(psci) => psci.cpu_on(description.mpidr, entry, cpu as u64).map_err(|e| {
                    log::warn!("cpu{cpu} (mpidr {:#x}): CPU_ON failed: {e}", description.mpidr)
                }),
                None => {
                    log::warn!("cpu{cpu}: enable method PSCI, but no PSCI node");
                    Err(())
                }
            },
            EnableMethod::SpinTable { release_address } => {
                crate::drivers::probe::release_spin_table(release_address, entry);
                Ok(())
            }
            EnableMethod::Unknown => {
                log::warn!("cpu{cpu}: no enable method, left parked");
                Err(())
            }
        };
        if started.is_ok() && !wait_online(cpu) {
            log::error!("cpu{cpu} (mpidr {:#x}) did not come up", description.mpidr);
        }
    }
    online_count()
}

fn wait_online(cpu: usize) -> bool {
    let deadline = timer::counter() + timer::frequency() * START_TIMEOUT_MS / 1000;
    while timer::counter() < deadline {
        if is_online(cpu) {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// Runs `job` on `cpu` and returns its result. On the calling CPU it runs
/// at once; elsewhere it waits until that CPU is idle.
///
/// # Errors
/// [`RunError::Offline`] for a CPU that is not running;
/// [`RunError::Fault`] if the job took a synchronous exception (what it
/// owned is leaked, see `arch::exception::catch_fault`).
pub fn run_on<R, F>(cpu: usize, job: F) -> Result<R, RunError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    if !is_online(cpu) {
        return Err(RunError::Offline(cpu));
    }
    if cpu == cpu::id() {
        return exception::catch_fault(job).map_err(RunError::Fault);
    }
    let result: Arc<SpinLockIrq<Option<Result<R, Fault>>>> = Arc::new(SpinLockIrq::new(None));
    let slot = result.clone();
    let ticket = send_job(
        cpu,
        Box::new(move || {
            let outcome = exception::catch_fault(job);
            *slot.lock() = Some(outcome);
        }),
    );
    // Wait until the job has run and its box is freed on the other CPU,
    // so that the caller sees the heap as it was before the call.
    while COMPLETED[cpu].load(Ordering::Acquire) < ticket {
        cpu::wait_for_event();
    }
    let outcome = result.lock().take().expect("the job stores its outcome before completing");
    outcome.map_err(RunError::Fault)
}

/// Puts `job` in the mailbox of `cpu` (waiting for the previous job to be
/// taken: the mailbox has one slot) and wakes the CPU. Returns the job's
/// ticket: the job is done, and freed, once `COMPLETED[cpu]` reaches it.
/// The job runs without fault recovery: an exception in it is a panic.
pub fn send_job(cpu: usize, job: Box<dyn FnOnce() + Send>) -> u64 {
    let mut job = Some(job);
    let mut ticket = 0;
    while job.is_some() {
        let mut mailbox = MAILBOX[cpu].lock();
        if mailbox.is_none() {
            ticket = POSTED[cpu].fetch_add(1, Ordering::Relaxed) + 1;
            *mailbox = job.take().map(|job| (ticket, job));
        }
        drop(mailbox);
        core::hint::spin_loop();
    }
    interrupt::send_sgi(cpu, SGI_WAKE);
    ticket
}

/// What a secondary CPU does when it has nothing else to do: run jobs
/// from its mailbox, and sleep in `wfi` between them.
pub fn idle_loop(this: usize) -> ! {
    loop {
        // Check and sleep with IRQs masked: an SGI that arrives between
        // the check and `wfi` stays pending and ends the `wfi` at once.
        let state = cpu::irq_save();
        let job = MAILBOX[this].lock().take();
        match job {
            Some((ticket, job)) => {
                cpu::irq_restore(state);
                job();
                // The box is freed by now; tell the caller.
                COMPLETED[this].store(ticket, Ordering::Release);
                cpu::send_event();
            }
            None => {
                cpu::wait_for_interrupt();
                cpu::irq_restore(state);
            }
        }
    }
}
