//! Reading the machine description out of a flattened device tree.
//!
//! The `fdt` crate parses the blob; this module walks it and keeps what the
//! kernel needs (see [`Machine`]). Two things the crate leaves to its user
//! are done here:
//! - addresses are translated to CPU physical addresses through every
//!   ancestor's `ranges` (the Pi 4's peripherals sit at bus address
//!   0x7e00_0000 behind `/soc`, at 0xfe00_0000 for the CPU);
//! - nothing may panic on a tree that lacks a node: `Fdt::memory()`,
//!   `cpus()` and `chosen()` would, so nodes are looked up by hand.
//!
//! Disabled nodes (`status` other than "okay") are skipped with their
//! subtrees. The blob must be free of FDT_NOP tokens (`fdt_blob::strip_nops`)
//! because `fdt` 0.1.5 panics on them.

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;

use super::fdt_blob;
use super::machine::{
    CpuDescription, EnableMethod, FixedText, GicDescription, Machine, PsciMethod, Source,
    UartDescription,
};
use super::range_set::PhysRange;

/// Why a device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceTreeError {
    /// The blob is not a valid flattened device tree.
    Blob(fdt_blob::BlobError),
    /// The `fdt` crate refused it.
    Parse,
    /// A node the kernel needs is missing or malformed.
    Missing(&'static str),
}

impl fmt::Display for DeviceTreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blob(error) => write!(f, "bad device tree blob: {error}"),
            Self::Parse => write!(f, "the device tree does not parse"),
            Self::Missing(what) => write!(f, "the device tree has {what}"),
        }
    }
}

/// GICv2-compatible controllers.
const GIC_V2_COMPATIBLE: &[&str] = &[
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
];
/// Default GICv3 redistributor stride (two 64 KiB frames).
const GIC_V3_DEFAULT_STRIDE: u64 = 0x2_0000;
/// PPIs are numbered from interrupt id 16.
const PPI_BASE: u32 = 16;
/// First cell of a GIC interrupt specifier: 1 = PPI.
const GIC_SPECIFIER_PPI: u32 = 1;
/// Entry of the architected timer's `interrupts` for the virtual timer
/// (secure physical, non-secure physical, virtual, hypervisor).
const TIMER_VIRTUAL_ENTRY: usize = 2;

/// Reads the machine out of `blob`, which was found at `blob_range`.
///
/// # Errors
/// [`DeviceTreeError`] when the blob does not parse or lacks what the
/// kernel cannot run without (see [`Machine::missing`]).
pub fn parse(blob: &[u8], blob_range: PhysRange) -> Result<Machine, DeviceTreeError> {
    let fdt = Fdt::new(blob).map_err(|_| DeviceTreeError::Parse)?;
    let mut machine = Machine::empty(Source::DeviceTree { blob: blob_range });

    let reservations = fdt_blob::memory_reservations(blob).map_err(DeviceTreeError::Blob)?;
    for (address, size) in reservations {
        reserve(&mut machine, PhysRange::from_base_size(address, size));
    }

    let root = fdt
        .find_node("/")
        .ok_or(DeviceTreeError::Missing("no root node"))?;
    if let Some(model) = root.property("model").and_then(|p| text(p.value)) {
        machine.model = FixedText::from_text(model);
    }
    if let Some(args) = fdt
        .find_node("/chosen")
        .and_then(|chosen| chosen.property("bootargs"))
        .and_then(|p| text(p.value))
    {
        machine.bootargs = FixedText::from_text(args);
    }

    let bus = Bus::root(&root);
    walk(&fdt, root, &bus, &mut machine, 0);
    read_cpus(&fdt, &mut machine);

    match machine.missing() {
        Some(what) => Err(DeviceTreeError::Missing(what)),
        None => Ok(machine),
    }
}

/// An address space of the tree: a node's children's `reg` live in it.
struct Bus<'a> {
    /// The space this one translates into; `None` for the CPU's own.
    parent: Option<&'a Bus<'a>>,
    /// `#address-cells` and `#size-cells` of addresses in this space.
    address_cells: usize,
    size_cells: usize,
    /// `ranges` of the node that opens this space: `Some(empty)` is the
    /// identity, `None` means not translatable (no `ranges` at all).
    ranges: Option<&'a [u8]>,
}

impl<'a> Bus<'a> {
    fn root(root: &FdtNode<'_, '_>) -> Self {
        let (address_cells, size_cells) = cell_sizes(root);
        Self {
            parent: None,
            address_cells,
            size_cells,
            ranges: Some(&[]),
        }
    }

