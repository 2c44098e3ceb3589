//! Shared/exclusive lock: FreeBSD's `sx(9)`, many readers or one writer,
//! whose waiters sleep.
//!
//! # Design
//! An [`SxLock`] has two parts, as a [`super::mutex::Mutex`] does:
//! - the lock word, `state`: readers inside, the writer, and the readers
//!   and writers that sleep for the lock, behind a [`SpinLockIrq`]. Every
//!   grant and release of the lock happens under it.
//! - the value, in a `spin` mutex (`data`) that is locked only by a thread
//!   the state has already admitted, so it never spins.
//!
//! A thread that may not enter sleeps, with the state guard as the
//! interlock (no lost wake-up, as for the mutex): writers on the lock's
//! address, readers on the address plus one, so that a release can wake
//! the one kind without the other.
//!
//! Writers do not starve: once a writer waits, new readers wait too, and
//! the last reader out wakes one writer. A writer's release wakes one
//! waiting writer if there is one, else every waiting reader. Readers can
//! starve under a steady stream of writers, as in FreeBSD.
//!
//! How readers share the value without `unsafe`: while readers are inside,
//! the value sits in an `Arc` and each reader holds a reference of its
//! own; the first reader in moves the value into the `Arc` and the last
//! one out moves it back, so a writer (and a lock at rest) finds it in
//! place and the lock holds no memory while nobody reads.
//!
//! Limitation: each group of overlapping readers costs one allocation and
//! two moves of the value; `spin::RwLock` (the `rwlock` feature of `spin`,
//! not enabled in this build) would share it in place.
//!
//! A thread holding the lock, shared or exclusive, is inside the kernel
//! (each guard holds a [`KernelEntry`], taken before waiting), as for the
//! mutex: an order to exit or suspend waits until the thread has left, so
//! a thread never dies holding the lock.
//!
//! # Invariants
//! - `writer` is `Some` exactly while an [`SxExclusiveGuard`] exists, and
//!   `readers` counts the [`SxSharedGuard`]s; never both at once.
//! - The value is in an `Arc` exactly while `readers > 0`.
//! - `waiting_readers` and `waiting_writers` count threads from the moment
//!   they decide to sleep (under the state lock) until they hold the state
//!   lock again after waking. While `waiting_writers > 0`, no reader is
//!   admitted.
//! - Nothing else uses the lock's address or the address plus one as a
//!   wait channel.
//!
//! # Lock order
//! The state lock, then the data lock, then the heap; the state lock, then
//! a sleep-queue bucket, then a run queue (inside `sleep` and `wakeup`).
//! Taking an sx lock may sleep: never while holding a spin lock.

use alloc::sync::Arc;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use super::lock::{SpinLockIrq, SpinLockIrqGuard};
use super::sleepqueue::{self, SleepFlags};
use crate::arch::cpu;
use crate::sched::ast::KernelEntry;
use crate::sched::scheduler;
use crate::sched::thread::Tid;

/// The lock word of an [`SxLock`].
struct State {
    /// Threads holding the lock shared.
    readers: usize,
    /// The thread holding the lock exclusive.
    writer: Option<Tid>,
    /// Readers that went to sleep for the lock and are not back yet.
    waiting_readers: usize,
    /// Writers that went to sleep for the lock and are not back yet.
    waiting_writers: usize,
}

impl State {
    /// Whether a new reader may enter: no writer inside or waiting.
    fn admits_reader(&self) -> bool {
        self.writer.is_none() && self.waiting_writers == 0
    }

    /// Whether a writer may enter: nobody inside.
    fn admits_writer(&self) -> bool {
        self.writer.is_none() && self.readers == 0
    }
}

/// Where the value of an [`SxLock`] is, under its data lock.
enum Store<T> {
    /// No reader is inside: the value itself.
    Inline(T),
    /// Readers are inside: the value, one reference per reader plus this
    /// one.
    Shared(Arc<T>),
    /// Half-way between the two, within one hold of the data lock.
    Moving,
}

impl<T> Store<T> {
    /// A reference for a new reader; the first one moves the value into
    /// an `Arc`.
    fn share(&mut self) -> Arc<T> {
        let shared = match core::mem::replace(self, Self::Moving) {
            Self::Inline(value) => Arc::new(value),
            Self::Shared(shared) => shared,
            Self::Moving => panic!("sx value left half-moved"),
        };
        *self = Self::Shared(shared.clone());
        shared
    }

    /// The last reader is out: the value moves back in place.
    fn unshare(&mut self) {
        let Self::Shared(shared) = core::mem::replace(self, Self::Moving) else {
            panic!("sx value not shared while readers were inside");
        };
        let value = Arc::try_unwrap(shared)
            .unwrap_or_else(|_| panic!("an sx reader kept its reference after leaving"));
        *self = Self::Inline(value);
    }

    /// The value, which is in place while a writer holds the lock.
    fn value(&self) -> &T {
        match self {
            Self::Inline(value) => value,
            _ => panic!("sx value shared while a writer holds the lock"),
        }
    }

