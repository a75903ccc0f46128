//! The consumer's side: hold an ack until it is safe to send.
//!
//! An acked event is never provided again (invariant I2), so the consumer must not
//! ack before it has irrevocably processed what the event led to: the user handled
//! the follow-up event (PaymentSent, PaymentFailed, PaymentForwarded), and for a
//! forward every inbound HTLC (several for MPP or trampoline) was durably removed
//! upstream. [`AckBarrier`] holds each ack with its [`Condition`]s and yields it
//! once all of them are met.
//!
//! Conditions met before an ack is held do not count: hold first, then
//! [`satisfy`](AckBarrier::satisfy). A forward's event names one inbound HTLC
//! ([`HtlcSource::Forward`](crate::HtlcSource::Forward)); the rest of an MPP or
//! trampoline set comes from the consumer's own state, at hold time or later with
//! [`add_conditions`](AckBarrier::add_conditions).
//!
//! # Sizing and RAM
//!
//! `C`, the conditions per held ack, must cover the largest set the consumer holds
//! one ack for: the inbound HTLCs of one forward (its MPP parts, or the HTLCs a
//! trampoline hop received) plus one for the user's follow-up event. A larger set
//! is refused whole ([`BarrierError::TooManyConditions`], nothing changes): track
//! such a set yourself and hold the ack on one [`Condition::EventProcessed`] token
//! that you satisfy when the whole set is removed. `M`: the most acks held at once
//! (events released and not yet acked). `CH` (default `M`): the most distinct
//! channels the held acks name at once, as their source or in a condition; past
//! it `hold` answers [`BarrierError::ChannelsFull`]. A node's channel count is
//! enough (a consumer that holds thousands of acks of a force-close burst names
//! few channels).
//!
//! RAM: each channel's 32 B id is kept once, in a table of `CH`; a held ack keeps
//! the event's id, its channel's place in that table and 16 B per condition.
//! `size_of::<AckBarrier<M, C, CH>>()` is `M * (24 + 16 * C) + CH * 36 + 16` bytes
//! on a 64-bit host (4-byte lengths on 32-bit targets): `AckBarrier<32, 4>` is
//! 3 984 B; `AckBarrier<4096, 1, 64>`, thousands held on 64 channels, 166 160 B
//! (40.6 B per held ack). A test prints these figures.
//!
//! # After a restart
//!
//! The barrier lives in RAM. If the consumer restarts, the events come again: after
//! a device restart every un-acked event is replayed; if only the consumer
//! restarted, [`EventStore::rewind`](crate::EventStore::rewind) releases them
//! again without reopening. The consumer holds each one again with the conditions
//! its own durable state says are still unmet (what it already saw happen must not
//! be waited for again, or the ack never comes):
//!
//! ```
//! use monitor_events::{AckBarrier, ChannelId, Condition, EventId, MonitorEventSource};
//!
//! let (a, b) = (ChannelId([0xaa; 32]), ChannelId([0xbb; 32]));
//! let claim = MonitorEventSource { channel: ChannelId([1; 32]), id: EventId(5) };
//! let forwarded = Condition::EventProcessed(77); // PaymentForwarded
//! let parts = [
//!     Condition::HtlcRemoved { channel: a, htlc_id: 1 },
//!     Condition::HtlcRemoved { channel: b, htlc_id: 2 },
//!     Condition::HtlcRemoved { channel: b, htlc_id: 3 },
//! ];
//!
//! // Before the restart: a three-part MPP forward, parts learned one by one.
//! let mut barrier = AckBarrier::<8, 4>::new();
//! barrier.hold(claim, &[forwarded, parts[0]]).unwrap();
//! barrier.add_conditions(&claim, &parts[1..]).unwrap();
//! barrier.satisfy(&parts[0]);
//! barrier.satisfy(&forwarded);
//! let unmet: Vec<Condition> = barrier.waiting_for(&claim).unwrap().collect();
//! assert_eq!(unmet, &parts[1..]);
//!
//! // The consumer restarts: the barrier is gone. Its own state records what it
//! // saw (PaymentForwarded handled, part 0 removed); event 5 is released again.
//! let mut barrier = AckBarrier::<8, 4>::new();
//! let seen = [forwarded, parts[0]];
//! let unmet: Vec<Condition> = [forwarded, parts[0], parts[1], parts[2]]
//!     .into_iter()
//!     .filter(|c| !seen.contains(c))
//!     .collect();
//! barrier.hold(claim, &unmet).unwrap();
//! assert_eq!(barrier.next_ready(), None, "parts 1 and 2 are still in place");
//! barrier.satisfy(&parts[1]);
//! barrier.satisfy(&parts[2]);
//! assert_eq!(barrier.next_ready(), Some(claim)); // now ack it
//! ```

