//! In-flight monitor updates: the gate that holds back HTLC events (invariant I5).
//!
//! A monitor update that is not yet durably applied is *in flight*. While any update
//! of a channel is in flight, that channel's HTLC events are not released, so
//! nothing is failed or claimed upstream from state a crash could still lose. Both
//! sets live in RAM only: after a restart the integrator declares again what is in
//! flight (see [`EventStore::restore_in_flight`](crate::EventStore::restore_in_flight)).
//!
//! Two tables:
//!
//! | type | keyed by | completion | `K` counts | RAM per entry |
//! |---|---|---|---|---|
//! | [`ChannelGates`] (used by [`EventStore`](crate::EventStore)) | channel | cumulative: completing update `u` completes every update `<= u` of the channel (LDK's monotonic update ids) | channels with an update in flight | 48 B |
//! | [`InFlight`] | (channel, update) | exact: only that update | updates in flight | 40 B |
//!
//! Sizing `K` of [`ChannelGates`]: the most channels that can have a monitor update
//! in flight at the same time, which is at most the number of channel monitors the
//! device keeps. Any number of updates of one channel share its one entry.

use core::fmt;

use crate::event::ChannelId;

/// The set of in-flight monitor updates, at most `K` at a time, keyed by channel
/// and update id, with exact completion. [`EventStore`](crate::EventStore) uses
/// [`ChannelGates`] (cumulative completion, `K` channels) instead.
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
    /// This update of this channel is already in flight ([`ChannelGates`]: an
    /// update at least as high of the channel is, so the gate already covers it).
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

/// The in-flight monitor updates of one channel, as [`ChannelGates`] keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpdateRange {
    /// The channel.
    pub channel: ChannelId,
    /// No update below this one is in flight (updates up to it completed, or it is
    /// the first one begun).
    pub lowest: u64,
    /// The highest update id begun or declared: the gate lifts when an update
    /// `>= highest` completes.
    pub highest: u64,
}

/// Per channel, the monitor updates in flight, with LDK's cumulative completion:
/// update ids are monotonic per channel and the completion of update `u` covers
/// every update `<= u` of that channel. A channel is gated (its HTLC events held
/// back, invariant I5) from the first [`begin`](Self::begin) until an update at
/// least as high as every one begun completes.
///
/// Holds at most `K` channels at a time, whatever the number of updates each has in
/// flight; see the [module docs](self) for sizing `K`. RAM: `K` times
/// `size_of::<UpdateRange>()` (48 B) plus a length. A full table refuses with
/// [`InFlightError::Full`] and changes nothing: it never drops a gate to make room.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelGates<const K: usize> {
    channels: heapless::Vec<UpdateRange, K>,
}

impl<const K: usize> ChannelGates<K> {
    /// No channel gated.
    pub const fn new() -> Self {
        ChannelGates {
            channels: heapless::Vec::new(),
        }
    }

    fn position(&self, channel: &ChannelId) -> Option<usize> {
        self.channels.iter().position(|r| r.channel == *channel)
    }

    /// Update `update_id` of `channel` is in flight: the channel's HTLC events are
    /// held back until an update `>= update_id` (and `>=` every other one begun)
    /// completes.
    ///
    /// `Err(Duplicate)` when the channel already has an update `>= update_id` in
    /// flight (the gate already covers it); `Err(Full)` when `K` other channels are
    /// gated. Either changes nothing.
    pub fn begin(&mut self, channel: ChannelId, update_id: u64) -> Result<(), InFlightError> {
        match self.position(&channel) {
            Some(i) => {
                let r = &mut self.channels[i];
                if update_id <= r.highest {
                    return Err(InFlightError::Duplicate);
                }
                r.highest = update_id;
                Ok(())
            }
            None => self
                .channels
                .push(UpdateRange {
                    channel,
                    lowest: update_id,
                    highest: update_id,
                })
                .map_err(|_| InFlightError::Full),
        }
    }

    /// Update `update_id` of `channel` completed, and with it every update `<=
    /// update_id` of the channel. Returns whether that covered an update still in
    /// flight (`false`: the channel had nothing in flight at or below `update_id`;
    /// nothing changed). The gate lifts when `update_id >= highest`.
    pub fn complete(&mut self, channel: ChannelId, update_id: u64) -> bool {
        let Some(i) = self.position(&channel) else {
            return false;
        };
        let r = &mut self.channels[i];
        if update_id < r.lowest {
            return false;
        }
        if update_id >= r.highest {
            self.channels.swap_remove(i);
        } else {
            r.lowest = update_id + 1;
        }
        true
    }

