//! Callouts: functions run once at a later tick, FreeBSD's `callout(9)`.
//!
//! Each CPU has a timer wheel; a callout waits in the wheel of the CPU
//! that armed it and runs from that CPU's tick interrupt, with IRQs masked
//! (so a handler must not sleep). The three operations:
//! - [`Callout::reset`] arms it (again), replacing a pending run;
//! - [`Callout::stop`] cancels a pending run and says whether it did;
//! - [`Callout::drain`] cancels, and if the handler is running on another
//!   CPU right now, waits until it returns; a handler that tries to re-arm
//!   its callout during a drain is refused, so afterwards the callout can
//!   never run again until it is reset.
//!
//! # Lock order
//! A callout's state, then a wheel. The tick takes the wheel alone, then
//! each expired callout's state alone.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use super::lock::{LockClass, SpinLockIrq};
use super::timer_wheel::TimerWheel;
use crate::arch::{cpu, timer};
use crate::config::{MAX_CPUS, TICK_HZ};

type Handler = Box<dyn FnMut() + Send>;

/// An armed run.
#[derive(Clone, Copy)]
struct Pending {
    /// The CPU whose wheel holds it.
    cpu: usize,
    /// Its tick in that wheel.
    due: u64,
    /// Counter value before which it must not run: ticks arrive late or
    /// early by a fraction of a period, the counter does not.
    deadline: u64,
    /// Arming number, to recognise its wheel entry.
    arming: u64,
}

/// Where a callout stands.
struct State {
    /// Armed, not yet run.
    pending: Option<Pending>,
    /// Running its handler on this CPU now.
    running_on: Option<usize>,
    /// Drains in progress (several threads may drain at once): while
    /// any is, re-arming is refused.
    draining: u32,
    /// The handler, absent while it runs.
    handler: Option<Handler>,
}

struct Shared {
    state: SpinLockIrq<State>,
}

/// A wheel entry: the callout and the arming it belongs to.
type Entry = (Arc<Shared>, u64);

static WHEELS: [SpinLockIrq<TimerWheel<Entry>>; MAX_CPUS] =
    [const { SpinLockIrq::ordered(LockClass::CalloutWheel, TimerWheel::new()) }; MAX_CPUS];
/// Arming numbers, so that a stale wheel entry is recognised.
static ARMINGS: AtomicU64 = AtomicU64::new(1);
/// Callouts pending in all wheels, for the leak checks.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// A callout. Dropping it drains it.
pub struct Callout {
    shared: Arc<Shared>,
}

