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

/// The channels and flags of up to `N` pending events, by position (the caller
/// keeps their ids in the same order), and a table of the channels they belong
/// to: at most `CH` different ones at a time. 4 bytes per event (a channel's
/// index, flags, kind) and 36 per channel; no heap (invariant I6).
///
/// [`PendingIndex`] is this plus the ids; the [`EventStore`](crate::EventStore)
/// keeps this beside its journal, which holds the ids already.
pub struct Marks<const N: usize, const CH: usize> {
    slots: heapless::Vec<Mark, N>,
    /// Channels with events pending; an entry whose count is 0 is free.
    channels: heapless::Vec<ChannelEntry, CH>,
}

/// One pending event's channel (its entry in the table), flags and kind.
#[derive(Clone, Copy)]
struct Mark {
    channel: u16,
    /// `HTLC` and `RELEASED`.
    flags: u8,
    /// The event's kind ([`kind_code`]), or `NO_KIND`.
    kind: u8,
}

const HTLC: u8 = 1;
const RELEASED: u8 = 2;
const NO_KIND: u8 = 0xFF;

/// A channel and how many pending events name it.
#[derive(Clone, Copy)]
struct ChannelEntry {
    id: ChannelId,
    events: u32,
}

fn kind_code(kind: Option<EventKind>) -> u8 {
    match kind {
        None => NO_KIND,
        Some(EventKind::HtlcResolved) => 0,
        Some(EventKind::CommitmentTxConfirmed) => 1,
        Some(EventKind::HolderForceClosed) => 2,
        Some(EventKind::UpdateCompleted) => 3,
    }
}

fn kind_of(code: u8) -> Option<EventKind> {
    match code {
        0 => Some(EventKind::HtlcResolved),
        1 => Some(EventKind::CommitmentTxConfirmed),
        2 => Some(EventKind::HolderForceClosed),
        3 => Some(EventKind::UpdateCompleted),
        _ => None,
    }
}

/// One pending event as [`Marks`] sees it (no id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkInfo {
    /// The event's channel.
    pub channel: ChannelId,
    /// Whether it is an HTLC event (gated, invariant I5).
    pub is_htlc: bool,
    /// Whether it was released in this run (invariant I4).
    pub released: bool,
    /// The event's kind, when it was added with one.
    pub kind: Option<EventKind>,
}

impl<const N: usize, const CH: usize> Marks<N, CH> {
    const CHANNELS_FIT: () = assert!(CH <= u16::MAX as usize, "CH must be at most 65535");

    /// No event.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHANNELS_FIT;
        Marks {
            slots: heapless::Vec::new(),
            channels: heapless::Vec::new(),
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether `N` events are held.
    pub fn is_full(&self) -> bool {
        self.slots.is_full()
    }

    /// Whether an event of `channel` can be added as far as the channel table
    /// goes: the channel has events already, or fewer than `CH` channels do.
    pub fn has_channel_room(&self, channel: &ChannelId) -> bool {
        self.channel_entry(channel).is_some()
    }

    /// Whether `channel` has events.
    pub fn channel_pending(&self, channel: &ChannelId) -> bool {
        self.channels
            .iter()
            .any(|c| c.events > 0 && c.id == *channel)
    }

    /// How many more channels can have events: `CH` less those that do.
    pub fn free_channels(&self) -> usize {
        CH - self.channels.iter().filter(|c| c.events > 0).count()
    }

    /// Adds an event after the others; changes nothing on `Err` (`Full`, or
    /// `TooManyChannels`).
    pub fn push(
        &mut self,
        channel: ChannelId,
        is_htlc: bool,
        kind: Option<EventKind>,
    ) -> Result<(), InsertError> {
        if self.slots.is_full() {
            return Err(InsertError::Full);
        }
        let Some(entry) = self.channel_entry(&channel) else {
            return Err(InsertError::TooManyChannels);
        };
        if entry == self.channels.len() {
            // Cannot fail: channel_entry found room.
            let _ = self.channels.push(ChannelEntry {
                id: channel,
                events: 0,
            });
        }
        let c = &mut self.channels[entry];
        c.id = channel;
        c.events += 1;
        // Cannot fail: checked above.
        let _ = self.slots.push(Mark {
            channel: entry as u16,
            flags: if is_htlc { HTLC } else { 0 },
            kind: kind_code(kind),
        });
        Ok(())
    }

    /// Removes the event at `pos`.
    ///
    /// # Panics
    /// If `pos` is not below [`len`](Self::len).
    pub fn remove(&mut self, pos: usize) {
        let m = self.slots.remove(pos);
        self.channels[m.channel as usize].events -= 1;
    }

    /// The event at `pos`, if there is one.
    pub fn get(&self, pos: usize) -> Option<MarkInfo> {
        self.slots.get(pos).map(|m| self.info(m))
    }

    /// The channel of the event at `pos`, if there is one.
    pub fn channel(&self, pos: usize) -> Option<ChannelId> {
        self.slots
            .get(pos)
            .map(|m| self.channels[m.channel as usize].id)
    }

    /// The events in order.
    pub fn iter(&self) -> impl Iterator<Item = MarkInfo> + '_ {
        self.slots.iter().map(|m| self.info(m))
    }

