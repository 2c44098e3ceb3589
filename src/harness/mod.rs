//! The test runner of the test image (boot argument `test`).
//!
//! Runs every case of every payload file in `tests/` in name order, or
//! those whose full name contains `filter=WORD`, leaving out the first
//! `skip=K` of them. For each case it prints `RUN  <name>`, then
//! `PASS <name>`, `FAIL <name>: <what>` or `SKIP <name>: <why>`, and at
//! the end `SUMMARY <p> passed, <f> failed, <s> skipped`. A case fails if
//! it says so, takes an exception (reported with its class), leaves heap
//! bytes behind, or hangs (see [`watchdog`]).

pub mod watchdog;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::api::test::{Case, TestError};
use crate::arch::exception::catch_fault;
use crate::kern::heap;
use crate::platform::bootargs::BootArgs;
use crate::println;

/// Default time a case may take before the watchdog fails it.
const DEFAULT_CASE_TIMEOUT_MS: u64 = 20_000;

/// The watchdog's own check (boot argument `hang_test`): a case that never
/// returns, which the watchdog must name.
static HANG_SELF_TEST: Case = Case {
    name: "hung_case_is_named",
    run: spin_forever,
};

/// Runs the selected cases; returns the exit code (0: all passed).
pub fn run(args: &BootArgs<'_>) -> u32 {
    let filter = args.value("filter").unwrap_or("");
    let skip = args.number("skip").unwrap_or(0) as usize;
    let timeout_ms = args
        .number("case_timeout_ms")
        .unwrap_or(DEFAULT_CASE_TIMEOUT_MS);

    let selected: Vec<(String, &'static Case)> = if args.has("hang_test") {
        alloc::vec![(format!("harness::{}", HANG_SELF_TEST.name), &HANG_SELF_TEST)]
    } else {
        crate::payloads::SUITES
            .iter()
            .flat_map(|suite| suite.cases.iter().map(move |case| (suite.name, case)))
            .map(|(suite, case)| (format!("{suite}::{}", case.name), case))
            .filter(|(name, _)| name.contains(filter))
            .collect()
    };
    log::info!(
        "test: {} cases selected, starting at {skip}",
        selected.len()
    );

    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (index, (name, case)) in selected.iter().enumerate().skip(skip) {
        println!("RUN  {name}");
        watchdog::arm(index, name, timeout_ms);
        let before = heap::in_use();
        let outcome = catch_fault(case.run);
        let after = heap::in_use();
        watchdog::disarm();
        match outcome {
            Ok(Ok(())) if after != before => {
                failed += 1;
                println!("FAIL {name}: leak: heap in use {before} bytes before, {after} after");
            }
            Ok(Ok(())) => {
                passed += 1;
                println!("PASS {name}");
            }
            Ok(Err(TestError::Skipped(reason))) => {
                skipped += 1;
                println!("SKIP {name}: {reason}");
            }
            Ok(Err(TestError::Failed(message))) => {
                failed += 1;
                println!("FAIL {name}: {message}");
            }
            Err(fault) => {
                failed += 1;
                println!("FAIL {name}: exception: {fault}");
            }
        }
    }
    println!("SUMMARY {passed} passed, {failed} failed, {skipped} skipped");
    u32::from(failed > 0)
}

fn spin_forever() -> crate::api::test::TestResult {
    loop {
        core::hint::spin_loop();
    }
}
