#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod fmt;

pub mod barrier;
pub mod event;
pub mod id;
pub mod inflight;
pub mod journal;
pub mod medium;
pub mod pending;

pub use id::EventId;
pub use medium::{Geometry, Medium};
