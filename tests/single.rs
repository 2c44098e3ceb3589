//! Single-threading (`thread_single`): stopping every other thread of a
//! group, whether they spin in payload code, sleep interruptibly or
//! uninterruptibly, or are exiting themselves; suspending and resuming.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;

use crate::api::kernel::{self, SingleMode, SleepFlags, SpinLockIrq, ThreadGroup};
use crate::api::test::{Case, TestResult};
use crate::api::{self, CpuSet, Errno, ThreadOptions, Tid};
use crate::{check, check_eq};

pub const CASES: &[Case] = &[
    Case {
        name: "exit_stops_threads_spinning_in_payload_code",
        run: exit_stops_spinners,
    },
    Case {
        name: "exit_interrupts_interruptible_sleepers",
        run: exit_interrupts_sleepers,
    },
    Case {
        name: "exit_waits_for_uninterruptible_sleepers",
        run: exit_waits_for_sleepers,
    },
    Case {
        name: "exit_races_members_exiting_themselves",
        run: exit_races_member_exits,
    },
    Case {
        name: "two_members_single_thread_at_once",
        run: two_single_at_once,
    },
    Case {
        name: "boundary_suspends_and_resumes",
        run: boundary_suspends_and_resumes,
    },
    Case {
        name: "no_exit_leaves_interruptible_sleepers_asleep",
        run: no_exit_leaves_sleepers,
    },
    Case {
        name: "single_outside_a_group_is_refused",
        run: outside_a_group,
    },
];

/// What members of a test group report. Tests keep it in a static, and
/// the threads that may be stopped capture nothing: a thread stopped at
/// its boundary does not unwind, so what its closure owns is never
/// dropped (see `sched::ast`).
struct Board {
    started: AtomicUsize,
    progress: AtomicUsize,
    stop: AtomicBool,
    next_index: AtomicUsize,
}

impl Board {
    const fn new() -> Self {
        Self {
            started: AtomicUsize::new(0),
            progress: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            next_index: AtomicUsize::new(0),
        }
    }

    fn reset(&self) {
        self.started.store(0, Ordering::Release);
        self.progress.store(0, Ordering::Release);
        self.stop.store(false, Ordering::Release);
        self.next_index.store(0, Ordering::Release);
    }
}

fn spread(index: usize) -> ThreadOptions {
    ThreadOptions {
        affinity: CpuSet::single(index % api::ncpus()),
        ..Default::default()
    }
}

fn spawn(
    group: &Arc<ThreadGroup>,
    index: usize,
    body: impl FnOnce() -> usize + Send + 'static,
) -> Result<Tid, alloc::string::String> {
    kernel::spawn_in_group(group, body, spread(index)).map_err(|e| alloc::format!("spawn: {e}"))
}

fn wait_for(
    what: &str,
    limit: Duration,
    condition: impl Fn() -> bool,
) -> Result<(), alloc::string::String> {
    let deadline = api::now() + limit;
    while !condition() {
        if api::now() > deadline {
            return Err(alloc::format!("timed out waiting for {what}"));
        }
        api::sleep(Duration::from_millis(1)).map_err(|e| alloc::format!("{e}"))?;
    }
    Ok(())
}

/// The board of the spinning threads (one case at a time uses it).
static SPINNERS: Board = Board::new();

/// `members` threads of `group` spinning in payload code, reporting on
/// [`SPINNERS`]; each returns 7 when told to stop. Their closures capture
/// nothing, so a thread stopped at its boundary leaves nothing behind.
fn spinners(group: &Arc<ThreadGroup>, members: usize) -> Result<Vec<Tid>, alloc::string::String> {
    SPINNERS.reset();
    let mut tids = Vec::new();
    for index in 0..members {
        tids.push(spawn(group, index, || {
            SPINNERS.started.fetch_add(1, Ordering::AcqRel);
            while !SPINNERS.stop.load(Ordering::Relaxed) {
                SPINNERS.progress.fetch_add(1, Ordering::Relaxed);
            }
            7
        })?);
    }
    Ok(tids)
}

fn exit_stops_spinners() -> TestResult {
    const BOARD: &Board = &SPINNERS;
    let before = api::nthreads();
    for round in 0..20 {
        let group = ThreadGroup::new();
        let members = 2 * api::ncpus();
        let tids = spinners(&group, members)?;
        let leader = spawn(&group, round, move || {
            while BOARD.started.load(Ordering::Acquire) < members {
                api::sched_yield();
            }
            match kernel::thread_single(SingleMode::Exit) {
                Ok(()) => 1,
                Err(_) => 2,
            }
        })?;
        check_eq!(
            api::thread_join(leader),
            Ok(1),
            "round {round}: leader's thread_single"
        );
        check_eq!(
            group.len(),
            0,
            "round {round}: members left after the leader"
        );
        for tid in tids {
            // 0: stopped at the boundary, not the 7 of a normal return.
            check_eq!(
                api::thread_join(tid),
                Ok(0),
                "round {round}: a spinner's result"
            );
        }
    }
    check_eq!(api::nthreads(), before, "threads alive");
    Ok(())
}