    /// The CPU physical address of `address` in this space.
    fn to_cpu(&self, address: u64) -> Option<u64> {
        let Some(parent) = self.parent else {
            return Some(address);
        };
        let ranges = self.ranges?;
        if ranges.is_empty() {
            return parent.to_cpu(address);
        }
        let entry = 4 * (self.address_cells + parent.address_cells + self.size_cells);
        for chunk in ranges.chunks_exact(entry) {
            let (child, rest) = chunk.split_at(4 * self.address_cells);
            let (parent_address, size) = rest.split_at(4 * parent.address_cells);
            let (child, parent_address, size) =
                (cells(child)?, cells(parent_address)?, cells(size)?);
            if address >= child && address - child < size {
                return parent.to_cpu(parent_address + (address - child));
            }
        }
        None
    }

    /// The `reg` entries of a node on this bus, translated.
    fn regs<'n>(&'n self, node: &FdtNode<'_, 'n>) -> impl Iterator<Item = PhysRange> + 'n {
        let entry = 4 * (self.address_cells + self.size_cells);
        let value = node.property("reg").map(|p| p.value).unwrap_or(&[]);
        let chunks = if entry == 0 {
            value.chunks_exact(1).take(0)
        } else {
            value.chunks_exact(entry).take(usize::MAX)
        };
        chunks.filter_map(move |chunk| {
            let (address, size) = chunk.split_at(4 * self.address_cells);
            let base = self.to_cpu(cells(address)?)?;
            Some(PhysRange::from_base_size(base, cells(size)?))
        })
    }
}

/// Deepest nesting followed; real trees stay well below it.
const MAX_DEPTH: usize = 16;

fn walk(fdt: &Fdt<'_>, node: FdtNode<'_, '_>, bus: &Bus<'_>, machine: &mut Machine, depth: usize) {
    for child in node.children() {
        if !enabled(&child) {
            continue;
        }
        visit(fdt, &child, bus, machine);
        if depth + 1 < MAX_DEPTH && child.children().next().is_some() {
            let (address_cells, size_cells) = cell_sizes(&child);
            let child_bus = Bus {
                parent: Some(bus),
                address_cells,
                size_cells,
                ranges: child.property("ranges").map(|p| p.value),
            };
            walk(fdt, child, &child_bus, machine, depth + 1);
        }
    }
}

/// Takes what the kernel needs from one node.
fn visit(fdt: &Fdt<'_>, node: &FdtNode<'_, '_>, bus: &Bus<'_>, machine: &mut Machine) {
    let device_type = node.property("device_type").and_then(|p| text(p.value));
    if device_type == Some("memory") {
        for region in bus.regs(node) {
            // Past capacity, the rest of RAM is left unused, not misused.
            let _ = machine.memory.insert(region);
        }
        return;
    }
    if node.name == "reserved-memory" {
        // Its children are the reservations, in this bus's cells when the
        // node has an empty `ranges` (required by the binding).
        for child in node.children() {
            let child_bus = Bus {
                parent: Some(bus),
                address_cells: cell_sizes(node).0,
                size_cells: cell_sizes(node).1,
                ranges: Some(&[]),
            };
            for region in child_bus.regs(&child) {
                reserve(machine, region);
            }
        }
        return;
    }
    let Some(compatible) = node.compatible() else {
        return;
    };
    let is = |wanted: &[&str]| compatible.all().any(|c| wanted.contains(&c));

    if machine.uart.is_none() && is(&["arm,pl011"]) {
        if let Some(registers) = bus.regs(node).next() {
            machine.uart = Some(UartDescription {
                registers,
                clock_hz: clock_rate(fdt, node),
            });
        }
    } else if machine.gic.is_none() && is(GIC_V2_COMPATIBLE) {
        let mut regs = bus.regs(node);
        if let (Some(distributor), Some(cpu_interface)) = (regs.next(), regs.next()) {
            machine.gic = Some(GicDescription::V2 {
                distributor,
                cpu_interface,
            });
        }
    } else if machine.gic.is_none() && is(&["arm,gic-v3"]) {
        let mut regs = bus.regs(node);
        let stride = node
            .property("redistributor-stride")
            .and_then(|p| cells(p.value))
            .filter(|&s| s != 0)
            .unwrap_or(GIC_V3_DEFAULT_STRIDE);
        if let (Some(distributor), Some(redistributors)) = (regs.next(), regs.next()) {
            machine.gic = Some(GicDescription::V3 {
                distributor,
                redistributors,
                stride,
            });
        }
    } else if is(&["arm,armv8-timer", "arm,armv7-timer"]) {
        machine.virtual_timer_intid = timer_intid(node);
    } else if is(&["arm,psci-1.0", "arm,psci-0.2"]) {
        machine.psci = match node.property("method").and_then(|p| text(p.value)) {
            Some("hvc") => Some(PsciMethod::Hvc),
            Some("smc") => Some(PsciMethod::Smc),
            _ => None,
        };
    }
}

