//! The console: the PL011 behind a lock, and the `log` backend.
//!
//! Each log line carries the time since boot and the CPU that wrote it:
//! `[    1.234567] cpu2 INFO  message`. A line is written whole under the
//! console lock, so lines from different CPUs never interleave. The lock
//! is the innermost of the kernel (see `kern::lock`): anything may log.

use core::fmt::{self, Write};

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::lock::{LockClass, SpinLockIrq};
use crate::drivers::pl011::Pl011;

/// The console UART; `None` until [`init`].
static CONSOLE: SpinLockIrq<Option<Pl011>> = SpinLockIrq::ordered(LockClass::Console, None);

/// Spins the panic path tries the lock before writing without it.
const PANIC_LOCK_ATTEMPTS: usize = 1_000_000;

struct Writer<'a>(&'a Pl011);

impl Write for Writer<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.0.write_byte(b'\r');
            }
            self.0.write_byte(byte);
        }
        Ok(())
    }
}

/// Starts the console on `uart` and the logger at `level`.
pub fn init(uart: Pl011, clock_hz: Option<u64>, level: LevelFilter) {
    uart.init(clock_hz);
    *CONSOLE.lock() = Some(uart);
    // A second call (none is made) would keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Writes `args` to the console as one unit. Does nothing before [`init`].
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let console = CONSOLE.lock();
    if let Some(uart) = console.as_ref() {
        let _ = Writer(uart).write_fmt(args);
    }
}

/// Writes from the panic path: waits a bounded time for the lock, then
/// writes without it (the holder may be stopped, or be this very CPU).
pub fn write_fmt_panicking(args: fmt::Arguments<'_>) {
    for _ in 0..PANIC_LOCK_ATTEMPTS {
        if let Some(console) = CONSOLE.try_lock() {
            if let Some(uart) = console.as_ref() {
                let _ = Writer(uart).write_fmt(args);
                uart.flush();
            }
            return;
        }
        crate::arch::cpu::relax();
    }
    // The lock holder is stuck: build a second driver on the same UART.
    // Its output may interleave with a half-written line; that is the cost
    // of saying anything at all.
    if let Some(description) = super::machine::get().and_then(|m| m.uart) {
        let uart = crate::drivers::probe::console(&description);
        let _ = Writer(&uart).write_fmt(args);
    }
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::kern::console::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {
        $crate::kern::console::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = super::clock::uptime_ns() / 1000;
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        write_fmt(format_args!(
            "[{:>5}.{:06}] cpu{} {level} {}\n",
            micros / 1_000_000,
            micros % 1_000_000,
            crate::arch::cpu::id(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

/// Parses a `loglevel=` boot argument.
pub fn parse_level(text: Option<&str>) -> LevelFilter {
    match text {
        Some("error") => LevelFilter::Error,
        Some("warn") => LevelFilter::Warn,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        Some("off") => LevelFilter::Off,
        _ => LevelFilter::Info,
    }
}
