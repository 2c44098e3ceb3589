//! MMU: the boot map, the kernel map and the registers that select them.
//!
//! Two maps are used, both identity maps in TTBR0_EL1:
//! 1. The boot map, built by `boot.s` before any Rust code runs: 1 GiB
//!    blocks, the kernel's GiB as normal memory and the rest of the first
//!    4 GiB as device memory. It makes the caches usable (and unaligned
//!    accesses legal) while the device tree is read.
//! 2. The kernel map, built here from the device tree: the kernel image
//!    with W^X at page granularity, each CPU's boot stack below a guard
//!    page, RAM read/write and never executable, and each device's
//!    registers as Device-nGnRE. SCTLR_EL1.WXN is set with it, so the
//!    hardware also refuses to execute any writable page.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{SCTLR_EL1, TTBR0_EL1};
use tock_registers::interfaces::ReadWriteable;

use crate::arch::translation::{self, MapError, Mapper, MemoryKind, PageTable, PAGE_SIZE};
use crate::config::{BOOT_STACK_SIZE, MAX_CPUS};

/// MAIR_EL1: attribute 0 Device-nGnRE (0x04), attribute 1 Normal
/// write-back, read/write-allocate, inner and outer (0xff).
pub const MAIR_VALUE: u64 = 0x04 | (0xff << 8);

/// TCR_EL1 without IPS (which `boot.s` fills in from ID_AA64MMFR0_EL1):
/// T0SZ = 25 (39-bit addresses), walks inner/outer write-back cacheable and
/// inner shareable, 4 KiB granule, EPD1 (no TTBR1 walks).
pub const TCR_VALUE: u64 = 25 | (1 << 8) | (1 << 10) | (0b11 << 12) | (1 << 23);

/// Level-1 block descriptors of the boot map.
pub const BOOT_DEVICE_BLOCK: u64 = translation::boot_block(true);
/// See [`BOOT_DEVICE_BLOCK`].
pub const BOOT_NORMAL_BLOCK: u64 = translation::boot_block(false);

/// SCTLR_EL1.WXN: writable memory is never executable.
pub const SCTLR_WXN: u64 = 1 << 19;

/// Tables of the kernel map: the level-1 table and what it points to.
const KERNEL_TABLE_COUNT: usize = 64;

/// Level-1 table of the boot map; `boot.s` fills it by symbol name.
#[unsafe(no_mangle)]
pub static BOOT_L1_TABLE: TablePool<1> = TablePool::new();

/// Pool of the kernel map's tables. Written once, by the boot CPU, before
/// the map is installed; only read (by table walks) afterwards.
static KERNEL_TABLES: TablePool<KERNEL_TABLE_COUNT> = TablePool::new();

/// TTBR0_EL1 value of the kernel map; 0 until it is built.
static KERNEL_TTBR0: AtomicU64 = AtomicU64::new(0);

/// Page tables in `.bss`, written through a raw pointer only while no walk
/// can reach them.
#[repr(C, align(4096))]
pub struct TablePool<const N: usize>(UnsafeCell<[PageTable; N]>);

// SAFETY: the pools are written by one CPU during boot (see the callers)
// and afterwards only read, by the MMU.
unsafe impl<const N: usize> Sync for TablePool<N> {}

impl<const N: usize> TablePool<N> {
    const fn new() -> Self {
        Self(UnsafeCell::new([PageTable::EMPTY; N]))
    }
}

/// A region the kernel map must contain besides the kernel image.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Memory type and rights.
    pub kind: MemoryKind,
}

/// The kernel image's sections, from the linker script.
pub struct KernelSections {
    /// `[start, text_end)`: code.
    pub start: u64,
    /// End of code, start of read-only data.
    pub text_end: u64,
    /// End of read-only data, start of data and `.bss`.
    pub rodata_end: u64,
    /// End of the image, `.bss` included.
    pub end: u64,
}

/// Where the linker put the kernel's sections.
pub fn kernel_sections() -> KernelSections {
    unsafe extern "C" {
        static __kernel_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static __kernel_end: u8;
    }
    KernelSections {
        start: (&raw const __kernel_start) as u64,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        end: (&raw const __kernel_end) as u64,
    }
}

/// Builds the kernel map and switches this CPU to it.
///
/// `ram` lists RAM that is not part of the kernel image; `devices` lists
/// device register blocks. Both are rounded out to whole pages.
///
/// # Errors
/// A [`MapError`] if a region cannot be mapped; this CPU then stays on the
/// boot map.
///
/// # Panics
/// If called twice: the kernel map is built once, at boot.
pub fn install_kernel_map(ram: &[Region], devices: &[Region]) -> Result<usize, MapError> {
    assert_eq!(KERNEL_TTBR0.load(Ordering::Relaxed), 0, "kernel map built twice");
    // SAFETY: called once, on the boot CPU, before any other CPU runs and
    // before TTBR0_EL1 points at the pool, so nothing else reads or writes
    // these tables while this reference lives.
    let tables = unsafe { &mut *KERNEL_TABLES.0.get() };
    let mut mapper = Mapper::new(tables);

    // 1. The image: text, read-only data, then data and .bss, with each
    //    boot stack's lowest page left out as a guard.
    let image = kernel_sections();
    mapper.identity_map(image.start, image.text_end - image.start, MemoryKind::TEXT)?;
    let rodata_len = image.rodata_end - image.text_end;
    mapper.identity_map(image.text_end, rodata_len, MemoryKind::RODATA)?;
    let (stacks_start, _) = super::boot::boot_stack(0);
    let stacks_start = stacks_start as u64;
    let stacks_end = stacks_start + (MAX_CPUS * BOOT_STACK_SIZE) as u64;
    mapper.identity_map(image.rodata_end, stacks_start - image.rodata_end, MemoryKind::DATA)?;
    for cpu in 0..MAX_CPUS {
        let slot = stacks_start + (cpu * BOOT_STACK_SIZE) as u64;
        let usable = BOOT_STACK_SIZE as u64 - PAGE_SIZE;
        mapper.identity_map(slot + PAGE_SIZE, usable, MemoryKind::DATA)?;
    }
    mapper.identity_map(stacks_end, image.end - stacks_end, MemoryKind::DATA)?;

    // 2. RAM outside the image, then the devices.
    for region in ram.iter().chain(devices) {
        let start = region.start & !(PAGE_SIZE - 1);
        let end = (region.start + region.len).next_multiple_of(PAGE_SIZE);
        mapper.identity_map(start, end - start, region.kind)?;
    }
    let used = mapper.tables_used();
    let root = mapper.root_address();

    // 3. Switch. The table writes must be visible to the walker before
    //    TTBR0_EL1 changes; entries cached from the boot map must go.
    barrier::dsb(barrier::ISHST);
    TTBR0_EL1.set_baddr(root);
    barrier::isb(barrier::SY);
    invalidate_tlb();
    SCTLR_EL1.modify(SCTLR_EL1::WXN::Enable);
    barrier::isb(barrier::SY);
    invalidate_tlb();
    KERNEL_TTBR0.store(root, Ordering::Release);
    Ok(used)
}

/// TTBR0_EL1 of the kernel map, for secondary CPUs.
pub fn kernel_ttbr0() -> u64 {
    KERNEL_TTBR0.load(Ordering::Acquire)
}

/// Invalidates this CPU's stage-1 EL1 TLB entries and waits for it.
fn invalidate_tlb() {
    // SAFETY: TLB maintenance only drops cached translations; the tables
    // in memory stay the source of truth.
    unsafe {
        core::arch::asm!("tlbi vmalle1", "dsb nsh", "isb", options(nostack));
    }
}
