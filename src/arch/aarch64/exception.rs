//! Exception entry: the vector table, the saved frame and the handlers.
//!
//! Synchronous exceptions are bugs unless the code that took them asked to
//! survive them with [`catch_fault`] (the test harness does, to report a
//! faulting case by name); an uncaught one is a panic that prints the CPU,
//! the exception class and every register. IRQs go to
//! `kern::interrupt::handle_irq`.

use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::{AtomicPtr, Ordering};

use aarch64_cpu::registers::VBAR_EL1;
use tock_registers::interfaces::Writeable;

use crate::arch::esr::Fault;
use crate::config::MAX_CPUS;

global_asm!(include_str!("vectors.s"));

/// Registers saved on exception entry, in the order `vectors.s` stores them.
#[repr(C)]
pub struct TrapFrame {
    /// x0 to x30.
    pub x: [u64; 31],
    /// ELR_EL1: where the exception returns to.
    pub elr: u64,
    /// SPSR_EL1: PSTATE to return with.
    pub spsr: u64,
    /// ESR_EL1 at entry.
    pub esr: u64,
    /// FAR_EL1 at entry.
    pub far: u64,
    /// SP at the moment of the exception.
    pub sp: u64,
}

const _: () = assert!(size_of::<TrapFrame>() == 288, "vectors.s FRAME_SIZE");

impl fmt::Display for TrapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.x.chunks(2).enumerate() {
            match pair {
                [a, b] => writeln!(f, "  x{:<2}={a:#018x} x{:<2}={b:#018x}", 2 * i, 2 * i + 1)?,
                [a] => writeln!(f, "  x{:<2}={a:#018x} sp ={:#018x}", 2 * i, self.sp)?,
                _ => {}
            }
        }
        write!(
            f,
            "  elr={:#018x} spsr={:#010x} esr={:#010x} far={:#018x}",
            self.elr, self.spsr, self.esr, self.far
        )
    }
}

/// Callee-saved state of a [`catch_fault`] call, restored on a fault.
#[repr(C)]
#[derive(Default)]
struct JumpBuffer {
    /// x19 to x30 and SP, in the order `fault_catch` stores them.
    registers: [u64; 13],
    /// The fault that ended the call, filled in by the handler.
    fault: Option<Fault>,
}

