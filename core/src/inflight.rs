//! In-flight monitor updates: the gate that holds back HTLC events (invariant I5).
//!
//! A monitor update that is not yet durably applied is *in flight*. While any update
//! of a channel is in flight, that channel's HTLC events are not released, so
//! nothing is failed or claimed upstream from state a crash could still lose. The
//! set lives in RAM only: after a restart nothing is in flight.

use core::fmt;

use crate::event::ChannelId;

/// The set of in-flight monitor updates, at most `K` at a time, keyed by channel
/// and update id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InFlight<const K: usize> {
    updates: heapless::Vec<(ChannelId, u64), K>,
}

impl<const K: usize> InFlight<K> {
    /// An empty set.
    pub const fn new() -> Self {
        InFlight {
            updates: heapless::Vec::new(),
        }
    }

    /// Marks update `update_id` of `channel` as in flight, gating the channel's HTLC
    /// events until it completes. Changes nothing on `Err`.
    pub fn begin(&mut self, channel: ChannelId, update_id: u64) -> Result<(), InFlightError> {
        if self.updates.contains(&(channel, update_id)) {
            return Err(InFlightError::Duplicate);
        }
        self.updates
            .push((channel, update_id))
            .map_err(|_| InFlightError::Full)
    }

    /// Marks update `update_id` of `channel` as complete. Returns whether it was in
    /// flight. Only that exact update completes; others of the channel stay in
    /// flight.
    pub fn complete(&mut self, channel: ChannelId, update_id: u64) -> bool {
        match self.updates.iter().position(|u| *u == (channel, update_id)) {
            Some(i) => {
                self.updates.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether any update of `channel` is in flight: its HTLC events are held back.
    pub fn is_gated(&self, channel: &ChannelId) -> bool {
        self.updates.iter().any(|(c, _)| c == channel)
    }

    /// Whether update `update_id` of `channel` is in flight.
    pub fn contains(&self, channel: &ChannelId, update_id: u64) -> bool {
        self.updates.contains(&(*channel, update_id))
    }

    /// Number of updates in flight.
    pub fn len(&self) -> usize {
        self.updates.len()
    }

    /// Whether no update is in flight.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// The most updates that can be in flight at once: `K`.
    pub const fn capacity(&self) -> usize {
        K
    }
}

impl<const K: usize> Default for InFlight<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`InFlight::begin`] failed; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InFlightError {
    /// `K` updates are already in flight.
    Full,
    /// This update of this channel is already in flight.
    Duplicate,
}

impl fmt::Display for InFlightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InFlightError::Full => f.write_str("too many monitor updates in flight"),
            InFlightError::Duplicate => f.write_str("monitor update already in flight"),
        }
    }
}

impl core::error::Error for InFlightError {}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ChannelId = ChannelId([0xaa; 32]);
    const B: ChannelId = ChannelId([0xbb; 32]);

    #[test]
    fn i5_gate_holds_until_every_update_of_the_channel_completes() {
        let mut f = InFlight::<4>::new();
        assert!(!f.is_gated(&A));
        f.begin(A, 1).unwrap();
        f.begin(A, 2).unwrap();
        assert!(f.is_gated(&A));
        assert!(!f.is_gated(&B), "I5: other channels are not gated");
        assert!(f.complete(A, 1));
        assert!(f.is_gated(&A), "I5: update 2 is still in flight");
        assert!(f.complete(A, 2));
        assert!(!f.is_gated(&A));
        assert!(f.is_empty());
    }

    #[test]
    fn i5_complete_of_an_unknown_update_changes_nothing() {
        let mut f = InFlight::<4>::new();
        f.begin(A, 1).unwrap();
        assert!(!f.complete(A, 2));
        assert!(!f.complete(B, 1));
        assert!(f.is_gated(&A));
        assert!(f.contains(&A, 1));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn i6_full_and_duplicate_are_typed_and_change_nothing() {
        let mut f = InFlight::<2>::new();
        f.begin(A, 1).unwrap();
        assert_eq!(f.begin(A, 1), Err(InFlightError::Duplicate));
        f.begin(B, 1).unwrap();
        let before = f.clone();
        assert_eq!(f.begin(B, 2), Err(InFlightError::Full));
        assert_eq!(f.begin(A, 1), Err(InFlightError::Duplicate));
        assert_eq!(f, before);
        assert_eq!(f.len(), f.capacity());
    }
}
