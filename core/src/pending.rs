//! Ack bookkeeping: which events are pending (pushed, not yet acked), which were
//! released in this run, and which id comes next.
//!
//! [`PendingIndex`] holds no event bodies, only what deciding needs: per pending
//! event its id, channel, whether it is an HTLC event (gated, invariant I5) and
//! whether it was released in this run (invariant I4). Its capacity `N` is fixed at
//! compile time and a full index refuses before changing anything (invariant I6).
//! The durable store keeps the bodies and rebuilds the index at open with
//! [`PendingIndex::with_next_id`], [`PendingIndex::insert`] and
//! [`PendingIndex::advance_next_id`].
//!
//! Ids below [`PendingIndex::next_id`] that are not pending were acked: acking one
//! again answers [`AckOutcome::AlreadyAcked`].

use core::fmt;

use crate::event::{ChannelId, EventKind, MonitorEventSource};
use crate::inflight::InFlight;
use crate::EventId;

/// One pending event as the index sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PendingEvent {
    /// The event's id.
    pub id: EventId,
    /// The event's channel.
    pub channel: ChannelId,
    /// Whether it is an HTLC event, held back while its channel has an in-flight
    /// update (invariant I5).
    pub is_htlc: bool,
    /// Whether it was released in this run (invariant I4).
    pub released: bool,
    /// The event's kind, when it was inserted with one
    /// ([`insert_kind`](PendingIndex::insert_kind), as the store does); `None` when
    /// only the HTLC flag was given.
    pub kind: Option<EventKind>,
}

/// An event that stayed pending while many later events were pushed: probably an
/// ack that never came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Leak {
    /// The event's id.
    pub id: EventId,
    /// The event's channel.
    pub channel: ChannelId,
    /// Number of events pushed after it (in any run): `next_id - id - 1`.
    pub age: u64,
}

/// What an ack did (or, from [`PendingIndex::check_ack`], would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AckOutcome {
    /// The event was pending and is acked now.
    Acked,
    /// The id was assigned and is no longer pending: acked before. Nothing changes.
    AlreadyAcked,
}

/// The ids and flags of up to `N` pending events, in id order. No heap; memory is
/// fixed at compile time (invariant I6).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PendingIndex<const N: usize> {
    /// Sorted by id, strictly increasing.
    events: heapless::Vec<PendingEvent, N>,
    /// Greater than every id ever assigned (invariant I3).
    next_id: EventId,
}

impl<const N: usize> PendingIndex<N> {
    /// An empty index whose first id is 0.
    pub const fn new() -> Self {
        Self::with_next_id(EventId(0))
    }

    /// An empty index whose next id is `next_id`: after a restart, the saved
    /// counter, so ids are never reused (invariant I3).
    pub const fn with_next_id(next_id: EventId) -> Self {
        PendingIndex {
            events: heapless::Vec::new(),
            next_id,
        }
    }

    /// The id the next [`push`](Self::push) assigns; greater than every id assigned
    /// so far.
    pub fn next_id(&self) -> EventId {
        self.next_id
    }