use core::fmt;

use crate::event::{ChannelId, MonitorEventSource};
use crate::EventId;

/// Something that must happen before a held ack may be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Condition {
    /// The user processed a follow-up event, named by a token the consumer chooses
    /// (for example the id of the PaymentSent event).
    EventProcessed(u64),
    /// An inbound HTLC of a forward was durably removed from its channel.
    HtlcRemoved {
        /// The inbound channel.
        channel: ChannelId,
        /// The HTLC's id on that channel.
        htlc_id: u64,
    },
}

/// A condition as a held ack keeps it: an HTLC's channel by its place in the
/// barrier's channel table (2 bytes instead of 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Slot {
    Event(u64),
    Htlc { channel: u16, htlc_id: u64 },
}

/// One held ack: the event's id, its channel's place in the table, and what it
/// still waits for.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Held<const C: usize> {
    id: EventId,
    channel: u16,
    /// Unmet, distinct.
    waiting: heapless::Vec<Slot, C>,
}

/// A channel the held acks name (as their source or in a condition), and how
/// many times they do; a slot with no reference is free for another channel.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Channel {
    id: ChannelId,
    refs: u32,
}

/// Number of conditions of `new` that `waits` does not hold yet (each counted
/// once).
fn fresh(waits: impl Fn(&Condition) -> bool, new: &[Condition]) -> usize {
    new.iter()
        .enumerate()
        .filter(|(i, c)| !waits(c) && !new[..*i].contains(c))
        .count()
}

/// Holds up to `M` acks, each waiting for up to `C` conditions, and yields each ack
/// once all its conditions are met. The channels the held acks name are kept once,
/// in a table of `CH` (default `M`). Memory is fixed at compile time (invariant
/// I6); see the [module docs](self) for sizing and RAM.
#[derive(Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckBarrier<const M: usize, const C: usize = 4, const CH: usize = M> {
    /// In hold order.
    held: heapless::Vec<Held<C>, M>,
    channels: heapless::Vec<Channel, CH>,
}

impl<const M: usize, const C: usize, const CH: usize> AckBarrier<M, C, CH> {
    /// An empty barrier.
    pub const fn new() -> Self {
        const { assert!(CH <= 1 << 16, "a channel table of at most 65 536") };
        AckBarrier {
            held: heapless::Vec::new(),
            channels: heapless::Vec::new(),
        }
    }

    /// Holds the ack of `source` until every one of `conditions` is met (a
    /// condition named twice counts once). With no conditions the ack is ready at
    /// once. Changes nothing on `Err`.
    pub fn hold(
        &mut self,
        source: MonitorEventSource,
        conditions: &[Condition],
    ) -> Result<(), BarrierError> {
        if self.is_held(&source) {
            return Err(BarrierError::AlreadyHeld);
        }
        if fresh(|_| false, conditions) > C {
            return Err(BarrierError::TooManyConditions);
        }
        if self.held.is_full() {
            return Err(BarrierError::Full);
        }
        if self.missing(Some(&source.channel), conditions, |_| false) > self.free_channels() {
            return Err(BarrierError::ChannelsFull);
        }
        let channel = self.intern(&source.channel);
        let mut held = Held {
            id: source.id,
            channel,
            waiting: heapless::Vec::new(),
        };
        for (i, c) in conditions.iter().enumerate() {
            if !conditions[..i].contains(c) {
                let slot = self.intern_condition(c);
                // Cannot fail: counted above.
                let _ = held.waiting.push(slot);
            }
        }
        let _ = self.held.push(held);
        Ok(())
    }

