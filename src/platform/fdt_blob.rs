//! Flattened device tree (FDT) blob helpers that work on raw bytes.
//!
//! # Why this module exists
//!
//! QEMU's `raspi4b` machine hides the devices it does not model by
//! overwriting their nodes with `FDT_NOP` tokens (326 of them in the
//! Raspberry Pi 4 tree of QEMU 10.0). The devicetree specification allows a
//! NOP between any two tokens, but the `fdt` crate (0.1.5) skips them only in
//! a few places; elsewhere it panics ("bad node") or silently stops reading
//! (at a NOP between two properties, say). The kernel therefore copies the
//! tree with [`strip_nops`] into a static buffer and gives only the copy to
//! `fdt`.
//!
//! # Design
//!
//! - Everything works on `&[u8]` with big-endian reads at explicit offsets:
//!   no pointer casts, no alignment demands on the buffers, no allocation
//!   (this runs before the heap exists) and no `unsafe`.
//! - [`FdtHeader::read`] checks every offset and size in the header against
//!   the slice once; the other functions start from a checked header, so a
//!   corrupt blob gives an error instead of a panic or an out-of-range read.
//! - [`strip_nops`] walks the structure block twice with one walker: the
//!   first pass validates it and measures the output, so a too small buffer
//!   is reported with the exact size needed before anything is written; the
//!   second pass copies each run of tokens between two NOPs in one go.
//!
//! # Invariants of a blob written by [`strip_nops`]
//!
//! - A version 17 header (last compatible version 16) at offset 0, then the
//!   memory reservation block at offset 40 (8-aligned), the structure block
//!   (4-aligned) and the strings block, without gaps; `totalsize` ends right
//!   after the strings block.
//! - The structure block contains no `FDT_NOP` and is a well-formed tree:
//!   exactly one root node, whose name is empty, and only non-empty names
//!   below it; properties before child nodes; at most 63 levels; node and
//!   property names NUL-terminated UTF-8; every property name offset inside
//!   the strings block and every value inside the structure block; a final
//!   `FDT_END`. Breaking any of these makes `fdt` 0.1.5 panic or misread the
//!   tree, so the walker rejects blobs that do.

use core::fmt;
use core::ops::Range;

/// Every fallible function here fails with a [`BlobError`].
type Result<T, E = BlobError> = core::result::Result<T, E>;

/// The value of the first header word of every flattened device tree.
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// Length in bytes of a version 17 header, and the number of bytes that
/// [`total_size_at`] needs.
pub const HEADER_LEN: usize = 40;

/// Structure block tokens (devicetree specification, section 5.4.1).
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// Oldest layout we read: version 16 lacks only `size_dt_struct`.
const MIN_VERSION: u32 = 16;
/// Newest layout we understand; a blob that cannot be read as version 17
/// says so with a larger `last_comp_version`.
const MAX_LAST_COMP_VERSION: u32 = 17;
/// The version fields of the blobs written by [`strip_nops`], as `dtc`
/// writes them.
const OUT_VERSION: u32 = 17;
const OUT_LAST_COMP_VERSION: u32 = 16;

/// One memory reservation entry: a big-endian u64 address and u64 size.
const RSV_ENTRY_LEN: usize = 16;

/// Deepest node nesting accepted, counting the root as level 1. `fdt` 0.1.5
/// keeps the parents of the current node in a 64-entry array indexed by
/// level, so a node at level 64 makes it panic. Real trees have under 10.
const MAX_DEPTH: usize = 63;

