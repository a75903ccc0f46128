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
//! (events released and not yet acked).
//!
//! RAM: `size_of::<AckBarrier<M, C>>()` is `M * (48 + 48 * C) + 8` bytes on a 64-bit
//! host (a [`MonitorEventSource`], a length and `C` conditions of 48 B per held ack;
//! 4-byte lengths on 32-bit targets). `AckBarrier<32, 4>`: 7 688 B;
//! `AckBarrier<32, 8>`: 13 832 B. A test prints these figures.
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
//! assert_eq!(barrier.waiting_for(&claim), Some(&parts[1..]));
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

/// One held ack and the conditions it still waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Held<const C: usize> {
    source: MonitorEventSource,
    /// Unmet, distinct.
    waiting: heapless::Vec<Condition, C>,
}

/// Number of conditions of `new` that `waiting` does not hold yet (each counted
/// once).
fn fresh(waiting: &[Condition], new: &[Condition]) -> usize {
    new.iter()
        .enumerate()
        .filter(|(i, c)| !waiting.contains(c) && !new[..*i].contains(c))
        .count()
}

/// Holds up to `M` acks, each waiting for up to `C` conditions, and yields each ack
/// once all its conditions are met. Memory is fixed at compile time (invariant I6);
/// see the [module docs](self) for sizing and RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckBarrier<const M: usize, const C: usize = 4> {
    /// In hold order.
    held: heapless::Vec<Held<C>, M>,
}

impl<const M: usize, const C: usize> AckBarrier<M, C> {
    /// An empty barrier.
    pub const fn new() -> Self {
        AckBarrier {
            held: heapless::Vec::new(),
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
        if fresh(&[], conditions) > C {
            return Err(BarrierError::TooManyConditions);
        }
        if self.held.is_full() {
            return Err(BarrierError::Full);
        }
        let mut held = Held {
            source,
            waiting: heapless::Vec::new(),
        };
        for c in conditions {
            if !held.waiting.contains(c) {
                // Cannot fail: counted above.
                let _ = held.waiting.push(*c);
            }
        }
        let _ = self.held.push(held);
        Ok(())
    }

    /// Adds conditions to the held ack of `source`: the further parts of an MPP or
    /// trampoline set, learned after the hold. Conditions it already waits for
    /// count once. All or nothing: `NotHeld`, or `TooManyConditions` when the
    /// unmet ones would exceed `C`; nothing changes then.
    pub fn add_conditions(
        &mut self,
        source: &MonitorEventSource,
        conditions: &[Condition],
    ) -> Result<(), BarrierError> {
        let held = self
            .held
            .iter_mut()
            .find(|h| h.source == *source)
            .ok_or(BarrierError::NotHeld)?;
        if held.waiting.len() + fresh(&held.waiting, conditions) > C {
            return Err(BarrierError::TooManyConditions);
        }
        for c in conditions {
            if !held.waiting.contains(c) {
                // Cannot fail: counted above.
                let _ = held.waiting.push(*c);
            }
        }
        Ok(())
    }

    /// Marks `condition` as met in every held ack that waits for it. Returns how many
    /// held acks waited for it (0 if none did).
    pub fn satisfy(&mut self, condition: &Condition) -> usize {
        let mut count = 0;
        for held in self.held.iter_mut() {
            if let Some(i) = held.waiting.iter().position(|c| c == condition) {
                held.waiting.remove(i);
                count += 1;
            }
        }
        count
    }

    /// What the held ack of `source` still waits for, in the order the conditions
    /// were added; `None` if it is not held. An empty slice: it is ready.
    pub fn waiting_for(&self, source: &MonitorEventSource) -> Option<&[Condition]> {
        self.held
            .iter()
            .find(|h| h.source == *source)
            .map(|h| h.waiting.as_slice())
    }

    /// Every held ack with what it still waits for, in hold order: what a consumer
    /// may persist to rebuild its holds after a restart.
    pub fn iter(&self) -> impl Iterator<Item = (MonitorEventSource, &[Condition])> + '_ {
        self.held.iter().map(|h| (h.source, h.waiting.as_slice()))
    }

    /// Yields and forgets the first held ack (in hold order) whose conditions are all
    /// met. The caller sends it.
    pub fn next_ready(&mut self) -> Option<MonitorEventSource> {
        let i = self.held.iter().position(|h| h.waiting.is_empty())?;
        Some(self.held.remove(i).source)
    }

    /// Whether the ack of `source` is held.
    pub fn is_held(&self, source: &MonitorEventSource) -> bool {
        self.held.iter().any(|h| h.source == *source)
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
}

impl<const M: usize, const C: usize> Default for AckBarrier<M, C> {
    fn default() -> Self {
        Self::new()
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
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Full => "ack barrier is full",
            BarrierError::TooManyConditions => "too many conditions for one ack",
            BarrierError::AlreadyHeld => "ack is already held",
            BarrierError::NotHeld => "ack is not held",
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
        assert_eq!(b.waiting_for(&src(9)).map(<[_]>::len), Some(6));
        assert_eq!(
            b.add_conditions(&src(9), &[removed(A, 9)]),
            Err(BarrierError::TooManyConditions)
        );
        assert_eq!(b.add_conditions(&src(8), &[]), Err(BarrierError::NotHeld));
        for p in parts.iter().rev() {
            assert_eq!(b.next_ready(), None, "I2: not before every part is removed");
            assert_eq!(b.satisfy(p), 1);
        }
        assert_eq!(b.waiting_for(&src(9)), Some(&[forwarded][..]));
        assert_eq!(b.iter().count(), 1);
        b.satisfy(&forwarded);
        assert_eq!(b.waiting_for(&src(9)), Some(&[][..]));
        assert_eq!(b.next_ready(), Some(src(9)));
        assert_eq!(b.waiting_for(&src(9)), None);
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
            b.iter().map(|(s, w)| (s, w.to_vec())).collect();
        let mut after = AckBarrier::<4, 4>::new();
        for (s, w) in &saved {
            after.hold(*s, w).unwrap();
        }
        assert_eq!(after, b, "the same holds, the same unmet conditions");
        after.satisfy(&removed(B, 2));
        assert_eq!(after.next_ready(), Some(src(1)));
        assert_eq!(after.next_ready(), None, "I2: event 2 still waits");
    }

    /// I6: RAM per held ack, as the module docs state it.
    #[test]
    fn i6_ram_per_held_ack() {
        fn per_ack<const C: usize>() -> usize {
            core::mem::size_of::<AckBarrier<2, C>>() - core::mem::size_of::<AckBarrier<1, C>>()
        }
        let cond = core::mem::size_of::<Condition>();
        let word = core::mem::size_of::<usize>();
        for (c, per) in [
            (1, per_ack::<1>()),
            (4, per_ack::<4>()),
            (8, per_ack::<8>()),
        ] {
            std::println!("AckBarrier<_, {c}>: {per} B per held ack");
            assert_eq!(
                per,
                core::mem::size_of::<MonitorEventSource>() + word + c * cond
            );
        }
        assert_eq!(cond, 48);
        let (m32c4, m32c8) = (
            core::mem::size_of::<AckBarrier<32, 4>>(),
            core::mem::size_of::<AckBarrier<32, 8>>(),
        );
        std::println!("AckBarrier<32, 4>: {m32c4} B, AckBarrier<32, 8>: {m32c8} B");
        if word == 8 {
            assert_eq!((m32c4, m32c8), (7688, 13832), "the figures in the docs");
        }
    }
}