    /// The position of the first event not released in this run for which
    /// `held` (given its position) is false; marks it released (invariant I4).
    pub fn release_by(&mut self, held: impl FnMut(usize, &MarkInfo) -> bool) -> Option<usize> {
        let i = self.next_by(held)?;
        self.set_released(i);
        Some(i)
    }

    /// The position of the first event not released in this run for which
    /// `held` (given its position) is false, not marked: a caller that reads
    /// the event first marks it with [`set_released`](Self::set_released) once
    /// it has it, so that a read that does not complete releases nothing.
    pub fn next_by(&self, mut held: impl FnMut(usize, &MarkInfo) -> bool) -> Option<usize> {
        (0..self.slots.len())
            .find(|&i| self.slots[i].flags & RELEASED == 0 && !held(i, &self.info(&self.slots[i])))
    }

    /// Marks the event at `pos` released in this run (invariant I4).
    ///
    /// # Panics
    /// If `pos` is out of range.
    pub fn set_released(&mut self, pos: usize) {
        self.slots[pos].flags |= RELEASED;
    }

    /// Forgets which events were released in this run (invariant I4).
    pub fn rewind(&mut self) {
        for m in self.slots.iter_mut() {
            m.flags &= !RELEASED;
        }
    }

    fn info(&self, m: &Mark) -> MarkInfo {
        MarkInfo {
            channel: self.channels[m.channel as usize].id,
            is_htlc: m.flags & HTLC != 0,
            released: m.flags & RELEASED != 0,
            kind: kind_of(m.kind),
        }
    }

    /// The table entry for `channel`: its own, a free one, or a new one at the
    /// end (`channels.len()`); `None` if the table is full.
    fn channel_entry(&self, channel: &ChannelId) -> Option<usize> {
        let mut free = None;
        for (i, c) in self.channels.iter().enumerate() {
            if c.events > 0 && c.id == *channel {
                return Some(i);
            }
            if c.events == 0 && free.is_none() {
                free = Some(i);
            }
        }
        free.or((!self.channels.is_full()).then_some(self.channels.len()))
    }
}

impl<const N: usize, const CH: usize> Default for Marks<N, CH> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const CH: usize> Clone for Marks<N, CH> {
    fn clone(&self) -> Self {
        Marks {
            slots: self.slots.clone(),
            channels: self.channels.clone(),
        }
    }
}

/// The ids and flags of up to `N` pending events, in id order, and the channels
/// they belong to: at most `CH` different channels at a time (by default `N`).
/// No heap; memory is fixed at compile time (invariant I6): 8 bytes per pending
/// event (an id relative to the oldest, and its [`Marks`]) and 36 bytes per
/// channel.
pub struct PendingIndex<const N: usize, const CH: usize = N> {
    /// Ids less `base`, strictly increasing.
    ids: heapless::Vec<u32, N>,
    marks: Marks<N, CH>,
    base: u64,
    /// Greater than every id ever assigned (invariant I3).
    next_id: EventId,
}

