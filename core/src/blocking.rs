//! The engine compiled blocking, on a [`Medium`]: the crate's
//! [`Journal`](crate::journal::Journal) and [`EventStore`](crate::store::EventStore).
//!
//! `src/engine/` is written once, with `async` operations; `must_be_sync` removes
//! every `async` and `.await` from it here, so this build makes exactly the calls
//! the source states, in order, with no future and no executor.

pub(crate) use crate::medium::Medium;
pub(crate) use maybe_async::must_be_sync as maybe;

/// Items that only the blocking build of the engine keeps: its unit tests.
macro_rules! blocking_only {
    ($($item:item)*) => { $($item)* };
}

// The one engine source, compiled once blocking and once async on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "engine/mod.rs"]
mod engine;

pub use self::engine::store::EventStore;
pub use self::engine::Journal;

#[cfg(test)]
pub(crate) use self::engine::tests;
