#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod fmt;

#[cfg(feature = "async")]
pub mod asynch;
pub mod barrier;
mod blocking;
pub mod event;
pub mod id;
pub mod inflight;
pub mod journal;
pub mod medium;
pub mod pending;
mod split;
pub mod store;

pub use barrier::{AckBarrier, BarrierError, Condition};
pub use event::{ChannelId, CloseReason, DecodeError, EncodeError, EventKind};
pub use event::{FailureReason, HtlcOutcome, HtlcResolution, HtlcSource, InvalidEvent};
pub use event::{MonitorEvent, PaymentHash, PaymentPreimage};
pub use event::{MAX_ENCODED_LEN, MAX_FAILURE_DATA};
pub use id::{EventId, MonitorEventSource};
pub use inflight::{ChannelGates, InFlight, InFlightError, UpdateRange};
pub use journal::{AckMode, Config};
#[cfg(feature = "async")]
pub use medium::AsyncMedium;
pub use medium::{Geometry, Medium};
pub use pending::{AckError, AckOutcome, InsertError, Leak, PendingEvent, PendingIndex};
pub use store::{EventStore, InFlightState, PendingInfo, PushError, StoreError};
