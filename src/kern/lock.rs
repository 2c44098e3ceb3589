//! Spin locks that mask interrupts.
//!
//! [`SpinLockIrq`] is the lock for data that interrupt handlers touch too:
//! it masks IRQs on the CPU that holds it, so a handler on that CPU can
//! never spin on a lock its own CPU holds. Nothing may sleep or wait for
//! another CPU's interrupt while holding one.
//!
//! # Lock order
//! Every kernel lock that takes part in nesting has a [`LockClass`]; a
//! lock may be taken only while every lock held on this CPU is of an
//! earlier class, so two locks of one class (two run queues, two sleep
//! queue buckets) are never held together either. Debug builds check this
//! on every acquisition. Outer to inner:
//! 1. caller-owned locks (data locks, sleep interlocks): unordered, but
//!    taken before any of the classes below;
//! 2. [`LockClass::SleepQueue`]: a sleep-queue bucket;
//! 3. [`LockClass::ThreadGroup`]: a thread group's members;
//! 4. [`LockClass::CalloutState`], then [`LockClass::CalloutWheel`];
//! 5. [`LockClass::RunQueue`]: a CPU's run queue;
//! 6. [`LockClass::ThreadTable`]: the payload thread table, a thread's body;
//! 7. [`LockClass::Heap`];
//! 8. [`LockClass::Console`], innermost: anything may log.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::cpu;

/// Owner value meaning "not held".
const NO_OWNER: usize = usize::MAX;

/// Where a lock sits in the kernel's lock order (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LockClass {
    /// Not part of the checked order: data and interlock locks of callers,
    /// never taken while a classed lock is held.
    Unordered = 0,
    /// A sleep-queue bucket.
    SleepQueue = 1,
    /// A thread group's members.
    ThreadGroup = 2,
    /// A callout's state.
    CalloutState = 3,
    /// A CPU's callout wheel.
    CalloutWheel = 4,
    /// A CPU's run queue.
    RunQueue = 5,
    /// The payload thread table and a thread's body.
    ThreadTable = 6,
    /// The heap.
    Heap = 7,
    /// The console.
    Console = 8,
}

/// Per CPU, debug builds: the classes held, one bit each.
#[cfg(debug_assertions)]
static HELD: [core::sync::atomic::AtomicU32; crate::config::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU32::new(0) }; crate::config::MAX_CPUS];

/// Debug builds: checks that `class` may be taken now and records it.
#[cfg(debug_assertions)]
fn order_acquire(class: LockClass) {
    if class == LockClass::Unordered {
        return;
    }
    let held = &HELD[cpu::id()];
    let bit = 1u32 << class as u32;
    let mask = held.load(Ordering::Relaxed);
    assert!(
        mask < bit,
        "lock order: {class:?} taken while holding classes {mask:#b} (bit {:#b} or later)",
        bit
    );
    held.store(mask | bit, Ordering::Relaxed);
}

/// Debug builds: records that `class` is released.
#[cfg(debug_assertions)]
fn order_release(class: LockClass) {
    if class != LockClass::Unordered {
        let held = &HELD[cpu::id()];
        held.store(
            held.load(Ordering::Relaxed) & !(1 << class as u32),
            Ordering::Relaxed,
        );
    }
}

#[cfg(not(debug_assertions))]
fn order_acquire(_: LockClass) {}

#[cfg(not(debug_assertions))]
fn order_release(_: LockClass) {}

/// A spin lock that masks IRQs while held.
pub struct SpinLockIrq<T> {
    inner: spin::mutex::Mutex<T, cpu::YieldRelax>,
    /// CPU holding the lock, for assertions and the panic path.
    owner: AtomicUsize,
    /// Its place in the lock order.
    class: LockClass,
}

impl<T> SpinLockIrq<T> {
    /// An unlocked lock around `value`, outside the checked lock order.
    pub const fn new(value: T) -> Self {
        Self::ordered(LockClass::Unordered, value)
    }

    /// An unlocked lock of `class` around `value`.
    pub const fn ordered(class: LockClass, value: T) -> Self {
        Self {
            inner: spin::mutex::Mutex::new(value),
            owner: AtomicUsize::new(NO_OWNER),
            class,
        }
    }

    /// Masks IRQs, then spins until the lock is free.
    ///
    /// # Panics
    /// In debug builds, if this CPU holds the lock already (a deadlock).
    pub fn lock(&self) -> SpinLockIrqGuard<'_, T> {
        let irq = cpu::irq_save();
        debug_assert!(!self.is_held_by_this_cpu(), "recursive SpinLockIrq");
        order_acquire(self.class);
        let guard = self.inner.lock();
        self.owner.store(cpu::id(), Ordering::Relaxed);
        SpinLockIrqGuard {
            lock: self,
            guard: Some(guard),
            irq,
        }
    }

    /// Takes the lock if it is free right now.
    pub fn try_lock(&self) -> Option<SpinLockIrqGuard<'_, T>> {
        let irq = cpu::irq_save();
        match self.inner.try_lock() {
            Some(guard) => {
                order_acquire(self.class);
                self.owner.store(cpu::id(), Ordering::Relaxed);
                Some(SpinLockIrqGuard {
                    lock: self,
                    guard: Some(guard),
                    irq,
                })
            }
            None => {
                cpu::irq_restore(irq);
                None
            }
        }
    }

    /// Whether this CPU holds the lock.
    pub fn is_held_by_this_cpu(&self) -> bool {
        self.inner.is_locked() && self.owner.load(Ordering::Relaxed) == cpu::id()
    }
}

/// Access to the value of a held [`SpinLockIrq`]; unlocks, then restores
/// the IRQ mask, when dropped.
pub struct SpinLockIrqGuard<'a, T> {
    lock: &'a SpinLockIrq<T>,
    /// Always `Some` until `drop`, which releases it before the IRQ mask.
    guard: Option<spin::mutex::MutexGuard<'a, T, cpu::YieldRelax>>,
    irq: cpu::IrqState,
}

impl<T> Deref for SpinLockIrqGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until drop")
    }
}

impl<T> DerefMut for SpinLockIrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until drop")
    }
}

impl<T> Drop for SpinLockIrqGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.owner.store(NO_OWNER, Ordering::Relaxed);
        order_release(self.lock.class);
        // Unlock before unmasking: an interrupt taken right after the
        // unmask may want this lock.
        drop(self.guard.take());
        cpu::irq_restore(self.irq);
    }
}
