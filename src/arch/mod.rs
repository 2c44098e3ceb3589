//! Architecture layer.
//!
//! `aarch64` is the real machine; `translation` and `esr` are pure logic
//! about AArch64 formats, built on the host too so that `cargo test` covers
//! them.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

pub mod esr;
pub mod translation;