fn exit_interrupts_sleepers() -> TestResult {
    static BOARD: Board = Board::new();
    BOARD.reset();
    let group = ThreadGroup::new();
    let members = 2 * api::ncpus();
    let mut tids = Vec::new();
    for index in 0..members {
        tids.push(spawn(&group, index, || {
            BOARD.started.fetch_add(1, Ordering::AcqRel);
            match api::sleep(Duration::from_secs(30)) {
                // Not reached: the boundary after the interrupted sleep
                // ends the thread.
                Err(Errno::EINTR) => 5,
                _ => 6,
            }
        })?);
    }
    let start = api::now();
    let leader = spawn(&group, 0, move || {
        while BOARD.started.load(Ordering::Acquire) < members
            || kernel::sleeping_threads() < members
        {
            api::sched_yield();
        }
        usize::from(kernel::thread_single(SingleMode::Exit).is_ok())
    })?;
    check_eq!(api::thread_join(leader), Ok(1), "leader's thread_single");
    check!(
        api::now() - start < Duration::from_secs(10),
        "sleepers were not interrupted"
    );
    for tid in tids {
        check_eq!(api::thread_join(tid), Ok(0), "a sleeper's result");
    }
    check_eq!(kernel::callouts_pending(), 0, "sleep timeouts left pending");
    Ok(())
}

fn exit_waits_for_sleepers() -> TestResult {
    static WOKEN: SpinLockIrq<bool> = SpinLockIrq::new(false);
    static ASLEEP: AtomicBool = AtomicBool::new(false);
    static DONE: AtomicBool = AtomicBool::new(false);
    *WOKEN.lock() = false;
    ASLEEP.store(false, Ordering::Release);
    DONE.store(false, Ordering::Release);
    let channel = &WOKEN as *const _ as usize;
    let group = ThreadGroup::new();
    // Captures nothing: it is stopped at its boundary, without unwinding.
    let sleeper = spawn(&group, 1, || {
        let channel = &WOKEN as *const _ as usize;
        let _kernel = kernel::enter_kernel();
        let mut woken = WOKEN.lock();
        while !*woken {
            ASLEEP.store(true, Ordering::Release);
            let _ = kernel::sleep(channel, Some(woken), SleepFlags::default(), None);
            woken = WOKEN.lock();
        }
        // Dropping the entry is the boundary: the thread ends there.
        3
    })?;
    wait_for("the sleeper", Duration::from_secs(2), || {
        ASLEEP.load(Ordering::Acquire) && kernel::sleeping_threads() > 0
    })?;
    let leader = spawn(&group, 0, || {
        let result = kernel::thread_single(SingleMode::Exit);
        DONE.store(true, Ordering::Release);
        usize::from(result.is_ok())
    })?;
    api::sleep(Duration::from_millis(20)).map_err(|e| alloc::format!("{e}"))?;
    check!(
        !DONE.load(Ordering::Acquire),
        "thread_single returned while a member slept uninterruptibly"
    );
    *WOKEN.lock() = true;
    kernel::wakeup(channel);
    check_eq!(api::thread_join(leader), Ok(1), "leader's thread_single");
    check_eq!(
        api::thread_join(sleeper),
        Ok(0),
        "the sleeper ended at its boundary"
    );
    Ok(())
}

fn exit_races_member_exits() -> TestResult {
    let before = api::nthreads();
    // A static, not a captured `Arc`: a member stopped at its boundary
    // never drops what its closure owns.
    static GO: AtomicBool = AtomicBool::new(false);
    // About 400 member exits racing the leader, whatever the CPU count.
    let rounds = 400 / api::ncpus().max(2);
    for round in 0..rounds {
        GO.store(false, Ordering::Release);
        let group = ThreadGroup::new();
        let mut tids = Vec::new();
        for index in 0..api::ncpus().max(2) {
            tids.push(spawn(&group, index, move || {
                while !GO.load(Ordering::Acquire) {
                    api::sched_yield();
                }
                // Exit right away, racing the leader's single-threading.
                api::thread_exit(9)
            })?);
        }
        let leader = spawn(&group, round, move || {
            GO.store(true, Ordering::Release);
            usize::from(kernel::thread_single(SingleMode::Exit).is_ok())
        })?;
        check_eq!(api::thread_join(leader), Ok(1), "round {round}: leader");
        for tid in tids {
            let result = api::thread_join(tid);
            check!(
                result == Ok(9) || result == Ok(0),
                "round {round}: member ended with {result:?}"
            );
        }
    }
    check_eq!(api::nthreads(), before, "threads alive");
    Ok(())
}

