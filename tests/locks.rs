//! Sleepable locks: the mutex and the shared/exclusive lock, contended
//! from threads on every CPU (on one CPU the threads interleave by
//! preemption). Each case checks that no thread and no heap byte is left.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;

use crate::api::kernel::{self, Mutex, SingleMode, SpinLockIrq, SxLock, ThreadGroup};
use crate::api::test::{Case, TestResult, in_threads, wait_for};
use crate::api::{self, ThreadOptions, Tid};
use crate::{check, check_eq};

pub const CASES: &[Case] = &[
    Case {
        name: "mutex_counts_exactly_under_contention",
        run: mutex_counts_exactly,
    },
    Case {
        name: "mutex_try_lock_fails_while_held",
        run: mutex_try_lock,
    },
    Case {
        name: "mutex_waiters_sleep_while_the_holder_sleeps",
        run: mutex_waiters_sleep,
    },
    Case {
        name: "sx_readers_share",
        run: sx_readers_share,
    },
    Case {
        name: "sx_writer_excludes_readers_and_writers",
        run: sx_writer_excludes,
    },
    Case {
        name: "sx_writer_not_starved_by_readers",
        run: sx_writer_not_starved,
    },
    Case {
        name: "holders_stop_only_after_releasing",
        run: holders_stop_after_releasing,
    },
];

/// Threads and heap bytes in use, to compare before and after a case.
fn census() -> (usize, usize) {
    (api::nthreads(), api::heap_in_use())
}


/// CPU of the `index`th thread when threads are spread evenly.
fn spread(index: usize) -> usize {
    index % api::ncpus()
}

fn mutex_counts_exactly() -> TestResult {
    // Two threads per CPU each add 1 to a plain counter 2,000 times, in a
    // read-then-write that a second thread inside would break. Inside,
    // the mutex must name its holder.
    const ROUNDS: usize = 2000;
    let before = census();
    let threads = 2 * api::ncpus();
    let mutex = Arc::new(Mutex::new(0usize));
    let shared = mutex.clone();
    in_threads(threads, spread, move |_| {
        let me = api::gettid();
        for round in 0..ROUNDS {
            let mut count = shared.lock();
            let owner = shared.owner();
            if owner != Some(me) {
                return Err(alloc::format!(
                    "round {round}: owner {owner:?} inside, not {me}"
                ));
            }
            let seen = *count;
            // Let the compiler assume anything happened in between.
            *count = black_box(seen) + 1;
        }
        Ok(())
    })?;
    check_eq!(
        *mutex.lock(),
        threads * ROUNDS,
        "count after {threads} threads"
    );
    check!(
        !mutex.is_locked() && mutex.owner().is_none(),
        "the mutex is still held"
    );
    drop(mutex);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}

fn mutex_try_lock() -> TestResult {
    let before = census();
    let mutex = Arc::new(Mutex::new(0usize));
    let other_cpu = api::ncpus() - 1;

    // 1. Held here: another thread (on another CPU when there is one)
    //    fails to take it, and sees this thread as the owner.
    let me = api::gettid();
    let held = mutex.lock();
    check_eq!(mutex.owner(), Some(me), "owner while held here");
    check!(
        mutex.try_lock().is_none(),
        "try_lock by the owner itself succeeded"
    );
    let shared = mutex.clone();
    in_threads(
        1,
        |_| other_cpu,
        move |_| {
            if shared.try_lock().is_some() {
                return Err("try_lock succeeded while another thread held the mutex".into());
            }
            match shared.owner() {
                Some(owner) if owner == me => Ok(()),
                owner => Err(alloc::format!("owner {owner:?}, expected {me}")),
            }
        },
    )?;
    drop(held);

    // 2. Free: the other thread takes it and is its owner.
    check!(!mutex.is_locked(), "still locked after the guard dropped");
    let shared = mutex.clone();
    in_threads(
        1,
        |_| other_cpu,
        move |_| {
            let me = api::gettid();
            let Some(mut value) = shared.try_lock() else {
                return Err("try_lock failed on a free mutex".into());
            };
            *value += 1;
            if shared.owner() != Some(me) || !shared.is_locked() {
                return Err(alloc::format!(
                    "owner {:?} after try_lock by {me}",
                    shared.owner()
                ));
            }
            Ok(())
        },
    )?;
    check_eq!(*mutex.lock(), 1, "value written under try_lock");
    check_eq!(mutex.owner(), None, "owner once free");
    drop(mutex);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}

