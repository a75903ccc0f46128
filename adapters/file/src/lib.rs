#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("monitor-events-file supports Unix only (pwrite, fdatasync, flock)");

mod error;
#[cfg(feature = "_test-faults")]
mod fault;
mod medium;
mod shared;
mod store;

pub use error::{FileError, MediumError, MediumOp};
#[cfg(feature = "_test-faults")]
#[doc(hidden)]
pub use fault::FaultPlan;
pub use medium::FileMedium;
pub use shared::{SharedEventStore, SharedJournal};
pub use store::FileStore;

/// The core crate, re-exported so that hosts need only this one.
pub use monitor_events;
