//! Sleep queues: `sleep` on a wait channel and `wakeup`, FreeBSD's
//! `sleepq(9)` and `msleep(9)` semantics.
//!
//! A channel is an address. Threads sleeping on it wait in the bucket that
//! the address hashes to, under that bucket's lock, which orders every
//! change of a thread from [`State::Sleeping`]: the waker that finds it in
//! the bucket, the timeout, and an abort (single-threading, signals) each
//! take the thread out under the lock, so exactly one of them wakes it.
//!
//! No lost wake-up: a sleeper joins the bucket before it releases the lock
//! that protects the condition it checked (the interlock), so a waker that
//! changes the condition under that lock and then calls `wakeup` finds it.
//!
//! # Lock order
//! interlock, then a bucket, then a run queue (when waking), then the heap.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use super::callout::Callout;
use super::lock::{LockClass, SpinLockIrq, SpinLockIrqGuard};
use crate::api::Errno;
use crate::sched::ast::KernelEntry;
use crate::sched::scheduler;
use crate::sched::thread::{FLAG_EXIT, FLAG_SUSPEND, State, Thread};

const BUCKETS: usize = 64;

static BUCKETS_OF: [SpinLockIrq<Vec<Arc<Thread>>>; BUCKETS] =
    [const { SpinLockIrq::ordered(LockClass::SleepQueue, Vec::new()) }; BUCKETS];

fn bucket(channel: usize) -> &'static SpinLockIrq<Vec<Arc<Thread>>> {
    // Channels are addresses: drop the low bits, mix the rest.
    let hash = (channel >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
    &BUCKETS_OF[hash % BUCKETS]
}

/// How a sleep may end early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SleepFlags {
    /// An order to exit or suspend (and, later, a signal) ends the sleep
    /// with `ERESTART` (FreeBSD's `PCATCH`).
    pub interruptible: bool,
}

/// Sleeps on `channel` until woken, releasing `interlock` once the thread
/// is on the sleep queue.
///
/// # Errors
/// - `EWOULDBLOCK` when `timeout` passed first;
/// - `ERESTART` for an interruptible sleep ended by an order to exit or
///   suspend (also when the order was pending before the sleep began; the
///   thread then does not sleep at all). The interlock is released in
///   every case.
pub fn sleep<T>(
    channel: usize,
    interlock: Option<SpinLockIrqGuard<'_, T>>,
    flags: SleepFlags,
    timeout: Option<Duration>,
) -> Result<(), Errno> {
    // Inside the kernel for the whole sleep: an order to exit or suspend
    // waits for the caller's boundary, never stops the thread in here.
    let _kernel = KernelEntry::enter();
    let me = scheduler::current();

    // The alarm's memory, allocated before any lock is taken.
    let alarm = timeout.map(|_| Callout::new());

    // 1. Join the queue, or refuse to sleep when an order is pending.
    let mut queue = bucket(channel).lock();
    if flags.interruptible && me.flags() & (FLAG_EXIT | FLAG_SUSPEND) != 0 {
        drop(queue);
        drop(interlock);
        return Err(Errno::ERESTART);
    }
    let generation = me.sleep_generation.fetch_add(1, Ordering::Relaxed) + 1;
    me.wait_channel.store(channel, Ordering::Relaxed);
    me.wake_reason.store(0, Ordering::Relaxed);
    me.interruptible
        .store(flags.interruptible, Ordering::Relaxed);
    me.set_state(State::Sleeping);
    queue.push(me.clone());

    // 2. The timeout, if any, is armed before the bucket lock (and its IRQ
    //    mask) is released: from then on an interrupt may switch this
    //    thread out as a sleeper, and only the alarm would wake it. It
    //    wakes this sleep and no later one: the generation tells them
    //    apart. Lock order: bucket, then the callout's state and wheel.
    if let (Some(callout), Some(timeout)) = (alarm.as_ref(), timeout) {
        let sleeper = me.clone();
        callout.reset(timeout, move || {
            wake_thread(&sleeper, generation, Errno::EWOULDBLOCK);
        });
    }
    drop(queue);

    // 3. Only now may the condition change: a waker will find us.
    drop(interlock);

    // 4. Switch away unless woken already.
    drop(me);
    scheduler::schedule();

    // 5. Awake. The timeout must be gone before its closure's reference
    //    to this thread is dropped and the thread goes on.
    if let Some(callout) = alarm {
        callout.drain();
    }
    let me = scheduler::current();
    match me.wake_reason.load(Ordering::Acquire) {
        0 => Ok(()),
        reason => Err(Errno(reason)),
    }
}

