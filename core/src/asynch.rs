//! The store and the journal on an [`AsyncMedium`] (crate feature `async`): for
//! firmware on an async executor (embassy) whose flash driver is async
//! (`embedded-storage-async`), so that a 45 ms erase yields to the other tasks
//! instead of stalling them.
//!
//! [`EventStore`] and [`Journal`] here are the crate's blocking
//! [`EventStore`](crate::store::EventStore) and [`Journal`](crate::journal::Journal)
//! compiled from the same source (`src/engine/`) with their medium operations
//! awaited: the same decisions, the same guarantees (invariants I1 to I10), the same
//! bytes on the medium. An image written by one opens with the other. Every
//! operation that touches the medium is an `async fn`; the others (`pending`,
//! `has_room`, `begin_update`, ...) are the same plain methods.
//!
//! A medium error still panics (invariant I7), from inside the future. A future
//! dropped before it completes is a power cut at that point: the store must not be
//! used again, and the next `open` recovers exactly as after a cut (it is the
//! caller's `&mut` borrow that such a drop gives up, so only a store kept in an
//! `Option` and reopened can reach that state).
//!
//! ```
//! # use monitor_events::asynch::EventStore;
//! # use monitor_events::{AsyncMedium, Config, MonitorEvent};
//! async fn first_run<F: AsyncMedium>(flash: F, config: Config<16>, event: &MonitorEvent) {
//!     let mut store: EventStore<F, 16> = EventStore::open(flash, config).await.unwrap();
//!     store.no_updates_in_flight();
//!     let id = store.push(event).await.unwrap();
//!     let (released, _) = store.release_next().await.unwrap();
//!     assert_eq!(released, id);
//! }
//! ```

pub use crate::medium::AsyncMedium;
pub(crate) use crate::medium::AsyncMedium as Medium;
pub(crate) use maybe_async::must_be_async as maybe;

/// Items that only the blocking build of the engine keeps: its unit tests.
macro_rules! blocking_only {
    ($($item:item)*) => {};
}

// The one engine source, compiled once blocking and once async on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "engine/mod.rs"]
mod engine;

pub use self::engine::store::EventStore;
pub use self::engine::Journal;