fn two_single_at_once() -> TestResult {
    // Statics, not captured `Arc`s: the loser may be stopped at its
    // boundary, and a stopped thread's own values are never dropped.
    static GO: AtomicUsize = AtomicUsize::new(0);
    static WINS: AtomicUsize = AtomicUsize::new(0);
    static BUSY: AtomicUsize = AtomicUsize::new(0);
    for round in 0..200 {
        GO.store(0, Ordering::Release);
        WINS.store(0, Ordering::Release);
        BUSY.store(0, Ordering::Release);
        let group = ThreadGroup::new();
        let mut tids = Vec::new();
        for index in 0..2 {
            tids.push(spawn(&group, index, move || {
                GO.fetch_add(1, Ordering::AcqRel);
                while GO.load(Ordering::Acquire) < 2 {
                    api::cpu_relax();
                }
                match kernel::thread_single(SingleMode::Exit) {
                    Ok(()) => WINS.fetch_add(1, Ordering::AcqRel),
                    // The loser exits as a plain thread.
                    Err(Errno::EBUSY) => BUSY.fetch_add(1, Ordering::AcqRel),
                    Err(_) => 100,
                };
                1
            })?);
        }
        for tid in tids {
            let result = api::thread_join(tid);
            check!(
                result == Ok(1) || result == Ok(0),
                "round {round}: a member ended with {result:?}"
            );
        }
        check_eq!(
            WINS.load(Ordering::Acquire),
            1,
            "round {round}: thread_single winners"
        );
        check!(
            BUSY.load(Ordering::Acquire) <= 1,
            "round {round}: more than one loser"
        );
    }
    Ok(())
}

fn boundary_suspends_and_resumes() -> TestResult {
    const BOARD: &Board = &SPINNERS;
    let group = ThreadGroup::new();
    let members = 2 * api::ncpus();
    let tids = spinners(&group, members)?;
    wait_for("the spinners", Duration::from_secs(2), || {
        BOARD.started.load(Ordering::Acquire) == members
    })?;
    let leader = spawn(&group, 0, || {
        if kernel::thread_single(SingleMode::Boundary).is_err() {
            return 10;
        }
        // Everyone else is parked: progress stands still.
        let frozen = BOARD.progress.load(Ordering::Acquire);
        api::spin_for(Duration::from_millis(5));
        if BOARD.progress.load(Ordering::Acquire) != frozen {
            return 11;
        }
        if kernel::thread_single_end().is_err() {
            return 12;
        }
        1
    })?;
    check_eq!(
        api::thread_join(leader),
        Ok(1),
        "leader (10: refused, 11: threads ran while suspended)"
    );
    wait_for("the members to resume", Duration::from_secs(2), || {
        group.suspended() == 0
    })?;
    let resumed_from = BOARD.progress.load(Ordering::Acquire);
    wait_for("progress after the resume", Duration::from_secs(2), || {
        BOARD.progress.load(Ordering::Acquire) > resumed_from + 1000
    })?;
    BOARD.stop.store(true, Ordering::Release);
    for tid in tids {
        check_eq!(
            api::thread_join(tid),
            Ok(7),
            "a resumed spinner returns normally"
        );
    }
    Ok(())
}

fn no_exit_leaves_sleepers() -> TestResult {
    let group = ThreadGroup::new();
    let event = Arc::new(SpinLockIrq::new(false));
    let channel = Arc::as_ptr(&event) as usize;
    let members = api::ncpus().max(2);
    let started = Arc::new(AtomicUsize::new(0));
    let mut tids = Vec::new();
    for index in 0..members {
        let (event, started) = (event.clone(), started.clone());
        tids.push(spawn(&group, index, move || {
            let _kernel = kernel::enter_kernel();
            let mut woken = event.lock();
            started.fetch_add(1, Ordering::AcqRel);
            let flags = SleepFlags {
                interruptible: true,
            };
            while !*woken {
                match kernel::sleep(channel, Some(woken), flags, None) {
                    Ok(()) => {}
                    Err(_) => return 20,
                }
                woken = event.lock();
            }
            4
        })?);
    }
    wait_for("the sleepers", Duration::from_secs(2), || {
        started.load(Ordering::Acquire) == members && kernel::sleeping_threads() >= members
    })?;
    let leader = spawn(&group, 0, move || {
        if kernel::thread_single(SingleMode::NoExit).is_err() {
            return 10;
        }
        // The sleepers were not woken.
        if kernel::sleeping_threads() < members {
            return 11;
        }
        usize::from(kernel::thread_single_end().is_ok())
    })?;
    check_eq!(
        api::thread_join(leader),
        Ok(1),
        "leader (10: refused, 11: sleepers were woken)"
    );
    *event.lock() = true;
    kernel::wakeup(channel);
    for tid in tids {
        check_eq!(
            api::thread_join(tid),
            Ok(4),
            "a sleeper woken normally after the resume"
        );
    }
    Ok(())
}

fn outside_a_group() -> TestResult {
    check_eq!(kernel::thread_single(SingleMode::Exit), Err(Errno::EINVAL));
    check_eq!(kernel::thread_single_end(), Err(Errno::EINVAL));
    Ok(())
}
