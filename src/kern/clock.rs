//! Time: the monotonic clock and each CPU's periodic tick.
//!
//! The clock is the generic timer's virtual counter, converted to
//! nanoseconds. Each CPU arms its own virtual timer for the next tick; the
//! tick handler counts ticks per CPU and runs the test watchdog.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::timer;
use crate::config::{MAX_CPUS, TICK_HZ};

/// Counter value at boot, the origin of [`uptime_ns`].
static BOOT_COUNT: AtomicU64 = AtomicU64::new(0);
/// Counter ticks between two timer interrupts.
static TICK_PERIOD: AtomicU64 = AtomicU64::new(0);
/// Per CPU: timer interrupts taken. Written by its CPU, read by anyone.
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: the counter value of its next tick. Owning CPU only.
static NEXT_TICK: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Starts the clock; on the boot CPU, before any CPU starts its tick.
pub fn init() {
    BOOT_COUNT.store(timer::counter(), Ordering::Relaxed);
    TICK_PERIOD.store(timer::frequency() / TICK_HZ, Ordering::Relaxed);
}

/// Nanoseconds since boot.
pub fn uptime_ns() -> u64 {
    let elapsed = timer::counter().wrapping_sub(BOOT_COUNT.load(Ordering::Relaxed));
    counts_to_ns(elapsed)
}

/// Converts counter ticks to nanoseconds.
pub fn counts_to_ns(counts: u64) -> u64 {
    let frequency = timer::frequency().max(1);
    (u128::from(counts) * 1_000_000_000 / u128::from(frequency)) as u64
}

/// Starts this CPU's periodic tick.
pub fn start_tick(cpu: usize) {
    let deadline = timer::counter() + TICK_PERIOD.load(Ordering::Relaxed);
    NEXT_TICK[cpu].store(deadline, Ordering::Relaxed);
    timer::set_deadline(deadline);
}

/// The timer interrupt: count it and arm the next one.
///
/// The next deadline is the previous one plus a period, so ticks do not
/// drift; after a long masked stretch it restarts from now instead of
/// firing a burst of stale ticks.
pub fn handle_tick(cpu: usize) {
    TICKS[cpu].fetch_add(1, Ordering::Relaxed);
    let period = TICK_PERIOD.load(Ordering::Relaxed);
    let now = timer::counter();
    let mut next = NEXT_TICK[cpu].load(Ordering::Relaxed) + period;
    if next <= now {
        next = now + period;
    }
    NEXT_TICK[cpu].store(next, Ordering::Relaxed);
    timer::set_deadline(next);
    crate::harness::watchdog::check(now);
    super::callout::expire(cpu, TICKS[cpu].load(Ordering::Relaxed));
    crate::sched::scheduler::tick(cpu);
}

/// Timer interrupts taken so far by `cpu`.
pub fn ticks(cpu: usize) -> u64 {
    TICKS[cpu].load(Ordering::Relaxed)
}
