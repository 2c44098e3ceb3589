//! The spin-table enable method (Linux
//! `Documentation/arch/arm64/booting.rst`): firmware parks each secondary
//! CPU in a loop that waits, in `wfe`, for a non-zero entry address at the
//! CPU's `cpu-release-addr`. The Raspberry Pi 4 (firmware and QEMU) starts
//! its secondaries this way.

use crate::arch::cache;

/// Releases the CPU parked on `release_address` to `entry`.
///
/// # Safety
/// `release_address` must be the release word of a CPU parked by the
/// firmware (from the device tree's `cpu-release-addr`), mapped as normal
/// memory, and `entry` must be a valid secondary entry point.
pub unsafe fn release(release_address: usize, entry: usize) {
    // SAFETY: the caller guarantees the word is a mapped release address
    // that only the parked CPU reads.
    unsafe { core::ptr::write_volatile(release_address as *mut u64, entry as u64) };
    // The parked CPU polls with its caches off: push the word to memory,
    // then wake it from `wfe`.
    cache::clean_to_poc(release_address, 8);
    crate::arch::cpu::send_event();
}