/// Why a blob was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobError {
    /// The first header word is not [`FDT_MAGIC`].
    BadMagic,
    /// The `version` is below 16, or the `last_comp_version` is above 17;
    /// the value carried is that of the offending field.
    BadVersion(u32),
    /// The slice ends before the header, before `totalsize` bytes, or
    /// before the token, name, value or memory reservation terminator that
    /// was being read.
    Truncated,
    /// A header offset or size points outside `totalsize`, into the
    /// header, or is not aligned as the specification requires (8 bytes
    /// for the memory reservation block, 4 for the structure block).
    BadOffset,
    /// The structure block holds a token the specification does not
    /// define.
    UnknownToken {
        /// Offset of the token from the start of the blob.
        offset: usize,
        /// The token value.
        token: u32,
    },
    /// The structure block is tokenised correctly but is not a well-formed
    /// tree: unbalanced `FDT_BEGIN_NODE`/`FDT_END_NODE`, no root or more
    /// than one, a root with a name or another node without one, a property
    /// outside a node or after a child node, nesting deeper than 63 levels,
    /// a name that is not UTF-8, or a property name offset that does not
    /// point at a NUL-terminated string in the strings block.
    BadStructure {
        /// Offset from the start of the blob of the token at fault.
        offset: usize,
    },
    /// The destination buffer is smaller than the output.
    BufferTooSmall {
        /// The size in bytes the output needs.
        needed: usize,
    },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic => write!(f, "bad FDT magic"),
            Self::BadVersion(v) => write!(f, "unsupported FDT version {v}"),
            Self::Truncated => write!(f, "FDT blob is truncated"),
            Self::BadOffset => write!(f, "bad FDT block offset or size"),
            Self::UnknownToken { offset, token } => {
                write!(f, "unknown FDT token {token:#x} at offset {offset:#x}")
            }
            Self::BadStructure { offset } => {
                write!(f, "malformed FDT structure at offset {offset:#x}")
            }
            Self::BufferTooSmall { needed } => {
                write!(f, "FDT buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for BlobError {}

/// The header of a flattened device tree, with the values of its fields.
///
/// Offsets are from the start of the blob, sizes are in bytes. A header
/// returned by [`FdtHeader::read`] has been checked against its blob: each
/// block lies inside `total_size`, past the header, and is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdtHeader {
    /// Size of the whole blob, including free space at its end.
    pub total_size: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: u32,
    /// Version of the layout.
    pub version: u32,
    /// Oldest version whose readers can read this blob.
    pub last_comp_version: u32,
    /// Physical ID of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block. A version 16 header lacks this field;
    /// for such a blob it is the space from `off_dt_struct` to the strings
    /// block if that follows, else to `total_size`: an upper bound, which
    /// is enough since the walk stops at `FDT_END`.
    pub size_dt_struct: u32,
}

impl FdtHeader {
    /// Reads the header at the start of `blob` and checks it against
    /// `blob`.
    ///
    /// `blob` needs no particular alignment and may be longer than
    /// `total_size`.
    ///
    /// # Errors
    ///
    /// - [`BlobError::Truncated`] if `blob` is shorter than the header or
    ///   than `total_size`.
    /// - [`BlobError::BadMagic`] if the magic word is wrong.
    /// - [`BlobError::BadVersion`] if the layout is older than version 16
    ///   or not readable as version 17.
    /// - [`BlobError::BadOffset`] if a block does not lie between the
    ///   header and `total_size`, or is misaligned.
    pub fn read(blob: &[u8]) -> Result<FdtHeader> {
        let header = Self::parse(blob)?;
        if blob.len() < to_usize(header.total_size) {
            return Err(BlobError::Truncated);
        }
        let struct_len = to_usize(header.size_dt_struct);
        let strings_len = to_usize(header.size_dt_strings);
        // The reservation block needs room for at least its terminator;
        // its real end is only known by walking it.
        let blocks_ok = header.block_ok(header.off_mem_rsvmap, RSV_ENTRY_LEN, 8)
            && header.block_ok(header.off_dt_struct, struct_len, 4)
            && header.block_ok(header.off_dt_strings, strings_len, 1);
        if !blocks_ok {
            return Err(BlobError::BadOffset);
        }
        Ok(header)
    }

    /// Reads and checks the fields that need nothing but the header bytes.
    fn parse(bytes: &[u8]) -> Result<FdtHeader> {
        let word = |index: usize| be_u32(bytes, index * 4);
        let magic = word(0)?;
        let total_size = word(1)?;
        let off_dt_struct = word(2)?;
        let off_dt_strings = word(3)?;
        let off_mem_rsvmap = word(4)?;
        let version = word(5)?;
        let last_comp_version = word(6)?;
        let boot_cpuid_phys = word(7)?;
        let size_dt_strings = word(8)?;
        // `size_dt_struct` from version 17 on. A version 16 header ends
        // before it, but its 8-aligned reservation block cannot start
        // before offset 40, so this word is there either way; reading it
        // always makes every slice shorter than 40 bytes fail here.
        let word9 = word(9)?;
        if magic != FDT_MAGIC {
            return Err(BlobError::BadMagic);
        }
        if version < MIN_VERSION {
            return Err(BlobError::BadVersion(version));
        }
        if last_comp_version > MAX_LAST_COMP_VERSION {
            return Err(BlobError::BadVersion(last_comp_version));
        }
        if to_usize(total_size) < HEADER_LEN {
            return Err(BlobError::BadOffset);
        }
        let size_dt_struct = if version >= 17 {
            word9
        } else {
            let limit = if off_dt_strings > off_dt_struct {
                off_dt_strings
            } else {
                total_size
            };
            // An offset past the limit is caught by `block_ok`.
            limit.saturating_sub(off_dt_struct)
        };
        Ok(FdtHeader {
            total_size,
            off_dt_struct,
            off_dt_strings,
            off_mem_rsvmap,
            version,
            last_comp_version,
            boot_cpuid_phys,
            size_dt_strings,
            size_dt_struct,
        })
    }

    /// Returns whether `offset..offset + len` lies between the header and
    /// `total_size` and `offset` is a multiple of `align`.
    fn block_ok(&self, offset: u32, len: usize, align: u32) -> bool {
        let start = to_usize(offset);
        let total = to_usize(self.total_size);
        let end_ok = start.checked_add(len).is_some_and(|end| end <= total);
        start >= HEADER_LEN && end_ok && offset.is_multiple_of(align)
    }

    /// Writes this header in the big-endian layout of version 17 into the
    /// first [`HEADER_LEN`] bytes of `out`.
    fn write(&self, out: &mut [u8; HEADER_LEN]) {
        let words = [
            FDT_MAGIC,
            self.total_size,
            self.off_dt_struct,
            self.off_dt_strings,
            self.off_mem_rsvmap,
            self.version,
            self.last_comp_version,
            self.boot_cpuid_phys,
            self.size_dt_strings,
            self.size_dt_struct,
        ];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    }
}

/// Returns the `totalsize` of the blob whose header starts `header_bytes`.
///
/// Meant for a blob behind a raw pointer: read [`HEADER_LEN`] bytes, learn
/// how many bytes the whole blob spans, then make the full slice and check
/// it with [`FdtHeader::read`]. Only the header itself is checked here, as
/// the rest of the blob is not in `header_bytes`.
///
/// # Errors
///
/// - [`BlobError::Truncated`] if `header_bytes` is shorter than
///   [`HEADER_LEN`].
/// - [`BlobError::BadMagic`] if the magic word is wrong.
/// - [`BlobError::BadVersion`] if the layout is older than version 16 or
///   not readable as version 17.
/// - [`BlobError::BadOffset`] if `totalsize` is smaller than the header.
pub fn total_size_at(header_bytes: &[u8]) -> Result<usize> {
    FdtHeader::parse(header_bytes).map(|header| to_usize(header.total_size))
}

/// Copies the tree in `src` to `dst` without its `FDT_NOP` tokens and
/// returns the size of the copy, which is a complete blob starting at
/// `dst[0]`.
///
/// The copy has the layout and meets the invariants given in the module
/// documentation; memory reservations, the strings block and the boot CPU
/// ID are copied as they are, and free space and anything after `FDT_END`
/// are dropped. A tree without NOPs keeps its structure block byte for
/// byte. `src` is checked as thoroughly as the copy is, so this also
/// serves to validate a tree before `fdt` parses it.
///
/// # Errors
///
/// - Those of [`FdtHeader::read`] for the header of `src`.
/// - [`BlobError::Truncated`] if the memory reservation block has no
///   terminator inside `totalsize`, or the structure block ends before
///   `FDT_END` or inside a token.
/// - [`BlobError::UnknownToken`] for a token other than `FDT_BEGIN_NODE`,
///   `FDT_END_NODE`, `FDT_PROP`, `FDT_NOP` and `FDT_END`.
/// - [`BlobError::BadStructure`] if the tokens do not form a well-formed
///   tree (see the variant).
/// - [`BlobError::BufferTooSmall`] if `dst` cannot hold the copy; nothing
///   has been written then.
///
/// # Panics
///
/// Only on a bug here: if the copying pass disagreed with the measuring
/// pass about the size of the structure block.
pub fn strip_nops(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    let header = FdtHeader::read(src)?;
    // Pass 1: validate everything and measure the output.
    let rsv_len = rsv_entries(src, &header)?.len() + RSV_ENTRY_LEN;
    let struct_len = walk_struct(src, &header, |_| {})?;
    let strings_len = to_usize(header.size_dt_strings);

    // Each part lies inside a blob of at most `u32::MAX` bytes, so only
    // overlapping input blocks could push the sum past a header field.
    let too_big = BlobError::BadOffset;
    let struct_off = HEADER_LEN.checked_add(rsv_len).ok_or(too_big)?;
    let strings_off = struct_off.checked_add(struct_len).ok_or(too_big)?;
    let total = strings_off.checked_add(strings_len).ok_or(too_big)?;
    let field = |value: usize| u32::try_from(value).map_err(|_| too_big);
    let out_header = FdtHeader {
        total_size: field(total)?,
        off_dt_struct: field(struct_off)?,
        off_dt_strings: field(strings_off)?,
        off_mem_rsvmap: field(HEADER_LEN)?,
        version: OUT_VERSION,
        last_comp_version: OUT_LAST_COMP_VERSION,
        boot_cpuid_phys: header.boot_cpuid_phys,
        size_dt_strings: header.size_dt_strings,
        size_dt_struct: field(struct_len)?,
    };
    let out = dst
        .get_mut(..total)
        .ok_or(BlobError::BufferTooSmall { needed: total })?;

    // Pass 2: copy. The input was validated and the sizes measured above,
    // so the ranges below are in bounds.
    let (head, rest) = out
        .split_first_chunk_mut::<HEADER_LEN>()
        .expect("total includes the header");
    out_header.write(head);
    let (rsv_out, rest) = rest.split_at_mut(rsv_len);
    let (struct_out, strings_out) = rest.split_at_mut(struct_len);
    let rsv_in = block(src, header.off_mem_rsvmap, rsv_len)?;
    rsv_out.copy_from_slice(rsv_in);
    let mut written = 0;
    walk_struct(src, &header, |run| {
        let end = written + run.len();
        struct_out
            .get_mut(written..end)
            .expect("pass 1 measured the runs that pass 2 copies")
            .copy_from_slice(&src[run]);
        written = end;
    })?;
    let strings_in = block(src, header.off_dt_strings, strings_len)?;
    strings_out.copy_from_slice(strings_in);
    Ok(total)
}

/// Returns the entries of the memory reservation block (the
/// `/memreserve/` lines of a `.dts`) as `(address, size)` pairs, without
/// the terminating `(0, 0)` entry.
///
/// # Errors
///
/// - Those of [`FdtHeader::read`] for the header of `blob`.
/// - [`BlobError::Truncated`] if the block has no terminator inside
///   `totalsize`.
pub fn memory_reservations(blob: &[u8]) -> Result<MemoryReservations<'_>> {
    let header = FdtHeader::read(blob)?;
    Ok(MemoryReservations {
        entries: rsv_entries(blob, &header)?,
    })
}