impl<const N: usize, const CH: usize> PendingIndex<N, CH> {
    /// An empty index whose first id is 0.
    pub const fn new() -> Self {
        Self::with_next_id(EventId(0))
    }

    /// An empty index whose next id is `next_id`: after a restart, the saved
    /// counter, so ids are never reused (invariant I3).
    pub const fn with_next_id(next_id: EventId) -> Self {
        PendingIndex {
            ids: heapless::Vec::new(),
            marks: Marks::new(),
            base: 0,
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
        self.ids.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `N` events are pending: [`push`](Self::push) fails.
    pub fn is_full(&self) -> bool {
        self.ids.is_full()
    }

    /// The most events that can be pending: `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The most channels that can have events pending at once: `CH`.
    pub const fn channel_capacity(&self) -> usize {
        CH
    }

    /// Whether an event of `channel` can be added as far as the channel table
    /// goes: the channel has events pending already, or fewer than `CH` channels
    /// do.
    pub fn has_channel_room(&self, channel: &ChannelId) -> bool {
        self.marks.has_channel_room(channel)
    }

    /// Whether `channel` has events pending.
    pub fn channel_pending(&self, channel: &ChannelId) -> bool {
        self.marks.channel_pending(channel)
    }

    /// How many more channels can have events pending: `CH` less those that do.
    pub fn free_channels(&self) -> usize {
        self.marks.free_channels()
    }

    /// Adds a new pending event and assigns it the next id, which is greater than
    /// every earlier one (invariant I3).
    ///
    /// `Err(Full)` changes nothing (invariant I6): `N` events are pending, or `CH`
    /// channels have events pending and `channel` is not one of them (see
    /// [`has_channel_room`](Self::has_channel_room)). So does the id space running
    /// out at `u64::MAX` (never, in practice), which is reported as `Full` too.
    pub fn push(&mut self, channel: ChannelId, is_htlc: bool) -> Result<EventId, Full> {
        let id = self.next_id;
        if id.0 == u64::MAX {
            return Err(Full);
        }
        self.add(id, channel, is_htlc, None).map_err(|_| Full)?;
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
        self.insert_coded(id, channel, is_htlc, None)
    }

    /// As [`insert`](Self::insert), recording the event's kind too (the HTLC flag
    /// follows from it).
    pub fn insert_kind(
        &mut self,
        id: EventId,
        channel: ChannelId,
        kind: EventKind,
    ) -> Result<(), InsertError> {
        self.insert_coded(id, channel, kind == EventKind::HtlcResolved, Some(kind))
    }

    fn insert_coded(
        &mut self,
        id: EventId,
        channel: ChannelId,
        is_htlc: bool,
        kind: Option<EventKind>,
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
        self.add(id, channel, is_htlc, kind)?;
        self.next_id = id.next();
        Ok(())
    }

    /// Appends an event whose id is above every pending one; changes nothing on
    /// `Err`.
    fn add(
        &mut self,
        id: EventId,
        channel: ChannelId,
        is_htlc: bool,
        kind: Option<EventKind>,
    ) -> Result<(), InsertError> {
        if self.ids.is_full() {
            return Err(InsertError::Full);
        }
        if !self.marks.has_channel_room(&channel) {
            return Err(InsertError::TooManyChannels);
        }
        let Some(delta) = self.delta_for(id) else {
            // The oldest pending event is more than 2^32 ids behind: the index
            // cannot tell such ids apart. Never in practice; refused as full.
            return Err(InsertError::Full);
        };
        self.marks.push(channel, is_htlc, kind)?;
        // Cannot fail: checked above.
        let _ = self.ids.push(delta);
        Ok(())
    }

    /// `id - base` for a new id, moving the base up to the oldest pending id if
    /// needed; `None` if even that leaves it above `u32::MAX`.
    fn delta_for(&mut self, id: EventId) -> Option<u32> {
        let Some(&oldest) = self.ids.first() else {
            self.base = id.0;
            return Some(0);
        };
        if let Ok(d) = u32::try_from(id.0 - self.base) {
            return Some(d);
        }
        let d = u32::try_from(id.0 - self.base - oldest as u64).ok()?;
        for s in self.ids.iter_mut() {
            *s -= oldest;
        }
        self.base += oldest as u64;
        Some(d)
    }

    /// The public view of the event at `pos`.
    fn view(&self, pos: usize, m: MarkInfo) -> PendingEvent {
        PendingEvent {
            id: EventId(self.base + self.ids[pos] as u64),
            channel: m.channel,
            is_htlc: m.is_htlc,
            released: m.released,
            kind: m.kind,
        }
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
        let (ids, base) = (&self.ids, self.base);
        let pos = self.marks.release_by(|pos, m| {
            held(&PendingEvent {
                id: EventId(base + ids[pos] as u64),
                channel: m.channel,
                is_htlc: m.is_htlc,
                released: m.released,
                kind: m.kind,
            })
        })?;
        let e = self.get_at(pos)?;
        Some((e.id, e.channel))
    }

    /// Forgets which events were released in this run: each pending event will be
    /// released once more, as after a restart (invariant I4). For a consumer that
    /// restarted while the producer did not. RAM only.
    pub fn rewind(&mut self) {
        self.marks.rewind();
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
        match self.position(source.id) {
            Err(_) => Ok(AckOutcome::AlreadyAcked),
            Ok(i) if self.marks.channel(i) == Some(source.channel) => Ok(AckOutcome::Acked),
            Ok(_) => Err(AckError::WrongChannel),
        }
    }

    /// Removes the pending event `id`. Returns whether it was pending.
    pub fn remove(&mut self, id: EventId) -> bool {
        match self.position(id) {
            Ok(i) => {
                self.ids.remove(i);
                self.marks.remove(i);
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
    pub fn iter(&self) -> impl Iterator<Item = PendingEvent> + '_ {
        self.marks
            .iter()
            .enumerate()
            .map(|(pos, m)| self.view(pos, m))
    }

    /// The pending event `id`, if it is pending.
    pub fn get(&self, id: EventId) -> Option<PendingEvent> {
        self.position(id).ok().and_then(|i| self.get_at(i))
    }

    fn get_at(&self, pos: usize) -> Option<PendingEvent> {
        self.marks.get(pos).map(|m| self.view(pos, m))
    }

    /// The pending events older than `max_age`: more than `max_age` events were
    /// pushed after each of them. In id order.
    pub fn leak_report(&self, max_age: u64) -> impl Iterator<Item = Leak> + '_ {
        let next = self.next_id.0;
        self.iter().filter_map(move |e| {
            let age = next.saturating_sub(e.id.0).saturating_sub(1);
            (age > max_age).then_some(Leak {
                id: e.id,
                channel: e.channel,
                age,
            })
        })
    }

    fn position(&self, id: EventId) -> Result<usize, usize> {
        let Some(d) = id.0.checked_sub(self.base) else {
            return Err(0);
        };
        let Ok(d) = u32::try_from(d) else {
            return Err(self.ids.len());
        };
        self.ids.binary_search(&d)
    }
}

impl<const N: usize, const CH: usize> Default for PendingIndex<N, CH> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const CH: usize> Clone for PendingIndex<N, CH> {
    fn clone(&self) -> Self {
        PendingIndex {
            ids: self.ids.clone(),
            marks: self.marks.clone(),
            base: self.base,
            next_id: self.next_id,
        }
    }
}

/// Equal when the same events are pending, with the same flags, and the next id
/// is the same (however the table is laid out).
impl<const N: usize, const CH: usize> PartialEq for PendingIndex<N, CH> {
    fn eq(&self, other: &Self) -> bool {
        self.next_id == other.next_id
            && self.len() == other.len()
            && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl<const N: usize, const CH: usize> Eq for PendingIndex<N, CH> {}

impl<const N: usize, const CH: usize> fmt::Debug for PendingIndex<N, CH> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingIndex")
            .field("next_id", &self.next_id)
            .field("events", &DebugEvents(self))
            .finish()
    }
}

struct DebugEvents<'a, const N: usize, const CH: usize>(&'a PendingIndex<N, CH>);

impl<const N: usize, const CH: usize> fmt::Debug for DebugEvents<'_, N, CH> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize, const CH: usize> defmt::Format for PendingIndex<N, CH> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "PendingIndex {{ next_id: {}, pending: {} }}",
            self.next_id,
            self.len()
        )
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
    /// `CH` channels have events pending and this event's channel is not one of
    /// them.
    TooManyChannels,
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
            InsertError::TooManyChannels => "too many channels with events pending",
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

