//! ATAGs: the older boot interface the Pi 4's firmware (and QEMU's
//! raspi4b) uses when no device tree is loaded. A list of tagged records
//! at 0x100: `size` (in 32-bit words, header included), `tag`, payload.
//! Only memory and the command line matter to the kernel.

/// ATAG_CORE: first tag of a valid list.
const ATAG_CORE: u32 = 0x5441_0001;
/// ATAG_MEM: size and start of a memory bank.
const ATAG_MEM: u32 = 0x5441_0002;
/// ATAG_CMDLINE: the boot arguments, NUL terminated.
const ATAG_CMDLINE: u32 = 0x5441_0009;
/// ATAG_NONE: end of the list.
const ATAG_NONE: u32 = 0;

/// What an ATAG list says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Atags<'a> {
    /// Memory banks as (start, size); up to four.
    pub memory: [(u64, u64); 4],
    /// Banks found.
    pub memory_count: usize,
    /// The command line.
    pub command_line: Option<&'a str>,
}

/// Parses the ATAG list in `bytes`; `None` if it does not start with
/// ATAG_CORE or runs off the end.
pub fn parse(bytes: &[u8]) -> Option<Atags<'_>> {
    let word = |offset: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(offset..offset + 4)?.try_into().ok()?,
        ))
    };
    if word(4)? != ATAG_CORE {
        return None;
    }
    let mut atags = Atags::default();
    let mut offset = 0;
    loop {
        let size = word(offset)? as usize * 4;
        let tag = word(offset + 4)?;
        match tag {
            ATAG_NONE => return Some(atags),
            ATAG_MEM if atags.memory_count < atags.memory.len() => {
                let size = u64::from(word(offset + 8)?);
                let start = u64::from(word(offset + 12)?);
                atags.memory[atags.memory_count] = (start, size);
                atags.memory_count += 1;
            }
            ATAG_CMDLINE => {
                let text = bytes.get(offset + 8..offset + size)?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                atags.command_line = core::str::from_utf8(&text[..end]).ok();
            }
            _ => {}
        }
        if size < 8 {
            return None;
        }
        offset += size;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn list(tags: &[(u32, &[u32])]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (tag, payload) in tags {
            let size = 2 + payload.len() as u32;
            for word in [size, *tag].iter().chain(payload.iter()) {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&[0; 8]);
        bytes
    }

    #[test]
    fn reads_memory_and_command_line() {
        let line = u32::from_le_bytes(*b"test");
        let rest = u32::from_le_bytes(*b" a=1");
        let bytes = list(&[
            (ATAG_CORE, &[0, 0, 0]),
            (ATAG_MEM, &[0x3c00_0000, 0]),
            (ATAG_CMDLINE, &[line, rest, 0]),
        ]);
        let atags = parse(&bytes).unwrap();
        assert_eq!(atags.memory_count, 1);
        assert_eq!(atags.memory[0], (0, 0x3c00_0000));
        assert_eq!(atags.command_line, Some("test a=1"));
    }

    #[test]
    fn rejects_other_data() {
        assert_eq!(parse(&[0xff; 64]), None);
        assert_eq!(parse(&[]), None);
        // Truncated list: no ATAG_NONE.
        let bytes = list(&[(ATAG_CORE, &[0, 0, 0])]);
        assert_eq!(parse(&bytes[..bytes.len() - 8]), None);
    }
}