    /// Adds conditions to the held ack of `source`: the further parts of an MPP or
    /// trampoline set, learned after the hold. Conditions it already waits for
    /// count once. All or nothing: `NotHeld`, `TooManyConditions` when the unmet
    /// ones would exceed `C`, or `ChannelsFull`; nothing changes then.
    pub fn add_conditions(
        &mut self,
        source: &MonitorEventSource,
        conditions: &[Condition],
    ) -> Result<(), BarrierError> {
        let k = self.position(source).ok_or(BarrierError::NotHeld)?;
        let waits = |c: &Condition| self.waits(&self.held[k], c);
        if self.held[k].waiting.len() + fresh(waits, conditions) > C {
            return Err(BarrierError::TooManyConditions);
        }
        if self.missing(None, conditions, waits) > self.free_channels() {
            return Err(BarrierError::ChannelsFull);
        }
        for (i, c) in conditions.iter().enumerate() {
            if !self.waits(&self.held[k], c) && !conditions[..i].contains(c) {
                let slot = self.intern_condition(c);
                // Cannot fail: counted above.
                let _ = self.held[k].waiting.push(slot);
            }
        }
        Ok(())
    }

    /// Marks `condition` as met in every held ack that waits for it. Returns how many
    /// held acks waited for it (0 if none did).
    pub fn satisfy(&mut self, condition: &Condition) -> usize {
        let slot = match *condition {
            Condition::EventProcessed(token) => Slot::Event(token),
            Condition::HtlcRemoved { channel, htlc_id } => match self.find(&channel) {
                Some(channel) => Slot::Htlc { channel, htlc_id },
                None => return 0,
            },
        };
        let mut count = 0;
        for held in self.held.iter_mut() {
            if let Some(i) = held.waiting.iter().position(|s| *s == slot) {
                held.waiting.remove(i);
                count += 1;
            }
        }
        if let Slot::Htlc { channel, .. } = slot {
            self.channels[usize::from(channel)].refs -= count as u32;
        }
        count
    }

