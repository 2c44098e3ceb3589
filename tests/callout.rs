//! Callouts: a handler runs once, on the CPU that armed it and not before
//! its delay; `stop`, `reset` and `drain` against pending and running
//! handlers, raced from other CPUs. Each case checks that no callout stays
//! pending, and that no thread and no heap byte is left.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use crate::api::kernel::{self, Callout, SpinLockIrq};
use crate::api::machine_info::timer_ticks;
use crate::api::test::{Case, TestResult, in_threads, wait_for};
use crate::api;
use crate::{check, check_eq, skip};

pub const CASES: &[Case] = &[
    Case {
        name: "reset_runs_once_on_the_arming_cpu",
        run: reset_runs_once,
    },
    Case {
        name: "stop_cancels_a_pending_run",
        run: stop_cancels,
    },
    Case {
        name: "reset_replaces_a_pending_run",
        run: reset_replaces,
    },
    Case {
        name: "drain_waits_for_a_running_handler",
        run: drain_waits_for_handler,
    },
    Case {
        name: "stop_races_the_handler",
        run: stop_races_the_handler,
    },
    Case {
        name: "rearming_handler_stops_at_drain",
        run: rearming_stops_at_drain,
    },
];

/// Callouts pending, threads and heap bytes in use, to compare before and
/// after a case.
fn census() -> (u64, usize, usize) {
    (
        kernel::callouts_pending(),
        api::nthreads(),
        api::heap_in_use(),
    )
}


/// Sleeps `millis` milliseconds, as a case's error on failure.
fn sleep_ms(millis: u64) -> Result<(), String> {
    api::sleep(Duration::from_millis(millis)).map_err(|error| alloc::format!("sleep: {error}"))
}

/// What a handler saw when it ran.
#[derive(Default)]
struct Fired {
    runs: AtomicUsize,
    cpu: AtomicUsize,
    at_ns: AtomicU64,
}

/// A handler that records its runs in `fired`.
fn recorder(fired: &Arc<Fired>) -> impl FnMut() + Send + 'static {
    let fired = fired.clone();
    move || {
        fired.cpu.store(api::getcpu(), Ordering::Relaxed);
        fired
            .at_ns
            .store(api::now().as_nanos() as u64, Ordering::Relaxed);
        fired.runs.fetch_add(1, Ordering::AcqRel);
    }
}

fn reset_runs_once() -> TestResult {
    // On every CPU at once: a thread pinned there arms a 3 ms callout and
    // waits. The handler must run once, there, 3 ms or more later.
    const DELAY: Duration = Duration::from_millis(3);
    let before = census();
    in_threads(
        api::ncpus(),
        |cpu| cpu,
        |cpu| {
            let fired = Arc::new(Fired::default());
            let callout = Callout::new();
            let armed_at = api::now();
            callout.reset(DELAY, recorder(&fired));
            // Pending, unless the emulator stalled this CPU for the whole
            // delay since.
            if !callout.is_pending() && api::now() - armed_at < DELAY {
                return Err("not pending after reset".into());
            }
            if !wait_for(Duration::from_millis(500), || {
                fired.runs.load(Ordering::Acquire) > 0
            }) {
                return Err("the handler never ran".into());
            }
            // Time for a second run, which must not come.
            sleep_ms(5)?;
            let runs = fired.runs.load(Ordering::Acquire);
            let ran_on = fired.cpu.load(Ordering::Relaxed);
            let fired_at = Duration::from_nanos(fired.at_ns.load(Ordering::Relaxed));
            let after = fired_at.saturating_sub(armed_at);
            let pending = callout.is_pending();
            drop(callout);
            if runs != 1 {
                Err(alloc::format!("the handler ran {runs} times"))
            } else if ran_on != cpu {
                Err(alloc::format!("armed on cpu{cpu}, ran on cpu{ran_on}"))
            } else if after < DELAY {
                Err(alloc::format!("ran {after:?} after a reset of {DELAY:?}"))
            } else if pending {
                Err("still pending after it ran".into())
            } else {
                Ok(())
            }
        },
    )?;
    check_eq!(census(), before, "callouts pending, threads and heap bytes");
    Ok(())
}

/// Runs `attempt` again, up to five times in all, while it finds that the
/// emulator stalled this CPU for longer than a delay its checks depend on
/// (it returns `Ok(false)` then).
fn unless_stalled(mut attempt: impl FnMut() -> Result<bool, String>) -> TestResult {
    for _ in 0..5 {
        if attempt()? {
            return Ok(());
        }
    }
    Err(String::from("five attempts in a row stalled past their delay").into())
}

