//! Threads and the scheduler: spawn and join on every CPU, yield, time
//! slices, sleep, wake-ups across CPUs, affinity, stealing.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;

use crate::api::kernel::{self, SleepFlags, SpinLockIrq};
use crate::api::test::{Case, TestResult};
use crate::api::{self, CpuSet, Errno, ThreadOptions};
use crate::{check, check_eq, skip};

pub const CASES: &[Case] = &[
    Case {
        name: "spawn_join_returns_results",
        run: spawn_join_returns_results,
    },
    Case {
        name: "spawn_join_thousands_on_every_cpu",
        run: spawn_join_thousands,
    },
    Case {
        name: "join_errors",
        run: join_errors,
    },
    Case {
        name: "yield_alternates_two_threads",
        run: yield_alternates,
    },
    Case {
        name: "time_slices_preempt_spinning_threads",
        run: time_slices_preempt,
    },
    Case {
        name: "sleep_lasts_its_duration",
        run: sleep_lasts_its_duration,
    },
    Case {
        name: "wakeup_from_another_cpu_while_switching",
        run: wakeup_while_switching,
    },
    Case {
        name: "wakeup_one_wakes_exactly_one",
        run: wakeup_one_wakes_one,
    },
    Case {
        name: "sleep_timeout_returns_ewouldblock",
        run: sleep_timeout,
    },
    Case {
        name: "affinity_pins_and_moves_a_running_thread",
        run: affinity_moves,
    },
    Case {
        name: "affinity_errors",
        run: affinity_errors,
    },
    Case {
        name: "idle_cpus_steal_queued_threads",
        run: idle_cpus_steal,
    },
    Case {
        name: "exit_while_being_woken",
        run: exit_while_being_woken,
    },
];

/// Threads and stacks in use before a case, to compare with after.
fn census() -> (usize, usize) {
    (api::nthreads(), kernel::stacks_in_use())
}

fn spawn_join_returns_results() -> TestResult {
    let before = census();
    let tids: Vec<_> = (0..16)
        .map(|i| api::thread_spawn(|x| x * 3 + 1, i).map_err(|e| alloc::format!("spawn: {e}")))
        .collect::<Result<_, _>>()?;
    for (i, tid) in tids.into_iter().enumerate() {
        check_eq!(api::thread_join(tid), Ok(i * 3 + 1), "result of thread {i}");
    }
    check_eq!(census(), before, "threads and stacks after joining");
    Ok(())
}

fn spawn_join_thousands() -> TestResult {
    let before = census();
    let ran_on: Arc<[AtomicUsize; api::MAX_CPUS]> = Arc::new(Default::default());
    for round in 0..250 {
        let mut tids = Vec::new();
        for cpu in 0..api::ncpus() {
            let ran_on = ran_on.clone();
            let options = ThreadOptions {
                affinity: CpuSet::single(cpu),
                ..Default::default()
            };
            let tid = api::thread_spawn_with(
                move || {
                    ran_on[api::getcpu()].fetch_add(1, Ordering::Relaxed);
                    api::getcpu()
                },
                options,
            )
            .map_err(|e| alloc::format!("round {round}: spawn on cpu{cpu}: {e}"))?;
            tids.push((cpu, tid));
        }
        for (cpu, tid) in tids {
            check_eq!(
                api::thread_join(tid),
                Ok(cpu),
                "round {round}: CPU of a pinned thread"
            );
        }
    }
    for cpu in 0..api::ncpus() {
        check_eq!(
            ran_on[cpu].load(Ordering::Relaxed),
            250,
            "threads that ran on cpu{cpu}"
        );
    }
    drop(ran_on);
    check_eq!(census(), before, "threads and stacks after joining");
    Ok(())
}

fn join_errors() -> TestResult {
    check_eq!(
        api::thread_join(api::gettid()),
        Err(Errno::EDEADLK),
        "joining oneself"
    );
    check_eq!(
        api::thread_join(u64::MAX),
        Err(Errno::ESRCH),
        "joining no thread"
    );
    let tid = api::thread_spawn(|x| x, 7).map_err(|e| alloc::format!("{e}"))?;
    check_eq!(api::thread_join(tid), Ok(7));
    check_eq!(api::thread_join(tid), Err(Errno::ESRCH), "joining twice");
    Ok(())
}