/// What the threads of `mutex_waiters_sleep` share with the case.
struct Turns {
    mutex: Mutex<usize>,
    /// The first holder is inside, sleeping until `seen`.
    first_inside: AtomicBool,
    /// The case has looked at the sleep queues.
    seen: AtomicBool,
}

fn mutex_waiters_sleep() -> TestResult {
    // Each thread holds the mutex across a 2 ms sleep; the first one goes
    // on sleeping inside until this thread has looked. While it sleeps
    // inside, the others must sleep in `lock` too, not spin: this thread
    // must see every one of them in a sleep queue.
    let before = census();
    let threads = (api::ncpus() + 1).max(3);
    let turns = Arc::new(Turns {
        mutex: Mutex::new(0),
        first_inside: AtomicBool::new(false),
        seen: AtomicBool::new(false),
    });
    let mut tids: Vec<Tid> = Vec::new();
    for index in 0..threads {
        let shared = turns.clone();
        let spawned = api::thread_spawn_with(
            move || {
                let mut count = shared.mutex.lock();
                let first = *count == 0;
                shared.first_inside.store(first, Ordering::Release);
                let deadline = api::now() + Duration::from_secs(1);
                let mut slept = api::sleep(Duration::from_millis(2));
                while first && !shared.seen.load(Ordering::Acquire) && api::now() < deadline {
                    slept = slept.and(api::sleep(Duration::from_millis(1)));
                }
                *count += 1;
                usize::from(slept.is_err())
            },
            ThreadOptions::pinned(spread(index)),
        );
        match spawned {
            Ok(tid) => tids.push(tid),
            Err(error) => {
                turns.seen.store(true, Ordering::Release);
                for tid in tids {
                    let _ = api::thread_join(tid);
                }
                return Err(alloc::format!("spawning thread {index}: {error}").into());
            }
        }
    }

    // Look while the first holder sleeps inside: all should sleep.
    let first_inside = || turns.first_inside.load(Ordering::Acquire);
    let inside = wait_for(Duration::from_secs(1), first_inside);
    let mut most_asleep = 0;
    let deadline = api::now() + Duration::from_secs(1);
    while inside && most_asleep < threads && api::now() < deadline {
        most_asleep = most_asleep.max(kernel::sleeping_threads());
        api::sched_yield();
    }
    turns.seen.store(true, Ordering::Release);

    for tid in tids {
        check_eq!(
            api::thread_join(tid),
            Ok(0),
            "result of a thread (1: its sleep failed)"
        );
    }
    check!(inside, "no thread got the mutex");
    check_eq!(*turns.mutex.lock(), threads, "threads that got the mutex");
    check!(
        most_asleep >= threads,
        "at most {most_asleep} threads asleep at once; all {threads} should have been (one \
         holding the mutex in its sleep, the others waiting for it)"
    );
    drop(turns);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}

fn sx_readers_share() -> TestResult {
    // Two readers, each waiting inside until the other is inside too: the
    // lock must let them share. Inside, a writer must be refused and
    // another reader admitted.
    let before = census();
    let lock = Arc::new(SxLock::new(7usize));
    let inside = Arc::new(AtomicUsize::new(0));
    let shared = lock.clone();
    let result = in_threads(2, spread, move |_| {
        let value = shared.read();
        inside.fetch_add(1, Ordering::AcqRel);
        let other_inside = || inside.load(Ordering::Acquire) >= 2;
        let both = wait_for(Duration::from_millis(500), other_inside);
        let write_refused = shared.try_write().is_none();
        let read_admitted = shared.try_read().map(|again| *again);
        let seen = *value;
        drop(value);
        match (both, write_refused, read_admitted, seen) {
            (false, ..) => Err("the other reader never got in beside this one".into()),
            (_, false, ..) => Err("try_write succeeded while readers were inside".into()),
            (_, _, None, _) => Err("try_read refused while only readers were inside".into()),
            (_, _, Some(7), 7) => Ok(()),
            (.., again, seen) => Err(alloc::format!("read {seen} and {again:?}, wrote 7")),
        }
    });
    result?;
    check!(
        lock.try_write().is_some(),
        "try_write refused once the readers left"
    );
    drop(lock);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}

/// What the writers of `sx_writer_excludes` share with its readers.
struct Pair {
    lock: SxLock<[u64; 2]>,
    readers_inside: AtomicUsize,
    writers_inside: AtomicUsize,
    writers_done: AtomicUsize,
}

