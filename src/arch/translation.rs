//! AArch64 stage-1 translation tables: descriptors and a mapper.
//!
//! Pure logic about the table format (Arm ARM D8.3, "Translation table
//! descriptor formats"), kept free of system registers so that host unit
//! tests can build and walk real tables. The MMU driver in
//! `arch::aarch64::mmu` owns the table pool and the registers.
//!
//! Geometry: 4 KiB granule, 39-bit virtual addresses (`TCR_EL1.T0SZ = 25`),
//! so a walk starts at level 1 (1 GiB per entry), then level 2 (2 MiB) and
//! level 3 (4 KiB). The kernel runs identity-mapped: virtual address equals
//! physical address, including for the tables themselves.
//!
//! Invariants kept by [`Mapper`]:
//! - no mapping is both writable and executable (W^X);
//! - device memory is never executable;
//! - a range is mapped once: mapping over an existing entry is an error,
//!   never a silent replacement.

use core::fmt;

/// Bytes covered by one entry at levels 1, 2 and 3.
pub const LEVEL_SIZE: [u64; 4] = [0, 1 << 30, 1 << 21, 1 << 12];

/// Page size of the 4 KiB granule.
pub const PAGE_SIZE: u64 = 1 << 12;

/// Number of virtual address bits translated (`64 - T0SZ`).
pub const VA_BITS: u32 = 39;

/// Entries in one table.
pub const ENTRIES: usize = 512;

/// MAIR_EL1 attribute index of Device-nGnRE memory.
pub const ATTR_DEVICE: u64 = 0;
/// MAIR_EL1 attribute index of Normal write-back cacheable memory.
pub const ATTR_NORMAL: u64 = 1;

// Descriptor bits (Arm ARM D8.3.1 and D8.4).
const VALID: u64 = 1 << 0;
/// Bit 1: table (levels 1-2) or page (level 3) rather than block.
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_SHIFT: u32 = 2;
/// AP[2]: read-only at EL1.
const READ_ONLY: u64 = 1 << 7;
/// SH[1:0] = 0b11: inner shareable.
const INNER_SHAREABLE: u64 = 0b11 << 8;
/// Access flag: set, so that the first access does not fault.
const ACCESS_FLAG: u64 = 1 << 10;
const PRIVILEGED_EXECUTE_NEVER: u64 = 1 << 53;
const UNPRIVILEGED_EXECUTE_NEVER: u64 = 1 << 54;
/// Output address bits [47:12] of any descriptor.
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// What kind of memory a mapping is, and the kernel's rights to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// RAM, cacheable; `writable` and `executable` are exclusive.
    Normal { writable: bool, executable: bool },
    /// Device registers: Device-nGnRE, read/write, never executable.
    Device,
}

impl MemoryKind {
    /// Kernel text.
    pub const TEXT: Self = Self::Normal {
        writable: false,
        executable: true,
    };
    /// Read-only data.
    pub const RODATA: Self = Self::Normal {
        writable: false,
        executable: false,
    };
    /// Read/write data, never executable.
    pub const DATA: Self = Self::Normal {
        writable: true,
        executable: false,
    };

    /// Attribute bits of a block or page descriptor of this kind.
    fn descriptor_bits(self) -> u64 {
        match self {
            Self::Normal {
                writable,
                executable,
            } => {
                let mut bits = (ATTR_NORMAL << ATTR_INDEX_SHIFT)
                    | INNER_SHAREABLE
                    | ACCESS_FLAG
                    | UNPRIVILEGED_EXECUTE_NEVER;
                if !writable {
                    bits |= READ_ONLY;
                }
                if !executable {
                    bits |= PRIVILEGED_EXECUTE_NEVER;
                }
                bits
            }
            Self::Device => {
                (ATTR_DEVICE << ATTR_INDEX_SHIFT)
                    | ACCESS_FLAG
                    | PRIVILEGED_EXECUTE_NEVER
                    | UNPRIVILEGED_EXECUTE_NEVER
            }
        }
    }

    /// Decodes the attribute bits of a block or page descriptor.
    fn from_descriptor(desc: u64) -> Self {
        if (desc >> ATTR_INDEX_SHIFT) & 0b111 == ATTR_DEVICE {
            return Self::Device;
        }
        Self::Normal {
            writable: desc & READ_ONLY == 0,
            executable: desc & PRIVILEGED_EXECUTE_NEVER == 0,
        }
    }
}