    /// What the held ack of `source` still waits for, in the order the conditions
    /// were added; `None` if it is not held. An empty iterator: it is ready.
    pub fn waiting_for(&self, source: &MonitorEventSource) -> Option<Waiting<'_>> {
        let k = self.position(source)?;
        Some(self.waiting(&self.held[k]))
    }

    /// Every held ack with what it still waits for, in hold order: what a consumer
    /// may persist to rebuild its holds after a restart.
    pub fn iter(&self) -> impl Iterator<Item = (MonitorEventSource, Waiting<'_>)> + '_ {
        self.held.iter().map(|h| (self.source(h), self.waiting(h)))
    }

    /// Yields and forgets the first held ack (in hold order) whose conditions are all
    /// met. The caller sends it.
    pub fn next_ready(&mut self) -> Option<MonitorEventSource> {
        let i = self.held.iter().position(|h| h.waiting.is_empty())?;
        let held = self.held.remove(i);
        let source = self.source(&held);
        self.channels[usize::from(held.channel)].refs -= 1;
        Some(source)
    }

    /// Whether the ack of `source` is held.
    pub fn is_held(&self, source: &MonitorEventSource) -> bool {
        self.position(source).is_some()
    }

    /// Number of held acks.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no ack is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The most acks that can be held: `M`.
    pub const fn capacity(&self) -> usize {
        M
    }

    /// The most conditions one held ack can wait for: `C`.
    pub const fn conditions_per_ack(&self) -> usize {
        C
    }

    /// The most distinct channels the held acks can name at once: `CH`.
    pub const fn channel_capacity(&self) -> usize {
        CH
    }

    /// Distinct channels the held acks name now.
    pub fn channels_named(&self) -> usize {
        self.channels.iter().filter(|c| c.refs > 0).count()
    }

    /// Where the held ack of `source` is.
    fn position(&self, source: &MonitorEventSource) -> Option<usize> {
        let channel = self.find(&source.channel)?;
        self.held
            .iter()
            .position(|h| h.channel == channel && h.id == source.id)
    }

    fn source(&self, held: &Held<C>) -> MonitorEventSource {
        MonitorEventSource {
            channel: self.channels[usize::from(held.channel)].id,
            id: held.id,
        }
    }

    fn waiting<'a>(&'a self, held: &'a Held<C>) -> Waiting<'a> {
        Waiting {
            slots: held.waiting.iter(),
            channels: &self.channels,
        }
    }

    /// Whether `held` waits for `condition`.
    fn waits(&self, held: &Held<C>, condition: &Condition) -> bool {
        self.waiting(held).any(|c| c == *condition)
    }

    /// The table slot of `channel`, if a held ack names it.
    fn find(&self, channel: &ChannelId) -> Option<u16> {
        self.channels
            .iter()
            .position(|c| c.refs > 0 && c.id == *channel)
            .map(|i| i as u16)
    }

    /// Table slots free for a channel not named yet.
    fn free_channels(&self) -> usize {
        CH - self.channels_named()
    }

    /// Channels a hold or an addition would name that the table lacks, each
    /// counted once: `source`, then the channels of the conditions it would add
    /// (those `waits` says are not held yet).
    fn missing(
        &self,
        source: Option<&ChannelId>,
        conditions: &[Condition],
        waits: impl Fn(&Condition) -> bool,
    ) -> usize {
        let added = |i: usize| {
            let c = &conditions[i];
            match c {
                Condition::HtlcRemoved { channel, .. }
                    if !waits(c) && !conditions[..i].contains(c) =>
                {
                    Some(channel)
                }
                _ => None,
            }
        };
        let new = |ch: &ChannelId| self.find(ch).is_none();
        let mut count = usize::from(source.is_some_and(new));
        for i in 0..conditions.len() {
            let Some(ch) = added(i) else { continue };
            let seen = source == Some(ch) || (0..i).any(|k| added(k) == Some(ch));
            if new(ch) && !seen {
                count += 1;
            }
        }
        count
    }

    /// Names `channel` once more: its slot (the one it has, a free one, or a new
    /// one). The caller checked there is room.
    fn intern(&mut self, channel: &ChannelId) -> u16 {
        if let Some(i) = self.find(channel) {
            self.channels[usize::from(i)].refs += 1;
            return i;
        }
        let entry = Channel {
            id: *channel,
            refs: 1,
        };
        if let Some(i) = self.channels.iter().position(|c| c.refs == 0) {
            self.channels[i] = entry;
            return i as u16;
        }
        // Cannot fail: the caller checked there is room.
        let _ = self.channels.push(entry);
        (self.channels.len() - 1) as u16
    }

    fn intern_condition(&mut self, condition: &Condition) -> Slot {
        match *condition {
            Condition::EventProcessed(token) => Slot::Event(token),
            Condition::HtlcRemoved { channel, htlc_id } => Slot::Htlc {
                channel: self.intern(&channel),
                htlc_id,
            },
        }
    }
}

impl<const M: usize, const C: usize, const CH: usize> Default for AckBarrier<M, C, CH> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const M: usize, const C: usize, const CH: usize> PartialEq for AckBarrier<M, C, CH> {
    /// The same holds, in the same order, waiting for the same conditions in the
    /// same order (wherever the channel table keeps the channels).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, wa), (b, wb))| a == b && wa.eq(wb))
    }
}

impl<const M: usize, const C: usize, const CH: usize> Eq for AckBarrier<M, C, CH> {}

