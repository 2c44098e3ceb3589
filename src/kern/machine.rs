//! The machine description, set once at boot and read-only afterwards.

use spin::Once;

use crate::platform::machine::Machine;

static MACHINE: Once<Machine> = Once::new();

/// Publishes the description; the first call wins.
pub fn set(machine: Machine) -> &'static Machine {
    MACHINE.call_once(|| machine)
}

/// The description, once [`set`].
pub fn get() -> Option<&'static Machine> {
    MACHINE.get()
}

/// The description.
///
/// # Panics
/// Before [`set`]: boot publishes it before starting anything that asks.
pub fn machine() -> &'static Machine {
    MACHINE
        .get()
        .expect("machine description published at boot")
}
