//! Logging shim: defmt on firmware (feature `defmt`), nothing otherwise.
//!
//! A macro's `cfg(feature)` is evaluated in the calling crate, so each crate of the
//! workspace keeps its own copy of this file.
#![allow(unused_macros)]

macro_rules! trace {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::trace!($($arg)*);
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
    }};
}

macro_rules! error {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::error!($($arg)*);
    }};
}

/// Panics with a message; on firmware with `defmt` the message goes through defmt.
macro_rules! fatal {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::panic!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        ::core::panic!($($arg)*);
    }};
}
