//! Power State Coordination Interface (Arm DEN 0022, "PSCI"), version 0.2
//! and later: starting CPUs and switching the machine off.
//!
//! The conduit (HVC or SMC) is what the device tree's `/psci` node says.
//! QEMU's virt board implements PSCI itself; the Raspberry Pi 4 has none
//! (an HVC there traps to the kernel's own, absent, EL2 vectors).

/// PSCI_VERSION.
const PSCI_VERSION: u32 = 0x8400_0000;
/// CPU_ON, SMC64 calling convention.
const CPU_ON_64: u32 = 0xc400_0003;
/// SYSTEM_OFF.
const SYSTEM_OFF: u32 = 0x8400_0008;

/// How PSCI calls reach the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `hvc #0`: firmware at EL2 (QEMU virt without virtualization).
    Hvc,
    /// `smc #0`: firmware at EL3.
    Smc,
}

/// A PSCI error code (DEN 0022 5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsciError(pub i32);

impl core::fmt::Display for PsciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            -1 => "NOT_SUPPORTED",
            -2 => "INVALID_PARAMETERS",
            -3 => "DENIED",
            -4 => "ALREADY_ON",
            -5 => "ON_PENDING",
            -6 => "INTERNAL_FAILURE",
            -9 => "INVALID_ADDRESS",
            _ => "unknown error",
        };
        write!(f, "PSCI {name} ({})", self.0)
    }
}

/// PSCI through one conduit.
#[derive(Clone, Copy, Debug)]
pub struct Psci {
    conduit: Conduit,
}

impl Psci {
    /// PSCI reached through `conduit`.
    pub const fn new(conduit: Conduit) -> Self {
        Self { conduit }
    }

    /// The implemented version as (major, minor).
    pub fn version(&self) -> (u16, u16) {
        let version = self.call(PSCI_VERSION, 0, 0, 0) as u32;
        ((version >> 16) as u16, version as u16)
    }

    /// Starts the CPU with affinity `mpidr` at `entry` (a physical address,
    /// MMU off) with `context` in its x0.
    ///
    /// # Errors
    /// The firmware's refusal, e.g. `ALREADY_ON` or `INVALID_PARAMETERS`.
    pub fn cpu_on(&self, mpidr: u64, entry: usize, context: u64) -> Result<(), PsciError> {
        match self.call(CPU_ON_64, mpidr, entry as u64, context) as i32 {
            0 => Ok(()),
            error => Err(PsciError(error)),
        }
    }

    /// Switches the machine off. Returns only if the firmware refused.
    pub fn system_off(&self) {
        self.call(SYSTEM_OFF, 0, 0, 0);
    }

    fn call(&self, function: u32, a1: u64, a2: u64, a3: u64) -> u64 {
        let mut result = u64::from(function);
        // SAFETY: a PSCI call is a firmware call under the SMC Calling
        // Convention: it may clobber x0-x17 (declared below) and changes no
        // memory the kernel owns.
        unsafe {
            match self.conduit {
                Conduit::Hvc => core::arch::asm!(
                    "hvc #0",
                    inout("x0") result, inout("x1") a1 => _, inout("x2") a2 => _,
                    inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _,
                    out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _, options(nostack)
                ),
                Conduit::Smc => core::arch::asm!(
                    "smc #0",
                    inout("x0") result, inout("x1") a1 => _, inout("x2") a2 => _,
                    inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _,
                    out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _, options(nostack)
                ),
            }
        }
        result
    }
}
