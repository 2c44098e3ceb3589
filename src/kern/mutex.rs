//! Sleepable mutex: FreeBSD's sleep mutex (`mtx(9)` without spinning),
//! for data that a thread may hold across a sleep.
//!
//! # Design
//! A [`Mutex`] has two parts:
//! - the lock word, `state`: the owner's [`Tid`] and how many threads
//!   sleep for the mutex, behind a [`SpinLockIrq`]. Every change of owner
//!   happens under it.
//! - the data, in a `spin` mutex that only the owner locks, after the
//!   state names it owner: that lock is never contended, and it hands out
//!   `&mut T` without `unsafe`.
//!
//! A thread that finds the mutex owned sleeps on the mutex's address (its
//! wait channel) and hands the state guard to `sleep` as the interlock: it
//! is on the sleep queue before anyone can change the owner, so the
//! release's `wakeup_one` finds it. There is no lost wake-up.
//!
//! Release clears the owner and wakes the longest sleeper, which competes
//! for the mutex again: there is no hand-off, and a thread that comes along
//! in between may take the mutex first. The woken thread then sleeps again,
//! and the release of the thread that beat it wakes the next sleeper, so
//! every release with sleepers wakes one and the mutex is never free while
//! a thread sleeps for it unwoken.
//!
//! A thread holding a mutex is inside the kernel: `lock` enters it (a
//! [`KernelEntry`]) and the guard leaves it after the release. An order to
//! exit or suspend therefore waits until the thread has released the
//! mutex, so a thread never dies holding one, and a waiter is never
//! stopped between being woken and taking the mutex (which would waste the
//! wake-up that the next waiter needs).
//!
//! # Invariants
//! - `owner` is `Some` exactly while a [`MutexGuard`] of the mutex exists;
//!   the guard frees the data before it clears the owner.
//! - A thread sleeps on the channel only after it saw `owner` set under the
//!   state lock, and `sleepers` counts it from then until it holds the
//!   state lock again after waking.
//! - Nothing else uses the mutex's address as a wait channel.
//!
//! # Lock order
//! The state lock, then a sleep-queue bucket, then a run queue (inside
//! `sleep` and `wakeup_one`). A thread may take a spin lock while it holds
//! a [`Mutex`], never the reverse: taking a mutex may sleep.
//!
//! Limitation: no priority propagation (FreeBSD's turnstiles lend the
//! waiter's priority to the owner); a low-priority owner preempted by a
//! busy middle-priority thread delays every waiter.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use super::lock::SpinLockIrq;
use super::sleepqueue::{self, SleepFlags};
use crate::arch::cpu;
use crate::sched::ast::KernelEntry;
use crate::sched::scheduler;
use crate::sched::thread::Tid;

/// The lock word of a [`Mutex`].
struct State {
    /// The thread holding the mutex.
    owner: Option<Tid>,
    /// Threads that went to sleep for the mutex and have not yet come
    /// back to the state lock (asleep, or woken and on their way).
    sleepers: usize,
}

/// A mutual-exclusion lock whose waiters sleep.
pub struct Mutex<T> {
    /// Owner and sleepers.
    state: SpinLockIrq<State>,
    /// The protected value; locked only by the owner (see the module
    /// docs), so never contended.
    data: spin::mutex::Mutex<T>,
}

/// Access to the value of a held [`Mutex`]; releases it when dropped.
///
/// Not `Send`: the mutex belongs to the thread that took it, which is
/// the one that must release it. Dropping the guard of a thread's last
/// kernel entry is a kernel boundary: an order to exit or suspend given
/// to the thread meanwhile takes effect there.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    /// Always `Some` until `drop`, which releases it before the owner.
    data: Option<spin::mutex::MutexGuard<'a, T>>,
    /// Keeps the guard on its thread.
    _not_send: PhantomData<*const ()>,
    /// The thread is inside the kernel while it holds the mutex; dropped
    /// last, after the release, where the thread may meet its boundary.
    _kernel: KernelEntry,
}