    /// The value, as [`Self::value`], for writing.
    fn value_mut(&mut self) -> &mut T {
        match self {
            Self::Inline(value) => value,
            _ => panic!("sx value shared while a writer holds the lock"),
        }
    }
}

/// A shared/exclusive lock whose waiters sleep.
pub struct SxLock<T> {
    /// Readers, writer and sleepers.
    state: SpinLockIrq<State>,
    /// The protected value; locked only by an admitted thread (see the
    /// module docs), so never contended for long: readers take it under
    /// the state lock, a writer holds it while it writes.
    data: spin::mutex::Mutex<Store<T>>,
}

/// Shared access to the value of an [`SxLock`]; leaves when dropped.
///
/// Not `Send`: the thread that entered is the one that leaves. Dropping
/// it may be a kernel boundary, as for [`super::mutex::MutexGuard`].
pub struct SxSharedGuard<'a, T> {
    lock: &'a SxLock<T>,
    /// This reader's reference; `Some` until `drop`, which gives it back
    /// before leaving.
    value: Option<Arc<T>>,
    /// Keeps the guard on its thread.
    _not_send: PhantomData<*const ()>,
    /// Inside the kernel while inside the lock; dropped last.
    _kernel: KernelEntry,
}

/// Exclusive access to the value of an [`SxLock`]; releases it when
/// dropped.
///
/// Not `Send`: the thread that entered is the one that leaves. Dropping
/// it may be a kernel boundary, as for [`super::mutex::MutexGuard`].
pub struct SxExclusiveGuard<'a, T> {
    lock: &'a SxLock<T>,
    /// `Some` until `drop`, which frees the data before the lock.
    data: Option<spin::mutex::MutexGuard<'a, Store<T>>>,
    /// Keeps the guard on its thread.
    _not_send: PhantomData<*const ()>,
    /// Inside the kernel while inside the lock; dropped last.
    _kernel: KernelEntry,
}

impl<T> SxLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            state: SpinLockIrq::new(State {
                readers: 0,
                writer: None,
                waiting_readers: 0,
                waiting_writers: 0,
            }),
            data: spin::mutex::Mutex::new(Store::Inline(value)),
        }
    }

    /// Enters shared, sleeping (uninterruptibly) while a writer holds the
    /// lock or waits for it.
    ///
    /// # Panics
    /// If the heap is exhausted (the first reader of a group allocates).
    /// In debug builds, if IRQs are masked or the caller holds the lock
    /// exclusive (it would sleep forever).
    ///
    /// # Locking
    /// Thread context only, with no spin lock held: the call may sleep.
    /// Not recursive: a second `read` by a reader sleeps forever once a
    /// writer waits.
    pub fn read(&self) -> SxSharedGuard<'_, T> {
        debug_assert!(
            !cpu::irqs_masked(),
            "SxLock::read may sleep: IRQs are masked"
        );
        let kernel = KernelEntry::enter();
        let mut state = self.state.lock();
        while !state.admits_reader() {
            debug_assert!(
                state.writer != Some(scheduler::current().tid),
                "SxLock::read by its writer"
            );
            state.waiting_readers += 1;
            state = self.sleep_locked(state, self.read_channel());
            state.waiting_readers -= 1;
        }
        self.enter_shared_locked(state, kernel)
    }

    /// Enters shared if no writer holds the lock or waits for it; never
    /// sleeps.
    ///
    /// # Panics
    /// As [`Self::read`], for an exhausted heap.
    ///
    /// # Locking
    /// Thread context only. Never sleeps, but not under a sleep-queue or
    /// run-queue lock: leaving may wake a writer.
    pub fn try_read(&self) -> Option<SxSharedGuard<'_, T>> {
        let kernel = KernelEntry::enter();
        let state = self.state.lock();
        if !state.admits_reader() {
            return None;
        }
        Some(self.enter_shared_locked(state, kernel))
    }

    /// Enters exclusive, sleeping (uninterruptibly) while anyone holds
    /// the lock.
    ///
    /// # Panics
    /// In debug builds, if IRQs are masked or the caller holds the lock
    /// exclusive already (it would sleep forever).
    ///
    /// # Locking
    /// Thread context only, with no spin lock held: the call may sleep.
    /// Not recursive, and a reader must not ask to write (it would wait
    /// for itself).
    pub fn write(&self) -> SxExclusiveGuard<'_, T> {
        debug_assert!(
            !cpu::irqs_masked(),
            "SxLock::write may sleep: IRQs are masked"
        );
        let kernel = KernelEntry::enter();
        // Before the state lock: `current` takes the run-queue lock.
        let me = scheduler::current().tid;
        let mut state = self.state.lock();
        while !state.admits_writer() {
            debug_assert_ne!(state.writer, Some(me), "SxLock::write by its writer");
            state.waiting_writers += 1;
            state = self.sleep_locked(state, self.write_channel());
            state.waiting_writers -= 1;
        }
        state.writer = Some(me);
        drop(state);
        self.exclusive_guard(kernel)
    }

    /// Enters exclusive if nobody holds the lock; never sleeps. It may
    /// pass writers that wait (they are asleep and would find the lock
    /// taken anyway).
    ///
    /// # Locking
    /// As [`Self::try_read`].
    pub fn try_write(&self) -> Option<SxExclusiveGuard<'_, T>> {
        let kernel = KernelEntry::enter();
        let me = scheduler::current().tid;
        let mut state = self.state.lock();
        if !state.admits_writer() {
            return None;
        }
        state.writer = Some(me);
        drop(state);
        Some(self.exclusive_guard(kernel))
    }

    /// The channel writers sleep on: the lock's address.
    fn write_channel(&self) -> usize {
        self as *const Self as usize
    }

    /// The channel readers sleep on: inside the lock, next to the
    /// writers' one.
    fn read_channel(&self) -> usize {
        self.write_channel() + 1
    }

    /// Sleeps on `channel` with the state guard as the interlock; returns
    /// the state locked again.
    fn sleep_locked<'a>(
        &'a self,
        state: SpinLockIrqGuard<'a, State>,
        channel: usize,
    ) -> SpinLockIrqGuard<'a, State> {
        let slept = sleepqueue::sleep(channel, Some(state), SleepFlags::default(), None);
        // Uninterruptible and without a timeout, only a wake-up ends it;
        // the caller checks the state again either way.
        debug_assert!(slept.is_ok(), "uninterruptible sleep ended by {slept:?}");
        self.state.lock()
    }

    /// With the state locked and admitting readers: one more reader,
    /// which entered the kernel with `kernel`.
    fn enter_shared_locked<'a>(
        &'a self,
        mut state: SpinLockIrqGuard<'a, State>,
        kernel: KernelEntry,
    ) -> SxSharedGuard<'a, T> {
        // Under the state lock, so readers take the data lock one at a
        // time, with IRQs masked: none can be preempted holding it.
        state.readers += 1;
        let mut data = self
            .data
            .try_lock()
            .expect("no writer inside while readers are");
        let value = data.share();
        drop(data);
        drop(state);
        let value = Some(value);
        SxSharedGuard {
            lock: self,
            value,
            _not_send: PhantomData,
            _kernel: kernel,
        }
    }

    /// The guard of a new writer, recorded in the state already, which
    /// entered the kernel with `kernel`.
    fn exclusive_guard(&self, kernel: KernelEntry) -> SxExclusiveGuard<'_, T> {
        let data = Some(
            self.data
                .try_lock()
                .expect("only the writer locks the data"),
        );
        SxExclusiveGuard {
            lock: self,
            data,
            _not_send: PhantomData,
            _kernel: kernel,
        }
    }
}