fn sx_writer_excludes() -> TestResult {
    // Writers add 1 to both halves of a pair, one half at a time, with a
    // pause between; readers check that the halves are equal. Atomic
    // counts of those inside check the exclusion directly.
    const WRITES: u64 = 300;
    let before = census();
    let writers = api::ncpus().max(2);
    let readers = api::ncpus().max(2);
    let pair = Arc::new(Pair {
        lock: SxLock::new([0, 0]),
        readers_inside: AtomicUsize::new(0),
        writers_inside: AtomicUsize::new(0),
        writers_done: AtomicUsize::new(0),
    });
    let shared = pair.clone();
    in_threads(writers + readers, spread, move |index| {
        if index < writers {
            write_pairs(&shared, WRITES)
        } else {
            read_pairs(&shared, writers)
        }
    })?;
    let total = writers as u64 * WRITES;
    check_eq!(
        *pair.lock.read(),
        [total, total],
        "pair after {writers} writers"
    );
    drop(pair);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}

fn write_pairs(pair: &Pair, writes: u64) -> Result<(), String> {
    let mut result = Ok(());
    for write in 0..writes {
        let mut value = pair.lock.write();
        let others = pair.writers_inside.fetch_add(1, Ordering::AcqRel);
        let readers = pair.readers_inside.load(Ordering::Acquire);
        if others != 0 || readers != 0 {
            let inside = alloc::format!("{others} other writers, {readers} readers");
            result = Err(alloc::format!("write {write}: {inside} inside"));
        }
        value[0] += 1;
        // The half-written pair must reach memory, and stay there a while.
        black_box(&*value);
        if write.is_multiple_of(8) {
            api::sched_yield();
        } else {
            api::spin_for(Duration::from_micros(5));
        }
        value[1] += 1;
        pair.writers_inside.fetch_sub(1, Ordering::AcqRel);
        drop(value);
        if result.is_err() {
            break;
        }
    }
    pair.writers_done.fetch_add(1, Ordering::AcqRel);
    result
}

fn read_pairs(pair: &Pair, writers: usize) -> Result<(), String> {
    let mut reads = 0usize;
    while pair.writers_done.load(Ordering::Acquire) < writers {
        let value = pair.lock.read();
        pair.readers_inside.fetch_add(1, Ordering::AcqRel);
        let writers_inside = pair.writers_inside.load(Ordering::Acquire);
        let halves = *value;
        pair.readers_inside.fetch_sub(1, Ordering::AcqRel);
        drop(value);
        reads += 1;
        if writers_inside != 0 || halves[0] != halves[1] {
            return Err(alloc::format!(
                "read {reads}: pair {halves:?} with {writers_inside} writers inside"
            ));
        }
        if reads.is_multiple_of(16) {
            api::sched_yield();
        }
    }
    Ok(())
}

/// What the readers of `sx_writer_not_starved` share with its writer.
struct Stream {
    lock: SxLock<usize>,
    /// Read acquisitions so far.
    reads: AtomicUsize,
    /// The writer's round while it asks for the lock, else [`IDLE`].
    asking: AtomicUsize,
    /// Per round: `reads` when a reader first found itself refused
    /// because of the writer, or `usize::MAX`.
    refused_at: Vec<AtomicUsize>,
    /// The writer is done.
    stop: AtomicBool,
    /// The readers gave up at their deadline, the writer still not done.
    timed_out: AtomicBool,
}

/// Per round of `sx_writer_not_starved`: reads counted since the writer
/// asked, and since a reader was refused (`None` when none was).
type Waits = SpinLockIrq<Vec<(usize, Option<usize>)>>;

/// [`Stream::asking`] when the writer is not asking.
const IDLE: usize = usize::MAX;

