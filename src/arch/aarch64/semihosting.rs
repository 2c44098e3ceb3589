//! Arm semihosting: the debugger interface QEMU implements with
//! `-semihosting`. Used only to end an emulator run with an exit code,
//! the one way out of QEMU's raspi4b, which has no PSCI.
//!
//! On hardware without a debugger the `hlt` instruction is undefined, so
//! the kernel calls this only when the boot arguments say `semihosting`.

/// SYS_EXIT (Arm "Semihosting for AArch32 and AArch64", 6.5).
const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit: the exit code follows as the subcode.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Ends the emulator with `code` as its exit status.
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting trap; with x0 =
    // SYS_EXIT and x1 pointing at a two-word block, QEMU ends the run and
    // never returns here. The block lives across the instruction.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SYS_EXIT,
            in("x1") block.as_ptr(),
            options(nostack)
        );
    }
    super::cpu::halt()
}