impl<const M: usize, const C: usize, const CH: usize> fmt::Debug for AckBarrier<M, C, CH> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// What a held ack still waits for (see [`AckBarrier::waiting_for`]), in the
/// order the conditions were added.
#[derive(Clone)]
pub struct Waiting<'a> {
    slots: core::slice::Iter<'a, Slot>,
    channels: &'a [Channel],
}

impl Iterator for Waiting<'_> {
    type Item = Condition;

    fn next(&mut self) -> Option<Condition> {
        self.slots.next().map(|s| match *s {
            Slot::Event(token) => Condition::EventProcessed(token),
            Slot::Htlc { channel, htlc_id } => Condition::HtlcRemoved {
                channel: self.channels[usize::from(channel)].id,
                htlc_id,
            },
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl ExactSizeIterator for Waiting<'_> {}

impl fmt::Debug for Waiting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// Why [`AckBarrier::hold`] or [`AckBarrier::add_conditions`] failed; nothing
/// changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BarrierError {
    /// `M` acks are already held.
    Full,
    /// More than `C` distinct unmet conditions.
    TooManyConditions,
    /// The ack of this source is already held (for example, the event was released
    /// again after the producer restarted).
    AlreadyHeld,
    /// [`add_conditions`](AckBarrier::add_conditions): the ack of this source is
    /// not held.
    NotHeld,
    /// The held acks would name more than `CH` distinct channels.
    ChannelsFull,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Full => "ack barrier is full",
            BarrierError::TooManyConditions => "too many conditions for one ack",
            BarrierError::AlreadyHeld => "ack is already held",
            BarrierError::NotHeld => "ack is not held",
            BarrierError::ChannelsFull => "ack barrier's channel table is full",
        })
    }
}