    /// I6: 8 bytes per pending event and 36 per channel, fixed at compile time.
    #[test]
    fn i6_memory_is_fixed_size_of_pending_index() {
        let s16 = core::mem::size_of::<PendingIndex<16, 8>>();
        let s64 = core::mem::size_of::<PendingIndex<64, 8>>();
        let c16 = core::mem::size_of::<PendingIndex<16, 16>>();
        println!("size_of::<PendingIndex<16, 8>>() = {s16}, <64, 8>: {s64}, <16, 16>: {c16}");
        assert_eq!(s64 - s16, 48 * 8, "8 B per pending event");
        assert_eq!(c16 - s16, 8 * 36, "36 B per channel");
    }

    /// I6: a full channel table refuses an event of a new channel and changes
    /// nothing; events of channels already pending still go in; a channel whose
    /// events are all acked frees its entry.
    #[test]
    fn i6_channel_table_full_refuses_new_channels_only() {
        let c = ChannelId([0xcc; 32]);
        let mut p = PendingIndex::<8, 2>::new();
        p.push(A, true).unwrap();
        p.push(B, false).unwrap();
        assert!(!p.has_channel_room(&c));
        assert_eq!(p.free_channels(), 0);
        let before = p.clone();
        assert_eq!(p.push(c, true), Err(Full));
        assert_eq!(
            p.insert(EventId(7), c, true),
            Err(InsertError::TooManyChannels)
        );
        assert_eq!(p, before);
        assert_eq!(p.next_id(), EventId(2));
        assert_eq!(p.push(A, false), Ok(EventId(2)));
        assert!(p.remove(EventId(1)));
        assert!(p.has_channel_room(&c) && !p.channel_pending(&B));
        assert_eq!(p.push(c, true), Ok(EventId(3)));
        let seen: Vec<(u64, ChannelId)> = p.iter().map(|e| (e.id.0, e.channel)).collect();
        assert_eq!(seen, [(0, A), (2, A), (3, c)]);
    }

