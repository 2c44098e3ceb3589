//! Secondary CPUs: starting them, and running work on a chosen CPU.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::lock::SpinLockIrq;
use crate::api::Errno;
use crate::arch::esr::Fault;
use crate::arch::{boot, exception, timer};
use crate::config::MAX_CPUS;
use crate::platform::machine::{EnableMethod, Machine};
use crate::sched::cpuset::CpuSet;
use crate::sched::{self, SpawnOptions};

/// How long a starting CPU has to report itself online.
const START_TIMEOUT_MS: u64 = 1000;

/// Per CPU: whether it runs the kernel. Set once by the CPU itself.
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Number of CPUs online.
static ONLINE_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Why [`run_on`] could not deliver a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The CPU does not exist or is not online.
    Offline(usize),
    /// No thread could be made to run the job.
    NoThread(Errno),
    /// The job took a synchronous exception.
    Fault(Fault),
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Offline(cpu) => write!(f, "cpu{cpu} is not online"),
            Self::NoThread(errno) => write!(f, "no thread for the job: {errno}"),
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
/// how many came up. A CPU that fails to start is reported and skipped.
pub fn start_secondaries(machine: &Machine) -> usize {
    let entry = boot::secondary_entry_address();
    let psci = machine.psci.map(crate::drivers::probe::psci);
    for cpu in 1..machine.cpu_count {
        let description = machine.cpus[cpu];
        boot::prepare_secondary(cpu);
        let started = match description.enable_method {
            EnableMethod::Psci => match psci {
                Some(psci) => psci
                    .cpu_on(description.mpidr, entry, cpu as u64)
                    .map_err(|e| {
                        log::warn!(
                            "cpu{cpu} (mpidr {:#x}): CPU_ON failed: {e}",
                            description.mpidr
                        )
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
        crate::arch::cpu::relax();
    }
    false
}

/// Runs `job` on `cpu`, in a thread pinned there, and returns its result.
///
/// # Errors
/// [`RunError::Offline`] for a CPU that is not running;
/// [`RunError::NoThread`] when no thread can be made;
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
    let result: Arc<SpinLockIrq<Option<Result<R, Fault>>>> = Arc::new(SpinLockIrq::new(None));
    let slot = result.clone();
    let options = SpawnOptions {
        affinity: CpuSet::single(cpu),
        ..SpawnOptions::default()
    };
    let body = Box::new(move || {
        *slot.lock() = Some(exception::catch_fault(job));
        0
    });
    let thread = sched::spawn(body, options).map_err(|e| RunError::NoThread(e.into()))?;
    sched::join(thread);
    let outcome = result
        .lock()
        .take()
        .expect("the job stores its outcome before it ends");
    outcome.map_err(RunError::Fault)
}
