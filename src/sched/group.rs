//! Thread groups and single-threading: the threading half of a process
//! (FreeBSD's `struct proc` list of threads and `thread_single(9)`).
//!
//! A group knows its live threads. `thread_single` lets one member stop
//! all the others:
//! - [`SingleMode::Exit`]: every other thread exits at its next kernel
//!   boundary (the first step of a process's exit);
//! - [`SingleMode::Boundary`]: every other thread suspends at its next
//!   kernel boundary, until `thread_single_end`;
//! - [`SingleMode::NoExit`]: the same, except that a thread asleep
//!   interruptibly counts as stopped where it is, without being woken.
//!
//! The caller marks each other thread, wakes those asleep interruptibly
//! (their sleep returns `ERESTART` and unwinds to the boundary), sends an
//! SGI to the CPU of each one running, so that payload code is stopped at
//! once rather than at its next call into the kernel, and sleeps until the
//! count is right. A thread asleep uninterruptibly is waited for.
//!
//! # Lock order
//! The group's wait-channel bucket, then the group's lock.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::thread::{FLAG_EXIT, FLAG_SUSPEND, State, Thread, Tid};
use super::{ast, scheduler};
use crate::api::Errno;
use crate::kern::lock::{LockClass, SpinLockIrq};
use crate::kern::sleepqueue;

/// What the other threads do when one member single-threads the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SingleMode {
    /// Exit at the next kernel boundary.
    Exit,
    /// Suspend at the next kernel boundary.
    Boundary,
    /// Suspend at the next kernel boundary; interruptible sleepers count
    /// as suspended where they sleep.
    NoExit,
}

/// What the group's lock protects.
struct Members {
    /// Live members.
    threads: Vec<Arc<Thread>>,
    /// The member single-threading the group, and how.
    single: Option<(Tid, SingleMode)>,
    /// Members parked at their boundary.
    suspended: usize,
}

/// A group of threads.
pub struct ThreadGroup {
    /// Its id.
    pub id: u64,
    members: SpinLockIrq<Members>,
}

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

impl ThreadGroup {
    /// An empty group.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_GROUP.fetch_add(1, Ordering::Relaxed),
            members: SpinLockIrq::ordered(
                LockClass::ThreadGroup,
                Members {
                    threads: Vec::new(),
                    single: None,
                    suspended: 0,
                },
            ),
        })
    }

    /// Members alive.
    pub fn len(&self) -> usize {
        self.members.lock().threads.len()
    }

    /// Whether the group has no live member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members parked at their boundary.
    pub fn suspended(&self) -> usize {
        self.members.lock().suspended
    }

    /// The channel the single-threading member sleeps on.
    fn channel(&self) -> usize {
        self as *const Self as usize
    }

    /// The channel suspended members sleep on.
    fn resume_channel(&self) -> usize {
        self.channel() + 1
    }

    /// Adds a new member; a single-threading in progress applies to it
    /// too. Called by `spawn` before the thread first runs.
    pub(super) fn join(&self, thread: &Arc<Thread>) {
        let mut members = self.members.lock();
        if let Some((_, mode)) = members.single {
            thread.flags.fetch_or(flag_of(mode), Ordering::AcqRel);
        }
        members.threads.push(thread.clone());
    }

    /// Removes an exiting member and tells a single-threading member.
    pub(super) fn leave(&self, thread: &Thread) {
        sleepqueue::wakeup_after(self.channel(), || {
            let mut members = self.members.lock();
            members
                .threads
                .retain(|t| !core::ptr::eq(Arc::as_ptr(t), thread));
            let emptied = if members.threads.is_empty() {
                core::mem::take(&mut members.threads)
            } else {
                Vec::new()
            };
            drop(members);
            drop(emptied);
        });
    }
}

fn flag_of(mode: SingleMode) -> u32 {
    match mode {
        SingleMode::Exit => FLAG_EXIT,
        SingleMode::Boundary | SingleMode::NoExit => FLAG_SUSPEND,
    }
}

