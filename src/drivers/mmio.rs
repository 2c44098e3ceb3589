//! A typed view of a block of device registers at a physical address.

use core::marker::PhantomData;
use core::ops::Deref;

/// Registers of type `T` at a fixed address, mapped as device memory by
/// the kernel map (or the boot map) for the life of the kernel.
pub struct Mmio<T> {
    base: usize,
    registers: PhantomData<fn() -> T>,
}

impl<T> Mmio<T> {
    /// A view of the registers at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a register block laid out as `T`,
    /// mapped as device memory for as long as the view is used, and every
    /// access through it must be one the device allows from any CPU.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            base,
            registers: PhantomData,
        }
    }

    /// The block's address.
    pub fn base(&self) -> usize {
        self.base
    }
}

impl<T> Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: established by `Mmio::new`: `base` holds a `T` that stays
        // mapped; tock-registers types only do volatile accesses.
        unsafe { &*(self.base as *const T) }
    }
}

// SAFETY: the view is an address; each register access is a single
// volatile load or store, which the device serialises.
unsafe impl<T> Send for Mmio<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Mmio<T> {}