    /// Raises [`next_id`](Self::next_id) to `id` if it is lower; never lowers it
    /// (invariant I3). For replay: after inserting the pending events, advance to
    /// the saved counter, which may be above the last pending id + 1 when the newest
    /// events were acked.
    pub fn advance_next_id(&mut self, id: EventId) {
        if id > self.next_id {
            self.next_id = id;
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether `N` events are pending: [`push`](Self::push) fails.
    pub fn is_full(&self) -> bool {
        self.events.is_full()
    }

    /// The most events that can be pending: `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Adds a new pending event and assigns it the next id, which is greater than
    /// every earlier one (invariant I3).
    ///
    /// `Err(Full)` changes nothing (invariant I6); so does the id space running out
    /// at `u64::MAX` (never, in practice), which is reported as `Full` too.
    pub fn push(&mut self, channel: ChannelId, is_htlc: bool) -> Result<EventId, Full> {
        let id = self.next_id;
        if id.0 == u64::MAX {
            return Err(Full);
        }
        self.events
            .push(PendingEvent {
                id,
                channel,
                is_htlc,
                released: false,
                kind: None,
            })
            .map_err(|_| Full)?;
        self.next_id = id.next();
        Ok(id)
    }

    /// Adds a pending event with a known id, for replay after a restart. `id` must be
    /// at least [`next_id`](Self::next_id) (so inserts come in increasing id order);
    /// `next_id` becomes `id + 1`. Changes nothing on `Err`.
    pub fn insert(
        &mut self,
        id: EventId,
        channel: ChannelId,
        is_htlc: bool,
    ) -> Result<(), InsertError> {
        if id < self.next_id {
            return Err(if self.get(id).is_some() {
                InsertError::Duplicate
            } else {
                InsertError::OutOfOrder
            });
        }
        if id.0 == u64::MAX {
            return Err(InsertError::OutOfRange);
        }
        self.events
            .push(PendingEvent {
                id,
                channel,
                is_htlc,
                released: false,
                kind: None,
            })
            .map_err(|_| InsertError::Full)?;
        self.next_id = id.next();
        Ok(())
    }

    /// As [`insert`](Self::insert), recording the event's kind too (the HTLC flag
    /// follows from it).
    pub fn insert_kind(
        &mut self,
        id: EventId,
        channel: ChannelId,
        kind: EventKind,
    ) -> Result<(), InsertError> {
        self.insert(id, channel, kind == EventKind::HtlcResolved)?;
        if let Some(last) = self.events.last_mut() {
            last.kind = Some(kind);
        }
        Ok(())
    }

    /// Releases the next event: the lowest-id pending event not yet released in this
    /// run whose channel is not gated by `gates` (only HTLC events are gated,
    /// invariant I5). Marks it released, so each event is released at most once per
    /// run (invariant I4). `None` when nothing can be released now.
    pub fn next_release<const K: usize>(
        &mut self,
        gates: &InFlight<K>,
    ) -> Option<(EventId, ChannelId)> {
        self.next_release_by(|e| e.is_htlc && gates.is_gated(&e.channel))
    }

    /// Releases the lowest-id pending event not yet released in this run for which
    /// `held` is false, and marks it released (invariant I4). The caller's `held`
    /// decides gating (invariant I5).
    pub fn next_release_by(
        &mut self,
        mut held: impl FnMut(&PendingEvent) -> bool,
    ) -> Option<(EventId, ChannelId)> {
        let e = self.events.iter_mut().find(|e| !e.released && !held(e))?;
        e.released = true;
        Some((e.id, e.channel))
    }

    /// Forgets which events were released in this run: each pending event will be
    /// released once more, as after a restart (invariant I4). For a consumer that
    /// restarted while the producer did not. RAM only.
    pub fn rewind(&mut self) {
        for e in self.events.iter_mut() {
            e.released = false;
        }
    }

    /// What [`ack`](Self::ack) would answer for `source`, changing nothing.
    ///
    /// | `source.id` | answer |
    /// |---|---|
    /// | pending, same channel | `Ok(Acked)` |
    /// | pending, other channel | `Err(WrongChannel)` |
    /// | below `next_id`, not pending | `Ok(AlreadyAcked)` (the channel cannot be checked) |
    /// | `next_id` or above | `Err(Unknown)` |
    pub fn check_ack(&self, source: &MonitorEventSource) -> Result<AckOutcome, AckError> {
        if source.id >= self.next_id {
            return Err(AckError::Unknown);
        }
        match self.get(source.id) {
            None => Ok(AckOutcome::AlreadyAcked),
            Some(e) if e.channel == source.channel => Ok(AckOutcome::Acked),
            Some(_) => Err(AckError::WrongChannel),
        }
    }

    /// Removes the pending event `id`. Returns whether it was pending.
    pub fn remove(&mut self, id: EventId) -> bool {
        match self.position(id) {
            Ok(i) => {
                self.events.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// [`check_ack`](Self::check_ack), then, on `Ok(Acked)`, [`remove`](Self::remove).
    /// Changes nothing on any other answer.
    pub fn ack(&mut self, source: &MonitorEventSource) -> Result<AckOutcome, AckError> {
        let outcome = self.check_ack(source)?;
        if outcome == AckOutcome::Acked {
            self.remove(source.id);
        }
        Ok(outcome)
    }

    /// The pending events in id order.
    pub fn iter(&self) -> impl Iterator<Item = &PendingEvent> + '_ {
        self.events.iter()
    }

    /// The pending event `id`, if it is pending.
    pub fn get(&self, id: EventId) -> Option<&PendingEvent> {
        self.position(id).ok().map(|i| &self.events[i])
    }

    /// The pending events older than `max_age`: more than `max_age` events were
    /// pushed after each of them. In id order.
    pub fn leak_report(&self, max_age: u64) -> impl Iterator<Item = Leak> + '_ {
        let next = self.next_id.0;
        self.events.iter().filter_map(move |e| {
            let age = next.saturating_sub(e.id.0).saturating_sub(1);
            (age > max_age).then_some(Leak {
                id: e.id,
                channel: e.channel,
                age,
            })
        })
    }

    fn position(&self, id: EventId) -> Result<usize, usize> {
        self.events.binary_search_by_key(&id, |e| e.id)
    }
}

impl<const N: usize> Default for PendingIndex<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The pending index is full: nothing changed (invariant I6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pending index is full")
    }
}

impl core::error::Error for Full {}

/// Why [`PendingIndex::insert`] failed; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InsertError {
    /// `N` events are already pending.
    Full,
    /// The id is already pending.
    Duplicate,
    /// The id is below [`PendingIndex::next_id`] and not pending: inserts must come in
    /// increasing id order, and ids are never reused (invariant I3).
    OutOfOrder,
    /// The id is `u64::MAX`, which is never assigned.
    OutOfRange,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::Full => "pending index is full",
            InsertError::Duplicate => "event id is already pending",
            InsertError::OutOfOrder => "event id is below the next id",
            InsertError::OutOfRange => "event id is out of range",
        })
    }
}