impl core::error::Error for BarrierError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventId;

    const A: ChannelId = ChannelId([0xaa; 32]);
    const B: ChannelId = ChannelId([0xbb; 32]);

    fn src(id: u64) -> MonitorEventSource {
        MonitorEventSource {
            channel: A,
            id: EventId(id),
        }
    }

    fn removed(channel: ChannelId, htlc_id: u64) -> Condition {
        Condition::HtlcRemoved { channel, htlc_id }
    }

    fn waits<const M: usize, const C: usize, const CH: usize>(
        b: &AckBarrier<M, C, CH>,
        id: u64,
    ) -> Option<Vec<Condition>> {
        b.waiting_for(&src(id)).map(|w| w.collect())
    }

    #[test]
    fn i2_ack_without_conditions_is_ready_at_once() {
        let mut b = AckBarrier::<2>::new();
        b.hold(src(3), &[]).unwrap();
        assert_eq!(b.next_ready(), Some(src(3)));
        assert_eq!(b.next_ready(), None);
        assert!(b.is_empty());
    }

    #[test]
    fn i2_ack_waits_for_the_follow_up_event() {
        let mut b = AckBarrier::<2>::new();
        b.hold(src(1), &[Condition::EventProcessed(42)]).unwrap();
        assert_eq!(b.next_ready(), None, "I2: not before PaymentSent");
        assert_eq!(b.satisfy(&Condition::EventProcessed(41)), 0);
        assert_eq!(b.next_ready(), None);
        assert_eq!(b.satisfy(&Condition::EventProcessed(42)), 1);
        assert_eq!(b.next_ready(), Some(src(1)));
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn i2_forward_waits_for_every_inbound_htlc() {
        // An MPP forward: three inbound HTLCs on two channels.
        let mut b = AckBarrier::<2>::new();
        let conds = [removed(A, 1), removed(B, 1), removed(B, 2)];
        b.hold(src(5), &conds).unwrap();
        assert_eq!(b.satisfy(&removed(B, 1)), 1);
        assert_eq!(b.satisfy(&removed(B, 1)), 0, "already met");
        assert_eq!(b.satisfy(&removed(A, 1)), 1);
        assert_eq!(b.next_ready(), None, "I2: B/2 is still in place");
        assert_eq!(b.satisfy(&removed(B, 2)), 1);
        assert_eq!(b.next_ready(), Some(src(5)));
    }

    #[test]
    fn i2_satisfy_marks_every_held_ack_and_ready_acks_leave_in_hold_order() {
        let mut b = AckBarrier::<4, 2>::new();
        let shared = Condition::EventProcessed(9);
        b.hold(src(7), &[shared, removed(A, 3)]).unwrap();
        b.hold(src(2), &[shared]).unwrap();
        b.hold(src(4), &[shared]).unwrap();
        assert_eq!(b.satisfy(&shared), 3);
        assert_eq!(b.next_ready(), Some(src(2)));
        assert_eq!(b.next_ready(), Some(src(4)));
        assert_eq!(b.next_ready(), None);
        assert!(b.is_held(&src(7)));
        b.satisfy(&removed(A, 3));
        assert_eq!(b.next_ready(), Some(src(7)));
    }

    #[test]
    fn i6_full_too_many_conditions_and_already_held_change_nothing() {
        let mut b = AckBarrier::<1, 2>::new();
        let three = [removed(A, 1), removed(A, 2), removed(A, 3)];
        assert_eq!(b.hold(src(1), &three), Err(BarrierError::TooManyConditions));
        assert!(b.is_empty());
        b.hold(src(1), &three[..2]).unwrap();
        let before = b.clone();
        assert_eq!(b.hold(src(1), &[]), Err(BarrierError::AlreadyHeld));
        assert_eq!(b.hold(src(2), &[]), Err(BarrierError::Full));
        assert_eq!(b, before);
        assert_eq!(b.capacity(), 1);
    }

    /// I2: a five-part MPP forward: parts learned after the hold, the ack waits for
    /// every one; what it waits for is listed.
    #[test]
    fn i2_mpp_set_grows_after_the_hold() {
        let mut b = AckBarrier::<2, 6>::new();
        let parts: Vec<Condition> = (0..5).map(|i| removed(B, i)).collect();
        let forwarded = Condition::EventProcessed(1);
        b.hold(src(9), &[forwarded, parts[0]]).unwrap();
        b.add_conditions(&src(9), &parts[1..3]).unwrap();
        b.add_conditions(&src(9), &[parts[2], parts[3], parts[4], parts[4]])
            .unwrap();
        assert_eq!(b.waiting_for(&src(9)).map(|w| w.len()), Some(6));
        assert_eq!(
            b.add_conditions(&src(9), &[removed(A, 9)]),
            Err(BarrierError::TooManyConditions)
        );
        assert_eq!(b.add_conditions(&src(8), &[]), Err(BarrierError::NotHeld));
        for p in parts.iter().rev() {
            assert_eq!(b.next_ready(), None, "I2: not before every part is removed");
            assert_eq!(b.satisfy(p), 1);
        }
        assert_eq!(waits(&b, 9), Some(vec![forwarded]));
        assert_eq!(b.iter().count(), 1);
        b.satisfy(&forwarded);
        assert_eq!(waits(&b, 9), Some(vec![]));
        assert_eq!(b.next_ready(), Some(src(9)));
        assert_eq!(waits(&b, 9), None);
        assert_eq!(b.channels_named(), 0, "every channel let go");
    }

    /// I2: after a consumer restart the ack is held again with only what is still
    /// unmet; met conditions are never waited for again.
    #[test]
    fn i2_consumer_restart_rebuilds_holds_from_its_state() {
        let mut b = AckBarrier::<4, 4>::new();
        b.hold(src(1), &[removed(A, 1), removed(B, 2)]).unwrap();
        b.hold(src(2), &[Condition::EventProcessed(3)]).unwrap();
        b.satisfy(&removed(A, 1));
        // The consumer's durable copy of what is still awaited.
        let saved: Vec<(MonitorEventSource, Vec<Condition>)> =
            b.iter().map(|(s, w)| (s, w.collect())).collect();
        let mut after = AckBarrier::<4, 4>::new();
        for (s, w) in &saved {
            after.hold(*s, w).unwrap();
        }
        assert_eq!(after, b, "the same holds, the same unmet conditions");
        after.satisfy(&removed(B, 2));
        assert_eq!(after.next_ready(), Some(src(1)));
        assert_eq!(after.next_ready(), None, "I2: event 2 still waits");
    }

    /// I6: RAM per held ack and per channel, as the module docs state them: a
    /// held ack keeps its event's id, its channel's place in the table and 16 B
    /// per condition; a channel's 32 B id is kept once, however many acks name it.
    #[test]
    fn i6_ram_per_held_ack() {
        fn per_ack<const C: usize>() -> usize {
            core::mem::size_of::<AckBarrier<2, C, 1>>()
                - core::mem::size_of::<AckBarrier<1, C, 1>>()
        }
        let per_channel = (core::mem::size_of::<AckBarrier<1, 1, 9>>()
            - core::mem::size_of::<AckBarrier<1, 1, 1>>())
            / 8;
        let word = core::mem::size_of::<usize>();
        assert_eq!(core::mem::size_of::<Slot>(), 16);
        assert_eq!(per_channel, 36);
        for (c, per) in [
            (1, per_ack::<1>()),
            (4, per_ack::<4>()),
            (8, per_ack::<8>()),
        ] {
            std::println!("AckBarrier<_, {c}>: {per} B per held ack, {per_channel} B per channel");
            // The id, the channel's place, the conditions' count, the conditions.
            assert_eq!(per, (8 + 2 + word).div_ceil(8) * 8 + c * 16);
        }
        let (m32c4, m4096c1) = (
            core::mem::size_of::<AckBarrier<32, 4>>(),
            core::mem::size_of::<AckBarrier<4096, 1, 64>>(),
        );
        std::println!(
            "AckBarrier<32, 4>: {m32c4} B; AckBarrier<4096, 1, 64>: {m4096c1} B ({:.1} B per held ack)",
            m4096c1 as f64 / 4096.0
        );
        if word == 8 {
            assert_eq!(
                (m32c4, m4096c1),
                (32 * 88 + 32 * 36 + 16, 4096 * 40 + 64 * 36 + 16),
                "the figures in the docs"
            );
        }
    }

    /// How a random operation of the model test names a channel and a condition.
    fn cond(kind: u8, channel: u8, value: u8) -> Condition {
        if kind % 3 == 0 {
            Condition::EventProcessed(u64::from(value % 4))
        } else {
            removed(ChannelId([channel % 5; 32]), u64::from(value % 3))
        }
    }

    proptest::proptest! {
        /// I2, I6 against a plain model (a list of holds with their full
        /// conditions): random holds, additions, satisfactions and ready acks on 5
        /// channels, into a barrier of 6 holds, 3 conditions each and a table of 3
        /// channels. Every answer (`Full`, `TooManyConditions`, `AlreadyHeld`,
        /// `NotHeld`, `ChannelsFull`, counts, the ready ack) and the whole content
        /// must match the model's, and an error changes nothing.
        #[test]
        fn i6_channel_table_matches_a_plain_model(
            ops in proptest::collection::vec(
                (0u8..4, 0u8..8, 0u8..5, proptest::collection::vec((0u8..3, 0u8..5, 0u8..4), 0..5)),
                1..300,
            )
        ) {
            type Model = Vec<(MonitorEventSource, Vec<Condition>)>;
            let mut b = AckBarrier::<6, 3, 3>::new();
            let mut model: Model = Vec::new();
            let source = |id: u8, ch: u8| MonitorEventSource {
                channel: ChannelId([ch % 5; 32]),
                id: EventId(u64::from(id)),
            };
            let named = |m: &Model, extra: &[ChannelId]| {
                let mut set: Vec<ChannelId> = Vec::new();
                for (s, w) in m {
                    let chans = core::iter::once(s.channel).chain(w.iter().filter_map(|c| match c {
                        Condition::HtlcRemoved { channel, .. } => Some(*channel),
                        _ => None,
                    }));
                    for c in chans.chain(extra.iter().copied()) {
                        if !set.contains(&c) {
                            set.push(c);
                        }
                    }
                }
                if m.is_empty() {
                    for c in extra {
                        if !set.contains(c) {
                            set.push(*c);
                        }
                    }
                }
                set.len()
            };
            for (op, id, ch, conds) in ops {
                let conds: Vec<Condition> = conds.iter().map(|&(k, c, v)| cond(k, c, v)).collect();
                let mut distinct: Vec<Condition> = Vec::new();
                for c in &conds {
                    if !distinct.contains(c) {
                        distinct.push(*c);
                    }
                }
                let chans = |cs: &[Condition]| -> Vec<ChannelId> {
                    cs.iter().filter_map(|c| match c {
                        Condition::HtlcRemoved { channel, .. } => Some(*channel),
                        _ => None,
                    }).collect()
                };
                let before = b.clone();
                match op {
                    0 => {
                        let s = source(id, ch);
                        let want = if model.iter().any(|(m, _)| *m == s) {
                            Err(BarrierError::AlreadyHeld)
                        } else if distinct.len() > 3 {
                            Err(BarrierError::TooManyConditions)
                        } else if model.len() == 6 {
                            Err(BarrierError::Full)
                        } else {
                            let mut extra = chans(&distinct);
                            extra.push(s.channel);
                            if named(&model, &extra) > 3 {
                                Err(BarrierError::ChannelsFull)
                            } else {
                                Ok(())
                            }
                        };
                        proptest::prop_assert_eq!(b.hold(s, &conds), want);
                        if want.is_ok() {
                            model.push((s, distinct));
                        }
                    }
                    1 => {
                        let s = source(id, ch);
                        let want = match model.iter().position(|(m, _)| *m == s) {
                            None => Err(BarrierError::NotHeld),
                            Some(k) => {
                                let add: Vec<Condition> = distinct
                                    .iter()
                                    .filter(|c| !model[k].1.contains(c))
                                    .copied()
                                    .collect();
                                if model[k].1.len() + add.len() > 3 {
                                    Err(BarrierError::TooManyConditions)
                                } else if named(&model, &chans(&add)) > 3 {
                                    Err(BarrierError::ChannelsFull)
                                } else {
                                    model[k].1.extend(add);
                                    Ok(())
                                }
                            }
                        };
                        proptest::prop_assert_eq!(b.add_conditions(&s, &conds), want);
                    }
                    2 => {
                        let c = cond(id, ch, conds.len() as u8);
                        let mut n = 0;
                        for (_, w) in model.iter_mut() {
                            if let Some(i) = w.iter().position(|x| *x == c) {
                                w.remove(i);
                                n += 1;
                            }
                        }
                        proptest::prop_assert_eq!(b.satisfy(&c), n);
                    }
                    _ => {
                        let want = model
                            .iter()
                            .position(|(_, w)| w.is_empty())
                            .map(|i| model.remove(i).0);
                        proptest::prop_assert_eq!(b.next_ready(), want);
                    }
                }
                if b == before && model.len() == before.len() {
                    // An error or a no-op: nothing changed, the table included.
                    proptest::prop_assert_eq!(b.channels_named(), before.channels_named());
                }
                let got: Model = b.iter().map(|(s, w)| (s, w.collect())).collect();
                proptest::prop_assert_eq!(&got, &model);
                proptest::prop_assert_eq!(b.channels_named(), named(&model, &[]));
                for (s, w) in &model {
                    proptest::prop_assert!(b.is_held(s));
                    let got: Vec<Condition> = b.waiting_for(s).unwrap().collect();
                    proptest::prop_assert_eq!(&got, w);
                }
            }
        }
    }
}
