//! Entry of every CPU: the assembly in `boot.s` and what it shares with Rust.
//!
//! The boot CPU enters at `_start` (behind the arm64 Image header) with the
//! device tree's address in `x0`, drops to EL1, clears `.bss`, turns on the
//! MMU with a coarse boot map and calls [`primary_main`]. A secondary CPU
//! enters at `secondary_entry`, reads its identity from [`SECONDARY_BOOT`],
//! turns on the MMU with the final kernel map and calls `secondary_main`.
//!
//! Secondary CPUs are started one at a time (see `kern::smp`), so a single
//! [`SecondaryBoot`] record is enough.

use core::arch::global_asm;
use core::cell::UnsafeCell;

use super::mmu;
use crate::config::{BOOT_STACK_SIZE, MAX_CPUS};

/// SCTLR_EL1 with the MMU off: only the RES1 bits of Armv8.0 set
/// (bits 11, 20, 22, 23, 28, 29; Arm ARM D19.2.118).
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// SCTLR_EL1 bits set by `enable_mmu`: M (MMU), C (data cache),
/// SA (stack alignment check) and I (instruction cache).
const SCTLR_MMU_ON: u64 = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12);

global_asm!(
    ".equ SCTLR_EL1_RESET, {sctlr_reset}",
    ".equ SCTLR_MMU_ON, {sctlr_on}",
    ".equ MAIR_VALUE, {mair}",
    ".equ TCR_VALUE, {tcr}",
    ".equ BOOT_DEVICE_BLOCK, {device_block}",
    ".equ BOOT_NORMAL_BLOCK, {normal_block}",
    include_str!("boot.s"),
    sctlr_reset = const SCTLR_EL1_RESET,
    sctlr_on = const SCTLR_MMU_ON,
    mair = const mmu::MAIR_VALUE,
    tcr = const mmu::TCR_VALUE,
    device_block = const mmu::BOOT_DEVICE_BLOCK,
    normal_block = const mmu::BOOT_NORMAL_BLOCK,
    STACK_SIZE = const BOOT_STACK_SIZE,
);

/// The boot stacks, one slot of [`BOOT_STACK_SIZE`] bytes per CPU. The lowest
/// page of each slot is left unmapped by the kernel map as a guard, so an
/// overflow faults instead of running into the neighbouring CPU's stack.
#[repr(C, align(4096))]
pub struct BootStacks(UnsafeCell<[[u8; BOOT_STACK_SIZE]; MAX_CPUS]>);

// SAFETY: each CPU uses only its own slot, as its stack; Rust code never
// reads the array itself, only its address.
unsafe impl Sync for BootStacks {}

/// Boot stacks; `boot.s` puts CPU 0 on slot 0 by symbol name.
#[unsafe(no_mangle)]
pub static BOOT_STACKS: BootStacks = BootStacks(UnsafeCell::new([[0; BOOT_STACK_SIZE]; MAX_CPUS]));

/// What a starting secondary CPU reads before its MMU is on. The field
/// order is fixed by the offsets that `boot.s` uses.
#[repr(C, align(64))]
pub struct SecondaryBoot {
    /// Logical id of the CPU being started.
    pub cpu: u64,
    /// Initial stack pointer.
    pub stack_top: u64,
    /// Translation table base (the kernel map).
    pub ttbr0: u64,
    /// SCTLR_EL1 bits to set besides the MMU and cache enables.
    pub sctlr_extra: u64,
}

/// The record for the secondary CPU being started.
///
/// Written only by the CPU that starts secondaries, one at a time, and read
/// by the started CPU with its MMU off.
#[unsafe(no_mangle)]
pub static SECONDARY_BOOT: BootRecordCell = BootRecordCell(UnsafeCell::new(SecondaryBoot {
    cpu: 0,
    stack_top: 0,
    ttbr0: 0,
    sctlr_extra: 0,
}));

/// Interior-mutable holder of [`SecondaryBoot`].
pub struct BootRecordCell(UnsafeCell<SecondaryBoot>);

// SAFETY: only `kern::smp` writes the record, from one CPU, while no
// secondary is between its release and its `online` report.
unsafe impl Sync for BootRecordCell {}

/// The boot stack slot of `cpu`: (lowest address, top).
pub fn boot_stack(cpu: usize) -> (usize, usize) {
    let base = BOOT_STACKS.0.get() as usize + cpu * BOOT_STACK_SIZE;
    (base, base + BOOT_STACK_SIZE)
}

/// Fills in the boot record for `cpu` and cleans it to the point of
/// coherency, where a CPU with its MMU and caches off will read it.
///
/// Must be called by the one CPU that starts secondaries, before it starts
/// `cpu`, and not again until `cpu` reports itself online.
pub fn prepare_secondary(cpu: usize) {
    let (_, top) = boot_stack(cpu);
    let record = SECONDARY_BOOT.0.get();
    // SAFETY: no secondary CPU is reading the record now (the previous one
    // reported online before this call), so this CPU has exclusive access.
    unsafe {
        record.write(SecondaryBoot {
            cpu: cpu as u64,
            stack_top: top as u64,
            ttbr0: mmu::kernel_ttbr0(),
            sctlr_extra: mmu::SCTLR_WXN,
        });
    }
    super::cache::clean_to_poc(record as usize, size_of::<SecondaryBoot>());
}

/// Address of the secondary CPUs' entry point, for PSCI and the spin table.
pub fn secondary_entry_address() -> usize {
    unsafe extern "C" {
        fn secondary_entry();
    }
    secondary_entry as *const () as usize
}

/// Boot-time read access to `[address, address + len)`: the device tree or
/// ATAG list the loader left in RAM. `None` unless the range lies in the
/// GiB that the boot map covers as normal memory (the kernel's), which is
/// where QEMU and the Pi firmware put them.
///
/// The memory must not be handed to the heap while the slice is in use;
/// boot copies what it needs before it builds the heap.
pub fn boot_memory(address: usize, len: usize) -> Option<&'static [u8]> {
    let end = address.checked_add(len)?;
    let kernel_gib = super::mmu::kernel_sections().start >> 30;
    let inside = address != 0
        && (address as u64) >> 30 == kernel_gib
        && ((end - 1) as u64) >> 30 == kernel_gib;
    // SAFETY: the range is inside the boot map's normal-memory GiB, so
    // reading it cannot fault; it is RAM written by the loader before the
    // kernel started, and nothing writes it while boot reads it.
    inside.then(|| unsafe { core::slice::from_raw_parts(address as *const u8, len) })
}

/// Called by `boot.s` on the boot CPU, MMU on (boot map), on its stack.
#[unsafe(no_mangle)]
extern "C" fn primary_main(device_tree: usize) -> ! {
    crate::kern::init::primary(device_tree)
}

/// Called by `boot.s` on a secondary CPU, MMU on (kernel map).
#[unsafe(no_mangle)]
extern "C" fn secondary_main(cpu: usize) -> ! {
    crate::kern::init::secondary(cpu)
}