/// Block descriptor for the coarse boot map (level 1, 1 GiB, address 0).
pub const fn boot_block(kind_is_device: bool) -> u64 {
    let attrs = if kind_is_device {
        (ATTR_DEVICE << ATTR_INDEX_SHIFT)
            | ACCESS_FLAG
            | PRIVILEGED_EXECUTE_NEVER
            | UNPRIVILEGED_EXECUTE_NEVER
    } else {
        // Read/write/execute: the boot map runs the kernel before its
        // sections are known, and lives only until the kernel map is on.
        (ATTR_NORMAL << ATTR_INDEX_SHIFT)
            | INNER_SHAREABLE
            | ACCESS_FLAG
            | UNPRIVILEGED_EXECUTE_NEVER
    };
    attrs | VALID
}

/// One translation table: 512 descriptors, 4 KiB aligned.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
pub struct PageTable(pub [u64; ENTRIES]);

impl PageTable {
    /// A table of invalid entries.
    pub const EMPTY: Self = Self([0; ENTRIES]);
}

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Start, physical address or length not 4 KiB aligned.
    Unaligned,
    /// The range does not fit in the 39-bit address space.
    OutOfRange,
    /// Writable and executable at once.
    WriteAndExecute,
    /// Part of the range is mapped already.
    AlreadyMapped { va: u64 },
    /// The table pool is used up.
    OutOfTables,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned => write!(f, "range not page aligned"),
            Self::OutOfRange => write!(f, "range beyond the {VA_BITS}-bit address space"),
            Self::WriteAndExecute => write!(f, "writable and executable (W^X)"),
            Self::AlreadyMapped { va } => write!(f, "{va:#x} is mapped already"),
            Self::OutOfTables => write!(f, "out of translation tables"),
        }
    }
}

/// Builds an identity map in a pool of tables; `tables[0]` is the level-1
/// table whose address goes into TTBR0_EL1.
pub struct Mapper<'a> {
    tables: &'a mut [PageTable],
    used: usize,
}

impl<'a> Mapper<'a> {
    /// A mapper over `tables`, all of which must be empty; the first one
    /// becomes the level-1 table.
    pub fn new(tables: &'a mut [PageTable]) -> Self {
        Self { tables, used: 1 }
    }

    /// A mapper over tables that an earlier mapper filled, the first
    /// `used` of them taken.
    pub fn resume(tables: &'a mut [PageTable], used: usize) -> Self {
        Self { tables, used }
    }

    /// Address of the level-1 table, for TTBR0_EL1.
    pub fn root_address(&self) -> u64 {
        self.tables.as_ptr() as u64
    }

    /// Tables taken from the pool so far, the level-1 table included.
    pub fn tables_used(&self) -> usize {
        self.used
    }

    /// Maps `[start, start + len)` to itself with the rights of `kind`,
    /// using the largest blocks that alignment allows.
    ///
    /// # Errors
    /// [`MapError`] when the range is unaligned, out of range, W+X, already
    /// partly mapped, or needs more tables than the pool has. On error, the
    /// part mapped before the failing entry stays mapped.
    pub fn identity_map(&mut self, start: u64, len: u64, kind: MemoryKind) -> Result<(), MapError> {
        let end = check_request(start, start, len, kind)?;
        let mut va = start;
        while va < end {
            let level = (1..=3)
                .find(|&l| va.is_multiple_of(LEVEL_SIZE[l]) && end - va >= LEVEL_SIZE[l])
                .expect("a page-aligned range always fits level 3");
            self.set_entry(va, level, kind)?;
            va += LEVEL_SIZE[level];
        }
        Ok(())
    }

    /// Maps the pages `[va, va + len)` to `[pa, pa + len)` with 4 KiB
    /// pages (used where virtual and physical addresses differ, such as
    /// thread stacks).
    ///
    /// # Errors
    /// As [`Self::identity_map`].
    pub fn map_pages(
        &mut self,
        va: u64,
        pa: u64,
        len: u64,
        kind: MemoryKind,
    ) -> Result<(), MapError> {
        check_request(va, pa, len, kind)?;
        for offset in (0..len).step_by(PAGE_SIZE as usize) {
            self.set_entry_to(va + offset, pa + offset, 3, kind)?;
        }
        Ok(())
    }

