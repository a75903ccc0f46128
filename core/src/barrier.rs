//! The consumer's side: hold an ack until it is safe to send.
//!
//! An acked event is never provided again (invariant I2), so the consumer must not
//! ack before it has irrevocably processed what the event led to: the user handled
//! the follow-up event (PaymentSent, PaymentFailed, PaymentForwarded), and for a
//! forward every inbound HTLC (several for MPP or trampoline) was durably removed
//! upstream. [`AckBarrier`] holds each ack with its [`Condition`]s and yields it
//! once all of them are met.
//!
//! The barrier lives in RAM. Conditions met before an ack is held do not count:
//! hold first, then [`satisfy`](AckBarrier::satisfy).

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

/// One held ack and its conditions, each with whether it is met.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Held<const C: usize> {
    source: MonitorEventSource,
    conditions: heapless::Vec<(Condition, bool), C>,
}

impl<const C: usize> Held<C> {
    fn is_ready(&self) -> bool {
        self.conditions.iter().all(|(_, met)| *met)
    }
}

/// Holds up to `M` acks, each waiting for up to `C` conditions, and yields each ack
/// once all its conditions are met. Memory is fixed at compile time (invariant I6).
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

    /// Holds the ack of `source` until every one of `conditions` is met. With no
    /// conditions the ack is ready at once. Changes nothing on `Err`.
    pub fn hold(
        &mut self,
        source: MonitorEventSource,
        conditions: &[Condition],
    ) -> Result<(), BarrierError> {
        if conditions.len() > C {
            return Err(BarrierError::TooManyConditions);
        }
        if self.is_held(&source) {
            return Err(BarrierError::AlreadyHeld);
        }
        let mut held = Held {
            source,
            conditions: heapless::Vec::new(),
        };
        for c in conditions {
            held.conditions
                .push((*c, false))
                .map_err(|_| BarrierError::TooManyConditions)?;
        }
        self.held.push(held).map_err(|_| BarrierError::Full)
    }

    /// Marks `condition` as met in every held ack that waits for it. Returns how many
    /// conditions became met (0 if none waited for it or all were met already).
    pub fn satisfy(&mut self, condition: &Condition) -> usize {
        let mut count = 0;
        for held in self.held.iter_mut() {
            for (c, met) in held.conditions.iter_mut() {
                if !*met && c == condition {
                    *met = true;
                    count += 1;
                }
            }
        }
        count
    }

    /// Yields and forgets the first held ack (in hold order) whose conditions are all
    /// met. The caller sends it.
    pub fn next_ready(&mut self) -> Option<MonitorEventSource> {
        let i = self.held.iter().position(Held::is_ready)?;
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
}

impl<const M: usize, const C: usize> Default for AckBarrier<M, C> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`AckBarrier::hold`] failed; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BarrierError {
    /// `M` acks are already held.
    Full,
    /// More than `C` conditions.
    TooManyConditions,
    /// The ack of this source is already held (for example, the event was released
    /// again after the producer restarted).
    AlreadyHeld,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Full => "ack barrier is full",
            BarrierError::TooManyConditions => "too many conditions for one ack",
            BarrierError::AlreadyHeld => "ack is already held",
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
}
