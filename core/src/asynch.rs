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
//! A medium error still panics (invariant I7), from inside the future. The
//! operations are not cancel-safe: a future of `open`, `push` or `ack` (or their
//! batches) dropped before it completes, as a `select` with a timeout would, is a
//! power cut at that point. The store then refuses every further push, ack and
//! read with a panic that says so (a repeated ack too: it does not answer
//! `AlreadyAcked` for an ack that may not be durable), rather than run on with
//! state in RAM that the medium may not match; so does a store that a dropped
//! `open_into` left in its slot. Opening the medium again recovers exactly as
//! after a cut (the dropped operation is whole or absent). Reads (`release_next`,
//! `peek`) change nothing on the medium, and a read that a drop interrupted
//! releases nothing: the next `release_next` hands out the same event.
//!
//! ```
//! use monitor_events::asynch::EventStore;
//! use monitor_events::{AsyncMedium, ChannelId, Config, Geometry, MonitorEvent, MonitorEventSource};
//! # struct Ram(Vec<u8>);
//! # impl AsyncMedium for Ram {
//! #     type Error = core::convert::Infallible;
//! #     fn geometry(&self) -> Geometry { GEOMETRY }
//! #     async fn read(&mut self, o: u32, b: &mut [u8]) -> Result<(), Self::Error> {
//! #         b.copy_from_slice(&self.0[o as usize..o as usize + b.len()]); Ok(())
//! #     }
//! #     async fn program(&mut self, o: u32, d: &[u8]) -> Result<(), Self::Error> {
//! #         for (i, x) in d.iter().enumerate() { self.0[o as usize + i] &= x; } Ok(())
//! #     }
//! #     async fn erase(&mut self, s: u32) -> Result<(), Self::Error> {
//! #         let n = GEOMETRY.sector_size as usize; self.0[s as usize * n..][..n].fill(0xFF); Ok(())
//! #     }
//! #     async fn sync(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! # impl monitor_events::Medium for Ram {
//! #     type Error = core::convert::Infallible;
//! #     fn geometry(&self) -> Geometry { GEOMETRY }
//! #     fn read(&mut self, o: u32, b: &mut [u8]) -> Result<(), Self::Error> {
//! #         b.copy_from_slice(&self.0[o as usize..o as usize + b.len()]); Ok(())
//! #     }
//! #     fn program(&mut self, o: u32, d: &[u8]) -> Result<(), Self::Error> {
//! #         for (i, x) in d.iter().enumerate() { self.0[o as usize + i] &= x; } Ok(())
//! #     }
//! #     fn erase(&mut self, s: u32) -> Result<(), Self::Error> {
//! #         let n = GEOMETRY.sector_size as usize; self.0[s as usize * n..][..n].fill(0xFF); Ok(())
//! #     }
//! #     fn sync(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! const GEOMETRY: Geometry = Geometry { sector_size: 4096, sector_count: 8, write_size: 4, multiwrite: true };
//! const CONFIG: Config<16> = Config::new(GEOMETRY, monitor_events::MAX_ENCODED_LEN);
//!
//! async fn run(flash: &mut Ram) {
//!     let mut store = EventStore::<_, 16>::open(&mut *flash, CONFIG).await.unwrap();
//!     store.no_updates_in_flight();
//!     let channel = ChannelId([7; 32]);
//!     let event = MonitorEvent::UpdateCompleted { channel, update_id: 42 };
//!     let id = store.push(&event).await.unwrap(); // durable when it returns (I1)
//!     let (released, got) = store.release_next().await.unwrap();
//!     assert_eq!((released, got), (id, event));
//!     store.ack(MonitorEventSource { id, channel }).await.unwrap(); // durable (I2)
//! }
//!
//! let mut flash = Ram(vec![0xFF; GEOMETRY.size() as usize]);
//! embassy_futures::block_on(run(&mut flash));
//! // The blocking store opens what the async one wrote: the event, acked.
//! let store = monitor_events::EventStore::<_, 16>::open(&mut flash, CONFIG).unwrap();
//! assert_eq!((store.pending_count(), store.next_id().0), (0, 1));
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