/// Iterator over the `(address, size)` pairs of a memory reservation
/// block, returned by [`memory_reservations`].
#[derive(Debug, Clone)]
pub struct MemoryReservations<'a> {
    /// The entries not yet returned: a whole number of entries, without
    /// the terminator.
    entries: &'a [u8],
}

impl Iterator for MemoryReservations<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let (entry, rest) = self.entries.split_first_chunk::<RSV_ENTRY_LEN>()?;
        self.entries = rest;
        Some((be_u64(entry, 0).ok()?, be_u64(entry, 8).ok()?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.entries.len() / RSV_ENTRY_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for MemoryReservations<'_> {}

impl core::iter::FusedIterator for MemoryReservations<'_> {}

/// Returns the memory reservation entries of a blob with a checked header,
/// up to but without the `(0, 0)` terminator.
fn rsv_entries<'a>(blob: &'a [u8], header: &FdtHeader) -> Result<&'a [u8]> {
    let start = to_usize(header.off_mem_rsvmap);
    let area = blob
        .get(start..to_usize(header.total_size))
        .ok_or(BlobError::BadOffset)?;
    let mut len = 0;
    loop {
        let address = be_u64(area, len)?;
        let size = be_u64(area, len + 8)?;
        if address == 0 && size == 0 {
            return Ok(&area[..len]);
        }
        len += RSV_ENTRY_LEN;
    }
}

/// Walks the structure block of a blob with a checked header, validating
/// it as a tree, and calls `keep` with each maximal run of tokens between
/// NOPs, as a range of offsets in `blob`. The runs are in order, non-empty,
/// and the last one ends with `FDT_END`. Returns the total length of the
/// runs.
fn walk_struct(
    blob: &[u8],
    header: &FdtHeader,
    mut keep: impl FnMut(Range<usize>),
) -> Result<usize> {
    let start = to_usize(header.off_dt_struct);
    let end = start + to_usize(header.size_dt_struct);
    // Cut the blob at the end of the block so that every read past it
    // fails, while offsets stay those of the whole blob.
    let tokens = blob.get(..end).ok_or(BlobError::BadOffset)?;
    let strings_len = to_usize(header.size_dt_strings);
    let strings = block(blob, header.off_dt_strings, strings_len)?;

    let mut pos = start;
    let mut run_start = start;
    let mut kept = 0;
    let mut depth = 0;
    let mut root_closed = false;
    // Properties must come before the first child of their node.
    let mut props_allowed = false;
    loop {
        let token_at = pos;
        let token = be_u32(tokens, pos)?;
        pos += 4;
        let bad_structure = BlobError::BadStructure { offset: token_at };
        match token {
            FDT_BEGIN_NODE => {
                if (depth == 0 && root_closed) || depth == MAX_DEPTH {
                    return Err(bad_structure);
                }
                let name = c_str(tokens, pos).ok_or(BlobError::Truncated)?;
                // Only the root has an empty name.
                let utf8 = core::str::from_utf8(name).is_ok();
                if !utf8 || name.is_empty() != (depth == 0) {
                    return Err(bad_structure);
                }
                pos = padded_end(pos, name.len() + 1)?;
                depth += 1;
                props_allowed = true;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(bad_structure);
                }
                depth -= 1;
                root_closed = depth == 0;
                props_allowed = false;
            }
            FDT_PROP => {
                if !props_allowed {
                    return Err(bad_structure);
                }
                let len = be_u32(tokens, pos)?;
                let name_off = to_usize(be_u32(tokens, pos + 4)?);
                let name = c_str(strings, name_off).ok_or(bad_structure)?;
                if core::str::from_utf8(name).is_err() {
                    return Err(bad_structure);
                }
                pos = padded_end(pos + 8, to_usize(len))?;
            }
            FDT_NOP => {
                if token_at > run_start {
                    keep(run_start..token_at);
                    kept += token_at - run_start;
                }
                run_start = pos;
            }
            FDT_END => {
                if depth != 0 || !root_closed {
                    return Err(bad_structure);
                }
                keep(run_start..pos);
                return Ok(kept + (pos - run_start));
            }
            _ => {
                return Err(BlobError::UnknownToken {
                    offset: token_at,
                    token,
                });
            }
        }
        if pos > end {
            return Err(BlobError::Truncated);
        }
    }
}

