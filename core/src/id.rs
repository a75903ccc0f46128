//! Event ids, and what an ack names: an id with its channel.

use crate::event::ChannelId;

/// The unique id of a monitor event: assigned at push, strictly increasing in push
/// order, never reused (across restarts, compaction and a journal whose every event
/// was acked and erased: invariant I3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EventId(pub u64);

impl EventId {
    /// The id after this one.
    pub const fn next(self) -> EventId {
        EventId(self.0 + 1)
    }
}

impl core::fmt::Display for EventId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What an ack names: the event's id and the channel it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    any(test, feature = "serde"),
    derive(serde::Serialize, serde::Deserialize)
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MonitorEventSource {
    /// The channel of the event.
    pub channel: ChannelId,
    /// The id the event got when it was pushed.
    pub id: EventId,
}
