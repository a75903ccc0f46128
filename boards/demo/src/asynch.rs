//! The demo's steps on an [`AsyncMedium`](monitor_events::AsyncMedium)
//! (feature `async`): the same source as [`run`](crate::run), every medium
//! operation awaited, through `monitor_events::asynch::Journal`.

pub(crate) use maybe_async::must_be_async as maybe;
pub(crate) use monitor_events::asynch::Journal;
pub(crate) use monitor_events::AsyncMedium as Medium;

// The one source of the steps, compiled once blocking and once async.
#[allow(clippy::duplicate_mod)]
#[path = "steps.rs"]
mod steps;

pub use steps::run;
