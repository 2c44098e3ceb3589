//! Kestrel: a Rust unikernel for 64-bit Arm with FreeBSD's process life
//! cycle.
//!
//! Layers, bottom up (see `docs/ARCHITECTURE.md`):
//! - [`arch`]: boot, exceptions, MMU, caches, timer, per-CPU registers;
//! - [`drivers`]: PL011, GICv2/v3, PSCI, spin table;
//! - [`platform`]: the machine description (device tree, board tables);
//! - [`kern`]: locks, console, heap, interrupts, clock, SMP, sleep
//!   queues, callouts, panic;
//! - [`sched`]: threads, per-CPU run queues, balancing;
//! - [`api`]: the payload interface;
//! - [`harness`] and [`program`]: what runs once the kernel is up.
//!
//! `unsafe` is confined to `arch`, `drivers` and the allocator glue in
//! `kern::heap`; the other layers deny it.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![cfg_attr(test, allow(dead_code))]

extern crate alloc;

pub mod arch;
pub mod config;
pub mod kern;
pub mod platform;
pub mod sched;

#[cfg(target_arch = "aarch64")]
pub mod api;
#[cfg(target_arch = "aarch64")]
pub mod bench;
#[cfg(target_arch = "aarch64")]
pub mod drivers;
#[cfg(target_arch = "aarch64")]
pub mod harness;
#[cfg(target_arch = "aarch64")]
pub mod program;

/// The payload files of `tests/`, collected by `build.rs`.
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code, missing_docs)]
pub mod payloads {
    include!(concat!(env!("OUT_DIR"), "/payloads.rs"));
}