/// The `/cpus/cpu@N` nodes, in tree order.
fn read_cpus(fdt: &Fdt<'_>, machine: &mut Machine) {
    let Some(cpus) = fdt.find_node("/cpus") else {
        return;
    };
    let (address_cells, _) = cell_sizes(&cpus);
    for cpu in cpus.children() {
        let is_cpu = cpu.property("device_type").and_then(|p| text(p.value)) == Some("cpu");
        if !is_cpu || !enabled(&cpu) {
            continue;
        }
        let Some(mpidr) = cpu
            .property("reg")
            .and_then(|p| p.value.get(..4 * address_cells))
            .and_then(cells)
        else {
            continue;
        };
        let method = cpu.property("enable-method").and_then(|p| text(p.value));
        let release = cpu
            .property("cpu-release-addr")
            .and_then(|p| cells(p.value));
        let enable_method = match (method, release) {
            (Some("psci"), _) => EnableMethod::Psci,
            (Some("spin-table"), Some(release_address)) => {
                reserve(
                    machine,
                    PhysRange::from_base_size(release_address & !0xfff, 0x1000),
                );
                EnableMethod::SpinTable { release_address }
            }
            _ => EnableMethod::Unknown,
        };
        machine.add_cpu(CpuDescription {
            mpidr,
            enable_method,
        });
    }
}

/// Interrupt id of the virtual timer: the third `interrupts` entry,
/// three cells each (type, number, flags) for a GIC parent.
fn timer_intid(node: &FdtNode<'_, '_>) -> Option<u32> {
    let value = node.property("interrupts")?.value;
    let entry = value.chunks_exact(12).nth(TIMER_VIRTUAL_ENTRY)?;
    let kind = u32::from_be_bytes(entry[0..4].try_into().ok()?);
    let number = u32::from_be_bytes(entry[4..8].try_into().ok()?);
    (kind == GIC_SPECIFIER_PPI).then_some(PPI_BASE + number)
}

/// Frequency of the first clock in `clocks`, if it is a fixed clock.
fn clock_rate(fdt: &Fdt<'_>, node: &FdtNode<'_, '_>) -> Option<u64> {
    let phandle = node.property("clocks")?.value.get(..4)?;
    let clock = fdt.find_phandle(u32::from_be_bytes(phandle.try_into().ok()?))?;
    clock
        .property("clock-frequency")
        .and_then(|p| cells(p.value))
}

fn reserve(machine: &mut Machine, range: PhysRange) {
    // Past capacity the reservation is widened into its neighbour rather
    // than dropped: losing RAM is safe, using reserved RAM is not.
    if machine.reserved.insert(range).is_err() {
        let merged = machine.reserved.iter().last().map_or(range, |last| {
            PhysRange::new(last.start.min(range.start), last.end.max(range.end))
        });
        let _ = machine.reserved.remove(merged);
        let _ = machine.reserved.insert(merged);
    }
}

fn enabled(node: &FdtNode<'_, '_>) -> bool {
    match node.property("status").and_then(|p| text(p.value)) {
        None | Some("okay") | Some("ok") => true,
        Some(_) => false,
    }
}

/// `#address-cells` and `#size-cells` of a node's children (2 and 1 when
/// absent, as the Devicetree Specification 2.3.5 says).
fn cell_sizes(node: &FdtNode<'_, '_>) -> (usize, usize) {
    let read = |name, default| {
        node.property(name)
            .and_then(|p| cells(p.value))
            .map_or(default, |v| v as usize)
    };
    (
        read("#address-cells", 2).min(2),
        read("#size-cells", 1).min(2),
    )
}