/// Widens a header field. Lossless: `usize` has at least 32 bits on every
/// target the kernel builds for.
const fn to_usize(value: u32) -> usize {
    value as usize
}

/// Returns `len` bytes of `blob` from `offset`.
fn block(blob: &[u8], offset: u32, len: usize) -> Result<&[u8]> {
    let start = to_usize(offset);
    let end = start.checked_add(len).ok_or(BlobError::BadOffset)?;
    blob.get(start..end).ok_or(BlobError::BadOffset)
}

/// Returns where data of `len` bytes starting at `pos` ends once padded to
/// the 4-byte token alignment.
///
/// # Errors
///
/// [`BlobError::Truncated`] on overflow: no blob is that long.
fn padded_end(pos: usize, len: usize) -> Result<usize> {
    pos.checked_add(len)
        .and_then(|end| end.checked_next_multiple_of(4))
        .ok_or(BlobError::Truncated)
}

/// Returns the bytes from `offset` up to the next NUL, or `None` if
/// `offset` is out of range or no NUL follows.
fn c_str(bytes: &[u8], offset: usize) -> Option<&[u8]> {
    let tail = bytes.get(offset..)?;
    let len = tail.iter().position(|&b| b == 0)?;
    Some(&tail[..len])
}

/// Returns the `N` bytes at `offset`.
///
/// # Errors
///
/// [`BlobError::Truncated`] if `bytes` ends before them.
fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> Result<[u8; N]> {
    let tail = bytes.get(offset..).ok_or(BlobError::Truncated)?;
    tail.first_chunk().copied().ok_or(BlobError::Truncated)
}

/// Reads the big-endian u32 at `offset`.
///
/// # Errors
///
/// [`BlobError::Truncated`] if `bytes` ends before it.
fn be_u32(bytes: &[u8], offset: usize) -> Result<u32> {
    array_at(bytes, offset).map(u32::from_be_bytes)
}

