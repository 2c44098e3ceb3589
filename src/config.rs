//! Build-time limits of the kernel.

/// Most CPUs the kernel runs on; more in the device tree are left parked.
/// QEMU's GICv2 stops at 8 as well.
pub const MAX_CPUS: usize = 8;

/// Size of each CPU's boot stack, its lowest page a guard.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

/// Timer interrupts per second on each CPU.
pub const TICK_HZ: u64 = 1000;