fn yield_alternates() -> TestResult {
    // Two threads on one CPU, each yielding after a step: the steps of the
    // two interleave strictly, as only one runs at a time and each yield
    // hands the CPU to the other.
    let cpu = api::ncpus() - 1;
    let log: Arc<SpinLockIrq<Vec<u8>>> = Arc::new(SpinLockIrq::new(Vec::with_capacity(64)));
    let start = Arc::new(AtomicUsize::new(0));
    let mut tids = Vec::new();
    for who in [b'a', b'b'] {
        let (log, start) = (log.clone(), start.clone());
        let options = ThreadOptions {
            affinity: CpuSet::single(cpu),
            ..Default::default()
        };
        let tid = api::thread_spawn_with(
            move || {
                start.fetch_add(1, Ordering::AcqRel);
                while start.load(Ordering::Acquire) < 2 {
                    api::sched_yield();
                }
                for _ in 0..20 {
                    log.lock().push(who);
                    api::sched_yield();
                }
                0
            },
            options,
        )
        .map_err(|e| alloc::format!("{e}"))?;
        tids.push(tid);
    }
    for tid in tids {
        check_eq!(api::thread_join(tid), Ok(0));
    }
    let log = log.lock();
    check_eq!(log.len(), 40, "steps logged");
    let repeats = log.windows(2).filter(|pair| pair[0] == pair[1]).count();
    check!(
        repeats <= 1,
        "yield did not alternate the threads: {:?}",
        core::str::from_utf8(&log)
    );
    Ok(())
}

fn time_slices_preempt() -> TestResult {
    // Three threads that never yield, pinned to one CPU: the tick must
    // share the CPU among them, so each makes progress while the others
    // are runnable.
    let cpu = api::ncpus() - 1;
    let stop = Arc::new(AtomicBool::new(false));
    let counters: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let mut tids = Vec::new();
    for index in 0..3 {
        let (stop, counters) = (stop.clone(), counters.clone());
        let options = ThreadOptions {
            affinity: CpuSet::single(cpu),
            ..Default::default()
        };
        let tid = api::thread_spawn_with(
            move || {
                while !stop.load(Ordering::Relaxed) {
                    counters[index].fetch_add(1, Ordering::Relaxed);
                }
                0
            },
            options,
        )
        .map_err(|e| alloc::format!("{e}"))?;
        tids.push(tid);
    }
    // The three are pinned to `cpu`; this thread runs elsewhere unless
    // there is one CPU, where it needs the slices too.
    let deadline = api::now() + Duration::from_millis(200);
    while api::now() < deadline {
        api::sched_yield();
    }
    stop.store(true, Ordering::Relaxed);
    for tid in tids {
        check_eq!(api::thread_join(tid), Ok(0));
    }
    let counts: Vec<usize> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    check!(
        counts.iter().all(|&count| count > 1000),
        "spinning threads did not all get the CPU within 200 ms: {counts:?}"
    );
    Ok(())
}

fn sleep_lasts_its_duration() -> TestResult {
    let before = (census(), kernel::callouts_pending());
    for millis in [1u64, 5, 20] {
        let start = api::now();
        check_eq!(
            api::sleep(Duration::from_millis(millis)),
            Ok(()),
            "sleep of {millis} ms"
        );
        let slept = api::now() - start;
        check!(
            slept >= Duration::from_millis(millis),
            "a sleep of {millis} ms ended after {slept:?}"
        );
        // Only a bound that a lost wake-up would break: the emulator's
        // speed depends on the host's load.
        check!(
            slept < Duration::from_secs(1),
            "a sleep of {millis} ms took {slept:?}"
        );
    }
    check_eq!(
        (census(), kernel::callouts_pending()),
        before,
        "threads, stacks, callouts"
    );
    Ok(())
}

/// A flag and a count behind one lock, slept on by waiters.
struct Event {
    state: SpinLockIrq<(bool, usize)>,
}

impl Event {
    fn channel(&self) -> usize {
        self as *const Self as usize
    }
}