impl<T> Mutex<T> {
    /// An unlocked mutex around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            state: SpinLockIrq::new(State {
                owner: None,
                sleepers: 0,
            }),
            data: spin::mutex::Mutex::new(value),
        }
    }

    /// Takes the mutex, sleeping (uninterruptibly) while another thread
    /// holds it.
    ///
    /// # Panics
    /// In debug builds, if the calling thread holds the mutex already
    /// (it would sleep forever) or runs with IRQs masked.
    ///
    /// # Locking
    /// Thread context only, with no spin lock held and IRQs unmasked: the
    /// call may sleep. Not recursive.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        debug_assert!(
            !cpu::irqs_masked(),
            "Mutex::lock may sleep: IRQs are masked"
        );
        let kernel = KernelEntry::enter();
        // Before the state lock: `current` takes the run-queue lock.
        let me = scheduler::current().tid;
        let mut state = self.state.lock();

        // Sleep until the mutex is free. The state guard is the interlock:
        // the release cannot run between the check and the sleep.
        while let Some(owner) = state.owner {
            debug_assert_ne!(owner, me, "Mutex::lock by its owner: deadlock");
            state.sleepers += 1;
            let flags = SleepFlags::default();
            let slept = sleepqueue::sleep(self.channel(), Some(state), flags, None);
            // Uninterruptible and without a timeout, only a wake-up ends
            // it; the loop checks the owner again either way.
            debug_assert!(slept.is_ok(), "uninterruptible sleep ended by {slept:?}");
            state = self.state.lock();
            state.sleepers -= 1;
        }

        state.owner = Some(me);
        drop(state);
        self.guard(kernel)
    }

    /// Takes the mutex if it is free right now; never sleeps.
    ///
    /// Returns `None` if a thread holds it, the caller included.
    ///
    /// # Locking
    /// Thread context only (the caller becomes the owner). Never sleeps,
    /// but not under a sleep-queue or run-queue lock: the release wakes a
    /// sleeper.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let kernel = KernelEntry::enter();
        let me = scheduler::current().tid;
        let mut state = self.state.lock();
        if state.owner.is_some() {
            return None;
        }
        state.owner = Some(me);
        drop(state);
        Some(self.guard(kernel))
    }

    /// Whether a thread holds the mutex (a snapshot, stale at once unless
    /// the caller holds it).
    pub fn is_locked(&self) -> bool {
        self.state.lock().owner.is_some()
    }

    /// The thread holding the mutex, if any (a snapshot, as
    /// [`Self::is_locked`]).
    pub fn owner(&self) -> Option<Tid> {
        self.state.lock().owner
    }

    /// The wait channel of the mutex: its address.
    fn channel(&self) -> usize {
        self as *const Self as usize
    }

    /// The guard of a new owner, recorded in the state already, which
    /// entered the kernel with `kernel`.
    fn guard(&self, kernel: KernelEntry) -> MutexGuard<'_, T> {
        let data = Some(self.data.try_lock().expect("only the owner locks the data"));
        MutexGuard {
            mutex: self,
            data,
            _not_send: PhantomData,
            _kernel: kernel,
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.data.as_ref().expect("held until drop")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data.as_mut().expect("held until drop")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    /// Releases the mutex in three steps.
    ///
    /// 1. Free the data, so the next owner finds it unlocked.
    /// 2. Clear the owner under the state lock, and see if anyone sleeps.
    /// 3. Wake the longest sleeper. Outside the state lock is enough: a
    ///    counted sleeper joined the sleep queue before the state lock was
    ///    released, so `wakeup_one` finds it (or it is awake already).
    ///
    /// Then the guard's kernel entry ends: the thread may stop there.
    fn drop(&mut self) {
        // 1. Free the data.
        drop(self.data.take());

        // 2. Clear the owner.
        let mut state = self.mutex.state.lock();
        debug_assert!(state.owner.is_some(), "a guard exists, so an owner does");
        state.owner = None;
        let wake = state.sleepers > 0;
        drop(state);

        // 3. Wake a sleeper.
        if wake {
            sleepqueue::wakeup_one(self.mutex.channel());
        }
    }
}