fn stop_cancels() -> TestResult {
    const DELAY: Duration = Duration::from_millis(20);
    let before = census();

    // 1. Stopped while pending: it never runs.
    unless_stalled(|| {
        let fired = Arc::new(Fired::default());
        let callout = Callout::new();
        if callout.stop() {
            return Err("stop of a callout never armed returned true".into());
        }
        let armed_at = api::now();
        callout.reset(DELAY, recorder(&fired));
        let armed = kernel::callouts_pending();
        let stopped = callout.stop();
        if api::now() - armed_at >= DELAY {
            return Ok(false);
        }
        let (pending, left) = (callout.is_pending(), kernel::callouts_pending());
        sleep_ms(30)?;
        let runs = fired.runs.load(Ordering::Acquire);
        if armed != before.0 + 1 {
            Err(alloc::format!(
                "{armed} callouts pending once armed, {} before",
                before.0
            ))
        } else if !stopped || pending {
            Err(alloc::format!(
                "stop of a pending run: {stopped}, pending after: {pending}"
            ))
        } else if left != before.0 || runs != 0 {
            Err(alloc::format!(
                "after stop: {left} callouts pending, {runs} runs"
            ))
        } else {
            Ok(true)
        }
    })?;

    // 2. Stopped after it ran: nothing to cancel.
    let fired = Arc::new(Fired::default());
    let callout = Callout::new();
    callout.reset(Duration::from_millis(1), recorder(&fired));
    let ran = wait_for(Duration::from_millis(500), || {
        fired.runs.load(Ordering::Acquire) > 0
    });
    check!(ran, "the handler never ran");
    check!(!callout.stop(), "stop after the handler ran returned true");
    check_eq!(fired.runs.load(Ordering::Acquire), 1, "runs");

    drop((callout, fired));
    check_eq!(census(), before, "callouts pending, threads and heap bytes");
    Ok(())
}

fn reset_replaces() -> TestResult {
    const DELAY: Duration = Duration::from_millis(5);
    let before = census();
    unless_stalled(|| {
        let (first, second) = (Arc::new(Fired::default()), Arc::new(Fired::default()));
        let callout = Callout::new();
        let armed_at = api::now();
        let replaced_nothing = !callout.reset(DELAY, recorder(&first));
        let replaced = callout.reset(DELAY, recorder(&second));
        let armed = kernel::callouts_pending();
        if api::now() - armed_at >= DELAY {
            return Ok(false);
        }
        let ran = wait_for(Duration::from_millis(500), || {
            second.runs.load(Ordering::Acquire) > 0
        });
        sleep_ms(10)?;
        let runs = (
            first.runs.load(Ordering::Acquire),
            second.runs.load(Ordering::Acquire),
        );
        if !replaced_nothing || !replaced {
            Err(alloc::format!(
                "resets cancelled a run: {}, {replaced}",
                !replaced_nothing
            ))
        } else if armed != before.0 + 1 {
            Err(alloc::format!(
                "{armed} callouts pending after two resets, {} before",
                before.0
            ))
        } else if !ran || runs != (0, 1) {
            Err(alloc::format!(
                "runs of the first and second handlers: {runs:?}"
            ))
        } else {
            Ok(true)
        }
    })?;
    check_eq!(census(), before, "callouts pending, threads and heap bytes");
    Ok(())
}

/// What the handler of `drain_waits_for_handler` reports.
#[derive(Default)]
struct Progress {
    started: AtomicBool,
    finished: AtomicBool,
    /// How long the next run spins, in microseconds.
    spin_us: AtomicU64,
}

/// The callout two threads race on, and whose turn it is.
struct Race {
    callout: Callout,
    /// Even: the arming thread's turn; odd: the other thread's;
    /// [`FINISHED`] when the arming thread has ended the race.
    turn: AtomicUsize,
}

/// [`Race::turn`] once the race is over.
const FINISHED: usize = usize::MAX;

impl Race {
    /// Waits for `turn`, or the end of the race (then returns `false`); a
    /// second is far more than the other side needs.
    fn wait_turn(&self, turn: usize) -> Result<bool, String> {
        let ready = wait_for(Duration::from_secs(1), || {
            let now = self.turn.load(Ordering::Acquire);
            now == turn || now == FINISHED
        });
        match ready {
            true => Ok(self.turn.load(Ordering::Acquire) == turn),
            false => Err(alloc::format!("turn {turn} never came")),
        }
    }
}

