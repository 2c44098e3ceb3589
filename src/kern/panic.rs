//! Panics: report, stop every other CPU, end the run with a failure.
//!
//! A panic on any CPU prints the CPU and the reason (for an exception: its
//! class, syndrome and every register), sends the other CPUs the stop SGI,
//! and ends the emulator with [`PANIC_EXIT_CODE`]. A second panic while
//! the first is being reported parks its CPU, so the first report stays
//! readable.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::console::write_fmt_panicking;
use super::interrupt::{self, SGI_STOP};
use crate::arch::cpu;
use crate::arch::esr::{self, Fault};
use crate::arch::exception::TrapFrame;
use crate::config::MAX_CPUS;

/// Exit status of a run that panicked (the one Rust programs use).
pub const PANIC_EXIT_CODE: u32 = 101;

/// Set by the first CPU to panic.
static PANICKING: AtomicBool = AtomicBool::new(false);
/// CPUs that have stopped on request.
static STOPPED: AtomicUsize = AtomicUsize::new(0);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let this = cpu::id();
    claim_or_park();
    let location = info.location();
    write_fmt_panicking(format_args!(
        "PANIC cpu{this}: {}{}{}\n",
        info.message(),
        location.map_or("", |_| " at "),
        Location(location)
    ));
    stop_others_and_exit(this)
}

/// An exception nobody asked to survive.
pub fn exception_panic(fault: &Fault, frame: &TrapFrame) -> ! {
    claim_or_park();
    let detail = match fault.class() {
        esr::EC_DATA_ABORT_SAME_EL | esr::EC_INSTRUCTION_ABORT_SAME_EL => {
            esr::abort_status(fault.esr)
        }
        _ => "",
    };
    write_fmt_panicking(format_args!(
        "PANIC cpu{}: unhandled {fault} {detail}\n{frame}\n",
        fault.cpu
    ));
    stop_others_and_exit(fault.cpu)
}

/// An exception through a vector the kernel never uses.
pub fn unexpected_exception_panic(vector: u64, fault: &Fault, frame: &TrapFrame) -> ! {
    claim_or_park();
    write_fmt_panicking(format_args!(
        "PANIC cpu{}: exception through unexpected vector {vector}: {fault}\n{frame}\n",
        fault.cpu
    ));
    stop_others_and_exit(fault.cpu)
}

/// The stop SGI: park this CPU for good.
pub fn stop_this_cpu() -> ! {
    STOPPED.fetch_add(1, Ordering::Relaxed);
    cpu::halt()
}

fn claim_or_park() {
    if PANICKING.swap(true, Ordering::AcqRel) {
        // Another CPU (or this one, recursively) is reporting already.
        stop_this_cpu();
    }
}

fn stop_others_and_exit(this: usize) -> ! {
    let online = super::smp::online_count();
    for other in (0..MAX_CPUS).filter(|&c| c != this && super::smp::is_online(c)) {
        interrupt::send_sgi(other, SGI_STOP);
    }
    // Give them a moment; a CPU with IRQs masked forever will not answer.
    for _ in 0..10_000_000 {
        if STOPPED.load(Ordering::Relaxed) + 1 >= online {
            break;
        }
        crate::arch::cpu::relax();
    }
    write_fmt_panicking(format_args!(
        "PANIC cpu{this}: {} of {} other CPUs stopped; exiting with {PANIC_EXIT_CODE}\n",
        STOPPED.load(Ordering::Relaxed),
        online.saturating_sub(1)
    ));
    super::shutdown::exit(PANIC_EXIT_CODE)
}

struct Location<'a>(Option<&'a core::panic::Location<'a>>);

impl core::fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(location) => write!(f, "{}:{}", location.file(), location.line()),
            None => Ok(()),
        }
    }
}