    /// Removes the 4 KiB pages `[va, va + len)`, which [`Self::map_pages`]
    /// mapped. The caller invalidates the TLB entries afterwards.
    ///
    /// # Errors
    /// [`MapError::Unaligned`], or [`MapError::AlreadyMapped`] naming a
    /// page that is not mapped by a page entry (nothing is changed then
    /// for that page and those after it).
    pub fn unmap_pages(&mut self, va: u64, len: u64) -> Result<(), MapError> {
        if !va.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Unaligned);
        }
        for page in (va..va + len).step_by(PAGE_SIZE as usize) {
            let mut table = 0;
            for level in 1..3 {
                let desc = self.tables[table].0[index(page, level)];
                if desc & VALID == 0 || desc & TABLE_OR_PAGE == 0 {
                    return Err(MapError::AlreadyMapped { va: page });
                }
                table = self.table_index(desc);
            }
            let slot = index(page, 3);
            if self.tables[table].0[slot] & VALID == 0 {
                return Err(MapError::AlreadyMapped { va: page });
            }
            self.tables[table].0[slot] = 0;
        }
        Ok(())
    }

    /// Looks `va` up: the output address and kind, or `None` if unmapped.
    pub fn translate(&self, va: u64) -> Option<(u64, MemoryKind)> {
        let mut table = 0;
        for level in 1..=3 {
            let desc = self.tables[table].0[index(va, level)];
            if desc & VALID == 0 {
                return None;
            }
            let is_table = level < 3 && desc & TABLE_OR_PAGE != 0;
            if !is_table {
                let offset = va % LEVEL_SIZE[level];
                let base = desc & ADDRESS_MASK & !(LEVEL_SIZE[level] - 1);
                return Some((base + offset, MemoryKind::from_descriptor(desc)));
            }
            table = self.table_index(desc);
        }
        None
    }

    /// Writes the block or page entry for `va` at `level`, creating the
    /// intermediate tables on the way.
    fn set_entry(&mut self, va: u64, level: usize, kind: MemoryKind) -> Result<(), MapError> {
        self.set_entry_to(va, va, level, kind)
    }

    /// Writes the entry translating `va` to `pa` at `level`.
    fn set_entry_to(
        &mut self,
        va: u64,
        pa: u64,
        level: usize,
        kind: MemoryKind,
    ) -> Result<(), MapError> {
        let mut table = 0;
        for current in 1..level {
            let slot = index(va, current);
            let desc = self.tables[table].0[slot];
            table = if desc & VALID == 0 {
                let new = self.allocate()?;
                let address = self.root_address() + (new as u64) * PAGE_SIZE;
                self.tables[table].0[slot] = address | TABLE_OR_PAGE | VALID;
                new
            } else if desc & TABLE_OR_PAGE != 0 {
                self.table_index(desc)
            } else {
                return Err(MapError::AlreadyMapped { va });
            };
        }
        let slot = index(va, level);
        if self.tables[table].0[slot] & VALID != 0 {
            return Err(MapError::AlreadyMapped { va });
        }
        let type_bit = if level == 3 { TABLE_OR_PAGE } else { 0 };
        self.tables[table].0[slot] = pa | kind.descriptor_bits() | type_bit | VALID;
        Ok(())
    }

    fn allocate(&mut self) -> Result<usize, MapError> {
        if self.used == self.tables.len() {
            return Err(MapError::OutOfTables);
        }
        self.used += 1;
        Ok(self.used - 1)
    }

    /// Pool index of the table a table descriptor points to.
    fn table_index(&self, desc: u64) -> usize {
        ((desc & ADDRESS_MASK) - self.root_address()) as usize / PAGE_SIZE as usize
    }
}

/// Checks a request to map `len` bytes at `va` to `pa` with `kind`: page
/// aligned, inside the address space, not writable and executable.
/// Returns the end of the range.
fn check_request(va: u64, pa: u64, len: u64, kind: MemoryKind) -> Result<u64, MapError> {
    if !va.is_multiple_of(PAGE_SIZE)
        || !pa.is_multiple_of(PAGE_SIZE)
        || !len.is_multiple_of(PAGE_SIZE)
    {
        return Err(MapError::Unaligned);
    }
    let end = va.checked_add(len).ok_or(MapError::OutOfRange)?;
    if end > 1 << VA_BITS {
        return Err(MapError::OutOfRange);
    }
    if let MemoryKind::Normal {
        writable: true,
        executable: true,
    } = kind
    {
        return Err(MapError::WriteAndExecute);
    }
    Ok(end)
}

