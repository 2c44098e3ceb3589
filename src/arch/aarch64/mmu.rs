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
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{SCTLR_EL1, TTBR0_EL1};
use tock_registers::interfaces::ReadWriteable;

use crate::arch::translation::{self, MapError, Mapper, MemoryKind, PAGE_SIZE, PageTable};

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

/// Tables of the kernel map: the level-1 table and what it points to,
/// including the level-3 tables of the thread stack region.
const KERNEL_TABLE_COUNT: usize = 256;

/// Level-1 table of the boot map; `boot.s` fills it by symbol name.
#[unsafe(no_mangle)]
pub static BOOT_L1_TABLE: TablePool<1> = TablePool::new();

/// Pool of the kernel map's tables. Written once, by the boot CPU, before
/// the map is installed; only read (by table walks) afterwards.
static KERNEL_TABLES: TablePool<KERNEL_TABLE_COUNT> = TablePool::new();

/// TTBR0_EL1 value of the kernel map; 0 until it is built.
static KERNEL_TTBR0: AtomicU64 = AtomicU64::new(0);

/// Tables of the kernel map taken so far; the stack region takes more.
/// Changed only under [`STACK_REGION`]'s lock after boot.
static KERNEL_TABLES_USED: AtomicUsize = AtomicUsize::new(0);

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
    assert_eq!(
        KERNEL_TTBR0.load(Ordering::Relaxed),
        0,
        "kernel map built twice"
    );
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
    mapper.identity_map(
        image.rodata_end,
        stacks_start - image.rodata_end,
        MemoryKind::DATA,
    )?;
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
    KERNEL_TABLES_USED.store(used, Ordering::Relaxed);

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

/// Thread stacks live in their own region of the address space, outside
/// the identity map: a slot per stack, whose lowest page stays unmapped as
/// a guard, so that an overflow faults instead of corrupting memory.
pub const STACK_REGION_BASE: u64 = 0x40_0000_0000;
/// Bytes of one stack (below its guard page).
pub const STACK_SIZE: usize = 32 * 1024;
/// Bytes of one slot: the guard page and the stack.
const STACK_SLOT: u64 = STACK_SIZE as u64 + PAGE_SIZE;
/// Slots in the region: the most thread stacks alive at once.
pub const STACK_SLOTS: usize = 8192;

/// Which stack slots are taken.
struct StackRegion {
    taken: [u64; STACK_SLOTS / 64],
    /// Slots taken, for the figures.
    count: usize,
}

/// The stack region's allocation state, with IRQs masked while held: a
/// stack may be freed from an interrupt handler (the scheduler's
/// switch-out path), so a holder must not be interruptible on its CPU.
static STACK_REGION: spin::Mutex<StackRegion> = spin::Mutex::new(StackRegion {
    taken: [0; STACK_SLOTS / 64],
    count: 0,
});

/// A thread's kernel stack: physical pages from the heap, mapped at a slot
/// of the stack region below an unmapped guard page. Dropping it unmaps
/// the pages, invalidates their TLB entries on every CPU and frees them.
pub struct KernelStack {
    slot: usize,
    memory: core::ptr::NonNull<u8>,
}

// SAFETY: the stack's memory is owned by this value alone; it may be
// dropped on any CPU.
unsafe impl Send for KernelStack {}
// SAFETY: shared references only read `slot` and `memory`.
unsafe impl Sync for KernelStack {}

/// Why a stack could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// No free slot, or no table to map it.
    NoSlot,
    /// The heap has no room for the stack.
    NoMemory,
}

fn stack_layout() -> core::alloc::Layout {
    core::alloc::Layout::from_size_align(STACK_SIZE, PAGE_SIZE as usize).expect("valid layout")
}

/// Stacks kept mapped for reuse: making a stack (memory, slot, eight page
/// entries) and freeing one (eight TLB invalidations broadcast to every
/// CPU) are most of the cost of a short-lived thread. Filled to
/// [`STACK_CACHE_SIZE`] at boot and refilled by exiting threads, so that
/// the heap holds the same when no thread is alive.
static STACK_CACHE: spin::Mutex<alloc::vec::Vec<KernelStack>> =
    spin::Mutex::new(alloc::vec::Vec::new());

/// Stacks the cache keeps.
pub const STACK_CACHE_SIZE: usize = 32;

/// Fills the stack cache; once, at boot, once the heap exists.
///
/// # Errors
/// [`StackError`] if the stacks cannot be made.
pub fn fill_stack_cache() -> Result<(), StackError> {
    let mut stacks = alloc::vec::Vec::with_capacity(STACK_CACHE_SIZE);
    for _ in 0..STACK_CACHE_SIZE {
        stacks.push(KernelStack::allocate()?);
    }
    let irq = super::cpu::irq_save();
    *STACK_CACHE.lock() = stacks;
    super::cpu::irq_restore(irq);
    Ok(())
}

