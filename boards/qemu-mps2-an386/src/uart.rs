//! A polled driver for the CMSDK APB UART0 of the mps2-an386 (`0x4000_4000`), the
//! line `link` speaks on. QEMU bridges it to whatever `-serial` names (a TCP
//! socket for the link tests).
//!
//! | register | offset | used |
//! |---|---|---|
//! | `DATA` | `0x00` | read: the received byte (clears `RXFULL`); write: the byte to send |
//! | `STATE` | `0x04` | bit 0 `TXFULL`, bit 1 `RXFULL` |
//! | `CTRL` | `0x08` | bit 0 TX enable, bit 1 RX enable (no interrupts) |
//! | `BAUDDIV` | `0x10` | the pclk divider, at least 16 |
//!
//! The UART has a one-byte buffer each way and no FIFO. Under QEMU the line has no
//! baud-rate timing: a byte written goes to the chardev at once, and QEMU offers
//! the next received byte only once `DATA` was read (nothing is overrun); when
//! the chardev cannot take a byte, `TXFULL` stays set until it can.

#![allow(unsafe_code)]

use core::ptr::{read_volatile, write_volatile};

/// UART0 of the AN385/AN386 memory map (QEMU's `hw/arm/mps2.c`).
const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;

const STATE_TXFULL: u32 = 1 << 0;
const STATE_RXFULL: u32 = 1 << 1;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;

/// The peripheral clock of the mps2-an386 (25 MHz).
const PCLK_HZ: u32 = 25_000_000;
/// The baud rate programmed (QEMU does not time the line; a real UART would).
pub const BAUD: u32 = 115_200;

/// UART0, polled. Only one exists: [`Uart::take`] hands it out once.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Programs UART0 (8N1 at [`BAUD`], TX and RX enabled, no interrupts) and
    /// hands it out; `None` if it was taken before.
    pub fn take() -> Option<Self> {
        use core::sync::atomic::{AtomicBool, Ordering};
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        let uart = Uart { _private: () };
        uart.write_reg(CTRL, 0);
        uart.write_reg(BAUDDIV, PCLK_HZ / BAUD);
        uart.write_reg(CTRL, CTRL_TX_EN | CTRL_RX_EN);
        Some(uart)
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: UART0's registers are valid, aligned MMIO words on this machine;
        // `take` hands out the only `Uart`, so nothing else accesses them.
        unsafe { read_volatile((UART0 + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`.
        unsafe { write_volatile((UART0 + offset) as *mut u32, value) }
    }

    /// The received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.read_reg(STATE) & STATE_RXFULL == 0 {
            return None;
        }
        Some(self.read_reg(DATA) as u8)
    }

    /// Reads the bytes waiting into `buf`, up to its length; how many.
    pub fn read_available(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match self.try_read() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Sends `bytes`, waiting for the transmit buffer before each one.
    pub fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while self.read_reg(STATE) & STATE_TXFULL != 0 {
                core::hint::spin_loop();
            }
            self.write_reg(DATA, u32::from(b));
        }
    }
}