fn drain_waits_for_handler() -> TestResult {
    // A thread on CPU 1 arms a handler that spins (2 ms in the first
    // rounds, tens to hundreds of microseconds later, to vary the race);
    // a thread on CPU 0 waits until the handler has started and drains.
    // When `drain` returns the handler must have finished. 200 rounds, or
    // as many as fit in 1.2 s when the emulator runs the ticks late, but
    // never fewer than 50.
    const ROUNDS: usize = 200;
    const MIN_ROUNDS: usize = 50;
    const BUDGET: Duration = Duration::from_millis(1200);
    if api::ncpus() < 2 {
        skip!("needs two CPUs: a handler running elsewhere");
    }
    let before = census();
    let race = Arc::new(Race {
        callout: Callout::new(),
        turn: AtomicUsize::new(0),
    });
    let progress = Arc::new(Progress::default());
    let (shared, handler_progress) = (race.clone(), progress.clone());
    let deadline = api::now() + BUDGET;
    in_threads(
        2,
        |index| 1 - index,
        move |index| {
            let (race, progress) = (&shared, &handler_progress);
            for round in 0..ROUNDS {
                if index == 0 {
                    // Arming, on CPU 1.
                    race.wait_turn(2 * round)?;
                    if round >= MIN_ROUNDS && api::now() > deadline {
                        race.turn.store(FINISHED, Ordering::Release);
                        break;
                    }
                    progress.started.store(false, Ordering::Relaxed);
                    progress.finished.store(false, Ordering::Relaxed);
                    let spin_us = if round < 3 {
                        2000
                    } else {
                        20 + (round as u64 * 37) % 300
                    };
                    progress.spin_us.store(spin_us, Ordering::Relaxed);
                    let progress = progress.clone();
                    race.callout.reset(Duration::ZERO, move || {
                        progress.started.store(true, Ordering::Release);
                        let spin = progress.spin_us.load(Ordering::Relaxed);
                        api::spin_for(Duration::from_micros(spin));
                        progress.finished.store(true, Ordering::Release);
                    });
                    race.turn.store(2 * round + 1, Ordering::Release);
                    continue;
                }
                // Draining, on CPU 0.
                if !race.wait_turn(2 * round + 1)? {
                    break;
                }
                let started = || progress.started.load(Ordering::Acquire);
                if !wait_for(Duration::from_secs(1), started) {
                    return Err(alloc::format!("round {round}: the handler never started"));
                }
                api::spin_for(Duration::from_micros(round as u64 % 4 * 10));
                let cancelled = race.callout.drain();
                if !progress.finished.load(Ordering::Acquire) {
                    return Err(alloc::format!("round {round}: drain returned mid-handler"));
                }
                if cancelled {
                    return Err(alloc::format!(
                        "round {round}: drain cancelled a started run"
                    ));
                }
                race.turn.store(2 * round + 2, Ordering::Release);
            }
            Ok(())
        },
    )?;
    check!(!race.callout.is_pending(), "pending after the last drain");
    drop((race, progress));
    check_eq!(census(), before, "callouts pending, threads and heap bytes");
    Ok(())
}

/// The callouts of `stop_races_the_handler` and what became of them.
struct StopRace {
    race: Race,
    /// More callouts, armed together with `race.callout` (index 0).
    more: Vec<Callout>,
    /// Per callout: handler runs this round.
    runs: Arc<Vec<AtomicUsize>>,
    /// When and at which tick of the arming CPU this round was armed.
    armed_at_ns: AtomicU64,
    armed_tick: AtomicU64,
}

impl StopRace {
    fn callout(&self, index: usize) -> &Callout {
        if index == 0 {
            &self.race.callout
        } else {
            &self.more[index - 1]
        }
    }
}

/// Outcomes of `stop_races_the_handler`, per kind.
#[derive(Default)]
struct Tally {
    stopped: usize,
    ran: usize,
    both: usize,
    neither: usize,
    ran_twice: usize,
    first_bad: Option<String>,
}