fn wakeup_while_switching() -> TestResult {
    if api::ncpus() < 2 {
        skip!("needs two CPUs");
    }
    // A sleeper on CPU 1 and a waker on CPU 0, racing 2000 times: the
    // waker often finds the sleeper queued but still switching away. No
    // wake-up may be lost (the sleeper would hang) and the thread must
    // not run twice (the scheduler checks its state at every pick).
    let event = Arc::new(Event {
        state: SpinLockIrq::new((false, 0)),
    });
    const ROUNDS: usize = 2000;
    let sleeper_event = event.clone();
    let sleeper = api::thread_spawn_with(
        move || {
            let channel = sleeper_event.channel();
            for _ in 0..ROUNDS {
                let mut state = sleeper_event.state.lock();
                while !state.0 {
                    let _ = kernel::sleep(channel, Some(state), SleepFlags::default(), None);
                    state = sleeper_event.state.lock();
                }
                state.0 = false;
                state.1 += 1;
            }
            0
        },
        ThreadOptions {
            affinity: CpuSet::single(1),
            ..Default::default()
        },
    )
    .map_err(|e| alloc::format!("{e}"))?;
    let waker_event = event.clone();
    let waker = api::thread_spawn_with(
        move || {
            let channel = waker_event.channel();
            let mut sent = 0;
            while sent < ROUNDS {
                let mut state = waker_event.state.lock();
                if !state.0 {
                    state.0 = true;
                    sent += 1;
                    drop(state);
                    kernel::wakeup(channel);
                } else {
                    drop(state);
                    core::hint::spin_loop();
                }
            }
            0
        },
        ThreadOptions {
            affinity: CpuSet::single(0),
            ..Default::default()
        },
    )
    .map_err(|e| alloc::format!("{e}"))?;
    check_eq!(api::thread_join(waker), Ok(0));
    check_eq!(api::thread_join(sleeper), Ok(0));
    check_eq!(event.state.lock().1, ROUNDS, "wake-ups received");
    Ok(())
}

fn wakeup_one_wakes_one() -> TestResult {
    let before = census();
    let event = Arc::new(Event {
        state: SpinLockIrq::new((false, 0)),
    });
    let mut tids = Vec::new();
    for _ in 0..4 {
        let event = event.clone();
        let tid = api::thread_spawn_with(
            move || {
                let mut state = event.state.lock();
                state.1 += 1;
                let _ = kernel::sleep(event.channel(), Some(state), SleepFlags::default(), None);
                0
            },
            ThreadOptions::default(),
        )
        .map_err(|e| alloc::format!("{e}"))?;
        tids.push(tid);
    }
    // Wait until all four sleep.
    while event.state.lock().1 < 4 || kernel::sleeping_threads() < 4 {
        api::sched_yield();
    }
    let channel = event.channel();
    for expected_left in (0..4).rev() {
        check!(kernel::wakeup_one(channel), "wakeup_one found no sleeper");
        api::sleep(Duration::from_millis(2)).map_err(|e| alloc::format!("{e}"))?;
        check_eq!(kernel::sleeping_threads(), expected_left, "sleepers left");
    }
    check!(
        !kernel::wakeup_one(channel),
        "wakeup_one woke a thread that was not asleep"
    );
    for tid in tids {
        check_eq!(api::thread_join(tid), Ok(0));
    }
    check_eq!(census(), before, "threads and stacks");
    Ok(())
}

fn sleep_timeout() -> TestResult {
    let before = kernel::callouts_pending();
    let event = Event {
        state: SpinLockIrq::new((false, 0)),
    };
    let state = event.state.lock();
    let start = api::now();
    let result = kernel::sleep(
        event.channel(),
        Some(state),
        SleepFlags::default(),
        Some(Duration::from_millis(3)),
    );
    check_eq!(result, Err(Errno::EWOULDBLOCK), "a sleep nobody ends");
    check!(
        api::now() - start >= Duration::from_millis(3),
        "the timeout came early"
    );
    check_eq!(kernel::callouts_pending(), before, "callouts left");
    Ok(())
}

fn affinity_moves() -> TestResult {
    if api::ncpus() < 2 {
        skip!("needs two CPUs");
    }
    let last = api::ncpus() - 1;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(usize::MAX));
    let (thread_stop, thread_seen) = (stop.clone(), seen.clone());
    let tid = api::thread_spawn_with(
        move || {
            while !thread_stop.load(Ordering::Relaxed) {
                thread_seen.store(api::getcpu(), Ordering::Relaxed);
            }
            0
        },
        ThreadOptions {
            affinity: CpuSet::single(0),
            ..Default::default()
        },
    )
    .map_err(|e| alloc::format!("{e}"))?;
    let wait_for = |cpu: usize| {
        let deadline = api::now() + Duration::from_millis(200);
        while api::now() < deadline {
            if seen.load(Ordering::Relaxed) == cpu {
                return true;
            }
            api::sched_yield();
        }
        false
    };
    let mut result = Ok(());
    for (round, cpu) in [last, 0, last, 0].into_iter().enumerate() {
        if let Err(e) = api::cpuset_setaffinity(tid, CpuSet::single(cpu)) {
            result = Err(alloc::format!("round {round}: setaffinity: {e}"));
            break;
        }
        seen.store(usize::MAX, Ordering::Relaxed);
        if !wait_for(cpu) {
            result = Err(alloc::format!(
                "round {round}: the thread never ran on cpu{cpu}"
            ));
            break;
        }
    }
    check_eq!(api::cpuset_getaffinity(tid).map(|s| s.len()), Ok(1));
    stop.store(true, Ordering::Relaxed);
    check_eq!(api::thread_join(tid), Ok(0));
    result.map_err(Into::into)
}

