//! Benchmarks (boot argument `bench`): each prints `BENCH <name> <ns>`,
//! virtual nanoseconds per operation, for `scripts/bench.sh`, which runs
//! them under `-icount shift=0,sleep=off` (one instruction, one virtual
//! nanosecond) so that the figures repeat exactly.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::api::kernel::{self, SleepFlags, SpinLockIrq};
use crate::api::{self, CpuSet, ThreadOptions};
use crate::println;

/// Iterations of each measurement, after a warm-up of a tenth as many.
const ROUNDS: u64 = 2000;

/// Runs every benchmark that fits this machine; returns the exit code.
pub fn run() -> u32 {
    let cpus = api::ncpus();
    log::info!("bench: {cpus} CPUs, {ROUNDS} rounds each");
    let mut failed = false;
    let mut report = |name: &str, figure: Option<u64>| match figure {
        Some(ns) => println!("BENCH {name} {ns}"),
        None => {
            println!("BENCH-FAILED {name}");
            failed = true;
        }
    };
    report("yield_switch", yield_switch());
    report("thread_spawn_join", spawn_join());
    if cpus >= 2 {
        report("wakeup_cross_cpu", wakeup_cross_cpu());
    }
    u32::from(failed)
}

fn pinned(cpu: usize) -> ThreadOptions {
    ThreadOptions {
        affinity: CpuSet::single(cpu),
        ..ThreadOptions::default()
    }
}

/// Two threads on one CPU yield to each other; the figure is one yield
/// including the switch to the other thread.
fn yield_switch() -> Option<u64> {
    let cpu = api::ncpus() - 1;
    let ready = Arc::new(AtomicUsize::new(0));
    let elapsed = Arc::new(AtomicU64::new(0));
    let mut tids = alloc::vec::Vec::new();
    for measuring in [true, false] {
        let (ready, elapsed) = (ready.clone(), elapsed.clone());
        let body = move || {
            ready.fetch_add(1, Ordering::AcqRel);
            while ready.load(Ordering::Acquire) < 2 {
                api::sched_yield();
            }
            for _ in 0..ROUNDS / 10 {
                api::sched_yield();
            }
            let start = api::now();
            for _ in 0..ROUNDS {
                api::sched_yield();
            }
            if measuring {
                elapsed.store((api::now() - start).as_nanos() as u64, Ordering::Release);
            }
            0
        };
        tids.push(api::thread_spawn_with(body, pinned(cpu)).ok()?);
    }
    for tid in tids {
        api::thread_join(tid).ok()?;
    }
    // Each round of the measuring thread is two yields (its own and the
    // other thread's), each with a switch.
    Some(elapsed.load(Ordering::Acquire) / (2 * ROUNDS))
}

/// Spawn a thread and join it, from a thread on the last CPU.
fn spawn_join() -> Option<u64> {
    let measure = || {
        for _ in 0..ROUNDS / 10 {
            let tid = api::thread_spawn(|x| x, 1).ok();
            tid.and_then(|tid| api::thread_join(tid).ok());
        }
        let start = api::now();
        for _ in 0..ROUNDS {
            let tid = api::thread_spawn(|x| x, 1).expect("bench spawn");
            api::thread_join(tid).expect("bench join");
        }
        (api::now() - start).as_nanos() as usize / ROUNDS as usize
    };
    let tid = api::thread_spawn_with(measure, ThreadOptions::default()).ok()?;
    api::thread_join(tid).ok().map(|ns| ns as u64)
}

/// A thread on CPU 1 sleeps on a channel; a thread on CPU 0 notes the time
/// and wakes it; the sleeper notes when it runs. The figure is the mean of
/// the differences.
fn wakeup_cross_cpu() -> Option<u64> {
    struct Shared {
        /// (wake-up requested, time of the request in ns)
        state: SpinLockIrq<(bool, u64)>,
        total: AtomicU64,
        asleep: AtomicBool,
    }
    let shared = Arc::new(Shared {
        state: SpinLockIrq::new((false, 0)),
        total: AtomicU64::new(0),
        asleep: AtomicBool::new(false),
    });
    let rounds = ROUNDS / 4;
    let sleeper_shared = shared.clone();
    let sleeper = move || {
        let channel = Arc::as_ptr(&sleeper_shared) as usize;
        for round in 0..rounds + rounds / 10 {
            let mut state = sleeper_shared.state.lock();
            while !state.0 {
                sleeper_shared.asleep.store(true, Ordering::Release);
                let _ = kernel::sleep(channel, Some(state), SleepFlags::default(), None);
                state = sleeper_shared.state.lock();
            }
            let latency = (api::now().as_nanos() as u64).saturating_sub(state.1);
            state.0 = false;
            drop(state);
            if round >= rounds / 10 {
                sleeper_shared.total.fetch_add(latency, Ordering::Relaxed);
            }
        }
        0
    };
    let waker_shared = shared.clone();
    let waker = move || {
        let channel = Arc::as_ptr(&waker_shared) as usize;
        for _ in 0..rounds + rounds / 10 {
            // Wait until the sleeper is really asleep, so that each round
            // measures a wake-up of a sleeping thread on the other CPU.
            while !waker_shared.asleep.swap(false, Ordering::AcqRel)
                || kernel::sleeping_threads() == 0
            {
                crate::arch::cpu::relax();
            }
            let mut state = waker_shared.state.lock();
            state.0 = true;
            state.1 = api::now().as_nanos() as u64;
            drop(state);
            kernel::wakeup(channel);
        }
        0
    };
    let sleeper = api::thread_spawn_with(sleeper, pinned(1)).ok()?;
    let waker = api::thread_spawn_with(waker, pinned(0)).ok()?;
    api::thread_join(waker).ok()?;
    api::thread_join(sleeper).ok()?;
    Some(shared.total.load(Ordering::Relaxed) / rounds)
}
