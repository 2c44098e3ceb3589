//! The test watchdog: turns a case that never returns into a named
//! failure.
//!
//! The runner arms it with the running case's index, name and deadline.
//! Every CPU's tick checks the deadline; the first to see it pass reports
//! `FAIL <name>: hung` and `HUNG <index> <name>`, then ends the run with
//! [`HUNG_EXIT_CODE`]. The host runner boots again with `skip=<index + 1>`
//! to run the cases after it.
//!
//! Limitation: the hung case cannot be stopped in place (it runs on the
//! boot CPU's stack, not in a thread of its own), hence the reboot; the
//! scheduler will let the runner abandon it instead. A case that hangs
//! with IRQs masked on every CPU is caught by the host runner's timeout.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use crate::platform::machine::FixedText;

/// Exit status of a run ended by the watchdog.
pub const HUNG_EXIT_CODE: u32 = 3;

static ARMED: AtomicBool = AtomicBool::new(false);
/// Counter value after which the armed case counts as hung.
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static INDEX: AtomicUsize = AtomicUsize::new(0);
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
/// Name of the armed case (a copy); written only while disarmed.
static NAME: Mutex<FixedText<128>> = Mutex::new(FixedText::new());

/// Arms the watchdog for case `index` named `name`.
pub fn arm(index: usize, name: &str, timeout_ms: u64) {
    *NAME.lock() = FixedText::from_text(name);
    INDEX.store(index, Ordering::Relaxed);
    TIMEOUT_MS.store(timeout_ms, Ordering::Relaxed);
    let counts = crate::arch::timer::frequency() * timeout_ms / 1000;
    DEADLINE.store(crate::arch::timer::counter() + counts, Ordering::Relaxed);
    ARMED.store(true, Ordering::Release);
}

/// Disarms it: the case returned.
pub fn disarm() {
    ARMED.store(false, Ordering::Release);
}

/// Called from every CPU's tick with the current counter value.
pub fn check(now: u64) {
    if !ARMED.load(Ordering::Acquire) || now < DEADLINE.load(Ordering::Relaxed) {
        return;
    }
    // One CPU reports; the others see it disarmed.
    if ARMED.swap(false, Ordering::AcqRel) {
        let name = NAME
            .try_lock()
            .map_or(FixedText::from_text("?"), |name| *name);
        let name = name.as_str();
        let index = INDEX.load(Ordering::Relaxed);
        crate::println!(
            "FAIL {name}: hung: no result after {} ms (watchdog)",
            TIMEOUT_MS.load(Ordering::Relaxed)
        );
        crate::println!("HUNG {index} {name}");
        crate::kern::shutdown::exit(HUNG_EXIT_CODE);
    }
}
