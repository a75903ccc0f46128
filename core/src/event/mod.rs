//! Monitor events: what a channel monitor tells the channel manager, and their
//! encoding.
//!
//! The types follow the Lightning Dev Kit's persistent monitor events: an HTLC was
//! resolved (claimed with a preimage or failed with a reason), a commitment
//! transaction confirmed, the holder force-closed, a monitor update completed.
//!
//! # Encoding
//!
//! An event is encoded in postcard's wire format (varints for integers, one varint
//! for an enum's variant index, a `0`/`1` byte for `bool` and for an `Option`'s tag,
//! fixed 32-byte arrays without a length, a varint length before the failure
//! data), written and read by the crate's own codec: no serde code on the device.
//! The tests prove the bytes equal postcard's (golden arrays and random events)
//! and that both decoders accept the same byte strings. The encoding is pinned by
//! golden byte arrays in the tests: changing it is a format change of the journal.
//! With the feature `serde` the types also derive serde's traits.
//!
//! | event | layout (fields in order) |
//! |---|---|
//! | `0` [`HtlcResolved`](MonitorEvent::HtlcResolved) | channel 32, payment hash 32, amount varint, [`HtlcSource`], [`HtlcOutcome`], on chain bool, user channel id `Option<u128>` |
//! | `1` [`CommitmentTxConfirmed`](MonitorEvent::CommitmentTxConfirmed) | channel 32 |
//! | `2` [`HolderForceClosed`](MonitorEvent::HolderForceClosed) | channel 32, [`CloseReason`] |
//! | `3` [`UpdateCompleted`](MonitorEvent::UpdateCompleted) | channel 32, update id varint |
//!
//! [`MonitorEvent::decode`] accepts exactly the byte strings that
//! [`MonitorEvent::encode`] produces for a valid event: a truncated, overlong,
//! non-canonical (for example an overlong varint) or invalid encoding is a typed
//! [`DecodeError`], never a panic (invariant I9). So every event has exactly one
//! encoding, at most [`MAX_ENCODED_LEN`] bytes long.
//!
//! # Bounds
//!
//! | what | bound |
//! |---|---|
//! | failure data ([`FailureReason::data`]) | at most [`MAX_FAILURE_DATA`] bytes |
//! | [`HtlcResolution::amount_msat`] | greater than zero |
//! | preimage of a claim | SHA-256 of it equals the payment hash (feature `validate`, default) |
//! | an encoded event | at most [`MAX_ENCODED_LEN`] bytes |
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `types.rs` | the event types, the bounds, [`MonitorEvent::validate`] |
//! | `codec.rs` | [`MonitorEvent::encode`] and [`decode`](MonitorEvent::decode), [`MAX_ENCODED_LEN`] |
//! | `error.rs` | [`InvalidEvent`], [`EncodeError`], [`DecodeError`] |
//! | `tests.rs` | golden byte arrays of every kind, bounds, decoder property tests, the codec against postcard |

mod codec;
mod error;
mod types;

/// Re-exported from [`crate::id`], where it lives next to [`EventId`](crate::EventId).
pub use crate::id::MonitorEventSource;
pub use codec::MAX_ENCODED_LEN;
pub(crate) use codec::{check_encoding, Checked};
pub use error::{DecodeError, EncodeError, InvalidEvent};
pub use types::MAX_FAILURE_DATA;
pub use types::{ChannelId, CloseReason, EventKind, FailureReason, HtlcOutcome};
pub use types::{HtlcResolution, HtlcSource, MonitorEvent, PaymentHash, PaymentPreimage};

#[cfg(test)]
mod tests;
