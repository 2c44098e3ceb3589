//! GICv3 (QEMU virt with `gic-version=3`).
//!
//! From the "GIC architecture version 3 and version 4" specification
//! (IHI 0069): distributor registers (12.9), redistributor registers
//! (12.10, 12.11) and the CPU interface system registers (12.2). QEMU's
//! GICv3 without EL3 has a single security state (GICD_CTLR.DS = 1); the
//! kernel puts its interrupts in Group 1 and acknowledges them through
//! ICC_IAR1_EL1. `aarch64-cpu` lacks most ICC_* registers, so they are
//! reached with `mrs`/`msr` by their encodings.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

use super::{DEFAULT_PRIORITY, SPURIOUS_LIMIT};
use crate::config::MAX_CPUS;
use crate::drivers::mmio::Mmio;

register_bitfields! [u32,
    /// Distributor control (single security state view).
    GICD_CTLR [
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) [],
        /// Affinity routing enable.
        ARE OFFSET(4) NUMBITS(1) [],
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],
    GICD_TYPER [
        ITLinesNumber OFFSET(0) NUMBITS(5) []
    ],
    /// Redistributor power management.
    GICR_WAKER [
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
        ProcessorSleep OFFSET(1) NUMBITS(1) []
    ]
];

register_bitfields! [u64,
    /// Redistributor type.
    GICR_TYPER [
        /// Affinity of the CPU this redistributor serves (Aff3.Aff2.Aff1.Aff0).
        Affinity OFFSET(32) NUMBITS(32) [],
        /// The last redistributor of its region.
        Last OFFSET(4) NUMBITS(1) []
    ]
];

register_structs! {
    #[allow(non_snake_case)]
    DistributorRegisters {
        (0x000 => CTLR: ReadWrite<u32, GICD_CTLR::Register>),
        (0x004 => TYPER: ReadOnly<u32, GICD_TYPER::Register>),
        (0x008 => _reserved0),
        (0x080 => IGROUPR: [ReadWrite<u32>; 32]),
        (0x100 => _reserved1),
        (0x180 => ICENABLER: [ReadWrite<u32>; 32]),
        (0x200 => _reserved2),
        (0x280 => ICPENDR: [ReadWrite<u32>; 32]),
        (0x300 => @END),
    }
}

register_structs! {
    #[allow(non_snake_case)]
    RedistributorRegisters {
        (0x00 => _reserved0),
        (0x08 => TYPER: ReadOnly<u64, GICR_TYPER::Register>),
        (0x10 => _reserved1),
        (0x14 => WAKER: ReadWrite<u32, GICR_WAKER::Register>),
        (0x18 => @END),
    }
}

register_structs! {
    #[allow(non_snake_case)]
    SgiRegisters {
        (0x000 => _reserved0),
        (0x080 => IGROUPR0: ReadWrite<u32>),
        (0x084 => _reserved1),
        (0x100 => ISENABLER0: ReadWrite<u32>),
        (0x104 => _reserved2),
        (0x180 => ICENABLER0: ReadWrite<u32>),
        (0x184 => _reserved3),
        (0x280 => ICPENDR0: ReadWrite<u32>),
        (0x284 => _reserved4),
        (0x400 => IPRIORITYR: [ReadWrite<u32>; 8]),
        (0x420 => @END),
    }
}

/// Offset of the SGI_base frame from a redistributor's RD_base.
const SGI_FRAME: usize = 0x1_0000;

/// Reads a GICv3 CPU interface register by its encoding.
macro_rules! icc_read {
    ($encoding:literal) => {{
        let value: u64;
        // SAFETY: reading a GICv3 CPU interface register has no side
        // effect besides the architected one of the named register.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $encoding), out(reg) value) };
        value
    }};
}

/// Writes a GICv3 CPU interface register by its encoding.
macro_rules! icc_write {
    ($encoding:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the register's architected effect is what the caller
        // asks for; no memory is touched.
        unsafe { core::arch::asm!(concat!("msr ", $encoding, ", {}"), in(reg) value) };
    }};
}

/// A GICv3 distributor and its redistributors.
pub struct GicV3 {
    distributor: Mmio<DistributorRegisters>,
    redistributors: usize,
    stride: usize,
    /// Per logical CPU: its redistributor's RD_base (0 until `init_cpu`).
    /// Written by that CPU before it reports online; read by it afterwards.
    redistributor: [AtomicUsize; MAX_CPUS],
    /// Per logical CPU: its MPIDR affinity, the address of an SGI.
    affinity: [AtomicU64; MAX_CPUS],
}

impl GicV3 {
    /// A driver for the GICv3 with its distributor at `distributor` and
    /// its redistributors from `redistributors`, `stride` bytes apart.
    ///
    /// # Safety
    /// The addresses must be this machine's GICD and redistributor region,
    /// mapped as device memory for the kernel's life and driven by nothing
    /// else; `stride` must be the redistributors' spacing.
    pub unsafe fn new(distributor: usize, redistributors: usize, stride: usize) -> Self {
        Self {
            // SAFETY: forwarded from the caller.
            distributor: unsafe { Mmio::new(distributor) },
            redistributors,
            stride,
            redistributor: [const { AtomicUsize::new(0) }; MAX_CPUS],
            affinity: [const { AtomicU64::new(0) }; MAX_CPUS],
        }
    }

