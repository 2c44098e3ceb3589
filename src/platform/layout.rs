//! Which RAM is free for the heap, and which ranges the kernel map needs.

use super::machine::{GicDescription, Machine, RESERVED_REGIONS};
use super::range_set::{PhysRange, RangeSet, RangeSetError};

/// RAM the heap may use: the machine's memory minus its reserved regions,
/// minus everything from the start of the RAM region that holds the
/// kernel up to the kernel's end (the loader's area below the image on
/// both boards, the spin table on the Pi), minus `extra` (the device tree
/// blob, while it is still read).
///
/// # Errors
/// [`RangeSetError::Full`] if the subtraction splits the memory into more
/// pieces than the set holds.
pub fn free_ram(
    machine: &Machine,
    image: PhysRange,
    extra: &[PhysRange],
) -> Result<RangeSet<RESERVED_REGIONS>, RangeSetError> {
    let mut free = RangeSet::new();
    for region in machine.memory.iter() {
        free.insert(region)?;
    }
    for reserved in machine.reserved.iter() {
        free.remove(reserved)?;
    }
    let below_image = machine
        .memory
        .iter()
        .find(|region| region.contains(image.start))
        .map_or(image, |region| PhysRange::new(region.start, image.end));
    free.remove(below_image)?;
    for range in extra {
        free.remove(*range)?;
    }
    Ok(free)
}

/// The device register blocks the kernel map must cover.
pub fn device_ranges(machine: &Machine) -> impl Iterator<Item = PhysRange> {
    let uart = machine.uart.map(|uart| uart.registers);
    let (first, second) = match machine.gic {
        Some(GicDescription::V2 {
            distributor,
            cpu_interface,
        }) => (Some(distributor), Some(cpu_interface)),
        Some(GicDescription::V3 {
            distributor,
            redistributors,
            ..
        }) => (Some(distributor), Some(redistributors)),
        None => (None, None),
    };
    [uart, first, second].into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::board;

    #[test]
    fn heap_leaves_out_the_image_and_what_lies_below() {
        let machine = board::raspberry_pi_4();
        let image = PhysRange::new(0x8_0000, 0x20_0000);
        let dtb = PhysRange::from_base_size(0x800_0000, 0x1_0000);
        let free = free_ram(&machine, image, &[dtb]).unwrap();
        let ranges: std::vec::Vec<_> = free.iter().collect();
        assert_eq!(
            ranges,
            [
                PhysRange::new(0x20_0000, 0x800_0000),
                PhysRange::new(0x801_0000, 0x3c00_0000)
            ]
        );
    }

    #[test]
    fn devices_include_uart_and_gic() {
        let machine = board::qemu_virt();
        let devices: std::vec::Vec<_> = device_ranges(&machine).collect();
        assert_eq!(devices.len(), 3);
        assert_eq!(devices[0].start, 0x0900_0000);
    }

    extern crate std;
}