/// Reads the big-endian u64 at `offset`.
///
/// # Errors
///
/// [`BlobError::Truncated`] if `bytes` ends before it.
fn be_u64(bytes: &[u8], offset: usize) -> Result<u64> {
    array_at(bytes, offset).map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::panic;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    /// QEMU 10.0.2's `raspi4b` tree, written by
    /// `qemu-system-aarch64 -M raspi4b -dtb bcm2711-rpi-4-b.dtb
    /// -machine dumpdtb=qemu-raspi4b.dtb` from the `bcm2711-rpi-4-b.dtb` of
    /// Debian's arm64 kernel package (what `scripts/setup.sh` installs).
    /// The zero-filled free space QEMU leaves after the strings block was
    /// cut off and `totalsize` lowered from 74772 to 27450 to match;
    /// nothing else was changed. It holds 326 NOPs, and `fdt` 0.1.5 panics
    /// on it as it is.
    const QEMU_RASPI4B: &[u8] = include_bytes!("testdata/qemu-raspi4b.dtb");

    /// A test-only FDT writer: tokens are appended as called, and `build`
    /// lays the blob out as `dtc` and [`strip_nops`] do.
    #[derive(Default)]
    struct Builder {
        reservations: Vec<(u64, u64)>,
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn token(&mut self, token: u32) -> &mut Self {
            self.structure.extend_from_slice(&token.to_be_bytes());
            self
        }

        fn pad(&mut self) {
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
        }

        fn begin(&mut self, name: &str) -> &mut Self {
            self.token(FDT_BEGIN_NODE);
            self.structure.extend_from_slice(name.as_bytes());
            self.structure.push(0);
            self.pad();
            self
        }

        fn end_node(&mut self) -> &mut Self {
            self.token(FDT_END_NODE)
        }

        fn nop(&mut self) -> &mut Self {
            self.token(FDT_NOP)
        }

        fn end(&mut self) -> &mut Self {
            self.token(FDT_END)
        }

        fn name_offset(&mut self, name: &str) -> u32 {
            let mut wanted = Vec::from(name.as_bytes());
            wanted.push(0);
            let found = self
                .strings
                .windows(wanted.len())
                .position(|w| w == wanted.as_slice());
            let offset = found.unwrap_or_else(|| {
                self.strings.extend_from_slice(&wanted);
                self.strings.len() - wanted.len()
            });
            u32::try_from(offset).unwrap()
        }

        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let name_off = self.name_offset(name);
            let len = u32::try_from(value.len()).unwrap();
            self.raw_prop(len, name_off);
            self.structure.extend_from_slice(value);
            self.pad();
            self
        }

        fn raw_prop(&mut self, len: u32, name_off: u32) -> &mut Self {
            self.token(FDT_PROP);
            self.structure.extend_from_slice(&len.to_be_bytes());
            self.structure.extend_from_slice(&name_off.to_be_bytes());
            self
        }

        fn prop_str(&mut self, name: &str, value: &str) -> &mut Self {
            let mut bytes = Vec::from(value.as_bytes());
            bytes.push(0);
            self.prop(name, &bytes)
        }

        fn prop_u32(&mut self, name: &str, value: u32) -> &mut Self {
            self.prop(name, &value.to_be_bytes())
        }

        fn reserve(&mut self, address: u64, size: u64) -> &mut Self {
            self.reservations.push((address, size));
            self
        }

        fn rsvmap(&self) -> Vec<u8> {
            let mut out = Vec::new();
            for &(address, size) in self.reservations.iter().chain([&(0, 0)]) {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&size.to_be_bytes());
            }
            out
        }

        /// Header, reservations, structure, strings, without gaps.
        fn build(&self) -> Vec<u8> {
            let rsv = self.rsvmap();
            let struct_off = HEADER_LEN + rsv.len();
            let strings_off = struct_off + self.structure.len();
            let total = strings_off + self.strings.len();
            let mut blob = header_bytes(&[
                FDT_MAGIC,
                u32::try_from(total).unwrap(),
                u32::try_from(struct_off).unwrap(),
                u32::try_from(strings_off).unwrap(),
                40,
                17,
                16,
                0,
                u32::try_from(self.strings.len()).unwrap(),
                u32::try_from(self.structure.len()).unwrap(),
            ]);
            blob.extend_from_slice(&rsv);
            blob.extend_from_slice(&self.structure);
            blob.extend_from_slice(&self.strings);
            blob
        }

        /// Header, strings, free space, structure, reservations, free
        /// space: legal, but nothing like what `dtc` writes.
        fn build_shuffled(&self) -> Vec<u8> {
            let mut blob = vec![0; HEADER_LEN];
            let strings_off = blob.len();
            blob.extend_from_slice(&self.strings);
            blob.extend_from_slice(&[0xee; 13]);
            while !blob.len().is_multiple_of(4) {
                blob.push(0xee);
            }
            let struct_off = blob.len();
            blob.extend_from_slice(&self.structure);
            while !blob.len().is_multiple_of(8) {
                blob.push(0xee);
            }
            let rsv_off = blob.len();
            blob.extend_from_slice(&self.rsvmap());
            blob.extend_from_slice(&[0xee; 24]);
            let words = [
                FDT_MAGIC,
                u32::try_from(blob.len()).unwrap(),
                u32::try_from(struct_off).unwrap(),
                u32::try_from(strings_off).unwrap(),
                u32::try_from(rsv_off).unwrap(),
                17,
                16,
                3,
                u32::try_from(self.strings.len()).unwrap(),
                u32::try_from(self.structure.len()).unwrap(),
            ];
            blob[..HEADER_LEN].copy_from_slice(&header_bytes(&words));
            blob
        }
    }

    fn header_bytes(words: &[u32; 10]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    fn get_u32(blob: &[u8], offset: usize) -> u32 {
        be_u32(blob, offset).unwrap()
    }

    fn set_u32(blob: &mut [u8], offset: usize, value: u32) {
        blob[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// Header word offsets.
    const TOTALSIZE: usize = 4;
    const OFF_STRUCT: usize = 8;
    const OFF_STRINGS: usize = 12;
    const OFF_RSVMAP: usize = 16;
    const VERSION: usize = 20;
    const LAST_COMP: usize = 24;
    const BOOT_CPUID: usize = 28;
    const SIZE_STRINGS: usize = 32;
    const SIZE_STRUCT: usize = 36;

    /// Strips `src` into a fresh buffer and returns the new blob.
    fn strip(src: &[u8]) -> Result<Vec<u8>> {
        let mut dst = vec![0; src.len() + 64];
        let n = strip_nops(src, &mut dst)?;
        dst.truncate(n);
        Ok(dst)
    }

    /// Structure block of `blob`, as its header describes it.
    fn struct_block(blob: &[u8]) -> &[u8] {
        let h = FdtHeader::read(blob).unwrap();
        let start = to_usize(h.off_dt_struct);
        &blob[start..start + to_usize(h.size_dt_struct)]
    }

    /// A small Raspberry Pi-like tree, with a NOP wherever `nops` is set:
    /// before the root, right after the root's `FDT_BEGIN_NODE`, before and
    /// after properties, between sibling nodes, right before `FDT_END_NODE`,
    /// whole NOP-ed nodes as QEMU leaves them, and before `FDT_END`.
    fn sample(nops: bool) -> Builder {
        let mut b = Builder::default();
        let nop = |b: &mut Builder| {
            if nops {
                b.nop();
            }
        };
        b.reserve(0, 0x1000).reserve(0x2eff_2000, 0xe000);
        nop(&mut b);
        b.begin("");
        nop(&mut b);
        b.prop_u32("#address-cells", 2).prop_u32("#size-cells", 1);
        nop(&mut b);
        b.prop_str("compatible", "raspberrypi,4-model-b")
            .prop_str("model", "Raspberry Pi 4 Model B");
        nop(&mut b);
        b.begin("chosen")
            .prop_str("bootargs", "console=ttyAMA0")
            .end_node();
        nop(&mut b);
        nop(&mut b);
        b.begin("memory@0")
            .prop_str("device_type", "memory")
            .prop("reg", &[0, 0, 0, 0, 0, 0, 0, 0, 0x3b, 0x40, 0, 0]);
        nop(&mut b);
        b.end_node();
        b.begin("cpus")
            .prop_u32("#address-cells", 1)
            .prop_u32("#size-cells", 0);
        b.begin("cpu@0")
            .prop_str("device_type", "cpu")
            .prop_u32("reg", 0);
        nop(&mut b);
        b.end_node();
        nop(&mut b);
        b.begin("cpu@1")
            .prop_str("device_type", "cpu")
            .prop_u32("reg", 1);
        b.end_node().end_node();
        b.begin("soc").prop("ranges", &[]);
        if nops {
            // What QEMU does to a disabled node: every token, name and
            // value word of it becomes a NOP.
            for _ in 0..12 {
                b.nop();
            }
        }
        b.begin("serial@7e201000")
            .prop_str("status", "okay")
            .prop_u32("reg", 0x7e20_1000);
        nop(&mut b);
        b.end_node();
        nop(&mut b);
        b.begin("gpio@7e200000")
            .prop_str("status", "okay")
            .end_node();
        nop(&mut b);
        b.end_node();
        nop(&mut b);
        b.end_node();
        nop(&mut b);
        b.end();
        b
    }

    /// Every node's path and properties in `fdt`'s view of `blob`.
    fn describe(blob: &[u8]) -> Vec<String> {
        let fdt = fdt::Fdt::new(blob).unwrap();
        let mut out = Vec::new();
        for node in fdt.all_nodes() {
            out.push(format!("node {}", node.name));
            for prop in node.properties() {
                out.push(format!("  {} = {:?}", prop.name, prop.value));
            }
            for child in node.children() {
                out.push(format!("  child {}", child.name));
            }
        }
        out
    }

    /// What `fdt` makes of `blob`, or `None` if it panics.
    fn fdt_view(blob: &[u8]) -> Option<Vec<String>> {
        panic::catch_unwind(|| describe(blob)).ok()
    }

    #[test]
    fn strip_removes_every_nop_and_fdt_parses_the_result() {
        let raw = sample(true).build();
        let clean = sample(false).build();
        // fdt 0.1.5 misreads the raw sample: it stops listing nodes at
        // the NOP between two properties of the root.
        let misread = fdt_view(&raw).unwrap();
        assert_eq!(misread.iter().filter(|l| l.starts_with("node")).count(), 1);

        let out = strip(&raw).unwrap();
        assert_eq!(out, clean);
        assert_eq!(describe(&out), describe(&clean));

        let fdt = fdt::Fdt::new(&out).unwrap();
        assert_eq!(fdt.root().model(), "Raspberry Pi 4 Model B");
        assert_eq!(fdt.chosen().bootargs(), Some("console=ttyAMA0"));
        assert_eq!(fdt.cpus().count(), 2);
        let region = fdt.memory().regions().next().unwrap();
        assert_eq!(region.size, Some(0x3b40_0000));
        let serial = fdt.find_node("/soc/serial@7e201000").unwrap();
        assert_eq!(serial.property("status").unwrap().as_str(), Some("okay"));
        let soc = fdt.find_node("/soc").unwrap();
        assert_eq!(soc.children().count(), 2);
        let reserved: Vec<(u64, u64)> = fdt
            .memory_reservations()
            .map(|r| (r.address() as u64, r.size() as u64))
            .collect();
        assert_eq!(reserved, [(0, 0x1000), (0x2eff_2000, 0xe000)]);
    }

    #[test]
    fn strip_fixes_a_nop_between_sibling_nodes() {
        let tree = |nop: bool| {
            let mut b = Builder::default();
            b.begin("").begin("a").begin("x").end_node();
            if nop {
                b.nop();
            }
            b.begin("y").end_node().end_node().end_node().end();
            b.build()
        };
        // fdt 0.1.5 panics with "bad node" skipping over `a`.
        assert_eq!(fdt_view(&tree(true)), None);
        let out = strip(&tree(true)).unwrap();
        assert_eq!(out, tree(false));
        let view = fdt_view(&out).unwrap();
        assert!(view.iter().any(|line| line == "node y"));
    }

    #[test]
    fn strip_of_a_blob_without_nops_is_byte_identical() {
        let clean = sample(false).build();
        let out = strip(&clean).unwrap();
        assert_eq!(struct_block(&out), struct_block(&clean));
        assert_eq!(out, clean);
    }

    #[test]
    fn strip_shrinks_the_structure_block_by_the_nops_only() {
        let raw = sample(true).build();
        let out = strip(&raw).unwrap();
        let removed = struct_block(&raw).len() - struct_block(&out).len();
        let nops = 26;
        assert_eq!(removed, 4 * nops);
        assert_eq!(raw.len() - out.len(), 4 * nops);
        let h = FdtHeader::read(&out).unwrap();
        assert_eq!(to_usize(h.total_size), out.len());
    }

    #[test]
    fn strip_normalises_an_unusual_layout() {
        let b = sample(true);
        let raw = b.build_shuffled();
        let out = strip(&raw).unwrap();
        // Only the boot CPU ID, which `build` leaves at 0, differs.
        let mut expected = sample(false).build();
        set_u32(&mut expected, BOOT_CPUID, 3);
        assert_eq!(out, expected);
        // The same tree without NOPs comes out the same way.
        let clean = sample(false).build_shuffled();
        assert_eq!(strip(&clean).unwrap(), expected);
        // Trailing free space in the standard layout is dropped too.
        let mut padded = b.build();
        padded.extend_from_slice(&[0; 100]);
        let total = u32::try_from(padded.len()).unwrap();
        set_u32(&mut padded, TOTALSIZE, total);
        assert_eq!(strip(&padded).unwrap(), strip(&b.build()).unwrap());
    }

    #[test]
    fn strip_reads_a_version_16_blob() {
        let mut raw = sample(true).build();
        set_u32(&mut raw, VERSION, 16);
        // The word a version 16 header does not have: must be ignored.
        set_u32(&mut raw, SIZE_STRUCT, 0xdead_beef);
        let h = FdtHeader::read(&raw).unwrap();
        let strings = to_usize(h.off_dt_strings);
        assert_eq!(to_usize(h.off_dt_struct + h.size_dt_struct), strings);
        assert_eq!(strip(&raw).unwrap(), sample(false).build());
    }

    #[test]
    fn strip_needs_a_big_enough_buffer() {
        let raw = sample(true).build();
        let needed = sample(false).build().len();
        let mut dst = vec![0x55; needed - 1];
        assert_eq!(
            strip_nops(&raw, &mut dst),
            Err(BlobError::BufferTooSmall { needed })
        );
        assert!(dst.iter().all(|&b| b == 0x55), "nothing written");
        let mut exact = vec![0; needed];
        assert_eq!(strip_nops(&raw, &mut exact), Ok(needed));
        // The source need not be aligned, nor end at totalsize.
        let mut shifted = vec![0xaa];
        shifted.extend_from_slice(&raw);
        shifted.extend_from_slice(&[0xbb; 7]);
        let mut dst = vec![0; needed + 1];
        assert_eq!(strip_nops(&shifted[1..], &mut dst[1..]), Ok(needed));
        assert_eq!(&dst[1..], exact.as_slice());
    }

    #[test]
    fn header_read_reports_fields() {
        let raw = sample(false).build();
        let h = FdtHeader::read(&raw).unwrap();
        assert_eq!(to_usize(h.total_size), raw.len());
        assert_eq!(h.off_mem_rsvmap, 40);
        assert_eq!(h.off_dt_struct, 40 + 3 * 16);
        assert_eq!(h.version, 17);
        assert_eq!(h.last_comp_version, 16);
        assert_eq!(h.boot_cpuid_phys, 0);
        assert_eq!(to_usize(h.off_dt_strings + h.size_dt_strings), raw.len());
        assert_eq!(total_size_at(&raw[..HEADER_LEN]), Ok(raw.len()));
    }

    #[test]
    fn header_errors() {
        let good = sample(false).build();
        let with = |offset: usize, value: u32| {
            let mut blob = good.clone();
            set_u32(&mut blob, offset, value);
            FdtHeader::read(&blob)
        };
        assert_eq!(with(0, 0xfeed_d00d), Err(BlobError::BadMagic));
        assert_eq!(with(VERSION, 15), Err(BlobError::BadVersion(15)));
        assert_eq!(with(LAST_COMP, 18), Err(BlobError::BadVersion(18)));
        assert_eq!(FdtHeader::read(&good[..39]), Err(BlobError::Truncated));
        let short = &good[..good.len() - 1];
        assert_eq!(FdtHeader::read(short), Err(BlobError::Truncated));
        assert_eq!(with(TOTALSIZE, 39), Err(BlobError::BadOffset));

        let struct_off = get_u32(&good, OFF_STRUCT);
        let strings_off = get_u32(&good, OFF_STRINGS);
        let bad = Err(BlobError::BadOffset);
        assert_eq!(with(OFF_RSVMAP, 44), bad, "rsvmap not 8-aligned");
        assert_eq!(with(OFF_RSVMAP, 0), bad, "rsvmap in the header");
        let rsv_past_end = u32::try_from(good.len() - 8).unwrap();
        assert_eq!(with(OFF_RSVMAP, rsv_past_end), bad);
        assert_eq!(with(OFF_STRUCT, struct_off + 2), bad, "struct unaligned");
        assert_eq!(with(OFF_STRUCT, 36), bad, "struct in the header");
        assert_eq!(with(SIZE_STRUCT, u32::MAX), bad, "struct too long");
        assert_eq!(with(OFF_STRINGS, strings_off + 1), bad, "strings too long");
        assert_eq!(with(SIZE_STRINGS, u32::MAX), bad, "strings too long");
        // An unaligned strings block is fine.
        let split = to_usize(strings_off);
        let mut odd = Vec::from(&good[..split]);
        odd.push(0xee);
        odd.extend_from_slice(&good[split..]);
        let total = u32::try_from(odd.len()).unwrap();
        set_u32(&mut odd, TOTALSIZE, total);
        set_u32(&mut odd, OFF_STRINGS, strings_off + 1);
        assert_eq!(strip(&odd).unwrap(), good);
        // strip_nops and memory_reservations check the header too.
        let mut bad_magic = good.clone();
        set_u32(&mut bad_magic, 0, 0);
        assert_eq!(strip(&bad_magic), Err(BlobError::BadMagic));
        let rsv = memory_reservations(&bad_magic).map(Iterator::count);
        assert_eq!(rsv, Err(BlobError::BadMagic));
    }

    #[test]
    fn total_size_at_checks_the_header_only() {
        let raw = sample(true).build();
        let header = &raw[..HEADER_LEN];
        assert_eq!(total_size_at(header), Ok(raw.len()));
        assert_eq!(total_size_at(&raw), Ok(raw.len()));
        assert_eq!(total_size_at(&raw[..39]), Err(BlobError::Truncated));
        let mut bad = Vec::from(header);
        bad[3] ^= 1;
        assert_eq!(total_size_at(&bad), Err(BlobError::BadMagic));
        let mut old = Vec::from(header);
        set_u32(&mut old, VERSION, 3);
        assert_eq!(total_size_at(&old), Err(BlobError::BadVersion(3)));
    }

    #[test]
    fn memory_reservations_lists_entries() {
        let raw = sample(true).build();
        let all: Vec<(u64, u64)> = memory_reservations(&raw).unwrap().collect();
        assert_eq!(all, [(0, 0x1000), (0x2eff_2000, 0xe000)]);
        assert_eq!(memory_reservations(&raw).unwrap().len(), 2);
        let mut none = Builder::default();
        none.begin("").end_node().end();
        let blob = none.build();
        assert_eq!(memory_reservations(&blob).unwrap().count(), 0);
        // Without the terminator the block runs into the end of the blob.
        let mut b = Builder::default();
        b.reserve(0x1000, 0x1000);
        let mut blob = b.build();
        blob.truncate(blob.len() - 16);
        let total = u32::try_from(blob.len()).unwrap();
        set_u32(&mut blob, TOTALSIZE, total);
        set_u32(&mut blob, OFF_STRUCT, 56);
        set_u32(&mut blob, OFF_STRINGS, 56);
        set_u32(&mut blob, SIZE_STRUCT, 0);
        let rsv = memory_reservations(&blob).map(Iterator::count);
        assert_eq!(rsv, Err(BlobError::Truncated));
        assert_eq!(strip(&blob), Err(BlobError::Truncated));
    }

    /// Appends test tokens to a builder.
    type Build = fn(&mut Builder);

    /// A named blob defect: what to build to get it.
    type Case = (&'static str, Build);

    /// Builds a blob from `build` and returns what stripping it gives.
    fn strip_built(build: impl FnOnce(&mut Builder)) -> Result<Vec<u8>> {
        let mut b = Builder::default();
        build(&mut b);
        strip(&b.build())
    }

    /// Offset in the blob of byte `at` of the structure block.
    fn struct_at(at: usize) -> usize {
        HEADER_LEN + 16 + at
    }

    #[test]
    fn strip_rejects_truncated_token_streams() {
        let t = Err(BlobError::Truncated);
        let cases: [Case; 7] = [
            ("empty block", |_| {}),
            ("no END", |b| {
                b.begin("").end_node();
            }),
            ("NOP, no END", |b| {
                b.begin("").end_node().nop();
            }),
            ("unterminated name", |b| {
                b.begin("");
                b.structure.extend_from_slice(b"abc");
            }),
            ("value cut short", |b| {
                b.begin("").prop("x", &[1, 2, 3, 4, 5]);
                b.structure.truncate(b.structure.len() - 3);
            }),
            ("property header cut short", |b| {
                b.begin("").token(FDT_PROP);
                b.structure.extend_from_slice(&[0, 0, 0]);
            }),
            ("huge value length", |b| {
                b.begin("").prop("x", &[]);
                let name_off = get_u32(&b.structure, 16);
                b.structure.truncate(8);
                b.raw_prop(u32::MAX, name_off).end_node().end();
            }),
        ];
        for (what, build) in cases {
            assert_eq!(strip_built(build), t, "{what}");
        }
        // A token straddling the end of the block.
        let mut b = Builder::default();
        b.begin("").end_node().end();
        let mut blob = b.build();
        let size = get_u32(&blob, SIZE_STRUCT);
        set_u32(&mut blob, SIZE_STRUCT, size - 2);
        assert_eq!(strip(&blob), t);
    }

    #[test]
    fn strip_rejects_unknown_tokens() {
        for token in [0, 5, 8, 10, 0xffff_ffff] {
            let out = strip_built(|b| {
                b.begin("").nop().token(token).end_node().end();
            });
            let offset = struct_at(12);
            assert_eq!(out, Err(BlobError::UnknownToken { offset, token }));
        }
    }

    #[test]
    fn strip_rejects_malformed_trees() {
        let at = |offset| {
            Err(BlobError::BadStructure {
                offset: struct_at(offset),
            })
        };
        let cases: [(&str, usize, Build); 11] = [
            ("END_NODE at top level", 0, |b| {
                b.end_node().end();
            }),
            ("END without a root", 4, |b| {
                b.nop().end();
            }),
            ("END inside the root", 8, |b| {
                b.begin("").end();
            }),
            ("two roots", 12, |b| {
                b.begin("").end_node().begin("").end_node().end();
            }),
            ("named root", 0, |b| {
                b.begin("root").end_node().end();
            }),
            ("unnamed child", 8, |b| {
                b.begin("").begin("").end_node().end_node().end();
            }),
            ("property outside the root", 0, |b| {
                b.prop_u32("x", 1).begin("").end_node().end();
            }),
            ("property after a child", 20, |b| {
                b.begin("").begin("a").end_node();
                b.prop_u32("x", 1).end_node().end();
            }),
            ("property name offset past the strings", 8, |b| {
                b.begin("").raw_prop(0, 1).end_node().end();
            }),
            ("non-UTF-8 node name", 8, |b| {
                b.begin("").token(FDT_BEGIN_NODE);
                b.structure.extend_from_slice(&[0xff, 0]);
                b.pad();
                b.end_node().end_node().end();
            }),
            ("too deep", 8 + 8 * (MAX_DEPTH - 1), |b| {
                b.begin("");
                for _ in 1..=MAX_DEPTH {
                    b.begin("n");
                }
            }),
        ];
        for (what, offset, build) in cases {
            assert_eq!(strip_built(build), at(offset), "{what}");
        }
        // An unterminated property name, the last string in the block.
        let mut b = Builder::default();
        b.begin("").prop_u32("x", 1).end_node().end();
        b.strings.pop();
        assert_eq!(strip(&b.build()), at(8), "unterminated property name");
        // A non-UTF-8 property name.
        let mut b = Builder::default();
        b.begin("").prop_u32("x", 1).end_node().end();
        b.strings[0] = 0xff;
        assert_eq!(strip(&b.build()), at(8), "non-UTF-8 property name");
    }

    #[test]
    fn strip_accepts_the_deepest_allowed_tree() {
        let mut b = Builder::default();
        b.begin("");
        for _ in 1..MAX_DEPTH {
            b.begin("n");
        }
        for _ in 0..MAX_DEPTH {
            b.end_node();
        }
        b.end();
        let out = strip(&b.build()).unwrap();
        let fdt = fdt::Fdt::new(&out).unwrap();
        assert_eq!(fdt.all_nodes().count(), MAX_DEPTH);
    }

    #[test]
    fn errors_display() {
        let cases = [
            (BlobError::BadMagic, "bad FDT magic"),
            (BlobError::BadVersion(3), "unsupported FDT version 3"),
            (BlobError::Truncated, "FDT blob is truncated"),
            (BlobError::BadOffset, "bad FDT block offset or size"),
            (
                BlobError::UnknownToken {
                    offset: 0x40,
                    token: 7,
                },
                "unknown FDT token 0x7 at offset 0x40",
            ),
            (
                BlobError::BadStructure { offset: 0x48 },
                "malformed FDT structure at offset 0x48",
            ),
            (
                BlobError::BufferTooSmall { needed: 100 },
                "FDT buffer too small: 100 bytes needed",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(format!("{error}"), text);
        }
    }

    #[test]
    fn qemu_raspi4b_tree() {
        let raw = QEMU_RASPI4B;
        assert_eq!(fdt_view(raw), None, "fdt 0.1.5 panics on the raw tree");

        let out = strip(raw).unwrap();
        let removed = struct_block(raw).len() - struct_block(&out).len();
        assert_eq!(removed, 4 * 326);
        assert_eq!(raw.len() - out.len(), 4 * 326);
        // Stripping is idempotent.
        assert_eq!(strip(&out).unwrap(), out);

        let fdt = fdt::Fdt::new(&out).unwrap();
        assert_eq!(fdt.root().model(), "Raspberry Pi 4 Model B");
        assert_eq!(fdt.cpus().count(), 4);
        // QEMU turned whole nodes into NOPs; the 246 left all survive.
        assert_eq!(fdt.all_nodes().count(), 246);
        let all = describe(&out);
        assert!(all.iter().any(|line| line == "node serial@7e201000"));
        let reserved: Vec<_> = memory_reservations(&out).unwrap().collect();
        assert_eq!(reserved, [(0, 0x1000)]);
        let raw_reserved: Vec<_> = memory_reservations(raw).unwrap().collect();
        assert_eq!(raw_reserved, reserved);
    }
}