/// Index of `va` in its level-`level` table.
fn index(va: u64, level: usize) -> usize {
    let shift = 12 + 9 * (3 - level as u32);
    ((va >> shift) & 0x1ff) as usize
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn pool(n: usize) -> std::vec::Vec<PageTable> {
        vec![PageTable::EMPTY; n]
    }

    #[test]
    fn uses_the_largest_aligned_blocks() {
        let mut tables = pool(8);
        let mut mapper = Mapper::new(&mut tables);
        mapper
            .identity_map(GIB, GIB + 2 * MIB + 8192, MemoryKind::DATA)
            .unwrap();
        // One 1 GiB block, one 2 MiB block (one L2 table), two pages (one L3).
        assert_eq!(mapper.tables_used(), 3);
        let (pa, kind) = mapper.translate(GIB + 12345).unwrap();
        assert_eq!((pa, kind), (GIB + 12345, MemoryKind::DATA));
        assert!(mapper.translate(2 * GIB + 2 * MIB + 4096).is_some());
        assert!(mapper.translate(2 * GIB + 2 * MIB + 8192).is_none());
    }

    #[test]
    fn keeps_rights_per_page() {
        let mut tables = pool(8);
        let mut mapper = Mapper::new(&mut tables);
        let base = 0x4008_0000;
        mapper.identity_map(base, 0x2000, MemoryKind::TEXT).unwrap();
        mapper
            .identity_map(base + 0x2000, 0x1000, MemoryKind::RODATA)
            .unwrap();
        mapper
            .identity_map(0x0900_0000, 0x1000, MemoryKind::Device)
            .unwrap();
        assert_eq!(mapper.translate(base + 0x1ff8).unwrap().1, MemoryKind::TEXT);
        assert_eq!(
            mapper.translate(base + 0x2000).unwrap().1,
            MemoryKind::RODATA
        );
        assert_eq!(mapper.translate(0x0900_0018).unwrap().1, MemoryKind::Device);
        assert!(mapper.translate(base + 0x3000).is_none());
    }

    #[test]
    fn refuses_write_and_execute() {
        let mut tables = pool(2);
        let mut mapper = Mapper::new(&mut tables);
        let wx = MemoryKind::Normal {
            writable: true,
            executable: true,
        };
        assert_eq!(
            mapper.identity_map(0, 4096, wx),
            Err(MapError::WriteAndExecute)
        );
        assert_eq!(mapper.tables_used(), 1);
    }

    #[test]
    fn refuses_double_mapping_and_bad_ranges() {
        let mut tables = pool(4);
        let mut mapper = Mapper::new(&mut tables);
        mapper
            .identity_map(2 * MIB, 2 * MIB, MemoryKind::DATA)
            .unwrap();
        assert_eq!(
            mapper.identity_map(3 * MIB, 4096, MemoryKind::DATA),
            Err(MapError::AlreadyMapped { va: 3 * MIB })
        );
        assert_eq!(
            mapper.identity_map(1, 4096, MemoryKind::DATA),
            Err(MapError::Unaligned)
        );
        assert_eq!(
            mapper.identity_map(1 << VA_BITS, 4096, MemoryKind::DATA),
            Err(MapError::OutOfRange)
        );
    }

    #[test]
    fn maps_and_unmaps_pages_elsewhere() {
        let mut tables = pool(4);
        let mut mapper = Mapper::new(&mut tables);
        let va = 0x40_0000_1000;
        mapper
            .map_pages(va, 0x4123_4000, 0x3000, MemoryKind::DATA)
            .unwrap();
        assert_eq!(mapper.translate(va + 0x2010).unwrap().0, 0x4123_6010);
        assert!(mapper.translate(va - 0x1000).is_none());
        mapper.unmap_pages(va + 0x1000, 0x1000).unwrap();
        assert!(mapper.translate(va + 0x1000).is_none());
        assert!(mapper.translate(va).is_some());
        assert_eq!(
            mapper.unmap_pages(va + 0x1000, 0x1000),
            Err(MapError::AlreadyMapped { va: va + 0x1000 })
        );
        let used = mapper.tables_used();
        let mut again = Mapper::resume(&mut tables, used);
        again
            .map_pages(va + 0x1000, 0x5000_0000, 0x1000, MemoryKind::DATA)
            .unwrap();
        assert_eq!(again.tables_used(), used);
    }

    #[test]
    fn reports_an_exhausted_pool() {
        let mut tables = pool(2);
        let mut mapper = Mapper::new(&mut tables);
        // Needs an L2 and an L3 table: the pool has room for one.
        let result = mapper.identity_map(0, 4096, MemoryKind::DATA);
        assert_eq!(result, Err(MapError::OutOfTables));
    }

    #[test]
    fn descriptors_carry_the_architected_bits() {
        let device = MemoryKind::Device.descriptor_bits();
        assert_eq!(
            device & (PRIVILEGED_EXECUTE_NEVER | ACCESS_FLAG),
            PRIVILEGED_EXECUTE_NEVER | ACCESS_FLAG
        );
        let text = MemoryKind::TEXT.descriptor_bits();
        assert_eq!(text & PRIVILEGED_EXECUTE_NEVER, 0);
        assert_ne!(text & READ_ONLY, 0);
        assert_eq!(boot_block(true) & 0b11, 0b01);
    }
}