impl Callout {
    /// An idle callout.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: SpinLockIrq::ordered(
                    LockClass::CalloutState,
                    State {
                        pending: None,
                        running_on: None,
                        draining: 0,
                        handler: None,
                    },
                ),
            }),
        }
    }

    /// Arms the callout to run `handler` once, at least `delay` from now
    /// (by the counter), on this CPU, at the first tick after that. A pending run is
    /// cancelled first. Returns whether one was.
    ///
    /// During a [`Self::drain`] (for instance from the handler itself)
    /// the callout is not armed and `false` is returned.
    pub fn reset(&self, delay: Duration, handler: impl FnMut() + Send + 'static) -> bool {
        self.reset_boxed(delay, Box::new(handler))
    }

    fn reset_boxed(&self, delay: Duration, handler: Handler) -> bool {
        let ticks = (delay.as_nanos() as u64 * TICK_HZ).div_ceil(1_000_000_000);
        let counts = (u128::from(timer::frequency()) * delay.as_nanos() / 1_000_000_000) as u64;
        let mut state = self.shared.state.lock();
        if state.draining > 0 {
            return false;
        }
        let cancelled = cancel_locked(&self.shared, &mut state);
        let this = cpu::id();
        let arming = ARMINGS.fetch_add(1, Ordering::Relaxed);
        let deadline = timer::counter() + counts;
        let mut wheel = WHEELS[this].lock();
        let due = wheel.next_tick().max(super::clock::ticks(this)) + ticks;
        wheel.insert(due, (self.shared.clone(), arming));
        drop(wheel);
        PENDING.fetch_add(1, Ordering::Relaxed);
        state.pending = Some(Pending {
            cpu: this,
            due,
            deadline,
            arming,
        });
        state.handler = Some(handler);
        cancelled
    }

    /// Cancels a pending run. Returns `true` if one was cancelled before
    /// its handler started, `false` if none was pending (it ran, is
    /// running, or was never armed).
    pub fn stop(&self) -> bool {
        let mut state = self.shared.state.lock();
        cancel_locked(&self.shared, &mut state)
    }

    /// Cancels a pending run and waits for a running handler to return.
    /// Afterwards the handler is not running and will not run unless the
    /// callout is reset.
    ///
    /// # Panics
    /// If called from the callout's own handler (it would wait forever).
    pub fn drain(&self) -> bool {
        let mut state = self.shared.state.lock();
        state.draining += 1;
        let cancelled = cancel_locked(&self.shared, &mut state);
        loop {
            match state.running_on {
                None => break,
                Some(cpu) => {
                    assert_ne!(cpu, cpu::id(), "callout drained from its own handler");
                    drop(state);
                    crate::arch::cpu::relax();
                    state = self.shared.state.lock();
                }
            }
        }
        state.draining -= 1;
        cancelled
    }

    /// Whether a run is pending.
    pub fn is_pending(&self) -> bool {
        self.shared.state.lock().pending.is_some()
    }
}

impl Default for Callout {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Callout {
    fn drop(&mut self) {
        self.drain();
        // The handler may own references (to a sleeping thread, say):
        // free it now, not when the last wheel entry goes.
        let handler = self.shared.state.lock().handler.take();
        drop(handler);
    }
}

/// With `shared`'s state locked: takes a pending run out of its wheel.
fn cancel_locked(shared: &Arc<Shared>, state: &mut State) -> bool {
    let Some(pending) = state.pending.take() else {
        return false;
    };
    // The tick may have taken the entry out of its wheel already and be
    // about to look at this state: with `pending` cleared under the lock
    // it will not run the handler, so the run is cancelled either way.
    let entry = WHEELS[pending.cpu].lock().remove(pending.due, |(s, a)| {
        Arc::ptr_eq(s, shared) && *a == pending.arming
    });
    if entry.is_some() {
        PENDING.fetch_sub(1, Ordering::Relaxed);
    }
    // Freed after the wheel lock, under the state lock only.
    drop(entry);
    true
}

/// The tick of `this` CPU: run the callouts due at `now` (its tick count).
pub fn expire(this: usize, now: u64) {
    let mut due: Vec<Entry> = Vec::new();
    let mut wheel = WHEELS[this].lock();
    if wheel.is_empty() {
        return;
    }
    wheel.expire(now, |entry| due.push(entry));
    drop(wheel);
    let counter = timer::counter();
    for (shared, arming) in due {
        PENDING.fetch_sub(1, Ordering::Relaxed);
        let mut state = shared.state.lock();
        let Some(mut pending) = state.pending.filter(|p| p.arming == arming) else {
            continue;
        };
        if counter < pending.deadline {
            // The tick came early: wait for the next one.
            pending.due = now + 1;
            WHEELS[this]
                .lock()
                .insert(pending.due, (shared.clone(), arming));
            PENDING.fetch_add(1, Ordering::Relaxed);
            state.pending = Some(pending);
            continue;
        }
        state.pending = None;
        state.running_on = Some(this);
        let mut handler = state.handler.take();
        drop(state);
        if let Some(handler) = handler.as_mut() {
            handler();
        }
        let mut state = shared.state.lock();
        state.running_on = None;
        drop(state);
        // A run is armed with its handler and the handler is spent: what
        // it captured goes now, not at the next reset or the drop.
        drop(handler);
    }
}

/// Callouts pending on all CPUs.
pub fn pending() -> u64 {
    PENDING.load(Ordering::Relaxed)
}
