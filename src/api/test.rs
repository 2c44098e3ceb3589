//! Test cases: what a payload file in `tests/` declares.
//!
//! A payload file defines `pub const CASES: &[Case]`; `build.rs` collects
//! every file's list. A case's full name is `file::case`. A case returns
//! `Ok(())` to pass, or a [`TestError`] saying what was expected and what
//! was seen, or why it was skipped.

use alloc::string::String;
use core::fmt;

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
