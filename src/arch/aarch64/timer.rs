//! The Arm generic timer: the system counter and this CPU's EL1 virtual
//! timer (Arm ARM D11, "The Generic Timer in AArch64 state").
//!
//! The virtual timer is used because it is reachable from EL1 on every
//! board, whether the kernel entered at EL1 or at EL2 (where `boot.s` sets
//! CNTVOFF_EL2 to 0, so virtual and physical counts agree).

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0};
use tock_registers::interfaces::{Readable, Writeable};

/// Counter frequency in Hz (CNTFRQ_EL0, set by firmware or QEMU: 62.5 MHz
/// in QEMU, 54 MHz on a real Pi 4).
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The virtual count, ordered after earlier instructions by an `isb`.
#[inline]
pub fn counter() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTVCT_EL0.get()
}

/// Arms this CPU's virtual timer to fire when the counter reaches
/// `deadline`, with its interrupt unmasked.
pub fn set_deadline(deadline: u64) {
    CNTV_CVAL_EL0.set(deadline);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Stops this CPU's virtual timer.
pub fn stop() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
}
