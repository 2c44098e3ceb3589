//! This CPU: its identity, interrupt mask and low-power waits.

use aarch64_cpu::asm;
use aarch64_cpu::registers::{DAIF, MPIDR_EL1, TPIDR_EL1};
use tock_registers::interfaces::{Readable, Writeable};

/// Affinity fields of MPIDR_EL1 (Aff3, Aff2, Aff1, Aff0), which identify a
/// CPU to PSCI and to the GICv3.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// This CPU's MPIDR_EL1 affinity.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// This CPU's logical id, `0..MAX_CPUS`, in order of bring-up.
///
/// `boot.s` stores it in TPIDR_EL1 before any Rust code runs; nothing else
/// writes that register.
#[inline]
pub fn id() -> usize {
    TPIDR_EL1.get() as usize
}

/// Saved interrupt mask, restored by [`irq_restore`].
#[derive(Clone, Copy)]
pub struct IrqState(u64);

/// Masks IRQs on this CPU and returns the previous mask.
#[inline]
pub fn irq_save() -> IrqState {
    let state = IrqState(DAIF.get());
    DAIF.write(DAIF::I::Masked + DAIF::F::Masked + DAIF::D::Masked + DAIF::A::Masked);
    state
}

/// Restores the mask saved by [`irq_save`].
#[inline]
pub fn irq_restore(state: IrqState) {
    DAIF.set(state.0);
}

/// Unmasks IRQs (and SErrors) on this CPU.
#[inline]
pub fn irq_enable() {
    DAIF.write(DAIF::I::Unmasked + DAIF::F::Masked + DAIF::D::Masked + DAIF::A::Unmasked);
}

/// Whether IRQs are masked on this CPU.
#[inline]
pub fn irqs_masked() -> bool {
    DAIF.is_set(DAIF::I)
}

/// Waits for an interrupt. A pending interrupt ends the wait even while
/// IRQs are masked, which is what lets the idle loop check for work with
/// IRQs masked and then sleep without losing a wake-up.
#[inline]
pub fn wait_for_interrupt() {
    asm::wfi();
}

/// Sends an event to every CPU waiting in `wfe` (the firmware's spin
/// table loop).
#[inline]
pub fn send_event() {
    asm::sev();
}

/// Halts this CPU for good, with everything masked.
pub fn halt() -> ! {
    irq_save();
    loop {
        asm::wfe();
    }
}

/// A pause in a spin-wait loop: the `yield` hint. On hardware it tells
/// the core (or an SMT sibling) that this is a spin; under QEMU's
/// round-robin TCG (`-icount`), it ends this vCPU's turn at once, so the
/// CPU being waited for runs instead of this loop burning its quantum.
#[inline]
pub fn relax() {
    // SAFETY: `yield` is a hint with no architectural effect.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// The spin strategy of the kernel's `spin` locks: [`relax`].
pub struct YieldRelax;

impl spin::RelaxStrategy for YieldRelax {
    #[inline]
    fn relax() {
        relax();
    }
}
