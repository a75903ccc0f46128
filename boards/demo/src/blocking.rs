//! The demo's steps on a blocking [`Medium`]: `steps.rs` compiled with every
//! `async` and `.await` removed.

pub(crate) use maybe_async::must_be_sync as maybe;
pub(crate) use monitor_events::journal::Journal;
pub(crate) use monitor_events::Medium;

// The one source of the steps, compiled once blocking and once async.
#[allow(clippy::duplicate_mod)]
#[path = "steps.rs"]
mod steps;

pub use steps::run;
