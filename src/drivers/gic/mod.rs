//! Generic Interrupt Controller: one interface over GICv2 and GICv3.
//!
//! The kernel uses private interrupts only: SGIs between CPUs and the
//! timer's PPI. Which version is present, and where, comes from the device
//! tree.

mod v2;
mod v3;

pub use v2::GicV2;
pub use v3::GicV3;

/// Interrupt ids from 1020 up are special (1023: nothing pending).
const SPURIOUS_LIMIT: u32 = 1020;

/// Priority of every interrupt the kernel enables (lower is more urgent;
/// the mask is 0xf0, so this one passes).
const DEFAULT_PRIORITY: u8 = 0xa0;

/// The machine's interrupt controller.
pub enum InterruptController {
    /// GICv2 or GIC-400.
    V2(GicV2),
    /// GICv3.
    V3(GicV3),
}

impl InterruptController {
    /// Global set-up; once, on the boot CPU, before any `init_cpu`.
    pub fn init_distributor(&self) {
        match self {
            Self::V2(gic) => gic.init_distributor(),
            Self::V3(gic) => gic.init_distributor(),
        }
    }

    /// This CPU's set-up; every CPU calls it once, with IRQs masked.
    pub fn init_cpu(&self, cpu: usize) {
        match self {
            Self::V2(gic) => gic.init_cpu(cpu),
            Self::V3(gic) => gic.init_cpu(cpu, crate::arch::cpu::mpidr()),
        }
    }

    /// Enables private interrupt `intid` (SGI or PPI) on this CPU.
    pub fn enable_private(&self, cpu: usize, intid: u32) {
        match self {
            Self::V2(gic) => gic.enable_private(intid),
            Self::V3(gic) => gic.enable_private(cpu, intid),
        }
    }

    /// Acknowledges the pending interrupt, if any: (id, raw value to pass
    /// to [`Self::end_of_interrupt`]).
    pub fn acknowledge(&self) -> Option<(u32, u32)> {
        match self {
            Self::V2(gic) => gic.acknowledge(),
            Self::V3(gic) => gic.acknowledge(),
        }
    }

    /// Ends the interrupt acknowledged as `raw`.
    pub fn end_of_interrupt(&self, raw: u32) {
        match self {
            Self::V2(gic) => gic.end_of_interrupt(raw),
            Self::V3(gic) => gic.end_of_interrupt(raw),
        }
    }

    /// Sends SGI `sgi` to logical CPU `cpu`.
    pub fn send_sgi(&self, cpu: usize, sgi: u32) {
        match self {
            Self::V2(gic) => gic.send_sgi(cpu, sgi),
            Self::V3(gic) => gic.send_sgi(cpu, sgi),
        }
    }

    /// "GICv2" or "GICv3", for the boot log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::V2(_) => "GICv2",
            Self::V3(_) => "GICv3",
        }
    }
}
