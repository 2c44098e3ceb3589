//! Kernel mechanisms: locks, console, heap, interrupts, clock, SMP
//! bring-up and cross-CPU calls, panic and shutdown, and the boot
//! sequence that starts them.

#![deny(unsafe_code)]

pub mod clock;
pub mod console;
pub mod heap;
pub mod init;
pub mod interrupt;
pub mod lock;
pub mod machine;
pub mod panic;
pub mod shutdown;
pub mod smp;
