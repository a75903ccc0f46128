#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod grouped;
mod nor;
#[cfg(feature = "async")]
mod nor_async;
mod paged;
mod ram;
pub mod rng;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "sim")]
pub mod workload;

pub use grouped::{GroupError, Grouped};
pub use nor::{NorFlashMedium, NorFlashMediumError, PartitionError, MAX_UNIT};
#[cfg(feature = "async")]
pub use nor_async::AsyncNorFlashMedium;
pub use paged::PagedWrites;
pub use ram::RamFlash;
#[cfg(feature = "sim")]
pub use sim::{SimError, SimFlash};