fn stop_races_the_handler() -> TestResult {
    // 2,000 times: a callout armed for the next tick on CPU 0 is stopped
    // from CPU 1 at varying moments, spread over the ticks in which it
    // may fire and, in every other round, right after the tick that runs
    // it. Exactly one of "stop returned true" and "the handler ran" must
    // hold. Twenty-five callouts per round keep the case short.
    const BATCH: usize = 25;
    const ROUNDS: usize = 80;
    let before = census();
    let stop_race = Arc::new(StopRace {
        race: Race {
            callout: Callout::new(),
            turn: AtomicUsize::new(0),
        },
        more: (1..BATCH).map(|_| Callout::new()).collect(),
        runs: Arc::new((0..BATCH).map(|_| AtomicUsize::new(0)).collect()),
        armed_at_ns: AtomicU64::new(0),
        armed_tick: AtomicU64::new(0),
    });
    let tally = Arc::new(SpinLockIrq::new(Tally::default()));
    let (shared, shared_tally) = (stop_race.clone(), tally.clone());
    let stopper_cpu = 1 % api::ncpus();
    let cpu_of = move |index| if index == 0 { ARMING_CPU } else { stopper_cpu };
    in_threads(2, cpu_of, move |index| {
        for round in 0..ROUNDS {
            if index == 0 {
                arm_batch(&shared, round)?;
            } else {
                stop_batch(&shared, round, &shared_tally)?;
            }
        }
        Ok(())
    })?;
    let outcomes = tally.lock();
    let summary = alloc::format!(
        "{} stopped, {} ran, {} both, {} neither, {} ran twice",
        outcomes.stopped,
        outcomes.ran,
        outcomes.both,
        outcomes.neither,
        outcomes.ran_twice
    );
    let first_bad = outcomes.first_bad.clone().unwrap_or_default();
    let good = outcomes.both + outcomes.neither + outcomes.ran_twice == 0;
    let raced = outcomes.stopped > 0 && outcomes.ran > 0;
    drop(outcomes);
    drop(tally);
    check!(good, "{summary}; first: {first_bad}");
    check!(raced, "the stops never straddled the handler: {summary}");
    drop((stop_race, summary, first_bad));
    check_eq!(census(), before, "callouts pending, threads and heap bytes");
    Ok(())
}

/// The CPU that arms the callouts of `stop_races_the_handler`.
const ARMING_CPU: usize = 0;

/// Round `round` of the arming thread: arm every callout for the next
/// tick.
fn arm_batch(stop_race: &StopRace, round: usize) -> Result<(), String> {
    stop_race.race.wait_turn(2 * round)?;
    for runs in stop_race.runs.iter() {
        runs.store(0, Ordering::Relaxed);
    }
    stop_race
        .armed_tick
        .store(timer_ticks(ARMING_CPU), Ordering::Relaxed);
    stop_race
        .armed_at_ns
        .store(api::now().as_nanos() as u64, Ordering::Relaxed);
    for index in 0..stop_race.runs.len() {
        let runs = stop_race.runs.clone();
        stop_race.callout(index).reset(Duration::ZERO, move || {
            runs[index].fetch_add(1, Ordering::AcqRel);
        });
    }
    stop_race.race.turn.store(2 * round + 1, Ordering::Release);
    Ok(())
}

/// Round `round` of the stopping thread: stop every callout at its
/// moment, wait until none can run any more, and count what happened.
fn stop_batch(
    stop_race: &StopRace,
    round: usize,
    tally: &SpinLockIrq<Tally>,
) -> Result<(), String> {
    stop_race.race.wait_turn(2 * round + 1)?;
    let armed_at = Duration::from_nanos(stop_race.armed_at_ns.load(Ordering::Relaxed));
    let armed_tick = stop_race.armed_tick.load(Ordering::Relaxed);
    let batch = stop_race.runs.len();

    // 1. Stop each callout: in even rounds at moments spread over the two
    //    ticks after arming; in odd ones all at once, as soon as one
    //    handler has run or right after the arming CPU's first or second
    //    tick, where the handlers may be starting.
    let mut stopped = Vec::with_capacity(batch);
    if round.is_multiple_of(2) {
        let base = Duration::from_micros((round as u64 / 2 * 53) % 1500);
        for index in 0..batch {
            let moment = armed_at + base + Duration::from_micros(index as u64 * 50);
            api::spin_for(moment.saturating_sub(api::now()));
            stopped.push(stop_race.callout(index).stop());
        }
    } else {
        if round % 4 == 1 {
            // The tick is running the batch: the callouts it has not
            // reached yet are out of the wheel but have not started.
            let ran = || {
                stop_race
                    .runs
                    .iter()
                    .any(|runs| runs.load(Ordering::Acquire) > 0)
            };
            wait_for(Duration::from_secs(1), ran);
        } else {
            let tick = armed_tick + 1 + (round as u64 / 4) % 2;
            wait_for(Duration::from_secs(1), || timer_ticks(ARMING_CPU) >= tick);
            api::spin_for(Duration::from_micros((round as u64 / 8) % 4 * 2));
        }
        for index in 0..batch {
            stopped.push(stop_race.callout(index).stop());
        }
    }

    // 2. Past the tick it was due at (the second after arming, or the
    //    third if a tick came while the batch was armed), no handler runs
    //    any more; and drain waits for one still running.
    if !wait_for(Duration::from_secs(1), || {
        timer_ticks(ARMING_CPU) >= armed_tick + 3
    }) {
        return Err(alloc::format!("round {round}: cpu0 stopped ticking"));
    }
    for index in 0..batch {
        stop_race.callout(index).drain();
    }

    // 3. Count.
    let mut tally = tally.lock();
    for (index, &stopped) in stopped.iter().enumerate() {
        let runs = stop_race.runs[index].load(Ordering::Acquire);
        let bad = match (stopped, runs) {
            (true, 0) => {
                tally.stopped += 1;
                None
            }
            (false, 1) => {
                tally.ran += 1;
                None
            }
            (true, _) => {
                tally.both += 1;
                Some("stop returned true, yet the handler ran")
            }
            (false, 0) => {
                tally.neither += 1;
                Some("stop returned false, yet the handler never ran")
            }
            (false, _) => {
                tally.ran_twice += 1;
                Some("the handler ran more than once")
            }
        };
        if let Some(bad) = bad.filter(|_| tally.first_bad.is_none()) {
            tally.first_bad = Some(alloc::format!("round {round}, callout {index}: {bad}"));
        }
    }
    drop(tally);
    stop_race.race.turn.store(2 * round + 2, Ordering::Release);
    Ok(())
}