    /// I3, I6: ids are kept relative to the oldest pending event; when they drift
    /// more than 2^32 apart the base moves up, and an oldest event 2^32 ids behind
    /// the next one is refused as full, changing nothing.
    #[test]
    fn i3_ids_far_apart_rebase_or_are_refused() {
        let mut p = PendingIndex::<4>::new();
        p.push(A, true).unwrap();
        p.push(B, false).unwrap();
        assert!(p.remove(EventId(0)));
        p.advance_next_id(EventId(1 << 33));
        assert_eq!(p.push(A, false), Err(Full), "event 1 is 2^33 ids behind");
        assert_eq!(ids(&p), [1]);
        assert!(p.remove(EventId(1)));
        assert_eq!(p.push(A, false), Ok(EventId(1 << 33)));
        p.advance_next_id(EventId((1 << 33) + u32::MAX as u64));
        assert_eq!(p.push(B, true), Ok(EventId((1 << 33) + u32::MAX as u64)));
        assert!(p.remove(EventId(1 << 33)));
        // The base (2^33) is now u32::MAX below the oldest pending id: the next id
        // only fits once the base moves up to the oldest.
        let oldest = (1u64 << 33) + u32::MAX as u64;
        p.advance_next_id(EventId(oldest + 100));
        assert_eq!(p.push(A, true), Ok(EventId(oldest + 100)));
        assert_eq!(ids(&p), [oldest, oldest + 100]);
        assert_eq!(p.get(EventId(oldest + 100)).map(|e| e.channel), Some(A));
        assert!(p.get(EventId(1 << 33)).is_none());
        assert_eq!(p.check_ack(&src(B, oldest)), Ok(AckOutcome::Acked));
        // More than 2^32 behind the oldest: refused, nothing changed.
        p.advance_next_id(EventId(oldest + (1 << 32) + 5));
        let before = p.clone();
        assert_eq!(p.push(B, true), Err(Full));
        assert_eq!(p, before);
        assert!(p.remove(EventId(oldest)));
        assert_eq!(p.push(B, true), Ok(EventId(oldest + (1 << 32) + 5)));
        assert_eq!(ids(&p), [oldest + 100, oldest + (1 << 32) + 5]);
    }

