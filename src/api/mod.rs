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

/// Waits, without sleeping, until `duration` has passed.
pub fn spin_for(duration: Duration) {
    let end = now() + duration;
    while now() < end {
        core::hint::spin_loop();
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
    smp::run_on(cpu, job)
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
        matches!(machine::machine().source, crate::platform::machine::Source::DeviceTree { .. })
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
