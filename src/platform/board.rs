//! Board tables: the machine description used when no device tree was
//! passed (the Pi 4's firmware without a `.dtb` on the SD card, QEMU's
//! raspi4b without `-dtb`). The kernel is linked for one board, so the
//! table is that board's.

use super::machine::{
    CpuDescription, EnableMethod, FixedText, GicDescription, Machine, PsciMethod, Source,
    UartDescription,
};
use super::range_set::PhysRange;

/// The Raspberry Pi 4 (BCM2711), from the BCM2711 ARM Peripherals manual
/// and the firmware's conventions. Memory is the 960 MiB that the
/// firmware's own tree reports for the first region below the VideoCore
/// carve-out; more is there on larger boards but is left unused.
pub fn raspberry_pi_4() -> Machine {
    let mut machine = Machine::empty(Source::BoardTable);
    machine.model = FixedText::from_text("Raspberry Pi 4 Model B (board table)");
    let _ = machine.memory.insert(PhysRange::new(0, 0x3c00_0000));
    // The firmware's spin table lives in the first page.
    let _ = machine.reserved.insert(PhysRange::new(0, 0x1000));
    for (core, release_address) in [0xd8, 0xe0, 0xe8, 0xf0].into_iter().enumerate() {
        machine.add_cpu(CpuDescription {
            mpidr: core as u64,
            enable_method: EnableMethod::SpinTable { release_address },
        });
    }
    machine.uart = Some(UartDescription {
        registers: PhysRange::from_base_size(0xfe20_1000, 0x200),
        clock_hz: Some(48_000_000),
    });
    machine.gic = Some(GicDescription::V2 {
        distributor: PhysRange::from_base_size(0xff84_1000, 0x1000),
        cpu_interface: PhysRange::from_base_size(0xff84_2000, 0x2000),
    });
    machine.virtual_timer_intid = Some(27);
    machine
}

/// QEMU's virt board at its smallest: 128 MiB, one CPU, GICv2 (QEMU's
/// default), PSCI over HVC. QEMU always passes a tree to a raw image, so
/// this is only reached when that did not happen.
pub fn qemu_virt() -> Machine {
    let mut machine = Machine::empty(Source::BoardTable);
    machine.model = FixedText::from_text("QEMU virt (board table)");
    let _ = machine
        .memory
        .insert(PhysRange::from_base_size(0x4000_0000, 0x800_0000));
    machine.add_cpu(CpuDescription {
        mpidr: 0,
        enable_method: EnableMethod::Psci,
    });
    machine.uart = Some(UartDescription {
        registers: PhysRange::from_base_size(0x0900_0000, 0x1000),
        clock_hz: Some(24_000_000),
    });
    machine.gic = Some(GicDescription::V2 {
        distributor: PhysRange::from_base_size(0x0800_0000, 0x1_0000),
        cpu_interface: PhysRange::from_base_size(0x0801_0000, 0x1_0000),
    });
    machine.virtual_timer_intid = Some(27);
    machine.psci = Some(PsciMethod::Hvc);
    machine
}