impl core::error::Error for InsertError {}

/// Why an ack was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AckError {
    /// No event with this id was ever pushed.
    Unknown,
    /// The event is pending but belongs to another channel.
    WrongChannel,
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AckError::Unknown => "ack of an id that was never assigned",
            AckError::WrongChannel => "ack names another channel than the event's",
        })
    }
}

impl core::error::Error for AckError {}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ChannelId = ChannelId([0xaa; 32]);
    const B: ChannelId = ChannelId([0xbb; 32]);

    fn src(channel: ChannelId, id: u64) -> MonitorEventSource {
        MonitorEventSource {
            channel,
            id: EventId(id),
        }
    }

    fn ids<const N: usize>(p: &PendingIndex<N>) -> Vec<u64> {
        p.iter().map(|e| e.id.0).collect()
    }

    #[test]
    fn i6_memory_is_fixed_size_of_pending_index() {
        let s16 = core::mem::size_of::<PendingIndex<16>>();
        let s64 = core::mem::size_of::<PendingIndex<64>>();
        println!("size_of::<PendingIndex<16>>() = {s16}");
        println!("size_of::<PendingIndex<64>>() = {s64}");
        let slot = core::mem::size_of::<PendingEvent>();
        assert_eq!(s64 - s16, 48 * slot);
    }

    #[test]
    fn i3_push_assigns_strictly_increasing_ids() {
        let mut p = PendingIndex::<4>::new();
        assert_eq!(p.push(A, true), Ok(EventId(0)));
        assert_eq!(p.push(B, false), Ok(EventId(1)));
        assert!(p.remove(EventId(1)));
        assert_eq!(p.push(A, false), Ok(EventId(2)), "I3: 1 is never reused");
        assert_eq!(p.next_id(), EventId(3));
        assert_eq!(ids(&p), [0, 2]);
    }

    #[test]
    fn i3_replay_continues_after_the_saved_counter() {
        // Run 1 pushed 0..=4 and acked 1, 3 and 4.
        let mut p = PendingIndex::<4>::with_next_id(EventId(0));
        p.insert(EventId(0), A, true).unwrap();
        p.insert(EventId(2), B, false).unwrap();
        assert_eq!(p.next_id(), EventId(3));
        p.advance_next_id(EventId(5));
        p.advance_next_id(EventId(4)); // never lowers
        assert_eq!(p.next_id(), EventId(5));
        assert_eq!(p.push(A, false), Ok(EventId(5)));
        assert_eq!(p.check_ack(&src(A, 4)), Ok(AckOutcome::AlreadyAcked));
        assert_eq!(p.check_ack(&src(A, 0)), Ok(AckOutcome::Acked));
    }

    #[test]
    fn i3_insert_rejects_reused_and_out_of_order_ids() {
        let mut p = PendingIndex::<4>::with_next_id(EventId(10));
        assert_eq!(p.insert(EventId(9), A, false), Err(InsertError::OutOfOrder));
        p.insert(EventId(12), A, false).unwrap();
        assert_eq!(p.insert(EventId(12), A, false), Err(InsertError::Duplicate));
        assert_eq!(
            p.insert(EventId(11), A, false),
            Err(InsertError::OutOfOrder)
        );
        assert_eq!(
            p.insert(EventId(u64::MAX), A, false),
            Err(InsertError::OutOfRange)
        );
        assert_eq!(ids(&p), [12]);
        assert_eq!(p.next_id(), EventId(13));
    }

    #[test]
    fn i3_id_space_exhaustion_is_refused_without_overflow() {
        let mut p = PendingIndex::<4>::with_next_id(EventId(u64::MAX - 1));
        assert_eq!(p.push(A, false), Ok(EventId(u64::MAX - 1)));
        assert_eq!(p.push(A, false), Err(Full));
        assert_eq!(p.len(), 1);
        assert_eq!(p.next_id(), EventId(u64::MAX));
        assert_eq!(p.check_ack(&src(A, u64::MAX)), Err(AckError::Unknown));
    }

    #[test]
    fn i6_full_changes_nothing() {
        let mut p = PendingIndex::<2>::new();
        p.push(A, true).unwrap();
        p.push(B, false).unwrap();
        assert!(p.is_full());
        let before = p.clone();
        assert_eq!(p.push(A, false), Err(Full));
        assert_eq!(p.insert(EventId(7), A, false), Err(InsertError::Full));
        assert_eq!(p, before, "I6: nothing changed, nothing dropped");
        assert_eq!(p.capacity(), 2);
    }

    #[test]
    fn i4_release_once_per_run_in_id_order() {
        let mut p = PendingIndex::<4>::new();
        let none = InFlight::<1>::new();
        for c in [A, B, A] {
            p.push(c, false).unwrap();
        }
        assert_eq!(p.next_release(&none), Some((EventId(0), A)));
        assert_eq!(p.next_release(&none), Some((EventId(1), B)));
        p.push(B, true).unwrap();
        assert_eq!(p.next_release(&none), Some((EventId(2), A)));
        assert_eq!(p.next_release(&none), Some((EventId(3), B)));
        assert_eq!(p.next_release(&none), None, "I4: at most once per run");
        assert!(p.iter().all(|e| e.released));
    }

    #[test]
    fn i5_gated_htlc_events_wait_and_other_events_do_not() {
        let mut p = PendingIndex::<4>::new();
        let mut gates = InFlight::<2>::new();
        gates.begin(A, 7).unwrap();
        p.push(A, true).unwrap(); // 0: HTLC of gated A
        p.push(A, false).unwrap(); // 1: non-HTLC of gated A
        p.push(B, true).unwrap(); // 2: HTLC of ungated B
        assert_eq!(p.next_release(&gates), Some((EventId(1), A)));
        assert_eq!(p.next_release(&gates), Some((EventId(2), B)));
        assert_eq!(p.next_release(&gates), None, "I5: 0 is held back");
        assert!(gates.complete(A, 7));
        assert_eq!(p.next_release(&gates), Some((EventId(0), A)));
        assert_eq!(p.next_release(&gates), None);
    }

    #[test]
    fn i2_ack_outcomes_and_check_ack_changes_nothing() {
        let mut p = PendingIndex::<4>::new();
        p.push(A, true).unwrap();
        p.push(B, false).unwrap();
        let before = p.clone();
        assert_eq!(p.check_ack(&src(A, 0)), Ok(AckOutcome::Acked));
        assert_eq!(p.check_ack(&src(B, 0)), Err(AckError::WrongChannel));
        assert_eq!(p.check_ack(&src(A, 2)), Err(AckError::Unknown));
        assert_eq!(p, before);

        assert_eq!(p.ack(&src(B, 0)), Err(AckError::WrongChannel));
        assert_eq!(p.ack(&src(A, 9)), Err(AckError::Unknown));
        assert_eq!(p, before);
        // Out of order.
        assert_eq!(p.ack(&src(B, 1)), Ok(AckOutcome::Acked));
        assert_eq!(p.ack(&src(B, 1)), Ok(AckOutcome::AlreadyAcked));
        assert_eq!(p.ack(&src(A, 0)), Ok(AckOutcome::Acked));
        assert!(p.is_empty());
        assert!(!p.remove(EventId(0)));
        let none = InFlight::<1>::new();
        assert_eq!(
            p.next_release(&none),
            None,
            "I2: acked ids are not released"
        );
    }

    #[test]
    fn i2_get_and_iter_see_only_pending_events() {
        let mut p = PendingIndex::<4>::new();
        for c in [A, B, A] {
            p.push(c, c == A).unwrap();
        }
        p.ack(&src(B, 1)).unwrap();
        assert_eq!(ids(&p), [0, 2]);
        assert_eq!(p.get(EventId(1)), None);
        let e = p.get(EventId(2)).unwrap();
        assert_eq!((e.channel, e.is_htlc, e.released), (A, true, false));
    }

    // I6: a leaked event (an ack that never comes) holds a slot until the index is
    // full; the report finds it first.
    #[test]
    fn i6_leak_report_lists_events_older_than_max_age() {
        let mut p = PendingIndex::<8>::new();
        for _ in 0..6 {
            p.push(A, false).unwrap();
        }
        p.ack(&src(A, 1)).unwrap();
        // next_id = 6: ages 0:5, 2:3, 3:2, 4:1, 5:0.
        let leaks: Vec<Leak> = p.leak_report(2).collect();
        assert_eq!(
            leaks,
            [
                Leak {
                    id: EventId(0),
                    channel: A,
                    age: 5
                },
                Leak {
                    id: EventId(2),
                    channel: A,
                    age: 3
                },
            ]
        );
        assert_eq!(p.leak_report(5).count(), 0);
        assert_eq!(p.leak_report(0).count(), 4);
    }

    /// I4: a rewind releases every pending event once more, in id order, and keeps
    /// the kinds recorded with `insert_kind`.
    #[test]
    fn i4_rewind_releases_again_in_id_order() {
        let mut p = PendingIndex::<4>::new();
        p.insert_kind(EventId(3), A, EventKind::HtlcResolved)
            .unwrap();
        p.insert_kind(EventId(5), B, EventKind::UpdateCompleted)
            .unwrap();
        assert_eq!(
            p.get(EventId(3)).map(|e| (e.is_htlc, e.kind)),
            Some((true, Some(EventKind::HtlcResolved)))
        );
        assert_eq!(p.get(EventId(5)).map(|e| e.is_htlc), Some(false));
        assert_eq!(p.next_release_by(|e| e.is_htlc), Some((EventId(5), B)));
        assert_eq!(p.next_release_by(|_| false), Some((EventId(3), A)));
        assert_eq!(p.next_release_by(|_| false), None);
        p.rewind();
        assert!(p.iter().all(|e| !e.released));
        assert_eq!(p.next_release_by(|_| false), Some((EventId(3), A)));
        assert_eq!(p.next_release_by(|_| false), Some((EventId(5), B)));
        assert_eq!(p.next_release_by(|_| false), None, "I4: once per rewind");
    }
}