/// Sleeps on `channel`, uninterruptibly, until `condition` holds. The
/// condition is checked under the channel's bucket lock, so a waker that
/// makes it true inside [`wakeup_after`] cannot be missed.
///
/// The caller must be inside the kernel already (a [`KernelEntry`] or a
/// thread that no order can reach): this frame holds a reference to the
/// thread across the sleep.
pub fn wait_until(channel: usize, condition: impl Fn() -> bool) {
    let me = scheduler::current();
    loop {
        let mut queue = bucket(channel).lock();
        if condition() {
            return;
        }
        me.sleep_generation.fetch_add(1, Ordering::Relaxed);
        me.wait_channel.store(channel, Ordering::Relaxed);
        me.wake_reason.store(0, Ordering::Relaxed);
        me.interruptible.store(false, Ordering::Relaxed);
        me.set_state(State::Sleeping);
        queue.push(me.clone());
        drop(queue);
        scheduler::schedule();
    }
}

/// Wakes every thread sleeping on `channel`; returns how many.
pub fn wakeup(channel: usize) -> usize {
    wake(channel, usize::MAX, || {})
}

/// Wakes the thread that has slept longest on `channel`, if any.
pub fn wakeup_one(channel: usize) -> bool {
    wake(channel, 1, || {}) == 1
}

/// Runs `change` under `channel`'s bucket lock, then wakes every sleeper
/// on the channel: the pair [`wait_until`] checks against.
pub fn wakeup_after(channel: usize, change: impl FnOnce()) -> usize {
    wake(channel, usize::MAX, change)
}

fn wake(channel: usize, most: usize, change: impl FnOnce()) -> usize {
    let mut queue = bucket(channel).lock();
    change();
    let mut woken = 0;
    let mut index = 0;
    while index < queue.len() && woken < most {
        if queue[index].wait_channel.load(Ordering::Relaxed) == channel {
            let thread = queue.remove(index);
            make_runnable(thread, 0);
            woken += 1;
        } else {
            index += 1;
        }
    }
    let emptied = release_if_empty(&mut queue);
    drop(queue);
    drop(emptied);
    woken
}

/// Ends `thread`'s sleep with `reason` if it still sleeps the sleep
/// numbered `generation`. Used by timeouts.
fn wake_thread(thread: &Arc<Thread>, generation: u64, reason: Errno) -> bool {
    let channel = thread.wait_channel.load(Ordering::Relaxed);
    let mut queue = bucket(channel).lock();
    let current = thread.sleep_generation.load(Ordering::Relaxed) == generation;
    let taken =
        current && thread.state() == State::Sleeping && take_with(&mut queue, thread, reason.0);
    let emptied = release_if_empty(&mut queue);
    drop(queue);
    drop(emptied);
    taken
}

/// Ends `thread`'s sleep with `ERESTART` if it sleeps interruptibly (an
/// order to exit or suspend was given to it). Returns whether it was
/// woken.
pub fn abort(thread: &Arc<Thread>) -> bool {
    let channel = thread.wait_channel.load(Ordering::Relaxed);
    let mut queue = bucket(channel).lock();
    let taken = thread.state() == State::Sleeping
        && thread.interruptible.load(Ordering::Relaxed)
        && thread.wait_channel.load(Ordering::Relaxed) == channel
        && take_with(&mut queue, thread, Errno::ERESTART.0);
    let emptied = release_if_empty(&mut queue);
    drop(queue);
    drop(emptied);
    taken
}

fn take_with(queue: &mut Vec<Arc<Thread>>, thread: &Arc<Thread>, reason: i32) -> bool {
    match queue.iter().position(|t| Arc::ptr_eq(t, thread)) {
        Some(index) => {
            let thread = queue.remove(index);
            make_runnable(thread, reason);
            true
        }
        None => false,
    }
}

/// With the bucket lock held: `thread` leaves the bucket and runs again.
fn make_runnable(thread: Arc<Thread>, reason: i32) {
    thread.wake_reason.store(reason, Ordering::Release);
    let was_sleeping = thread.transition(State::Sleeping, State::Runnable);
    debug_assert!(was_sleeping, "a thread in a sleep queue sleeps");
    scheduler::enqueue(thread);
}

/// Room each bucket keeps, allocated at boot ([`init`]).
const BUCKET_ROOM: usize = 16;

/// Gives every bucket its standing room, so that a sleep allocates
/// nothing unless many threads share a bucket; once, at boot.
pub fn init() {
    for bucket in &BUCKETS_OF {
        let room = Vec::with_capacity(BUCKET_ROOM);
        *bucket.lock() = room;
    }
}

/// A bucket that grew past its standing room gives the extra back once it
/// is empty again (the caller drops what this returns after unlocking),
/// so that sleeping leaves no trace on the heap.
fn release_if_empty(queue: &mut Vec<Arc<Thread>>) -> Vec<Arc<Thread>> {
    if queue.is_empty() && queue.capacity() > BUCKET_ROOM {
        core::mem::replace(queue, Vec::with_capacity(BUCKET_ROOM))
    } else {
        Vec::new()
    }
}

/// Threads asleep now, for the figures.
pub fn sleeping() -> usize {
    BUCKETS_OF.iter().map(|bucket| bucket.lock().len()).sum()
}
