#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod consumer;
pub mod describe;
pub mod error;
pub mod flash;
pub mod image;
pub mod inspect;
pub mod model;
pub mod report;
pub mod rng;
pub mod simulate;
pub mod workload;