    /// Global set-up, on the boot CPU: affinity routing on, shared
    /// interrupts disabled and in Group 1, then Group 1 forwarding on.
    pub fn init_distributor(&self) {
        let d = &self.distributor;
        d.CTLR.set(0);
        self.wait_for_distributor_write();
        let lines = 32 * (d.TYPER.read(GICD_TYPER::ITLinesNumber) as usize + 1);
        for word in 1..lines.min(1024) / 32 {
            d.ICENABLER[word].set(u32::MAX);
            d.ICPENDR[word].set(u32::MAX);
            d.IGROUPR[word].set(u32::MAX);
        }
        self.wait_for_distributor_write();
        d.CTLR
            .write(GICD_CTLR::ARE::SET + GICD_CTLR::EnableGrp1::SET);
        self.wait_for_distributor_write();
    }

    /// This CPU's set-up: find and wake its redistributor, put SGIs and
    /// PPIs in Group 1 at the default priority (disabled), then enable the
    /// system register interface and Group 1.
    ///
    /// # Panics
    /// If no redistributor serves this CPU: the device tree and the
    /// hardware disagree, and this CPU could take no interrupt.
    pub fn init_cpu(&self, cpu: usize, mpidr: u64) {
        let rd_base = self
            .find_redistributor(mpidr)
            .expect("no redistributor for this CPU");
        self.redistributor[cpu].store(rd_base, Ordering::Relaxed);
        self.affinity[cpu].store(mpidr, Ordering::Release);

        // 1. Wake the redistributor (12.11.42): clear ProcessorSleep, then
        //    wait for ChildrenAsleep to clear.
        // SAFETY: `rd_base` is a redistributor inside the region given to
        // `new`, found by its GICR_TYPER.
        let rd: Mmio<RedistributorRegisters> = unsafe { Mmio::new(rd_base) };
        rd.WAKER.write(GICR_WAKER::ProcessorSleep::CLEAR);
        while rd.WAKER.is_set(GICR_WAKER::ChildrenAsleep) {
            core::hint::spin_loop();
        }

        // 2. SGIs and PPIs.
        // SAFETY: the SGI_base frame follows RD_base in every redistributor.
        let sgi: Mmio<SgiRegisters> = unsafe { Mmio::new(rd_base + SGI_FRAME) };
        sgi.ICENABLER0.set(u32::MAX);
        sgi.ICPENDR0.set(u32::MAX);
        sgi.IGROUPR0.set(u32::MAX);
        let priority = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for word in 0..8 {
            sgi.IPRIORITYR[word].set(priority);
        }

        // 3. CPU interface: system registers, priority mask, Group 1.
        let sre = icc_read!("S3_0_C12_C12_5");
        icc_write!("S3_0_C12_C12_5", sre | 1); // ICC_SRE_EL1.SRE
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        icc_write!("S3_0_C4_C6_0", 0xf0); // ICC_PMR_EL1
        icc_write!("S3_0_C12_C12_3", 0); // ICC_BPR1_EL1
        icc_write!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// Enables SGI or PPI `intid` (below 32) on this CPU.
    pub fn enable_private(&self, cpu: usize, intid: u32) {
        let rd_base = self.redistributor[cpu].load(Ordering::Relaxed);
        // SAFETY: set by `init_cpu` on this CPU to its redistributor.
        let sgi: Mmio<SgiRegisters> = unsafe { Mmio::new(rd_base + SGI_FRAME) };
        sgi.ISENABLER0.set(1 << intid);
    }

    /// Acknowledges the highest-priority pending Group 1 interrupt:
    /// (interrupt id, raw value for [`Self::end_of_interrupt`]).
    pub fn acknowledge(&self) -> Option<(u32, u32)> {
        let intid = icc_read!("S3_0_C12_C12_0") as u32; // ICC_IAR1_EL1
        (intid < SPURIOUS_LIMIT).then_some((intid, intid))
    }

    /// Signals the end of interrupt `raw`.
    pub fn end_of_interrupt(&self, raw: u32) {
        icc_write!("S3_0_C12_C12_1", u64::from(raw)); // ICC_EOIR1_EL1
    }

    /// Sends SGI `sgi` to logical CPU `cpu`.
    pub fn send_sgi(&self, cpu: usize, sgi: u32) {
        let mpidr = self.affinity[cpu].load(Ordering::Acquire);
        let aff0 = mpidr & 0xff;
        let value = ((mpidr >> 32) & 0xff) << 48 // Aff3
            | ((mpidr >> 16) & 0xff) << 32 // Aff2
            | u64::from(sgi & 0xf) << 24
            | ((mpidr >> 8) & 0xff) << 16 // Aff1
            | (1 << aff0); // TargetList
        // The SGI must follow the sender's earlier writes.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        icc_write!("S3_0_C12_C11_5", value); // ICC_SGI1R_EL1
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    fn find_redistributor(&self, mpidr: u64) -> Option<usize> {
        let wanted = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
        let mut base = self.redistributors;
        loop {
            // SAFETY: walking the redistributor region frame by frame, as
            // long as GICR_TYPER.Last says there is another frame.
            let rd: Mmio<RedistributorRegisters> = unsafe { Mmio::new(base) };
            let typer = rd.TYPER.extract();
            if typer.read(GICR_TYPER::Affinity) == wanted {
                return Some(base);
            }
            if typer.is_set(GICR_TYPER::Last) {
                return None;
            }
            base += self.stride;
        }
    }

    fn wait_for_distributor_write(&self) {
        while self.distributor.CTLR.is_set(GICD_CTLR::RWP) {
            core::hint::spin_loop();
        }
    }
}
