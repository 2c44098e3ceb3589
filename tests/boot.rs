//! The foundation: every CPU up and ticking, the heap on every CPU, the
//! device tree against what QEMU was given, exceptions on secondary CPUs
//! reported with their class.

use alloc::vec::Vec;
use core::time::Duration;

use crate::api::machine_info::{self, boot_number};
use crate::api::test::{Case, TestResult};
use crate::api::{self, RunError};
use crate::{check, check_eq, skip};

pub const CASES: &[Case] = &[
    Case {
        name: "every_cpu_is_online",
        run: every_cpu_is_online,
    },
    Case {
        name: "device_tree_matches_qemu",
        run: device_tree_matches_qemu,
    },
    Case {
        name: "every_cpu_takes_timer_interrupts",
        run: every_cpu_takes_timer_interrupts,
    },
    Case {
        name: "heap_allocates_and_frees_on_every_cpu",
        run: heap_on_every_cpu,
    },
    Case {
        name: "cross_cpu_call_runs_on_the_target",
        run: cross_cpu_call_runs_on_the_target,
    },
    Case {
        name: "data_abort_on_secondary_cpu_is_reported",
        run: data_abort_on_secondary,
    },
    Case {
        name: "breakpoint_on_every_cpu_is_reported",
        run: breakpoint_on_every_cpu,
    },
    Case {
        name: "offline_cpu_is_refused",
        run: offline_cpu_is_refused,
    },
];

fn every_cpu_is_online() -> TestResult {
    let expected =
        boot_number("expect_cpus").map_or(machine_info::cpus_described(), |n| n as usize);
    check_eq!(api::ncpus(), expected, "CPUs online");
    Ok(())
}

fn device_tree_matches_qemu() -> TestResult {
    if !machine_info::from_device_tree() {
        skip!("no device tree: the board table describes this machine");
    }
    if let Some(cpus) = boot_number("expect_cpus") {
        check_eq!(
            machine_info::cpus_described() as u64,
            cpus,
            "CPU nodes in the tree"
        );
    }
    match boot_number("expect_mem") {
        Some(bytes) => check_eq!(machine_info::memory_bytes(), bytes, "memory in the tree"),
        None => check!(machine_info::memory_bytes() > 0, "the tree lists no memory"),
    }
    Ok(())
}

fn every_cpu_takes_timer_interrupts() -> TestResult {
    let cpus = api::ncpus();
    let before: Vec<u64> = (0..cpus).map(machine_info::timer_ticks).collect();
    api::spin_for(Duration::from_millis(50));
    for (cpu, before) in before.into_iter().enumerate() {
        let taken = machine_info::timer_ticks(cpu) - before;
        // 50 ms at 1000 Hz is 50 ticks; QEMU may run a CPU late, so ask for
        // a clear majority, not all of them.
        check!(
            taken >= 10,
            "cpu{cpu}: {taken} timer interrupts in 50 ms, expected at least 10"
        );
    }
    Ok(())
}

fn heap_on_every_cpu() -> TestResult {
    let baseline = api::heap_in_use();
    for cpu in 0..api::ncpus() {
        let seen = api::run_on_cpu(cpu, move || {
            // Sizes from a word to several pages, written and read back.
            let before = api::heap_in_use();
            let mut blocks: Vec<Vec<u64>> = Vec::new();
            for shift in 0..14 {
                let len = 1usize << shift;
                blocks.push((0..len as u64).map(|i| i ^ (cpu as u64) << 32).collect());
            }
            let intact = blocks.iter().all(|block| {
                block
                    .iter()
                    .enumerate()
                    .all(|(i, &v)| v == i as u64 ^ (cpu as u64) << 32)
            });
            // Other CPUs allocate too: the growth is only a lower bound.
            let grown = api::heap_in_use().saturating_sub(before);
            drop(blocks);
            (intact, grown, api::getcpu())
        });
        let (intact, grown, ran_on) = seen.map_err(|e| alloc::format!("cpu{cpu}: {e}"))?;
        check_eq!(ran_on, cpu, "CPU that ran the allocations");
        check!(intact, "cpu{cpu}: heap blocks corrupted");
        check!(
            grown >= 8 << 13,
            "cpu{cpu}: blocks up to 64 KiB grew the heap by only {grown}"
        );
        check_eq!(
            api::heap_in_use(),
            baseline,
            "cpu{cpu}: heap after the job's thread is gone"
        );
    }
    Ok(())
}

fn cross_cpu_call_runs_on_the_target() -> TestResult {
    for round in 0..500 {
        for cpu in 0..api::ncpus() {
            let ran_on = api::run_on_cpu(cpu, api::getcpu)
                .map_err(|e| alloc::format!("round {round}, cpu{cpu}: {e}"))?;
            check_eq!(ran_on, cpu, "round {round}");
        }
    }
    Ok(())
}

fn data_abort_on_secondary() -> TestResult {
    let target = api::ncpus() - 1;
    match api::run_on_cpu(target, machine_info::read_unmapped) {
        Err(RunError::Fault(fault)) => {
            check_eq!(fault.class(), api::EC_DATA_ABORT_SAME_EL, "exception class");
            check_eq!(fault.cpu, target, "CPU that took it");
            check_eq!(fault.far, 0x7f_0000_0000, "faulting address");
            Ok(())
        }
        Ok(value) => Err(alloc::format!("read of unmapped memory returned {value:#x}").into()),
        Err(other) => Err(alloc::format!("expected a data abort, saw {other}").into()),
    }
}

fn breakpoint_on_every_cpu() -> TestResult {
    for cpu in 0..api::ncpus() {
        match api::run_on_cpu(cpu, machine_info::breakpoint) {
            Err(RunError::Fault(fault)) => {
                check_eq!(fault.class(), api::EC_BRK, "cpu{cpu}: exception class");
                check_eq!(fault.cpu, cpu, "CPU that took it");
            }
            other => {
                return Err(alloc::format!("cpu{cpu}: expected a BRK fault, saw {other:?}").into());
            }
        }
    }
    // The CPUs still work afterwards.
    for cpu in 0..api::ncpus() {
        check_eq!(
            api::run_on_cpu(cpu, api::getcpu),
            Ok(cpu),
            "after the faults"
        );
    }
    Ok(())
}

fn offline_cpu_is_refused() -> TestResult {
    let beyond = api::MAX_CPUS;
    check_eq!(
        api::run_on_cpu(beyond, api::getcpu),
        Err(RunError::Offline(beyond))
    );
    Ok(())
}