/// A callout whose handler arms it again until it has run `limit` times.
struct Rearming {
    callout: Callout,
    runs: AtomicUsize,
    limit: usize,
}

impl Rearming {
    /// Arms the callout for the next tick; the handler reaches this
    /// through a weak reference, so that it does not keep it alive.
    fn arm(&self, weak: Weak<Self>) {
        self.callout.reset(Duration::ZERO, move || {
            let Some(this) = weak.upgrade() else {
                return;
            };
            let runs = this.runs.fetch_add(1, Ordering::AcqRel) + 1;
            if runs < this.limit {
                this.arm(weak.clone());
            }
        });
    }
}

fn rearming_stops_at_drain() -> TestResult {
    let before = census();
    let last = api::ncpus() - 1;

    // 1. Ten runs, re-armed by the handler each time, then no more.
    let limited = Arc::new(Rearming {
        callout: Callout::new(),
        runs: AtomicUsize::new(0),
        limit: 10,
    });
    let shared = limited.clone();
    in_threads(
        1,
        |_| last,
        move |_| {
            shared.arm(Arc::downgrade(&shared));
            Ok(())
        },
    )?;
    let runs = || limited.runs.load(Ordering::Acquire);
    let ten = wait_for(Duration::from_millis(500), || runs() >= 10);
    let outcome = sleep_ms(5);
    limited.callout.drain();
    outcome?;
    check!(ten, "only {} runs of 10", runs());
    check_eq!(runs(), 10, "runs of a handler that re-arms itself 9 times");
    check!(!limited.callout.is_pending(), "pending after its last run");
    drop(limited);

    // 2. A handler that re-arms forever, on the last CPU, drained from
    //    here (another CPU, when there is one) after a varying number of
    //    runs: afterwards it must stay quiet.
    for round in 0..20 {
        let endless = Arc::new(Rearming {
            callout: Callout::new(),
            runs: AtomicUsize::new(0),
            limit: usize::MAX,
        });
        let shared = endless.clone();
        in_threads(
            1,
            |_| last,
            move |_| {
                shared.arm(Arc::downgrade(&shared));
                Ok(())
            },
        )?;
        let enough = 2 + round % 5;
        let ran = wait_for(Duration::from_millis(500), || {
            endless.runs.load(Ordering::Acquire) >= enough
        });
        api::spin_for(Duration::from_micros(round as u64 * 47 % 1000));
        endless.callout.drain();
        let drained_at = endless.runs.load(Ordering::Acquire);
        let outcome = sleep_ms(5);
        let later = endless.runs.load(Ordering::Acquire);
        let pending = endless.callout.is_pending();
        drop(endless);
        outcome?;
        check!(ran, "round {round}: fewer than {enough} runs");
        check_eq!(
            later,
            drained_at,
            "round {round}: runs 5 ms after drain, and at drain"
        );
        check!(!pending, "round {round}: pending after drain");
    }
    check_eq!(census(), before, "callouts pending, threads and heap bytes");
    Ok(())
}
