//! Boot of the kernel, after `boot.s`: the boot CPU's steps and each
//! secondary CPU's.

use log::{info, warn};

use super::{clock, console, heap, interrupt, machine, smp};
use crate::arch::translation::MemoryKind;
use crate::arch::{boot, cpu, exception, mmu};
use crate::platform::bootargs::BootArgs;
use crate::platform::machine::{Machine, Source};
use crate::platform::range_set::PhysRange;
use crate::platform::{atags, board, devicetree, fdt_blob, layout};
use crate::sched::scheduler;

/// Largest device tree the kernel copies (QEMU's raspi4b tree is 27 KiB,
/// Debian's Pi 4 tree 55 KiB).
const DEVICE_TREE_MAX: usize = 128 * 1024;

/// The device tree without its NOP tokens; only used during boot.
static DEVICE_TREE_COPY: spin::Mutex<[u8; DEVICE_TREE_MAX]> =
    spin::Mutex::new([0; DEVICE_TREE_MAX]);

/// The boot CPU, from `primary_main`. Steps:
/// 1. exception vectors and the clock;
/// 2. the machine description, from the device tree or the board table;
/// 3. the console;
/// 4. the kernel map (W^X), replacing the boot map;
/// 5. the heap over free RAM;
/// 6. the interrupt controller and this CPU's tick;
/// 7. the secondary CPUs;
/// 8. the program the boot arguments ask for, then the end of the run.
pub fn primary(device_tree: usize) -> ! {
    // 1. Exceptions first, so that a fault in what follows is reported.
    exception::install_vectors();
    clock::init();

    // 2. What machine is this?
    let (description, fallback_reason) = describe_machine(device_tree);
    let machine = machine::set(description);
    let args = BootArgs::new(machine.bootargs.as_str());

    // 3. Console. Without a UART the kernel still runs, silently.
    if let Some(uart) = machine.uart {
        let level = console::parse_level(args.value("loglevel"));
        console::init(crate::drivers::probe::console(&uart), uart.clock_hz, level);
    }
    info!(
        "kestrel {} booting on {}",
        env!("CARGO_PKG_VERSION"),
        machine.model.as_str()
    );
    match (machine.source, fallback_reason) {
        (Source::DeviceTree { blob }, _) => {
            info!("device tree at {:#x} ({} bytes)", blob.start, blob.len())
        }
        (Source::BoardTable, reason) => warn!(
            "no usable device tree at x0={device_tree:#x} ({}); using the board table",
            reason.unwrap_or("none passed")
        ),
    }
    if let Some(what) = machine.missing() {
        panic!("cannot run on this machine: {what}");
    }
    if machine.cpus_described > machine.cpu_count {
        warn!(
            "{} CPUs described, {} used (MAX_CPUS)",
            machine.cpus_described, machine.cpu_count
        );
    }

    // 4. The kernel map.
    let sections = mmu::kernel_sections();
    let image = PhysRange::new(sections.start, sections.end);
    install_kernel_map(machine, image);

    // 5. The heap: free RAM. The device tree copy was taken in step 2, so
    //    the original blob's RAM is free too.
    let free = layout::free_ram(machine, image, &[]).expect("few enough memory regions");
    for range in free.iter().filter_map(|r| r.align_inward(4096)) {
        heap::add_range(range);
    }
    crate::arch::mmu::fill_stack_cache().expect("memory for the thread stack cache");
    super::sleepqueue::init();
    info!(
        "memory: {} MiB, heap {} MiB in {} ranges",
        machine.memory.total_bytes() >> 20,
        heap::total() >> 20,
        free.len()
    );

    // 6. Interrupts and this CPU's tick.
    let gic = machine.gic.as_ref().expect("checked by missing()");
    let timer = machine.virtual_timer_intid.expect("checked by missing()");
    interrupt::init(crate::drivers::probe::interrupt_controller(gic), timer);
    interrupt::init_cpu(0);
    scheduler::init_cpu(0);
    clock::start_tick(0);
    smp::mark_online(0);
    cpu::irq_enable();
    info!(
        "{}, timer interrupt {timer}, counter {} Hz, tick {} Hz",
        interrupt::controller().name(),
        crate::arch::timer::frequency(),
        crate::config::TICK_HZ
    );

    // 7. Secondary CPUs.
    let online = smp::start_secondaries(machine);
    info!("{online} of {} CPUs online", machine.cpu_count);

    // 8. The program, in a thread of its own; this thread becomes CPU 0's
    //    idle thread.
    let program = crate::sched::spawn(
        alloc::boxed::Box::new(|| {
            let args = BootArgs::new(machine::machine().bootargs.as_str());
            let code = crate::program::run(&args);
            super::shutdown::exit(code)
        }),
        crate::sched::SpawnOptions::default(),
    );
    program.expect("memory for the first thread");
    scheduler::idle_loop(0)
}