/// A big-endian number of one or two cells.
fn cells(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        0 => Some(0),
        4 => Some(u64::from(u32::from_be_bytes(bytes.try_into().ok()?))),
        8 => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

/// A NUL-terminated string property.
fn text(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).ok()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    /// Trees QEMU 10.0.2 built (`-machine dumpdtb=`), trimmed of their
    /// free space: virt with GICv3, 4 CPUs and 512 MiB; virt with GICv2,
    /// 8 CPUs and 1 GiB; raspi4b from Debian's bcm2711-rpi-4-b.dtb, with
    /// QEMU's NOP tokens in it.
    const VIRT_V3: &[u8] = include_bytes!("testdata/qemu-virt-gicv3-smp4-512m.dtb");
    const VIRT_V2: &[u8] = include_bytes!("testdata/qemu-virt-gicv2-smp8-1g.dtb");
    const RASPI4B: &[u8] = include_bytes!("testdata/qemu-raspi4b.dtb");

    fn parse_stripped(blob: &[u8]) -> Machine {
        let mut copy = vec![0; blob.len()];
        let len = fdt_blob::strip_nops(blob, &mut copy).unwrap();
        parse(
            &copy[..len],
            PhysRange::from_base_size(0x4800_0000, blob.len() as u64),
        )
        .unwrap()
    }

    #[test]
    fn virt_with_gicv3() {
        let machine = parse_stripped(VIRT_V3);
        assert_eq!(machine.memory.total_bytes(), 512 << 20);
        assert_eq!(machine.memory.iter().next().unwrap().start, 0x4000_0000);
        assert_eq!(machine.cpu_count, 4);
        assert!(
            machine.cpus[..4].iter().enumerate().all(|(i, cpu)| {
                cpu.mpidr == i as u64 && cpu.enable_method == EnableMethod::Psci
            })
        );
        assert_eq!(machine.psci, Some(PsciMethod::Hvc));
        assert_eq!(machine.uart.unwrap().registers.start, 0x0900_0000);
        assert_eq!(machine.uart.unwrap().clock_hz, Some(24_000_000));
        match machine.gic.unwrap() {
            GicDescription::V3 {
                distributor,
                redistributors,
                stride,
            } => {
                assert_eq!(distributor.start, 0x0800_0000);
                assert_eq!(redistributors.start, 0x080a_0000);
                assert_eq!(stride, 0x2_0000);
            }
            other => panic!("expected GICv3, got {other:?}"),
        }
        assert_eq!(machine.virtual_timer_intid, Some(27));
    }

    #[test]
    fn virt_with_gicv2_and_eight_cpus() {
        let machine = parse_stripped(VIRT_V2);
        assert_eq!(machine.memory.total_bytes(), 1 << 30);
        assert_eq!(machine.cpu_count, 8);
        assert_eq!(
            machine.gic,
            Some(GicDescription::V2 {
                distributor: PhysRange::from_base_size(0x0800_0000, 0x1_0000),
                cpu_interface: PhysRange::from_base_size(0x0801_0000, 0x1_0000),
            })
        );
    }

    #[test]
    fn raspi4b_translates_bus_addresses() {
        let machine = parse_stripped(RASPI4B);
        assert!(
            machine.model.as_str().starts_with("Raspberry Pi 4"),
            "{:?}",
            machine.model
        );
        assert_eq!(machine.cpu_count, 4);
        for (core, cpu) in machine.cpus[..4].iter().enumerate() {
            let release_address = 0xd8 + 8 * core as u64;
            assert_eq!(
                cpu.enable_method,
                EnableMethod::SpinTable { release_address }
            );
        }
        // The spin table's page is reserved.
        assert!(machine.reserved.contains(0xd8));
        // /soc maps bus 0x7e00_0000 to CPU 0xfe00_0000.
        assert_eq!(machine.uart.unwrap().registers.start, 0xfe20_1000);
        assert_eq!(
            machine.gic,
            Some(GicDescription::V2 {
                distributor: PhysRange::from_base_size(0xff84_1000, 0x1000),
                cpu_interface: PhysRange::from_base_size(0xff84_2000, 0x2000),
            })
        );
        assert_eq!(machine.virtual_timer_intid, Some(27));
        assert_eq!(machine.psci, None);
        assert!(machine.memory.total_bytes() >= 960 << 20);
    }

    #[test]
    fn a_tree_without_cpus_is_refused() {
        // A valid blob with only a root node: nothing the kernel needs.
        let mut blob = vec![0u8; 0];
        let structure: &[u32] = &[1, 0, 2, 9];
        let strings_offset = 40 + 16 + 16;
        let total = strings_offset;
        for word in [
            0xd00d_feed,
            total,
            40 + 16,
            strings_offset,
            40,
            17,
            16,
            0,
            0,
            16,
        ] {
            blob.extend_from_slice(&u32::to_be_bytes(word));
        }
        blob.extend_from_slice(&[0; 16]);
        for word in structure {
            blob.extend_from_slice(&word.to_be_bytes());
        }
        let result = parse(&blob, PhysRange::EMPTY);
        assert_eq!(result.unwrap_err(), DeviceTreeError::Missing("no memory"));
    }
}
