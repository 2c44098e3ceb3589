//! Kernel mechanisms: locks, console, heap, interrupts, clock, SMP
//! bring-up, sleep queues and callouts, panic and shutdown, and the boot
//! sequence that starts them. `timer_wheel` is hardware-free and also
//! builds on the host.

#![deny(unsafe_code)]

pub mod timer_wheel;

#[cfg(target_arch = "aarch64")]
pub mod callout;
#[cfg(target_arch = "aarch64")]
pub mod clock;
#[cfg(target_arch = "aarch64")]
pub mod console;
#[cfg(target_arch = "aarch64")]
pub mod heap;
#[cfg(target_arch = "aarch64")]
pub mod init;
#[cfg(target_arch = "aarch64")]
pub mod interrupt;
#[cfg(target_arch = "aarch64")]
pub mod lock;
#[cfg(target_arch = "aarch64")]
pub mod machine;
#[cfg(target_arch = "aarch64")]
pub mod mutex;
#[cfg(target_arch = "aarch64")]
pub mod panic;
#[cfg(target_arch = "aarch64")]
pub mod shutdown;
#[cfg(target_arch = "aarch64")]
pub mod sleepqueue;
#[cfg(target_arch = "aarch64")]
pub mod smp;
#[cfg(target_arch = "aarch64")]
pub mod sx;
