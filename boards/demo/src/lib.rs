//! The demo that the monitor-events firmware boards (nRF52840, RP2040) run at every
//! boot, on whatever [`Medium`] the board binds its flash partition to:
//!
//! 1. opens the journal (recovery after any power cut; writes nothing until the
//!    first push or ack);
//! 2. replays every event still pending, in id order (decodes it and logs its
//!    kind), and acks it;
//! 3. lets a simulated channel [`monitor`] push [`EVENTS_PER_BOOT`] new events,
//!    each durable when `push` returns;
//! 4. acks all but the last two of them out of push order (odd positions first);
//!    those two stay pending and are replayed at the next boot.
//!
//! Everything is logged with defmt; any error is a `defmt::panic!` that names the
//! failed operation and, with the feature `defmt` (the library's `defmt::Format`
//! impls), the library's error. A board keeps its HAL setup, the binding of its
//! partition (linker symbols, driver, geometry and
//! [`Config`](monitor_events::journal::Config)) and a call to [`run`], or, on an
//! async medium (feature `async`), to `asynch::run`: the same steps, compiled
//! from the same source.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// `defmt::panic!` with `$fmt` and `$args`, then `: ` and the library error `$e`
/// when the library formats its types (feature `defmt`); without it `$e` is not
/// printed, so that the library needs no `defmt::Format` impls.
macro_rules! fail {
    ($fmt:literal, $fmt_e:literal $(, $arg:expr)*; $e:expr) => {{
        #[cfg(feature = "defmt")]
        defmt::panic!($fmt_e $(, $arg)*, $e);
        #[cfg(not(feature = "defmt"))]
        {
            let _ = &$e;
            defmt::panic!($fmt $(, $arg)*);
        }
    }};
}

pub mod monitor;

use monitor_events::journal::Journal;
use monitor_events::{Medium, MonitorEvent, MAX_ENCODED_LEN};

mod blocking;
pub use blocking::run;

#[cfg(feature = "async")]
pub mod asynch;

/// New events per boot: a demo, not a flash-wearing loop.
pub const EVENTS_PER_BOOT: usize = 6;

/// Where the partition starts, and so how the log lines name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// An address that is also the offset in the flash (nRF52840: the flash
    /// starts at 0). Logged as "journal at 0x…".
    Address(u32),
    /// An offset from the start of the flash, not an address (RP2040: the flash
    /// is mapped at 0x1000_0000). Logged as "journal at flash offset 0x…" (and
    /// "cannot open the journal at offset 0x…").
    FlashOffset(u32),
}

impl Base {
    fn value(self) -> u32 {
        match self {
            Base::Address(a) | Base::FlashOffset(a) => a,
        }
    }
}

/// The `size_of` figures of a store on medium `M` with room for `N` events: the
/// journal (all the RAM the store holds), its medium, a decoded event, the longest
/// encoding and `N`, in bytes and events.
///
/// `boards/size.py` reads them from the ELF symbol `MONITOR_EVENTS_SIZES`, which
/// the board declares (`#[used]`, `#[no_mangle]`) with this as its value.
pub const fn sizes<M: Medium, const N: usize>() -> [u32; 5] {
    [
        size_of::<Journal<M, N>>() as u32,
        size_of::<M>() as u32,
        size_of::<MonitorEvent>() as u32,
        MAX_ENCODED_LEN as u32,
        N as u32,
    ]
}
