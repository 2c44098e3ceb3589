//! Arm PrimeCell UART (PL011), the console on both boards.
//!
//! Register descriptions from the "PrimeCell UART (PL011) Technical
//! Reference Manual", r1p5, section 3.3. Output is polled: the console
//! writes whole lines under a lock with interrupts masked, so a transmit
//! interrupt would buy nothing.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::mmio::Mmio;

register_bitfields! [u32,
    /// Flag register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Integer baud rate divisor.
    IBRD [
        BAUD_DIVINT OFFSET(0) NUMBITS(16) []
    ],
    /// Fractional baud rate divisor.
    FBRD [
        BAUD_DIVFRAC OFFSET(0) NUMBITS(6) []
    ],
    /// Line control.
    LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [
            EightBit = 0b11
        ],
        /// FIFOs enabled; writing 0 flushes the transmit FIFO.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control.
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt clear.
    ICR [
        /// All interrupts.
        ALL OFFSET(0) NUMBITS(11) []
    ]
];

register_structs! {
    #[allow(non_snake_case)]
    Registers {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => IBRD: WriteOnly<u32, IBRD::Register>),
        (0x28 => FBRD: WriteOnly<u32, FBRD::Register>),
        (0x2c => LCR_H: WriteOnly<u32, LCR_H::Register>),
        (0x30 => CR: WriteOnly<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x44 => ICR: WriteOnly<u32, ICR::Register>),
        (0x48 => @END),
    }
}

/// Baud rate of the console on every board.
const BAUD_RATE: u64 = 115_200;

/// A PL011 UART.
pub struct Pl011 {
    registers: Mmio<Registers>,
}

impl Pl011 {
    /// A driver for the PL011 at `base`.
    ///
    /// # Safety
    /// `base` must be a PL011 mapped as device memory for the kernel's
    /// life, driven by nothing else.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: forwarded from the caller.
        let registers = unsafe { Mmio::new(base) };
        Self { registers }
    }

    /// Programs 8N1 at 115200 baud when the reference clock is known, and
    /// enables the transmitter and receiver. With `clock_hz` unknown the
    /// firmware's settings stay (QEMU ignores the divisors anyway).
    pub fn init(&self, clock_hz: Option<u64>) {
        // 1. Disable, and let the last character leave.
        self.registers.CR.set(0);
        while self.registers.FR.is_set(FR::BUSY) {}
        // 2. Flush the transmit FIFO by disabling it.
        self.registers.LCR_H.set(0);
        self.registers.ICR.write(ICR::ALL::SET);
        // 3. Divisor = clock / (16 * baud), with 6 fractional bits
        //    (TRM 3.3.6), rounded to nearest.
        if let Some(clock) = clock_hz {
            let divisor_x64 = (clock * 4 + BAUD_RATE / 2) / BAUD_RATE;
            self.registers
                .IBRD
                .write(IBRD::BAUD_DIVINT.val((divisor_x64 >> 6) as u32));
            self.registers
                .FBRD
                .write(FBRD::BAUD_DIVFRAC.val((divisor_x64 & 0x3f) as u32));
        }
        // 4. 8 bits, no parity, one stop bit, FIFOs on; the LCR_H write
        //    also latches the divisors.
        self.registers
            .LCR_H
            .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        self.registers
            .CR
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Sends one byte, waiting for room in the transmit FIFO.
    pub fn write_byte(&self, byte: u8) {
        while self.registers.FR.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers.DR.set(u32::from(byte));
    }

    /// Waits until every queued byte has left the UART.
    pub fn flush(&self) {
        while self.registers.FR.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}
