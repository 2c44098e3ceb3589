//! Device drivers: the console UART, the interrupt controller, and the two
//! ways of starting CPUs. Registers are reached through `tock-registers`
//! views ([`mmio::Mmio`]); addresses come from the device tree.

pub mod gic;
pub mod mmio;
pub mod pl011;
pub mod probe;
pub mod psci;
pub mod spin_table;
