//! Fuzz targets for monitor-events (`cargo +nightly fuzz run <target>` here; see
//! `ci/fuzz.sh`). The checks live in [`checks`], a file the regression test
//! `core/tests/fuzz_regressions.rs` includes as well, so that every crash found
//! here is replayed by the normal test suite.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod checks;
pub mod link;

pub use checks::{check_decode, check_open, check_ops};
pub use link::{check_link_device, check_link_host};
