//! What the kernel knows about the machine it boots on.
//!
//! Filled in once at boot, from the device tree (`devicetree`) or, when
//! none was passed, from the board table (`board`), then read-only.

use core::fmt;

use super::range_set::{PhysRange, RangeSet};
use crate::config::MAX_CPUS;

/// Capacity of the memory region set.
pub const MEMORY_REGIONS: usize = 8;
/// Capacity of the reserved region set.
pub const RESERVED_REGIONS: usize = 16;

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    /// PSCI `CPU_ON`.
    Psci,
    /// Write the entry address to this word (`cpu-release-addr`).
    SpinTable { release_address: u64 },
    /// None given: the CPU cannot be started.
    Unknown,
}

/// One CPU of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuDescription {
    /// MPIDR affinity (the `reg` of its `/cpus` node).
    pub mpidr: u64,
    /// How to start it.
    pub enable_method: EnableMethod,
}

/// The interrupt controller and its register blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicDescription {
    /// GICv2: distributor and CPU interface.
    V2 {
        distributor: PhysRange,
        cpu_interface: PhysRange,
    },
    /// GICv3: distributor and the redistributor region.
    V3 {
        distributor: PhysRange,
        redistributors: PhysRange,
        stride: u64,
    },
}

/// PSCI conduit named by the device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    /// `method = "hvc"`.
    Hvc,
    /// `method = "smc"`.
    Smc,
}

/// The console UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UartDescription {
    /// Register block.
    pub registers: PhysRange,
    /// Reference clock, when the tree names a fixed clock.
    pub clock_hz: Option<u64>,
}

/// Where the description came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A device tree at this address, of this size.
    DeviceTree { blob: PhysRange },
    /// The board table built into the kernel.
    BoardTable,
}

/// Short text kept by value (model name, boot arguments).
#[derive(Clone, Copy)]
pub struct FixedText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> FixedText<N> {
    /// Empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    /// `text`, cut at a character boundary to fit.
    pub fn from_text(text: &str) -> Self {
        let mut len = text.len().min(N);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; N];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self { bytes, len }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for FixedText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Board model (`/model`).
    pub model: FixedText<64>,
    /// Device tree or board table.
    pub source: Source,
    /// RAM.
    pub memory: RangeSet<MEMORY_REGIONS>,
    /// RAM that must not be used: /memreserve/ and /reserved-memory.
    pub reserved: RangeSet<RESERVED_REGIONS>,
    /// CPUs in tree order; the first `cpu_count` are used.
    pub cpus: [CpuDescription; MAX_CPUS],
    /// CPUs used (at most `MAX_CPUS`).
    pub cpu_count: usize,
    /// CPUs described, possibly more than `MAX_CPUS`.
    pub cpus_described: usize,
    /// Console UART.
    pub uart: Option<UartDescription>,
    /// Interrupt controller.
    pub gic: Option<GicDescription>,
    /// Interrupt id of the EL1 virtual timer (a PPI).
    pub virtual_timer_intid: Option<u32>,
    /// PSCI, when present.
    pub psci: Option<PsciMethod>,
    /// `/chosen/bootargs`.
    pub bootargs: FixedText<256>,
}

impl Machine {
    /// A machine with nothing known yet.
    pub fn empty(source: Source) -> Self {
        Self {
            model: FixedText::new(),
            source,
            memory: RangeSet::new(),
            reserved: RangeSet::new(),
            cpus: [CpuDescription {
                mpidr: 0,
                enable_method: EnableMethod::Unknown,
            }; MAX_CPUS],
            cpu_count: 0,
            cpus_described: 0,
            uart: None,
            gic: None,
            virtual_timer_intid: None,
            psci: None,
            bootargs: FixedText::new(),
        }
    }

    /// Adds a CPU; past `MAX_CPUS` it is only counted.
    pub fn add_cpu(&mut self, cpu: CpuDescription) {
        if self.cpu_count < MAX_CPUS {
            self.cpus[self.cpu_count] = cpu;
            self.cpu_count += 1;
        }
        self.cpus_described += 1;
    }

    /// What is missing for the kernel to run, if anything.
    pub fn missing(&self) -> Option<&'static str> {
        if self.memory.is_empty() {
            Some("no memory")
        } else if self.cpu_count == 0 {
            Some("no CPU")
        } else if self.gic.is_none() {
            Some("no supported interrupt controller")
        } else if self.virtual_timer_intid.is_none() {
            Some("no generic timer interrupt")
        } else {
            None
        }
    }
}