fn sx_writer_not_starved() -> TestResult {
    // Four readers take the lock again and again, so that one of them is
    // nearly always inside; the writer asks for it 20 times, a
    // millisecond apart.
    //
    // 1. The writer must get through all its rounds while the readers go
    //    on: without writer preference it waits until they give up.
    // 2. Once the writer waits, readers must wait too. A reader that is
    //    refused by `try_read` while the writer asks knows the writer
    //    waits (or holds the lock), and notes the read count; from then
    //    until the writer gets in, only readers that got in before the
    //    writer asked may still count their read: at most one per reader
    //    thread. Counting from that moment, not from the writer's own
    //    count before it asks, keeps the emulator's scheduling of virtual
    //    CPUs (which can stall a CPU for milliseconds) out of the figure.
    const READERS: usize = 4;
    const ROUNDS: usize = 20;
    let before = census();
    let stream = Arc::new(Stream {
        lock: SxLock::new(0),
        reads: AtomicUsize::new(0),
        asking: AtomicUsize::new(IDLE),
        refused_at: (0..ROUNDS).map(|_| AtomicUsize::new(usize::MAX)).collect(),
        stop: AtomicBool::new(false),
        timed_out: AtomicBool::new(false),
    });
    // Per round: reads counted after the writer's own count, and after a
    // reader was refused (`None` when none was).
    let waits: Arc<Waits> = Arc::new(SpinLockIrq::new(Vec::with_capacity(ROUNDS)));
    let (shared, writer_waits, ncpus) = (stream.clone(), waits.clone(), api::ncpus());
    // The writer is thread 0, on CPU 0; the readers on the other CPUs.
    let cpu_of = move |index: usize| match (index, ncpus) {
        (0, _) | (_, 1) => 0,
        (index, ncpus) => 1 + index % (ncpus - 1),
    };
    in_threads(1 + READERS, cpu_of, move |index| {
        if index == 0 {
            write_rounds(&shared, &writer_waits)
        } else {
            read_stream(&shared);
            Ok(())
        }
    })?;

    let reads = stream.reads.load(Ordering::Relaxed);
    let seen = waits.lock();
    let rounds = seen.len();
    let worst = seen.iter().filter_map(|&(_, refused)| refused).max();
    let listing = alloc::format!("{:?}", *seen);
    drop(seen);
    drop(waits);
    check!(
        !stream.timed_out.load(Ordering::Relaxed),
        "the writer starved: the readers stopped at their deadline after {rounds} rounds \
         ({reads} reads; per round, reads since it asked and since a reader was refused: \
         {listing})"
    );
    check_eq!(rounds, ROUNDS, "writer rounds");
    check!(
        worst.is_some(),
        "no reader was ever refused for the writer: {listing}"
    );
    check!(
        worst.is_some_and(|worst| worst <= READERS),
        "readers got in while the writer waited: {worst:?} > {READERS} reads after a \
         refusal; per round, reads since it asked and since a reader was refused: {listing}"
    );
    check_eq!(*stream.lock.read(), ROUNDS, "writes");
    drop(listing);
    drop(stream);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}

fn write_rounds(stream: &Stream, waits: &Waits) -> Result<(), String> {
    let mut result = Ok(());
    for round in 0..stream.refused_at.len() {
        if let Err(error) = api::sleep(Duration::from_millis(1)) {
            result = Err(alloc::format!("round {round}: sleep: {error}"));
            break;
        }
        stream.asking.store(round, Ordering::Release);
        let start = stream.reads.load(Ordering::Acquire);
        let mut value = stream.lock.write();
        let end = stream.reads.load(Ordering::Acquire);
        stream.asking.store(IDLE, Ordering::Release);
        *value += 1;
        drop(value);
        let refused_at = stream.refused_at[round].load(Ordering::Acquire);
        let since_refused = (refused_at != usize::MAX).then(|| end.saturating_sub(refused_at));
        waits.lock().push((end - start, since_refused));
    }
    stream.stop.store(true, Ordering::Release);
    result
}

fn read_stream(stream: &Stream) {
    // A backstop only, so that a starved writer fails the case instead of
    // hanging it: the emulator's speed depends on the host's load, and
    // the writer's 20 rounds of a millisecond may take a second or more.
    let deadline = api::now() + Duration::from_secs(10);
    while !stream.stop.load(Ordering::Acquire) {
        if api::now() > deadline {
            stream.timed_out.store(true, Ordering::Release);
            return;
        }
        // The round is read before trying: a refusal then comes from
        // this round's writer, not from the one before.
        let round = stream.asking.load(Ordering::Acquire);
        let value = match stream.lock.try_read() {
            Some(value) => value,
            None => {
                if round != IDLE {
                    let reads = stream.reads.load(Ordering::Acquire);
                    stream.refused_at[round].fetch_min(reads, Ordering::AcqRel);
                }
                stream.lock.read()
            }
        };
        stream.reads.fetch_add(1, Ordering::AcqRel);
        api::spin_for(Duration::from_micros(20));
        drop(value);
    }
}

/// What `holders_stop_only_after_releasing` shares with the threads it
/// stops. Statics, not captured `Arc`s, and functions, not closures: a
/// thread stopped at its boundary does not unwind, so what it owns (its
/// boxed body included, unless zero-sized) would never be freed.
static HELD_MUTEX: Mutex<usize> = Mutex::new(0);
static HELD_SX: SxLock<usize> = SxLock::new(0);
/// Holders inside their lock.
static HOLDING: AtomicUsize = AtomicUsize::new(0);
/// The leader saw the writer wait, and is about to order the exit.
static WRITER_SEEN: AtomicBool = AtomicBool::new(false);
/// Holders that went on after releasing (a stopped one does not).
static WENT_ON: AtomicUsize = AtomicUsize::new(0);