/// A secondary CPU, from `secondary_main`: vectors, interrupts, tick,
/// online, then idle.
pub fn secondary(cpu: usize) -> ! {
    exception::install_vectors();
    interrupt::init_cpu(cpu);
    scheduler::init_cpu(cpu);
    clock::start_tick(cpu);
    smp::mark_online(cpu);
    cpu::irq_enable();
    log::debug!("cpu{cpu} online, mpidr {:#x}", cpu::mpidr());
    scheduler::idle_loop(cpu)
}

/// Reads the device tree at `address` or, failing that, builds the board
/// table (completed from ATAGs when the loader left those instead).
fn describe_machine(address: usize) -> (Machine, Option<&'static str>) {
    let reason = match read_device_tree(address) {
        Ok(machine) => return (machine, None),
        Err(reason) => reason,
    };
    let mut machine = if cfg!(board = "rpi4") {
        board::raspberry_pi_4()
    } else {
        board::qemu_virt()
    };
    let atags = boot::boot_memory(address, 4096).and_then(atags::parse);
    if let Some(atags) = atags {
        if let Some(line) = atags.command_line {
            machine.bootargs = crate::platform::machine::FixedText::from_text(line);
        }
        if atags.memory_count > 0 {
            machine.memory = Default::default();
            for &(start, size) in &atags.memory[..atags.memory_count] {
                let _ = machine
                    .memory
                    .insert(PhysRange::from_base_size(start, size));
            }
        }
    }
    (machine, Some(reason))
}

fn read_device_tree(address: usize) -> Result<Machine, &'static str> {
    let header = boot::boot_memory(address, fdt_blob::HEADER_LEN).ok_or("no tree in boot RAM")?;
    let size = fdt_blob::total_size_at(header).map_err(|_| "not a device tree")?;
    let blob = boot::boot_memory(address, size).ok_or("tree runs outside boot RAM")?;
    let mut copy = DEVICE_TREE_COPY.lock();
    let stripped =
        fdt_blob::strip_nops(blob, &mut copy[..]).map_err(|_| "tree too large or bad")?;
    let range = PhysRange::from_base_size(address as u64, size as u64);
    devicetree::parse(&copy[..stripped], range).map_err(|error| match error {
        devicetree::DeviceTreeError::Blob(_) => "bad blob",
        devicetree::DeviceTreeError::Parse => "does not parse",
        devicetree::DeviceTreeError::Missing(what) => what,
    })
}

fn install_kernel_map(machine: &Machine, image: PhysRange) {
    use crate::arch::mmu::Region;
    let mut ram = [Region {
        start: 0,
        len: 0,
        kind: MemoryKind::DATA,
    }; 16];
    let mut count = 0;
    for region in machine.memory.iter() {
        // RAM around the image; the image itself is mapped section by
        // section.
        for piece in [
            PhysRange::new(region.start, image.start.clamp(region.start, region.end)),
            PhysRange::new(image.end.clamp(region.start, region.end), region.end),
        ] {
            if !piece.is_empty() && count < ram.len() {
                ram[count] = Region {
                    start: piece.start,
                    len: piece.len(),
                    kind: MemoryKind::DATA,
                };
                count += 1;
            }
        }
    }
    let mut devices = [Region {
        start: 0,
        len: 0,
        kind: MemoryKind::Device,
    }; 4];
    let mut device_count = 0;
    for range in layout::device_ranges(machine) {
        devices[device_count] = Region {
            start: range.start,
            len: range.len(),
            kind: MemoryKind::Device,
        };
        device_count += 1;
    }
    match mmu::install_kernel_map(&ram[..count], &devices[..device_count]) {
        Ok(tables) => info!("kernel map on: W^X, {tables} translation tables"),
        Err(error) => panic!("cannot build the kernel map: {error}"),
    }
}
