//! Drivers built from the machine description.
//!
//! The one place where addresses read from the device tree (or the board
//! table) become driver instances. Each function's safety argument is the
//! same: the description names the device's registers, and the kernel map
//! (`arch::mmu`) maps every described device as Device memory before the
//! driver is first used.

use super::gic::{GicV2, GicV3, InterruptController};
use super::pl011::Pl011;
use super::psci::{Conduit, Psci};
use crate::platform::machine::{GicDescription, PsciMethod, UartDescription};

/// The console UART described by `uart`.
pub fn console(uart: &UartDescription) -> Pl011 {
    // SAFETY: see the module documentation; the console is the only user
    // of this UART.
    unsafe { Pl011::new(uart.registers.start as usize) }
}

/// The interrupt controller described by `gic`.
pub fn interrupt_controller(gic: &GicDescription) -> InterruptController {
    match *gic {
        GicDescription::V2 {
            distributor,
            cpu_interface,
        } => {
            // SAFETY: see the module documentation; one instance exists.
            let gic =
                unsafe { GicV2::new(distributor.start as usize, cpu_interface.start as usize) };
            InterruptController::V2(gic)
        }
        GicDescription::V3 {
            distributor,
            redistributors,
            stride,
        } => {
            // SAFETY: see the module documentation; one instance exists.
            let gic = unsafe {
                GicV3::new(
                    distributor.start as usize,
                    redistributors.start as usize,
                    stride as usize,
                )
            };
            InterruptController::V3(gic)
        }
    }
}

/// PSCI through the described conduit.
pub fn psci(method: PsciMethod) -> Psci {
    Psci::new(match method {
        PsciMethod::Hvc => Conduit::Hvc,
        PsciMethod::Smc => Conduit::Smc,
    })
}

/// Releases a CPU parked on the spin table at `release_address`.
pub fn release_spin_table(release_address: u64, entry: usize) {
    // SAFETY: `release_address` comes from the `cpu-release-addr` of an
    // enabled CPU in the device tree (or the board table), which lies in
    // RAM that the kernel map covers and the heap leaves out.
    unsafe { super::spin_table::release(release_address as usize, entry) }
}