/// How long a holder keeps its lock once the exit is about to be ordered.
const HOLD: Duration = Duration::from_millis(20);

/// Waits, yielding, up to a second for `flag`.
fn wait_flag(flag: &AtomicBool) {
    let _ = wait_for(Duration::from_secs(1), || flag.load(Ordering::Acquire));
}

fn hold_mutex() -> usize {
    let mut count = HELD_MUTEX.lock();
    HOLDING.fetch_add(1, Ordering::AcqRel);
    wait_flag(&WRITER_SEEN);
    api::spin_for(HOLD);
    *count += 1;
    drop(count);
    WENT_ON.fetch_add(1, Ordering::AcqRel);
    7
}

fn hold_shared() -> usize {
    let value = HELD_SX.read();
    HOLDING.fetch_add(1, Ordering::AcqRel);
    wait_flag(&WRITER_SEEN);
    api::spin_for(HOLD);
    drop(value);
    WENT_ON.fetch_add(1, Ordering::AcqRel);
    7
}

fn wait_exclusive() -> usize {
    // Asks while the reader is inside: it sleeps in `write` when the exit
    // is ordered, and once woken must still write before it stops.
    let _ = wait_for(Duration::from_secs(1), || {
        HOLDING.load(Ordering::Acquire) >= 2
    });
    let mut value = HELD_SX.write();
    *value += 1;
    drop(value);
    WENT_ON.fetch_add(1, Ordering::AcqRel);
    7
}

fn order_exit() -> usize {
    // The writer waits once a `try_read` is refused while only the reader
    // is inside.
    let writer_waits = || HOLDING.load(Ordering::Acquire) >= 2 && HELD_SX.try_read().is_none();
    if !wait_for(Duration::from_secs(1), writer_waits) {
        return 2;
    }
    WRITER_SEEN.store(true, Ordering::Release);
    usize::from(kernel::thread_single(SingleMode::Exit).is_ok())
}

fn holders_stop_after_releasing() -> TestResult {
    // Three members of a group hold or wait for locks while running
    // payload code: the mutex, the sx lock shared, and the sx lock
    // exclusive (asleep until the reader leaves). A fourth orders them
    // all to exit. Each must finish its critical section and release
    // before it stops: a thread that died holding a lock would leave it
    // held forever.
    let before = census();
    HOLDING.store(0, Ordering::Release);
    WRITER_SEEN.store(false, Ordering::Release);
    WENT_ON.store(0, Ordering::Release);
    let group = ThreadGroup::new();
    let mut tids = Vec::new();
    for (index, spawned) in [
        kernel::spawn_in_group(&group, hold_mutex, ThreadOptions::pinned(spread(0))),
        kernel::spawn_in_group(&group, hold_shared, ThreadOptions::pinned(spread(1))),
        kernel::spawn_in_group(&group, wait_exclusive, ThreadOptions::pinned(spread(2))),
        kernel::spawn_in_group(&group, order_exit, ThreadOptions::pinned(spread(3))),
    ]
    .into_iter()
    .enumerate()
    {
        let spawned = spawned.map_err(|error| alloc::format!("member {index}: {error}"));
        tids.push(spawned?);
    }
    let leader = tids.pop().expect("four members");
    check_eq!(
        api::thread_join(leader),
        Ok(1),
        "the leader's thread_single (2: no writer)"
    );
    for (index, tid) in tids.into_iter().enumerate() {
        // 0: stopped at a boundary (the release), not a normal return.
        check_eq!(api::thread_join(tid), Ok(0), "result of holder {index}");
    }
    check_eq!(
        WENT_ON.load(Ordering::Acquire),
        0,
        "holders that went on after releasing"
    );
    check!(
        !HELD_MUTEX.is_locked(),
        "the mutex is held by a stopped thread"
    );
    check_eq!(
        HELD_MUTEX.try_lock().map(|count| *count),
        Some(1),
        "the mutex's count"
    );
    check_eq!(
        HELD_SX.try_write().map(|value| *value),
        Some(1),
        "the sx lock's value"
    );
    drop(group);
    check_eq!(census(), before, "threads and heap bytes");
    Ok(())
}
