//! Test cases: what a payload file in `tests/` declares.
//!
//! A payload file defines `pub const CASES: &[Case]`; `build.rs` collects
//! every file's list. A case's full name is `file::case`. A case returns
//! `Ok(())` to pass, or a [`TestError`] saying what was expected and what
//! was seen, or why it was skipped.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::kern::lock::SpinLockIrq;

/// The outcome of a case.
pub type TestResult = Result<(), TestError>;

/// Why a case did not pass.
#[derive(Debug, PartialEq, Eq)]
pub enum TestError {
    /// The case failed; the text says what was expected and what was seen.
    Failed(String),
    /// The case does not apply here (a board, a CPU count).
    Skipped(String),
}

impl From<String> for TestError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(message) | Self::Skipped(message) => f.write_str(message),
        }
    }
}

/// One test case.
pub struct Case {
    /// Name within its file.
    pub name: &'static str,
    /// The case.
    pub run: fn() -> TestResult,
}

/// The cases of one payload file.
pub struct Suite {
    /// The file's name without `.rs`.
    pub name: &'static str,
    /// Its cases.
    pub cases: &'static [Case],
}

/// Runs `body(i)` for `i` in `0..count`, each in a thread pinned to CPU
/// `cpu_of(i)`, joins them all, and fails with the first error any of
/// them returned.
pub fn in_threads<F>(count: usize, cpu_of: impl Fn(usize) -> usize, body: F) -> TestResult
where
    F: Fn(usize) -> Result<(), String> + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let errors: Arc<SpinLockIrq<Vec<String>>> = Arc::new(SpinLockIrq::new(Vec::new()));
    let mut tids = Vec::new();
    let mut spawn_error = None;
    for index in 0..count {
        let (body, errors) = (body.clone(), errors.clone());
        let spawned = super::thread_spawn_with(
            move || match body(index) {
                Ok(()) => 0,
                Err(error) => {
                    errors
                        .lock()
                        .push(alloc::format!("thread {index}: {error}"));
                    1
                }
            },
            super::ThreadOptions::pinned(cpu_of(index)),
        );
        match spawned {
            Ok(tid) => tids.push(tid),
            Err(error) => {
                spawn_error = Some(alloc::format!("spawning thread {index}: {error}"));
                break;
            }
        }
    }
    for tid in tids {
        if super::thread_join(tid).is_err() {
            return Err(TestError::Failed(String::from(
                "joining a thread of the case",
            )));
        }
    }
    if let Some(error) = spawn_error {
        return Err(error.into());
    }
    let errors = core::mem::take(&mut *errors.lock());
    match errors.first() {
        None => Ok(()),
        Some(first) => {
            Err(alloc::format!("{} of {count} threads failed; {first}", errors.len()).into())
        }
    }
}

/// Waits, yielding, until `condition` holds or `limit` has passed;
/// returns whether it held.
pub fn wait_for(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = super::now() + limit;
    while !condition() {
        if super::now() > deadline {
            return false;
        }
        super::sched_yield();
    }
    true
}

/// Fails the case with a formatted message unless `condition` holds.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err($crate::api::test::TestError::Failed(alloc::format!($($message)+)));
        }
    };
}

/// Fails the case unless `left == right`, showing both; an optional
/// format string and arguments say what was compared.
#[macro_export]
macro_rules! check_eq {
    (@inner $left:expr, $right:expr, $context:expr) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            let context: alloc::string::String = $context;
            return Err($crate::api::test::TestError::Failed(alloc::format!(
                "{}{}expected {} == {:?}, saw {:?}",
                context,
                if context.is_empty() { "" } else { ": " },
                stringify!($left),
                right,
                left
            )));
        }
    }};
    ($left:expr, $right:expr $(,)?) => {
        $crate::check_eq!(@inner $left, $right, alloc::string::String::new())
    };
    ($left:expr, $right:expr, $($context:tt)+) => {
        $crate::check_eq!(@inner $left, $right, alloc::format!($($context)+))
    };
}

/// Skips the case with a formatted reason.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {
        return Err($crate::api::test::TestError::Skipped(alloc::format!($($reason)+)))
    };
}