    /// Declares several updates in flight at once (after a restart): each is merged
    /// into its channel's range, never narrowing it. All or nothing: `Err(Full)`
    /// when the channels not yet gated do not all fit; nothing changes then.
    pub fn declare(&mut self, updates: &[(ChannelId, u64)]) -> Result<(), InFlightError> {
        let mut new = 0;
        for (i, (c, _)) in updates.iter().enumerate() {
            let seen = updates[..i].iter().any(|(d, _)| d == c);
            if !seen && self.position(c).is_none() {
                new += 1;
            }
        }
        if self.channels.len() + new > K {
            return Err(InFlightError::Full);
        }
        for &(channel, u) in updates {
            match self.position(&channel) {
                Some(i) => {
                    let r = &mut self.channels[i];
                    r.lowest = r.lowest.min(u);
                    r.highest = r.highest.max(u);
                }
                None => {
                    // Cannot fail: room was counted above.
                    let _ = self.channels.push(UpdateRange {
                        channel,
                        lowest: u,
                        highest: u,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether `channel` has an update in flight: its HTLC events are held back.
    pub fn is_gated(&self, channel: &ChannelId) -> bool {
        self.position(channel).is_some()
    }

    /// The in-flight range of `channel`, if it is gated.
    pub fn range(&self, channel: &ChannelId) -> Option<UpdateRange> {
        self.position(channel).map(|i| self.channels[i])
    }

    /// The gated channels and their in-flight ranges, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &UpdateRange> + '_ {
        self.channels.iter()
    }

    /// Number of gated channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether no channel is gated.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Whether `K` channels are gated: a [`begin`](Self::begin) on another channel
    /// fails.
    pub fn is_full(&self) -> bool {
        self.channels.is_full()
    }

    /// The most channels that can be gated at once: `K`.
    pub const fn capacity(&self) -> usize {
        K
    }
}

impl<const K: usize> Default for ChannelGates<K> {
    fn default() -> Self {
        Self::new()
    }
}

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

    /// I5: LDK's cumulative completion: completing 7 completes 6 and 7.
    #[test]
    fn i5_cumulative_completion() {
        let mut g = ChannelGates::<2>::new();
        g.begin(A, 6).unwrap();
        g.begin(A, 7).unwrap();
        assert!(g.complete(A, 7), "7 covers 6 and 7");
        assert!(!g.is_gated(&A), "I5: nothing of A is in flight any more");
        assert!(!g.complete(A, 6), "6 was completed by 7");
        assert!(g.is_empty());
    }

    /// I5: a completion below the highest update narrows the range but keeps the
    /// gate; a completion below the range changes nothing.
    #[test]
    fn i5_partial_completion_keeps_the_gate() {
        let mut g = ChannelGates::<2>::new();
        g.begin(A, 6).unwrap();
        g.begin(A, 8).unwrap();
        g.begin(B, 1).unwrap();
        assert!(g.complete(A, 7));
        assert!(g.is_gated(&A), "I5: update 8 is still in flight");
        let r = g.range(&A).unwrap();
        assert_eq!((r.lowest, r.highest), (8, 8));
        let before = g.clone();
        assert!(!g.complete(A, 7), "nothing at or below 7 is in flight");
        assert!(!g.complete(ChannelId([0xcc; 32]), 9));
        assert_eq!(g, before);
        assert_eq!(g.begin(A, 8), Err(InFlightError::Duplicate));
        assert_eq!(g.begin(A, 5), Err(InFlightError::Duplicate));
        assert_eq!(g, before, "a refused begin changes nothing");
        assert!(g.complete(A, 100));
        assert!(!g.is_gated(&A));
        assert!(g.is_gated(&B), "I5: other channels keep their gates");
    }

    /// I6: updates of one channel share one entry; a full table refuses another
    /// channel and keeps every gate it has.
    #[test]
    fn i6_full_gates_refuse_and_drop_nothing() {
        let mut g = ChannelGates::<2>::new();
        for u in 1..=50 {
            g.begin(A, u).unwrap();
        }
        g.begin(B, 1).unwrap();
        assert!(g.is_full());
        let before = g.clone();
        let c = ChannelId([0xcc; 32]);
        assert_eq!(g.begin(c, 1), Err(InFlightError::Full));
        assert_eq!(g.declare(&[(A, 51), (c, 1)]), Err(InFlightError::Full));
        assert_eq!(g, before, "I6: nothing changed, no gate dropped");
        assert_eq!(g.capacity(), 2);
        assert_eq!(g.iter().count(), 2);
    }

    /// I5: declaring after a restart merges into the ranges, never narrows them,
    /// and counts a channel named twice once.
    #[test]
    fn i5_declare_merges_all_or_nothing() {
        let mut g = ChannelGates::<2>::new();
        g.begin(A, 5).unwrap();
        g.declare(&[(A, 3), (B, 9), (B, 4), (A, 4)]).unwrap();
        assert_eq!(g.range(&A).map(|r| (r.lowest, r.highest)), Some((3, 5)));
        assert_eq!(g.range(&B).map(|r| (r.lowest, r.highest)), Some((4, 9)));
        g.declare(&[]).unwrap();
        assert_eq!(g.len(), 2);
        assert!(g.complete(B, 8));
        assert!(g.is_gated(&B));
        assert!(g.complete(B, 9));
        assert!(!g.is_gated(&B));
    }

    /// I6: the RAM per gated channel quoted in the docs.
    #[test]
    fn i6_ram_per_gated_channel() {
        let per = core::mem::size_of::<ChannelGates<9>>() - core::mem::size_of::<ChannelGates<1>>();
        assert_eq!(per % 8, 0);
        std::println!(
            "ChannelGates: {} B per gated channel (UpdateRange), ChannelGates<8>: {} B",
            per / 8,
            core::mem::size_of::<ChannelGates<8>>()
        );
        assert_eq!(per / 8, core::mem::size_of::<UpdateRange>());
        assert_eq!(per / 8, 48, "the figure in the module docs");
    }
}