fn affinity_errors() -> TestResult {
    check_eq!(
        api::cpuset_setaffinity(0, CpuSet::EMPTY),
        Err(Errno::EINVAL),
        "empty set"
    );
    check_eq!(
        api::cpuset_setaffinity(u64::MAX, CpuSet::ALL),
        Err(Errno::ESRCH),
        "no thread"
    );
    let beyond = CpuSet::single(api::MAX_CPUS - 1);
    if api::ncpus() < api::MAX_CPUS {
        check_eq!(
            api::cpuset_setaffinity(0, beyond),
            Err(Errno::EINVAL),
            "offline CPUs only"
        );
    }
    check_eq!(api::cpuset_getaffinity(0), Ok(CpuSet::ALL), "own affinity");
    Ok(())
}

fn idle_cpus_steal() -> TestResult {
    if api::ncpus() < 2 {
        skip!("needs two CPUs");
    }
    // Spawn spinning threads pinned to CPU 0, then let them run anywhere:
    // they wait in CPU 0's queue, and the idle CPUs must take them.
    let stop = Arc::new(AtomicBool::new(false));
    let cpus_used = Arc::new(AtomicUsize::new(0));
    let steals_before: u64 = (0..api::ncpus())
        .map(|c| kernel::sched_figures(c).steals)
        .sum();
    let mut tids = Vec::new();
    for _ in 0..api::ncpus() * 2 {
        let (stop, cpus_used) = (stop.clone(), cpus_used.clone());
        let tid = api::thread_spawn_with(
            move || {
                while !stop.load(Ordering::Relaxed) {
                    cpus_used.fetch_or(1 << api::getcpu(), Ordering::Relaxed);
                    api::sched_yield();
                }
                0
            },
            ThreadOptions {
                affinity: CpuSet::single(0),
                ..Default::default()
            },
        )
        .map_err(|e| alloc::format!("{e}"))?;
        tids.push(tid);
    }
    for &tid in &tids {
        api::cpuset_setaffinity(tid, CpuSet::ALL).map_err(|e| alloc::format!("{e}"))?;
    }
    let all = CpuSet::first(api::ncpus()).bits() as usize;
    let deadline = api::now() + Duration::from_millis(300);
    while api::now() < deadline && cpus_used.load(Ordering::Relaxed) != all {
        api::sleep(Duration::from_millis(1)).map_err(|e| alloc::format!("{e}"))?;
    }
    stop.store(true, Ordering::Relaxed);
    for tid in tids {
        check_eq!(api::thread_join(tid), Ok(0));
    }
    let steals: u64 = (0..api::ncpus())
        .map(|c| kernel::sched_figures(c).steals)
        .sum();
    check_eq!(
        cpus_used.load(Ordering::Relaxed),
        all,
        "CPUs that ran the threads (bits)"
    );
    check!(steals > steals_before, "no CPU stole a thread");
    Ok(())
}

fn exit_while_being_woken() -> TestResult {
    // A thread ends right as another thread wakes its channel, 1000 times,
    // on different CPUs: the exit and the wake-up must not trip over each
    // other, and every thread must be freed.
    let before = census();
    let other = if api::ncpus() > 1 { 1 } else { 0 };
    for round in 0..1000 {
        let tid = api::thread_spawn_with(
            || 0,
            ThreadOptions {
                affinity: CpuSet::single(other),
                ..Default::default()
            },
        )
        .map_err(|e| alloc::format!("round {round}: {e}"))?;
        // Wake whatever might sleep on a channel near the thread while it
        // exits.
        for _ in 0..3 {
            kernel::wakeup(tid as usize);
        }
        check_eq!(api::thread_join(tid), Ok(0), "round {round}");
    }
    check_eq!(census(), before, "threads and stacks");
    Ok(())
}
