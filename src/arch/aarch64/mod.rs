//! AArch64: boot, exceptions, MMU, caches, the generic timer and the
//! per-CPU registers. Only this layer and `drivers` contain `unsafe`.

pub mod boot;
pub mod cache;
pub mod context;
pub mod cpu;
pub mod exception;
pub mod mmu;
pub mod semihosting;
pub mod timer;