impl KernelStack {
    /// A stack from the cache, or a newly allocated and mapped one.
    ///
    /// # Errors
    /// [`StackError`] when memory, a slot or a table is missing; nothing
    /// is left allocated then.
    pub fn new() -> Result<Self, StackError> {
        let irq = super::cpu::irq_save();
        let cached = STACK_CACHE.lock().pop();
        super::cpu::irq_restore(irq);
        match cached {
            Some(stack) => Ok(stack),
            None => Self::allocate(),
        }
    }

    /// Gives the stack back: to the cache if it has room, else freed.
    pub fn recycle(self) {
        let irq = super::cpu::irq_save();
        let mut cache = STACK_CACHE.lock();
        let spare = if cache.len() < cache.capacity() {
            cache.push(self);
            None
        } else {
            Some(self)
        };
        drop(cache);
        super::cpu::irq_restore(irq);
        drop(spare);
    }

    /// Allocates and maps a stack.
    fn allocate() -> Result<Self, StackError> {
        // SAFETY: the layout has a non-zero size.
        let memory = unsafe { alloc::alloc::alloc(stack_layout()) };
        let memory = core::ptr::NonNull::new(memory).ok_or(StackError::NoMemory)?;
        let irq = super::cpu::irq_save();
        let result = Self::map(memory);
        super::cpu::irq_restore(irq);
        result.inspect_err(|_| {
            // SAFETY: allocated above with this layout, never mapped.
            unsafe { alloc::alloc::dealloc(memory.as_ptr(), stack_layout()) };
        })
    }

    fn map(memory: core::ptr::NonNull<u8>) -> Result<Self, StackError> {
        let mut region = STACK_REGION.lock();
        let slot = (0..STACK_SLOTS)
            .find(|&slot| region.taken[slot / 64] & (1 << (slot % 64)) == 0)
            .ok_or(StackError::NoSlot)?;
        let va = STACK_REGION_BASE + slot as u64 * STACK_SLOT + PAGE_SIZE;
        {
            // SAFETY: the pool is changed only under STACK_REGION's lock,
            // held here; the MMU reads it concurrently, which is why new
            // entries are only ever turned from invalid to valid here.
            let tables = unsafe { &mut *KERNEL_TABLES.0.get() };
            let mut mapper = Mapper::resume(tables, KERNEL_TABLES_USED.load(Ordering::Relaxed));
            let mapped = mapper.map_pages(
                va,
                memory.as_ptr() as u64,
                STACK_SIZE as u64,
                MemoryKind::DATA,
            );
            KERNEL_TABLES_USED.store(mapper.tables_used(), Ordering::Relaxed);
            mapped.map_err(|_| StackError::NoSlot)?;
        }
        // The new entries must be visible to every CPU's table walker
        // before the stack is used, possibly on another CPU.
        barrier::dsb(barrier::ISH);
        barrier::isb(barrier::SY);
        region.taken[slot / 64] |= 1 << (slot % 64);
        region.count += 1;
        Ok(Self { slot, memory })
    }

    /// The stack's slot in the region, also its thread's context index.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The address just above the stack, its initial stack pointer.
    pub fn top(&self) -> usize {
        (STACK_REGION_BASE + (self.slot as u64 + 1) * STACK_SLOT) as usize
    }

    /// The lowest address of the guard page below the stack.
    pub fn guard(&self) -> usize {
        (STACK_REGION_BASE + self.slot as u64 * STACK_SLOT) as usize
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        let va = self.guard() as u64 + PAGE_SIZE;
        let irq = super::cpu::irq_save();
        let mut region = STACK_REGION.lock();
        {
            // SAFETY: as in `map`, under STACK_REGION's lock.
            let tables = unsafe { &mut *KERNEL_TABLES.0.get() };
            let mut mapper = Mapper::resume(tables, KERNEL_TABLES_USED.load(Ordering::Relaxed));
            mapper
                .unmap_pages(va, STACK_SIZE as u64)
                .expect("a stack's pages are mapped");
        }
        // Every CPU must forget the old translations before the pages are
        // reused (Arm ARM D8.14: break, then TLB maintenance, broadcast).
        barrier::dsb(barrier::ISHST);
        for page in (va..va + STACK_SIZE as u64).step_by(PAGE_SIZE as usize) {
            // SAFETY: TLB maintenance by address only drops cached
            // translations of the unmapped pages.
            unsafe { core::arch::asm!("tlbi vaae1is, {}", in(reg) page >> 12, options(nostack)) };
        }
        barrier::dsb(barrier::ISH);
        barrier::isb(barrier::SY);
        region.taken[self.slot / 64] &= !(1 << (self.slot % 64));
        region.count -= 1;
        drop(region);
        super::cpu::irq_restore(irq);
        // SAFETY: allocated in `new` with this layout; unmapped above, so
        // nothing reaches it through the stack region any more.
        unsafe { alloc::alloc::dealloc(self.memory.as_ptr(), stack_layout()) };
    }
}

/// Thread stacks allocated now.
pub fn stacks_in_use() -> usize {
    let irq = super::cpu::irq_save();
    let count = STACK_REGION.lock().count;
    super::cpu::irq_restore(irq);
    count
}
