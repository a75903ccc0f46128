#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bolt4;
pub mod consume;
pub mod error;
pub mod image;
pub mod panic;
pub mod sim;
