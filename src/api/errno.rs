//! Error numbers of the payload interface, FreeBSD's values
//! (`sys/sys/errno.h`).

use core::fmt;

/// An error number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Self = Self(1);
    /// No such file or directory.
    pub const ENOENT: Self = Self(2);
    /// No such process.
    pub const ESRCH: Self = Self(3);
    /// Interrupted system call.
    pub const EINTR: Self = Self(4);
    /// Input/output error.
    pub const EIO: Self = Self(5);
    /// Bad file descriptor.
    pub const EBADF: Self = Self(9);
    /// No child processes.
    pub const ECHILD: Self = Self(10);
    /// Resource deadlock avoided.
    pub const EDEADLK: Self = Self(11);
    /// Cannot allocate memory.
    pub const ENOMEM: Self = Self(12);
    /// Permission denied.
    pub const EACCES: Self = Self(13);
    /// Bad address.
    pub const EFAULT: Self = Self(14);
    /// Device busy.
    pub const EBUSY: Self = Self(16);
    /// File exists.
    pub const EEXIST: Self = Self(17);
    /// Invalid argument.
    pub const EINVAL: Self = Self(22);
    /// Broken pipe.
    pub const EPIPE: Self = Self(32);
    /// Resource temporarily unavailable.
    pub const EAGAIN: Self = Self(35);
    /// Operation would block (the same number as `EAGAIN`).
    pub const EWOULDBLOCK: Self = Self(35);
    /// Operation timed out.
    pub const ETIMEDOUT: Self = Self(60);
    /// Function not implemented.
    pub const ENOSYS: Self = Self(78);
    /// Restart the system call (kernel-internal, never returned to a
    /// payload).
    pub const ERESTART: Self = Self(-1);

    /// The symbolic name.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            5 => "EIO",
            9 => "EBADF",
            10 => "ECHILD",
            11 => "EDEADLK",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            22 => "EINVAL",
            32 => "EPIPE",
            35 => "EAGAIN",
            60 => "ETIMEDOUT",
            78 => "ENOSYS",
            -1 => "ERESTART",
            _ => "E?",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}
