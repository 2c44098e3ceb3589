//! Exception syndromes: what ESR_EL1 says about a synchronous exception.
//!
//! Pure decoding (Arm ARM D19.2.37, "ESR_EL1"), shared by the exception
//! handler, the panic report and the test harness, and tested on the host.

use core::fmt;

/// A synchronous exception as the handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Logical id of the CPU that took it.
    pub cpu: usize,
    /// ESR_EL1: exception class and syndrome.
    pub esr: u64,
    /// FAR_EL1: the faulting address, for aborts.
    pub far: u64,
    /// ELR_EL1: the instruction that faulted.
    pub elr: u64,
}

impl Fault {
    /// The exception class, ESR_EL1.EC (bits [31:26]).
    pub fn class(&self) -> u8 {
        exception_class(self.esr)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on cpu{}: EC={:#04x} ESR={:#x} FAR={:#x} ELR={:#x}",
            class_name(self.class()),
            self.cpu,
            self.class(),
            self.esr,
            self.far,
            self.elr
        )
    }
}

/// Data abort taken without a change in exception level.
pub const EC_DATA_ABORT_SAME_EL: u8 = 0x25;
/// Instruction abort taken without a change in exception level.
pub const EC_INSTRUCTION_ABORT_SAME_EL: u8 = 0x21;
/// `brk` instruction.
pub const EC_BRK: u8 = 0x3c;
/// FP/SIMD access trapped by CPACR_EL1.FPEN.
pub const EC_FP_ACCESS: u8 = 0x07;

/// ESR_EL1.EC of a syndrome.
pub fn exception_class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// A short name for an exception class.
pub fn class_name(class: u8) -> &'static str {
    match class {
        0x00 => "unknown reason",
        0x01 => "trapped WFI/WFE",
        EC_FP_ACCESS => "FP/SIMD access",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "trapped system register access",
        0x20 => "instruction abort from lower EL",
        EC_INSTRUCTION_ABORT_SAME_EL => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 => "data abort from lower EL",
        EC_DATA_ABORT_SAME_EL => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        EC_BRK => "BRK instruction",
        _ => "exception",
    }
}

/// For an abort, the fault status (ESR_EL1.ISS.DFSC/IFSC) as text.
pub fn abort_status(esr: u64) -> &'static str {
    match esr & 0x3f {
        0x04..=0x07 => "translation fault",
        0x09..=0x0b => "access flag fault",
        0x0d..=0x0f => "permission fault",
        0x21 => "alignment fault",
        0x10 => "synchronous external abort",
        0x00..=0x03 => "address size fault",
        _ => "other fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_class_and_status() {
        // A level-3 translation fault on a data read at EL1.
        let esr = (0x25 << 26) | (1 << 25) | 0x07;
        assert_eq!(exception_class(esr), EC_DATA_ABORT_SAME_EL);
        assert_eq!(class_name(exception_class(esr)), "data abort");
        assert_eq!(abort_status(esr), "translation fault");
        assert_eq!(class_name(exception_class(0xf200_0000)), "BRK instruction");
    }

    #[test]
    fn display_names_cpu_and_class() {
        let fault = Fault {
            cpu: 1,
            esr: 0x9600_0007,
            far: 0x10,
            elr: 0x4008_1000,
        };
        extern crate std;
        let text = std::format!("{fault}");
        assert!(text.starts_with("data abort on cpu1: EC=0x25"), "{text}");
    }
}
