//! Ending the run.
//!
//! Under QEMU with `-semihosting` (the boot arguments then say
//! `semihosting`), the exit code reaches the host. Otherwise PSCI
//! `SYSTEM_OFF` where the machine has PSCI (the code is only logged), and
//! on a Raspberry Pi 4, which has neither, the CPUs halt.

use crate::arch::{cpu, semihosting};
use crate::platform::bootargs::BootArgs;

/// Ends the run with `code` (0: success).
pub fn exit(code: u32) -> ! {
    let machine = super::machine::get();
    let semihosting =
        machine.is_some_and(|m| BootArgs::new(m.bootargs.as_str()).has("semihosting"));
    if semihosting {
        semihosting::exit(code);
    }
    if let Some(psci) = machine.and_then(|m| m.psci) {
        log::info!("exit code {code}; powering off");
        crate::drivers::probe::psci(psci).system_off();
    }
    log::info!("exit code {code}; halted (no way to power off this machine)");
    cpu::halt()
}
