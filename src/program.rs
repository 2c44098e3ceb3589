//! What the kernel runs once it is up, chosen by the boot arguments:
//! - `test`: the test runner (`harness`);
//! - `bench`: the benchmarks (`bench`);
//! - `panic_test`: an unhandled exception on CPU 1, to check that a panic
//!   on a secondary CPU is reported and fails the run;
//! - otherwise the demonstration: every CPU up and ticking.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use log::info;

use crate::api::kernel::{self, CpuFigures};
use crate::api::{self, MAX_CPUS, ThreadOptions, machine_info};
use crate::kern::smp;
use crate::platform::bootargs::BootArgs;
use crate::sched::SpawnOptions;
use crate::sched::cpuset::CpuSet;

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

/// Shows every CPU up and ticking, then the scheduler at work: threads
/// spread over all CPUs by placement and stealing, some pinned, sleeping,
/// yielding and spinning, with a per-CPU summary at the end.
fn demonstrate_cpus() -> u32 {
    let cpus = api::ncpus();
    let ticks_before: [u64; MAX_CPUS] = core::array::from_fn(machine_info::timer_ticks);
    for cpu in 0..cpus {
        match api::run_on_cpu(cpu, api::getcpu) {
            Ok(answer) => info!("cpu{cpu}: up, answered from cpu{answer}"),
            Err(error) => info!("cpu{cpu}: {error}"),
        }
    }
    let figures_before: [CpuFigures; MAX_CPUS] = core::array::from_fn(kernel::sched_figures);

    // 4 threads per CPU, all started from this one: the idle CPUs steal
    // them and the placement rule spreads their wake-ups.
    static RAN_ON: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
    let mut tids = alloc::vec::Vec::new();
    for index in 0..4 * cpus {
        let body = move || {
            let mut seen = 0usize;
            for step in 0..20 {
                seen |= 1 << api::getcpu();
                RAN_ON[api::getcpu()].fetch_add(1, Ordering::Relaxed);
                match (index + step) % 3 {
                    0 => api::spin_for(Duration::from_micros(300)),
                    1 => api::sched_yield(),
                    _ => {
                        let _ = api::sleep(Duration::from_millis(1));
                    }
                }
            }
            seen
        };
        match api::thread_spawn_with(body, ThreadOptions::default()) {
            Ok(tid) => tids.push(tid),
            Err(error) => log::error!("demo: spawn failed: {error}"),
        }
    }
    let mut movers = 0;
    for tid in tids {
        if let Ok(seen) = api::thread_join(tid) {
            movers += usize::from(seen.count_ones() > 1);
        }
    }

    let mut all_ticking = true;
    info!("cpu   ticks  steps  switches  steals");
    for cpu in 0..cpus {
        let ticks = machine_info::timer_ticks(cpu) - ticks_before[cpu];
        all_ticking &= ticks > 0;
        let figures = kernel::sched_figures(cpu);
        info!(
            "cpu{cpu} {ticks:>7} {:>6} {:>9} {:>7}",
            RAN_ON[cpu].load(Ordering::Relaxed),
            figures.switches - figures_before[cpu].switches,
            figures.steals - figures_before[cpu].steals
        );
    }
    let busy = (0..cpus)
        .filter(|&c| RAN_ON[c].load(Ordering::Relaxed) > 0)
        .count();
    info!(
        "{} threads on {busy} of {cpus} CPUs ({movers} moved between CPUs); {}",
        4 * cpus,
        if all_ticking {
            "every CPU ticking"
        } else {
            "NOT every CPU ticking"
        }
    );
    u32::from(!all_ticking || busy < cpus)
}

/// Sends CPU 1 a job that reads unmapped memory, with no fault recovery.
fn panic_on_secondary() -> u32 {
    if !smp::is_online(1) {
        log::error!("panic_test needs a second CPU");
        return 2;
    }
    let options = SpawnOptions {
        affinity: CpuSet::single(1),
        ..SpawnOptions::default()
    };
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