    /// The operations of the model test below.
    #[derive(Clone, Debug)]
    enum Op {
        Push(u8, bool),
        Ack(usize, u8),
        Release(u8),
        Rewind,
        Jump(u32),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u8..5, any::<bool>()).prop_map(|(c, h)| Op::Push(c, h)),
            3 => (any::<usize>(), 0u8..5).prop_map(|(i, c)| Op::Ack(i, c)),
            2 => (0u8..5).prop_map(Op::Release),
            1 => Just(Op::Rewind),
            1 => prop_oneof![Just(u32::MAX), Just(1u32 << 31), 0u32..1000].prop_map(Op::Jump),
        ]
    }

    proptest::proptest! {
        /// I2–I6 against a plain model: random pushes on 5 channels into an index
        /// of 6 events and 3 channels, acks (right and wrong channel, pending or
        /// not), releases with a gated channel, rewinds, and jumps of the next id
        /// by up to 2^32 (the relative ids must rebase or refuse). Every answer and
        /// the whole content must match the model's.
        #[test]
        fn i6_compact_index_matches_a_plain_model(ops in proptest::collection::vec(op(), 1..200)) {
            let ch = |c: u8| ChannelId([c; 32]);
            let mut p = PendingIndex::<6, 3>::new();
            let mut model: Vec<PendingEvent> = Vec::new();
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Push(c, htlc) => {
                        let channels: std::collections::BTreeSet<[u8; 32]> =
                            model.iter().map(|e| e.channel.0).collect();
                        let fits = model.len() < 6
                            && (channels.contains(&ch(c).0) || channels.len() < 3)
                            && model.first().is_none_or(|o| next - o.id.0 <= u32::MAX as u64);
                        let got = p.push(ch(c), htlc);
                        if fits {
                            proptest::prop_assert_eq!(got, Ok(EventId(next)));
                            model.push(PendingEvent { id: EventId(next), channel: ch(c), is_htlc: htlc, released: false, kind: None });
                            next += 1;
                        } else {
                            proptest::prop_assert_eq!(got, Err(Full));
                        }
                    }
                    Op::Ack(i, c) => {
                        let id = if model.is_empty() || i % 4 == 0 { EventId((i as u64) % (next + 2)) } else { model[i % model.len()].id };
                        let want = if id.0 >= next {
                            Err(AckError::Unknown)
                        } else {
                            match model.iter().position(|e| e.id == id) {
                                None => Ok(AckOutcome::AlreadyAcked),
                                Some(k) if model[k].channel == ch(c) => { model.remove(k); Ok(AckOutcome::Acked) }
                                Some(_) => Err(AckError::WrongChannel),
                            }
                        };
                        proptest::prop_assert_eq!(p.ack(&src(ch(c), id.0)), want);
                    }
                    Op::Release(gated) => {
                        let held = |e: &PendingEvent| e.is_htlc && e.channel == ch(gated);
                        let want = model.iter_mut().find(|e| !e.released && !held(e));
                        let want = want.map(|e| { e.released = true; (e.id, e.channel) });
                        let got = p.next_release_by(|e| e.is_htlc && e.channel == ch(gated));
                        proptest::prop_assert_eq!(got, want);
                    }
                    Op::Rewind => {
                        p.rewind();
                        for e in model.iter_mut() { e.released = false; }
                    }
                    Op::Jump(by) => {
                        next += by as u64;
                        p.advance_next_id(EventId(next));
                    }
                }
                let got: Vec<PendingEvent> = p.iter().collect();
                proptest::prop_assert_eq!(&got, &model);
                proptest::prop_assert_eq!(p.next_id(), EventId(next));
                let distinct: std::collections::BTreeSet<[u8; 32]> = model.iter().map(|e| e.channel.0).collect();
                proptest::prop_assert_eq!(p.free_channels(), 3 - distinct.len());
            }
        }
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
