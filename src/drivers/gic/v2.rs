//! GICv2 (QEMU virt with `gic-version=2`, the Pi 4's GIC-400).
//!
//! Register map from the "ARM Generic Interrupt Controller Architecture
//! Specification, GIC architecture version 2", chapter 4. Every interrupt
//! the kernel uses stays in Group 0, signalled as IRQ (GICC_CTLR.FIQEn = 0):
//! a PPI moved to Group 1 without GICC_CTLR.AckCtl makes GICC_IAR answer
//! 1022 forever on QEMU's GIC-400, which is why nothing is moved.

use core::sync::atomic::{AtomicU8, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::{DEFAULT_PRIORITY, SPURIOUS_LIMIT};
use crate::config::MAX_CPUS;
use crate::drivers::mmio::Mmio;

register_bitfields! [u32,
    /// Distributor control.
    GICD_CTLR [
        /// Forward Group 1 interrupts (secure view).
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        /// Forward Group 0 interrupts.
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt controller type.
    GICD_TYPER [
        /// Number of implemented lines = 32 * (ITLinesNumber + 1).
        ITLinesNumber OFFSET(0) NUMBITS(5) []
    ],
    /// Software generated interrupt.
    GICD_SGIR [
        /// Which CPU interfaces get the SGI (one bit each).
        CPUTargetList OFFSET(16) NUMBITS(8) [],
        /// The SGI, 0 to 15.
        SGIINTID OFFSET(0) NUMBITS(4) []
    ],
    /// CPU interface control.
    GICC_CTLR [
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt acknowledge.
    GICC_IAR [
        /// For SGIs, the requesting CPU.
        CPUID OFFSET(10) NUMBITS(3) [],
        InterruptID OFFSET(0) NUMBITS(10) []
    ]
];

register_structs! {
    #[allow(non_snake_case)]
    DistributorRegisters {
        (0x000 => CTLR: ReadWrite<u32, GICD_CTLR::Register>),
        (0x004 => TYPER: ReadOnly<u32, GICD_TYPER::Register>),
        (0x008 => _reserved0),
        (0x080 => IGROUPR: [ReadWrite<u32>; 32]),
        (0x100 => ISENABLER: [ReadWrite<u32>; 32]),
        (0x180 => ICENABLER: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x280 => ICPENDR: [ReadWrite<u32>; 32]),
        (0x300 => _reserved2),
        (0x400 => IPRIORITYR: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved3),
        (0x800 => ITARGETSR: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved4),
        (0xf00 => SGIR: WriteOnly<u32, GICD_SGIR::Register>),
        (0xf04 => @END),
    }
}

register_structs! {
    #[allow(non_snake_case)]
    CpuInterfaceRegisters {
        (0x00 => CTLR: ReadWrite<u32, GICC_CTLR::Register>),
        (0x04 => PMR: ReadWrite<u32>),
        (0x08 => BPR: ReadWrite<u32>),
        (0x0c => IAR: ReadOnly<u32, GICC_IAR::Register>),
        (0x10 => EOIR: WriteOnly<u32>),
        (0x14 => @END),
    }
}

/// A GICv2 distributor and the (banked) CPU interface.
pub struct GicV2 {
    distributor: Mmio<DistributorRegisters>,
    cpu_interface: Mmio<CpuInterfaceRegisters>,
    /// Per logical CPU: its CPU interface bit for GICD_SGIR, learnt from
    /// the banked GICD_ITARGETSR0 by that CPU in `init_cpu`. Written once
    /// per CPU before it reports online; read by any CPU after that.
    interface_mask: [AtomicU8; MAX_CPUS],
}

impl GicV2 {
    /// A driver for the GICv2 with the given register blocks.
    ///
    /// # Safety
    /// The addresses must be this machine's GICD and GICC, mapped as device
    /// memory for the kernel's life and driven by nothing else.
    pub unsafe fn new(distributor: usize, cpu_interface: usize) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe {
            Self {
                distributor: Mmio::new(distributor),
                cpu_interface: Mmio::new(cpu_interface),
                interface_mask: [const { AtomicU8::new(0) }; MAX_CPUS],
            }
        }
    }

    /// Global set-up, on the boot CPU: every shared interrupt disabled and
    /// cleared, then the distributor on.
    pub fn init_distributor(&self) {
        let d = &self.distributor;
        d.CTLR.set(0);
        let lines = 32 * (d.TYPER.read(GICD_TYPER::ITLinesNumber) as usize + 1);
        for word in 1..lines / 32 {
            d.ICENABLER[word].set(u32::MAX);
            d.ICPENDR[word].set(u32::MAX);
            d.IGROUPR[word].set(0);
        }
        d.CTLR
            .write(GICD_CTLR::EnableGrp0::SET + GICD_CTLR::EnableGrp1::SET);
    }

    /// This CPU's set-up: SGIs and PPIs in Group 0 at the default priority,
    /// all disabled until enabled one by one, then the CPU interface on.
    pub fn init_cpu(&self, cpu: usize) {
        let d = &self.distributor;
        // ITARGETSR0-7 are banked and read as this CPU's own interface bit.
        let mask = d.ITARGETSR[0].get() as u8;
        self.interface_mask[cpu].store(mask, Ordering::Release);
        d.ICENABLER[0].set(u32::MAX);
        d.ICPENDR[0].set(u32::MAX);
        d.IGROUPR[0].set(0);
        let priority = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for word in 0..8 {
            d.IPRIORITYR[word].set(priority);
        }
        let c = &self.cpu_interface;
        c.PMR.set(0xf0);
        c.BPR.set(0);
        c.CTLR
            .write(GICC_CTLR::EnableGrp0::SET + GICC_CTLR::EnableGrp1::SET);
    }

    /// Enables SGI or PPI `intid` (below 32) on this CPU.
    pub fn enable_private(&self, intid: u32) {
        self.distributor.ISENABLER[0].set(1 << intid);
    }

    /// Acknowledges the highest-priority pending interrupt: (interrupt id,
    /// raw GICC_IAR value for [`Self::end_of_interrupt`]); `None` if only a
    /// spurious id (1020-1023) was pending.
    pub fn acknowledge(&self) -> Option<(u32, u32)> {
        let iar = self.cpu_interface.IAR.get();
        let intid = iar & 0x3ff;
        (intid < SPURIOUS_LIMIT).then_some((intid, iar))
    }

    /// Signals the end of the interrupt acknowledged as `raw`.
    pub fn end_of_interrupt(&self, raw: u32) {
        // The full IAR value: for an SGI it names the source CPU too.
        self.cpu_interface.EOIR.set(raw);
    }

    /// Sends SGI `sgi` to logical CPU `cpu`.
    pub fn send_sgi(&self, cpu: usize, sgi: u32) {
        let mask = self.interface_mask[cpu].load(Ordering::Acquire);
        // The SGI must follow the sender's earlier writes (the reason for
        // it), which a `dsb` orders before the device write.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        self.distributor
            .SGIR
            .write(GICD_SGIR::CPUTargetList.val(u32::from(mask)) + GICD_SGIR::SGIINTID.val(sgi));
    }
}
