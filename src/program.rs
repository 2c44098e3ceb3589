//! What the kernel runs once it is up, chosen by the boot arguments:
//! - `test`: the test runner (`harness`);
//! - `bench`: the benchmarks (`bench`);
//! - `panic_test`: an unhandled exception on CPU 1, to check that a panic
//!   on a secondary CPU is reported and fails the run;
//! - otherwise the demonstration: every CPU up and ticking.

use alloc::boxed::Box;
use core::time::Duration;

use log::info;

use crate::api::{self, machine_info};
use crate::kern::smp;
use crate::sched::cpuset::CpuSet;
use crate::sched::SpawnOptions;
use crate::platform::bootargs::BootArgs;

/// How long the demonstration lets the CPUs tick.
const DEMO_DURATION: Duration = Duration::from_millis(200);

/// Runs the chosen program and returns the run's exit code.
pub fn run(args: &BootArgs<'_>) -> u32 {
    if args.has("test") {
        crate::harness::run(args)
    } else if args.has("bench") {
        crate::bench::run()
    } else if args.has("panic_test") {
        panic_on_secondary()
    } else {
        demonstrate_cpus()
    }
}

/// Shows that every CPU is up and takes its timer interrupts: each CPU
/// reports itself through a cross-CPU call, then the tick counts of a
/// short interval are printed per CPU.
fn demonstrate_cpus() -> u32 {
    let cpus = api::ncpus();
    let before: [u64; crate::config::MAX_CPUS] =
        core::array::from_fn(|cpu| machine_info::timer_ticks(cpu));
    for cpu in 0..cpus {
        match api::run_on_cpu(cpu, api::getcpu) {
            Ok(answer) => info!("cpu{cpu}: up, answered from cpu{answer}"),
            Err(error) => info!("cpu{cpu}: {error}"),
        }
    }
    api::spin_for(DEMO_DURATION);
    let mut all_ticking = true;
    for cpu in 0..cpus {
        let ticks = machine_info::timer_ticks(cpu) - before[cpu];
        all_ticking &= ticks > 0;
        info!(
            "cpu{cpu}: {ticks} ticks in {} ms, {} interrupts since boot",
            DEMO_DURATION.as_millis(),
            machine_info::interrupts_handled(cpu)
        );
    }
    info!("{cpus} CPUs up, {}", if all_ticking { "all ticking" } else { "NOT all ticking" });
    u32::from(!all_ticking)
}

/// Sends CPU 1 a job that reads unmapped memory, with no fault recovery.
fn panic_on_secondary() -> u32 {
    if !smp::is_online(1) {
        log::error!("panic_test needs a second CPU");
        return 2;
    }
    let options = SpawnOptions { affinity: CpuSet::single(1), ..SpawnOptions::default() };
    let thread = crate::sched::spawn(
        Box::new(|| {
            machine_info::read_unmapped();
            0
        }),
        options,
    );
    // The panic on CPU 1 stops this CPU and ends the run.
    if let Ok(thread) = thread {
        crate::sched::join(thread);
    }
    log::error!("panic_test: the fault on cpu1 did not end the run");
    2
}
