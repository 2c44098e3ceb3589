//! The machine description: device tree reading, board tables, boot
//! arguments and the address-range arithmetic they need. Hardware-free,
//! so it is tested on the host against real trees dumped from QEMU.

#![deny(unsafe_code)]

pub mod atags;
pub mod board;
pub mod bootargs;
pub mod devicetree;
pub mod fdt_blob;
pub mod layout;
pub mod machine;
pub mod range_set;
