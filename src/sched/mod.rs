//! Threads and their scheduling: per-CPU run queues, preemption, wake-ups
//! by SGI, placement and stealing, affinity. `cpuset`, `runqueue` and
//! `balance` are hardware-free policy, tested on the host.

#![deny(unsafe_code)]

pub mod balance;
pub mod cpuset;
pub mod runqueue;

#[cfg(target_arch = "aarch64")]
pub mod ast;
#[cfg(target_arch = "aarch64")]
pub mod group;
#[cfg(target_arch = "aarch64")]
mod lifecycle;
#[cfg(target_arch = "aarch64")]
pub mod registry;
#[cfg(target_arch = "aarch64")]
pub mod scheduler;
#[cfg(target_arch = "aarch64")]
pub mod thread;

#[cfg(target_arch = "aarch64")]
pub use lifecycle::{SpawnError, SpawnOptions, exit_current, join, spawn, yield_now};