impl<T> Deref for SxSharedGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value.as_ref().expect("held until drop")
    }
}

impl<T> Drop for SxSharedGuard<'_, T> {
    /// Leaves in three steps.
    ///
    /// 1. Give back this reader's reference, so that the last reader can
    ///    take the value out of the `Arc`.
    /// 2. Under the state lock, one reader fewer; the last one moves the
    ///    value back in place and sees whether a writer waits.
    /// 3. Wake one writer. Outside the state lock is enough: a counted
    ///    sleeper joined the sleep queue before the state lock was
    ///    released, so the wake-up finds it (or it is awake already).
    fn drop(&mut self) {
        // 1. Give back the reference.
        drop(self.value.take());

        // 2. Leave.
        let lock = self.lock;
        let mut state = lock.state.lock();
        state.readers -= 1;
        let last = state.readers == 0;
        if last {
            lock.data
                .try_lock()
                .expect("no writer inside while readers are")
                .unshare();
        }
        let wake_writer = last && state.waiting_writers > 0;
        drop(state);

        // 3. Wake a writer.
        if wake_writer {
            sleepqueue::wakeup_one(lock.write_channel());
        }
    }
}

impl<T> Deref for SxExclusiveGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_ref().expect("held until drop").value()
    }
}

impl<T> DerefMut for SxExclusiveGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("held until drop").value_mut()
    }
}

impl<T> Drop for SxExclusiveGuard<'_, T> {
    /// Releases in three steps.
    ///
    /// 1. Free the data, so the next thread admitted finds it unlocked.
    /// 2. Clear the writer under the state lock, and choose whom to wake:
    ///    a waiting writer first, so writers do not starve; else every
    ///    waiting reader, as they can all enter together.
    /// 3. Wake them, outside the state lock (as for a reader's leaving).
    fn drop(&mut self) {
        // 1. Free the data.
        drop(self.data.take());

        // 2. Release and choose.
        let lock = self.lock;
        let mut state = lock.state.lock();
        debug_assert!(state.writer.is_some(), "a guard exists, so a writer does");
        state.writer = None;
        let wake_writer = state.waiting_writers > 0;
        let wake_readers = state.waiting_readers > 0;
        drop(state);

        // 3. Wake.
        if wake_writer {
            sleepqueue::wakeup_one(lock.write_channel());
        } else if wake_readers {
            sleepqueue::wakeup(lock.read_channel());
        }
    }
}
