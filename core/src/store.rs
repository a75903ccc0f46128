//! The typed event store: monitor events on a [`Journal`](crate::journal::Journal),
//! with ack bookkeeping and in-flight gating. [`EventStore`] is the blocking store;
//! with the crate feature `async`, `asynch::EventStore`
//! is the same store on an `AsyncMedium`. Both are
//! compiled from one source, `src/engine/store.rs`.

use crate::event::{ChannelId, DecodeError, EncodeError, EventKind, InvalidEvent, MonitorEvent};
use crate::id::EventId;
use crate::journal::{self, OpenError};
use crate::MAX_ENCODED_LEN;

pub use crate::blocking::EventStore;

/// Why [`EventStore::open`] failed. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StoreError {
    /// The journal could not be recovered.
    Journal(OpenError),
    /// A pending record checks but does not hold a valid monitor event (it was
    /// written by something else).
    BadEvent {
        /// The record's id.
        id: EventId,
        /// Why it does not decode.
        error: DecodeError,
    },
    /// The pending events name more channels than the store's `CH`: open it with
    /// a larger `CH`.
    TooManyChannels {
        /// `CH`.
        capacity: usize,
    },
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Journal(e)
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::Journal(e) => write!(f, "{e}"),
            StoreError::BadEvent { id, error } => write!(f, "event {id} does not decode: {error}"),
            StoreError::TooManyChannels { capacity } => write!(
                f,
                "the pending events name more than {capacity} channels (the store's CH)"
            ),
        }
    }
}

impl core::error::Error for StoreError {}

/// Why a push was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PushError {
    /// `N` events are pending (invariant I6).
    Full,
    /// The event is not valid (a preimage that does not hash to the payment hash,
    /// a field out of bounds).
    Invalid(InvalidEvent),
    /// The encoded event exceeds the journal's configured body bound.
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// [`EventStore::push_batch`]: the scratch buffer is shorter than the batch's
    /// encodings.
    ScratchTooSmall {
        /// Bytes the encodings take.
        needed: usize,
    },
    /// `CH` channels have events pending and this event's channel is not one of
    /// them: keep the event and push it again after acks (as for `Full`).
    TooManyChannels {
        /// `CH`.
        capacity: usize,
    },
}

impl core::fmt::Display for PushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PushError::Full => f.write_str("the store is full: ack events first"),
            PushError::Invalid(e) => write!(f, "invalid event: {e}"),
            PushError::TooLarge { len, max } => {
                write!(f, "encoded event of {len} B exceeds the bound of {max} B")
            }
            PushError::ScratchTooSmall { needed } => {
                write!(f, "the batch needs {needed} B of scratch")
            }
            PushError::TooManyChannels { capacity } => write!(
                f,
                "{capacity} channels have events pending already: ack events first"
            ),
        }
    }
}

impl core::error::Error for PushError {}

/// Whether the store knows which monitor updates are in flight (invariant I5).
///
/// In-flight updates live in RAM, so after [`open`](EventStore::open) the store
/// cannot know them: until the integrator declares them
/// ([`restore_in_flight`](EventStore::restore_in_flight)) or that there are none
/// ([`no_updates_in_flight`](EventStore::no_updates_in_flight)), every HTLC event is
/// held back. The unsafe order (release before the declaration) cannot release an
/// HTLC event: it fails closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InFlightState {
    /// Just opened: nothing declared yet. Every HTLC event is held back; other
    /// events flow.
    Undeclared,
    /// Declared: HTLC events of channels with an update in flight are held back.
    Declared,
    /// A [`begin_update`](EventStore::begin_update) (or a declaration) was refused
    /// because `K` channels were gated: every HTLC event is held back until the
    /// in-flight updates are declared again. Nothing was dropped.
    Overflowed,
}

/// One pending event as [`EventStore::pending`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PendingInfo {
    /// Its id.
    pub id: EventId,
    /// Its channel.
    pub channel: ChannelId,
    /// Its kind.
    pub kind: EventKind,
    /// Whether it was released in this run (since the open or the last
    /// [`rewind`](EventStore::rewind)).
    pub released: bool,
    /// Whether [`release_next`](EventStore::release_next) holds it back now (an HTLC
    /// event of a gated channel, or any HTLC event while the in-flight updates are
    /// undeclared).
    pub held: bool,
}

/// Sources [`EventStore::ack_batch`] acks per sync.
pub const ACK_CHUNK: usize = 32;

/// Validates and encodes `event` into the front of `buf`.
pub(crate) fn encode<'a>(event: &MonitorEvent, buf: &'a mut [u8]) -> Result<&'a [u8], PushError> {
    match event.encode(buf) {
        Ok(b) => Ok(b),
        Err(EncodeError::Invalid(e)) => Err(PushError::Invalid(e)),
        Err(_) => Err(PushError::TooLarge {
            len: event.encoded_len(),
            max: MAX_ENCODED_LEN,
        }),
    }
}

pub(crate) fn journal_push_error(e: journal::AppendError) -> PushError {
    match e {
        journal::AppendError::TooLarge { len, max } => PushError::TooLarge { len, max },
        _ => PushError::Full,
    }
}
