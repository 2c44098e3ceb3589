//! Spin locks that mask interrupts.
//!
//! [`SpinLockIrq`] is the lock for data that interrupt handlers touch too:
//! it masks IRQs on the CPU that holds it, so a handler on that CPU can
//! never spin on a lock its own CPU holds. Nothing may sleep or wait for
//! another CPU's interrupt while holding one.
//!
//! # Lock order
//! Outer to inner; a lock is only taken while holding locks above it:
//! 1. `kern::smp` mailbox of a CPU
//! 2. the heap (`kern::heap`)
//! 3. the console (`kern::console`), innermost: anything may log.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::cpu;

/// Owner value meaning "not held".
const NO_OWNER: usize = usize::MAX;

/// A spin lock that masks IRQs while held.
pub struct SpinLockIrq<T> {
    inner: spin::mutex::Mutex<T, cpu::YieldRelax>,
    /// CPU holding the lock, for assertions and the panic path.
    owner: AtomicUsize,
}

impl<T> SpinLockIrq<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        Self { inner: spin::mutex::Mutex::new(value), owner: AtomicUsize::new(NO_OWNER) }
    }

    /// Masks IRQs, then spins until the lock is free.
    ///
    /// # Panics
    /// In debug builds, if this CPU holds the lock already (a deadlock).
    pub fn lock(&self) -> SpinLockIrqGuard<'_, T> {
        let irq = cpu::irq_save();
        debug_assert!(!self.is_held_by_this_cpu(), "recursive SpinLockIrq");
        let guard = self.inner.lock();
        self.owner.store(cpu::id(), Ordering::Relaxed);
        SpinLockIrqGuard { lock: self, guard: Some(guard), irq }
    }

    /// Takes the lock if it is free right now.
    pub fn try_lock(&self) -> Option<SpinLockIrqGuard<'_, T>> {
        let irq = cpu::irq_save();
        match self.inner.try_lock() {
            Some(guard) => {
                self.owner.store(cpu::id(), Ordering::Relaxed);
                Some(SpinLockIrqGuard { lock: self, guard: Some(guard), irq })
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
        // Unlock before unmasking: an interrupt taken right after the
        // unmask may want this lock.
        drop(self.guard.take());
        cpu::irq_restore(self.irq);
    }
}