/// Per CPU: the innermost active [`catch_fault`] call, or null.
///
/// Written only by its own CPU (in `catch_fault` and in the exception
/// handler, which runs on that CPU); no other CPU reads it.
static RECOVERY: [AtomicPtr<JumpBuffer>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

global_asm!(
    // u64 fault_catch(JumpBuffer *buffer, void (*f)(void *), void *arg)
    // Returns 0 when f returns, 1 when a synchronous exception in f was
    // redirected to fault_landing.
    ".global fault_catch",
    "fault_catch:",
    "    stp x19, x20, [x0, #0]",
    "    stp x21, x22, [x0, #16]",
    "    stp x23, x24, [x0, #32]",
    "    stp x25, x26, [x0, #48]",
    "    stp x27, x28, [x0, #64]",
    "    stp x29, x30, [x0, #80]",
    "    mov x9, sp",
    "    str x9, [x0, #96]",
    "    stp x29, x30, [sp, #-16]!",
    "    mov x29, sp",
    "    mov x0, x2",
    "    blr x1",
    "    ldp x29, x30, [sp], #16",
    "    mov x0, #0",
    "    ret",
    // Entered by exception return with x0 = the JumpBuffer.
    ".global fault_landing",
    "fault_landing:",
    "    ldp x19, x20, [x0, #0]",
    "    ldp x21, x22, [x0, #16]",
    "    ldp x23, x24, [x0, #32]",
    "    ldp x25, x26, [x0, #48]",
    "    ldp x27, x28, [x0, #64]",
    "    ldp x29, x30, [x0, #80]",
    "    ldr x9, [x0, #96]",
    "    mov sp, x9",
    "    mov x0, #1",
    "    ret",
);

unsafe extern "C" {
    fn fault_catch(
        registers: *mut [u64; 13],
        function: unsafe extern "C" fn(*mut u8),
        argument: *mut u8,
    ) -> u64;
    fn fault_landing();
    static exception_vectors: u8;
}

/// Points VBAR_EL1 at the vector table. Each CPU calls it once at boot.
pub fn install_vectors() {
    VBAR_EL1.set((&raw const exception_vectors) as u64);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Runs `f` on this CPU; a synchronous exception inside it ends the call
/// with `Err(fault)` instead of a panic.
///
/// Limitation: the frames of `f` are abandoned, not unwound: what `f`
/// owned is leaked and any lock it held stays held. The harness uses this
/// for cases that fault on purpose or by mistake, where that is acceptable;
/// `f` must not migrate to another CPU (nothing migrates it today).
pub fn catch_fault<R, F: FnOnce() -> R>(f: F) -> Result<R, Fault> {
    struct Call<F, R> {
        function: Option<F>,
        result: Option<R>,
    }

    unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(argument: *mut u8) {
        // SAFETY: `argument` is the `Call` below, alive and not otherwise
        // borrowed for the whole of `fault_catch`.
        let call = unsafe { &mut *(argument as *mut Call<F, R>) };
        let function = call.function.take().expect("called once");
        call.result = Some(function());
    }

    let mut call = Call {
        function: Some(f),
        result: None,
    };
    let mut buffer = JumpBuffer::default();
    // The thread may move to another CPU inside `f` (the scheduler carries
    // the pointer along, see `take_recovery`), so each access names the
    // CPU it runs on at that moment, with IRQs masked.
    let irq = crate::arch::cpu::irq_save();
    let outer = RECOVERY[crate::arch::cpu::id()].swap(&mut buffer, Ordering::Relaxed);
    crate::arch::cpu::irq_restore(irq);
    // SAFETY: `fault_catch` saves the callee-saved registers in `buffer`
    // and calls `trampoline` with `call`; both outlive the call. On a fault
    // the handler resumes at `fault_landing`, which restores exactly those
    // registers and SP, so execution continues here as a normal return.
    let status = unsafe {
        fault_catch(
            &mut buffer.registers,
            trampoline::<F, R>,
            (&raw mut call).cast(),
        )
    };
    let irq = crate::arch::cpu::irq_save();
    RECOVERY[crate::arch::cpu::id()].store(outer, Ordering::Relaxed);
    crate::arch::cpu::irq_restore(irq);
    match (status, call.result) {
        (0, Some(result)) => Ok(result),
        _ => Err(buffer
            .fault
            .expect("fault_landing follows a recorded fault")),
    }
}

/// The running thread's recovery pointer, removed from this CPU: the
/// scheduler keeps it on the thread's stack across a switch. IRQs must be
/// masked.
pub fn take_recovery() -> usize {
    // Only this CPU touches its entry, with IRQs masked: no atomic
    // read-modify-write is needed.
    let entry = &RECOVERY[crate::arch::cpu::id()];
    let saved = entry.load(Ordering::Relaxed);
    entry.store(core::ptr::null_mut(), Ordering::Relaxed);
    saved as usize
}

/// Puts back what [`take_recovery`] returned, on the CPU the thread now
/// runs on. IRQs must be masked.
pub fn restore_recovery(saved: usize) {
    RECOVERY[crate::arch::cpu::id()].store(saved as *mut JumpBuffer, Ordering::Relaxed);
}

#[unsafe(no_mangle)]
extern "C" fn handle_sync(frame: &mut TrapFrame) {
    let cpu = crate::arch::cpu::id();
    let fault = Fault {
        cpu,
        esr: frame.esr,
        far: frame.far,
        elr: frame.elr,
    };
    let recovery = RECOVERY[cpu].load(Ordering::Relaxed);
    if !recovery.is_null() {
        // Resume in `fault_landing` with the JumpBuffer in x0; PSTATE
        // (the interrupt mask included) is the one saved at the fault.
        // SAFETY: a non-null entry is the buffer of a `catch_fault` call
        // still running on this CPU, which owns it until it returns.
        unsafe { (*recovery).fault = Some(fault) };
        // `registers` is the first field: its address is the buffer's.
        frame.x[0] = recovery as u64;
        frame.elr = fault_landing as *const () as u64;
        RECOVERY[cpu].store(core::ptr::null_mut(), Ordering::Relaxed);
        return;
    }
    crate::kern::panic::exception_panic(&fault, frame);
}

#[unsafe(no_mangle)]
extern "C" fn handle_irq(_frame: &mut TrapFrame) {
    crate::kern::interrupt::handle_irq();
}

#[unsafe(no_mangle)]
extern "C" fn handle_unexpected(frame: &mut TrapFrame, vector: u64) {
    let cpu = crate::arch::cpu::id();
    let fault = Fault {
        cpu,
        esr: frame.esr,
        far: frame.far,
        elr: frame.elr,
    };
    crate::kern::panic::unexpected_exception_panic(vector, &fault, frame);
}

/// Makes the caller take a data abort by reading an address that no map
/// contains. Used by tests of the fault reporting.
pub fn read_unmapped() -> u64 {
    /// Below the 512 GiB of the address space, above any RAM or device
    /// that the kernel maps on the supported boards.
    const UNMAPPED: usize = 0x7f_0000_0000;
    // SAFETY: the read faults; it is only executed inside `catch_fault` or
    // deliberately to test the panic path. No memory is accessed.
    unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) }
}

/// Executes `brk #0x4b` ("K"), a synchronous exception of class
/// `EC_BRK`. Used by tests of the fault reporting.
pub fn breakpoint() {
    // SAFETY: `brk` raises an exception and touches no memory; inside
    // `catch_fault` execution resumes after the call, elsewhere it panics.
    unsafe { core::arch::asm!("brk #0x4b", options(nomem, nostack)) };
}