/// Stops every other thread of the caller's group as `mode` says and
/// returns once they are gone (exit) or suspended.
///
/// # Errors
/// - `EINVAL` if the caller belongs to no group;
/// - `EBUSY` if another member is single-threading the group already;
///   for [`SingleMode::Exit`] the caller should then exit as a plain
///   thread (the other member's exit wins).
pub fn thread_single(mode: SingleMode) -> Result<(), Errno> {
    let me = scheduler::current();
    let group = me.group.clone().ok_or(Errno::EINVAL)?;

    // 1. Claim the group and mark every other member.
    let mut members = group.members.lock();
    let first_claim = match members.single {
        Some((tid, _)) if tid != me.tid => return Err(Errno::EBUSY),
        Some(_) => false,
        None => true,
    };
    if first_claim {
        ast::orders_given();
    }
    members.single = Some((me.tid, mode));
    let others: Vec<Arc<Thread>> = members
        .threads
        .iter()
        .filter(|t| !Arc::ptr_eq(t, &me))
        .cloned()
        .collect();
    for thread in &others {
        thread.flags.fetch_or(flag_of(mode), Ordering::AcqRel);
    }
    drop(members);
    log::debug!(
        "tid={} single-threads group {} ({mode:?}), {} others",
        me.tid,
        group.id,
        others.len()
    );

    // 2. Reach them: wake interruptible sleepers (except, for NoExit,
    //    where they may stay asleep), interrupt those running.
    for thread in &others {
        if mode != SingleMode::NoExit {
            sleepqueue::abort(thread);
        }
        ast::kick(thread);
    }
    drop(others);

    // 3. Wait until they are gone or stopped.
    let me_ptr = Arc::as_ptr(&me);
    drop(me);
    sleepqueue::wait_until(group.channel(), || {
        let members = group.members.lock();
        let others = members
            .threads
            .iter()
            .filter(|t| !core::ptr::eq(Arc::as_ptr(t), me_ptr));
        match mode {
            SingleMode::Exit => others.count() == 0,
            SingleMode::Boundary => members.suspended == others.count(),
            SingleMode::NoExit => {
                let asleep = others
                    .filter(|t| {
                        t.state() == State::Sleeping && t.interruptible.load(Ordering::Relaxed)
                    })
                    .filter(|t| t.flags() & FLAG_SUSPEND != 0)
                    .count();
                let total = members.threads.len() - 1;
                members.suspended + asleep >= total
            }
        }
    });
    if mode == SingleMode::Exit && first_claim {
        // Everyone marked is gone; the claim stays (the group is ending).
        ast::orders_done();
    }
    Ok(())
}

/// Ends the caller's single-threading: suspended members resume. (After
/// [`SingleMode::Exit`] there is no one left; the claim is dropped.)
///
/// # Errors
/// `EINVAL` if the caller is not single-threading its group.
pub fn thread_single_end() -> Result<(), Errno> {
    let me = scheduler::current();
    let group = me.group.clone().ok_or(Errno::EINVAL)?;
    let mut members = group.members.lock();
    if members.single.map(|(tid, _)| tid) != Some(me.tid) {
        return Err(Errno::EINVAL);
    }
    let (_, mode) = members.single.take().expect("checked above");
    for thread in &members.threads {
        thread.flags.fetch_and(!FLAG_SUSPEND, Ordering::AcqRel);
    }
    drop(members);
    if mode != SingleMode::Exit {
        ast::orders_done();
    }
    sleepqueue::wakeup(group.resume_channel());
    Ok(())
}

/// The boundary's suspension: count this thread as stopped, tell the
/// single-threading member, and sleep until released (or told to exit).
pub(super) fn suspend(me: &Arc<Thread>, group: &Arc<ThreadGroup>) {
    sleepqueue::wakeup_after(group.channel(), || group.members.lock().suspended += 1);
    sleepqueue::wait_until(group.resume_channel(), || {
        me.flags() & FLAG_SUSPEND == 0 || me.flags() & FLAG_EXIT != 0
    });
    group.members.lock().suspended -= 1;
}
